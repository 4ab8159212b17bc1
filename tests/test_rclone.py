"""rclone (Debian ``rclone``; remote type ``webdav``, ``vendor owncloud``)
against a box of the real ``twistd -n personium-dav --collection-semantics
rfc4918``: ``rclone copy`` of a tree of 500 files (names with spaces,
``#``, ``%``, non-ASCII letters, a 255-byte UTF-8 name) keeping each
file's modification time (``X-OC-Mtime``), ``rclone check``, ``rclone
sync`` after changes sending only the changes (counted in the server's
access log), ``rclone about`` showing the box's quota and usage, a copy
past the quota refused (507), and ``rclone mount`` (FUSE) reading it all
back.

rclone's configuration is a file in the test's temporary folder (``--config``),
its password obscured with ``rclone obscure -``. Skipped without rclone
(and, for the mount, without root and /dev/fuse) unless the environment
variable CI is set: then it fails. What rclone needs: docs/conformance.md,
"rclone".
"""
import json
import os
import re
import time
from collections import Counter
from urllib.parse import quote

from lxml import etree
from twisted.internet import defer, threads
from twisted.trial import unittest

from .support import localtree
from .support.clientauth import (BOX_PATH, accessLog, fetch, requireTool, setQuota,
                                 startClientServer)
from .support.mounts import ProcessMount, requireMounts, run

RFC4918 = ("--collection-semantics", "rfc4918")
REMOTE = "box"
EPOCH = 1_000_000_000  # the files' times start in 2001: not "now", whatever the clock


def in_thread(f, *args, **kwargs):
    return threads.deferToThread(f, *args, **kwargs)


def set_times(root):
    """Give every file a distinct modification time in the past; {rel: seconds}."""
    times = {}
    for i, rel in enumerate(sorted(localtree.digest(root))):
        seconds = EPOCH + i * 3607
        os.utime(os.path.join(root, rel), (seconds, seconds))
        times[rel] = seconds
    return times


class Rclone(unittest.TestCase):
    timeout = 900

    def setUp(self):
        requireTool("rclone")

    @defer.inlineCallbacks
    def start(self):
        self.server, self.auth = yield startClientServer(self, *RFC4918)
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)
        self.config = os.path.join(self.work, "rclone.conf")
        lines = ["[%s]" % REMOTE, "type = webdav", "url = %s%s" % (self.server.url, BOX_PATH),
                 "vendor = owncloud"]
        if self.auth is not None:
            obscured = yield in_thread(run, ["rclone", "obscure", "-"],
                                       input=self.auth.password + "\n")
            lines += ["user = %s" % self.auth.user, "pass = %s" % obscured.stdout.strip()]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.config, 0o600)
        self.env = {"PATH": os.environ.get("PATH", ""), "HOME": self.work,
                    "LC_ALL": "C.UTF-8"}

    def rclone(self, *args, check=True):
        """``rclone ARGS --config FILE`` in a thread: its CompletedProcess."""
        return in_thread(run, ["rclone", *args, "--config", self.config,
                               "--cache-dir", os.path.join(self.work, "cache"),
                               "--retries", "1", "--low-level-retries", "1"],
                         env=self.env, check=check, timeout=600)

    def methods(self, since):
        """Counter of (method, status) the server answered since ``since``
        lines of its access log; and the new length."""
        log = accessLog(self.server)
        return Counter((m, s) for m, _, s in log[since:]), len(log)

    @defer.inlineCallbacks
    def lastmodified(self, path):
        code, _, body = yield fetch(
            self.server, self.auth, "PROPFIND", quote(path),
            b'<D:propfind xmlns:D="DAV:"><D:prop><D:getlastmodified/></D:prop></D:propfind>',
            {"Depth": "0"})
        self.assertEqual(code, 207, body)
        return etree.fromstring(body).findtext(".//{DAV:}getlastmodified")

    @defer.inlineCallbacks
    def test_copy_check_sync_about(self):
        yield self.start()
        tree = os.path.join(self.work, "tree")
        os.makedirs(tree)
        made = yield in_thread(localtree.make_tree, tree, extra_names=[localtree.LONGEST])
        times = yield in_thread(set_times, tree)
        self.assertEqual(len(times), len(made))

        # copy: one PUT per file, each with the file's time
        _, mark = self.methods(0)
        yield self.rclone("copy", tree, REMOTE + ":tree")
        counts, mark = self.methods(mark)
        self.assertEqual(counts[("PUT", 201)], len(made), counts)
        self.assertEqual(sum(n for (m, _), n in counts.items() if m == "PUT"), len(made))
        for rel in ("dir04/sub 2/file07.txt", os.path.join("special names", localtree.LONGEST)):
            shown = yield self.lastmodified(BOX_PATH + "tree/" + rel)
            self.assertEqual(shown, time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                                  time.gmtime(times[rel])))
        listed = yield self.rclone("lsjson", "-R", "--files-only", REMOTE + ":tree")
        remote = {e["Path"]: e for e in json.loads(listed.stdout)}
        self.assertEqual(set(remote), set(made))
        for rel, seconds in times.items():
            stamp = remote[rel]["ModTime"]
            self.assertTrue(stamp.startswith(time.strftime("%Y-%m-%dT%H:%M:%S",
                                                           time.gmtime(seconds))), (rel, stamp))
            self.assertEqual(remote[rel]["Size"], os.path.getsize(os.path.join(tree, rel)))

        # check: the same files, the same sizes
        checked = yield self.rclone("check", tree, REMOTE + ":tree")
        self.assertIn("0 differences found", checked.stderr)
        self.assertIn("%d matching files" % len(made), checked.stderr)

        # sync after changes: only the changes move
        with open(os.path.join(tree, "dir01/sub 1/file01.txt"), "ab") as f:
            f.write(b"appended")
        with open(os.path.join(tree, "special names/hash#1.txt"), "wb") as f:
            f.write(b"rewritten with another size")
        with open(os.path.join(tree, "dir02/new file #2.txt"), "wb") as f:
            f.write(b"new")
        os.unlink(os.path.join(tree, "dir03/sub 3/file03.txt"))
        synced = yield self.rclone("sync", tree, REMOTE + ":tree", "-v")
        counts, mark = self.methods(mark)
        puts = sum(n for (m, _), n in counts.items() if m == "PUT")
        deletes = sum(n for (m, _), n in counts.items() if m == "DELETE")
        self.assertEqual((puts, deletes), (3, 1), (counts, synced.stderr))
        self.assertEqual(len(re.findall(r"Copied \(replaced existing\)", synced.stderr)), 2)
        self.assertEqual(len(re.findall(r"Copied \(new\)", synced.stderr)), 1)
        self.assertEqual(len(re.findall(r": Deleted", synced.stderr)), 1)
        checked = yield self.rclone("check", tree, REMOTE + ":tree")
        self.assertIn("0 differences found", checked.stderr)
        # again: nothing to do (sizes and times agree)
        yield self.rclone("sync", tree, REMOTE + ":tree")
        counts, mark = self.methods(mark)
        self.assertEqual([k for k in counts if k[0] in ("PUT", "DELETE", "MOVE", "COPY")], [])
        for rel in ("dir01/sub 1/file01.txt", "special names/hash#1.txt", "dir02/new file #2.txt"):
            code, _, body = yield fetch(self.server, self.auth, "GET",
                                        quote(BOX_PATH + "tree/" + rel))
            with open(os.path.join(tree, rel), "rb") as f:
                self.assertEqual((code, body), (200, f.read()), rel)

        # about: the box's quota and usage
        yield in_thread(setQuota, self.server, "1G")
        about = yield self.rclone("about", "--json", REMOTE + ":")
        figures = json.loads(about.stdout)
        used = sum(os.path.getsize(os.path.join(tree, rel))
                   for rel in localtree.digest(tree))
        self.assertEqual(figures, {"total": 1024 ** 3, "used": used, "free": 1024 ** 3 - used})

        # past the quota: refused (507), nothing left behind
        yield in_thread(setQuota, self.server, str(used + 1000))
        with open(os.path.join(self.work, "big.bin"), "wb") as f:
            f.write(b"b" * 5000)
        refused = yield self.rclone("copy", os.path.join(self.work, "big.bin"),
                                    REMOTE + ":tree", check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("507", refused.stderr)
        self.assertIn("PR507-DV-0001", refused.stderr)
        code, _, _ = yield fetch(self.server, self.auth, "GET", BOX_PATH + "tree/big.bin")
        self.assertEqual(code, 404)
        yield in_thread(setQuota, self.server, "none")
        about = yield self.rclone("about", "--json", REMOTE + ":")
        self.assertGreater(json.loads(about.stdout)["free"], 1000)

        # mount: everything read back through FUSE
        requireMounts()
        point = os.path.join(self.work, "mnt")
        mount = ProcessMount(self, ["rclone", "mount", REMOTE + ":", point, "--config",
                                    self.config, "--cache-dir", os.path.join(self.work, "cache"),
                                    "--read-only", "--dir-cache-time", "1s"],
                             point, env=self.env, log=os.path.join(self.work, "mount.log"))
        yield in_thread(mount.start)
        expected = yield in_thread(localtree.digest, tree)
        found = yield in_thread(localtree.digest, os.path.join(point, "tree"))
        self.assertEqual(found, expected)
        st = os.stat(os.path.join(point, "tree", "dir04", "sub 2", "file07.txt"))
        self.assertEqual(int(st.st_mtime), times["dir04/sub 2/file07.txt"])
        yield in_thread(mount.stop)
