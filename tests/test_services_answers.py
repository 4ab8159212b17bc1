"""Service calls over real HTTP against the real plugin, its workers really
spawned: how a call is routed and authorized, every error answer of a call,
how a script is evaluated, the request object it gets, the checks of what it
returns, require and JSGIResponse (docs/services.md)."""
import os

from personium_dav.engine.pool import SPARE

from .support.services import BOX, ServiceServer, basic, text_script

HELLO = 'function(request){ return {status: 200, headers: {"Content-Type": "text/html"}, body: ["hello"]}; }'
ECHO = r"""function(r){
    var body = r.input.readAll();
    var out = {method: r.method, host: r.host, port: r.port, scheme: r.scheme,
               scriptName: r.scriptName, pathInfo: r.pathInfo, queryString: r.queryString,
               headers: r.headers, env: r.env, jsgi: r.jsgi, body: body,
               typeofPort: typeof r.port};
    return {status: 200, headers: {"Content-Type": "application/json"}, body: [JSON.stringify(out)]};
}"""
LINES = r"""function(r){
    var lines = [], line;
    while ((line = r.input.readLine()) !== null) lines.push(line);
    return {status: 200, headers: {"Content-Type": "application/json"}, body: [JSON.stringify(lines)]};
}"""
SIZE = r"""function(r){ return {status: 200, headers: {}, body: [String(r.input.readAll().length)]}; }"""
STREAM_BACK = r"""function(r){ return {status: 201, headers: {"Content-Type": "application/octet-stream"},
                                       body: [r.input.stream()]}; }"""
# each case of what a script may return, selected by the last path segment
CHECKS = r"""function(r){
    var n = r.pathInfo.split("/").pop();
    var cases = {
        array: [1], string: "str", undef: undefined,
        strstatus: {status: "200", headers: {}, body: []},
        s1: {status: 1, headers: {}, body: []}, s100: {status: 100, headers: {}, body: []},
        s105: {status: 105, headers: {}, body: []}, s199: {status: 199, headers: {}, body: []},
        s1000: {status: 1000, headers: {}, body: []}, s2000: {status: 2000, headers: {}, body: []},
        s999: {status: 999, headers: {}, body: ["nines"]},
        noheaders: {status: 200, body: []}, arrayheaders: {status: 200, headers: [], body: []},
        indexkey: {status: 200, headers: {100: "x"}, body: []},
        numvalue: {status: 200, headers: {"X-A": 1}, body: []},
        concat: {status: 200, headers: {"X-A": "a" + String(1 + 1)}, body: ["ok"]},
        badtype: {status: 200, headers: {"Content-Type": "not a type"}, body: []},
        badcharset: {status: 200, headers: {"Content-Type": "text/plain; charset=nonesuch"}, body: []},
        nobody: {status: 200, headers: {}},
        noforeach: {status: 200, headers: {}, body: "text"},
        badpart: {status: 200, headers: {}, body: [1]},
        te: {status: 200, headers: {"Transfer-Encoding": "chunked", "Content-Length": "99", "X-A": "b"}, body: ["x"]},
        notype: {status: 200, headers: {}, body: ["plain"]},
        sjis: {status: 200, headers: {"Content-Type": "text/plain; charset=Shift_JIS"}, body: ["\u65e5\u672c"]},
        s404: {status: 404, headers: {"Content-Type": "text/plain"}, body: ["mine"]},
        big: {status: 200, headers: {"Content-Type": "text/plain"}, body: ["0123456789abcdef".repeat(131072)]}
    };
    return cases[n];
}"""
STATE = r"""function(r){
    var seen = typeof leftover;
    leftover = 1;
    counter = (typeof counter === "number" ? counter : 0) + 1;
    var sloppy = (function(){ return this === undefined; })() ? "strict" : "sloppy";
    return {status: 200, headers: {}, body: [[seen, counter, after, sloppy, typeof Object.prototype.polluted].join(" ")]};
}
var after = "ran";
Object.prototype.polluted = (Object.prototype.polluted || 0) + 1;"""
REQUIRE = r"""function(r){
    var lib = require("lib"), missing;
    try { require("nope"); } catch (e) { missing = e.message; }
    return {status: 200, headers: {}, body: [lib.twice(21) + " " + lib.calls() + " " + missing]};
}"""
LIB = "var n = 0; exports.twice = function(x){ n++; return x * 2; }; exports.calls = function(){ return n; };"
JSGI = r"""function(r){ var res = new JSGIResponse(); res.setResponseData({a: 1}); return res; }"""
CATCH = r"""function(r){
    var out = [];
    try { (function f(){ f(); })(); } catch (e) { out.push(e.name); }
    try { var a = []; while (true) a.push(new Array(100000).fill(1)); } catch (e) { a = null; out.push(e.message); }
    return {status: 200, headers: {}, body: [out.join()]};
}"""

ROUTES = [
    # the route table of the contract, in this order
    ("aaa", "r1.js"), ("aaa/BBB", "r2.js"), (r"{id: .\d+}/BBB", "r3.js"), ("{id}/BBB", "r4.js"),
    ("aaa/{id}/view", "r5.js"),
    ("hello", "hello.js"), ("missing", "absent.js"), ("echo/{rest: .*}", "echo.js"),
    ("echo", "echo.js"), ("lines", "lines.js"), ("size", "size.js"), ("stream", "stream.js"),
    ("syntax", "syntax.js"), ("empty", "empty.js"), ("comment", "comment.js"),
    ("notfn", "notfn.js"), ("throw", "throw.js"), ("throwplain", "throwplain.js"),
    ("after", "after.js"), ("undefinedfn", "undefinedfn.js"),
    ("timeout", "loop.js"), ("stack", "stack.js"), ("memory", "memory.js"),
    ("catch", "catch.js"), ("check/{case}", "checks.js"), ("state", "state.js"),
    ("require", "require.js"), ("jsgi", "jsgi.js"), ("utf8", "utf8.js"),
    ("changing", "changing.js"),
]
SOURCES = {
    "hello.js": HELLO, "echo.js": ECHO, "lines.js": LINES, "size.js": SIZE,
    "stream.js": STREAM_BACK,
    "syntax.js": "function(r) { return {", "empty.js": "", "comment.js": "// only a comment",
    "notfn.js": "42", "throw.js": "function(r){ throw new Error('boom'); }",
    "throwplain.js": "function(r){ throw 'plain'; }",
    "after.js": "function(r){ return 1; }\nthrow new TypeError('after');",
    "undefinedfn.js": "function(r){ undefinedFunction(); }",
    "loop.js": "function(r){ while (true) {} }",
    "stack.js": "function(r){ function f(){ return f() + 1; } return f(); }",
    "memory.js": "function(r){ var a = []; while (true) a.push(new Array(100000).fill(1)); }",
    "catch.js": CATCH, "checks.js": CHECKS, "state.js": STATE, "require.js": REQUIRE,
    "lib.js": LIB, "jsgi.js": JSGI,
    "utf8.js": text_script('"\u3053\u3093\u306b\u3061\u306f"'),
    "changing.js": text_script('"v1"'),
}
for _n in range(1, 6):
    SOURCES["r%d.js" % _n] = text_script('"route %d"' % _n)
E = "Server Error : "


class Calls(ServiceServer):
    """Routing, methods, overrides, the privilege, the error answers."""

    SERVICES = {"svc": (None, ROUTES, SOURCES), "nosvc": (None, None, {"hello.js": HELLO})}
    ACCOUNTS = {"cell1": {"reader": ("reader-Pass-1", ["readers"]),
                          "runner": ("runner-Pass-1", ["runners"]),
                          "chief": ("chief-Pass-1", ["chiefs"])}}

    @classmethod
    def scene(cls):
        # read and write on the box do not give exec; exec and all do
        cls.grant(BOX, ("readers", ("read", "write")), ("chiefs", ("all",)))
        cls.grant(BOX + "svc", ("runners", ("exec",)))

    def test_routes_in_document_order(self):
        self.assertTable([
            ("svc/aaa", 200, "route 1"), ("svc/aaa/BBB", 200, "route 2"),
            ("svc/1234/BBB", 200, "route 3"), ("svc/12aa/BBB", 200, "route 4"),
            ("svc/aaa/1234/view", 200, "route 5"), ("svc/aaa/1234/edit", 404, "404 Not Found"),
        ])

    def test_error_answers(self):
        self.assertTable([
            ("nosvc/hello", 404, "404 Not Found (Service property invalid) "),
            ("svc/nosuchroute", 404, "404 Not Found"),
            ("svc/missing", 404, "404 Not Found"),
            ("svc/syntax", 500, E + "SyntaxError: invalid property name"),
            ("svc/empty", 500, E + "SyntaxError: unexpected token in expression: ''"),
            ("svc/comment", 500, E + "SyntaxError: unexpected token in expression: ''"),
            ("svc/notfn", 500, "Server Error"),
            ("svc/throw", 500, E + "Error: boom"),
            ("svc/throwplain", 500, E + "plain"),
            ("svc/after", 500, E + "TypeError: after"),
            ("svc/undefinedfn", 500, E + "ReferenceError: undefinedFunction is not defined"),
        ])
        got = self.call("svc/throw")
        self.assertEqual(got.header("content-type"), "text/html")

    def test_limits_answer_script_timeout(self):
        """Time, stack and memory: 503 Script TimeOut; the others keep being served."""
        results = self.in_threads(lambda: self.call("svc/timeout"), lambda: self.call("svc/stack"),
                                  lambda: self.call("svc/memory"))
        for got in results:
            self.assertAnswer(got, 503, "Script TimeOut")
        self.assertAnswer(self.call("svc/hello"), 200, "hello")
        # a script may catch the stack and memory errors, as QuickJS lets it
        self.assertAnswer(self.call("svc/catch"), 200, "RangeError,out of memory", None)

    def test_methods(self):
        for method in ("GET", "POST", "PUT", "DELETE"):
            got = self.call("svc/echo", method, b"body of " + method.encode())
            self.assertEqual(got.status, 200, got)
            self.assertEqual((got.json()["method"], got.json()["body"]),
                             (method, "body of " + method))
        get = self.call("svc/hello")
        head = self.call("svc/hello", "HEAD")
        self.assertEqual((head.status, head.body, head.header("content-length")),
                         (200, b"", get.header("content-length")))
        for method in ("PROPFIND", "MKCOL", "PATCH", "COPY"):
            got = self.call("svc/hello", method)
            self.assertEqual(got.status, 405, got)
            self.assertEqual(got.json()["code"], "PR405-MC-0001")
            self.assertEqual(got.header("allow"), "OPTIONS, GET, HEAD, POST, PUT, DELETE")

    def test_method_override_applies_first(self):
        got = self.call("svc/echo", "POST", b"x", {"X-HTTP-Method-Override": "DELETE"})
        self.assertEqual(got.json()["method"], "DELETE")
        got = self.call("svc/echo", "POST", b"", {"X-HTTP-Method-Override": "PROPFIND"})
        self.assertEqual(got.status, 405)

    def test_exec_privilege(self):
        got = self.call("svc/hello", auth=None)
        self.assertEqual((got.status, got.json()["code"]), (401, "PR401-AU-0001"))
        self.assertEqual(len(got.headers_all("www-authenticate")), 2)
        got = self.call("svc/hello", auth=basic("reader", "reader-Pass-1"))
        self.assertEqual((got.status, got.json()["code"]), (403, "PR403-AU-0002"))
        self.assertAnswer(self.call("svc/hello", auth=basic("runner", "runner-Pass-1")), 200, "hello")
        self.assertAnswer(self.call("svc/hello", auth=basic("chief", "chief-Pass-1")), 200, "hello")
        # exec is on the service collection: the sources stay unreadable to a runner
        got = self.owner.request("GET", BOX + "svc/__src/hello.js",
                                 auth=basic("runner", "runner-Pass-1"))
        self.assertEqual(got.status, 403)

    def test_event_log(self):
        got = self.call("svc/hello", headers={"X-Personium-RequestKey": "exec-key-1"})
        self.assertEqual(got.status, 200)
        got = self.call("svc/throw", headers={"X-Personium-RequestKey": "exec-key-2"})
        self.assertEqual(got.status, 500)
        self.assertEqual(self.events_of("exec-key-1"),
                         [("service.exec", "personium-localcell:/box1/svc/hello", "200", "owner")])
        self.assertEqual(self.events_of("exec-key-2"),
                         [("service.exec", "personium-localcell:/box1/svc/throw", "500", "owner")])

    def test_a_new_source_is_seen_by_the_next_call(self):
        self.assertAnswer(self.call("svc/changing"), 200, "v1", "text/plain")
        for version in ("v2", "v3"):
            self.put_source("svc", "changing.js", text_script('"%s"' % version))
            self.assertAnswer(self.call("svc/changing"), 200, version, "text/plain")
        self.owner.request("DELETE", BOX + "svc/__src/changing.js")
        self.assertAnswer(self.call("svc/changing"), 404, "404 Not Found")
        self.put_source("svc", "changing.js", text_script('"v1"'))

    def test_the_source_is_utf8(self):
        got = self.call("svc/utf8")
        self.assertEqual(got.body, "\u3053\u3093\u306b\u3061\u306f".encode("utf-8"))


class Evaluation(ServiceServer):
    """Evaluation, the request object, what a script returns, require."""

    script_workers = 1  # every call on the same worker: nothing may survive
    SERVICES = {"svc": (None, ROUTES, SOURCES)}

    def test_fresh_global_scope_per_call(self):
        # statements after the function run on every call, in sloppy mode;
        # an undeclared assignment makes a global that dies with the call
        for _ in range(3):
            self.assertAnswer(self.call("svc/state"), 200, "undefined 1 ran sloppy number", None)

    def test_request_object(self):
        got = self.call("svc/echo/a%20b/c?x=1&y=%E3%81%82", "POST", b"the body",
                        {"X-Custom": "one", "Content-Type": "text/plain",
                         "X-Personium-RequestKey": "req-key-1"})
        r = got.json()
        base = self.url + BOX + "svc/echo/a%20b/c"
        self.assertEqual((r["method"], r["host"], r["port"], r["typeofPort"], r["scheme"]),
                         ("POST", "127.0.0.1", str(self.server.port), "string", "http"))
        self.assertEqual(r["scriptName"], base)
        self.assertEqual(r["pathInfo"], BOX + "svc/echo/a%20b/c")
        self.assertEqual(r["queryString"], "x=1&y=%E3%81%82")
        self.assertEqual(r["env"], {"requestUri": base + "?x=1&y=%E3%81%82"})
        self.assertEqual(r["jsgi"]["version"], [0, 3])
        self.assertEqual(r["body"], "the body")
        headers = r["headers"]
        self.assertEqual((headers["x-custom"], headers["content-type"]), ("one", "text/plain"))
        self.assertEqual(headers["x-baseurl"], self.url + "/")
        self.assertEqual(headers["x-request-uri"], base + "?x=1&y=%E3%81%82")
        self.assertEqual(headers["x-personium-requestkey"], "req-key-1")
        self.assertEqual(headers["x-personium-fs-path"], "personium-localcell:/box1/svc")
        self.assertEqual(headers["x-personium-box-schema"], "")
        self.assertTrue(headers["x-personium-fs-routing-id"])
        for value in headers.values():
            self.assertNotIn(self.data, value)  # never a path of the disk
        self.assertTrue(all(k == k.lower() for k in headers))
        got = self.call("svc/echo")
        self.assertEqual((got.json()["queryString"], got.json()["body"]), ("", ""))

    def test_request_body(self):
        got = self.call("svc/lines", "POST", b"one\r\ntwo\nthree")
        self.assertEqual(got.json(), ["one", "two", "three"])
        # a PUT body streams to a file first: a large one reaches the script whole
        big = os.urandom(3 * 1024 * 1024)
        self.assertAnswer(self.call("svc/size", "PUT", b"x" * len(big)), 200, str(len(big)), None)
        got = self.call("svc/stream", "PUT", big)
        self.assertEqual((got.status, got.body == big), (201, True))
        # so does a POST body, past --max-xml-body (1 MiB), as any body of a call
        self.assertAnswer(self.call("svc/size", "POST", b"x" * len(big)), 200, str(len(big)), None)
        self.assertEqual(self.temporaries(), [])

    def test_checks_of_what_a_script_returns(self):
        self.assertTable([
            ("svc/check/array", 500, E + "not NativeObject"),
            ("svc/check/string", 500, E + "not NativeObject"),
            ("svc/check/undef", 500, E + "not NativeObject"),
            ("svc/check/strstatus", 500, E + "response status illegal type."),
            ("svc/check/s1", 500, E + "response status illegal type. status: 1"),
            ("svc/check/s100", 500, E + "response status illegal type. status: 100"),
            ("svc/check/s105", 500, E + "response status illegal type. status: 105"),
            ("svc/check/s199", 500, E + "response status illegal type. status: 199"),
            ("svc/check/s1000", 500, E + "response status illegal type. status: 1000"),
            ("svc/check/s2000", 500, E + "response status illegal type. status: 2000"),
            ("svc/check/noheaders", 500, E + "not headers"),
            ("svc/check/arrayheaders", 500, E + "not headers"),
            ("svc/check/indexkey", 500, E + "header key format error"),
            ("svc/check/numvalue", 500, E + "header value format error"),
            ("svc/check/badtype", 500, E + "Response header parsing media type."),
            ("svc/check/badcharset", 500, E + "response charset illegal type."),
            ("svc/check/nobody", 500, E + "response body undefined forEach."),
            ("svc/check/noforeach", 500, E + "response body undefined forEach."),
            ("svc/check/badpart", 500, E + "response body illegal type."),
            ("svc/check/s404", 404, "mine"),
            ("svc/check/s999", 999, "nines"),
            ("svc/check/concat", 200, "ok"),
        ])
        got = self.call("svc/check/concat")
        self.assertEqual(got.header("x-a"), "a2")

    def test_headers_and_bodies_as_returned(self):
        got = self.call("svc/check/te")
        self.assertEqual((got.status, got.body, got.header("x-a")), (200, b"x", "b"))
        self.assertIsNone(got.header("transfer-encoding"))
        self.assertEqual(got.header("content-length"), "1")
        got = self.call("svc/check/notype")
        self.assertEqual((got.body, got.header("content-type")), (b"plain", None))
        got = self.call("svc/check/sjis")
        self.assertEqual(got.body, "\u65e5\u672c".encode("shift_jis"))
        got = self.call("svc/check/big")  # 2 MiB: through a file of the worker
        self.assertEqual((got.status, len(got.body)), (200, 2 * 1024 * 1024))
        self.assertEqual(got.body[:32], b"0123456789abcdef" * 2)
        head = self.call("svc/check/big", "HEAD")
        self.assertEqual((head.body, head.header("content-length")), (b"", str(2 * 1024 * 1024)))
        self.assertEqual(self.temporaries(), [])

    def test_require_and_jsgiresponse(self):
        self.assertAnswer(self.call("svc/require"), 200, "42 1 404 Not Found", None)
        got = self.call("svc/jsgi")
        self.assertEqual((got.status, got.header("content-type"), got.json()),
                         (200, "application/json;charset=utf-8", {"a": 1}))


class TwoProcesses(ServiceServer):
    """--workers 2: each server process has a pool of its own."""

    script_workers = 1
    SERVICES = {"svc": (None, [("hello", "hello.js")], {"hello.js": HELLO})}

    @classmethod
    def server_args(cls):
        return super().server_args() + ("--workers", "2")

    def test_every_process_runs_its_own_workers(self):
        for _ in range(20):  # fresh connections: the kernel spreads them
            self.assertAnswer(self.call("svc/hello"), 200, "hello")
        servers = {self.server.pid} | set(self.children_of(self.server.pid, b"personium_dav.ops.worker"))
        self.assertEqual(len(servers), 2)

        def workers_by_pid():
            return {pid: parent for parent in servers
                    for pid in self.children_of(parent, b"personium_dav.engine.worker")}

        # each pool's spare starts a second after its first worker
        self.wait_until(lambda: all(list(workers_by_pid().values()).count(p) in (0, 1 + SPARE)
                                    for p in servers))
        workers = workers_by_pid()
        self.assertTrue(workers)
        parents = list(workers.values())
        self.assertLessEqual(set(parents), servers)
        for parent in set(parents):  # a pool of its own: --script-workers 1 and the spare
            self.assertEqual(parents.count(parent), 1 + SPARE)
