"""MKCOL over HTTP: plain and extended (RFC 5689) bodies, refusals, limits (docs/behaviour.md §2, §4)."""
from twisted.internet import defer

from personium_dav.config import Config

from .support.steps import BOX, NS, PNS, SERVICE_MKCOL, DavSteps, mkcol_body, version

XML = {"Content-Type": "application/xml"}
PLAIN = {("DAV:", "collection")}
SERVICE = {("DAV:", "collection"), (PNS, "service")}
EXISTS = "Method not allowed. MKCOL can only be executed on a deleted/non-existent resource."


class MkcolTests(DavSteps):
    @defer.inlineCallbacks
    def test_plain(self):
        answer = yield self.mkcol(BOX + "col")
        self.assertEqual(version(answer.header("etag")), 1)
        self.assertEqual((yield self.resourcetype(BOX + "col")), PLAIN)
        self.assertEqual((yield self.hrefs(BOX + "col")), [BOX + "col/"])

    @defer.inlineCallbacks
    def test_plain_with_trailing_slash(self):
        yield self.mkcol(BOX + "col/")
        self.assertEqual((yield self.resourcetype(BOX + "col")), PLAIN)

    @defer.inlineCallbacks
    def test_extended_plain_with_dead_property(self):
        body = mkcol_body("<D:collection/>", '<z:note xmlns:z="urn:z">hi</z:note>')
        yield self.mkcol(BOX + "col", body, {"Content-Type": "text/xml; charset=utf-8"})
        self.assertEqual((yield self.resourcetype(BOX + "col")), PLAIN)
        root = yield self.propfind(BOX + "col")
        (note,) = root.iterfind(".//{urn:z}note")
        self.assertEqual(note.text, "hi")

    @defer.inlineCallbacks
    def test_service(self):
        answer = yield self.service(BOX + "svc")
        self.assertEqual(version(answer.header("etag")), 1)
        self.assertEqual((yield self.resourcetype(BOX + "svc")), SERVICE)
        self.assertEqual((yield self.hrefs(BOX + "svc")), [BOX + "svc/", BOX + "svc/__src/"])
        self.assertEqual((yield self.resourcetype(BOX + "svc/__src")), PLAIN)

    @defer.inlineCallbacks
    def test_xml_body_without_content_type(self):
        """Code's choice: a body with no Content-Type at all is read as XML."""
        yield self.mkcol(BOX + "svc", SERVICE_MKCOL)
        self.assertEqual((yield self.resourcetype(BOX + "svc")), SERVICE)

    @defer.inlineCallbacks
    def test_white_space_body_is_plain(self):
        yield self.mkcol(BOX + "col", b"  \n", {"Content-Type": "text/plain"})
        self.assertEqual((yield self.resourcetype(BOX + "col")), PLAIN)

    @defer.inlineCallbacks
    def test_non_xml_content_type(self):
        for ctype in ["text/plain", "application/json", "application/octet-stream"]:
            answer = yield self.request("MKCOL", BOX + "col", SERVICE_MKCOL, {"Content-Type": ctype})
            self.assertError(answer, 415, "PR415-MC-0001", "Unsupported media type.")
        self.assertFalse((yield self.exists(BOX + "col")))

    @defer.inlineCallbacks
    def test_not_mkcol_root(self):
        for body in [b'<D:propertyupdate xmlns:D="DAV:"/>', b"<mkcol/>",
                     b'<x:mkcol xmlns:x="urn:other"/>']:
            answer = yield self.request("MKCOL", BOX + "col", body, XML)
            self.assertError(answer, 415, "PR415-MC-0001", "Unsupported media type.")
        self.assertFalse((yield self.exists(BOX + "col")))

    @defer.inlineCallbacks
    def test_malformed_xml(self):
        for body in [b"<D:mkcol xmlns:D='DAV:'>", b"not xml at all", b"<a></b>",
                     b'<D:mkcol xmlns:D="DAV:"><D:set></D:mkcol>']:
            answer = yield self.request("MKCOL", BOX + "col", body, XML)
            self.assertError(answer, 400, "PR400-DV-0001", "XML parse error.")
        self.assertFalse((yield self.exists(BOX + "col")))

    @defer.inlineCallbacks
    def test_any_doctype(self):
        harmless = b'<!DOCTYPE D:mkcol><D:mkcol xmlns:D="DAV:"/>'
        entities = (b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa">'
                    b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
                    b'<D:mkcol xmlns:D="DAV:"><D:set><D:prop><z:x xmlns:z="urn:z">&b;</z:x>'
                    b"</D:prop></D:set></D:mkcol>")
        external = (b'<!DOCTYPE m SYSTEM "file:///etc/passwd">'
                    + SERVICE_MKCOL.split(b"?>", 1)[1])
        for body in [harmless, entities, external]:
            answer = yield self.request("MKCOL", BOX + "col", body, XML)
            self.assertError(answer, 400, "PR400-DV-0001", "XML parse error.")
        self.assertFalse((yield self.exists(BOX + "col")))

    @defer.inlineCallbacks
    def test_set_without_prop_is_content_error(self):
        for body in [b'<D:mkcol xmlns:D="DAV:"><D:remove/></D:mkcol>',
                     b'<D:mkcol xmlns:D="DAV:"><D:set><D:other/></D:set></D:mkcol>']:
            answer = yield self.request("MKCOL", BOX + "col", body, XML)
            self.assertError(answer, 400, "PR400-DV-0002", "XML content error.")

    @defer.inlineCallbacks
    def test_unknown_resourcetype(self):
        for types in ["<D:collection/><p:odata/>", "<D:collection/><p:stream/>",
                      '<D:collection/><z:thing xmlns:z="urn:z"/>', "",
                      "<p:service/>", "<D:collection/><p:service/><p:odata/>"]:
            answer = yield self.request("MKCOL", BOX + "col", mkcol_body(types), XML)
            self.assertEqual(answer.code, 403, (types, answer.body))
            self.assertEqual(answer.header("content-type"), "application/xml; charset=utf-8")
            root = answer.xml()
            self.assertEqual(root.tag, "{DAV:}mkcol-response")
            failed = root.findall("D:propstat/D:prop/*", NS)
            self.assertEqual([e.tag for e in failed], ["{DAV:}resourcetype"])
            self.assertEqual(root.findtext("D:propstat/D:status", namespaces=NS),
                             "HTTP/1.1 403 Forbidden")
        self.assertFalse((yield self.exists(BOX + "col")))

    @defer.inlineCallbacks
    def test_protected_property_in_body(self):
        body = mkcol_body("<D:collection/>", "<D:getetag>x</D:getetag>")
        answer = yield self.request("MKCOL", BOX + "col", body, XML)
        self.assertEqual(answer.code, 403)
        root = answer.xml()
        self.assertEqual([e.tag for e in root.findall("D:propstat/D:prop/*", NS)],
                         ["{DAV:}getetag"])
        self.assertFalse((yield self.exists(BOX + "col")))

    @defer.inlineCallbacks
    def test_existing(self):
        yield self.mkcol(BOX + "col")
        yield self.put(BOX + "file.txt")
        yield self.service(BOX + "svc")
        for path in [BOX + "col", BOX + "col/", BOX + "file.txt", BOX + "svc", BOX]:
            answer = yield self.request("MKCOL", path)
            self.assertError(answer, 405, "PR405-DV-0001", EXISTS)
            self.assertIsNotNone(answer.header("allow"))

    @defer.inlineCallbacks
    def test_existing_with_a_body(self):
        yield self.mkcol(BOX + "col")
        answer = yield self.request("MKCOL", BOX + "col", SERVICE_MKCOL, XML)
        self.assertError(answer, 405, "PR405-DV-0001", EXISTS)
        self.assertEqual((yield self.resourcetype(BOX + "col")), PLAIN)

    @defer.inlineCallbacks
    def test_parent_missing(self):
        answer = yield self.request("MKCOL", BOX + "a/b")
        self.assertError(answer, 409, "PR409-DV-0001",
                         "intermediate collection [http://localhost/cell1/box1/a/] "
                         "should be created first.")
        answer = yield self.request("MKCOL", BOX + "a/b/c", SERVICE_MKCOL, XML)
        self.assertError(answer, 409, "PR409-DV-0001",
                         "intermediate collection [http://localhost/cell1/box1/a/b/] "
                         "should be created first.")
        self.assertFalse((yield self.exists(BOX + "a")))

    @defer.inlineCallbacks
    def test_parent_is_a_file(self):
        yield self.put(BOX + "f.txt")
        answer = yield self.request("MKCOL", BOX + "f.txt/col")
        self.assertError(answer, 409, "PR409-DV-0001")

    @defer.inlineCallbacks
    def test_nested(self):
        yield self.mkcol(BOX + "a")
        yield self.mkcol(BOX + "a/b")
        yield self.service(BOX + "a/b/svc")
        self.assertEqual((yield self.hrefs(BOX + "a")), [BOX + "a/", BOX + "a/b/"])
        self.assertEqual((yield self.resourcetype(BOX + "a/b/svc")), SERVICE)


class DepthLimitTests(DavSteps):
    config = Config(max_depth=2)
    TOO_DEEP = "Hierarchy of the collection is too deep."

    @defer.inlineCallbacks
    def test_mkcol(self):
        yield self.mkcol(BOX + "a")
        yield self.mkcol(BOX + "a/b")
        answer = yield self.request("MKCOL", BOX + "a/b/c")
        self.assertError(answer, 400, "PR400-DV-0008", self.TOO_DEEP)
        answer = yield self.request("MKCOL", BOX + "a/b/svc", SERVICE_MKCOL, XML)
        self.assertError(answer, 400, "PR400-DV-0008", self.TOO_DEEP)
        self.assertEqual((yield self.hrefs(BOX + "a/b")), [BOX + "a/b/"])

    @defer.inlineCallbacks
    def test_files_are_not_collections(self):
        yield self.mkcol(BOX + "a")
        yield self.mkcol(BOX + "a/b")
        yield self.put(BOX + "a/b/file.txt", status=(201,))

    @defer.inlineCallbacks
    def test_move_and_copy_a_collection_too_deep(self):
        yield self.mkcol(BOX + "a")
        yield self.mkcol(BOX + "a/b")
        yield self.mkcol(BOX + "x")
        for method in ("MOVE", "COPY"):
            answer = yield self.move(BOX + "x", BOX + "a/b/x", method=method)
            self.assertError(answer, 400, "PR400-DV-0008", self.TOO_DEEP)
        self.assertTrue((yield self.exists(BOX + "x")))

    @defer.inlineCallbacks
    def test_move_a_subtree_too_deep(self):
        """The members of a moved collection count too, not only its own depth."""
        yield self.mkcol(BOX + "a")
        yield self.mkcol(BOX + "x")
        yield self.mkcol(BOX + "x/y")
        for method in ("MOVE", "COPY"):
            answer = yield self.move(BOX + "x", BOX + "a/x", method=method)
            self.assertError(answer, 400, "PR400-DV-0008", self.TOO_DEEP)
        self.assertFalse((yield self.exists(BOX + "a/x")))
        yield self.ok((yield self.move(BOX + "x/y", BOX + "a/y")), 201)


    @defer.inlineCallbacks
    def test_service_collection_at_the_limit(self):
        """A service collection's __src is not a level of its own."""
        yield self.mkcol(BOX + "a")
        yield self.service(BOX + "a/svc")
        yield self.put(BOX + "a/svc/__src/x.js", content_type="text/javascript", status=(201,))
        yield self.service(BOX + "s2")
        yield self.ok((yield self.move(BOX + "s2", BOX + "a/s2")), 201)


class MembersLimitTests(DavSteps):
    config = Config(max_members=2)
    FULL = "Cannot add any more child resources."

    @defer.inlineCallbacks
    def test_mkcol_and_put(self):
        yield self.mkcol(BOX + "a")
        yield self.put(BOX + "b.txt")
        answer = yield self.request("MKCOL", BOX + "c")
        self.assertError(answer, 400, "PR400-DV-0007", self.FULL)
        answer = yield self.request("PUT", BOX + "c.txt", b"x", {"Content-Type": "text/plain"})
        self.assertError(answer, 400, "PR400-DV-0007", self.FULL)
        yield self.put(BOX + "b.txt", b"update", status=(204,))
        self.assertEqual(len((yield self.hrefs(BOX))), 3)

    @defer.inlineCallbacks
    def test_move_into_a_full_collection(self):
        yield self.mkcol(BOX + "a")
        yield self.put(BOX + "a/1.txt")
        yield self.put(BOX + "a/2.txt")
        yield self.put(BOX + "x.txt")
        answer = yield self.move(BOX + "x.txt", BOX + "a/x.txt")
        self.assertError(answer, 400, "PR400-DV-0007", self.FULL)
        answer = yield self.copy(BOX + "x.txt", BOX + "a/x.txt")
        self.assertError(answer, 400, "PR400-DV-0007", self.FULL)
        # overwriting a member adds none
        yield self.ok((yield self.move(BOX + "x.txt", BOX + "a/1.txt")), 204)

    @defer.inlineCallbacks
    def test_rename_inside_a_full_collection(self):
        """A MOVE within one collection leaves its member count as it was."""
        yield self.put(BOX + "1.txt")
        yield self.put(BOX + "2.txt")
        yield self.ok((yield self.move(BOX + "1.txt", BOX + "3.txt")), 201)
        self.assertEqual((yield self.body_of(BOX + "3.txt")), b"data")

    @defer.inlineCallbacks
    def test_room_again_after_a_delete_or_a_move_out(self):
        """The recorded count (Tree.count_members) follows every change."""
        yield self.mkcol(BOX + "a")
        yield self.put(BOX + "a/1.txt")
        yield self.put(BOX + "a/2.txt")
        answer = yield self.request("PUT", BOX + "a/3.txt", b"x", {"Content-Type": "text/plain"})
        self.assertError(answer, 400, "PR400-DV-0007", self.FULL)
        self.assertEqual((yield self.request("DELETE", BOX + "a/1.txt")).code, 204)
        yield self.put(BOX + "a/3.txt")
        answer = yield self.request("MKCOL", BOX + "a/d")
        self.assertError(answer, 400, "PR400-DV-0007", self.FULL)
        yield self.ok((yield self.move(BOX + "a/2.txt", BOX + "moved.txt")), 201)
        self.assertEqual((yield self.request("MKCOL", BOX + "a/d")).code, 201)
        answer = yield self.copy(BOX + "moved.txt", BOX + "a/copy.txt")
        self.assertError(answer, 400, "PR400-DV-0007", self.FULL)
        self.assertEqual(len((yield self.hrefs(BOX + "a/"))), 3)

    @defer.inlineCallbacks
    def test_service_collection_src_counts_separately(self):
        yield self.service(BOX + "svc")
        yield self.put(BOX + "svc/__src/a.js", content_type="text/javascript")
        yield self.put(BOX + "svc/__src/b.js", content_type="text/javascript")
        answer = yield self.request("PUT", BOX + "svc/__src/c.js", b"x",
                                    {"Content-Type": "text/javascript"})
        self.assertError(answer, 400, "PR400-DV-0007", self.FULL)
