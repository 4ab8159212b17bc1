"""A box's usage and quota: the running total kept by every write of the box
API (checked against a recount), the operator's ``box quota`` command, 507
``PR507-DV-0001`` with nothing written, the RFC 4331 quota properties, and
no lost update when several processes write one box at once."""
import multiprocessing
import os
import subprocess
import sys

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from personium_dav.auth.privileges import AclPolicy, Principal
from personium_dav.config import Config
from personium_dav.store import layout, provision
from personium_dav.store.box import Caller, Store
from personium_dav.store.usage import QUOTA, USAGE, Usage, file_bytes, parse_size
from .support.helpers import BOX, DavTestCase
from .support.realserver import cliEnv

OWNER = Caller(Principal(owner=True))
QUOTA_PROPS = (b'<D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/>'
               b'<D:quota-used-bytes/></D:prop></D:propfind>')
MESSAGE = "The quota of the box would be exceeded."


def quota_cli(*args):
    return subprocess.run([sys.executable, "-m", "personium_dav", "box", "quota", *args],
                          capture_output=True, text=True, timeout=60, env=cliEnv())


class ParseSizeTests(SynchronousTestCase):
    def test_sizes(self):
        for text, size in [("123", 123), ("10G", 10 * 1024 ** 3), ("10g", 10 * 1024 ** 3),
                           ("500M", 500 * 1024 ** 2), ("500MiB", 500 * 1024 ** 2),
                           ("1.5K", 1536), ("2T", 2 * 1024 ** 4), ("1KB", 1024)]:
            self.assertEqual(parse_size(text), size, text)

    def test_no_quota(self):
        for text in ("0", "none", "None", "0G", "0.0"):
            self.assertIsNone(parse_size(text), text)

    def test_bad(self):
        for text in ("", "-1", "10X", "1e9", "G", "1.2.3", "9" * 19, "１０G", "10 G B"):
            self.assertRaises(ValueError, parse_size, text)


class UsageFileTests(SynchronousTestCase):
    """The record itself: missing, pending (a writer died), garbage."""

    def setUp(self):
        self.box = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.box, "sub", ":tmpish"))
        for path, size in (("a", 10), ("sub/b", 5), ("sub/:props.xml", 99),
                           ("sub/:tmpish/c", 7)):
            with open(os.path.join(self.box, path), "wb") as f:
                f.write(b"x" * size)
        os.symlink("/etc/passwd", os.path.join(self.box, "link"))
        self.usage = Usage(self.box)

    def record(self, raw):
        with open(os.path.join(self.box, USAGE), "wb") as f:
            f.write(raw)

    def test_counts_member_files_only(self):
        self.assertEqual(file_bytes(self.box), 15)
        self.assertEqual(self.usage.used(), 15)

    def test_pending_record_is_recounted(self):
        self.record(b"999 pending\n")
        with self.usage.change() as held:
            self.assertEqual(held.used, 15)
        self.assertEqual(self.usage.used(), 15)

    def test_garbage_record_is_recounted(self):
        for raw in (b"", b"abc", b"1 2 3", b"12 later"):
            self.record(raw)
            with self.usage.change() as held:
                self.assertEqual(held.used, 15, raw)

    def test_failed_change_leaves_mark(self):
        self.usage.used()
        with self.assertRaises(OSError):
            with self.usage.change() as held, held.charge(100):
                raise OSError("disk trouble")
        with open(os.path.join(self.box, USAGE), "rb") as f:
            self.assertIn(b"pending", f.read())
        self.assertEqual(self.usage.recount(), 15)

    def test_quota_file(self):
        self.assertIsNone(self.usage.quota())
        self.usage.set_quota(2048)
        self.assertEqual(self.usage.quota(), 2048)
        self.assertFalse(os.path.exists(os.path.join(self.box, ":quota.tmp")))
        self.usage.set_quota(None)
        self.assertIsNone(self.usage.quota())
        self.usage.set_quota(None)  # removing twice is fine
        for name in (USAGE, QUOTA):
            self.assertTrue(layout.is_bookkeeping(name) and ":" in name)


def _writer(root, worker, rounds):
    """A separate process writing files into the one box (as a second
    server process would)."""
    store = Store(root, Config(durable=False), AclPolicy())
    box = store.box("cell1", "box1")
    for i in range(rounds):
        name = "w%d-%d" % (worker, i)
        box.put(OWNER, [name], b"x" * (i + worker + 1))
        if i % 3 == 0:
            box.put(OWNER, [name], b"y" * 2)  # overwrite: shrinks
        if i % 5 == 0:
            box.copy(OWNER, [name], [name + "-copy"])
        if i % 7 == 0:
            box.delete(OWNER, [name])
    store.close()


class ProcessesTests(SynchronousTestCase):
    """Writers in several processes never lose an update of the total."""

    WORKERS, ROUNDS = 3, 40

    def test_no_lost_update(self):
        root = os.path.abspath(self.mktemp())
        provision.create_box(root, "cell1", "box1")
        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=_writer, args=(root, w, self.ROUNDS))
                 for w in range(self.WORKERS)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
            self.assertEqual(p.exitcode, 0)
        usage = Usage(os.path.join(root, "cell1", "box1"))
        kept = usage.used()
        self.assertGreater(kept, 0)
        self.assertEqual(kept, usage.recount())


class QuotaOverHttpTests(DavTestCase):
    config = Config(collection_semantics="rfc4918")

    def setUp(self):
        super().setUp()
        self.box_dir = os.path.join(self.data, "cell1", "box1")
        self.usage = Usage(self.box_dir)

    def assertTotal(self, expected):
        """The running total is what a recount finds, and ``expected``."""
        kept = self.usage.used()
        self.assertEqual(kept, file_bytes(self.box_dir))
        self.assertEqual(kept, expected)

    @defer.inlineCallbacks
    def space(self, path=BOX, depth="0"):
        """{href: (available, used)} of a PROPFIND asking for the quota properties."""
        answer = yield self.request("PROPFIND", path, QUOTA_PROPS, {"Depth": depth})
        self.assertEqual(answer.code, 207, answer.body)
        found = {}
        for response in answer.xml().iterfind("{DAV:}response"):
            href = response.findtext("{DAV:}href")
            avail = response.findtext(".//{DAV:}quota-available-bytes")
            used = response.findtext(".//{DAV:}quota-used-bytes")
            found[href] = (None if avail is None else int(avail),
                           None if used is None else int(used))
        return found

    @defer.inlineCallbacks
    def put(self, path, size, code=None):
        answer = yield self.request("PUT", BOX + path, b"z" * size)
        if code is not None:
            self.assertEqual(answer.code, code, answer.body)
        return answer

    @defer.inlineCallbacks
    def test_running_total(self):
        """Every kind of write keeps the total equal to a recount."""
        yield self.request("MKCOL", BOX + "a")
        yield self.request("MKCOL", BOX + "a/b")
        yield self.put("a/one", 100, 201)
        yield self.put("a/b/two", 50, 201)
        self.assertTotal(150)
        yield self.put("a/one", 30, 204)  # overwrite, smaller
        self.assertTotal(80)
        answer = yield self.request("COPY", BOX + "a", headers={"Destination": BOX + "c"})
        self.assertEqual(answer.code, 201)
        self.assertTotal(160)
        answer = yield self.request("COPY", BOX + "a/one",
                                    headers={"Destination": BOX + "c/b/two"})
        self.assertEqual(answer.code, 204)  # 30 over 50
        self.assertTotal(140)
        answer = yield self.request("MOVE", BOX + "a/b/two",
                                    headers={"Destination": BOX + "a/one"})
        self.assertEqual(answer.code, 204)  # 50 over 30: 30 freed
        self.assertTotal(110)
        answer = yield self.request("COPY", BOX + "a", headers={"Destination": BOX + "c"})
        self.assertEqual(answer.code, 204)  # a (50) over c (30 + 30)
        self.assertTotal(100)
        answer = yield self.request(
            "LOCK", BOX + "locked.txt",
            b'<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
            b'<D:locktype><D:write/></D:locktype></D:lockinfo>', {"Timeout": "Second-60"})
        self.assertEqual(answer.code, 201)
        self.assertTotal(100)
        answer = yield self.request("DELETE", BOX + "c")
        self.assertEqual(answer.code, 204)
        self.assertTotal(50)
        answer = yield self.request("DELETE", BOX + "a/one")
        self.assertEqual(answer.code, 204)
        self.assertTotal(0)

    @defer.inlineCallbacks
    def test_properties(self):
        yield self.request("MKCOL", BOX + "col")
        yield self.put("col/f", 1000, 201)
        st = os.statvfs(self.data)
        found = yield self.space(BOX, "1")
        self.assertEqual(set(found), {BOX, BOX + "col/"})
        avail, used = found[BOX]
        self.assertEqual(used, 1000)
        self.assertGreater(avail, 0)
        self.assertLessEqual(avail, st.f_blocks * st.f_frsize)
        self.assertEqual(found[BOX + "col/"][1], 1000)  # the box's figure, on every collection
        # a file has neither: 404 propstat
        answer = yield self.request("PROPFIND", BOX + "col/f", QUOTA_PROPS, {"Depth": "0"})
        self.assertIn(b"404 Not Found", answer.body)
        self.assertNotIn(b"quota-used-bytes>", answer.body)
        # by name only: not in allprop, not in propname
        for body in (None, b'<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'):
            answer = yield self.request("PROPFIND", BOX, body, {"Depth": "1"})
            self.assertEqual(answer.code, 207)
            self.assertNotIn(b"quota", answer.body)
        # allprop with include gives them
        answer = yield self.request(
            "PROPFIND", BOX, b'<D:propfind xmlns:D="DAV:"><D:allprop/><D:include>'
            b'<D:quota-used-bytes/></D:include></D:propfind>', {"Depth": "0"})
        self.assertIn(b"<D:quota-used-bytes>1000</D:quota-used-bytes>", answer.body)
        # protected
        answer = yield self.request(
            "PROPPATCH", BOX, b'<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
            b'<D:quota-used-bytes>1</D:quota-used-bytes></D:prop></D:set></D:propertyupdate>')
        self.assertEqual(answer.code, 207)
        self.assertIn(b"403", answer.body)
        # figures follow writes (nothing stale from a cached rendering)
        yield self.put("col/g", 24, 201)
        found = yield self.space(BOX, "1")
        self.assertEqual(found[BOX + "col/"][1], 1024)

    @defer.inlineCallbacks
    def test_quota_refuses(self):
        yield self.request("MKCOL", BOX + "col")
        yield self.put("col/f", 600, 201)
        self.usage.set_quota(1000)
        found = yield self.space()
        self.assertEqual(found[BOX], (400, 600))
        before = yield self.request("PROPFIND", BOX, headers={"Depth": "1"})

        answer = yield self.put("col/big", 401)
        self.assertError(answer, 507, "PR507-DV-0001", MESSAGE)
        answer = yield self.put("col/f", 1001)  # an overwrite counts its growth
        self.assertError(answer, 507, "PR507-DV-0001", MESSAGE)
        answer = yield self.request("COPY", BOX + "col", headers={"Destination": BOX + "c2"})
        self.assertError(answer, 507, "PR507-DV-0001", MESSAGE)
        answer = yield self.request("COPY", BOX + "col/f", headers={"Destination": BOX + "f2"})
        self.assertError(answer, 507, "PR507-DV-0001", MESSAGE)
        # nothing half-written: same tree, same bytes, no temporary file
        after = yield self.request("PROPFIND", BOX, headers={"Depth": "1"})
        self.assertEqual(after.body, before.body)
        answer = yield self.request("GET", BOX + "col/f")
        self.assertEqual(answer.body, b"z" * 600)
        self.assertEqual(os.listdir(os.path.join(self.data, layout.TMP)), [])
        self.assertTotal(600)

        # up to the quota exactly is fine; what frees bytes always is
        yield self.put("col/fits", 400, 201)
        self.assertTotal(1000)
        found = yield self.space()
        self.assertEqual(found[BOX], (0, 1000))
        self.usage.set_quota(500)  # lowered below the usage
        found = yield self.space()
        self.assertEqual(found[BOX], (0, 1000))
        yield self.put("col/f", 100, 204)  # shrinks: allowed though over the quota
        answer = yield self.request("MOVE", BOX + "col/fits",
                                    headers={"Destination": BOX + "moved"})
        self.assertEqual(answer.code, 201)  # moving adds nothing
        answer = yield self.put("col/f", 101)
        self.assertError(answer, 507, "PR507-DV-0001", MESSAGE)
        answer = yield self.request("DELETE", BOX + "moved")
        self.assertEqual(answer.code, 204)
        self.assertTotal(100)
        self.usage.set_quota(None)
        yield self.put("col/big", 5000, 201)

    @defer.inlineCallbacks
    def test_missing_record_is_recounted(self):
        yield self.put("f", 123, 201)
        os.unlink(os.path.join(self.box_dir, USAGE))
        found = yield self.space()
        self.assertEqual(found[BOX][1], 123)
        with open(os.path.join(self.box_dir, USAGE), "wb") as f:
            f.write(b"5 pending\n")  # a writer died half-way
        yield self.put("g", 7, 201)
        self.assertTotal(130)


class QuotaCommandTests(SynchronousTestCase):
    def setUp(self):
        self.data = os.path.abspath(self.mktemp())
        provision.create_box(self.data, "cell1", "box1")
        with open(os.path.join(self.data, "cell1", "box1", "f"), "wb") as f:
            f.write(b"x" * 2000)

    def test_set_show_remove(self):
        out = quota_cli("cell1", "box1", "10G", "--data", self.data)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.strip(),
                         "box cell1/box1: used 2000 bytes, quota %d bytes" % (10 * 1024 ** 3))
        self.assertEqual(Usage(os.path.join(self.data, "cell1", "box1")).quota(), 10 * 1024 ** 3)
        out = quota_cli("cell1", "box1", "--data", self.data)
        self.assertIn("quota 10737418240 bytes", out.stdout)
        for remove in ("0", "none"):
            quota_cli("cell1", "box1", "1K", "--data", self.data)
            out = quota_cli("cell1", "box1", remove, "--data", self.data)
            self.assertEqual(out.stdout.strip(), "box cell1/box1: used 2000 bytes, quota none")

    def test_recount(self):
        quota_cli("cell1", "box1", "--data", self.data)
        with open(os.path.join(self.data, "cell1", "box1", "g"), "wb") as f:
            f.write(b"x" * 48)  # written behind the server's back
        out = quota_cli("cell1", "box1", "--data", self.data)
        self.assertIn("used 2000 bytes", out.stdout)
        out = quota_cli("cell1", "box1", "--recount", "--data", self.data)
        self.assertIn("used 2048 bytes", out.stdout)

    def test_refusals(self):
        for args in (("cell1", "box1", "12X"), ("cell1", "nobox"), ("cell1", "../x"),
                     ("cell1", "box1", "-5")):
            out = quota_cli(*args, "--data", self.data)
            self.assertEqual(out.returncode, 2, (args, out.stdout))
            self.assertTrue(out.stderr.startswith("personium-dav:") or "usage:" in out.stderr,
                            out.stderr)
        self.assertIsNone(Usage(os.path.join(self.data, "cell1", "box1")).quota())
