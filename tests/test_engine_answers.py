"""What a script's call answers: the contract's error table, the checks of
what a script returns (in their order, exact texts), the request object,
require, JSGIResponse and the _p calls against an in-memory host."""
import json

from twisted.internet import defer

from personium_dav.engine import result
from .support import enginehelp
from .support.enginehelp import FakeHost, PoolCase, fn

OK = 'function(r){ return {status: 200, headers: {"Content-Type": "text/plain"}, body: ["ok"]}; }'


def ret(obj_js):
    return "function(r){ return %s; }" % obj_js


class ErrorTable(PoolCase):
    def test_fixed_answers(self):
        self.assertEqual((result.service_property_invalid().status, result.service_property_invalid().body),
                         (404, b"404 Not Found (Service property invalid) "))
        self.assertEqual((result.not_found().status, result.not_found().body), (404, b"404 Not Found"))
        self.assertEqual(result.not_found().headers, [("Content-Type", "text/html")])
        unreachable = result.engine_unreachable()
        self.assertEqual(unreachable.status, 500)
        self.assertEqual(json.loads(unreachable.body),
                         {"code": "PR500-SC-0001", "message": {"lang": "en", "value": "Engine connection error."}})

    def test_script_failures(self):
        return self.check_table([
            ("", 500, "Server Error : SyntaxError: unexpected token in expression: ''"),
            ("// only a comment", 500, "Server Error : SyntaxError: unexpected token in expression: ''"),
            ("function(r) { return {", 500, "Server Error : SyntaxError: invalid property name"),
            ("42", 500, "Server Error"),
            ("'a string'", 500, "Server Error"),
            ("function(r){ throw new Error('boom'); }", 500, "Server Error : Error: boom"),
            ("function(r){ throw 'plain'; }", 500, "Server Error : plain"),
            ("function(r){ return 1; }\nthrow new TypeError('after');", 500, "Server Error : TypeError: after"),
            ("function(r){ undefinedFunction(); }", 500, "Server Error : ReferenceError: undefinedFunction is not defined"),
            ("function(r){ function f(){ return f() + 1; } return f(); }", 503, "Script TimeOut"),
            ("function(r){ var a = []; while (true) a.push(new Array(100000).fill(1)); }", 503, "Script TimeOut"),
        ])

    def test_caught_limits_are_the_scripts_business(self):
        return self.check_table([
            (fn("(function(){ try { (function f(){ f(); })(); } catch (e) { return e.name; } })()"),
             200, "RangeError"),
            (fn("(function(){ try { var a = []; while (true) a.push(new Array(100000).fill(1)); }"
                " catch (e) { a = null; return e.message; } })()"), 200, "out of memory"),
        ])

    @defer.inlineCallbacks
    def test_no_worker(self):
        pool = self.make_pool(workers=0)
        pool.start()
        res = yield pool.run(enginehelp.job(OK), FakeHost())
        self.assertEqual(res.status, 500)
        self.assertEqual(json.loads(res.body)["code"], "PR500-SC-0001")
        yield pool.stop()
        res = yield self.pool.stop()
        res = yield self.run_js(OK)
        self.assertEqual(json.loads(res.body)["code"], "PR500-SC-0001")


class ResponseChecks(PoolCase):
    def test_in_order(self):
        E = "Server Error : "
        return self.check_table([
            (ret("[1]"), 500, E + "not NativeObject"),
            (ret("'str'"), 500, E + "not NativeObject"),
            (ret("undefined"), 500, E + "not NativeObject"),
            (ret("null"), 500, E + "not NativeObject"),
            (ret("{status: '200', headers: {}, body: []}"), 500, E + "response status illegal type."),
            (ret("{headers: {}, body: []}"), 500, E + "response status illegal type."),
            (ret("{status: 1, headers: {}, body: []}"), 500, E + "response status illegal type. status: 1"),
            (ret("{status: 100, headers: {}, body: []}"), 500, E + "response status illegal type. status: 100"),
            (ret("{status: 105, headers: {}, body: []}"), 500, E + "response status illegal type. status: 105"),
            (ret("{status: 199, headers: {}, body: []}"), 500, E + "response status illegal type. status: 199"),
            (ret("{status: 1000, headers: {}, body: []}"), 500, E + "response status illegal type. status: 1000"),
            (ret("{status: 2000, headers: {}, body: []}"), 500, E + "response status illegal type. status: 2000"),
            (ret("{status: 200.5, headers: {}, body: []}"), 500, E + "response status illegal type. status: 200.5"),
            (ret("{status: 200, body: []}"), 500, E + "not headers"),
            (ret("{status: 200, headers: [], body: []}"), 500, E + "not headers"),
            (ret("{status: 200, headers: 'x', body: []}"), 500, E + "not headers"),
            (ret("{status: 200, headers: {100: 'x'}, body: []}"), 500, E + "header key format error"),
            (ret("{status: 200, headers: {'X-A': 1}, body: []}"), 500, E + "header value format error"),
            (ret("{status: 200, headers: {'X-A': 'a\\r\\nSet-Cookie: x'}, body: []}"), 500,
             E + "header value format error"),
            (ret("{status: 200, headers: {'Content-Type': 'not a type'}, body: []}"), 500,
             E + "Response header parsing media type."),
            (ret("{status: 200, headers: {'Content-Type': 'text/plain; charset=no-such'}, body: []}"), 500,
             E + "response charset illegal type."),
            (ret("{status: 200, headers: {}}"), 500, E + "response body undefined forEach."),
            (ret("{status: 200, headers: {}, body: 'abc'}"), 500, E + "response body undefined forEach."),
            (ret("{status: 200, headers: {}, body: [1]}"), 500, E + "response body illegal type."),
            (ret("{status: 200, headers: {}, body: ['a', {}]}"), 500, E + "response body illegal type."),
            # order: the status is checked before the headers, the headers before the body
            (ret("{status: 'x', headers: 1, body: 1}"), 500, E + "response status illegal type."),
            (ret("{status: 200, headers: 1, body: 1}"), 500, E + "not headers"),
            (ret("{status: 200, headers: {'Content-Type': '?'}, body: 1}"), 500,
             E + "Response header parsing media type."),
            # fine
            (ret("{status: 999, headers: {}, body: []}"), 999, ""),
            (ret("{status: 201, headers: {'X-A': 'a' + 'b'}, body: ['x', 'y']}"), 201, "xy"),
            (ret("{status: 200, headers: {}, body: {forEach: function(f){ f('custom'); }}}"), 200, "custom"),
        ])

    @defer.inlineCallbacks
    def test_headers_kept_transfer_encoding_dropped_no_type_added(self):
        res = yield self.run_js(ret("{status: 200, headers: {'X-One': '1', 'Transfer-Encoding': 'chunked',"
                                    " 'x-two': 'zwei'}, body: ['b']}"))
        self.assertEqual(res.headers, [("X-One", "1"), ("x-two", "zwei")])
        self.assertEqual(res.body, b"b")

    @defer.inlineCallbacks
    def test_charset_encodes_strings(self):
        res = yield self.run_js(ret("{status: 200, headers: {'Content-Type': 'text/plain; charset=Shift_JIS'},"
                                    " body: ['日本', '語']}"))
        self.assertEqual(res.body, "日本語".encode("shift_jis"))
        res = yield self.run_js(ret("{status: 200, headers: {'Content-Type': 'text/plain'}, body: ['é\\ud800']}"))
        self.assertEqual(res.body, "é?".encode("utf-8"))

    @defer.inlineCallbacks
    def test_large_body_travels_as_file(self):
        res = yield self.run_js(ret("{status: 200, headers: {}, body: ['x'.repeat(3 * 1024 * 1024)]}"))
        self.assertTrue(res.body_path and res.body_path.startswith(self.tmp))
        with open(res.body_path, "rb") as f:
            self.assertEqual(f.read(), b"x" * (3 * 1024 * 1024))
        res.discard()
        self.assertEqual(self.listdir_tmp(), [])


class RequestObject(PoolCase):
    @defer.inlineCallbacks
    def test_fields(self):
        src = """function(r){ return {status: 200, headers: {}, body: [JSON.stringify({
            method: r.method, host: r.host, port: r.port, portType: typeof r.port, scheme: r.scheme,
            scriptName: r.scriptName, pathInfo: r.pathInfo, queryString: r.queryString,
            headers: r.headers, env: r.env, version: r.jsgi.version,
            input: [typeof r.input.readAll, typeof r.input.readLine, typeof r.input.stream]})]}; }"""
        status, body = yield self.answers(src, method="POST",
                                          headers=[("Host", "example.org:8443"), ("X-Dup", "1"),
                                                   ("x-dup", "2"), ("X-Personium-Box-Schema", "s")])
        self.assertEqual(status, 200)
        got = json.loads(body)
        self.assertEqual(got["method"], "POST")
        self.assertEqual((got["host"], got["port"], got["portType"], got["scheme"]),
                         ("example.org", "8443", "string", "https"))
        self.assertEqual(got["scriptName"], "https://example.org:8443/cell1/box1/svc/hello")
        self.assertEqual(got["pathInfo"], "/cell1/box1/svc/hello")
        self.assertEqual(got["queryString"], "a=1&b=%E3%81%82")
        self.assertEqual(got["env"], {"requestUri": "https://example.org:8443/cell1/box1/svc/hello?a=1&b=%E3%81%82"})
        self.assertEqual(got["version"], [0, 3])
        self.assertEqual(got["input"], ["function"] * 3)
        self.assertEqual(got["headers"], {
            "host": "example.org:8443", "x-dup": "2", "x-personium-box-schema": "s",
            "x-baseurl": "https://example.org:8443/",
            "x-request-uri": "https://example.org:8443/cell1/box1/svc/hello?a=1&b=%E3%81%82"})

    def test_input(self):
        body = "line one\r\nline two\nあ".encode("utf-8")
        return self._input(body=body)

    def test_input_from_file(self):
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write("line one\r\nline two\nあ".encode("utf-8"))
        return self._input(body_path=path)

    @defer.inlineCallbacks
    def _input(self, **kw):
        src = fn("JSON.stringify([r.input.readLine(), r.input.readLine('utf-8'), r.input.readAll(),"
                 " r.input.readLine()])").replace("request", "r")
        status, text = yield self.answers(src, method="POST", **kw)
        self.assertEqual((status, json.loads(text)), (200, ["line one", "line two", "あ", None]))
        src = "function(r){ return {status: 200, headers: {}, body: ['<', r.input.stream(), '>']}; }"
        status, text = yield self.answers(src, method="POST", **kw)
        self.assertEqual(text, "<line one\r\nline two\nあ>")

    def test_query_parse(self):
        return self.check_table([
            (fn("JSON.stringify(_p.util.queryParse('a=1&b=x+y&a=2&c=%E3%81%82&d'))"), 200,
             '{"a":["1","2"],"b":"x y","c":"あ","d":""}'),
            (fn("JSON.stringify(_p.util.queryParse('k=%82%A0', 'Shift_JIS'))"), 200, '{"k":"あ"}'),
            (fn("JSON.stringify(_p.util.queryParse(''))"), 200, "{}"),
        ])


class Globals(PoolCase):
    def test_fresh_scope_and_sloppy_mode(self):
        src = ("function(r){ counter = (typeof counter === 'undefined' ? 0 : counter) + 1; "
               "return {status: 200, headers: {}, body: [String(counter) + ' ' + typeof leaked + ' ' + after]}; }\n"
               "var after = 'ran'; undeclared = 1;")
        return self.check_table([(src, 200, "1 undefined ran"), (src, 200, "1 undefined ran")])

    def test_jsgi_response(self):
        return self.check_table([
            ("function(r){ var res = new JSGIResponse(); res.setResponseData({a: 1}); return res; }",
             200, '{"a":1}'),
            ("function(r){ var res = new JSGIResponse(); res.status = 201; res.headers = {'Content-Type': 'text/plain'};"
             " res.setResponseData('txt'); return res; }", 201, "txt"),
        ])

    @defer.inlineCallbacks
    def test_jsgi_response_type(self):
        res = yield self.run_js("function(r){ var res = new JSGIResponse(); res.setResponseData([1]); return res; }")
        self.assertEqual(res.headers, [("Content-Type", "application/json;charset=utf-8")])

    def test_require(self):
        host = FakeHost({"lib": b"exports.twice = function(x){ return 2 * x; }; libGlobal = 'g';",
                         "loop": "var again = require('loop'); exports.x = 1;",
                         "bad": "exports.x = ;",
                         "nested": "exports.v = require('lib').twice(5);"})
        catch = ("function(r){ var m; try { require(%s); m = 'loaded'; } catch (e) { m = e.message + '|' + e.code; }"
                 " return {status: 200, headers: {}, body: [m]}; }")
        return self.check_table([
            (fn("require('lib').twice(21) + ' ' + libGlobal"), 200, "42 g"),
            (fn("require('nested').v"), 200, "10"),
            (catch % "'missing'", 200, "404 Not Found|404"),
            (catch % "'../../etc/passwd'", 200, "404 Not Found|404"),
            (catch % "'/etc/passwd'", 200, "404 Not Found|404"),
            (catch % "'a/b'", 200, "404 Not Found|404"),
            (catch % "'..'", 200, "404 Not Found|404"),
            (catch % "42", 200, "404 Not Found|404"),
            (catch % "'loop'", 200, "require nesting too deep [loop]|508"),
            ("function(r){ return require('missing'); }", 500, "Server Error : PersoniumEngineException: 404 Not Found"),
            (fn("(function(){ try { require('bad'); } catch (e) { return e.name; } })()"), 200, "SyntaxError"),
        ], host)

    @defer.inlineCallbacks
    def test_require_refused_names_never_reach_the_host(self):
        host = FakeHost()
        yield self.answers("function(r){ try { require('../x'); } catch (e) {} return {status: 200, headers: {},"
                           " body: []}; }", host)
        self.assertEqual(host.calls, [])


class PCalls(PoolCase):
    @defer.inlineCallbacks
    def test_box_api(self):
        host = FakeHost()
        host.files["data/old.txt"] = ("text/plain", "昔".encode("shift_jis"))
        src = r"""function(r){
            var box = _p.localbox(), out = [];
            out.push(box.name, box.schema);
            var col = box.col("data");
            out.push(col.getString("old.txt", "Shift_JIS"));
            col.put("new.txt", "text/plain", "新しい");
            col.put({path: "obj.txt", contentType: "text/plain", data: "o", etag: "*"});
            out.push(col.getString("new.txt"));
            out.push(JSON.stringify(col.getFileList()));
            col.del("old.txt");
            box.mkCol("made");
            out.push(JSON.stringify(box.getColList()));
            col.setProp("k", "v"); out.push(col.getProp("k"));
            try { col.getString("old.txt"); } catch (e) {
                out.push(e.name, e.code, e.message, e instanceof _p.PersoniumException, e instanceof Error); }
            try { box.put({path: "x"}); } catch (e) { out.push(e.code + " " + e.message); }
            var tok = _p.as("serviceSubject").cell().getToken();
            out.push(tok.access_token, tok.token_type);
            var other = _p.as({cellUrl: "https://example.org/c2/", userId: "u", password: "p"}).cell("https://example.org/c2/");
            out.push(other.name);
            try { _p.as({cellUrl: 1}); } catch (e) { out.push(e.code); }
            try { _p.as("client").cell().box("nobox"); } catch (e) { out.push(e.code); }
            return {status: 200, headers: {}, body: [JSON.stringify(out)]};
        }"""
        status, body = yield self.answers(src, host)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body), [
            "box1", "https://app.example/", "昔", "新しい", '["data/new.txt","data/obj.txt","data/old.txt"]',
            '["made"]', "v", "_p.PersoniumException", 404, "Resource not found. [data/old.txt].", True, True,
            "400 Parameter Invalid", "AT", "Bearer", "cell1", 400, 404])
        self.assertEqual(host.files["data/new.txt"], ("text/plain", "新しい".encode("utf-8")))
        ops = [(op, args.get("as"), args.get("cell"), args.get("box"), args.get("path")) for op, args in host.calls]
        self.assertIn(("dav.put", {"as": "client"}, None, "box1", "data/new.txt"), ops)
        self.assertIn(("cell.getToken", {"as": "serviceSubject"}, None, None, None), ops)
        self.assertIn(("cell", {"as": "password", "cellUrl": "https://example.org/c2/", "userId": "u",
                                "password": "p"}, "https://example.org/c2/", None, None), ops)
        put = [a for op, a in host.calls if op == "dav.put" and a["path"] == "data/new.txt"][0]
        self.assertEqual((put["contentType"], put["charset"], put["etag"]), ("text/plain", "UTF-8", "*"))

    def test_paths_cannot_escape(self):
        catch = ("function(r){ try { %s; return {status: 200, headers: {}, body: ['done']}; }"
                 " catch (e) { return {status: 200, headers: {}, body: [e.code + ' ' + e.message]}; } }")
        return self.check_table([
            (catch % "_p.localbox().getString('../x')", 200, "400 Parameter Invalid"),
            (catch % "_p.localbox().col('a/../..').getString('x')", 200, "400 Parameter Invalid"),
            (catch % "_p.localbox().getString('a//b')", 200, "400 Parameter Invalid"),
            (catch % "_p.localbox().getString('')", 200, "400 Parameter Invalid"),
            (catch % "_p.localbox().del('.')", 200, "400 Parameter Invalid"),
        ])

    @defer.inlineCallbacks
    def test_put_a_stream(self):
        host = FakeHost()
        src = ("function(r){ _p.localbox().put('up.bin', 'application/octet-stream', r.input.stream());"
               " return {status: 204, headers: {}, body: []}; }")
        status, _ = yield self.answers(src, host, method="PUT", body=b"\x00\xff binary")
        self.assertEqual(status, 204)
        self.assertEqual(host.files["up.bin"], ("application/octet-stream", b"\x00\xff binary"))
