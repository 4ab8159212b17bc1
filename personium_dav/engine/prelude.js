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
 * QuickJS compiles every function of a source when it evaluates it, and this
 * file is compiled again for every call: so _p (prelude_p.js, the larger
 * part, which a hello world never touches) is kept as text, taken off the
 * global object like __host, and compiled when a script first reads _p or
 * dc, or a _p call fails. It gets the intrinsics captured here, never the
 * script's, and defines properties through descriptors without a prototype,
 * so a script that polluted Object.prototype first cannot reach into it.
 *
 * The file evaluates to the runner: runner(action, argJSON) -> outcomeJSON.
 */
(function (global) {
    "use strict";
    var host = global.__host;
    var pSource = global.__p_source;
    delete global.__host;
    delete global.__p_source;

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
    // a property descriptor that no Object.prototype.get/set/value can reach into
    function desc(value, writable, enumerable, configurable) {
        var d = dict();
        d.value = value; d.writable = !!writable; d.enumerable = !!enumerable; d.configurable = !!configurable;
        return d;
    }
    // an array JSON.stringify serializes without consulting any toJSON a script planted
    function list() { var a = []; setPrototypeOf(a, null); return a; }

    // --- errors ----------------------------------------------------------
    function engineError(code, message) {
        var e = new ErrorCtor(message);
        defineProperty(e, "name", desc("PersoniumEngineException", true, false, true));
        defineProperty(e, "code", desc(code, true, true, true));
        return e;
    }

    // --- _p, compiled when first needed (prelude_p.js) ----------------------
    var lazy = null;
    var caps = dict();
    function P() {
        if (lazy === null) {
            lazy = apply(geval(pSource), undefined, [caps]);
        }
        return lazy;
    }

    // --- the one channel to Python ----------------------------------------
    function call(op, args) {
        var reply = JSONparse(host(op, JSONstringify(args)));
        var e = reply.e;
        if (e !== null) {
            if (e.kind === "p") { throw P().exception(e.code, e.message); }
            if (e.kind === "require") { throw engineError(e.code, e.message); }
            throw new ErrorCtor(e.message);
        }
        return reply.v;
    }

    // --- streams: opaque handles on bytes the worker holds -----------------
    var streams = new WeakMap();
    var wmGet = WeakMap.prototype.get, wmSet = WeakMap.prototype.set;
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

    // what prelude_p.js may use: the intrinsics as they were before any script
    caps.call = call; caps.makeStream = makeStream; caps.streamId = streamId;
    caps.charsetOf = charsetOf; caps.desc = desc; caps.dict = dict; caps.own = own;
    caps.apply = apply; caps.create = create; caps.freeze = freeze;
    caps.defineProperty = defineProperty; caps.keys = keys; caps.isArray = isArray;
    caps.split = split; caps.StringOf = StringOf; caps.ErrorCtor = ErrorCtor;
    caps.TypeErrorCtor = TypeErrorCtor;
    freeze(caps);

    // _p and dc: the same object, made at the first read of either
    function lazyGlobal(name) {
        var d = dict();
        d.get = function () {
            var value = P().p;
            defineProperty(global, name, desc(value, true, true, true));
            return value;
        };
        d.set = function (value) { defineProperty(global, name, desc(value, true, true, true)); };
        d.enumerable = true; d.configurable = true;
        defineProperty(global, name, d);
    }

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

    lazyGlobal("_p");
    lazyGlobal("dc");
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
