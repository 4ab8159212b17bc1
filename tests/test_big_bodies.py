"""Big bodies (issue 4, item 5): a PUT body streams into a temporary file in
the data root's ``:tmp`` as it arrives (never twisted.web's buffer) and that
file is renamed into place (not copied); a client that disconnects half-way
leaves the old file intact and no temporary file behind. The memory figure
for a 1 GiB PUT is measured by benchmarks/bigput.py, not here."""
import hashlib
import os

from twisted.internet import defer
from twisted.trial import unittest

from personium_dav.store import layout
from .support import hardening

BOX = "/cell1/box1/"


class BigBodyTests(unittest.TestCase):

    def setUp(self):
        self.server = hardening.LoopbackServer(self)
        self.http = hardening.HTTP(self.server.url, auth=self.server.authHeaders)
        self.seen = []
        base = self.server.site.requestFactory
        seen = self.seen

        class Recording(base):
            def requestReceived(self, command, path, version):
                if self.bodyPath is None:
                    seen.append((None, None, None))
                else:
                    seen.append((self.bodyPath, self.content.name,
                                 os.fstat(self.content.fileno()).st_ino))
                super().requestReceived(command, path, version)

        self.server.site.requestFactory = Recording

    def path(self, name):
        return os.path.join(self.server.data, "cell1", "box1", name)

    @defer.inlineCallbacks
    def test_streamed_to_tmp_and_renamed(self):
        body = os.urandom(3 * 1024 * 1024)
        answer = yield self.http("PUT", BOX + "big.bin", body,
                                 {"Content-Type": "application/octet-stream"})
        self.assertEqual(answer.code, 201, answer.body)
        body_path, name, inode = self.seen[-1]
        # the body went to a file in :tmp as it arrived ...
        self.assertEqual(os.path.dirname(body_path), os.path.join(self.server.data, layout.TMP))
        self.assertEqual(name, body_path)
        # ... and that very file (same inode: no second copy) is now the resource
        self.assertEqual(os.stat(self.path("big.bin")).st_ino, inode)
        with open(self.path("big.bin"), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).digest(), hashlib.sha256(body).digest())
        answer = yield self.http("GET", BOX + "big.bin")
        self.assertEqual(answer.body, body)
        self.assertEqual(self.server.tmp_files(), [])

    @defer.inlineCallbacks
    def test_refused_put_leaves_no_tmp(self):
        """A PUT answered with an error (409 here) deletes its streamed body."""
        answer = yield self.http("PUT", BOX + "missing/x.bin", b"x" * 200000,
                                 {"Content-Type": "application/octet-stream"})
        self.assertEqual(answer.code, 409)
        self.assertEqual(self.server.tmp_files(), [])

    @defer.inlineCallbacks
    def test_disconnect_half_way(self):
        answer = yield self.http("PUT", BOX + "f.bin", b"old content",
                                 {"Content-Type": "application/octet-stream"})
        self.assertEqual(answer.code, 201)
        etag = answer.header(b"etag")
        auth = self.server.authHeader

        def half(chunked):
            s = hardening.connect(self.server.portNumber)
            try:
                if chunked:
                    s.sendall(b"PUT /cell1/box1/f.bin HTTP/1.1\r\nHost: l\r\n%s"
                              b"Transfer-Encoding: chunked\r\n\r\n" % auth)
                    for _ in range(40):
                        s.sendall(b"10000\r\n" + b"n" * 0x10000 + b"\r\n")
                else:
                    s.sendall(b"PUT /cell1/box1/f.bin HTTP/1.1\r\nHost: l\r\n%s"
                              b"Content-Length: %d\r\n\r\n" % (auth, 10 * 1024 * 1024))
                    s.sendall(b"n" * (5 * 1024 * 1024))
            finally:
                s.close()

        for chunked in (False, True):
            yield hardening.in_thread(half, chunked)
            for _ in range(100):  # the server notices the closed connection
                if not self.server.open and not self.server.tmp_files():
                    break
                yield hardening.sleep(0.02)
            self.assertEqual(self.server.tmp_files(), [])
            answer = yield self.http("GET", BOX + "f.bin")
            self.assertEqual((answer.body, answer.header(b"etag")), (b"old content", etag))
