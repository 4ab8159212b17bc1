/*
 * The globals a service script sees (_p, require, JSGIResponse, dc) and the
 * runner the worker drives, evaluated first in every fresh context.
 *
 * Everything rests on ONE Python callback, __host(op, argsJSON) ->
 * replyJSON, which this file takes off the global object before any script
 * runs: scripts reach it only through the functions of prelude_p.js, whose
 * arguments the worker checks again in Python. The intrinsics used after a
 * script has run are captured first, so a script that rewrites
 * Object.prototype, JSON or Array.prototype changes nothing but its own
 * answer. The objects handed to scripts are frozen and keep their state in
 * closures.
 *
 * QuickJS compiles every function of a source when it evaluates it, and this
 * file is compiled again for every call: so all a hello world never touches
 * (prelude_p.js: _p, require, JSGIResponse, the request body, the channel
 * to Python) is kept as text, taken off the global object like __host, and
 * compiled when a script first reads one of them. It gets the intrinsics
 * captured here, never the script's, and defines properties through
 * descriptors without a prototype, so a script that polluted
 * Object.prototype first cannot reach into it. What is left here is what
 * every call runs: the captures, the request object and the checks of the
 * answer.
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
    var INDEX_KEY = /^(?:0|[1-9][0-9]*)$/;

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

    // --- the rest, compiled when first needed (prelude_p.js) ----------------
    var lazy = null;
    var caps = dict();
    function P() {
        if (lazy === null) {
            lazy = apply(geval(pSource), undefined, [caps]);
        }
        return lazy;
    }

    // what prelude_p.js may use: the intrinsics as they were before any script
    caps.host = host; caps.geval = geval; caps.test = test; caps.indexOf = indexOf;
    caps.JSONparse = JSONparse; caps.JSONstringify = JSONstringify;
    caps.WeakMapCtor = WeakMap; caps.wmGet = WeakMap.prototype.get; caps.wmSet = WeakMap.prototype.set;
    caps.desc = desc; caps.dict = dict; caps.own = own;
    caps.apply = apply; caps.create = create; caps.freeze = freeze;
    caps.defineProperty = defineProperty; caps.keys = keys; caps.isArray = isArray;
    caps.split = split; caps.StringOf = StringOf; caps.ErrorCtor = ErrorCtor;
    caps.TypeErrorCtor = TypeErrorCtor;
    freeze(caps);

    // _p, dc, require and JSGIResponse: made at the first read of any of them
    function lazyGlobal(name) {
        var d = dict();
        d.get = function () {
            var value = P()[name];
            defineProperty(global, name, desc(value, true, true, true));
            return value;
        };
        d.set = function (value) { defineProperty(global, name, desc(value, true, true, true)); };
        d.enumerable = true; d.configurable = true;
        defineProperty(global, name, d);
    }
    lazyGlobal("_p");
    lazyGlobal("dc");
    lazyGlobal("require");
    lazyGlobal("JSGIResponse");

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
        return {
            method: r.method, host: r.host, port: r.port, scheme: r.scheme,
            scriptName: r.scriptName, pathInfo: r.pathInfo, queryString: r.queryString,
            headers: r.headers,
            env: {requestUri: r.requestUri},
            jsgi: {version: [0, 3], multithread: false, multiprocess: true, runOnce: true, cgi: false, ext: {}},
            get input() { return P().input; }
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
                var sid = lazy === null ? undefined : lazy.streamId(el);
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
