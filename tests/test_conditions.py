"""HTTP preconditions on every method (docs/behaviour.md §5): If-Match
compared strongly, If-Unmodified-Since and If-Modified-Since, If-None-Match
on collections, If-Range, in RFC 9110 §13.2.2's order; not for OPTIONS."""
from twisted.internet import defer

from .support.helpers import BOX
from .support.steps import DavSteps

EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"
FUTURE = "Fri, 01 Jan 2100 00:00:00 GMT"


class Preconditions(DavSteps):
    @defer.inlineCallbacks
    def setUp(self):
        yield DavSteps.setUp(self)
        answer = yield self.put(BOX + "f.txt", b"0123456789")
        self.etag = answer.header("etag")
        yield self.mkcol(BOX + "col")

    @defer.inlineCallbacks
    def test_if_match_is_strong(self):
        for method in ("GET", "PUT", "PROPFIND", "DELETE"):
            answer = yield self.request(method, BOX + "f.txt", b"x" if method == "PUT" else b"",
                                        {"If-Match": "W/" + self.etag, "Depth": "0"})
            self.assertError(answer, 412, "PR412-DV-0001")
        self.assertEqual((yield self.request("GET", BOX + "f.txt")).body, b"0123456789")

    @defer.inlineCallbacks
    def test_if_unmodified_since(self):
        answer = yield self.request("PUT", BOX + "f.txt", b"new",
                                    {"If-Unmodified-Since": EPOCH})
        self.assertError(answer, 412, "PR412-DV-0001")
        answer = yield self.request("PUT", BOX + "f.txt", b"new",
                                    {"If-Unmodified-Since": FUTURE})
        self.assertEqual(answer.code, 204)
        # If-Match present: If-Unmodified-Since is not looked at
        etag = answer.header("etag")
        answer = yield self.request("PUT", BOX + "f.txt", b"newer",
                                    {"If-Match": etag, "If-Unmodified-Since": EPOCH})
        self.assertEqual(answer.code, 204)
        answer = yield self.request("PUT", BOX + "f.txt", b"x",
                                    {"If-Unmodified-Since": "not a date"})
        self.assertEqual(answer.code, 204)  # an invalid date is ignored

    @defer.inlineCallbacks
    def test_if_modified_since(self):
        answer = yield self.request("GET", BOX + "f.txt", headers={"If-Modified-Since": FUTURE})
        self.assertEqual(answer.code, 304)
        self.assertEqual(answer.header("etag"), self.etag)
        answer = yield self.request("GET", BOX + "f.txt", headers={"If-Modified-Since": EPOCH})
        self.assertEqual(answer.code, 200)
        # If-None-Match present: If-Modified-Since is not looked at
        answer = yield self.request("GET", BOX + "f.txt", headers={
            "If-None-Match": '"other"', "If-Modified-Since": FUTURE})
        self.assertEqual(answer.code, 200)

    @defer.inlineCallbacks
    def test_collections(self):
        answer = yield self.request("GET", BOX + "col", headers={"If-None-Match": "*"})
        self.assertEqual(answer.code, 304)
        for method, headers in (("MKCOL", {"If-Match": "*"}),
                                ("PROPFIND", {"If-Match": '"1-1"', "Depth": "0"}),
                                ("PROPFIND", {"If-None-Match": "*", "Depth": "0"})):
            path = BOX + ("new" if method == "MKCOL" else "col")
            answer = yield self.request(method, path, b"", headers)
            self.assertError(answer, 412, "PR412-DV-0001")
        self.assertEqual((yield self.request("HEAD", BOX + "new")).code, 404)

    @defer.inlineCallbacks
    def test_if_range(self):
        ranged = {"Range": "bytes=2-4"}
        answer = yield self.request("GET", BOX + "f.txt", headers=dict(ranged, **{
            "If-Range": self.etag}))
        self.assertEqual((answer.code, answer.body), (206, b"234"))
        for stale in ('"9-9"', "W/" + self.etag, EPOCH):
            answer = yield self.request("GET", BOX + "f.txt", headers=dict(ranged, **{
                "If-Range": stale}))
            self.assertEqual((answer.code, answer.body), (200, b"0123456789"), stale)

    @defer.inlineCallbacks
    def test_not_where_the_answer_would_not_be_a_success(self):
        answer = yield self.request("DELETE", BOX + "nothing.txt", headers={"If-Match": "*"})
        self.assertError(answer, 404, "PR404-DV-0001")
        answer = yield self.request("PUT", BOX + "missing/f.txt", b"x",
                                    {"If-Match": '"1-1"'})
        self.assertError(answer, 409, "PR409-DV-0001")

    @defer.inlineCallbacks
    def test_not_for_options(self):
        answer = yield self.request("OPTIONS", BOX + "f.txt", headers={
            "If-Match": '"nope"', "If-Unmodified-Since": EPOCH})
        self.assertEqual(answer.code, 200)
