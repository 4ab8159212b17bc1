"""Files over HTTP: PUT, GET/HEAD, ETags, conditions, ranges, DELETE (docs/behaviour.md §4, §5)."""
import os
import time

from twisted.internet import defer

from .support.steps import BOX, NS, DavSteps, proppatch_body, version

SRC = BOX + "svc/__src/"
NO_MATCH = "ETag does not match."
JS = "text/javascript"


class PutTests(DavSteps):
    @defer.inlineCallbacks
    def test_create_then_update(self):
        before = int(time.time() * 1000)
        first = yield self.put(BOX + "a.txt", b"one", status=(201,))
        etag = first.header("etag")
        self.assertEqual(version(etag), 1)
        millis = int(etag.strip('"').split("-")[1])
        self.assertTrue(before - 1000 <= millis <= int(time.time() * 1000) + 1000, etag)
        second = yield self.put(BOX + "a.txt", b"two", status=(204,))
        self.assertEqual(version(second.header("etag")), 2)
        self.assertEqual(second.body, b"")
        third = yield self.put(BOX + "a.txt", b"three", status=(204,))
        self.assertEqual(version(third.header("etag")), 3)
        got = yield self.request("GET", BOX + "a.txt")
        self.assertEqual((got.body, got.header("etag")), (b"three", third.header("etag")))

    @defer.inlineCallbacks
    def test_proppatch_grows_the_version(self):
        yield self.put(BOX + "a.txt")
        patched = yield self.request("PROPPATCH", BOX + "a.txt", proppatch_body("<z:k>v</z:k>"))
        self.assertEqual(patched.code, 207)
        self.assertEqual(version(patched.header("etag")), 2)
        answer = yield self.put(BOX + "a.txt", b"new", status=(204,))
        self.assertEqual(version(answer.header("etag")), 3)
        root = yield self.propfind(BOX + "a.txt")
        self.assertEqual(root.findtext(".//{urn:z}k"), "v")  # content writes keep properties

    @defer.inlineCallbacks
    def test_src_needs_a_content_type(self):
        yield self.service(BOX + "svc")
        for ctype in (None, ""):
            answer = yield self.request("PUT", SRC + "a.js", b"x",
                                        {} if ctype is None else {"Content-Type": ctype})
            self.assertError(answer, 400, "PR400-DV-0010", "Header Content-Type is required.")
        self.assertFalse((yield self.exists(SRC + "a.js")))

    @defer.inlineCallbacks
    def test_src_stores_the_given_type(self):
        yield self.service(BOX + "svc")
        yield self.put(SRC + "a.js", b"function f() {}", "application/x-custom; charset=utf-8",
                       status=(201,))
        got = yield self.request("GET", SRC + "a.js")
        self.assertEqual(got.header("content-type"), "application/x-custom; charset=utf-8")
        root = yield self.propfind(SRC + "a.js")
        self.assertEqual(root.findtext(".//D:getcontenttype", namespaces=NS),
                         "application/x-custom; charset=utf-8")

    @defer.inlineCallbacks
    def test_plain_put_guesses_the_type(self):
        for name, expected in [("page.html", "text/html"), ("notes.txt", "text/plain"),
                               ("blob.unknownext", "application/octet-stream"),
                               ("noext", "application/octet-stream")]:
            yield self.put(BOX + name, b"x", content_type=None, status=(201,))
            got = yield self.request("GET", BOX + name)
            self.assertEqual(got.header("content-type"), expected, name)

    @defer.inlineCallbacks
    def test_update_keeps_or_replaces_the_type(self):
        yield self.put(BOX + "a.txt", b"x", "application/json")
        yield self.put(BOX + "a.txt", b"y", "text/csv", status=(204,))
        self.assertEqual((yield self.request("GET", BOX + "a.txt")).header("content-type"),
                         "text/csv")

    @defer.inlineCallbacks
    def test_empty_body(self):
        yield self.put(BOX + "empty.txt", b"", status=(201,))
        got = yield self.request("GET", BOX + "empty.txt")
        self.assertEqual((got.code, got.body, got.length), (200, b"", 0))

    @defer.inlineCallbacks
    def test_put_on_a_collection(self):
        yield self.mkcol(BOX + "col")
        yield self.service(BOX + "svc")
        for path, allow in [(BOX + "col", {"GET", "DELETE", "MOVE"}),
                            (BOX + "svc/__src", {"OPTIONS", "PROPFIND"}),
                            (BOX, {"PROPFIND"})]:
            answer = yield self.request("PUT", path, b"x", {"Content-Type": "text/plain"})
            self.assertError(answer, 405, "PR405-MC-0001", "Method not allowed.")
            methods = {m.strip() for m in answer.header("allow").split(",")}
            self.assertTrue(allow <= methods and "PUT" not in methods, (path, methods))
        self.assertEqual((yield self.hrefs(BOX + "col")), [BOX + "col/"])

    @defer.inlineCallbacks
    def test_src_subpath(self):
        yield self.service(BOX + "svc")
        answer = yield self.request("PUT", SRC + "a/b.js", b"x", {"Content-Type": JS})
        self.assertError(answer, 409, "PR409-DV-0001",
                         "intermediate collection [http://localhost/cell1/box1/svc/__src/a/] "
                         "should be created first.")

    @defer.inlineCallbacks
    def test_src_below_a_plain_collection(self):
        yield self.mkcol(BOX + "plain")
        answer = yield self.request("PUT", BOX + "plain/__src/x", b"x", {"Content-Type": JS})
        self.assertError(answer, 409, "PR409-DV-0001",
                         "intermediate collection [http://localhost/cell1/box1/plain/__src/] "
                         "should be created first.")

    @defer.inlineCallbacks
    def test_parent_missing(self):
        answer = yield self.request("PUT", BOX + "no/such/f.txt", b"x")
        self.assertError(answer, 409, "PR409-DV-0001",
                         "intermediate collection [http://localhost/cell1/box1/no/such/] "
                         "should be created first.")

    @defer.inlineCallbacks
    def test_refused_put_leaves_no_temporary_file(self):
        yield self.put(BOX + "a.txt")
        answer = yield self.request("PUT", BOX + "a.txt", b"y" * 1000,
                                    {"If-Match": '"99-1"', "Content-Type": "text/plain"})
        self.assertError(answer, 412, "PR412-DV-0001", NO_MATCH)
        self.assertEqual(os.listdir(os.path.join(self.data, ":tmp")), [])
        self.assertEqual((yield self.body_of(BOX + "a.txt")), b"data")


class SourceFileTests(DavSteps):
    """The __src/{name} rows of docs/behaviour.md §4."""

    @defer.inlineCallbacks
    def setUp(self):
        DavSteps.setUp(self)
        yield self.service(BOX + "svc")
        created = yield self.put(SRC + "a.js", b"var a = 1;", JS, status=(201,))
        self.etag = created.header("etag")

    @defer.inlineCallbacks
    def test_get_and_head(self):
        got = yield self.request("GET", SRC + "a.js")
        self.assertEqual(got.code, 200)
        self.assertEqual(got.body, b"var a = 1;")
        self.assertEqual(got.header("content-type"), JS)
        self.assertEqual(got.length, 10)
        self.assertEqual(got.header("etag"), self.etag)
        head = yield self.request("HEAD", SRC + "a.js")
        self.assertEqual((head.code, head.body), (200, b""))
        self.assertEqual(head.header("content-length"), "10")
        for name in ("content-type", "etag"):
            self.assertEqual(head.header(name), got.header(name), name)

    @defer.inlineCallbacks
    def test_update(self):
        answer = yield self.put(SRC + "a.js", b"var a = 2;", JS, status=(204,))
        self.assertEqual(version(answer.header("etag")), 2)

    @defer.inlineCallbacks
    def test_propfind_and_proppatch(self):
        patched = yield self.request("PROPPATCH", SRC + "a.js",
                                     proppatch_body('<z:owner lang="en">me</z:owner>'))
        self.assertEqual(patched.code, 207)
        self.assertNotEqual(patched.header("etag"), self.etag)
        root = yield self.propfind(SRC + "a.js")
        self.assertEqual(root.findtext("D:response/D:href", namespaces=NS), SRC + "a.js")
        self.assertEqual(root.find(".//{urn:z}owner").get("lang"), "en")
        self.assertEqual(root.findtext(".//D:getcontentlength", namespaces=NS), "10")
        self.assertEqual(root.findtext(".//D:getetag", namespaces=NS), patched.header("etag"))
        self.assertEqual(root.find(".//D:resourcetype", NS).getchildren(), [])

    @defer.inlineCallbacks
    def test_mkcol(self):
        for path in (SRC + "a.js", SRC + "newdir"):
            answer = yield self.request("MKCOL", path)
            self.assertError(answer, 405, "PR405-DV-0001",
                             "Method not allowed. MKCOL can only be executed on a "
                             "deleted/non-existent resource.")
        self.assertEqual((yield self.hrefs(SRC)), [SRC, SRC + "a.js"])

    @defer.inlineCallbacks
    def test_delete(self):
        answer = yield self.request("DELETE", SRC + "a.js", headers={"If-Match": '"1-0"'})
        self.assertError(answer, 412, "PR412-DV-0001", NO_MATCH)
        answer = yield self.request("DELETE", SRC + "a.js", headers={"If-Match": self.etag})
        self.assertEqual((answer.code, answer.body), (204, b""))
        answer = yield self.request("GET", SRC + "a.js")
        self.assertError(answer, 404, "PR404-DV-0001",
                         "Resource not found. [http://localhost/cell1/box1/svc/__src/a.js].")


class ConditionTests(DavSteps):
    @defer.inlineCallbacks
    def setUp(self):
        DavSteps.setUp(self)
        created = yield self.put(BOX + "f.txt", b"0123456789", status=(201,))
        self.etag = created.header("etag")

    @defer.inlineCallbacks
    def test_if_none_match_on_get(self):
        for value in [self.etag, "*", "W/" + self.etag, '"1-1", ' + self.etag]:
            for method in ("GET", "HEAD"):
                answer = yield self.request(method, BOX + "f.txt", headers={"If-None-Match": value})
                self.assertEqual((answer.code, answer.body), (304, b""), value)
                self.assertEqual(answer.header("etag"), self.etag)
        answer = yield self.request("GET", BOX + "f.txt", headers={"If-None-Match": '"1-1"'})
        self.assertEqual((answer.code, answer.body), (200, b"0123456789"))

    @defer.inlineCallbacks
    def test_if_match_on_get(self):
        answer = yield self.request("GET", BOX + "f.txt", headers={"If-Match": '"1-1"'})
        self.assertError(answer, 412, "PR412-DV-0001", NO_MATCH)
        for value in [self.etag, "*"]:
            answer = yield self.request("GET", BOX + "f.txt", headers={"If-Match": value})
            self.assertEqual(answer.code, 200, value)
        # If-Match compares strongly (RFC 9110 §13.1.1): a weak tag never matches
        answer = yield self.request("GET", BOX + "f.txt", headers={"If-Match": "W/" + self.etag})
        self.assertError(answer, 412, "PR412-DV-0001", NO_MATCH)

    @defer.inlineCallbacks
    def test_if_match_on_put(self):
        answer = yield self.request("PUT", BOX + "f.txt", b"lost",
                                    {"If-Match": '"1-1"', "Content-Type": "text/plain"})
        self.assertError(answer, 412, "PR412-DV-0001", NO_MATCH)
        self.assertEqual((yield self.body_of(BOX + "f.txt")), b"0123456789")
        answer = yield self.request("PUT", BOX + "f.txt", b"lost",
                                    {"If-Match": "W/" + self.etag, "Content-Type": "text/plain"})
        self.assertError(answer, 412, "PR412-DV-0001", NO_MATCH)  # compared strongly
        etag = self.etag
        for value in ["{}", "*", '"7-7", {}']:
            answer = yield self.put(BOX + "f.txt", b"new", headers={"If-Match": value.format(etag)},
                                    status=(204,))
            etag = answer.header("etag")  # the old tag no longer matches
        answer = yield self.request("PUT", BOX + "f.txt", b"lost",
                                    {"If-Match": self.etag, "Content-Type": "text/plain"})
        self.assertError(answer, 412, "PR412-DV-0001", NO_MATCH)

    @defer.inlineCallbacks
    def test_if_match_on_a_missing_resource(self):
        for value in [self.etag, "*"]:
            answer = yield self.request("PUT", BOX + "new.txt", b"x",
                                        {"If-Match": value, "Content-Type": "text/plain"})
            self.assertError(answer, 412, "PR412-DV-0001", NO_MATCH)
        self.assertFalse((yield self.exists(BOX + "new.txt")))

    @defer.inlineCallbacks
    def test_if_none_match_star_creates_only(self):
        yield self.put(BOX + "new.txt", headers={"If-None-Match": "*"}, status=(201,))
        answer = yield self.request("PUT", BOX + "new.txt", b"again",
                                    {"If-None-Match": "*", "Content-Type": "text/plain"})
        self.assertError(answer, 412, "PR412-DV-0001", NO_MATCH)
        self.assertEqual((yield self.body_of(BOX + "new.txt")), b"data")

    @defer.inlineCallbacks
    def test_if_match_on_delete(self):
        answer = yield self.request("DELETE", BOX + "f.txt", headers={"If-Match": '"2-1"'})
        self.assertError(answer, 412, "PR412-DV-0001", NO_MATCH)
        self.assertTrue((yield self.exists(BOX + "f.txt")))
        answer = yield self.request("DELETE", BOX + "f.txt", headers={"If-Match": "*"})
        self.assertEqual(answer.code, 204)
        self.assertFalse((yield self.exists(BOX + "f.txt")))

    @defer.inlineCallbacks
    def test_delete_missing(self):
        yield self.ok((yield self.request("DELETE", BOX + "f.txt")), 204)
        answer = yield self.request("DELETE", BOX + "f.txt")
        self.assertError(answer, 404, "PR404-DV-0001",
                         "Resource not found. [http://localhost/cell1/box1/f.txt].")


class RangeTests(DavSteps):
    BIG = bytes(range(256)) * 400 + b"tail"  # 102,404 bytes: past the 64 KiB read-whole limit

    @defer.inlineCallbacks
    def setUp(self):
        DavSteps.setUp(self)
        yield self.put(BOX + "f.txt", b"0123456789")
        yield self.put(BOX + "big.bin", self.BIG, "application/octet-stream")

    @defer.inlineCallbacks
    def ranged(self, path, value, status=206):
        answer = yield self.request("GET", path, headers={"Range": value})
        self.assertEqual(answer.code, status, (value, answer.body[:200]))
        if status == 206:
            self.assertEqual(answer.length, len(answer.body))
        return answer

    @defer.inlineCallbacks
    def test_ranges(self):
        for value, body, span in [("bytes=0-3", b"0123", "0-3"), ("bytes=5-", b"56789", "5-9"),
                                  ("bytes=-3", b"789", "7-9"), ("bytes=8-100", b"89", "8-9"),
                                  ("bytes=-50", b"0123456789", "0-9"), ("bytes=4-4", b"4", "4-4")]:
            answer = yield self.ranged(BOX + "f.txt", value)
            self.assertEqual(answer.body, body, value)
            self.assertEqual(answer.header("content-range"), "bytes %s/10" % span)

    @defer.inlineCallbacks
    def test_unsatisfiable(self):
        for value in ["bytes=10-", "bytes=100-200", "bytes=-0"]:
            answer = yield self.ranged(BOX + "f.txt", value, 416)
            self.assertError(answer, 416, "PR416-DV-0001", "Requested range not satisfiable.")
            self.assertEqual(answer.header("content-range"), "bytes */10")

    @defer.inlineCallbacks
    def test_ignored_ranges_send_everything(self):
        """Code's choice: several ranges, another unit, or a reversed range get 200."""
        for value in ["bytes=0-1,3-4", "lines=1-2", "bytes=5-2", "bytes=x-"]:
            answer = yield self.request("GET", BOX + "f.txt", headers={"Range": value})
            self.assertEqual((answer.code, answer.body), (200, b"0123456789"), value)

    @defer.inlineCallbacks
    def test_big_file_streamed(self):
        got = yield self.request("GET", BOX + "big.bin")
        self.assertEqual(got.code, 200)
        self.assertEqual(got.length, len(self.BIG))
        self.assertEqual(got.body, self.BIG)
        head = yield self.request("HEAD", BOX + "big.bin")
        self.assertEqual((head.code, head.body, head.header("content-length")),
                         (200, b"", str(len(self.BIG))))

    @defer.inlineCallbacks
    def test_big_file_ranges(self):
        size = len(self.BIG)
        for value, start, end in [("bytes=70000-70099", 70000, 70099), ("bytes=-4", size - 4, size - 1),
                                  ("bytes=1000-", 1000, size - 1), ("bytes=0-", 0, size - 1)]:
            answer = yield self.ranged(BOX + "big.bin", value)
            self.assertEqual(answer.body, self.BIG[start:end + 1], value)
            self.assertEqual(answer.header("content-range"), "bytes %d-%d/%d" % (start, end, size))
        answer = yield self.ranged(BOX + "big.bin", "bytes=%d-" % size, 416)
        self.assertEqual(answer.header("content-range"), "bytes */%d" % size)

    @defer.inlineCallbacks
    def test_range_with_if_none_match(self):
        etag = (yield self.request("HEAD", BOX + "f.txt")).header("etag")
        answer = yield self.request("GET", BOX + "f.txt",
                                    headers={"Range": "bytes=0-1", "If-None-Match": etag})
        self.assertEqual(answer.code, 304)
