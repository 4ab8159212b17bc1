"""The lock table of a box: scopes, the table on disk and its flock, shared by
several server processes, and never reachable by a URL."""
import os

from treq.testing import StubTreq
from twisted.internet import defer
from twisted.trial import unittest

from personium_dav.web.site import makeResource
from personium_dav.store import locks as store
from personium_dav.store.locks import LockTable

from .support.helpers import BOX

from .support.locking import (a_lock, Clock, D, PROPNAME_LOCKS, lockinfo, with_token, LockTestCase)


class LockScopeTests(unittest.TestCase):
    def test_covers(self):
        zero, infinity = a_lock(("a",)), a_lock(("a",), depth="infinity")
        self.assertTrue(zero.covers(("a",)))
        self.assertFalse(zero.covers(("a", "b")))
        self.assertTrue(infinity.covers(["a", "b", "c"]))
        self.assertFalse(infinity.covers(("ab",)))
        self.assertFalse(infinity.covers(()))
        self.assertTrue(a_lock((), depth="infinity").covers(("x", "y")))

    def test_below(self):
        lock = a_lock(("a", "b"))
        self.assertTrue(lock.below(("a",)))
        self.assertTrue(lock.below(("a", "b")))
        self.assertFalse(lock.below(("a", "b"), strict=True))
        self.assertTrue(lock.below(()))
        self.assertFalse(lock.below(("b",)))

    def test_conflicts(self):
        ex, sh = "exclusive", "shared"
        cases = [
            (a_lock(("a",), sh), a_lock(("a",), sh), False),
            (a_lock(("a",), sh), a_lock(("a",), ex), True),
            (a_lock(("a",), ex), a_lock(("a",), sh), True),
            (a_lock(("a",), ex, "infinity"), a_lock(("a", "b"), ex), True),
            (a_lock(("a", "b"), ex), a_lock(("a",), ex, "infinity"), True),
            (a_lock(("a",), ex, "0"), a_lock(("a", "b"), ex), False),  # depth 0: members free
            (a_lock(("a", "b"), ex), a_lock(("a",), ex, "0"), False),
            (a_lock(("a",), ex), a_lock(("b",), ex), False),
        ]
        for held, wanted, expected in cases:
            self.assertEqual(held.conflicts(wanted), expected, (held, wanted))


class LockTableTests(unittest.TestCase):
    def setUp(self):
        self.root = os.path.abspath(self.mktemp())
        self.box = os.path.join(self.root, "cell1", "box1")
        os.makedirs(self.box)
        self.clock = Clock()
        self.table = LockTable(self.root, clock=self.clock)

    def add(self, table, lock):
        with table.hold("cell1", "box1", exclusive=True) as held:
            held.add(lock)

    def test_empty_box(self):
        self.assertEqual(self.table.read("cell1", "box1"), [])
        with self.table.hold("cell1", "box1") as held:
            self.assertEqual(held.locks, [])
        self.assertFalse(os.path.exists(os.path.join(self.box, store.TABLE)))

    def test_written_and_read_back(self):
        lock = a_lock(("a", "日本語.txt"), expires=2000.0)
        self.add(self.table, lock)
        self.assertEqual(self.table.read("cell1", "box1"), [lock])
        other = LockTable(self.root, clock=self.clock)  # another process: its own cache
        self.assertEqual(other.read("cell1", "box1"), [lock])
        self.assertEqual(sorted(os.listdir(self.box)), sorted([store.TABLE_LOCK, store.TABLE]))

    def test_a_shared_hold_cannot_change_the_table(self):
        with self.assertRaises(RuntimeError):
            with self.table.hold("cell1", "box1") as held:
                held.add(a_lock())
        self.assertEqual(self.table.read("cell1", "box1"), [])

    def test_an_exception_writes_nothing(self):
        with self.assertRaises(ZeroDivisionError):
            with self.table.hold("cell1", "box1", exclusive=True) as held:
                held.add(a_lock())
                1 / 0
        self.assertEqual(self.table.read("cell1", "box1"), [])

    def test_exclusive_only_when_asked(self):
        self.add(self.table, a_lock(("a",), expires=2000.0))
        with self.table.hold("cell1", "box1",
                             lambda locks: any(lk.root == ("a",) for lk in locks)) as held:
            self.assertTrue(held.exclusive)
            held.drop(lambda lk: True)
        self.assertEqual(self.table.read("cell1", "box1"), [])
        with self.table.hold("cell1", "box1", lambda locks: bool(locks)) as held:
            self.assertFalse(held.exclusive)

    def test_expired_locks_ignored_then_pruned(self):
        self.add(self.table, a_lock(("old",), expires=1060.0))
        self.clock.now = 1059.9
        self.assertEqual(len(self.table.read("cell1", "box1")), 1)
        self.clock.now = 1060.0
        self.assertEqual(self.table.read("cell1", "box1"), [])
        with open(os.path.join(self.box, store.TABLE), "rb") as f:
            self.assertIn(b'"old"', f.read())  # still on disk until the next change
        self.add(self.table, a_lock(("new",), expires=2000.0))
        with open(os.path.join(self.box, store.TABLE), "rb") as f:
            data = f.read()
        self.assertNotIn(b'"old"', data)
        self.assertIn(b'"new"', data)

    def test_a_leftover_temporary_file_is_ignored(self):
        lock = a_lock(expires=2000.0)
        self.add(self.table, lock)
        # a crash while the next table was being written
        with open(os.path.join(self.box, store.TABLE_TMP), "wb") as f:
            f.write(b'{"format": 1, "locks": [{"tok')
        fresh = LockTable(self.root, clock=self.clock)
        self.assertEqual(fresh.read("cell1", "box1"), [lock])
        second = a_lock(("b",), expires=2000.0)
        self.add(fresh, second)
        self.assertEqual(LockTable(self.root, clock=self.clock).read("cell1", "box1"),
                         [lock, second])
        self.assertFalse(os.path.exists(os.path.join(self.box, store.TABLE_TMP)))

    def test_changes_of_another_table_object_are_seen(self):
        other = LockTable(self.root, clock=self.clock)
        first = a_lock(("a",), expires=2000.0)
        self.add(self.table, first)
        self.assertEqual(other.read("cell1", "box1"), [first])
        with other.hold("cell1", "box1", exclusive=True) as held:
            held.drop(lambda lk: True)
            held.add(a_lock(("b",), expires=2000.0))
        self.assertEqual([lk.root for lk in self.table.read("cell1", "box1")], [("b",)])

    def test_corrupt_table(self):
        for data in (b"not json", b'{"format": 2, "locks": []}', b'{"format": 1}',
                     b'{"format": 1, "locks": [{"token": "x"}]}', b"[]", b"\xff"):
            with open(os.path.join(self.box, store.TABLE), "wb") as f:
                f.write(data)
            with self.assertRaises(store.CorruptLockTable, msg=data):
                LockTable(self.root).read("cell1", "box1")


# -- over HTTP ----------------------------------------------------------------------

class TheTableIsNotAResource(LockTestCase):
    @defer.inlineCallbacks
    def test_never_reachable(self):
        yield self.lock("a.txt")
        names = set(os.listdir(os.path.join(self.data, "cell1", "box1")))
        self.assertLessEqual({store.TABLE, store.TABLE_LOCK}, names)
        for name in (store.TABLE, store.TABLE_LOCK, store.TABLE_TMP, "%3Alocks.json"):
            for method in ("GET", "PROPFIND", "DELETE", "UNLOCK"):
                answer = yield self.request(method, BOX + name, headers={
                    "Depth": "0", "Lock-Token": "<urn:x>"})
                self.assertEqual(answer.code, 404, (name, method, answer.body))
            for method in ("PUT", "MKCOL", "LOCK"):  # they would create it
                answer = yield self.request(method, BOX + name, b"x")
                self.assertError(answer, 403, "PR403-DV-0004")
            answer = yield self.request("COPY", BOX + "a.txt", headers={
                "Destination": BOX + name})
            self.assertError(answer, 403, "PR403-DV-0004")
        answer = yield self.request("PROPFIND", BOX, headers={"Depth": "1"})
        self.assertEqual([h.text for h in answer.xml().iterfind("%sresponse/%shref" % (D, D))],
                         [BOX, BOX + "a.txt", BOX + "col/"])
        with open(os.path.join(self.data, "cell1", "box1", store.TABLE), "rb") as f:
            self.assertIn(b'"a.txt"', f.read())  # untouched


class SharedDataRoot(LockTestCase):
    """Two servers on one data root (as --workers N has): a lock taken
    through one binds writes through the other; a crash's leftover
    temporary table is ignored."""

    def second(self):
        resource = makeResource(self.data, self.config)
        resource.server.store.locks.clock = self.clock
        return StubTreq(resource), resource.server

    @defer.inlineCallbacks
    def through(self, stub, method, path, body=b"", headers=None):
        saved, self.stub = self.stub, stub
        try:
            return (yield self.request(method, BOX + path, body, headers))
        finally:
            self.stub = saved

    @defer.inlineCallbacks
    def test_two_servers(self):
        other, server = self.second()
        self.assertIsNot(server.store.locks, self.server.store.locks)
        lock = yield self.lock("a.txt")
        self.assertLocked((yield self.through(other, "PUT", "a.txt", b"x")), BOX + "a.txt")
        answer = yield self.through(other, "PUT", "a.txt", b"x", with_token(lock.token))
        self.assertEqual(answer.code, 204)
        answer = yield self.through(other, "LOCK", "a.txt", lockinfo("shared"))
        self.assertEqual(answer.code, 423)
        answer = yield self.through(other, "UNLOCK", "a.txt", headers={
            "Lock-Token": "<%s>" % lock.token})
        self.assertEqual(answer.code, 204)
        self.assertEqual((yield self.status("PUT", "a.txt", b"y")), 204)
        answer = yield self.through(other, "LOCK", "col", lockinfo())
        self.assertEqual(answer.code, 200)
        self.assertLocked((yield self.request("DELETE", BOX + "col/m.txt")), BOX + "col/")

    @defer.inlineCallbacks
    def test_a_leftover_temporary_table(self):
        lock = yield self.lock("a.txt")
        box = os.path.join(self.data, "cell1", "box1")
        with open(os.path.join(box, store.TABLE_TMP), "wb") as f:
            f.write(b"{half a table")
        other, _ = self.second()  # a server started after the crash
        self.assertLocked((yield self.through(other, "PUT", "a.txt", b"x")), BOX + "a.txt")
        answer = yield self.through(other, "LOCK", "col", lockinfo())
        self.assertEqual(answer.code, 200, answer.body)
        self.assertFalse(os.path.exists(os.path.join(box, store.TABLE_TMP)))
        self.assertEqual(len(self.server.store.locks.read("cell1", "box1")), 2)
        self.assertEqual((yield self.status("PUT", "a.txt", b"x", with_token(lock.token))), 204)


class RealProcesses(unittest.TestCase):
    """Two ``twistd -n personium-dav`` processes on one data root."""

    timeout = 120

    @defer.inlineCallbacks
    def test_a_lock_binds_the_other_process(self):
        import http.client

        from personium_dav.store import provision
        from .support.realserver import RealServer, ownerHeaders

        data = os.path.abspath(self.mktemp())
        provision.create_box(data, "cell1", "box1")
        first = yield RealServer(self, data, "--relaxed").start()
        second = yield RealServer(self, data, "--relaxed").start()
        owner = ownerHeaders(data)

        def send(server, method, path, body=b"", headers=None):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            try:
                conn.request(method, BOX + path, body, dict(owner, **(headers or {})))
                response = conn.getresponse()
                return response.status, dict(response.getheaders()), response.read()
            finally:
                conn.close()

        self.assertEqual(send(first, "PUT", "doc.txt", b"one")[0], 201)
        status, headers, body = send(first, "LOCK", "doc.txt", lockinfo())
        self.assertEqual(status, 200, body)
        token = headers["Lock-Token"][1:-1]
        status, _, body = send(second, "PUT", "doc.txt", b"two")
        self.assertEqual(status, 423, body)
        self.assertIn(b"lock-token-submitted", body)
        self.assertEqual(send(second, "PUT", "doc.txt", b"two", with_token(token))[0], 204)
        self.assertEqual(send(second, "LOCK", "doc.txt", lockinfo("shared"))[0], 423)
        status, _, body = send(second, "PROPFIND", "doc.txt", PROPNAME_LOCKS, {"Depth": "0"})
        self.assertIn(token.encode(), body)
        self.assertEqual(send(second, "UNLOCK", "doc.txt", b"", {"Lock-Token": "<%s>" % token})[0],
                         204)
        self.assertEqual(send(first, "PUT", "doc.txt", b"three")[0], 204)
        self.assertEqual(send(first, "GET", "doc.txt")[2], b"three")


class TableFlock(LockTestCase):
    """A write holds the box's lock table shared from its check to its
    write: it waits while another process changes the table (a LOCK being
    granted holds it exclusive), and not while one only checks it."""

    def flock(self, mode):
        import fcntl

        fd = os.open(os.path.join(self.data, "cell1", "box1", store.TABLE_LOCK),
                     os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, mode)
        return fd

    @defer.inlineCallbacks
    def test_a_write_waits_for_a_change_of_the_table(self):
        import fcntl

        from twisted.internet import reactor, task

        fd = self.flock(fcntl.LOCK_EX)
        try:
            pending = self.request("PUT", BOX + "a.txt", b"waited")
            yield task.deferLater(reactor, 0.5, lambda: None)
            self.assertFalse(pending.called)
            self.assertEqual((yield self.request("GET", BOX + "a.txt")).body, b"a")
        finally:
            os.close(fd)
        answer = yield pending
        self.assertEqual(answer.code, 204, answer.body)
        self.assertEqual((yield self.request("GET", BOX + "a.txt")).body, b"waited")

    @defer.inlineCallbacks
    def test_writes_share_the_table(self):
        import fcntl

        fd = self.flock(fcntl.LOCK_SH)
        try:
            answer = yield self.request("PUT", BOX + "a.txt", b"x")
            self.assertEqual(answer.code, 204)
            answer = yield self.request("MKCOL", BOX + "c2")
            self.assertEqual(answer.code, 201)
        finally:
            os.close(fd)
