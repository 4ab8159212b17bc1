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
 * answer. It is written for few tokens, as QuickJS's compile time goes by
 * the token (comments and blanks are nearly free): objects without a
 * prototype are literals ({__proto__: null, ...}: their properties are
 * defined, never set through a prototype), and prelude_p.js makes its own
 * helpers (desc, dict, own, test) from ``caps``. The fatal check (out of
 * memory, stack overflow) stays here, compiled before anything can run out.
 *
 * The file evaluates to the runner: runner(action, argJSON) -> outcomeJSON.
 */
(function (global) {
    "use strict";
    var host = global.__host, pSource = global.__p_source;
    delete global.__host;
    delete global.__p_source;

    var O = Object, apply = Reflect.apply, defineProperty = O.defineProperty;
    var getPrototypeOf = O.getPrototypeOf, keys = O.keys, objectToString = O.prototype.toString;
    var JSONparse = JSON.parse, JSONstringify = JSON.stringify, StringOf = String;
    // exec, not test: test looks exec up on the regex, which a script can replace on RegExp.prototype
    var regexExec = RegExp.prototype.exec, geval = eval; // indirect: global scope, sloppy mode
    var InternalErrorProto = typeof InternalError === "function" ? InternalError.prototype : null;
    var RangeErrorProto = RangeError.prototype;

    // what prelude_p.js may use: the intrinsics as they were before any script
    var caps = O.freeze({
        __proto__: null, host, geval, apply, defineProperty, keys, JSONparse, JSONstringify, StringOf, regexExec,
        create: O.create, freeze: O.freeze, isArray: Array.isArray, hasOwn: O.prototype.hasOwnProperty,
        split: String.prototype.split, indexOf: String.prototype.indexOf, ErrorCtor: Error, TypeErrorCtor: TypeError,
        WeakMapCtor: WeakMap, wmGet: WeakMap.prototype.get, wmSet: WeakMap.prototype.set
    });

    // --- the rest, compiled when first needed (prelude_p.js) ----------------
    var lazy = null;

    function P() {
        if (lazy === null) { lazy = apply(geval(pSource), undefined, [caps]); }
        return lazy;
    }
    // _p, dc, require and JSGIResponse: made at the first read of any of them
    ["_p", "dc", "require", "JSGIResponse"].forEach(function (name) {
        function set(value) {
            defineProperty(global, name, {__proto__: null, value, writable: true, enumerable: true, configurable: true});
            return value;
        }
        defineProperty(global, name, {__proto__: null, enumerable: true, configurable: true, set, get() { return set(P()[name]); }});
    });

    // --- the runner ------------------------------------------------------------
    function isFatal(e) {
        if (e === null || typeof e !== "object") { return false; }
        var proto = getPrototypeOf(e);
        if (proto === InternalErrorProto && e.message === "out of memory") { return true; }
        return proto === RangeErrorProto && e.message === "Maximum call stack size exceeded";
    }
    // outcomes are JSON text made here: JSON.stringify of an object or an
    // array uses arrays of its own, which an accessor a script planted on
    // Array.prototype[0] breaks (of a string, it touches nothing)
    var FATAL = '{"k":"fatal"}';
    function fail(m) { return '{"k":"error","m":' + JSONstringify(m) + "}"; }
    function failure(e) {
        if (isFatal(e)) { return FATAL; }
        try {
            return fail(StringOf(e));
        } catch (e2) {
            return isFatal(e2) ? FATAL : '{"k":"nomsg"}';
        }
    }

    function plain(v) { return v !== null && typeof v === "object" && apply(objectToString, v, []) === "[object Object]"; }
    var response; // the script's answer between the "head" and "body" steps

    // the script is called, then checks 1-6 of its answer, in order (docs/services.md); 7, the media type, is the worker's
    function run(arg) {
        try {
            geval("fn_jsgi = " + arg.source);
        } catch (e) {
            return failure(e);
        }
        var fn = global.fn_jsgi;
        if (typeof fn !== "function") { return '{"k":"nofn"}'; }
        try {
            var r = arg.request;
            var res = response = apply(fn, undefined, [{
                method: r.method, host: r.host, port: r.port, scheme: r.scheme,
                scriptName: r.scriptName, pathInfo: r.pathInfo, queryString: r.queryString,
                headers: r.headers,
                env: {requestUri: r.requestUri},
                jsgi: {version: [0, 3], multithread: false, multiprocess: true, runOnce: true, cgi: false, ext: {}},
                get input() { return P().input; }
            }]);
            if (!plain(res)) { return fail("not NativeObject"); }
            var status = res.status;
            if (typeof status !== "number") { return fail("response status illegal type."); }
            if (!(status >= 200 && status <= 999 && status % 1 === 0)) { return fail("response status illegal type. status: " + StringOf(status)); }
            var headers = res.headers;
            if (!plain(headers)) { return fail("not headers"); }
            var names = keys(headers), pairs = "", INDEX_KEY = /^(?:0|[1-9][0-9]*)$/;
            for (var i = 0; i < names.length; i++) {
                var name = names[i];
                if (apply(regexExec, INDEX_KEY, [name]) !== null) { return fail("header key format error"); }
                var value = headers[name];
                if (typeof value !== "string") { return fail("header value format error"); }
                pairs += (i ? ",[" : "[") + JSONstringify(name) + "," + JSONstringify(value) + "]";
            }
            return '{"k":"head","status":' + status + ',"headers":[' + pairs + "]}";
        } catch (e) {
            return failure(e);
        }
    }

    // checks 8-9; string parts and stream handles in order
    function body() {
        try {
            var b = response.body;
            if (b === null || b === undefined || typeof b.forEach !== "function") { return fail("response body undefined forEach."); }
            var parts = "", bad = false;
            b.forEach(function (el) {
                if (bad) { return; }
                var part = typeof el === "string" ? JSONstringify(el) : lazy === null ? undefined : lazy.streamId(el);
                if (part === undefined) { bad = true; } else { parts += (parts ? "," : "") + part; }
            });
            return bad ? fail("response body illegal type.") : '{"k":"body","parts":[' + parts + "]}";
        } catch (e) {
            return failure(e);
        }
    }

    return function runner(action, argJSON) {
        try {
            // String() flattens the text: the binding cannot hand a concatenation (a rope) to Python
            return StringOf(action === "run" ? run(JSONparse(argJSON)) : action === "body" ? body() : fail("unknown action"));
        } catch (e) {
            return isFatal(e) ? FATAL : '{"k":"nomsg"}';
        }
    };
})(globalThis)
