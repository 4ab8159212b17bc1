"""The envelope over HTTP (docs/behaviour.md §9): request keys checked before anything,
overrides and their precedence, CORS and the unauthenticated preflight."""
from twisted.internet import defer

from .support.helpers import BOX, DavTestCase

KEY = "X-Personium-RequestKey"


class RequestKeyTests(DavTestCase):
    @defer.inlineCallbacks
    def test_accepted_and_returned(self):
        for key in ("", "a" * 128, "Key-1_x"):
            answer = yield self.request("PROPFIND", BOX, headers={KEY: key, "Depth": "0"})
            self.assertEqual(answer.code, 207)
            self.assertEqual(answer.header(KEY.lower()), key)

    @defer.inlineCallbacks
    def test_made_when_absent(self):
        answer = yield self.request("GET", BOX)
        self.assertRegex(answer.header(KEY.lower()), r"^[A-Za-z0-9_-]{4}_[A-Za-z0-9_-]{22}$")
        other = yield self.request("GET", BOX)
        self.assertNotEqual(answer.header(KEY.lower()), other.header(KEY.lower()))

    @defer.inlineCallbacks
    def test_refused_before_authorization_and_routing(self):
        for key in ("a" * 129, "abc#123"):
            for path, anonymous in ((BOX, True), (BOX, False), ("/nocell/", True)):
                answer = yield self.request("PUT", path + "f", b"x", {KEY: key},
                                            anonymous=anonymous)
                self.assertError(answer, 400, "PR400-EV-0002",
                                 "Request header is invalid [X-Personium-RequestKey].")
                self.assertIsNone(answer.header("www-authenticate"))

    @defer.inlineCallbacks
    def test_on_errors_too(self):
        answer = yield self.request("GET", BOX + "missing", headers={KEY: "k1"})
        self.assertEqual((answer.code, answer.header(KEY.lower())), (404, "k1"))
        answer = yield self.request("GET", BOX, headers={KEY: "k2"}, anonymous=True)
        self.assertEqual((answer.code, answer.header(KEY.lower())), (401, "k2"))


class OverrideTests(DavTestCase):
    @defer.inlineCallbacks
    def test_method_override_on_post(self):
        answer = yield self.request("POST", BOX + "c", headers={"X-HTTP-Method-Override": "MKCOL"})
        self.assertEqual(answer.code, 201)
        answer = yield self.request("POST", BOX + "c", headers={
            "X-HTTP-Method-Override": "PROPFIND", "Depth": "0"})
        self.assertEqual(answer.code, 207)

    @defer.inlineCallbacks
    def test_only_on_post(self):
        yield self.request("MKCOL", BOX + "c")
        answer = yield self.request("GET", BOX + "c", headers={"X-HTTP-Method-Override": "DELETE"})
        self.assertEqual(answer.code, 200)

    @defer.inlineCallbacks
    def test_header_overrides_in_order(self):
        answer = yield self.request("PROPFIND", BOX, headers={
            "Depth": "infinity", "X-Override": ["Depth: 0", "Depth: 1", ": ignored"]})
        self.assertEqual(answer.code, 207)
        self.assertIn(b"<D:response>", answer.body)
        answer = yield self.request("PROPFIND", BOX, headers={"X-Override": ["Depth: 1",
                                                                              "Depth: infinity"]})
        self.assertError(answer, 403, "PR403-DV-0001")

    @defer.inlineCallbacks
    def test_method_override_comes_first(self):
        """X-Override cannot change the method once X-HTTP-Method-Override set it."""
        answer = yield self.request("POST", BOX + "c", headers={
            "X-HTTP-Method-Override": "MKCOL",
            "X-Override": "X-HTTP-Method-Override: DELETE"})
        self.assertEqual(answer.code, 201)

    @defer.inlineCallbacks
    def test_override_can_carry_credentials(self):
        answer = yield self.request("GET", BOX, headers={
            "X-Override": "Authorization: Bearer " + self.ownerToken}, anonymous=True)
        self.assertEqual(answer.code, 200)


class CorsTests(DavTestCase):
    @defer.inlineCallbacks
    def test_headers_when_origin(self):
        answer = yield self.request("GET", BOX, headers={"Origin": "http://app.example"})
        self.assertEqual(answer.header("access-control-allow-origin"), "http://app.example")
        self.assertEqual(answer.header("access-control-allow-credentials"), "true")
        exposed = answer.header("access-control-expose-headers")
        self.assertIn("ETag", exposed)
        self.assertIn(KEY, exposed)
        plain = yield self.request("GET", BOX)
        self.assertIsNone(plain.header("access-control-allow-origin"))

    @defer.inlineCallbacks
    def test_on_errors(self):
        answer = yield self.request("GET", BOX, headers={"Origin": "http://a"}, anonymous=True)
        self.assertEqual(answer.code, 401)
        self.assertEqual(answer.header("access-control-allow-origin"), "http://a")

    @defer.inlineCallbacks
    def test_preflight_without_credentials(self):
        answer = yield self.request("OPTIONS", BOX + "any/thing", headers={
            "Origin": "http://a", "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization, content-type"}, anonymous=True)
        self.assertEqual(answer.code, 200)
        self.assertEqual(answer.header("access-control-allow-headers"),
                         "authorization, content-type")
        self.assertIn("PROPFIND", answer.header("access-control-allow-methods"))
