"""``X-OC-Mtime`` on PUT (ownCloud's header; rclone's ``vendor owncloud``
sends it): the client's modification time becomes ``getlastmodified``, the
answer says ``accepted``, anything but whole seconds is 400 with nothing
written, and an ETag is never repeated by a file made again with the same
time."""
from twisted.internet import defer

from personium_dav.config import Config
from .support.helpers import BOX, DavTestCase

SECONDS = 1234567890
HTTP_DATE = "Fri, 13 Feb 2009 23:31:30 GMT"


class OcMtimeTests(DavTestCase):
    config = Config(collection_semantics="rfc4918")

    @defer.inlineCallbacks
    def lastmodified(self, path):
        answer = yield self.request(
            "PROPFIND", BOX + path, b'<D:propfind xmlns:D="DAV:"><D:prop><D:getlastmodified/>'
            b"<D:getetag/></D:prop></D:propfind>", {"Depth": "0"})
        self.assertEqual(answer.code, 207, answer.body)
        xml = answer.xml()
        return xml.findtext(".//{DAV:}getlastmodified"), xml.findtext(".//{DAV:}getetag")

    @defer.inlineCallbacks
    def test_accepted(self):
        answer = yield self.request("PUT", BOX + "f.txt", b"one",
                                    {"X-OC-Mtime": str(SECONDS)})
        self.assertEqual(answer.code, 201)
        self.assertEqual(answer.header("x-oc-mtime"), "accepted")
        modified, etag = yield self.lastmodified("f.txt")
        self.assertEqual(modified, HTTP_DATE)
        self.assertEqual(etag, answer.header("etag"))
        got = yield self.request("GET", BOX + "f.txt")
        self.assertEqual(got.header("last-modified"), HTTP_DATE)
        # an overwrite takes its own time; the ETag changes
        answer2 = yield self.request("PUT", BOX + "f.txt", b"two",
                                     {"X-OC-Mtime": " %d " % (SECONDS + 60)})
        self.assertEqual((answer2.code, answer2.header("x-oc-mtime")), (204, "accepted"))
        self.assertNotEqual(answer2.header("etag"), answer.header("etag"))
        modified, _ = yield self.lastmodified("f.txt")
        self.assertEqual(modified, "Fri, 13 Feb 2009 23:32:30 GMT")
        # without the header: the server's time, no X-OC-Mtime in the answer
        answer3 = yield self.request("PUT", BOX + "f.txt", b"three")
        self.assertEqual(answer3.code, 204)
        self.assertIsNone(answer3.header("x-oc-mtime"))
        modified, _ = yield self.lastmodified("f.txt")
        self.assertNotIn("2009", modified)

    @defer.inlineCallbacks
    def test_limits(self):
        for value in ("0", "253402300799"):  # the epoch, and the last second of year 9999
            answer = yield self.request("PUT", BOX + "edge", b"x", {"X-OC-Mtime": value})
            self.assertIn(answer.code, (201, 204), value)
        modified, _ = yield self.lastmodified("edge")
        self.assertEqual(modified, "Fri, 31 Dec 9999 23:59:59 GMT")

    @defer.inlineCallbacks
    def test_refused(self):
        yield self.request("PUT", BOX + "kept", b"old")
        for value in ("abc", "-5", "1.5", "", "12345678901234", "253402300800", "1e9",
                      "\uff11\uff12", "0x10", "+5", "5 6"):
            for path in ("kept", "new"):
                answer = yield self.request(
                    "PUT", BOX + path, b"new", {"X-OC-Mtime": value.encode("utf-8")})
                self.assertError(answer, 400, "PR400-DV-0009")
                self.assertIn("X-OC-Mtime", answer.json()["message"]["value"], value)
        got = yield self.request("GET", BOX + "kept")
        self.assertEqual(got.body, b"old")
        got = yield self.request("GET", BOX + "new")
        self.assertEqual(got.code, 404)

    @defer.inlineCallbacks
    def test_etag_not_repeated(self):
        """A file deleted and made again with the same time and the same
        version does not get its predecessor's ETag (a client's cache would
        take the new bytes for the old)."""
        first = yield self.request("PUT", BOX + "f", b"old", {"X-OC-Mtime": str(SECONDS)})
        yield self.request("DELETE", BOX + "f")
        second = yield self.request("PUT", BOX + "f", b"new", {"X-OC-Mtime": str(SECONDS)})
        self.assertEqual(second.code, 201)
        self.assertNotEqual(first.header("etag"), second.header("etag"))
        answer = yield self.request("GET", BOX + "f", headers={"If-None-Match": first.header("etag")})
        self.assertEqual((answer.code, answer.body), (200, b"new"))
        answer = yield self.request("GET", BOX + "f", headers={"If-None-Match": second.header("etag")})
        self.assertEqual(answer.code, 304)
