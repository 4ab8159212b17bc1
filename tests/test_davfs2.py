"""davfs2 (Debian ``davfs2``: ``mount -t davfs``, a FUSE file system) on a
box of the real ``twistd -n personium-dav --collection-semantics rfc4918``,
used with ordinary tools: ``cp -r`` of 500 files in nested folders, ``rsync
-rc`` (by checksum: only what changed is sent again), ``mv``, ``rm -r``,
``git``, ``sqlite3``, a 200 MiB file, names with spaces, ``#``, ``%`` and
non-ASCII letters; ``df`` showing the box's quota; unmounted and mounted
again (with an empty cache), everything still there, and the server's own
view checked over plain HTTP.

The mount has its configuration, secrets and cache in the test's temporary
folder (``tests/support/mounts.py``) and is always unmounted in cleanup.
Skipped without ``mount.davfs``, ``rsync``, ``git`` or ``sqlite3``, or
without root and /dev/fuse, unless the environment variable CI is set
(then it fails). Quirks found: docs/conformance.md, "davfs2".
"""
import errno
import os
import re
import shutil
from urllib.parse import quote, unquote

from lxml import etree
from twisted.internet import defer, threads
from twisted.trial import unittest

from .support import localtree
from .support.clientauth import (BOX_PATH, accessLog, fetch, requireTool, setQuota,
                                 startClientServer)
from .support.mounts import DavfsMount, requireMounts, run

RFC4918 = ("--collection-semantics", "rfc4918")
QUOTA = 1024 ** 3  # 1 GiB: df on the mount shows it as the size
BLOCK = 4096  # davfs2 reports its figures in blocks of this size
CHANGED = ["dir03/sub 1/file04.txt", "dir05/sub 4/file09.txt", "special names/hash#1.txt"]
GIT = ["git", "-c", "user.name=Davfs Test", "-c", "user.email=davfs@example.invalid",
       "-c", "init.defaultBranch=main"]


def in_thread(f, *args, **kwargs):
    return threads.deferToThread(f, *args, **kwargs)


def rsync(source, target):
    """``rsync -rc`` with its statistics and itemized changes: (files
    transferred, [itemized lines of files sent])."""
    out = run(["rsync", "-rc", "--stats", "--itemize-changes", source + "/", target + "/"],
              timeout=600).stdout
    m = re.search(r"Number of regular files transferred: ([\d,]+)", out)
    assert m, out
    sent = [line for line in out.splitlines() if line.startswith(">f")]
    return int(m.group(1).replace(",", "")), sent


class Davfs2(unittest.TestCase):
    timeout = 1200

    def setUp(self):
        for tool in ("mount.davfs", "rsync", "git", "sqlite3"):
            requireTool(tool)
        requireMounts()

    @defer.inlineCallbacks
    def hrefs(self, path):
        """The hrefs of a Depth 1 PROPFIND on ``path`` (decoded)."""
        code, _, body = yield fetch(self.server, self.auth, "PROPFIND", quote(path),
                                    headers={"Depth": "1"})
        self.assertEqual(code, 207, body)
        return {unquote(h.text) for h in etree.fromstring(body).iterfind(
            "{DAV:}response/{DAV:}href")}

    def assertSpace(self, size, used, avail, server_used):
        """df's figures are the server's: the quota's room left exactly (in
        whole blocks), used at least the box's bytes (davfs2 adds a few
        blocks of its own: 32 KiB on an empty box)."""
        self.assertEqual(avail, (QUOTA - server_used) // BLOCK * BLOCK)
        self.assertEqual(size, used + avail)
        self.assertGreaterEqual(used, server_used // BLOCK * BLOCK)
        self.assertLess(used - server_used, 1024 * 1024)

    @defer.inlineCallbacks
    def used(self):
        """The box's ``D:quota-used-bytes``."""
        code, _, body = yield fetch(
            self.server, self.auth, "PROPFIND", BOX_PATH,
            b'<D:propfind xmlns:D="DAV:"><D:prop><D:quota-used-bytes/></D:prop></D:propfind>',
            {"Depth": "0"})
        self.assertEqual(code, 207, body)
        return int(etree.fromstring(body).findtext(".//{DAV:}quota-used-bytes"))

    @defer.inlineCallbacks
    def content(self, path):
        code, _, body = yield fetch(self.server, self.auth, "GET", quote(path))
        self.assertEqual(code, 200, path)
        return body

    @defer.inlineCallbacks
    def test_everyday_tools(self):
        self.server, self.auth = yield startClientServer(self, *RFC4918)
        work = os.path.abspath(self.mktemp())
        local = os.path.join(work, "local")
        tree = os.path.join(local, "tree")
        os.makedirs(tree)
        files = yield in_thread(localtree.make_tree, tree)
        self.assertEqual(len(files), 500 + len(localtree.SPECIAL_NAMES))
        big_sum = yield in_thread(localtree.big_file, os.path.join(local, "big.bin"), 200)
        yield in_thread(setQuota, self.server, "1G")

        mount = DavfsMount(self, self.server.url + BOX_PATH, self.auth, work)
        yield in_thread(mount.start)
        mnt = mount.point

        # df: the box's quota as the size, its usage as used (whole blocks)
        df = yield in_thread(run, ["df", "-B1", "--output=size,used,avail", mnt])
        size, used, avail = (int(v) for v in df.stdout.split()[-3:])
        server_used = yield self.used()
        self.assertSpace(size, used, avail, server_used)

        # cp -r, then rsync -rc: nothing to send
        yield in_thread(run, ["cp", "-r", tree, os.path.join(mnt, "tree")])
        count, sent = yield in_thread(rsync, tree, os.path.join(mnt, "tree"))
        self.assertEqual((count, sent), (0, []))
        # three files get new bytes of the same size and time: only those go
        yield in_thread(localtree.touch_same_size, tree, CHANGED)
        count, sent = yield in_thread(rsync, tree, os.path.join(mnt, "tree"))
        self.assertEqual(count, 3, sent)
        self.assertEqual(sorted(line.split(" ", 1)[1] for line in sent), sorted(CHANGED))

        # mv and rm -r, the same done locally to compare with later
        for root in (mnt, local):
            t = os.path.join(root, "tree")
            yield in_thread(run, ["mv", os.path.join(t, "dir09"), os.path.join(t, "dir 09 #moved")])
            yield in_thread(run, ["rm", "-r", os.path.join(t, "dir08")])
            yield in_thread(run, ["mv", os.path.join(t, "special names", "100%.txt"),
                                  os.path.join(t, "special names", "now 50% off#.txt")])

        # git: a repository made, committed to twice, and checked, on the mount
        repo = os.path.join(mnt, "repo")
        yield in_thread(run, ["cp", "-r", os.path.join(tree, "dir00"), repo])
        yield in_thread(run, GIT + ["init", "-q"], cwd=repo)
        yield in_thread(run, GIT + ["add", "."], cwd=repo)
        yield in_thread(run, GIT + ["commit", "-qm", "first"], cwd=repo)
        with open(os.path.join(repo, "sub 0", "file00.txt"), "ab") as f:
            f.write(b"one more line\n")
        yield in_thread(run, GIT + ["commit", "-qam", "second"], cwd=repo)

        # sqlite3: a database made and changed on the mount (its locks, its journal)
        db = os.path.join(mnt, "data.sqlite")
        yield in_thread(run, ["sqlite3", db, "create table t(k integer primary key, v text);"
                              "insert into t(v) values ('a'), ('b'), ('c');"])
        yield in_thread(run, ["sqlite3", db, "update t set v = 'B' where k = 2;"
                              "delete from t where k = 3; insert into t(v) values ('d');"])

        # a 200 MiB file
        yield in_thread(run, ["cp", os.path.join(local, "big.bin"), os.path.join(mnt, "big.bin")])

        # names davfs2 cannot carry: its cache adds 7 bytes to a name (mkstemp),
        # so 249 bytes or more fail before any request (EIO)
        too_long = "\u3042" * 83  # 249 bytes
        result = yield in_thread(run, ["cp", os.path.join(tree, "dir00", "sub 0", "file00.txt"),
                                       os.path.join(mnt, too_long)], check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("Input/output error", result.stderr)

        yield in_thread(mount.stop)  # every upload done once this returns

        # the server's own view
        code, _, _ = yield fetch(self.server, self.auth, "PROPFIND",
                                 quote(BOX_PATH + too_long), headers={"Depth": "0"})
        self.assertEqual(code, 404)
        top = yield self.hrefs(BOX_PATH + "tree/")
        self.assertIn(BOX_PATH + "tree/dir 09 #moved/", top)
        self.assertNotIn(BOX_PATH + "tree/dir08/", top)
        self.assertNotIn(BOX_PATH + "tree/dir09/", top)
        for rel in CHANGED + [os.path.join("special names", n)
                              for n in localtree.SPECIAL_NAMES if n != "100%.txt"]:
            body = yield self.content(BOX_PATH + "tree/" + rel)
            with open(os.path.join(tree, rel), "rb") as f:
                self.assertEqual(body, f.read(), rel)
        code, headers, _ = yield fetch(self.server, self.auth, "HEAD", BOX_PATH + "big.bin")
        self.assertEqual((code, headers["content-length"]), (200, str(200 * 1024 ** 2)))
        log = accessLog(self.server)
        methods = {m for m, _, _ in log}
        self.assertTrue({"LOCK", "UNLOCK", "PUT", "MOVE", "DELETE"} <= methods, methods)

        # a 255-byte name (the longest a Linux file may have), made over HTTP
        yield fetch(self.server, self.auth, "MKCOL", quote(BOX_PATH + "long"))
        code, _, _ = yield fetch(self.server, self.auth, "PUT",
                                 quote(BOX_PATH + "long/" + localtree.LONGEST), b"long")
        self.assertEqual(code, 201)

        # mounted again with an empty cache: everything read back from the server
        yield in_thread(mount.start)
        # df: what the box now holds (davfs2 reads the figures when it mounts)
        df = yield in_thread(run, ["df", "-B1", "--output=size,used,avail", mnt])
        server_used = yield self.used()
        self.assertGreater(server_used, 200 * 1024 ** 2)
        self.assertSpace(*(int(v) for v in df.stdout.split()[-3:]), server_used)
        expected = yield in_thread(localtree.digest, tree)
        found = yield in_thread(localtree.digest, os.path.join(mnt, "tree"))
        self.assertEqual(found, expected)
        self.assertEqual((yield in_thread(localtree.folders, os.path.join(mnt, "tree"))),
                         (yield in_thread(localtree.folders, tree)))
        self.assertEqual((yield in_thread(localtree.file_sha256, os.path.join(mnt, "big.bin"))),
                         big_sum)
        log = yield in_thread(run, GIT + ["log", "--format=%s"], cwd=repo)
        self.assertEqual(log.stdout.split(), ["second", "first"])
        status = yield in_thread(run, GIT + ["status", "--porcelain"], cwd=repo)
        self.assertEqual(status.stdout, "")
        yield in_thread(run, GIT + ["fsck", "--strict"], cwd=repo)
        rows = yield in_thread(run, ["sqlite3", db, "pragma integrity_check; select v from t order by k;"])
        self.assertEqual(rows.stdout.split(), ["ok", "a", "B", "d"])
        # davfs2 lists the 255-byte name but cannot open it (its cache file
        # would need 262 bytes)
        self.assertEqual(os.listdir(os.path.join(mnt, "long")), [localtree.LONGEST])
        with self.assertRaises(OSError) as raised:
            with open(os.path.join(mnt, "long", localtree.LONGEST), "rb") as f:
                f.read()
        self.assertEqual(raised.exception.errno, errno.EIO)
        yield in_thread(mount.stop)
        shutil.rmtree(local, ignore_errors=True)
