"""Collections over HTTP: service collections, __src, the method table, DELETE,
COPY and MOVE (docs/behaviour.md §4)."""
from twisted.internet import defer

from personium_dav.config import Config

from .support.steps import BOX, NS, PNS, DavSteps, allowed, proppatch_body, version

SVC = BOX + "svc"
SRC = SVC + "/__src"
JS = "text/javascript"
NOT_ALLOWED = "Method not allowed."
HAS_MEMBERS = "Cannot delete collection if it has any child resources."
TO_SERVICE = "Prohibited to move resource to service collection."
OVERWRITE_COLLECTION = "Prohibited to overwrite collection resource."
SERVICE_PROP = ('<p:service language="JavaScript" subject="engine">'
                '<p:path name="hello" src="hello.js"/></p:service>')
RECURSIVE = {"X-Personium-Recursive": "true"}
LOCKINFO = (b'<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
            b"<D:locktype><D:write/></D:locktype></D:lockinfo>")

LOCKS = {"LOCK", "UNLOCK"}  # class 2 (tests/test_lock_methods.py)
ALLOW = {  # ACL: docs/behaviour.md §9 (tests/test_acl.py)
    "box": {"OPTIONS", "GET", "HEAD", "PROPFIND", "PROPPATCH", "ACL"} | LOCKS,
    "collection": {"OPTIONS", "GET", "HEAD", "PROPFIND", "PROPPATCH", "DELETE", "MOVE", "COPY",
                   "ACL"} | LOCKS,
    "service": {"OPTIONS", "PROPFIND", "PROPPATCH", "DELETE", "MOVE", "ACL"} | LOCKS,
    "src": {"OPTIONS", "PROPFIND", "ACL"} | LOCKS,
    "file": {"OPTIONS", "GET", "HEAD", "PUT", "DELETE", "PROPFIND", "PROPPATCH", "COPY", "MOVE",
             "ACL"} | LOCKS,
    "null": {"OPTIONS", "PUT", "MKCOL", "LOCK"},  # LOCK makes an empty file (RFC 4918 §7.3)
    "null in src": {"OPTIONS", "PUT"},  # sources are made by PUT, with their type
    "orphan": {"OPTIONS"},
    # below a service collection: calls of its scripts (tests/test_services_*.py)
    "exec": {"OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE"},
}


class Scene(DavSteps):
    """A box with a plain collection, a file, and a service collection whose
    __src holds hello.js; the service collection and hello.js have properties."""

    @defer.inlineCallbacks
    def setUp(self):
        DavSteps.setUp(self)
        yield self.mkcol(BOX + "col")
        yield self.put(BOX + "col/f.txt", b"in col")
        yield self.put(BOX + "top.txt", b"top")
        yield self.service(SVC)
        yield self.put(SRC + "/hello.js", b"function hello() {}", JS)
        yield self.ok((yield self.request("PROPPATCH", SVC, proppatch_body(SERVICE_PROP))), 207)
        yield self.ok((yield self.request("PROPPATCH", SRC + "/hello.js",
                                          proppatch_body("<z:tag>t</z:tag>"))), 207)

    def assertNotAllowed(self, answer, kind):
        self.assertError(answer, 405, "PR405-MC-0001", NOT_ALLOWED)
        self.assertEqual(allowed(answer), ALLOW[kind])


class ServiceCollectionTests(Scene):
    @defer.inlineCallbacks
    def test_propfind_depth_1_lists_src(self):
        root = yield self.propfind(SVC, "1")
        self.assertEqual([h.text for h in root.iterfind("D:response/D:href", NS)],
                         [SVC + "/", SRC + "/"])
        own, src = root.findall("D:response", NS)
        self.assertIsNotNone(own.find(".//D:resourcetype/{%s}service" % PNS, NS))
        self.assertIsNotNone(own.find(".//{%s}service/{%s}path" % (PNS, PNS)))
        self.assertEqual([c.tag for c in src.find(".//D:resourcetype", NS)], ["{DAV:}collection"])

    @defer.inlineCallbacks
    def test_proppatch_changes_the_etag(self):
        before = (yield self.propfind(SVC)).findtext(".//D:getetag", namespaces=NS)
        answer = yield self.request("PROPPATCH", SVC, proppatch_body(
            '<p:service><p:path name="a/{id}" src="a.js"/></p:service>'))
        self.assertEqual(answer.code, 207)
        self.assertEqual(version(answer.header("etag")), version(before) + 1)
        answer = yield self.request("PROPPATCH", SVC, proppatch_body(
            '<p:service language="Ruby"/>'))
        self.assertError(answer, 400, "PR400-DV-0006")
        self.assertTrue(answer.json()["message"]["value"].startswith("XML validate error. Cause:["))

    @defer.inlineCallbacks
    def test_delete_refused_while_src_has_files(self):
        for headers in [{}, {"X-Personium-Recursive": "false"}]:
            answer = yield self.request("DELETE", SVC, headers=headers)
            self.assertError(answer, 403, "PR403-DV-0003", HAS_MEMBERS)
        self.assertEqual((yield self.body_of(SRC + "/hello.js")), b"function hello() {}")

    @defer.inlineCallbacks
    def test_delete_recursive(self):
        answer = yield self.request("DELETE", SVC, headers=RECURSIVE)
        self.assertEqual((answer.code, answer.body), (204, b""))
        self.assertFalse((yield self.exists(SVC)))
        self.assertFalse((yield self.exists(SRC + "/hello.js")))
        yield self.service(SVC)  # the name is free again, and the new one is empty
        self.assertEqual((yield self.hrefs(SRC)), [SRC + "/"])

    @defer.inlineCallbacks
    def test_delete_with_an_empty_src(self):
        yield self.ok((yield self.request("DELETE", SRC + "/hello.js")), 204)
        yield self.ok((yield self.request("DELETE", SVC)), 204)
        self.assertFalse((yield self.exists(SVC)))

    @defer.inlineCallbacks
    def test_delete_bad_recursive_value(self):
        for value in ["yes", "TRUE", "1", ""]:
            answer = yield self.request("DELETE", SVC, headers={"X-Personium-Recursive": value})
            self.assertError(answer, 400, "PR400-DV-0009",
                             "Request header X-Personium-Recursive value is invalid [%s]." % value)
        self.assertTrue((yield self.exists(SVC)))

    @defer.inlineCallbacks
    def test_move_keeps_src_files_and_properties(self):
        answer = yield self.move(SVC, BOX + "col/moved")
        self.assertEqual(answer.code, 201, answer.body)
        moved = BOX + "col/moved"
        self.assertFalse((yield self.exists(SVC)))
        self.assertEqual((yield self.hrefs(moved)), [moved + "/", moved + "/__src/"])
        root = yield self.propfind(moved)
        self.assertIsNotNone(root.find(".//D:resourcetype/{%s}service" % PNS, NS))
        path = root.find(".//{%s}service/{%s}path" % (PNS, PNS))
        self.assertEqual((path.get("name"), path.get("src")), ("hello", "hello.js"))
        got = yield self.request("GET", moved + "/__src/hello.js")
        self.assertEqual((got.body, got.header("content-type")), (b"function hello() {}", JS))
        root = yield self.propfind(moved + "/__src/hello.js")
        self.assertEqual(root.findtext(".//{urn:z}tag"), "t")

    @defer.inlineCallbacks
    def test_move_over_a_file(self):
        answer = yield self.move(SVC, BOX + "top.txt")
        self.assertEqual(answer.code, 204, answer.body)
        self.assertIn((PNS, "service"), (yield self.resourcetype(BOX + "top.txt")))

    @defer.inlineCallbacks
    def test_get_put_post_on_the_collection_url(self):
        for method in ("GET", "HEAD", "PUT", "POST", "COPY"):
            answer = yield self.request(method, SVC, b"x", {"Content-Type": "text/plain"})
            if method == "HEAD":
                self.assertEqual((answer.code, allowed(answer)), (405, ALLOW["service"]))
            else:
                self.assertNotAllowed(answer, "service")

    @defer.inlineCallbacks
    def test_service_execution(self):
        """Below a service collection but __src: GET, POST, PUT, DELETE (HEAD
        as GET) run the script a route names; nothing else does."""
        for path in (SVC + "/hello", SVC + "/other/deeper", SVC + "/new.js"):
            for method in ("MKCOL", "PROPFIND", "MOVE", "COPY", "PROPPATCH", "LOCK", "FROB"):
                self.assertNotAllowed((yield self.request(method, path, b"", {"Depth": "0"})),
                                      "exec")
            answer = yield self.request("OPTIONS", path)
            self.assertEqual((answer.code, allowed(answer)), (200, ALLOW["exec"]))
        for method in ("GET", "POST", "PUT", "DELETE", "HEAD"):
            answer = yield self.request(method, SVC + "/other/deeper")  # no route
            self.assertEqual((answer.code, answer.header("content-type")), (404, "text/html"))
            self.assertEqual(answer.body, b"" if method == "HEAD" else b"404 Not Found")
        # hello.js is a function that returns nothing
        answer = yield self.request("GET", SVC + "/hello")
        self.assertEqual((answer.code, answer.body), (500, b"Server Error : not NativeObject"))

    @defer.inlineCallbacks
    def test_mkcol_or_move_into_a_service_collection(self):
        answer = yield self.move(BOX + "top.txt", SVC + "/top.txt")
        self.assertError(answer, 400, "PR400-DV-0016", TO_SERVICE)
        answer = yield self.move(BOX + "col", SVC + "/__src/col")
        self.assertError(answer, 400, "PR400-DV-0018",
                         "Prohibited to create collection under service source collection.")
        self.assertTrue((yield self.exists(BOX + "col")))


class ExecutionOffTests(Scene):
    config = Config(script_workers=0)

    @defer.inlineCallbacks
    def test_every_method_is_not_implemented(self):
        for method in ("GET", "POST", "PUT", "DELETE", "MKCOL", "PROPFIND", "OPTIONS", "MOVE"):
            for path in (SVC + "/hello", SVC + "/other/deeper", SVC + "/new.js"):
                answer = yield self.request(method, path, b"", {"Depth": "0"})
                self.assertError(answer, 501, "PR501-MC-0002",
                                 "Not implemented. [service execution].")


class SourceCollectionTests(Scene):
    @defer.inlineCallbacks
    def test_propfind_and_options(self):
        root = yield self.propfind(SRC, "1")
        self.assertEqual([h.text for h in root.iterfind("D:response/D:href", NS)],
                         [SRC + "/", SRC + "/hello.js"])
        answer = yield self.request("OPTIONS", SRC)
        self.assertEqual(answer.code, 200)
        self.assertEqual(allowed(answer), ALLOW["src"])

    @defer.inlineCallbacks
    def test_move(self):
        for target in (BOX + "elsewhere", BOX + "col/__src"):
            answer = yield self.move(SRC, target)
            self.assertError(answer, 400, "PR400-DV-0011",
                             "Prohibited to move service source collection.")
        self.assertEqual((yield self.hrefs(SRC)), [SRC + "/", SRC + "/hello.js"])

    @defer.inlineCallbacks
    def test_refused_methods(self):
        for method in ("PUT", "DELETE", "PROPPATCH", "GET", "MKCOL", "COPY", "POST"):
            answer = yield self.request(method, SRC, proppatch_body("<z:a/>"),
                                        {"Content-Type": "application/xml",
                                         "X-Personium-Recursive": "true"})
            self.assertNotAllowed(answer, "src")
        self.assertTrue((yield self.exists(SRC + "/hello.js")))

    @defer.inlineCallbacks
    def test_overwrite_src(self):
        yield self.service(BOX + "svc2")
        yield self.mkcol(BOX + "c2")
        for source in (BOX + "c2", BOX + "top.txt", SRC + "/hello.js"):
            for method in ("MOVE", "COPY"):
                answer = yield self.move(source, BOX + "svc2/__src", method=method)
                self.assertError(answer, 400, "PR400-DV-0017",
                                 "Prohibited to overwrite service source collection.")
        self.assertEqual((yield self.hrefs(BOX + "svc2/__src")), [BOX + "svc2/__src/"])


class SourceFileMoveTests(Scene):
    @defer.inlineCallbacks
    def test_into_another_src(self):
        yield self.service(BOX + "svc2")
        other = BOX + "svc2/__src/"
        answer = yield self.move(SRC + "/hello.js", other + "renamed.js")
        self.assertEqual(answer.code, 201, answer.body)
        self.assertFalse((yield self.exists(SRC + "/hello.js")))
        got = yield self.request("GET", other + "renamed.js")
        self.assertEqual((got.body, got.header("content-type")), (b"function hello() {}", JS))
        self.assertEqual((yield self.propfind(other + "renamed.js")).findtext(".//{urn:z}tag"), "t")
        yield self.put(SRC + "/second.js", b"2", JS)
        answer = yield self.move(SRC + "/second.js", other + "renamed.js")
        self.assertEqual(answer.code, 204, answer.body)
        self.assertEqual((yield self.body_of(other + "renamed.js")), b"2")

    @defer.inlineCallbacks
    def test_rename_in_the_same_src(self):
        yield self.ok((yield self.move(SRC + "/hello.js", SRC + "/hi.js")), 201)
        self.assertEqual((yield self.hrefs(SRC)), [SRC + "/", SRC + "/hi.js"])

    @defer.inlineCallbacks
    def test_out_of_src(self):
        yield self.service(BOX + "svc2")
        for target in (BOX + "hello.js", BOX + "col/hello.js", BOX + "svc2/hello.js"):
            answer = yield self.move(SRC + "/hello.js", target)
            self.assertError(answer, 400, "PR400-DV-0016", TO_SERVICE)
        self.assertTrue((yield self.exists(SRC + "/hello.js")))


class MethodTableTests(Scene):
    PATHS = {
        "box": BOX, "collection": BOX + "col/", "service": SVC, "src": SRC + "/",
        "file": BOX + "top.txt", "null": BOX + "nothing", "null in src": SRC + "/new.js",
        "orphan": BOX + "no/such", "exec": SVC + "/run/x",
    }

    @defer.inlineCallbacks
    def test_options(self):
        for kind, path in self.PATHS.items():
            answer = yield self.request("OPTIONS", path)
            self.assertEqual(answer.code, 200, kind)
            self.assertEqual(allowed(answer), ALLOW[kind], kind)
            # class 2 exactly where LOCK is taken
            self.assertEqual(answer.header("dav"), "1, 2" if "LOCK" in ALLOW[kind] else "1", kind)

    @defer.inlineCallbacks
    def test_report(self):
        for kind, path in self.PATHS.items():
            answer = yield self.request("REPORT", path, b'<D:version-tree xmlns:D="DAV:"/>')
            self.assertError(answer, 501, "PR501-MC-0001", "Method not implemented.")

    @defer.inlineCallbacks
    def test_unknown_methods(self):
        for kind in ("box", "collection", "service", "src", "file", "exec"):
            for method in ("FROB", "PATCH", "POST") if kind != "exec" else ("FROB", "PATCH"):
                answer = yield self.request(method, self.PATHS[kind])
                self.assertNotAllowed(answer, kind)
        # no LOCK where sources are made (they need PUT's Content-Type)
        answer = yield self.request("LOCK", self.PATHS["null in src"], LOCKINFO)
        self.assertNotAllowed(answer, "null in src")

    @defer.inlineCallbacks
    def test_unknown_method_on_nothing(self):
        """Code's choice: a missing resource is 404 for every method it does not take."""
        for method in ("FROB", "GET", "PROPFIND", "DELETE"):
            answer = yield self.request(method, BOX + "nothing", headers={"Depth": "0"})
            self.assertError(answer, 404, "PR404-DV-0001",
                             "Resource not found. [http://localhost/cell1/box1/nothing].")


class PlainCollectionTests(Scene):
    @defer.inlineCallbacks
    def test_delete_with_members(self):
        for headers in [{}, {"X-Personium-Recursive": "false"}]:
            answer = yield self.request("DELETE", BOX + "col", headers=headers)
            self.assertError(answer, 403, "PR403-DV-0003", HAS_MEMBERS)
        answer = yield self.request("DELETE", BOX + "col", headers={"X-Personium-Recursive": "1"})
        self.assertError(answer, 400, "PR400-DV-0009")
        self.assertTrue((yield self.exists(BOX + "col/f.txt")))
        yield self.ok((yield self.request("DELETE", BOX + "col", headers=RECURSIVE)), 204)
        self.assertFalse((yield self.exists(BOX + "col")))
        self.assertFalse((yield self.exists(BOX + "col/f.txt")))

    @defer.inlineCallbacks
    def test_delete_empty(self):
        yield self.mkcol(BOX + "empty")
        yield self.ok((yield self.request("DELETE", BOX + "empty/")), 204)
        self.assertFalse((yield self.exists(BOX + "empty")))

    @defer.inlineCallbacks
    def test_delete_with_a_subcollection(self):
        yield self.mkcol(BOX + "outer")
        yield self.mkcol(BOX + "outer/inner")
        answer = yield self.request("DELETE", BOX + "outer")
        self.assertError(answer, 403, "PR403-DV-0003", HAS_MEMBERS)

    @defer.inlineCallbacks
    def test_delete_the_box(self):
        answer = yield self.request("DELETE", BOX, headers=RECURSIVE)
        self.assertNotAllowed(answer, "box")

    @defer.inlineCallbacks
    def test_delete_with_if_match(self):
        yield self.mkcol(BOX + "empty")
        answer = yield self.request("DELETE", BOX + "empty", headers={"If-Match": '"5-5"'})
        self.assertError(answer, 412, "PR412-DV-0001", "ETag does not match.")
        etag = (yield self.propfind(BOX + "empty")).findtext(".//D:getetag", namespaces=NS)
        yield self.ok((yield self.request("DELETE", BOX + "empty", headers={"If-Match": etag})), 204)


class CopyMoveTests(Scene):
    @defer.inlineCallbacks
    def test_move_file(self):
        answer = yield self.move(BOX + "top.txt", BOX + "col/moved.txt")
        self.assertEqual((answer.code, version(answer.header("etag"))), (201, 1))
        self.assertFalse((yield self.exists(BOX + "top.txt")))
        got = yield self.request("GET", BOX + "col/moved.txt")
        self.assertEqual((got.body, got.header("content-type")), (b"top", "text/plain"))

    @defer.inlineCallbacks
    def test_move_file_keeps_properties(self):
        yield self.ok((yield self.request("PROPPATCH", BOX + "top.txt",
                                          proppatch_body("<z:p>v</z:p>"))), 207)
        yield self.ok((yield self.move(BOX + "top.txt", BOX + "col/top.txt")), 201)
        self.assertEqual((yield self.propfind(BOX + "col/top.txt")).findtext(".//{urn:z}p"), "v")
        yield self.put(BOX + "top.txt", b"again", status=(201,))
        self.assertIsNone((yield self.propfind(BOX + "top.txt")).find(".//{urn:z}p"))

    @defer.inlineCallbacks
    def test_copy_file(self):
        yield self.ok((yield self.request("PROPPATCH", BOX + "top.txt",
                                          proppatch_body("<z:p>v</z:p>"))), 207)
        answer = yield self.copy(BOX + "top.txt", BOX + "col/copy.txt")
        self.assertEqual(answer.code, 201, answer.body)
        self.assertEqual((yield self.body_of(BOX + "top.txt")), b"top")
        self.assertEqual((yield self.body_of(BOX + "col/copy.txt")), b"top")
        self.assertEqual((yield self.propfind(BOX + "col/copy.txt")).findtext(".//{urn:z}p"), "v")
        yield self.put(BOX + "col/copy.txt", b"changed", status=(204,))
        self.assertEqual((yield self.body_of(BOX + "top.txt")), b"top")

    @defer.inlineCallbacks
    def test_overwrite_file(self):
        for method in ("COPY", "MOVE"):
            yield self.put(BOX + "src.txt", method.encode())
            answer = yield self.move(BOX + "src.txt", BOX + "top.txt", method=method)
            self.assertEqual(answer.code, 204, answer.body)
            self.assertEqual((yield self.body_of(BOX + "top.txt")), method.encode())
            answer = yield self.move(BOX + "col/f.txt", BOX + "top.txt", {"Overwrite": "T"},
                                     method)
            self.assertEqual(answer.code, 204, answer.body)

    @defer.inlineCallbacks
    def test_overwrite_f(self):
        yield self.mkcol(BOX + "other")
        for method in ("COPY", "MOVE"):
            for target in (BOX + "top.txt", BOX + "other"):
                answer = yield self.move(BOX + "col/f.txt", target, {"Overwrite": "F"}, method)
                self.assertError(answer, 412, "PR412-DV-0002",
                                 'Overwrite header is "F" and the destination URL is '
                                 "already mapped to a resource.")
        self.assertEqual((yield self.body_of(BOX + "top.txt")), b"top")
        yield self.ok((yield self.move(BOX + "top.txt", BOX + "new.txt", {"Overwrite": "F"})), 201)

    @defer.inlineCallbacks
    def test_bad_overwrite_value(self):
        answer = yield self.move(BOX + "top.txt", BOX + "new.txt", {"Overwrite": "maybe"})
        self.assertError(answer, 400, "PR400-DV-0009",
                         "Request header Overwrite value is invalid [maybe].")

    @defer.inlineCallbacks
    def test_overwrite_a_collection(self):
        yield self.mkcol(BOX + "other")
        for method in ("COPY", "MOVE"):
            for source in (BOX + "top.txt", BOX + "other"):
                answer = yield self.move(source, BOX + "col", method=method)
                self.assertError(answer, 400, "PR400-DV-0012", OVERWRITE_COLLECTION)
        self.assertEqual((yield self.body_of(BOX + "col/f.txt")), b"in col")

    @defer.inlineCallbacks
    def test_move_collection(self):
        yield self.mkcol(BOX + "col/sub")
        answer = yield self.move(BOX + "col", BOX + "renamed")
        self.assertEqual(answer.code, 201, answer.body)
        self.assertFalse((yield self.exists(BOX + "col")))
        self.assertEqual((yield self.hrefs(BOX + "renamed")),
                         [BOX + "renamed/", BOX + "renamed/f.txt", BOX + "renamed/sub/"])

    @defer.inlineCallbacks
    def test_move_collection_over_a_file(self):
        yield self.ok((yield self.move(BOX + "col", BOX + "top.txt")), 204)
        self.assertEqual((yield self.body_of(BOX + "top.txt/f.txt")), b"in col")

    @defer.inlineCallbacks
    def test_move_collection_into_itself(self):
        """Code's choice: a Destination inside the source is 400 PR400-DV-0009."""
        yield self.mkcol(BOX + "col/sub")
        answer = yield self.move(BOX + "col", BOX + "col/sub/col")
        self.assertError(answer, 400, "PR400-DV-0009")
        self.assertTrue((yield self.exists(BOX + "col/sub")))

    @defer.inlineCallbacks
    def test_copy_collection_depth(self):
        yield self.mkcol(BOX + "col/sub")
        yield self.ok((yield self.request("PROPPATCH", BOX + "col",
                                          proppatch_body("<z:p>c</z:p>"))), 207)
        yield self.ok((yield self.copy(BOX + "col", BOX + "deep")), 201)
        self.assertEqual((yield self.hrefs(BOX + "deep")),
                         [BOX + "deep/", BOX + "deep/f.txt", BOX + "deep/sub/"])
        yield self.ok((yield self.copy(BOX + "col", BOX + "shallow", {"Depth": "0"})), 201)
        self.assertEqual((yield self.hrefs(BOX + "shallow")), [BOX + "shallow/"])
        for copied in ("deep", "shallow"):
            self.assertEqual((yield self.propfind(BOX + copied)).findtext(".//{urn:z}p"), "c")
        self.assertEqual(len((yield self.hrefs(BOX + "col"))), 3)
        answer = yield self.copy(BOX + "col", BOX + "one", {"Depth": "1"})
        self.assertError(answer, 400, "PR400-DV-0009", "Request header Depth value is invalid [1].")
        answer = yield self.move(BOX + "col", BOX + "one", {"Depth": "0"})
        self.assertError(answer, 400, "PR400-DV-0009", "Request header Depth value is invalid [0].")

    @defer.inlineCallbacks
    def test_copy_a_collection_holding_a_service_collection(self):
        """A service collection itself takes no COPY, but goes along inside another one."""
        yield self.ok((yield self.move(SVC, BOX + "col/svc")), 201)
        yield self.ok((yield self.copy(BOX + "col", BOX + "copy")), 201)
        self.assertIn((PNS, "service"), (yield self.resourcetype(BOX + "copy/svc")))
        got = yield self.request("GET", BOX + "copy/svc/__src/hello.js")
        self.assertEqual((got.body, got.header("content-type")), (b"function hello() {}", JS))
        self.assertEqual((yield self.propfind(BOX + "copy/svc/__src/hello.js")).findtext(
            ".//{urn:z}tag"), "t")

    @defer.inlineCallbacks
    def test_destination_equals_source(self):
        for path in (BOX + "top.txt", BOX + "col"):
            for method in ("COPY", "MOVE"):
                answer = yield self.move(path, path, method=method)
                self.assertError(answer, 403, "PR403-DV-0005",
                                 "Destination header value [%s] equals request URL."
                                 % self.url(path))

    @defer.inlineCallbacks
    def test_destination_parent_missing(self):
        for method in ("COPY", "MOVE"):
            answer = yield self.move(BOX + "top.txt", BOX + "no/such/x.txt", method=method)
            self.assertError(answer, 409, "PR409-DV-0001",
                             "intermediate collection [http://localhost/cell1/box1/no/such/] "
                             "should be created first.")
        self.assertTrue((yield self.exists(BOX + "top.txt")))

    @defer.inlineCallbacks
    def test_bad_destination_name(self):
        for method in ("COPY", "MOVE"):
            for bad, name in [("a%3Ab", "a:b"), ("%2E%2E", ".."), ("a%20b", "a b"),
                              ("x" * 257, "x" * 257)]:
                answer = yield self.move(BOX + "top.txt", BOX + bad, method=method)
                self.assertError(answer, 403, "PR403-DV-0004",
                                 "Resource name is invalid [%s]." % name)
        self.assertTrue((yield self.exists(BOX + "top.txt")))

    @defer.inlineCallbacks
    def test_missing_destination(self):
        """Code's choice: 400 PR400-DV-0010 Header Destination is required."""
        for method in ("COPY", "MOVE"):
            answer = yield self.request(method, BOX + "top.txt")
            self.assertError(answer, 400, "PR400-DV-0010", "Header Destination is required.")

    @defer.inlineCallbacks
    def test_destination_outside_the_box(self):
        """Code's choice: another box, cell or server is 400 PR400-DV-0009."""
        for target in ["http://localhost/cell1/other/x.txt", "http://localhost/cellx/box1/x.txt",
                       "/elsewhere/x.txt", "http://localhost/cell1/box1/"]:
            answer = yield self.request("MOVE", BOX + "top.txt", headers={"Destination": target})
            self.assertError(answer, 400, "PR400-DV-0009",
                             "Request header Destination value is invalid [%s]." % target)

    @defer.inlineCallbacks
    def test_relative_destination(self):
        """A Destination that is an absolute path (no scheme and host) works."""
        answer = yield self.request("MOVE", BOX + "top.txt",
                                    headers={"Destination": BOX + "col/rel.txt"})
        self.assertEqual(answer.code, 201, answer.body)

    @defer.inlineCallbacks
    def test_if_match_on_move(self):
        answer = yield self.move(BOX + "top.txt", BOX + "x.txt", {"If-Match": '"9-9"'})
        self.assertError(answer, 412, "PR412-DV-0001", "ETag does not match.")
        self.assertTrue((yield self.exists(BOX + "top.txt")))

    @defer.inlineCallbacks
    def test_missing_source(self):
        answer = yield self.move(BOX + "nothing", BOX + "x.txt")
        self.assertError(answer, 404, "PR404-DV-0001")


class Rfc4918Tests(Scene):
    config = Config(collection_semantics="rfc4918")

    @defer.inlineCallbacks
    def test_delete_a_collection_with_members(self):
        yield self.mkcol(BOX + "col/sub")
        yield self.ok((yield self.request("DELETE", BOX + "col")), 204)
        self.assertFalse((yield self.exists(BOX + "col")))
        yield self.ok((yield self.request("DELETE", SVC)), 204)
        self.assertFalse((yield self.exists(SRC + "/hello.js")))

    @defer.inlineCallbacks
    def test_overwrite_a_collection(self):
        yield self.mkcol(BOX + "other")
        yield self.put(BOX + "other/o.txt", b"o")
        answer = yield self.move(BOX + "other", BOX + "col")
        self.assertEqual(answer.code, 204, answer.body)
        self.assertEqual((yield self.hrefs(BOX + "col")), [BOX + "col/", BOX + "col/o.txt"])
        self.assertFalse((yield self.exists(BOX + "other")))
        answer = yield self.copy(BOX + "top.txt", BOX + "col")
        self.assertEqual(answer.code, 204, answer.body)
        self.assertEqual((yield self.body_of(BOX + "col")), b"top")

    @defer.inlineCallbacks
    def test_overwrite_f_still_holds(self):
        yield self.mkcol(BOX + "other")
        answer = yield self.move(BOX + "other", BOX + "col", {"Overwrite": "F"})
        self.assertError(answer, 412, "PR412-DV-0002")

    @defer.inlineCallbacks
    def test_src_is_never_overwritten(self):
        answer = yield self.move(BOX + "col", SRC)
        self.assertError(answer, 400, "PR400-DV-0017",
                         "Prohibited to overwrite service source collection.")
        self.assertTrue((yield self.exists(SRC + "/hello.js")))
