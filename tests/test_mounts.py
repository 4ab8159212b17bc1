"""The data root's mount: recognised from mountinfo, refused where it can
serve stale names or attributes (store/mounts.py), watched per request; and
what a failing file system answers (503, never a 404 or a stale 200).

The same checks against a real JuiceFS mount, both ways, are in
tests/test_scaleout.py."""
import errno
import os
import time
from dataclasses import replace

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from personium_dav.dav.errors import DavError
from personium_dav.web.pools import Pools
from personium_dav.store import layout, mounts, tree
from .support.helpers import BOX, DavTestCase

EXT4 = "36 25 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro"
TMPFS = "40 36 0:35 / /tmp rw,nosuid,nodev shared:3 - tmpfs tmpfs rw,size=4g"
JUICEFS = ("45 27 0:40 / /mnt/jfs rw,nosuid,nodev,relatime - fuse.juicefs JuiceFS:vol "
           "rw,user_id=0,group_id=0,default_permissions,allow_other,max_read=131072")
NFS_SAFE = ("54 27 0:50 / /srv/data rw,relatime shared:200 - nfs4 server:/export rw,vers=4.2,"
            "rsize=1048576,wsize=1048576,namlen=255,hard,noac,proto=tcp,timeo=600,retrans=2,"
            "sec=sys,clientaddr=10.0.0.2,lookupcache=none,local_lock=none,addr=10.0.0.1")
NFS_DEFAULT = ("55 27 0:51 / /srv/nfs rw,relatime shared:201 - nfs server:/export rw,vers=3,"
               "rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,"
               "sec=sys,mountaddr=10.0.0.1,mountvers=3,mountport=20048,local_lock=none")
NFS_ACTIMEO0 = ("56 27 0:52 / /srv/nfs0 rw,relatime - nfs4 server:/e rw,vers=4.1,acregmin=0,"
                "acregmax=0,acdirmin=0,acdirmax=0,hard,lookupcache=none,local_lock=none")
CEPH = "60 27 0:60 / /mnt/ceph rw,relatime - ceph 10.0.0.1:6789:/ rw,name=admin,secret=<hidden>,acl"
OVERLAY = ("70 1 0:70 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/l,upperdir=/u,"
           "workdir=/w")
SSHFS = "80 27 0:80 / /mnt/my\\040data rw,nosuid,nodev - fuse.sshfs me@host:/ rw,user_id=0"
TABLE = "\n".join([EXT4, TMPFS, JUICEFS, NFS_SAFE, NFS_DEFAULT, NFS_ACTIMEO0, CEPH, SSHFS])

CONSISTENT = {"AttrTimeout": 0, "EntryTimeout": 0, "DirEntryTimeout": 0, "NegEntryTimeout": 0,
              "ReaddirCache": False, "Meta": {"OpenCache": 0, "SkipDirMtime": 100000000}}
DEFAULTS = dict(CONSISTENT, AttrTimeout=10**9, EntryTimeout=10**9, DirEntryTimeout=10**9)


def config_of(value):
    def read(mount):
        if isinstance(value, Exception):
            raise value
        return value
    return read


def only(line):
    return mounts.parse(line)[0]


class ParseTests(unittest.TestCase):

    def test_fields(self):
        found = mounts.parse(TABLE)
        self.assertEqual([m.fstype for m in found],
                         ["ext4", "tmpfs", "fuse.juicefs", "nfs4", "nfs", "nfs4", "ceph",
                          "fuse.sshfs"])
        self.assertEqual(found[2].point, "/mnt/jfs")
        self.assertEqual(found[2].source, "JuiceFS:vol")
        self.assertEqual(found[3].option("lookupcache"), "none")
        self.assertIs(found[3].option("noac"), True)
        self.assertIsNone(found[4].option("noac"))

    def test_escaped_mount_point(self):
        self.assertEqual(only(SSHFS).point, "/mnt/my data")

    def test_optional_fields(self):
        # any number of optional fields before the "-"
        line = "36 25 8:1 / /data rw shared:1 master:2 propagate_from:3 - xfs /dev/sdb rw"
        self.assertEqual((only(line).point, only(line).fstype), ("/data", "xfs"))

    def test_longest_prefix(self):
        table = mounts.parse(TABLE)
        self.assertEqual(mounts.mount_of("/mnt/jfs/data", table).fstype, "fuse.juicefs")
        self.assertEqual(mounts.mount_of("/mnt/jfs", table).fstype, "fuse.juicefs")
        self.assertEqual(mounts.mount_of("/mnt/jfsx/data", table).fstype, "ext4")
        self.assertEqual(mounts.mount_of("/tmp/a", table).fstype, "tmpfs")
        self.assertEqual(mounts.mount_of("/srv/data/x", table).fstype, "nfs4")

    def test_later_mount_wins(self):
        table = mounts.parse(EXT4 + "\n" + JUICEFS + "\n" + JUICEFS.replace(
            "fuse.juicefs JuiceFS:vol", "tmpfs tmpfs"))
        self.assertEqual(mounts.mount_of("/mnt/jfs/d", table).fstype, "tmpfs")

    def test_this_machine(self):
        """The real mountinfo: the test's own temporary directory is local."""
        verdict = mounts.check(os.path.abspath(self.mktemp()))
        self.assertFalse(verdict.shared, verdict)


class JudgeTests(unittest.TestCase):

    def test_local(self):
        for line in (EXT4, TMPFS, OVERLAY):
            verdict = mounts.judge(only(line))
            self.assertFalse(verdict.shared, line)

    def test_unknown_type_on_a_block_device_is_local(self):
        line = "36 25 8:1 / /data rw - exfat-like /dev/sdc1 rw"
        self.assertFalse(mounts.judge(only(line)).shared)

    def test_juicefs_default_caches_refused(self):
        with self.assertRaises(mounts.UnsafeMount) as caught:
            mounts.judge(only(JUICEFS), juicefs_config=config_of(DEFAULTS))
        message = str(caught.exception)
        for option in ("--attr-cache 0", "--entry-cache 0", "--dir-entry-cache 0",
                       "--enable-xattr", "/mnt/jfs"):
            self.assertIn(option, message)

    def test_juicefs_declaration_does_not_override_what_is_seen(self):
        with self.assertRaises(mounts.UnsafeMount):
            mounts.judge(only(JUICEFS), declared=True, juicefs_config=config_of(DEFAULTS))

    def test_juicefs_each_cache_counts(self):
        for bad in ({"NegEntryTimeout": 10**9}, {"Meta": {"OpenCache": 10**9}},
                    {"ReaddirCache": True}, {"AttrTimeout": 1}):
            with self.assertRaises(mounts.UnsafeMount, msg=bad):
                mounts.judge(only(JUICEFS), juicefs_config=config_of(dict(CONSISTENT, **bad)))

    def test_juicefs_consistent(self):
        verdict = mounts.judge(only(JUICEFS), juicefs_config=config_of(CONSISTENT))
        self.assertTrue(verdict.shared)

    def test_juicefs_unreadable_config_needs_the_declaration(self):
        unreadable = config_of(PermissionError(errno.EACCES, "root only"))
        with self.assertRaises(mounts.UnsafeMount) as caught:
            mounts.judge(only(JUICEFS), juicefs_config=unreadable)
        self.assertIn("--shared-mount-consistent", str(caught.exception))
        verdict = mounts.judge(only(JUICEFS), declared=True, juicefs_config=unreadable)
        self.assertTrue(verdict.shared)

    def test_nfs(self):
        self.assertTrue(mounts.judge(only(NFS_SAFE)).shared)
        self.assertTrue(mounts.judge(only(NFS_ACTIMEO0)).shared)
        with self.assertRaises(mounts.UnsafeMount) as caught:
            mounts.judge(only(NFS_DEFAULT))
        self.assertIn("noac,lookupcache=none", str(caught.exception))
        # only actimeo: names still cached
        with self.assertRaises(mounts.UnsafeMount):
            mounts.judge(only(NFS_ACTIMEO0.replace(",lookupcache=none", "")))

    def test_ceph_is_coherent(self):
        self.assertTrue(mounts.judge(only(CEPH)).shared)

    def test_other_fuse_needs_the_declaration(self):
        with self.assertRaises(mounts.UnsafeMount) as caught:
            mounts.judge(only(SSHFS))
        self.assertIn("--shared-mount-consistent", str(caught.exception))
        self.assertTrue(mounts.judge(only(SSHFS), declared=True).shared)

    def test_check_reads_the_table(self):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(TABLE)
        verdict = mounts.check("/mnt/jfs/data", mountinfo=path,
                               juicefs_config=config_of(CONSISTENT))
        self.assertEqual(verdict.mount.point, "/mnt/jfs")
        with self.assertRaises(mounts.UnsafeMount):
            mounts.check("/mnt/jfs/data", mountinfo=path, juicefs_config=config_of(DEFAULTS))


class RootWatchTests(unittest.TestCase):

    def setUp(self):
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(self.root)
        self.now = [0.0]
        self.watch = mounts.RootWatch(self.root, "/", shared=False, period=1.0,
                                      clock=lambda: self.now[0])

    def test_healthy(self):
        self.assertTrue(self.watch.check())  # probed
        self.assertFalse(self.watch.check())  # the kept verdict

    def test_replaced_root_is_unavailable_until_the_period_ends(self):
        self.watch.check()
        os.rename(self.root, self.root + ".old")
        os.makedirs(self.root)  # another directory at the same path
        self.watch.check()  # the verdict is kept for the period
        self.now[0] = 1.5
        self.assertRaises(mounts.Unavailable, self.watch.check)
        os.rmdir(self.root)
        os.rename(self.root + ".old", self.root)  # back (a remount of the same volume)
        self.now[0] = 3.0
        self.watch.check()

    def test_missing_root(self):
        os.rmdir(self.root)
        self.now[0] = 5
        self.assertRaises(mounts.Unavailable, self.watch.check)

    def test_shared_mount_point_must_stay_a_mount(self):
        """On a shared mount the mount point must be a mount: a directory
        on its parent's device is the bare directory a vanished mount leaves."""
        watch = mounts.RootWatch(self.root, os.path.dirname(self.root), shared=True)
        self.assertRaises(mounts.Unavailable, watch.check)


def failing(errnum, calls=None):
    def fail(*args, **kwargs):
        if calls is not None:
            calls.append(args)
        raise OSError(errnum, os.strerror(errnum))
    return fail


class FailingFileSystemTests(DavTestCase):
    """EIO, ENOTCONN and ESTALE: 503 PR503-SV-0006 with Retry-After, never a
    404 that says the cell or file is missing, never a 500."""

    @defer.inlineCallbacks
    def test_cell_lookup_failing_is_503_not_404(self):
        for errnum in (errno.ENOTCONN, errno.EIO):
            self.patch(tree.os, "lstat", failing(errnum))
            answer = yield self.request("GET", BOX + "a.txt")
            self.assertError(answer, 503, "PR503-SV-0006")
            self.assertEqual(answer.headers.getRawHeaders("retry-after"), ["5"])

    @defer.inlineCallbacks
    def test_metadata_read_failing_is_503(self):
        answer = yield self.request("PUT", BOX + "a.txt", b"x")
        self.assertEqual(answer.code, 201)
        self.server.store.tree._infos.clear()
        self.patch(layout.os, "getxattr", failing(errno.EIO))
        answer = yield self.request("GET", BOX + "a.txt")
        self.assertError(answer, 503, "PR503-SV-0006")

    @defer.inlineCallbacks
    def test_missing_metadata_is_still_a_plain_file(self):
        answer = yield self.request("PUT", BOX + "a.txt", b"x")
        self.server.store.tree._infos.clear()
        self.patch(layout.os, "getxattr", failing(errno.ENODATA))
        answer = yield self.request("GET", BOX + "a.txt")
        self.assertEqual(answer.code, 200)

    @defer.inlineCallbacks
    def test_stale_handle_retried_once(self):
        answer = yield self.request("PUT", BOX + "a.txt", b"x")
        walk = self.server.store.tree._walk
        calls = []

        def once(*args):
            calls.append(args)
            if len(calls) == 1:
                raise OSError(errno.ESTALE, "Stale file handle")
            return walk(*args)

        self.patch(self.server.store.tree, "_walk", once)
        answer = yield self.request("GET", BOX + "a.txt")
        self.assertEqual(answer.code, 200)
        self.assertEqual(len(calls), 2)

    @defer.inlineCallbacks
    def test_stale_handle_twice_is_503(self):
        calls = []
        self.patch(self.server.store.tree, "_walk", failing(errno.ESTALE, calls))
        answer = yield self.request("GET", BOX + "a.txt")
        self.assertError(answer, 503, "PR503-SV-0006")
        self.assertEqual(len(calls), 2)

    @defer.inlineCallbacks
    def test_write_failing_is_503(self):
        self.patch(tree.os, "replace", failing(errno.EIO))
        answer = yield self.request("PUT", BOX + "a.txt", b"x")
        self.assertError(answer, 503, "PR503-SV-0006")

    @defer.inlineCallbacks
    def test_vanished_root_is_503(self):
        root = self.server.store.root
        self.server.store.watch.period = 0
        os.rename(root, root + ".gone")
        os.makedirs(root)
        try:
            answer = yield self.request("PROPFIND", BOX, None, {"Depth": "0"})
            self.assertError(answer, 503, "PR503-SV-0006")
        finally:
            os.rmdir(root)
            os.rename(root + ".gone", root)
        answer = yield self.request("PROPFIND", BOX, None, {"Depth": "0"})
        self.assertEqual(answer.code, 207)


class OwnerReclaimTests(DavTestCase):
    """A claim whose descriptor died with its mount is replaced once the
    data root answers again: the old id is dead to other servers."""

    @defer.inlineCallbacks
    def test_new_claim_after_the_old_one_is_lost(self):
        store = self.server.store
        old = store.owner
        self.assertTrue(old.held())
        # what a dead FUSE connection does to it: fstat fails (ENOTCONN)
        real = os.fstat
        self.patch(os, "fstat", lambda fd: failing(errno.ENOTCONN)() if fd == old._fd
                   else real(fd))
        self.assertFalse(old.held())
        store.watch.period = 0
        answer = yield self.request("PUT", BOX + "a.txt", b"x")
        self.assertEqual(answer.code, 201)
        self.assertNotEqual(store.owner.id, old.id)
        self.assertTrue(store.owner.held())
        self.assertIs(store.tree.owner, store.owner)
        self.assertIs(store.journal.owner, store.owner)
        self.assertFalse(os.path.exists(old.path))


class SharedResolutionTests(DavTestCase):
    """On a shared mount resolution, GET and Depth 0 run in the reads pool:
    the answers are the same."""

    def setUp(self):
        super().setUp()
        self.server.store.shared = True
        self.server.store.tree.trust_dir_times = False
        self.server.auth.accounts.revalidated_in_threads = True
        self.server.auth.tokens.owner_generation.revalidated_in_threads = True

    @defer.inlineCallbacks
    def test_no_stat_on_the_reactor(self):
        """Authentication's files are read in the resolution's thread; the
        reactor thread takes what it found."""
        from twisted.python.threadable import isInIOThread
        from personium_dav.auth import accounts, tokens

        on_reactor = []
        real = os.stat

        watched = (accounts.ACCOUNTS, tokens.OWNER_GENERATION)

        def stat(path, *args, **kwargs):
            if isInIOThread() and str(path).endswith(watched):
                on_reactor.append(path)
            return real(path, *args, **kwargs)

        self.patch(os, "stat", stat)
        for method, path in (("PUT", BOX + "a.txt"), ("GET", BOX + "a.txt"),
                             ("PROPFIND", BOX)):
            answer = yield self.request(method, path, b"x" if method == "PUT" else b"",
                                        {"Depth": "1"})
            self.assertIn(answer.code, (200, 201, 207))
        self.assertEqual(on_reactor, [])

    @defer.inlineCallbacks
    def test_revocation_seen_at_the_next_request(self):
        answer = yield self.request("PROPFIND", BOX, None, {"Depth": "0"})
        self.assertEqual(answer.code, 207)
        # another host revokes every owner token (a new owner generation)
        from personium_dav.auth.tokens import OwnerGeneration

        OwnerGeneration(self.server.store.root).raise_()
        answer = yield self.request("PROPFIND", BOX, None, {"Depth": "0"})
        self.assertEqual(answer.code, 401)

    @defer.inlineCallbacks
    def test_same_answers(self):
        answer = yield self.request("PUT", BOX + "a.txt", b"x" * 100000)
        self.assertEqual(answer.code, 201)
        answer = yield self.request("MKCOL", BOX + "c")
        self.assertEqual(answer.code, 201)
        answer = yield self.request("GET", BOX + "a.txt")
        self.assertEqual((answer.code, len(answer.body)), (200, 100000))
        answer = yield self.request("PROPFIND", BOX + "a.txt", None, {"Depth": "0"})
        self.assertEqual(answer.code, 207)
        answer = yield self.request("PROPFIND", BOX, None, {"Depth": "1"})
        self.assertEqual(answer.code, 207)
        self.assertEqual(len(list(answer.xml().iter("{DAV:}response"))), 3)
        answer = yield self.request("GET", BOX + "nothing")
        self.assertEqual(answer.code, 404)

    @defer.inlineCallbacks
    def test_large_files_read_in_threads(self):
        """A body over 64 KiB is read chunk by chunk in the reads pool: the
        same bytes, whole or in a range."""
        from personium_dav.web.methods import get

        body = bytes(range(256)) * 3000  # 768,000 bytes: three chunks and a bit
        self.patch(get.ThreadedFileProducer, "CHUNK", 250000)
        answer = yield self.request("PUT", BOX + "big.bin", body)
        self.assertEqual(answer.code, 201)
        reads = []
        real = get.ThreadedFileProducer._read
        self.patch(get.ThreadedFileProducer, "_read",
                   lambda producer, offset, size: reads.append(size) or real(
                       producer, offset, size))
        answer = yield self.request("GET", BOX + "big.bin")
        self.assertEqual((answer.code, answer.body), (200, body))
        self.assertEqual(reads, [250000, 250000, 250000, 18000])
        answer = yield self.request("GET", BOX + "big.bin", None,
                                    {"Range": "bytes=100000-600000"})
        self.assertEqual((answer.code, answer.body), (206, body[100000:600001]))

    @defer.inlineCallbacks
    def test_member_count_is_a_scan(self):
        """No count record is kept: every add counts the directory."""
        self.server.config = replace(self.server.config, max_members=2)
        for name, code in (("a", 201), ("b", 201), ("c", 400)):
            answer = yield self.request("PUT", BOX + "c-" + name, b"x")
            self.assertEqual(answer.code, code)
        answer = yield self.request("DELETE", BOX + "c-a")
        self.assertEqual(answer.code, 204)
        answer = yield self.request("PUT", BOX + "c-c", b"x")
        self.assertEqual(answer.code, 201)
        box = self.server.store.tree.box_dir("cell1", "box1")
        self.assertIsNone(layout.read_count(box))


class LaggingDirectoryTimesTests(DavTestCase):
    """A shared mount may not update a directory's times at every change
    (JuiceFS skips it within 100 ms of the last update), and a sidecar
    commit appends without touching its directory anywhere. A listing shows
    a subcollection's new properties all the same: it asks the
    subcollection's sidecar, not the directory's stat."""

    @defer.inlineCallbacks
    def listed_value(self):
        answer = yield self.request("PROPFIND", BOX, None, {"Depth": "1"})
        self.assertEqual(answer.code, 207)
        return [el.text for el in answer.xml().iter("{urn:t}p")]

    @defer.inlineCallbacks
    def check(self, trust):
        from personium_dav.store import listing

        self.server.store.tree.trust_dir_times = trust
        self.patch(layout, "SETTLE_NS", -10**12)  # every stat counts as settled
        answer = yield self.request("MKCOL", BOX + "c")
        body = (b'<D:propertyupdate xmlns:D="DAV:" xmlns:t="urn:t"><D:set><D:prop>'
                b'<t:p>%s</t:p></D:prop></D:set></D:propertyupdate>')
        answer = yield self.request("PROPPATCH", BOX + "c", body % b"one")
        self.assertEqual(answer.code, 207)
        values = yield self.listed_value()
        self.assertEqual(values, ["one"])
        # from now on the directory's stat does not move, as on a mount
        # that skipped the update
        frozen = {}
        real = listing.os.stat

        def lagging(path, *args, **kwargs):
            st = real(path, *args, **kwargs)
            if path == "c":
                return frozen.setdefault(path, st)
            return st

        self.patch(listing.os, "stat", lagging)
        yield self.listed_value()  # records the stat that stays
        answer = yield self.request("PROPPATCH", BOX + "c", body % b"two")
        self.assertEqual(answer.code, 207)
        values = yield self.listed_value()
        return values

    @defer.inlineCallbacks
    def test_shared_mount_sees_the_change(self):
        values = yield self.check(trust=False)
        self.assertEqual(values, ["two"])

    @defer.inlineCallbacks
    def test_local_disk_sees_the_change(self):
        """Where directory times are trusted (member counts) a listing
        still asks the sidecar."""
        values = yield self.check(trust=True)
        self.assertEqual(values, ["two"])


class PoolBoundTests(unittest.TestCase):
    """A store that does not answer: the deadline and the queue bound answer 503."""

    def setUp(self):
        import threading

        self.release = threading.Event()
        self.addCleanup(self.release.set)
        self.pools = Pools(sizes={"store": 1, "reads": 1}, deadline=0.2)
        self.addCleanup(self.pools.stop)

    def blocked(self):
        self.release.wait(10)
        return "done"

    @defer.inlineCallbacks
    def test_deadline_and_bound(self):
        ran = []
        first = self.pools.store(self.blocked)
        queued = [self.pools.store(ran.append, i) for i in range(3)]  # 1 thread x 4
        refused = self.pools.store(ran.append, "over")
        failure = yield self.assertFailure(refused, DavError)
        self.assertEqual(failure.code, "PR503-SV-0007")  # at once: the queue is full
        for d in [first] + queued:
            failure = yield self.assertFailure(d, DavError)
            self.assertEqual(failure.code, "PR503-SV-0007")
        self.release.set()
        while self.pools.busy("store"):
            yield task.deferLater(reactor, 0.02, lambda: None)
        self.assertEqual(ran, [])  # queued past its deadline: never started
        done = yield self.pools.store(lambda: "ok")
        self.assertEqual(done, "ok")


class UnlockTests(unittest.TestCase):
    """A flock is released by an explicit ``LOCK_UN``, tried again while the
    metadata engine is away, before its descriptor is closed: on JuiceFS the
    release that close(2) implies is dropped when the engine does not answer
    then, and a ``LOCK_EX`` answered EIO may have been recorded all the same
    (its answer lost); either way the lock stayed held for as long as the
    mount lived (docs/scale-out.md)."""

    def setUp(self):
        import fcntl

        self.fcntl = fcntl
        self.real = fcntl.flock
        self.calls = []
        self.failures = {}  # operation -> errors to raise, in turn
        self.patch(fcntl, "flock", self.flock)
        self.root = self.mktemp()
        os.makedirs(self.root)
        self.tree = tree.Tree(self.root)

    def flock(self, fd, operation):
        self.calls.append(operation)
        errors = self.failures.get(operation)
        if errors:
            error = errors.pop(0)
            if error is not None:
                raise OSError(error, os.strerror(error))
        return self.real(fd, operation)

    def free(self):
        """Can another descriptor take the collection's flock now?"""
        fd = os.open(os.path.join(self.root, layout.LOCK), os.O_RDWR)
        try:
            self.real(fd, self.fcntl.LOCK_EX | self.fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    def test_unlock_retried_while_the_engine_is_away(self):
        self.failures[self.fcntl.LOCK_UN] = [errno.EIO, errno.ETIMEDOUT]
        with self.tree.locked(self.root):
            self.assertFalse(self.free())
        self.assertEqual(self.calls, [self.fcntl.LOCK_EX] + [self.fcntl.LOCK_UN] * 3)
        self.assertTrue(self.free())

    def test_failed_lock_is_unlocked_too(self):
        self.failures[self.fcntl.LOCK_EX] = [errno.EIO]
        with self.assertRaises(OSError):
            with self.tree.locked(self.root):
                self.fail("ran without its lock")
        self.assertEqual(self.calls, [self.fcntl.LOCK_EX, self.fcntl.LOCK_UN])

    def test_other_errors_not_retried(self):
        from personium_dav import flocks

        self.failures[self.fcntl.LOCK_UN] = [errno.ENOTCONN]
        with self.tree.locked(self.root):
            pass
        self.assertEqual(self.calls, [self.fcntl.LOCK_EX, self.fcntl.LOCK_UN])
        # and the descriptor is closed whatever happens: EIO past the patience
        fd = os.open(os.path.join(self.root, layout.LOCK), os.O_RDWR)
        self.failures[self.fcntl.LOCK_UN] = [errno.EIO] * 100
        slept = []
        flocks.unlock_and_close(fd, patience=0.5, sleep=lambda s: (slept.append(s), time.sleep(s)))
        self.assertEqual(slept[:3], [0.1, 0.2, 0.4])
        self.assertRaises(OSError, os.fstat, fd)
