"""makeResource mounted below a prefix: hrefs, error URLs and Destinations carry
it; outside any box the URL space answers 404 (docs/behaviour.md §1, §2, §8)."""
from twisted.internet import defer

from .support.steps import BOX, DavSteps


class Mounted:
    """The same checks at the site root and below /dav (``mount`` is the path prefix)."""

    mount = ""

    @defer.inlineCallbacks
    def test_propfind_hrefs(self):
        yield self.mkcol(BOX + "col")
        yield self.put(BOX + "col/f.txt")
        self.assertEqual((yield self.hrefs(BOX)),
                         [self.mount + BOX, self.mount + BOX + "col/"])
        self.assertEqual((yield self.hrefs(BOX + "col")),
                         [self.mount + BOX + "col/", self.mount + BOX + "col/f.txt"])

    @defer.inlineCallbacks
    def test_409_url(self):
        answer = yield self.request("MKCOL", BOX + "a/b")
        self.assertError(answer, 409, "PR409-DV-0001",
                         "intermediate collection [http://localhost%s/cell1/box1/a/] "
                         "should be created first." % self.mount)

    @defer.inlineCallbacks
    def test_404_url(self):
        answer = yield self.request("GET", BOX + "none.txt")
        self.assertError(answer, 404, "PR404-DV-0001",
                         "Resource not found. [http://localhost%s/cell1/box1/none.txt]." % self.mount)

    @defer.inlineCallbacks
    def test_move_with_destination_below_the_mount(self):
        yield self.put(BOX + "f.txt", b"moved")
        answer = yield self.move(BOX + "f.txt", BOX + "g.txt")
        self.assertEqual(answer.code, 201, answer.body)
        self.assertEqual((yield self.body_of(BOX + "g.txt")), b"moved")
        answer = yield self.request("COPY", BOX + "g.txt",
                                    headers={"Destination": self.mount + BOX + "h.txt"})
        self.assertEqual(answer.code, 201, answer.body)

    @defer.inlineCallbacks
    def test_cell_not_found(self):
        for path in ("/nocell/", "/nocell/box1/", "/nocell/box1/x.txt", "/bad%3acell/box1/"):
            answer = yield self.request("GET", path)
            self.assertError(answer, 404, "PR404-DV-0003", "Cell not found.")

    @defer.inlineCallbacks
    def test_box_not_found(self):
        for path in ("/cell1/nobox", "/cell1/nobox/", "/cell1/nobox/col/x.txt"):
            for method in ("GET", "PUT", "PROPFIND", "MKCOL"):
                answer = yield self.request(method, path, headers={"Depth": "0"})
                self.assertError(answer, 404, "PR404-DV-0002",
                                 "Box not found at [http://localhost%s/cell1/nobox/]." % self.mount)

    @defer.inlineCallbacks
    def test_outside_any_box(self):
        for path in ("/", "/cell1/", "/cell1"):
            for method in ("GET", "PROPFIND", "PUT", "MKCOL", "DELETE"):
                answer = yield self.request(method, path, headers={"Depth": "0"})
                self.assertError(answer, 404, "PR404-MC-0001", "URI is not recognized.")


class AtRootTests(Mounted, DavSteps):
    @defer.inlineCallbacks
    def test_destination_with_a_prefix_is_not_ours(self):
        yield self.put(BOX + "f.txt")
        target = "http://localhost/dav" + BOX + "g.txt"
        answer = yield self.request("MOVE", BOX + "f.txt", headers={"Destination": target})
        self.assertError(answer, 400, "PR400-DV-0009",
                         "Request header Destination value is invalid [%s]." % target)


class PrefixTests(Mounted, DavSteps):
    prefix = "dav"
    mount = "/dav"

    @defer.inlineCallbacks
    def test_destination_without_the_prefix(self):
        yield self.put(BOX + "f.txt")
        target = "http://localhost" + BOX + "g.txt"
        answer = yield self.request("MOVE", BOX + "f.txt", headers={"Destination": target})
        self.assertError(answer, 400, "PR400-DV-0009",
                         "Request header Destination value is invalid [%s]." % target)
        self.assertTrue((yield self.exists(BOX + "f.txt")))

    @defer.inlineCallbacks
    def test_service_collection_below_the_prefix(self):
        yield self.service(BOX + "svc")
        self.assertEqual((yield self.hrefs(BOX + "svc")),
                         ["/dav" + BOX + "svc/", "/dav" + BOX + "svc/__src/"])
