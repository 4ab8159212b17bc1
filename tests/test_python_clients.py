"""Round trips with the Python WebDAV libraries webdav4 (httpx) and
webdavclient3 (``webdav3``, requests) against the real ``twistd -n
personium-dav --collection-semantics rfc4918`` (what ordinary clients expect).

Both libraries are synchronous: each call runs in a thread
(``deferToThread``) while the server runs in its subprocess, and what a call
did is checked on the server with plain HTTP (``tests.support.clientauth.fetch``).
Credentials come from ``tests.support.clientauth`` (one place to change).

The quirks found (each pinned by a test below) are in docs/conformance.md,
section "Clients".
"""
import io
import os
from urllib.parse import quote

from lxml import etree
from twisted.internet import defer, threads
from twisted.trial import unittest

from .support.clientauth import BOX_PATH, fetch, setQuota, startClientServer, webdav3Options

try:
    from webdav4.client import Client as Webdav4Client
    from webdav4.client import HTTPError as Webdav4HTTPError
    from webdav4.client import ResourceAlreadyExists as Webdav4Exists
except ImportError:  # pragma: no cover - the test extra installs it
    Webdav4Client = None
try:
    from webdav3.client import Client as Webdav3Client
    from webdav3.exceptions import ResponseErrorCode
except ImportError:  # pragma: no cover
    Webdav3Client = None

RFC4918 = ("--collection-semantics", "rfc4918")
DATA = "Grüße, 世界\n".encode("utf-8") * 100
NS = "urn:example:client-props"


def in_thread(f, *args, **kwargs):
    return threads.deferToThread(f, *args, **kwargs)


def hrefs(body):
    return sorted(h.text for h in etree.fromstring(body).iterfind("{DAV:}response/{DAV:}href"))


class ClientTestCase(unittest.TestCase):
    library = None

    @defer.inlineCallbacks
    def setUp(self):
        if self.library is None:
            raise unittest.SkipTest("library not installed (pip install '.[test]')")
        self.server, self.auth = yield startClientServer(self, *RFC4918)
        self.local = os.path.abspath(self.mktemp())
        os.makedirs(self.local)

    def fetch(self, method, path, body=None, headers=None):
        return fetch(self.server, self.auth, method, quote(BOX_PATH + path), body, headers)

    @defer.inlineCallbacks
    def assertContent(self, path, data):
        code, _, body = yield self.fetch("GET", path)
        self.assertEqual(code, 200, path)
        self.assertEqual(body, data, path)

    @defer.inlineCallbacks
    def assertGone(self, path):
        code, _, _ = yield self.fetch("PROPFIND", path, headers={"Depth": "0"})
        self.assertEqual(code, 404, path)

    @defer.inlineCallbacks
    def setDeadProperty(self, path, name, value):
        body = ('<D:propertyupdate xmlns:D="DAV:" xmlns:x="%s"><D:set><D:prop>'
                "<x:%s>%s</x:%s></D:prop></D:set></D:propertyupdate>" % (NS, name, value, name))
        code, _, answer = yield self.fetch("PROPPATCH", path, body.encode(),
                                           {"Content-Type": "application/xml"})
        self.assertEqual(code, 207, answer)

    @defer.inlineCallbacks
    def deadProperty(self, path, name):
        body = ('<D:propfind xmlns:D="DAV:" xmlns:x="%s"><D:prop><x:%s/></D:prop>'
                "</D:propfind>" % (NS, name))
        code, _, answer = yield self.fetch("PROPFIND", path, body.encode(),
                                           {"Depth": "0", "Content-Type": "application/xml"})
        self.assertEqual(code, 207, answer)
        found = etree.fromstring(answer).find(".//{%s}%s" % (NS, name))
        return None if found is None else found.text


class Webdav4(ClientTestCase):
    """webdav4.client.Client: ls, upload, download, mkdir, move, copy, remove,
    info/get_props (live properties; webdav4 has no PROPPATCH call and reads
    only the live ones, so dead properties go through its ``propfind`` and
    ``request``)."""

    library = Webdav4Client

    def client(self):
        auth = self.auth.pair() if self.auth is not None else None
        return Webdav4Client(self.server.url + BOX_PATH, auth=auth, timeout=30)

    @defer.inlineCallbacks
    def test_round_trip(self):
        c = self.client()
        self.assertEqual((yield in_thread(c.options, "")), {"1", "2"})  # class 2: locking
        yield in_thread(c.mkdir, "docs")
        yield in_thread(c.upload_fileobj, io.BytesIO(DATA), "docs/a.txt")
        local = os.path.join(self.local, "ファイル.bin")
        with open(local, "wb") as f:
            f.write(DATA[:100])
        yield in_thread(c.upload_file, local, "docs/ファイル.bin")
        yield self.assertContent("docs/a.txt", DATA)
        yield self.assertContent("docs/ファイル.bin", DATA[:100])

        # ls: the members, with sizes and types; the collection itself left out
        listing = yield in_thread(c.ls, "docs")
        by_name = {e["name"]: e for e in listing}
        self.assertEqual(sorted(by_name), ["docs/a.txt", "docs/ファイル.bin"])
        self.assertEqual(by_name["docs/a.txt"]["content_length"], len(DATA))
        self.assertEqual(by_name["docs/a.txt"]["type"], "file")
        self.assertEqual(by_name["docs/a.txt"]["content_type"], "text/plain")
        self.assertEqual(by_name["docs/ファイル.bin"]["content_length"], 100)
        self.assertEqual((yield in_thread(c.ls, "", detail=False)), ["docs"])

        # download, and info agreeing with the server's own headers
        buf = io.BytesIO()
        yield in_thread(c.download_fileobj, "docs/a.txt", buf)
        self.assertEqual(buf.getvalue(), DATA)
        target = os.path.join(self.local, "down.bin")
        yield in_thread(c.download_file, "docs/ファイル.bin", target)
        with open(target, "rb") as f:
            self.assertEqual(f.read(), DATA[:100])
        code, headers, _ = yield self.fetch("HEAD", "docs/a.txt")
        info = yield in_thread(c.info, "docs/a.txt")
        self.assertEqual(info["etag"], headers["etag"])
        self.assertEqual(info["content_length"], len(DATA))
        self.assertIsNotNone(info["modified"])
        self.assertIsNotNone(info["created"])

        # move and copy of files, then of a collection; remove
        yield in_thread(c.move, "docs/a.txt", "docs/b.txt")
        yield self.assertGone("docs/a.txt")
        yield self.assertContent("docs/b.txt", DATA)
        yield in_thread(c.copy, "docs/b.txt", "docs/c.txt")
        yield self.assertContent("docs/c.txt", DATA)
        yield in_thread(c.copy, "docs", "docs-copy")
        yield in_thread(c.move, "docs-copy", "archive")
        yield self.assertGone("docs-copy/")
        yield self.assertContent("archive/ファイル.bin", DATA[:100])
        yield in_thread(c.remove, "docs/c.txt")
        yield self.assertGone("docs/c.txt")
        yield in_thread(c.remove, "archive")
        yield self.assertGone("archive/")
        code, _, body = yield self.fetch("PROPFIND", "docs/", headers={"Depth": "1"})
        self.assertEqual(hrefs(body), sorted(quote(BOX_PATH + p) for p in
                                             ("docs/", "docs/b.txt", "docs/ファイル.bin")))

    @defer.inlineCallbacks
    def test_refusals_map_to_its_exceptions(self):
        """405 on MKCOL of an existing collection and 412 on a MOVE with
        ``Overwrite: F`` (webdav4's default) become ResourceAlreadyExists."""
        c = self.client()
        yield in_thread(c.mkdir, "docs")
        yield self.assertFailure(in_thread(c.mkdir, "docs"), Webdav4Exists)
        yield in_thread(c.upload_fileobj, io.BytesIO(b"one"), "docs/a.txt")
        yield in_thread(c.upload_fileobj, io.BytesIO(b"two"), "docs/b.txt")
        yield self.assertFailure(in_thread(c.move, "docs/a.txt", "docs/b.txt"), Webdav4Exists)
        yield self.assertContent("docs/b.txt", b"two")
        yield in_thread(c.move, "docs/a.txt", "docs/b.txt", overwrite=True)
        yield self.assertContent("docs/b.txt", b"one")
        yield self.assertGone("docs/a.txt")

    @defer.inlineCallbacks
    def test_properties(self):
        """Live properties through get_props/get_property; dead ones through
        its propfind (Depth 0) and request("PROPPATCH")."""
        c = self.client()
        yield in_thread(c.upload_fileobj, io.BytesIO(DATA), "a.txt")
        props = yield in_thread(c.get_props, "a.txt")
        self.assertEqual(props.content_length, len(DATA))
        self.assertEqual(props.content_type, "text/plain")
        self.assertEqual(props.resource_type, "file")
        self.assertEqual((yield in_thread(c.get_property, "a.txt", "content_type")), "text/plain")
        self.assertTrue((yield in_thread(c.exists, "a.txt")))
        self.assertFalse((yield in_thread(c.exists, "nope.txt")))
        self.assertTrue((yield in_thread(c.isfile, "a.txt")))

        body = ('<D:propertyupdate xmlns:D="DAV:" xmlns:x="%s"><D:set><D:prop>'
                "<x:colour>teal</x:colour></D:prop></D:set></D:propertyupdate>" % NS)
        answer = yield in_thread(c.request, "PROPPATCH", "a.txt", content=body,
                                 headers={"Content-Type": "application/xml"})
        self.assertEqual(answer.status_code, 207)
        self.assertEqual((yield self.deadProperty("a.txt", "colour")), "teal")
        query = ('<D:propfind xmlns:D="DAV:" xmlns:x="%s"><D:prop><x:colour/></D:prop>'
                 "</D:propfind>" % NS)
        result = yield in_thread(c.propfind, "a.txt", data=query, headers={"Depth": "0"})
        response = result.get_response_for_path(BOX_PATH, "a.txt")
        self.assertEqual(response.properties.response_xml.findtext(".//{%s}colour" % NS), "teal")

    @defer.inlineCallbacks
    def test_depthless_propfind_on_a_collection(self):
        """Quirk: webdav4's isdir/exists/get_props send PROPFIND with no
        Depth, which RFC 4918 reads as infinity; the server refuses that on a
        collection (403, as Apache, nginx and lighttpd do by default). ls and
        info send Depth 1 and work."""
        c = self.client()
        yield in_thread(c.mkdir, "docs")
        failure = yield self.assertFailure(in_thread(c.isdir, "docs"), Webdav4HTTPError)
        self.assertEqual(failure.status_code, 403)
        info = yield in_thread(c.info, "docs")
        self.assertEqual(info["type"], "directory")


class WebdavClient3(ClientTestCase):
    """webdav3.client.Client: list, upload, download, mkdir, copy, move,
    clean, check/is_dir/info, get_property/set_property(_batch)."""

    library = Webdav3Client

    def client(self):
        return Webdav3Client(webdav3Options(self.server.url, self.auth))

    @defer.inlineCallbacks
    def test_round_trip(self):
        c = self.client()
        self.assertEqual((yield in_thread(c.list)), [])
        self.assertTrue((yield in_thread(c.mkdir, "docs")))
        yield in_thread(c.upload_to, DATA, "docs/a.txt")
        local = os.path.join(self.local, "ファイル.bin")
        with open(local, "wb") as f:
            f.write(DATA[:100])
        yield in_thread(c.upload_sync, remote_path="docs/ファイル.bin", local_path=local)
        yield self.assertContent("docs/a.txt", DATA)
        yield self.assertContent("docs/ファイル.bin", DATA[:100])

        self.assertEqual((yield in_thread(c.list)), ["docs/"])
        self.assertEqual(sorted((yield in_thread(c.list, "docs"))), ["a.txt", "ファイル.bin"])
        detailed = yield in_thread(c.list, "docs", get_info=True)
        by_path = {e["path"]: e for e in detailed}
        entry = by_path[BOX_PATH + "docs/a.txt"]
        self.assertEqual((entry["size"], entry["isdir"], entry["content_type"]),
                         (str(len(DATA)), False, "text/plain"))
        self.assertTrue((yield in_thread(c.check, "docs/a.txt")))
        self.assertFalse((yield in_thread(c.check, "docs/nope.txt")))  # HEAD 404
        self.assertTrue((yield in_thread(c.is_dir, "docs")))
        self.assertFalse((yield in_thread(c.is_dir, "docs/a.txt")))
        info = yield in_thread(c.info, "docs/a.txt")
        code, headers, _ = yield self.fetch("HEAD", "docs/a.txt")
        self.assertEqual((info["etag"], info["size"]), (headers["etag"], str(len(DATA))))

        buf = io.BytesIO()
        yield in_thread(c.download_from, buf, "docs/a.txt")
        self.assertEqual(buf.getvalue(), DATA)
        target = os.path.join(self.local, "down.bin")
        yield in_thread(c.download_sync, remote_path="docs/ファイル.bin", local_path=target)
        with open(target, "rb") as f:
            self.assertEqual(f.read(), DATA[:100])

        yield in_thread(c.copy, "docs/a.txt", "docs/b.txt")
        yield self.assertContent("docs/b.txt", DATA)
        yield in_thread(c.move, "docs/b.txt", "docs/c.txt")
        yield self.assertGone("docs/b.txt")
        yield self.assertContent("docs/c.txt", DATA)
        yield in_thread(c.copy, "docs", "docs-copy", depth="infinity")
        yield in_thread(c.move, "docs-copy", "archive")
        yield self.assertGone("docs-copy/")
        yield self.assertContent("archive/ファイル.bin", DATA[:100])
        yield in_thread(c.clean, "archive")
        yield self.assertGone("archive/")
        yield in_thread(c.clean, "docs/c.txt")
        yield self.assertGone("docs/c.txt")
        self.assertTrue((yield in_thread(c.mkdir, "deep/er/est", recursive=True)))
        self.assertTrue((yield in_thread(c.is_dir, "deep/er/est")))

    @defer.inlineCallbacks
    def test_properties(self):
        """set_property/set_property_batch/get_property, checked on the server
        (its PROPPATCH carries ``Content-Type:
        application/x-www-form-urlencoded`` and ``Depth: 1``: both ignored)."""
        c = self.client()
        yield in_thread(c.upload_to, b"x", "a.txt")
        yield in_thread(c.set_property, "a.txt", {"namespace": NS, "name": "colour", "value": "teal"})
        self.assertEqual((yield self.deadProperty("a.txt", "colour")), "teal")
        yield in_thread(c.set_property_batch, "a.txt", [
            {"namespace": NS, "name": "size", "value": "XL"},
            {"namespace": NS, "name": "colour", "value": "navy"},
        ])
        self.assertEqual((yield self.deadProperty("a.txt", "size")), "XL")
        self.assertEqual((yield self.deadProperty("a.txt", "colour")), "navy")
        got = yield in_thread(c.get_property, "a.txt", {"namespace": NS, "name": "colour"})
        self.assertEqual(got, "navy")
        yield self.setDeadProperty("a.txt", "note", "from the server side")
        got = yield in_thread(c.get_property, "a.txt", {"namespace": NS, "name": "note"})
        self.assertEqual(got, "from the server side")
        got = yield in_thread(c.get_property, "a.txt", {"namespace": NS, "name": "absent"})
        self.assertIsNone(got)
        # on a collection too
        yield in_thread(c.mkdir, "docs")
        yield in_thread(c.set_property, "docs", {"namespace": NS, "name": "colour", "value": "red"})
        self.assertEqual((yield self.deadProperty("docs/", "colour")), "red")

    @defer.inlineCallbacks
    def test_collection_copy_default_depth(self):
        """Quirk: webdavclient3's copy() sends ``Depth: 1`` for a collection
        by default, which RFC 4918 does not allow on COPY (0 or infinity):
        400 ``PR400-DV-0009``, as Apache answers. Pass depth="infinity"."""
        c = self.client()
        yield in_thread(c.mkdir, "docs")
        yield in_thread(c.upload_to, b"x", "docs/a.txt")
        failure = yield self.assertFailure(in_thread(c.copy, "docs", "docs2"), ResponseErrorCode)
        self.assertEqual(failure.code, 400)
        yield self.assertGone("docs2/")

    @defer.inlineCallbacks
    def test_free(self):
        """webdavclient3's free() reads ``D:quota-available-bytes`` (RFC 4331):
        the room the box's quota leaves, here 1 MiB less what is stored."""
        c = self.client()
        yield in_thread(c.upload_to, b"x" * 1000, "a.bin")
        yield in_thread(setQuota, self.server, "1M")
        self.assertEqual((yield in_thread(c.free)), 1024 * 1024 - 1000)
