/*
 * What a script reaches beyond its request and its answer: _p (the box API,
 * the accounts and the outside world, docs/services.md), require,
 * JSGIResponse, the request body (request.input) and the one channel to
 * Python. Compiled by prelude.js when a script first needs any of them,
 * with the intrinsics prelude.js captured before any script ran (``caps``);
 * evaluates to a function of them returning the null-prototype object
 * {_p, dc, require, JSGIResponse, input, streamId}. It may run after a
 * script rewrote any built-in: it uses only ``caps`` (and its helpers made
 * from them here), and defines properties with descriptors that have no
 * prototype.
 */
(function (caps) {
    "use strict";
    var host = caps.host, geval = caps.geval, regexExec = caps.regexExec, hasOwn = caps.hasOwn, indexOf = caps.indexOf;
    var JSONparse = caps.JSONparse, JSONstringify = caps.JSONstringify;
    var apply = caps.apply, create = caps.create, freeze = caps.freeze;
    var defineProperty = caps.defineProperty, keys = caps.keys, isArray = caps.isArray;
    var split = caps.split, StringOf = caps.StringOf, ErrorCtor = caps.ErrorCtor;
    var TypeErrorCtor = caps.TypeErrorCtor;
    function test(re, s) { return apply(regexExec, re, [s]) !== null; }
    function own(o, k) { return apply(hasOwn, o, [k]); }
    function dict() { return create(null); }
    // a property descriptor that no Object.prototype.get/set/value can reach into
    function desc(value, writable, enumerable, configurable) {
        var d = dict();
        d.value = value; d.writable = !!writable; d.enumerable = !!enumerable; d.configurable = !!configurable;
        return d;
    }
    var MODULE_NAME = /^[A-Za-z0-9_$][A-Za-z0-9_$.-]*$/;
    var MAX_REQUIRE_DEPTH = 32;

    function engineError(code, message) {
        var e = new ErrorCtor(message);
        defineProperty(e, "name", desc("PersoniumEngineException", true, false, true));
        defineProperty(e, "code", desc(code, true, true, true));
        return e;
    }

    // --- the one channel to Python ----------------------------------------
    function call(op, args) {
        var reply = JSONparse(host(op, JSONstringify(args)));
        var e = reply.e;
        if (e !== null) {
            if (e.kind === "p") { throw new PersoniumException(e.code, e.message); }
            if (e.kind === "require") { throw engineError(e.code, e.message); }
            throw new ErrorCtor(e.message);
        }
        return reply.v;
    }

    // --- streams: opaque handles on bytes the worker holds -----------------
    var streams = new caps.WeakMapCtor();
    var wmGet = caps.wmGet, wmSet = caps.wmSet;
    function makeStream(id) {
        var s = create(null);
        defineProperty(s, "toString", desc(function () { return "[object PersoniumInputStream]"; }));
        freeze(s);
        apply(wmSet, streams, [s, id]);
        return s;
    }
    function streamId(v) {
        if (v === null || typeof v !== "object") { return undefined; }
        return apply(wmGet, streams, [v]);
    }
    function charsetOf(c) { return c === undefined || c === null ? "utf-8" : StringOf(c); }

    // --- the request body --------------------------------------------------
    var input = freeze({
        readAll: function (charset) { var a = dict(); a.charset = charsetOf(charset); return call("input.readAll", a); },
        readLine: function (charset) { var a = dict(); a.charset = charsetOf(charset); return call("input.readLine", a); },
        stream: function () { return makeStream(call("input.stream", dict())); }
    });

    // --- require -------------------------------------------------------------
    var requireDepth = 0;
    function require(name) {
        if (typeof name !== "string" || !test(MODULE_NAME, name) || apply(indexOf, name, [".."]) >= 0) {
            throw engineError(404, "404 Not Found");
        }
        if (requireDepth >= MAX_REQUIRE_DEPTH) {
            throw engineError(508, "require nesting too deep [" + name + "]");
        }
        var a = dict();
        a.name = name;
        var source = call("require", a);
        var exports = {};
        var wrapped = geval("(function(exports){" + source + "\n})");
        requireDepth++;
        try {
            wrapped(exports);
        } finally {
            requireDepth--;
        }
        return exports;
    }

    function JSGIResponse() {}
    JSGIResponse.prototype = {
        status: 200,
        headers: {"Content-Type": "application/json;charset=utf-8"},
        setResponseData: function (data) {
            if (data === null) {
                this.body = [];
            } else if (this.headers["Content-Type"].indexOf("application/json", 0) !== -1) {
                this.body = [JSONstringify(data)];
            } else {
                this.body = [data];
            }
        },
        body: []
    };

    // --- errors ----------------------------------------------------------
    function PersoniumException(code, message) {
        if (!(this instanceof PersoniumException)) {
            return new PersoniumException(code, message);
        }
        if (arguments.length < 2) { // the reference's one-argument form
            message = code;
            code = 0;
        }
        defineProperty(this, "name", desc("_p.PersoniumException", true, true, true));
        defineProperty(this, "code", desc(code, true, true, true));
        defineProperty(this, "message", desc(StringOf(message), true, true, true));
    }
    PersoniumException.prototype = create(ErrorCtor.prototype);
    defineProperty(PersoniumException.prototype, "constructor", desc(PersoniumException));
    defineProperty(PersoniumException.prototype, "name", desc("_p.PersoniumException"));
    freeze(PersoniumException.prototype);
    freeze(PersoniumException);

    function invalid() { return new PersoniumException(400, "Parameter Invalid"); }

    // --- _p ----------------------------------------------------------------
    function target(acc, cell, box, path) {
        var a = dict();
        a.as = acc; a.cell = cell; a.box = box; a.path = path;
        return a;
    }
    function join(dir, name) {
        if (typeof name !== "string" || name === "") { throw invalid(); }
        return dir === "" ? name : dir + "/" + name;
    }

    // a box (dir "") or a collection below it
    function makeDav(acc, cell, box, dir, extra) {
        function args(path) { return target(acc, cell, box, path); }
        var o = {
            col: function (name) {
                var path = join(dir, name);
                var parts = apply(split, path, ["/"]);
                var c = dict();
                c.name = parts[parts.length - 1];
                return makeDav(acc, cell, box, path, c);
            },
            getPath: function () { return "/" + dir; },
            getString: function (path, charset) {
                var a = args(join(dir, path));
                a.charset = charsetOf(charset || undefined);
                return call("dav.getString", a);
            },
            put: function (param, contentType, data, etag) {
                var path, charset = "UTF-8";
                if (typeof param === "string") {
                    path = param;
                } else if (param !== null && typeof param === "object" && param.path && param.contentType && param.data) {
                    path = param.path; contentType = param.contentType; data = param.data;
                    etag = param.etag; charset = param.charset ? StringOf(param.charset) : "UTF-8";
                } else {
                    throw invalid();
                }
                var a = args(join(dir, path));
                a.contentType = StringOf(contentType);
                a.charset = charset;
                a.etag = etag ? StringOf(etag) : "*";
                var sid = streamId(data);
                if (sid !== undefined) { a.dataStream = sid; } else { a.data = StringOf(data); }
                return call("dav.put", a);
            },
            del: function (path, etag) {
                var a = args(join(dir, path));
                a.etag = etag ? StringOf(etag) : "*";
                call("dav.del", a);
            },
            mkCol: function (name) { call("dav.mkCol", args(join(dir, name))); },
            getFileList: function () { return call("dav.getFileList", args(dir)); },
            getColList: function () { return call("dav.getColList", args(dir)); },
            setProp: function (key, value) {
                var a = args(dir);
                a.key = StringOf(key); a.value = StringOf(value);
                call("dav.setProp", a);
            },
            getProp: function (key) {
                var a = args(dir);
                a.key = StringOf(key);
                return call("dav.getProp", a);
            }
        };
        if (extra) {
            var ks = keys(extra);
            for (var i = 0; i < ks.length; i++) { defineProperty(o, ks[i], desc(extra[ks[i]], true, true, true)); }
        }
        return freeze(o);
    }

    function makeCell(acc, cellArg) {
        var a = dict();
        a.as = acc; a.cell = cellArg;
        var info = call("cell", a);
        var name = info.name, url = info.url;
        return freeze({
            name: name,
            getUrl: function () { return url; },
            getToken: function () {
                var t = dict();
                t.as = acc; t.cell = cellArg;
                return call("cell.getToken", t);
            },
            box: function (boxName) {
                var b = dict();
                b.as = acc; b.cell = cellArg;
                b.box = boxName === undefined || boxName === null || boxName === "" ? null : StringOf(boxName);
                var binfo = call("box", b);
                var extra = dict();
                extra.name = binfo.name; extra.schema = binfo.schema;
                return makeDav(acc, cellArg, binfo.name, "", extra);
            }
        });
    }

    function makeAccessor(acc) {
        return freeze({
            cell: function (url) {
                return makeCell(acc, typeof url === "string" && url !== "" ? url : null);
            }
        });
    }

    function as(param) {
        var acc = dict();
        if (param === "client" || param === "serviceSubject") {
            acc.as = param;
        } else if (param !== null && typeof param === "object" && typeof param.cellUrl === "string" &&
                   typeof param.userId === "string" && typeof param.password === "string") {
            acc.as = "password";
            acc.cellUrl = param.cellUrl; acc.userId = param.userId; acc.password = param.password;
        } else {
            throw invalid();
        }
        return makeAccessor(freeze(acc));
    }

    function queryParse(queryString, charset) {
        var query = {};
        var cs = charsetOf(charset);
        if (queryString === undefined || queryString === null || queryString === "") { return query; }
        var params = apply(split, StringOf(queryString), ["&"]);
        for (var i = 0; i < params.length; i++) {
            if (params[i] === "") { continue; }
            var kv = apply(split, params[i], ["="]);
            var d = dict();
            d.key = kv[0]; d.value = kv.length > 1 ? kv[1] : ""; d.charset = cs;
            var pair = call("util.decodeQuery", d);
            var key = pair[0], value = pair[1];
            if (own(query, key)) {
                var cur = query[key];
                if (!isArray(cur)) { cur = [cur]; defineProperty(query, key, desc(cur, true, true, true)); }
                defineProperty(cur, cur.length, desc(value, true, true, true));
            } else {
                defineProperty(query, key, desc(value, true, true, true));
            }
        }
        return query;
    }

    function HttpClient() {
        if (!(this instanceof HttpClient)) { throw new TypeErrorCtor("HttpClient must be called with new"); }
    }
    function http(method, url, headers, contentType, body, asStream) {
        var a = dict();
        a.method = method;
        a.url = typeof url === "string" ? url : "";
        var h = dict();
        if (headers !== null && headers !== undefined && typeof headers === "object") {
            var ks = keys(headers);
            for (var i = 0; i < ks.length; i++) { h[ks[i]] = StringOf(headers[ks[i]]); }
        }
        a.headers = h;
        a.asStream = asStream === true;
        if (contentType !== undefined) {
            a.contentType = contentType === null ? "" : StringOf(contentType);
            var sid = streamId(body);
            if (sid !== undefined) { a.bodyStream = sid; } else { a.body = body === undefined || body === null ? "" : StringOf(body); }
        }
        var r = call("http", a);
        var out = {status: r.status, headers: r.headers, body: r.body};
        if (r.stream !== undefined) { out.body = makeStream(r.stream); }
        return out;
    }
    function method(name, f) { defineProperty(HttpClient.prototype, name, desc(f, true, true, true)); }
    method("get", function (url, headers, respondsAsStream) {
        return http("GET", url, headers, undefined, undefined, respondsAsStream);
    });
    method("post", function (url, headers, contentType, body) {
        return http("POST", url, headers, contentType, body, false);
    });
    method("put", function (url, headers, contentType, body) {
        return http("PUT", url, headers, contentType, body, false);
    });
    method("patch", function (url, headers, contentType, body) {
        return http("PATCH", url, headers, contentType, body, false);
    });
    method("delete", function (url, headers) {
        return http("DELETE", url, headers, undefined, undefined, false);
    });
    freeze(HttpClient.prototype);
    freeze(HttpClient);

    var util = freeze({queryParse: queryParse});
    var _p = freeze({
        as: as,
        localbox: function () { return as("client").cell().box(); },
        util: util,
        PersoniumException: PersoniumException,
        extension: freeze({HttpClient: HttpClient})
    });


    var out = dict();
    out._p = _p; out.dc = _p; out.require = require; out.JSGIResponse = JSGIResponse;
    out.input = input; out.streamId = streamId;
    return out;
})
