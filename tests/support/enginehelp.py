"""Shared by tests/test_engine_*: an in-memory host standing in for the box
API, and a test case that runs scripts on a real pool of worker processes.

Each test starts its own pool and stops it (trial wants a clean reactor
after every test), so the tests that only need answers run many scripts
per test method to keep the number of cold starts small.
"""
import os
import shutil
import tempfile

from twisted.internet import defer, reactor
from twisted.trial import unittest

from personium_dav.engine import HostError, Job, ScriptPool

BASE = "https://example.org:8443/"
URL = BASE + "cell1/box1/svc/hello?a=1&b=%E3%81%82"


def job(source, method="GET", url=URL, headers=None, body=b"", body_path=None, name="test.js"):
    return Job(source=source, name=name, method=method, base_url=BASE, url=url,
               path_info="/cell1/box1/svc/hello", headers=headers or {"Host": "example.org:8443"},
               body=body, body_path=body_path)


def fn(body_js, status="200", ctype="text/plain"):
    """A script answering ``body_js`` (a JS expression) as text."""
    return ('function(request){ return {status: %s, headers: {"Content-Type": "%s"}, '
            'body: [String(%s)]}; }' % (status, ctype, body_js))


class FakeHost:
    """A box in memory: files, collections, properties; every call logged."""

    def __init__(self, modules=None):
        self.modules = dict(modules or {})
        self.files = {}  # path -> (content type, bytes)
        self.cols = {""}
        self.props = {}
        self.calls = []

    def call(self, op, args):
        self.calls.append((op, args))
        if op == "require":
            if args["name"] in self.modules:
                return self.modules[args["name"]]
            raise HostError(404, "not found")
        if op == "cell":
            return {"name": "cell1", "url": "https://example.org:8443/cell1/"}
        if op == "cell.getToken":
            return {"access_token": "AT", "expires_in": 3600, "refresh_token": "RT",
                    "refresh_token_expires_in": 86400, "token_type": "Bearer"}
        if op == "box":
            if args["box"] not in (None, "box1"):
                raise HostError(404, "Box not found")
            return {"name": "box1", "schema": "https://app.example/"}
        path = args.get("path")
        if op == "dav.getString":
            if path not in self.files:
                raise HostError(404, "Resource not found. [%s]." % path)
            return self.files[path][1]
        if op == "dav.put":
            self.files[path] = (args["contentType"], args["data"])
            return None
        if op == "dav.del":
            if path not in self.files:
                raise HostError(404, "not found")
            del self.files[path]
            return None
        if op == "dav.mkCol":
            self.cols.add(path)
            return None
        if op == "dav.getFileList":
            return sorted(p for p in self.files if p.rpartition("/")[0] == path)
        if op == "dav.getColList":
            return sorted(p for p in self.cols if p and p.rpartition("/")[0] == path)
        if op == "dav.setProp":
            self.props[(path, args["key"])] = args["value"]
            return None
        if op == "dav.getProp":
            return self.props.get((path, args["key"]), "")
        raise HostError(400, "unknown op " + op)


class SlowHost(FakeHost):
    """Answers ``dav.getString`` after ``delay`` seconds (a Deferred that
    counts its cancellations); the other calls at once."""

    def __init__(self, delay):
        super().__init__()
        self.delay = delay
        self.cancelled = 0

    def call(self, op, args):
        if op != "dav.getString":
            return super().call(op, args)
        self.calls.append((op, args))
        answer = self.files.get(args["path"], ("", b"missing"))[1]
        timer = None

        def cancel(_):
            self.cancelled += 1
            timer.cancel()

        d = defer.Deferred(cancel)
        timer = reactor.callLater(self.delay, d.callback, answer)
        return d


class PoolCase(unittest.TestCase):
    """A pool per test: ``workers`` workers, ``script_timeout`` seconds, 64 MiB."""

    workers = 1
    script_timeout = 2.0
    memory = 64
    http_allow = ()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="engine-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.pool = self.make_pool()
        self.pool.start()
        self.addCleanup(self.pool.stop)

    def make_pool(self, **kw):
        args = dict(workers=self.workers, timeout=self.script_timeout, memory_mib=self.memory,
                    tmp_dir=self.tmp, http_allow=self.http_allow)
        args.update(kw)
        return ScriptPool(reactor=reactor, **args)

    def run_js(self, source, host=None, **kw):
        return self.pool.run(job(source, **kw), host or FakeHost())

    @defer.inlineCallbacks
    def answers(self, source, host=None, **kw):
        """-> (status, body text) of one script."""
        res = yield self.run_js(source, host, **kw)
        body = res.body
        if res.body_path:
            with open(res.body_path, "rb") as f:
                body = f.read()
            res.discard()
        return res.status, body.decode("utf-8", "replace")

    @defer.inlineCallbacks
    def check_table(self, table, host=None):
        """``table``: (source, status, body) rows; all are checked, every
        mismatch reported at once."""
        wrong = []
        for source, status, body in table:
            got = yield self.answers(source, host)
            if got != (status, body):
                wrong.append("%r\n   -> %r, expected %r" % (source[:120], got, (status, body)))
        if wrong:
            self.fail("\n".join(wrong))

    def listdir_tmp(self):
        return sorted(os.listdir(self.tmp))
