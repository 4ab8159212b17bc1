/*
 * The globals a service script sees (_p, require, JSGIResponse, dc) and the
 * runner the worker drives, evaluated first in every fresh context.
 *
 * Everything here rests on ONE Python callback, __host(op, argsJSON) ->
 * replyJSON, which this file takes off the global object before any script
 * runs: scripts reach it only through the functions below, whose arguments
 * the worker checks again in Python. The intrinsics used after a script has
 * run are captured first, so a script that rewrites Object.prototype, JSON
 * or Array.prototype changes nothing but its own answer. The objects handed
 * to scripts are frozen and keep their state in closures.
 *
 * The file evaluates to the runner: runner(action, argJSON) -> outcomeJSON.
 */
(function (global) {
    "use strict";
    var host = global.__host;
    delete global.__host;

    var JSONparse = JSON.parse, JSONstringify = JSON.stringify;
    var apply = Reflect.apply, create = Object.create, freeze = Object.freeze;
    var defineProperty = Object.defineProperty, keys = Object.keys;
    var getPrototypeOf = Object.getPrototypeOf, setPrototypeOf = Object.setPrototypeOf;
    var isArray = Array.isArray;
    var objectToString = Object.prototype.toString;
    var hasOwn = Object.prototype.hasOwnProperty;
    var StringOf = String, ErrorCtor = Error, TypeErrorCtor = TypeError;
    var geval = eval; // indirect: global scope, sloppy mode
    var InternalErrorProto = typeof InternalError === "function" ? InternalError.prototype : null;
    var RangeErrorProto = RangeError.prototype;
    var regexTest = RegExp.prototype.test;
    var split = String.prototype.split, indexOf = String.prototype.indexOf;
    var MODULE_NAME = /^[A-Za-z0-9_$][A-Za-z0-9_$.-]*$/;
    var INDEX_KEY = /^(?:0|[1-9][0-9]*)$/;
    var MAX_REQUIRE_DEPTH = 32;

    function test(re, s) { return apply(regexTest, re, [s]); }
    function own(o, k) { return apply(hasOwn, o, [k]); }
    function kindOf(v) { return apply(objectToString, v, []); }
    function dict() { return create(null); }
    // an array JSON.stringify serializes without consulting any toJSON a script planted
    function list() { var a = []; setPrototypeOf(a, null); return a; }

    // --- errors ----------------------------------------------------------
    function PersoniumException(code, message) {
        if (!(this instanceof PersoniumException)) {
            return new PersoniumException(code, message);
        }
        if (arguments.length < 2) { // the reference's one-argument form
            message = code;
            code = 0;
        }
        defineProperty(this, "name", {value: "_p.PersoniumException", writable: true, enumerable: true, configurable: true});
        defineProperty(this, "code", {value: code, writable: true, enumerable: true, configurable: true});
        defineProperty(this, "message", {value: StringOf(message), writable: true, enumerable: true, configurable: true});
    }
    PersoniumException.prototype = create(ErrorCtor.prototype);
    defineProperty(PersoniumException.prototype, "constructor", {value: PersoniumException});
    defineProperty(PersoniumException.prototype, "name", {value: "_p.PersoniumException"});
    freeze(PersoniumException.prototype);
    freeze(PersoniumException);

    function engineError(code, message) {
        var e = new ErrorCtor(message);
        defineProperty(e, "name", {value: "PersoniumEngineException", writable: true, configurable: true});
        defineProperty(e, "code", {value: code, writable: true, enumerable: true, configurable: true});
        return e;
    }

    function invalid() { return new PersoniumException(400, "Parameter Invalid"); }

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
    var streams = new WeakMap();
    var wmGet = WeakMap.prototype.get, wmSet = WeakMap.prototype.set;
    function makeStream(id) {
        var s = freeze(create(null, {toString: {value: function () { return "[object PersoniumInputStream]"; }}}));
        apply(wmSet, streams, [s, id]);
        return s;
    }
    function streamId(v) {
        if (v === null || typeof v !== "object") { return undefined; }
        return apply(wmGet, streams, [v]);
    }
    function charsetOf(c) { return c === undefined || c === null ? "utf-8" : StringOf(c); }

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
            for (var i = 0; i < ks.length; i++) { o[ks[i]] = extra[ks[i]]; }
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
                if (!isArray(cur)) { cur = [cur]; defineProperty(query, key, {value: cur, writable: true, enumerable: true, configurable: true}); }
                cur[cur.length] = value;
            } else {
                defineProperty(query, key, {value: value, writable: true, enumerable: true, configurable: true});
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
    HttpClient.prototype.get = function (url, headers, respondsAsStream) {
        return http("GET", url, headers, undefined, undefined, respondsAsStream);
    };
    HttpClient.prototype.post = function (url, headers, contentType, body) {
        return http("POST", url, headers, contentType, body, false);
    };
    HttpClient.prototype.put = function (url, headers, contentType, body) {
        return http("PUT", url, headers, contentType, body, false);
    };
    HttpClient.prototype.patch = function (url, headers, contentType, body) {
        return http("PATCH", url, headers, contentType, body, false);
    };
    HttpClient.prototype["delete"] = function (url, headers) {
        return http("DELETE", url, headers, undefined, undefined, false);
    };
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

    global._p = _p;
    global.dc = _p;
    global.require = require;
    global.JSGIResponse = JSGIResponse;

    // --- the runner ------------------------------------------------------------
    function isFatal(e) {
        if (e === null || typeof e !== "object") { return false; }
        var proto = getPrototypeOf(e);
        if (proto === InternalErrorProto && e.message === "out of memory") { return true; }
        return proto === RangeErrorProto && e.message === "Maximum call stack size exceeded";
    }
    function failure(e) {
        var o = dict();
        if (isFatal(e)) { o.k = "fatal"; return o; }
        try {
            o.k = "error"; o.m = StringOf(e);
        } catch (e2) {
            o.k = isFatal(e2) ? "fatal" : "nomsg";
        }
        return o;
    }
    function fail(m) { var o = dict(); o.k = "error"; o.m = m; return o; }

    function makeRequest(r) {
        var input = freeze({
            readAll: function (charset) { var a = dict(); a.charset = charsetOf(charset); return call("input.readAll", a); },
            readLine: function (charset) { var a = dict(); a.charset = charsetOf(charset); return call("input.readLine", a); },
            stream: function () { return makeStream(call("input.stream", dict())); }
        });
        return {
            method: r.method, host: r.host, port: r.port, scheme: r.scheme,
            scriptName: r.scriptName, pathInfo: r.pathInfo, queryString: r.queryString,
            headers: r.headers,
            env: {requestUri: r.requestUri},
            jsgi: {version: [0, 3], multithread: false, multiprocess: true, runOnce: true, cgi: false, ext: {}},
            input: input
        };
    }

    var response; // the script's answer between the "head" and "body" steps

    function runScript(arg) {
        try {
            geval("fn_jsgi = " + arg.source);
        } catch (e) {
            return failure(e);
        }
        var fn = global.fn_jsgi;
        if (typeof fn !== "function") { var o = dict(); o.k = "nofn"; return o; }
        try {
            response = apply(fn, undefined, [makeRequest(arg.request)]);
        } catch (e) {
            return failure(e);
        }
        return head();
    }

    // checks 1-6 of what a script returns, in order (docs/services.md); 7, the media type, is the worker's
    function head() {
        try {
            var res = response;
            if (res === null || typeof res !== "object" || kindOf(res) !== "[object Object]") { return fail("not NativeObject"); }
            var status = res.status;
            if (typeof status !== "number") { return fail("response status illegal type."); }
            var s = StringOf(status);
            if (!test(/^[2-9][0-9]{2}$/, s)) { return fail("response status illegal type. status: " + s); }
            var headers = res.headers;
            if (headers === null || typeof headers !== "object" || kindOf(headers) !== "[object Object]") { return fail("not headers"); }
            var names = keys(headers), pairs = list();
            for (var i = 0; i < names.length; i++) {
                var name = names[i];
                if (test(INDEX_KEY, name)) { return fail("header key format error"); }
                var value = headers[name];
                if (typeof value !== "string") { return fail("header value format error"); }
                var pair = list();
                pair[0] = name; pair[1] = value;
                pairs[i] = pair;
            }
            var o = dict();
            o.k = "head"; o.status = status; o.headers = pairs;
            return o;
        } catch (e) {
            return failure(e);
        }
    }

    // checks 8-9; string parts and stream handles in order
    function body() {
        try {
            var b = response.body;
            if (b === null || b === undefined || typeof b.forEach !== "function") { return fail("response body undefined forEach."); }
            var parts = list(), bad = false;
            b.forEach(function (el) {
                if (bad) { return; }
                if (typeof el === "string") {
                    parts[parts.length] = el;
                    return;
                }
                var sid = streamId(el);
                if (sid === undefined) { bad = true; return; }
                parts[parts.length] = sid;
            });
            if (bad) { return fail("response body illegal type."); }
            var o = dict();
            o.k = "body"; o.parts = parts;
            return o;
        } catch (e) {
            return failure(e);
        }
    }

    return function runner(action, argJSON) {
        var out;
        try {
            if (action === "run") { out = runScript(JSONparse(argJSON)); }
            else if (action === "body") { out = body(); }
            else { out = fail("unknown action"); }
            return JSONstringify(out);
        } catch (e) {
            return isFatal(e) ? '{"k":"fatal"}' : '{"k":"nomsg"}';
        }
    };
})(globalThis)
