"""Hostile XML bodies (issue 4, item 1): no DOCTYPE is ever honoured, bodies
over the limit are refused before they are buffered, and the caps on element
depth, property count and property value size each answer a clear error."""
import os
import socket

from twisted.internet import defer

from personium_dav.config import Config
from personium_dav.web.request import DavRequest, requestFactoryFor
from .support import hardening
from .support.helpers import BOX, DavTestCase

PASSWD = "file:///etc/passwd"

PROPPATCH = (b'<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop>'
             b'<Z:v>%s</Z:v></D:prop></D:set></D:propertyupdate>')
PROPFIND = b'<D:propfind xmlns:D="DAV:"><D:prop><Z:v xmlns:Z="urn:z">%s</Z:v></D:prop></D:propfind>'
MKCOL = (b'<D:mkcol xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop>'
         b'<D:resourcetype><D:collection/></D:resourcetype><Z:v>%s</Z:v>'
         b'</D:prop></D:set></D:mkcol>')


def doctypes(root, fetch_url):
    """(label, DOCTYPE text, entity reference to use in the body)."""
    lol = '<!ENTITY lol "lol">' + "".join(
        '<!ENTITY lol%d "%s">' % (i, ("&lol%d;" % (i - 1) if i > 1 else "&lol;") * 10)
        for i in range(1, 10))
    return [
        ("billion laughs", "<!DOCTYPE %s [%s]>" % (root, lol), "&lol9;"),
        ("external entity", '<!DOCTYPE %s [<!ENTITY xxe SYSTEM "%s">]>' % (root, PASSWD), "&xxe;"),
        ("external DTD", '<!DOCTYPE %s SYSTEM "%s">' % (root, PASSWD), ""),
        ("parameter entity", '<!DOCTYPE %s [<!ENTITY %% p SYSTEM "%s"> %%p;]>' % (root, PASSWD), ""),
        ("parameter entity defining an entity",
         '<!DOCTYPE %s [<!ENTITY %% d "<!ENTITY e \'boom\'>"> %%d;]>' % root, "&e;"),
        ("network DTD", '<!DOCTYPE %s SYSTEM "%s">' % (root, fetch_url), ""),
        ("network entity", '<!DOCTYPE %s [<!ENTITY n SYSTEM "%s">]>' % (root, fetch_url), "&n;"),
        ("empty DOCTYPE", "<!DOCTYPE %s>" % root, ""),
    ]


class HostileDoctypeTests(DavTestCase):
    """Any DOCTYPE: 400 PR400-DV-0001, nothing expanded, stored or fetched."""

    def setUp(self):
        super().setUp()
        # a listener that would see any attempt to fetch the DTD or entity
        self.trap = socket.socket()
        self.trap.bind(("127.0.0.1", 0))
        self.trap.listen(5)
        self.trap.setblocking(False)
        self.addCleanup(self.trap.close)
        self.fetch_url = "http://127.0.0.1:%d/evil.dtd" % self.trap.getsockname()[1]

    def assertNothingFetched(self):
        try:
            conn, _ = self.trap.accept()
        except BlockingIOError:
            return
        conn.close()
        self.fail("the server fetched an external DTD or entity")

    def assertRefused(self, answer, label):
        self.assertEqual(answer.code, 400, (label, answer.body))
        self.assertEqual(answer.json()["code"], "PR400-DV-0001", label)
        self.assertNotIn(b"root:", answer.body)
        self.assertNotIn(b"lollollol", answer.body)

    @defer.inlineCallbacks
    def assertNoValueStored(self, path):
        answer = yield self.request("PROPFIND", path, headers={"Depth": "0"})
        self.assertEqual(answer.code, 207)
        self.assertNotIn(b"urn:z", answer.body)
        self.assertNotIn(b"root:", answer.body)

    @defer.inlineCallbacks
    def test_proppatch(self):
        for label, doctype, ref in doctypes("D:propertyupdate", self.fetch_url):
            body = doctype.encode() + PROPPATCH % ref.encode()
            answer = yield self.request("PROPPATCH", BOX, body)
            self.assertRefused(answer, label)
        yield self.assertNoValueStored(BOX)
        self.assertNothingFetched()

    @defer.inlineCallbacks
    def test_proppatch_with_xml_declaration(self):
        for label, doctype, ref in doctypes("D:propertyupdate", self.fetch_url):
            body = b'<?xml version="1.0" encoding="utf-8"?>\n' + doctype.encode() + PROPPATCH % ref.encode()
            answer = yield self.request("PROPPATCH", BOX, body)
            self.assertRefused(answer, label)
        yield self.assertNoValueStored(BOX)
        self.assertNothingFetched()

    @defer.inlineCallbacks
    def test_propfind(self):
        for label, doctype, ref in doctypes("D:propfind", self.fetch_url):
            body = doctype.encode() + PROPFIND % ref.encode()
            answer = yield self.request("PROPFIND", BOX, body, {"Depth": "0"})
            self.assertRefused(answer, label)
        self.assertNothingFetched()

    @defer.inlineCallbacks
    def test_mkcol(self):
        for i, (label, doctype, ref) in enumerate(doctypes("D:mkcol", self.fetch_url)):
            body = doctype.encode() + MKCOL % ref.encode()
            answer = yield self.request("MKCOL", BOX + "c%d" % i, body,
                                        {"Content-Type": "application/xml"})
            self.assertRefused(answer, label)
            self.assertFalse(os.path.exists(os.path.join(self.data, "cell1", "box1", "c%d" % i)))
        self.assertNothingFetched()

    @defer.inlineCallbacks
    def test_utf16_doctype(self):
        """The DOCTYPE check is on the parsed document, not on bytes."""
        body = ('<?xml version="1.0" encoding="utf-16"?><!DOCTYPE D:propertyupdate '
                '[<!ENTITY xxe SYSTEM "%s">]>' % PASSWD).encode("utf-16")
        body += (PROPPATCH % b"&xxe;").decode().encode("utf-16")[2:]
        answer = yield self.request("PROPPATCH", BOX, body)
        self.assertEqual(answer.code, 400)
        self.assertNotIn(b"root:", answer.body)
        yield self.assertNoValueStored(BOX)


class SizeLimitTests(DavTestCase):
    """Bodies over max_xml_body with Content-Length: 413 before parsing."""

    config = Config(max_xml_body=4096, max_props_per_request=10, max_prop_value=1024)

    @defer.inlineCallbacks
    def test_over_the_limit(self):
        big = b"x" * 5000
        for method, body in (("PROPPATCH", PROPPATCH % big), ("PROPFIND", PROPFIND % big),
                             ("MKCOL", MKCOL % big)):
            path = BOX + "new" if method == "MKCOL" else BOX
            answer = yield self.request(method, path, body,
                                        {"Depth": "0", "Content-Type": "application/xml"})
            self.assertError(answer, 413, "PR413-DV-0001", "Request body is too large.")
        answer = yield self.request("PROPFIND", BOX + "new", headers={"Depth": "0"})
        self.assertEqual(answer.code, 404)

    @defer.inlineCallbacks
    def test_at_the_limit(self):
        body = PROPPATCH % b"y"
        body = body.replace(b"<D:set>", b" " * (4096 - len(body)) + b"<D:set>")
        self.assertEqual(len(body), 4096)
        answer = yield self.request("PROPPATCH", BOX, body)
        self.assertEqual(answer.code, 207, answer.body)

    @defer.inlineCallbacks
    def test_depth_cap(self):
        deep = b"<Z:n>" * 70 + b"</Z:n>" * 70
        answer = yield self.request("PROPPATCH", BOX, PROPPATCH % deep)
        self.assertError(answer, 400, "PR400-DV-0006")
        self.assertIn("nested deeper than 64", answer.json()["message"]["value"])
        answer = yield self.request("PROPFIND", BOX, PROPFIND % deep, {"Depth": "0"})
        self.assertError(answer, 400, "PR400-DV-0006")
        yield self._nothing_stored()

    @defer.inlineCallbacks
    def test_libxml_depth_cap(self):
        """Past libxml2's own limit (256) the answer is the same."""
        deep = b"<n>" * 300 + b"</n>" * 300
        answer = yield self.request("PROPPATCH", BOX, PROPPATCH % deep)
        self.assertError(answer, 400, "PR400-DV-0006")

    @defer.inlineCallbacks
    def test_property_count_cap(self):
        props = b"".join(b"<Z:p%d>v</Z:p%d>" % (i, i) for i in range(11))
        body = (b'<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop>%s'
                b'</D:prop></D:set></D:propertyupdate>' % props)
        answer = yield self.request("PROPPATCH", BOX, body)
        self.assertError(answer, 400, "PR400-DV-0006",
                         "XML validate error. Cause:[more than 10 properties in one request].")
        yield self._nothing_stored()
        ten = body.replace(b"<Z:p10>v</Z:p10>", b"")
        answer = yield self.request("PROPPATCH", BOX, ten)
        self.assertEqual(answer.code, 207)

    @defer.inlineCallbacks
    def test_property_count_cap_on_mkcol(self):
        props = b"".join(b"<Z:p%d>v</Z:p%d>" % (i, i) for i in range(11))
        body = MKCOL.replace(b"<Z:v>%s</Z:v>", props)
        answer = yield self.request("MKCOL", BOX + "m", body, {"Content-Type": "application/xml"})
        self.assertError(answer, 400, "PR400-DV-0006")
        answer = yield self.request("PROPFIND", BOX + "m", headers={"Depth": "0"})
        self.assertEqual(answer.code, 404)

    @defer.inlineCallbacks
    def test_property_value_cap(self):
        answer = yield self.request("PROPPATCH", BOX, PROPPATCH % (b"v" * 1100))
        self.assertError(answer, 400, "PR400-DV-0006",
                         "XML validate error. Cause:[value of {urn:z}v is larger than 1024 bytes].")
        yield self._nothing_stored()
        answer = yield self.request("PROPPATCH", BOX, PROPPATCH % (b"v" * 900))
        self.assertEqual(answer.code, 207)

    @defer.inlineCallbacks
    def _nothing_stored(self):
        answer = yield self.request("PROPFIND", BOX, headers={"Depth": "0"})
        self.assertNotIn(b"urn:z", answer.body)


class StreamedLimitTests(DavTestCase):
    """The Site's request class refuses while the body arrives (real HTTP)."""

    LIMIT = 64 * 1024

    def setUp(self):
        super().setUp()
        self.stored = []
        config = Config(max_xml_body=self.LIMIT, max_file_size=4 * self.LIMIT)
        self.server = hardening.LoopbackServer(self, config)
        base = self.server.site.requestFactory
        stored = self.stored

        class Recording(base):
            def handleContentChunk(self, data):
                super().handleContentChunk(data)
                stored.append(self.content.tell())

        self.server.site.requestFactory = Recording

    @defer.inlineCallbacks
    def test_chunked_xml_bodies(self):
        for method in (b"PROPPATCH", b"PROPFIND", b"MKCOL", b"ACL", b"POST", b"DELETE"):
            del self.stored[:]
            path = b"/cell1/box1/newcol" if method == b"MKCOL" else b"/cell1/box1/"
            sent, raw = yield hardening.in_thread(
                hardening.stream_chunked, self.server.portNumber, method, path, 64 * 1024 * 1024,
                auth=self.server.authHeader)
            # 413 once past the limit; POST and DELETE of a box are refused
            # before a byte of their body is even read (405)
            expected = 405 if method in (b"POST", b"DELETE") else 413
            self.assertEqual(hardening.status_of(raw), expected, (method, raw[:300]))
            self.assertIn(b"PR%d-" % expected, raw)
            self.assertIn(b"Connection: close", raw)
            # refused long before the client could send it all
            self.assertLess(sent, 16 * 1024 * 1024, method)
            # and never more than the limit stored
            self.assertLessEqual(max(self.stored or [0]), self.LIMIT, method)
        self.assertFalse(os.path.exists(os.path.join(self.server.data, "cell1", "box1", "newcol")))

    @defer.inlineCallbacks
    def test_chunked_put(self):
        sent, raw = yield hardening.in_thread(
            hardening.stream_chunked, self.server.portNumber, b"PUT", b"/cell1/box1/big.bin",
            64 * 1024 * 1024, content_type=b"application/octet-stream",
            auth=self.server.authHeader)
        self.assertEqual(hardening.status_of(raw), 413, raw[:300])
        self.assertLess(sent, 16 * 1024 * 1024)
        self.assertLessEqual(max(self.stored), 4 * self.LIMIT)
        yield hardening.sleep(0.05)
        self.assertEqual(self.server.tmp_files(), [])
        self.assertFalse(os.path.exists(os.path.join(self.server.data, "cell1", "box1", "big.bin")))

    @defer.inlineCallbacks
    def test_content_length_decides_before_reading(self):
        """A declared length over the limit is answered with no body sent."""
        def send(method, length):
            s = hardening.connect(self.server.portNumber)
            try:
                s.sendall(b"%s /cell1/box1/x HTTP/1.1\r\nHost: l\r\nContent-Length: %d\r\n"
                          b"Expect: 100-continue\r\n\r\n" % (method, length))
                return hardening.read_response(s, timeout=5)
            finally:
                s.close()

        for method, length in ((b"PROPPATCH", self.LIMIT + 1), (b"PUT", 4 * self.LIMIT + 1),
                               (b"PUT", 10 ** 12)):
            raw = yield hardening.in_thread(send, method, length)
            self.assertEqual(hardening.status_of(raw), 413, raw)
            self.assertNotIn(b"100 Continue", raw)
        self.assertEqual(self.stored, [])

    @defer.inlineCallbacks
    def test_chunked_under_the_limit_works(self):
        def send():
            s = hardening.connect(self.server.portNumber)
            try:
                body = PROPPATCH % b"chunky"
                s.sendall(b"PROPPATCH /cell1/box1/ HTTP/1.1\r\nHost: l\r\n"
                          b"Transfer-Encoding: chunked\r\nConnection: close\r\n"
                          + self.server.authHeader + b"\r\n")
                for i in range(0, len(body), 10):
                    part = body[i:i + 10]
                    s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
                s.sendall(b"0\r\n\r\n")
                return hardening.read_response(s)
            finally:
                s.close()

        raw = yield hardening.in_thread(send)
        self.assertEqual(hardening.status_of(raw), 207, raw)
        self.assertIn(b"chunky", raw)

    def test_embedder_factory(self):
        """requestFactoryFor binds the request class to a resource's server."""
        from personium_dav.web.site import makeResource

        resource = makeResource(self.server.data)
        factory = requestFactoryFor(resource)
        self.assertTrue(issubclass(factory, DavRequest))
        self.assertIs(factory.davServer, resource.server)
