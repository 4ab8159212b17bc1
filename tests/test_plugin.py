"""The twistd plugin: discovery, options, and the real server end to end."""
import gc
import io
import os
import subprocess
import sys

import treq
from lxml import etree
from twisted.application.service import IServiceMaker
from twisted.internet import defer, reactor
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.trial import unittest
from twisted.web.client import Agent, HTTPConnectionPool

from personium_dav import __main__ as cli
from personium_dav.ops import tap
from personium_dav.config import Config
from .support import realserver


def sourceEnv():
    """Environment for a subprocess that must import the personium_dav under test."""
    import personium_dav

    env = dict(os.environ)
    source = os.path.dirname(os.path.dirname(os.path.abspath(personium_dav.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    return env


class DiscoveryTests(unittest.TestCase):
    """An installed package exposes the plugin to twistd (ARCHITECTURE: packaging)."""

    def test_getPlugins(self):
        makers = [m for m in getPlugins(IServiceMaker) if m.tapname == "personium-dav"]
        self.assertEqual(len(makers), 1)
        self.assertEqual(makers[0].module, "personium_dav.ops.tap")

    def test_twistdHelp(self):
        """Run with the plain environment: only the installed plugin can be found."""
        out = subprocess.run(
            realserver.twistdCommand() + ["--help"], capture_output=True,
            text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("personium-dav", out.stdout)


class OptionsTests(unittest.TestCase):
    def parse(self, *args):
        options = tap.Options()
        options.parseOptions(list(args))
        return options

    def test_defaults(self):
        options = self.parse()
        self.assertEqual(options["listen"], ["tcp:8080:interface=127.0.0.1"])
        self.assertEqual(options["data"], "./personium-data")
        self.assertEqual(options["idle-timeout"], 60)
        self.assertFalse(options["relaxed"])
        self.assertEqual(options.config(), Config())

    def test_listenRepeatable(self):
        options = self.parse("--listen", "tcp:8081", "--listen=unix:/tmp/dav.sock")
        self.assertEqual(options["listen"], ["tcp:8081", "unix:/tmp/dav.sock"])

    def test_limits(self):
        options = self.parse(
            "--max-xml-body", "10", "--max-file-size", "20", "--max-members", "30",
            "--max-depth", "4", "--collection-semantics", "rfc4918", "--relaxed",
            "--idle-timeout", "2.5")
        self.assertEqual(options.config(), Config(
            max_xml_body=10, max_file_size=20, max_members=30, max_depth=4,
            collection_semantics="rfc4918", durable=False, idle_timeout=2.5))

    def test_script_options(self):
        config = self.parse().config()
        self.assertEqual((config.script_workers, config.script_timeout, config.script_memory,
                          config.script_http_allow), (os.cpu_count(), 50.0, 64, ()))
        config = self.parse("--script-workers", "0", "--script-timeout", "2.5",
                            "--script-memory", "128",
                            "--script-http-allow", "api.example:8443, example.org").config()
        self.assertEqual((config.script_workers, config.script_timeout, config.script_memory,
                          config.script_http_allow),
                         (0, 2.5, 128, ("api.example:8443", "example.org")))
        for bad in (("--script-workers", "-1"), ("--script-timeout", "0"),
                    ("--script-memory", "0"), ("--script-http-allow", "a.example:99999"),
                    ("--script-http-allow", "http://x/")):
            self.assertRaises(usage.UsageError, self.parse, *bad)

    def test_badSemantics(self):
        self.assertRaises(usage.UsageError, self.parse, "--collection-semantics", "posix")

    def test_badInteger(self):
        self.assertRaises(usage.UsageError, self.parse, "--max-depth", "many")
        self.assertRaises(usage.UsageError, self.parse, "--max-members", "0")

    def test_makeService(self):
        """One listener per --listen; the default box exists before any binds."""
        from personium_dav.store import provision

        data = self.mktemp()
        options = self.parse("--data", data, "--listen", "tcp:0:interface=127.0.0.1",
                             "--listen", "tcp:0:interface=127.0.0.1")
        self.addCleanup(sys.setswitchinterval, sys.getswitchinterval())
        sys.setswitchinterval(0.005)
        top = tap.makeService(options)
        self.assertEqual(len(list(top)), 2)
        # a computing pool thread gives the GIL back to the reactor within 0.5 ms
        self.assertEqual(sys.getswitchinterval(), tap.SWITCH_INTERVAL)
        self.assertLessEqual(tap.SWITCH_INTERVAL, 0.001)
        top.provision()
        self.assertTrue(top.created)
        self.assertTrue(provision.is_provisioned(data))

    def test_tune_interpreter(self):
        """Once the reactor runs, what start-up made is out of the way of
        every full garbage collection."""
        self.addCleanup(sys.setswitchinterval, sys.getswitchinterval())
        self.addCleanup(gc.unfreeze)
        started = []

        class Reactor:
            callWhenRunning = started.append

        gc.unfreeze()
        tap.tune_interpreter(Reactor())
        self.assertEqual(sys.getswitchinterval(), tap.SWITCH_INTERVAL)
        self.assertEqual(gc.get_freeze_count(), 0)
        for when_running in started:
            when_running()
        self.assertGreater(gc.get_freeze_count(), 10000)

    def test_baseURL(self):
        self.assertEqual(tap.baseURL("tcp:8080:interface=127.0.0.1"),
                         "http://127.0.0.1:8080/")
        self.assertEqual(tap.baseURL("tcp:port=80"), "http://localhost:80/")
        self.assertEqual(tap.baseURL("tcp6:8080:interface=\\:\\:1"), "http://[::1]:8080/")
        self.assertEqual(tap.baseURL("ssl:443:privateKey=k.pem"), "https://localhost:443/")
        self.assertIsNone(tap.baseURL("unix:/tmp/dav.sock"))


class CommandLineTests(unittest.TestCase):
    def setUp(self):
        self.stderr = io.StringIO()
        self.patch(sys, "stderr", self.stderr)

    def test_badNames(self):
        data = self.mktemp()
        for cell, box in [("bad cell", "box"), ("_cell", "box"), ("cell", "b/x"),
                          ("cell", "")]:
            self.assertEqual(cli.main(["box", "create", cell, box, "--data", data]), 2)
        self.assertEqual(self.stderr.getvalue().count("personium-dav: invalid"), 4)
        self.assertFalse(os.path.exists(data))

    def test_missingArguments(self):
        self.assertRaises(SystemExit, cli.main, ["box", "create", "c"])
        self.assertIn("required", self.stderr.getvalue())


class EndToEndTests(unittest.TestCase):
    """The real twistd plugin over real HTTP."""

    def setUp(self):
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(pool.closeCachedConnections)
        self.http = treq.client.HTTPClient(Agent(reactor, pool=pool))

    @defer.inlineCallbacks
    def test_defaultBox(self):
        from personium_dav.store import provision

        data = os.path.abspath(self.mktemp())
        server = yield realserver.RealServer(self, data).start()
        base = server.url + "/cell1/box1"
        self.assertTrue(provision.is_provisioned(data))

        # secure by default (docs/behaviour.md §9): anonymous is refused ...
        response = yield self.http.request("MKCOL", base + "/col")
        self.assertEqual(response.code, 401, (yield response.text()))
        # ... and the first start printed a curl line with an owner token
        import re

        found = re.search(r"curl .*-H 'Authorization: Bearer ([A-Za-z0-9._-]+)' "
                          + re.escape(base + "/"), server.log())
        self.assertIsNotNone(found, server.log())
        auth = {"Authorization": "Bearer " + found.group(1)}

        response = yield self.http.request("MKCOL", base + "/col", headers=auth)
        self.assertEqual(response.code, 201, (yield response.text()))

        response = yield self.http.put(
            base + "/col/a.txt", data=b"hello",
            headers=dict(auth, **{"Content-Type": "text/plain"}))
        yield response.content()
        self.assertEqual(response.code, 201)
        self.assertTrue(response.headers.getRawHeaders("ETag"))

        response = yield self.http.get(base + "/col/a.txt", headers=auth)
        self.assertEqual(response.code, 200)
        self.assertEqual((yield response.content()), b"hello")

        response = yield self.http.request("PROPFIND", base + "/col/",
                                           headers=dict(auth, Depth="1"))
        body = yield response.content()
        self.assertEqual(response.code, 207)
        hrefs = [h.text for h in etree.fromstring(body).iter("{DAV:}href")]
        self.assertIn("/cell1/box1/col/a.txt", hrefs)
        self.assertIn(f"personium-dav: box {server.url}/cell1/box1/", server.log())

    @defer.inlineCallbacks
    def test_boxCreateCommand(self):
        data = os.path.abspath(self.mktemp())
        out = subprocess.run(
            [sys.executable, "-m", "personium_dav", "box", "create", "c2", "b2",
             "--data", data], capture_output=True, text=True, timeout=60,
            env=sourceEnv(), stdin=subprocess.DEVNULL)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("c2/b2", out.stdout)

        url = yield realserver.startServer(self, data)
        response = yield self.http.request("MKCOL", url + "/c2/b2/x",
                                           headers=realserver.ownerHeaders(data))
        self.assertEqual(response.code, 201, (yield response.text()))

    def test_boxCreateBadName(self):
        out = subprocess.run(
            [sys.executable, "-m", "personium_dav", "box", "create", "c 2", "b2",
             "--data", self.mktemp()], capture_output=True, text=True, timeout=60,
            env=sourceEnv(), stdin=subprocess.DEVNULL)
        self.assertEqual(out.returncode, 2)
        self.assertIn("personium-dav:", out.stderr)
