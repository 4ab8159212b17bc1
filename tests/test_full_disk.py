"""Full disk (issue 4, item 8): an ENOSPC injected in the store answers 503
PR503-SV-0005, leaves the previous state intact (bytes, properties, ETag), no
temporary file behind, and the server keeps serving reads."""
import errno
import os

from twisted.internet import defer

from personium_dav.store import layout
from personium_dav.store import props as props_module
from personium_dav.store import tree as tree_module
from .support import hardening
from .support.helpers import BOX, DavTestCase

PROP = (b'<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:a>%s</Z:a>'
        b'</D:prop></D:set></D:propertyupdate>')


REAL_FSYNC = os.fsync


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FullDiskTests(DavTestCase):

    @defer.inlineCallbacks
    def setUp(self):
        super().setUp()
        yield self.request("MKCOL", BOX + "col")
        answer = yield self.request("PUT", BOX + "col/f.txt", b"old bytes",
                                    {"Content-Type": "text/plain"})
        self.assertEqual(answer.code, 201)
        answer = yield self.request("PROPPATCH", BOX + "col/f.txt", PROP % b"old")
        self.assertEqual(answer.code, 207)
        answer = yield self.request("PROPPATCH", BOX + "col", PROP % b"colold")
        self.assertEqual(answer.code, 207)
        self.before = yield self.state()

    @defer.inlineCallbacks
    def state(self):
        f = yield self.request("GET", BOX + "col/f.txt")
        fp = yield self.request("PROPFIND", BOX + "col/f.txt", headers={"Depth": "0"})
        cp = yield self.request("PROPFIND", BOX + "col", headers={"Depth": "1"})
        box = yield self.request("PROPFIND", BOX, headers={"Depth": "1"})
        self.assertEqual((f.code, fp.code, cp.code, box.code), (200, 207, 207, 207))
        return (f.body, f.header("etag"), fp.body, cp.body, box.body)

    @defer.inlineCallbacks
    def assertIntact(self, answer):
        self.assertError(answer, 503, "PR503-SV-0005",
                         "Operation is prohibited as one or more disks are almost full.")
        after = yield self.state()  # reads still work
        self.assertEqual(after, self.before)
        self.assertEqual(os.listdir(os.path.join(self.data, layout.TMP)), [])
        for directory, dirs, files in os.walk(os.path.join(self.data, "cell1")):
            self.assertNotIn(layout.SIDECAR_TMP, files)

    @defer.inlineCallbacks
    def everything_fails(self, target, name, only=None):
        self.patch(target, name, enospc)
        for method, path, body, headers in (
                ("PUT", "col/f.txt", b"new bytes", {"Content-Type": "text/plain"}),
                ("PUT", "col/g.txt", b"new file", {"Content-Type": "text/plain"}),
                ("PROPPATCH", "col/f.txt", PROP % b"new", {}),
                ("PROPPATCH", "col", PROP % b"new", {}),
                ("MKCOL", "col2", b"", {}),
                ("MKCOL", "svc", b'<D:mkcol xmlns:D="DAV:" xmlns:p="urn:x-personium:xmlns"><D:set>'
                 b'<D:prop><D:resourcetype><D:collection/><p:service/></D:resourcetype>'
                 b'</D:prop></D:set></D:mkcol>', {"Content-Type": "application/xml"}),
                ("COPY", "col/f.txt", b"", {"Destination": "http://localhost" + BOX + "col/h.txt"}),
                ("COPY", "col", b"", {"Destination": "http://localhost" + BOX + "col3"}),
        ):
            if only is not None and (method, path) not in only:
                continue
            answer = yield self.request(method, BOX + path, body, headers)
            yield self.assertIntact(answer)

    def test_fsync(self):
        """Every durable write fsyncs before it is visible: fail them all."""
        return self.everything_fails(os, "fsync")

    def test_sidecar_write(self):
        """Every request that writes a sidecar (a PUT writes none)."""
        return self.everything_fails(props_module, "encode", only={
            ("PROPPATCH", "col/f.txt"), ("PROPPATCH", "col"), ("MKCOL", "col2"),
            ("MKCOL", "svc"), ("COPY", "col/f.txt"), ("COPY", "col")})

    @defer.inlineCallbacks
    def test_body_copy(self):
        self.patch(tree_module.shutil, "copyfileobj", enospc)
        answer = yield self.request("PUT", BOX + "col/f.txt", b"new", {"Content-Type": "text/plain"})
        yield self.assertIntact(answer)

    @defer.inlineCallbacks
    def test_xattr(self):
        self.patch(layout.os, "setxattr", enospc)
        answer = yield self.request("PUT", BOX + "col/f.txt", b"new", {"Content-Type": "text/plain"})
        yield self.assertIntact(answer)

    @defer.inlineCallbacks
    def test_recovers(self):
        self.patch(os, "fsync", enospc)
        answer = yield self.request("PUT", BOX + "col/f.txt", b"new", {"Content-Type": "text/plain"})
        self.assertEqual(answer.code, 503)
        self.patch(os, "fsync", REAL_FSYNC)
        answer = yield self.request("PUT", BOX + "col/f.txt", b"new", {"Content-Type": "text/plain"})
        self.assertEqual(answer.code, 204)
        answer = yield self.request("GET", BOX + "col/f.txt")
        self.assertEqual(answer.body, b"new")


class StreamedFullDiskTests(DavTestCase):
    """Over real HTTP, where PUT bodies stream to :tmp as they arrive."""

    @defer.inlineCallbacks
    def setUp(self):
        super().setUp()
        self.server = hardening.LoopbackServer(self)
        self.http = hardening.HTTP(self.server.url, auth=self.server.authHeaders)
        answer = yield self.http("PUT", BOX + "f.txt", b"old bytes", {"Content-Type": "text/plain"})
        self.assertEqual(answer.code, 201)
        self.etag = answer.header(b"etag")

    @defer.inlineCallbacks
    def assertIntact(self, answer):
        self.assertEqual(answer.code, 503, answer.body)
        self.assertIn(b"PR503-SV-0005", answer.body)
        answer = yield self.http("GET", BOX + "f.txt")
        self.assertEqual((answer.code, answer.body, answer.header(b"etag")),
                         (200, b"old bytes", self.etag))
        self.assertEqual(self.server.tmp_files(), [])

    @defer.inlineCallbacks
    def test_fsync_of_streamed_body(self):
        self.patch(os, "fsync", enospc)
        answer = yield self.http("PUT", BOX + "f.txt", b"n" * 300000, {"Content-Type": "text/plain"})
        self.patch(os, "fsync", REAL_FSYNC)
        yield self.assertIntact(answer)

    @defer.inlineCallbacks
    def test_write_of_streamed_body(self):
        base = self.server.site.requestFactory

        class Full:
            def write(self, data):
                enospc()

            def close(self):
                pass

        class FullDisk(base):
            def gotLength(self, length):
                super().gotLength(length)
                if self.bodyPath is not None:
                    self.content.close()
                    self.content = Full()

        self.server.site.requestFactory = FullDisk
        answer = yield self.http("PUT", BOX + "f.txt", b"n" * 300000, {"Content-Type": "text/plain"})
        self.server.site.requestFactory = base
        yield hardening.sleep(0.05)
        yield self.assertIntact(answer)
