"""Hostile service scripts over real HTTP against the real plugin: each one
fails safely (the answer the contract gives), reaches nothing but ``_p``,
and the server keeps serving the other calls. Then what the pool does when
a client goes away and when no worker can run a call."""
import os
import signal
import socket
import threading
import time

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from personium_dav.engine.pool import SPARE
from personium_dav.store import provision

from .support.dav import SERVICE_MKCOL
from .support.realserver import RealServer, ownerToken
from .support.services import BOX, Client, ServiceServer, routes_xml, text_script

HELLO = text_script('"hello"')
E = "Server Error : "
POLLUTE = r"""function(r){
    Object.prototype.polluted = "yes";
    Object.defineProperty(Object.prototype, "path", {get: function(){ return "../../etc"; },
                                                    set: function(v){}, configurable: true});
    Object.prototype.toJSON = function(){ return {as: {as: "password"}, path: "../../x"}; };
    Array.prototype.push = function(){ throw new Error("push"); };
    JSON.parse = function(){ return {e: null, v: "forged"}; };
    JSON.stringify = function(){ return '{"as":{"as":"client"},"path":"../../etc/passwd"}'; };
    Function.prototype.call = Function.prototype.apply = function(){ throw new Error("call"); };
    Reflect.apply = function(){ throw new Error("apply"); };
    String.prototype.split = function(){ return [".."]; };
    String.prototype.indexOf = function(){ return -1; };
    RegExp.prototype.test = function(){ return true; };
    WeakMap.prototype.get = function(){ return 1; };
    var frozen = [];
    _p.as = function(){ return "mine"; }; frozen[0] = typeof _p.as("client");
    var box = _p.localbox();
    box.getString = function(){ return "forged"; }; frozen[1] = Object.isFrozen(box);
    var required = "none";
    try { require("../../etc/passwd"); } catch (e) { required = e.message; }
    var text = box.col("data").getString("f.txt");
    return {status: 200, headers: {}, body: [[text, required, frozen.join("/")].join(" | ")]};
}"""
ROUTES = [
    ("hello", "hello.js"), ("import", "import.js"), ("dynamic", "dynamic.js"),
    ("globals", "globals.js"), ("eval", "eval.js"), ("this", "this.js"),
    ("pollute", "pollute.js"), ("after", "after.js"), ("passwd", "passwd.js"),
    ("traverse", "traverse.js"), ("evil", "evil.js"), ("inside", "inside.js"),
    ("requireevil", "requireevil.js"),
    ("linked", "linked.js"), ("loop", "loop.js"), ("gigabyte", "gigabyte.js"),
    ("quarter", "quarter.js"), ("recursion", "recursion.js"), ("foreach", "foreach.js"),
    ("spin", "spin.js"),
]
SOURCES = {
    "hello.js": HELLO,
    "import.js": "import * as os from 'os';\nfunction(r){}",
    "dynamic.js": r"""function(r){ var out = "pending";
        import("os").then(function(m){ out = "loaded"; }, function(e){ out = "refused"; });
        return {status: 200, headers: {}, body: {forEach: function(f){ f(out); }}}; }""",
    "globals.js": text_script(
        "[typeof std, typeof os, typeof print, typeof scriptArgs, typeof console, typeof __host,"
        " typeof Packages, typeof java,"
        " Object.getOwnPropertyNames(globalThis).filter(function(n){ return /host|std|^os$/i.test(n); }).length].join()"),
    "eval.js": text_script(
        "eval('typeof __host') + Function('return typeof __host')() + (0, eval)('typeof __host')"
        " + typeof eval('this.__host') + typeof new Function('return globalThis.__host')()"),
    "this.js": text_script(
        "(function(){ try { return Function('return this')().__host('require', '{}'); }"
        " catch (e) { return e.name; } })()"),
    "pollute.js": POLLUTE,
    "after.js": text_script("typeof ({}).polluted + ' ' + typeof [].push + ' ' + JSON.parse('1')"),
    "passwd.js": text_script(
        "(function(){ var out = [];"
        " ['../../etc/passwd', '/etc/passwd', '..', 'a/../../b', 'x\\u0000', '..%2F..%2Fetc%2Fpasswd',"
        " 'std', 'os']"
        ".forEach(function(n){ try { require(n); out.push('loaded'); } catch (e) { out.push(e.message); } });"
        " return out.join(); })()"),
    "traverse.js": text_script(
        "(function(){ var out = [];"
        " ['../../../etc/passwd', 'data/../../x', '/etc/passwd', '%2e%2e/%2e%2e/etc/passwd', ':props.xml']"
        ".forEach(function(p){ try { _p.localbox().getString(p); out.push('read'); }"
        " catch (e) { out.push(e.code); } }); return out.join(); })()"),
    "requireevil.js": text_script(
        "(function(){ try { return require('evil'); } catch (e) { return e.message; } })()"),
    "linked.js": text_script(
        "(function(){ try { return _p.localbox().col('data').getString('link.txt'); }"
        " catch (e) { return e.code + ' ' + e.message; } })()"),
    "loop.js": "function(r){ require('loopa'); }",
    "loopa.js": "exports.a = 1; require('loopb');",
    "loopb.js": "require('loopa');",
    "gigabyte.js": text_script("'x'.repeat(1 << 30).length"),
    "quarter.js": text_script("'x'.repeat(1 << 28).length"),
    "recursion.js": text_script("(function f(n){ return f(n + 1) + 1; })(0)"),
    "foreach.js": "function(r){ return {status: 200, headers: {}, body: {forEach: function(f){ while (true) {} }}}; }",
    "spin.js": "function(r){ while (true) {} }",
}


class Hostile(ServiceServer):
    SERVICES = {"hsvc": (None, ROUTES, SOURCES),
                "tsvc": (None, [("{id}", "echo.js"), ("x/{id}", "echo.js")],
                         {"echo.js": text_script("request.pathInfo")}),
                "lsvc": (None, [("hello", "hello.js")], {"hello.js": HELLO})}

    @classmethod
    def scene(cls):
        owner = cls.owner
        owner.ok(owner.request("MKCOL", BOX + "data"), 201)
        owner.ok(owner.request("PUT", BOX + "data/f.txt", b"the box file",
                               {"Content-Type": "text/plain"}), 201)
        owner.ok(owner.request("PUT", BOX + "data/real.js", HELLO,
                               {"Content-Type": "text/javascript"}), 201)
        # planted on the disk, where no request could put them: symlinks to
        # a file outside the data root and to a box file, in __src and in a box
        src = os.path.join(cls.data, "cell1", "box1", "hsvc", "__src")
        os.symlink("/etc/passwd", os.path.join(src, "evil.js"))
        os.symlink(os.path.join(cls.data, "cell1", "box1", "data", "real.js"),
                   os.path.join(src, "inside.js"))
        os.symlink("/etc/passwd", os.path.join(cls.data, "cell1", "box1", "data", "link.txt"))
        os.symlink(os.path.join(cls.data, "cell1", "box1", "hsvc"),
                   os.path.join(cls.data, "cell1", "box1", "linksvc"))
        # and a service collection whose __src is a symlink to another's
        lsrc = os.path.join(cls.data, "cell1", "box1", "lsvc", "__src")
        os.rename(lsrc, lsrc + ".away")
        os.symlink(src, lsrc)

    def test_no_module_loader_no_host_object(self):
        self.assertTable([
            ("hsvc/import", 500, E + "SyntaxError: Unexpected token '*'"),
            ("hsvc/dynamic", 200, "pending"),
            ("hsvc/globals", 200, ",".join(["undefined"] * 8 + ["0"])),
        ])

    def test_eval_and_function_reach_nothing(self):
        self.assertTable([
            ("hsvc/eval", 200, "undefinedundefinedundefinedundefinedundefined"),
            ("hsvc/this", 200, "TypeError"),
        ])

    def test_prototype_pollution_of_host_objects(self):
        got = self.call("hsvc/pollute")
        self.assertEqual((got.status, got.text),
                         (200, "the box file | 404 Not Found | object/true"), got)
        self.assertAnswer(self.call("hsvc/after"), 200, "undefined function 1", "text/plain")
        self.assertEqual(self.owner.request("GET", BOX + "data/f.txt").body, b"the box file")

    def test_paths_out_of_the_box(self):
        self.assertTable([
            ("hsvc/passwd", 200, ",".join(["404 Not Found"] * 8)),
            ("hsvc/traverse", 200, "400,400,400,404,404"),
        ])

    def test_symlinks_are_never_followed(self):
        self.assertTable([
            ("hsvc/evil", 404, "404 Not Found"),
            ("hsvc/inside", 404, "404 Not Found"),
            ("hsvc/requireevil", 200, "404 Not Found"),
            ("hsvc/linked", 200, "404 Resource not found. [%s/cell1/box1/data/link.txt]." % self.url),
        ])
        got = self.call("linksvc/hello")
        self.assertEqual((got.status, got.json()["code"]), (404, "PR404-DV-0001"))
        self.assertAnswer(self.call("lsvc/hello"), 404, "404 Not Found")
        got = self.owner.request("GET", BOX + "hsvc/__src/evil.js")
        self.assertEqual(got.status, 404)

    def test_segments_no_resource_could_be_named_reach_the_script(self):
        # below a service collection the path is the script's: a segment that
        # is no valid resource name still routes, at any depth
        self.assertTable([
            ("tsvc/a:b*c", 200, "/cell1/box1/tsvc/a:b*c"),
            ("tsvc/x/a%7Cb", 200, "/cell1/box1/tsvc/x/a%7Cb"),  # (pathInfo is not decoded)
            ("tsvc/plain", 200, "/cell1/box1/tsvc/plain"),
        ])

    def test_exhaustion_fails_safely_and_others_are_served(self):
        rows = [("hsvc/loop", 500, E + "PersoniumEngineException: require nesting too deep [loopa]"),
                ("hsvc/gigabyte", 500, E + "RangeError: invalid string length"),
                ("hsvc/quarter", 503, "Script TimeOut"), ("hsvc/recursion", 503, "Script TimeOut"),
                ("hsvc/foreach", 503, "Script TimeOut"), ("hsvc/spin", 503, "Script TimeOut")]
        hellos = []
        stop = threading.Event()

        def others():  # calls arriving all along
            while not stop.is_set():
                hellos.append(self.call("hsvc/hello"))

        def hostile():
            try:
                return [self.call(path) for path, _, _ in rows]
            finally:
                stop.set()

        answers, _ = self.in_threads(hostile, others)
        self.assertEqual([(a.status, a.text) for a in answers], [(s, b) for _, s, b in rows])
        self.assertTrue(hellos)
        self.assertEqual({(a.status, a.text) for a in hellos}, {(200, "hello")})
        self.assertEqual(self.temporaries(), [])


class ClientGoesAway(ServiceServer):
    script_workers = 1
    script_timeout = 60
    SERVICES = {"svc": (None, [("spin", "spin.js"), ("hello", "hello.js")],
                        {"spin.js": SOURCES["spin.js"], "hello.js": HELLO})}

    def test_disconnect_cancels_the_call(self):
        self.assertAnswer(self.call("svc/hello"), 200, "hello", "text/plain")
        # the spare starts a second after the first worker is ready
        self.wait_until(lambda: len(self.worker_pids()) == 1 + SPARE)
        before = set(self.worker_pids())
        self.assertEqual(len(before), 1 + SPARE)
        sock = socket.create_connection(("127.0.0.1", self.server.port))
        sock.sendall(("GET %ssvc/spin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      "Authorization: %s\r\nX-Personium-RequestKey: gone-1\r\n\r\n"
                      % (BOX, self.owner.auth)).encode())
        time.sleep(0.5)  # the call is on the worker now
        sock.close()
        # long before its 60 s limit, the worker running it is killed and replaced
        deadline = time.monotonic() + 30
        while before <= set(self.worker_pids()) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(before - set(self.worker_pids())), 1)
        self.assertAnswer(self.call("svc/hello"), 200, "hello", "text/plain")
        self.assertEqual(self.events_of("gone-1"),
                         [("service.exec", "personium-localcell:/box1/svc/spin", "499", "owner")])


class NoWorker(ServiceServer):
    script_workers = 1
    SERVICES = {"svc": (None, [("hello", "hello.js")], {"hello.js": HELLO})}

    def test_engine_connection_error(self):
        """Workers that die before they are ready (killed here, as a broken
        installation or the OOM killer would): PR500-SC-0001, then service
        again once one starts."""
        stop = threading.Event()

        def killer():
            while not stop.is_set():
                for pid in self.worker_pids():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                time.sleep(0.002)

        thread = threading.Thread(target=killer)
        thread.start()
        try:
            answers = []
            for _ in range(20):
                answers.append(self.call("svc/hello"))
                if answers[-1].status == 500:
                    break
        finally:
            stop.set()
            thread.join()
        got = answers[-1]
        self.assertEqual((got.status, got.header("content-type"), got.json()),
                         (500, "application/json",
                          {"code": "PR500-SC-0001",
                           "message": {"lang": "en", "value": "Engine connection error."}}))
        deadline = time.monotonic() + 30
        while self.call("svc/hello").status != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertAnswer(self.call("svc/hello"), 200, "hello", "text/plain")


class ServerKilled(unittest.TestCase):
    """A server SIGKILLed while it has script workers: the workers end with
    it (their pipe closes), and the next server on the data root removes the
    folder the dead one kept its script bodies in."""

    timeout = 120

    @defer.inlineCallbacks
    def test_workers_end_and_their_folder_is_recovered(self):
        data = os.path.abspath(self.mktemp())
        provision.create_box(data, "cell1", "box1")
        server = yield RealServer(self, data, "--script-workers", "2").start()
        owner = Client(server.url, "Bearer " + ownerToken(data))
        owner.ok(owner.request("MKCOL", BOX + "svc", SERVICE_MKCOL,
                               {"Content-Type": "application/xml"}), 201)
        owner.ok(owner.request("PUT", BOX + "svc/__src/hello.js", HELLO,
                               {"Content-Type": "text/javascript"}), 201)
        owner.ok(owner.request("PROPPATCH", BOX + "svc", routes_xml([("hello", "hello.js")]),
                               {"Content-Type": "application/xml"}), 207)
        owner.ok(owner.request("GET", BOX + "svc/hello"))
        tmp = os.path.join(data, ":tmp")
        (folder,) = [n for n in os.listdir(tmp) if n.endswith(".scripts")]
        with open(os.path.join(tmp, folder, "script-in-flight.body"), "wb") as f:
            f.write(b"a body on its way")
        server.kill()
        yield server.wait(10)

        def workers_of_the_dead():
            found = []
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open("/proc/%s/cmdline" % pid, "rb") as f:
                        if folder.encode() in f.read():
                            found.append(pid)
                except OSError:
                    pass
            return found

        deadline = time.monotonic() + 20
        while workers_of_the_dead() and time.monotonic() < deadline:
            yield task.deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(workers_of_the_dead(), [])
        self.assertIn(folder, os.listdir(tmp))
        server = yield RealServer(self, data).start()
        self.assertNotIn(folder, os.listdir(tmp))
        owner = Client(server.url, owner.auth)
        self.assertEqual(owner.request("GET", BOX + "svc/hello").body, b"hello")
