"""``--workers N``: N processes serving one listening socket and one data root."""
import http.client
import os
import re
import time

from twisted.internet import defer, reactor, task, threads
from twisted.python import usage
from twisted.trial import unittest

from personium_dav.ops import tap
from .support import realserver

PROP = ('<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop>'
        '<Z:p%d>v%d</Z:p%d></D:prop></D:set></D:propertyupdate>')


def children(pid):
    """PIDs whose parent is ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


@defer.inlineCallbacks
def waitForChildren(pid, count, timeout=realserver.STARTUP_TIMEOUT):
    """The children of ``pid`` once there are ``count`` of them (or the
    last list seen when ``timeout`` seconds pass)."""
    deadline = time.monotonic() + timeout
    found = children(pid)
    while len(found) < count and time.monotonic() < deadline:
        yield task.deferLater(reactor, realserver.POLL, lambda: None)
        found = children(pid)
    return found


class WorkerOptionsTests(unittest.TestCase):
    def test_default_one(self):
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual(options["workers"], 1)

    def test_tcp_only(self):
        options = tap.Options()
        self.assertRaises(usage.UsageError, options.parseOptions,
                          ["--workers", "2", "--listen", "unix:/tmp/x.sock"])

    def test_positive(self):
        self.assertRaises(usage.UsageError, tap.Options().parseOptions, ["--workers", "0"])


class WorkersTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_two_workers_share_port_and_root(self):
        data = os.path.abspath(self.mktemp())
        server = yield realserver.RealServer(self, data, "--workers", "2").start()
        # the port accepts as soon as the first process has bound it; the
        # second is started a moment later (WorkerPool.startService)
        extra = yield waitForChildren(server.pid, 1)
        self.assertEqual(len(extra), 1, server.log())
        auth = realserver.ownerHeaders(data)

        def call(method, path, body=None, headers=None):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            try:
                conn.request(method, path, body, dict(auth, **(headers or {})))
                r = conn.getresponse()
                return r.status, r.read()
            finally:
                conn.close()

        base = "/cell1/box1/"
        status, _ = yield threads.deferToThread(call, "MKCOL", base + "c")
        self.assertEqual(status, 201)
        # many connections at once, spread over both processes by the kernel
        results = yield defer.gatherResults([
            threads.deferToThread(call, "PUT", base + "c/f%d" % i, b"x%d" % i,
                                  {"Content-Type": "text/plain"}) for i in range(20)
        ] + [
            threads.deferToThread(call, "PROPPATCH", base + "c", PROP % (i, i, i),
                                  {"Content-Type": "application/xml"}) for i in range(20)
        ])
        self.assertEqual(sorted({s for s, _ in results}), [201, 207])
        status, body = yield threads.deferToThread(
            call, "PROPFIND", base + "c", None, {"Depth": "1"})
        self.assertEqual(status, 207)
        self.assertEqual(len(re.findall(rb"<D:response>", body)), 21)
        for i in range(20):  # every PROPPATCH of either process is kept
            self.assertIn(b"v%d<" % i, body)
        yield server.stop()
        for pid in extra:
            self.assertFalse(os.path.exists(f"/proc/{pid}/stat")
                             and open(f"/proc/{pid}/stat").read().split()[2] != "Z",
                             "worker %d still running" % pid)


class SupervisionTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_a_dead_worker_is_restarted_and_its_leftovers_settled(self):
        data = os.path.abspath(self.mktemp())
        server = yield realserver.RealServer(self, data, "--workers", "2").start()
        (worker,) = yield waitForChildren(server.pid, 1)
        claim = yield waitForClaim(data, worker)
        self.assertIsNotNone(claim, server.log())
        # what the worker leaves when it dies: a temporary file of its own
        left = os.path.join(data, ":tmp", claim + ".leftover")
        open(left, "wb").close()
        os.kill(worker, 9)
        deadline = time.monotonic() + realserver.STARTUP_TIMEOUT
        replacement = []
        while not replacement and time.monotonic() < deadline:
            yield task.deferLater(reactor, realserver.POLL, lambda: None)
            replacement = [pid for pid in children(server.pid) if pid != worker]
        self.assertEqual(len(replacement), 1, server.log())
        self.assertIsNotNone((yield waitForClaim(data, replacement[0])), server.log())
        self.assertIn("worker pid %d exited" % worker, server.log())
        self.assertFalse(os.path.exists(left))  # settled once its owner was dead
        yield server.stop()


@defer.inlineCallbacks
def waitForClaim(data, pid):
    """The owner id a process claimed on the data root (its claim file names
    its pid), once it has."""
    directory = os.path.join(data, ":owners")
    deadline = time.monotonic() + realserver.STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        for name in os.listdir(directory):
            try:
                with open(os.path.join(directory, name)) as f:
                    if f.read().split()[1:] == [str(pid)]:
                        return name
            except (OSError, IndexError):
                pass
        yield task.deferLater(reactor, realserver.POLL, lambda: None)
    return None
