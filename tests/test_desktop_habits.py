"""What desktop WebDAV clients (Windows' mini-redirector, macOS Finder,
GNOME gvfs, KDE KIO, davfs2) do that a test suite written from the RFC might
not: collection URLs without their slash, parsers that expect the ``D:``
prefix, Windows' own properties, big folders, honest OPTIONS, HEAD probes.
"""
from urllib.parse import quote

from lxml import etree
from twisted.internet import defer

from personium_dav.config import Config
from personium_dav.web.site import makeResource
from .support.helpers import BOX, DavTestCase

from treq.testing import StubTreq

MS = "urn:schemas-microsoft-com:"
WIN32_PROPPATCH = (
    '<?xml version="1.0" encoding="utf-8" ?>'
    '<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:">'
    "<D:set><D:prop>"
    "<Z:Win32CreationTime>Tue, 24 Nov 2026 10:00:00 GMT</Z:Win32CreationTime>"
    "<Z:Win32LastAccessTime>Tue, 24 Nov 2026 10:00:01 GMT</Z:Win32LastAccessTime>"
    "<Z:Win32LastModifiedTime>Tue, 24 Nov 2026 10:00:02 GMT</Z:Win32LastModifiedTime>"
    "<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>"
    "</D:prop></D:set></D:propertyupdate>").encode()
WIN32 = {
    "Win32CreationTime": "Tue, 24 Nov 2026 10:00:00 GMT",
    "Win32LastAccessTime": "Tue, 24 Nov 2026 10:00:01 GMT",
    "Win32LastModifiedTime": "Tue, 24 Nov 2026 10:00:02 GMT",
    "Win32FileAttributes": "00000020",
}
# what Windows sends with it (its own quoting of the charset)
WINDOWS_HEADERS = {"Content-Type": 'text/xml; charset="utf-8"',
                   "User-Agent": "Microsoft-WebDAV-MiniRedir/10.0.19045"}


class DesktopTestCase(DavTestCase):
    def put(self, path, body=b"x", headers=None):
        return self.request("PUT", path, body, headers)

    def propfind(self, path, depth="0", body=b"", headers=None):
        hdrs = {"Depth": depth}
        hdrs.update(headers or {})
        return self.request("PROPFIND", path, body, hdrs)

    def assertDPrefix(self, answer, root="multistatus"):
        """DAV: is bound to D: (and only to it), and every DAV: element uses it."""
        self.assertEqual(answer.header("content-type"), "application/xml; charset=utf-8")
        doc = answer.xml()
        self.assertEqual(doc.tag, "{DAV:}" + root)
        self.assertIn(b'xmlns:D="DAV:"', answer.body)
        self.assertNotIn(b'xmlns="DAV:"', answer.body)
        count = 0
        for el in doc.iter():
            if not isinstance(el.tag, str):
                continue
            for prefix, uri in el.nsmap.items():
                if uri == "DAV:":
                    self.assertEqual(prefix, "D", etree.tostring(el)[:200])
            if etree.QName(el).namespace == "DAV:":
                self.assertEqual(el.prefix, "D", etree.tostring(el)[:200])
                count += 1
        self.assertGreater(count, 1)


class NoTrailingSlash(DesktopTestCase):
    """Finder, Windows and davfs2 ask for a folder as ``/a/b`` as often as
    ``/a/b/``: answered directly (207), never redirected, with the
    collection's own href (slash added)."""

    @defer.inlineCallbacks
    def test_propfind_depth_0_and_1(self):
        yield self.request("MKCOL", BOX + "folder")
        yield self.put(BOX + "folder/a.txt")
        for depth in ("0", "1"):
            answer = yield self.propfind(BOX + "folder", depth)
            self.assertEqual(answer.code, 207, answer.body)
            self.assertIsNone(answer.header("location"))
            hrefs = [h.text for h in answer.xml().iterfind("{DAV:}response/{DAV:}href")]
            expected = [BOX + "folder/"] + ([BOX + "folder/a.txt"] if depth == "1" else [])
            self.assertEqual(hrefs, expected)
            self.assertIsNotNone(answer.xml().find(".//{DAV:}resourcetype/{DAV:}collection"))

    @defer.inlineCallbacks
    def test_box_and_service_collection(self):
        answer = yield self.propfind(BOX.rstrip("/"), "1")
        self.assertEqual(answer.code, 207, answer.body)
        self.assertEqual(answer.xml().findtext(".//{DAV:}href"), BOX)
        body = (b'<D:mkcol xmlns:D="DAV:" xmlns:p="urn:x-personium:xmlns"><D:set><D:prop>'
                b"<D:resourcetype><D:collection/><p:service/></D:resourcetype>"
                b"</D:prop></D:set></D:mkcol>")
        made = yield self.request("MKCOL", BOX + "svc", body, {"Content-Type": "application/xml"})
        self.assertEqual(made.code, 201, made.body)
        answer = yield self.propfind(BOX + "svc", "1")
        self.assertEqual(answer.code, 207, answer.body)
        hrefs = [h.text for h in answer.xml().iterfind("{DAV:}response/{DAV:}href")]
        self.assertEqual(hrefs, [BOX + "svc/", BOX + "svc/__src/"])

    @defer.inlineCallbacks
    def test_other_methods_on_a_folder_without_slash(self):
        """GET, OPTIONS, PROPPATCH, COPY, MOVE and DELETE too (Explorer
        renames and deletes folders by their slash-less URL)."""
        yield self.request("MKCOL", BOX + "folder")
        yield self.put(BOX + "folder/a.txt")
        self.assertEqual((yield self.request("GET", BOX + "folder")).code, 200)
        self.assertEqual((yield self.request("OPTIONS", BOX + "folder")).code, 200)
        answer = yield self.request("PROPPATCH", BOX + "folder", WIN32_PROPPATCH, WINDOWS_HEADERS)
        self.assertEqual(answer.code, 207, answer.body)
        dest = {"Destination": self.url(BOX + "copy")}
        self.assertEqual((yield self.request("COPY", BOX + "folder", headers=dest)).code, 201)
        dest = {"Destination": self.url(BOX + "renamed")}
        self.assertEqual((yield self.request("MOVE", BOX + "folder", headers=dest)).code, 201)
        answer = yield self.propfind(BOX + "renamed", "1")
        self.assertEqual(len(answer.xml().findall("{DAV:}response")), 2)
        answer = yield self.request("DELETE", BOX + "copy", headers={"X-Personium-Recursive": "true"})
        self.assertEqual(answer.code, 204, answer.body)
        self.assertEqual((yield self.propfind(BOX + "copy")).code, 404)


class DPrefix(DesktopTestCase):
    """Some clients match ``D:`` literally instead of resolving namespaces
    (older Windows and Java parsers): every multistatus uses ``D:`` for
    ``DAV:``, and nothing else does."""

    @defer.inlineCallbacks
    def setUp(self):
        super().setUp()
        yield self.request("MKCOL", BOX + "folder")
        yield self.put(BOX + "folder/a.txt", b"hello", {"Content-Type": "text/plain"})
        yield self.request("PROPPATCH", BOX + "folder/a.txt", WIN32_PROPPATCH, WINDOWS_HEADERS)

    @defer.inlineCallbacks
    def test_propfind(self):
        bodies = [
            b"",
            b'<propfind xmlns="DAV:"><allprop/></propfind>',
            b'<a:propfind xmlns:a="DAV:"><a:propname/></a:propfind>',
            # a client's own prefix for DAV:, a missing property (404 propstat)
            b'<x:propfind xmlns:x="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><x:prop>'
            b"<x:getcontentlength/><x:displayname/><Z:Win32FileAttributes/><Z:nope/>"
            b"</x:prop></x:propfind>",
        ]
        for body in bodies:
            for path, depth in ((BOX + "folder/", "1"), (BOX + "folder/a.txt", "0"), (BOX, "0")):
                answer = yield self.propfind(path, depth, body)
                self.assertEqual(answer.code, 207, answer.body)
                self.assertDPrefix(answer)

    @defer.inlineCallbacks
    def test_proppatch(self):
        # success, with the client's own prefix for DAV:
        body = (b'<a:propertyupdate xmlns:a="DAV:" xmlns:z="urn:x"><a:set><a:prop>'
                b"<z:k>v</z:k></a:prop></a:set><a:remove><a:prop><z:gone/></a:prop>"
                b"</a:remove></a:propertyupdate>")
        answer = yield self.request("PROPPATCH", BOX + "folder/a.txt", body)
        self.assertEqual(answer.code, 207, answer.body)
        self.assertDPrefix(answer)
        # failure: a protected property (403) and the others (424)
        body = (b'<propertyupdate xmlns="DAV:"><set><prop><getetag>x</getetag>'
                b'<k xmlns="urn:x">w</k></prop></set></propertyupdate>')
        answer = yield self.request("PROPPATCH", BOX + "folder/a.txt", body)
        self.assertEqual(answer.code, 207, answer.body)
        self.assertDPrefix(answer)
        statuses = [s.text for s in answer.xml().iter("{DAV:}status")]
        self.assertEqual(sorted(statuses), ["HTTP/1.1 403 Forbidden",
                                            "HTTP/1.1 424 Failed Dependency"])

    @defer.inlineCallbacks
    def test_dead_properties_in_dav_namespace(self):
        """A dead property in DAV: (a client's own prefix, or the default
        namespace) and one whose namespace the client bound to D: stored
        and served with D: meaning DAV: only, names and values unchanged."""
        body = (b'<a:propertyupdate xmlns:a="DAV:"><a:set><a:prop>'
                b'<a:displayname xml:lang="en">Folder <a:b a:w="1">bold</a:b></a:displayname>'
                b'<note xmlns="DAV:">n<sub/></note>'
                b'<D:color xmlns:D="urn:x"><D:hue>red</D:hue></D:color>'
                b"</a:prop></a:set></a:propertyupdate>")
        answer = yield self.request("PROPPATCH", BOX + "folder/a.txt", body)
        self.assertEqual(answer.code, 207, answer.body)
        self.assertDPrefix(answer)
        for depth, propfind in (("0", b""), ("1", b""), ("0", (
                b'<propfind xmlns="DAV:"><prop><displayname/><note/>'
                b'<color xmlns="urn:x"/></prop></propfind>'))):
            path = BOX + "folder/" + ("a.txt" if depth == "0" else "")
            answer = yield self.propfind(path, depth, propfind)
            self.assertEqual(answer.code, 207, answer.body)
            self.assertDPrefix(answer)
            self.assertNotIn(b'xmlns:D="urn:x"', answer.body)
            doc = answer.xml()
            name = doc.find(".//{DAV:}displayname")
            self.assertEqual(name.get("{http://www.w3.org/XML/1998/namespace}lang"), "en")
            self.assertEqual(name.text, "Folder ")
            self.assertEqual([(c.tag, c.get("{DAV:}w"), c.text) for c in name],
                             [("{DAV:}b", "1", "bold")])
            self.assertEqual([c.tag for c in doc.find(".//{DAV:}note")], ["{DAV:}sub"])
            self.assertEqual(doc.find(".//{urn:x}color/{urn:x}hue").text, "red")

    @defer.inlineCallbacks
    def test_mkcol_failure(self):
        body = (b'<mkcol xmlns="DAV:"><set><prop><resourcetype><collection/>'
                b'<calendar xmlns="urn:ietf:params:xml:ns:caldav"/></resourcetype>'
                b"</prop></set></mkcol>")
        answer = yield self.request("MKCOL", BOX + "cal", body, {"Content-Type": "application/xml"})
        self.assertEqual(answer.code, 403, answer.body)
        self.assertDPrefix(answer, "mkcol-response")
        self.assertEqual((yield self.propfind(BOX + "cal")).code, 404)


class Win32Properties(DesktopTestCase):
    """Windows' mini-redirector PUTs a file, then PROPPATCHes its times and
    attributes in ``urn:schemas-microsoft-com:``: accepted (200 each, not
    403/424, or Explorer reports the copy failed), stored, and served back."""

    @defer.inlineCallbacks
    def test_after_put(self):
        path = BOX + "Report.docx"
        # Explorer's copy: an empty PUT, the PROPPATCH, then the content
        self.assertEqual((yield self.put(path, b"")).code, 201)
        before = (yield self.propfind(path)).xml().findtext(".//{DAV:}getetag")
        answer = yield self.request("PROPPATCH", path, WIN32_PROPPATCH, WINDOWS_HEADERS)
        self.assertEqual(answer.code, 207, answer.body)
        self.assertDPrefix(answer)
        stats = answer.xml().findall(".//{DAV:}propstat")
        self.assertEqual([s.findtext("{DAV:}status") for s in stats], ["HTTP/1.1 200 OK"])
        self.assertEqual(sorted(etree.QName(p).localname for p in stats[0].find("{DAV:}prop")),
                         sorted(WIN32))
        self.assertNotEqual(answer.header("etag"), before)
        self.assertEqual((yield self.put(path, b"PK\x03\x04 contents")).code, 204)
        yield self.assertWin32(path)
        # stored: a fresh resource on the same data root still has them
        self.stub = StubTreq(makeResource(self.data, self.config))
        yield self.assertWin32(path)

    @defer.inlineCallbacks
    def test_folder_and_update(self):
        yield self.request("MKCOL", BOX + "Photos")
        answer = yield self.request("PROPPATCH", BOX + "Photos", WIN32_PROPPATCH, WINDOWS_HEADERS)
        self.assertEqual(answer.code, 207, answer.body)
        yield self.assertWin32(BOX + "Photos/")
        # a later touch replaces one value and keeps the others
        body = ('<D:propertyupdate xmlns:D="DAV:" xmlns:Z="%s"><D:set><D:prop>'
                "<Z:Win32LastModifiedTime>Wed, 25 Nov 2026 08:00:00 GMT</Z:Win32LastModifiedTime>"
                "</D:prop></D:set></D:propertyupdate>" % MS).encode()
        answer = yield self.request("PROPPATCH", BOX + "Photos", body, WINDOWS_HEADERS)
        self.assertEqual(answer.code, 207, answer.body)
        yield self.assertWin32(BOX + "Photos/", Win32LastModifiedTime="Wed, 25 Nov 2026 08:00:00 GMT")

    @defer.inlineCallbacks
    def assertWin32(self, path, **changed):
        expected = dict(WIN32, **changed)
        allprop = yield self.propfind(path)
        self.assertEqual(allprop.code, 207, allprop.body)
        named = yield self.propfind(path, "0", (
            '<D:propfind xmlns:D="DAV:" xmlns:Z="%s"><D:prop>%s</D:prop></D:propfind>'
            % (MS, "".join("<Z:%s/>" % n for n in WIN32))).encode())
        self.assertEqual(named.code, 207, named.body)
        for answer in (allprop, named):
            got = {name: answer.xml().findtext(".//{%s}%s" % (MS, name)) for name in WIN32}
            self.assertEqual(got, expected)


class LargeFolder(DesktopTestCase):
    """Opening a folder of 1,000 files in a file manager is one Depth 1
    PROPFIND: it stays under 1 MB, even when every file carries Windows'
    four properties, and is complete and well-formed (it is streamed)."""

    COUNT = 1000
    LIMIT = 1024 * 1024
    config = Config(durable=False)  # 2,000 writes: no fsync, the listing is the point
    timeout = 300

    @defer.inlineCallbacks
    def test_listing_of_1000_files(self):
        folder = BOX + "DCIM/"
        yield self.request("MKCOL", folder)
        names = ["IMG_2026%04d_%06d.JPG" % (i % 1231, i) for i in range(self.COUNT)]
        for start in range(0, self.COUNT, 8):
            yield defer.gatherResults([
                self.put(folder + n, b"\xff\xd8 jpeg", {"Content-Type": "image/jpeg"})
                for n in names[start:start + 8]])
        answer = yield self.propfind(folder, "1")
        self.assertEqual(answer.code, 207)
        plain = len(answer.body)
        self.assertLess(plain, self.LIMIT)
        self.assertDPrefix(answer)
        hrefs = [h.text for h in answer.xml().iterfind("{DAV:}response/{DAV:}href")]
        self.assertEqual(hrefs[0], folder)
        self.assertEqual(sorted(hrefs[1:]), sorted(folder + quote(n) for n in names))

        # Windows' four properties on every file, as Explorer sets them
        for name in names:
            answer = yield self.request("PROPPATCH", folder + name, WIN32_PROPPATCH,
                                        WINDOWS_HEADERS)
            self.assertEqual(answer.code, 207, answer.body)
        answer = yield self.propfind(folder, "1")
        self.assertEqual(answer.code, 207)
        self.assertLess(len(answer.body), self.LIMIT, (plain, len(answer.body)))
        self.assertDPrefix(answer)
        self.assertEqual(len(answer.xml().findall("{DAV:}response")), self.COUNT + 1)
        self.assertEqual(len(answer.xml().findall(".//{%s}Win32FileAttributes" % MS)), self.COUNT)


LOCKINFO = (b'<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
            b"<D:locktype><D:write/></D:locktype>"
            b"<D:owner><D:href>WORKGROUP\\user</D:href></D:owner></D:lockinfo>")


class HonestOptions(DesktopTestCase):
    """``DAV: 1, 2`` exactly where LOCK is taken (Finder mounts a class 1
    server read-only, Office opens its documents read-only): every existing
    resource and every unmapped URL in a collection; ``DAV: 1`` where it is
    not (an unmapped URL in ``__src``, whose sources are made by PUT). The
    locks are real: the desktop's LOCK, PUT with the token, UNLOCK."""

    @defer.inlineCallbacks
    def test_options(self):
        yield self.request("MKCOL", BOX + "folder")
        yield self.put(BOX + "folder/a.txt")
        body = (b'<D:mkcol xmlns:D="DAV:" xmlns:p="urn:x-personium:xmlns"><D:set><D:prop>'
                b"<D:resourcetype><D:collection/><p:service/></D:resourcetype>"
                b"</D:prop></D:set></D:mkcol>")
        yield self.request("MKCOL", BOX + "svc", body, {"Content-Type": "application/xml"})
        for path in (BOX, BOX + "folder/", BOX + "folder", BOX + "folder/a.txt",
                     BOX + "folder/new.txt", BOX + "svc/", BOX + "svc/__src/",
                     BOX + "svc/__src/new.js"):
            answer = yield self.request("OPTIONS", path)
            self.assertEqual(answer.code, 200, (path, answer.body))
            allow = [m.strip() for m in answer.header("allow").split(",")]
            self.assertIn("OPTIONS", allow, path)
            if path.endswith("new.js"):
                self.assertEqual(answer.headers.getRawHeaders(b"dav"), [b"1"], path)
                self.assertNotIn("LOCK", allow, path)
            else:
                self.assertEqual(answer.headers.getRawHeaders(b"dav"), [b"1, 2"], path)
                self.assertIn("LOCK", allow, path)
                self.assertEqual("UNLOCK" in allow, not path.endswith("new.txt"), path)

    @defer.inlineCallbacks
    def test_office_save(self):
        """Word's save of a new document: LOCK the unmapped URL (an empty
        file, 201), PUT with the token, PROPPATCH, UNLOCK."""
        path = BOX + "Report.docx"
        answer = yield self.request("LOCK", path, LOCKINFO, dict(
            WINDOWS_HEADERS, Timeout="Second-3600", Depth="0"))
        self.assertEqual(answer.code, 201, answer.body)
        token = answer.header("lock-token")
        self.assertRegex(token, r"^<urn:uuid:[0-9a-f-]{36}>$")
        self.assertIn(b"WORKGROUP\\user", answer.body)
        answer = yield self.put(path, b"PK\x03\x04", {"If": "(%s)" % token})
        self.assertEqual(answer.code, 204, answer.body)
        other = yield self.put(path, b"someone else")
        self.assertEqual(other.code, 423, other.body)
        answer = yield self.request("PROPPATCH", path, WIN32_PROPPATCH,
                                    dict(WINDOWS_HEADERS, If="(%s)" % token))
        self.assertEqual(answer.code, 207, answer.body)
        answer = yield self.request("UNLOCK", path, headers={"Lock-Token": token})
        self.assertEqual(answer.code, 204, answer.body)
        self.assertEqual((yield self.request("GET", path)).body, b"PK\x03\x04")
        self.assertEqual((yield self.put(path, b"free again")).code, 204)


class HeadProbes(DesktopTestCase):
    """Clients probe with HEAD before they write (webdavclient3's check(),
    gvfs, davfs2): a missing resource is 404, never 500 (twisted.web's own
    HEAD fallback used to reach a GET the resource does not have)."""

    @defer.inlineCallbacks
    def test_head(self):
        body = (b'<D:mkcol xmlns:D="DAV:" xmlns:p="urn:x-personium:xmlns"><D:set><D:prop>'
                b"<D:resourcetype><D:collection/><p:service/></D:resourcetype>"
                b"</D:prop></D:set></D:mkcol>")
        yield self.request("MKCOL", BOX + "svc", body, {"Content-Type": "application/xml"})
        yield self.put(BOX + "a.txt", b"hello")
        cases = [
            (BOX + "a.txt", 200),
            (BOX, 200),
            (BOX + "missing.txt", 404),
            (BOX + "missing/", 404),
            (BOX + "missing/deeper.txt", 404),
            (BOX + "bad:name", 404),
            (BOX + "svc/", 405),
            (BOX + "svc/__src/", 405),
            ("/nocell/box1/x", 404),
        ]
        for path, status in cases:
            answer = yield self.request("HEAD", path)
            self.assertEqual(answer.code, status, (path, answer.body))
            self.assertEqual(answer.body, b"", path)
