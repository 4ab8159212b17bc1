"""Hostile header values: numbers too long or not ASCII, Destinations on
another server or not UTF-8, and the smaller findings of the second
security review (docs/security.md, "Hostile headers")."""
import json

from twisted.internet import defer
from twisted.trial import unittest

from personium_dav.config import Config
from personium_dav.logs import eventlog
from personium_dav.store.provision import create_box

from .support import hardening
from .support.helpers import BOX
from .support.steps import DavSteps

HUGE = "9" * 5000  # Python's int() refuses strings over 4,300 digits


class Numbers(DavSteps):
    @defer.inlineCallbacks
    def test_range_of_thousands_of_digits(self):
        yield self.put(BOX + "f.txt", b"0123456789")
        for value in ("bytes=%s-" % HUGE, "bytes=0-%s" % HUGE, "bytes=-%s" % HUGE):
            answer = yield self.request("GET", BOX + "f.txt", headers={"Range": value})
            self.assertIn(answer.code, (200, 206, 416), answer.body)
            self.assertNotIn(b"Traceback", answer.body)
        answer = yield self.request("GET", BOX + "f.txt", headers={"Range": "bytes=%s-" % HUGE})
        self.assertError(answer, 416, "PR416-DV-0001")

    @defer.inlineCallbacks
    def test_overridden_content_length(self):
        for value in ("²", "٣", HUGE, "-1", "1e3"):
            for method, path in (("PROPFIND", BOX), ("PUT", BOX + "x.txt"), ("PROPPATCH", BOX)):
                answer = yield self.request(method, path, b"", {
                    "Depth": "0", "X-Override": "Content-Length: " + value})
                self.assertError(answer, 400, "PR400-DV-0009")
            answer = yield self.request("PROPFIND", BOX, b"", {
                "Depth": "0", "X-Override": "Content-Length: " + value}, anonymous=True)
            self.assertIn(answer.code, (400, 401))
        self.assertEqual(self.flushLoggedErrors(), [])


class RawContentLength(unittest.TestCase):
    def test_thousands_of_digits_answered_400(self):
        server = hardening.LoopbackServer(self)

        def send():
            s = hardening.connect(server.portNumber)
            try:
                s.sendall(b"PUT /cell1/box1/x.txt HTTP/1.1\r\nHost: l\r\nContent-Length: "
                          + HUGE.encode() + b"\r\nX-After: 1\r\n\r\n")
                return hardening.read_response(s)
            finally:
                s.close()

        def check(raw):
            self.assertEqual(hardening.status_of(raw), 400, raw[:300])
            body = json.loads(raw.partition(b"\r\n\r\n")[2])
            self.assertEqual(body["code"], "PR400-DV-0009")
            self.assertEqual(self.flushLoggedErrors(), [])
            self.assertEqual(server.tmp_files(), [])

        return hardening.in_thread(send).addCallback(check)


class Destinations(DavSteps):
    @defer.inlineCallbacks
    def setUp(self):
        yield DavSteps.setUp(self)
        yield self.put(BOX + "a.txt", b"a")

    def move(self, destination, **headers):
        return self.request("MOVE", BOX + "a.txt", headers=dict(headers, Destination=destination))

    @defer.inlineCallbacks
    def test_raw_utf8(self):
        answer = yield self.move("http://localhost/cell1/box1/\u00e9t\u00e9.txt".encode("utf-8"))
        self.assertEqual(answer.code, 201, answer.body)
        self.assertEqual((yield self.hrefs(BOX)), [BOX, BOX + "%C3%A9t%C3%A9.txt"])

    @defer.inlineCallbacks
    def test_not_utf8(self):
        for value in (b"http://localhost/cell1/box1/\xe9t\xe9.txt",
                      b"http://localhost/cell1/box1/%E9t%E9.txt"):
            answer = yield self.move(value)
            self.assertError(answer, 400, "PR400-DV-0009")
        self.assertEqual((yield self.request("HEAD", BOX + "a.txt")).code, 200)

    @defer.inlineCallbacks
    def test_another_server(self):
        for value in ("http://other.example/cell1/box1/b.txt",
                      "https://localhost/cell1/box1/b.txt",
                      "http://localhost:8081/cell1/box1/b.txt",
                      "file:///cell1/box1/b.txt", "mailto:me@example.org"):
            answer = yield self.move(value)
            self.assertError(answer, 502, "PR502-DV-0001")
        self.assertEqual((yield self.request("HEAD", BOX + "a.txt")).code, 200)
        for value in ("http://LOCALHOST:80/cell1/box1/b.txt", "/cell1/box1/c.txt"):
            answer = yield self.move(value)
            self.assertEqual(answer.code, 201, (value, answer.body))
            yield self.request("MOVE", BOX + value.rsplit("/", 1)[1],
                               headers={"Destination": BOX + "a.txt"})

    @defer.inlineCallbacks
    def test_public_url(self):
        """Behind a proxy that does not pass the client's Host: the public
        URL the operator configured is this server too."""
        self.server.config = Config(durable=False, public_url="https://dav.example.org")
        answer = yield self.move("https://dav.example.org/cell1/box1/b.txt")
        self.assertEqual(answer.code, 201, answer.body)


class SmallerFindings(DavSteps):
    @defer.inlineCallbacks
    def test_a_files_url_with_a_slash(self):
        yield self.put(BOX + "f.txt", b"f")
        for method in ("GET", "PROPFIND", "DELETE", "PUT"):
            answer = yield self.request(method, BOX + "f.txt/", b"x", {"Depth": "0"})
            self.assertError(answer, 404, "PR404-DV-0001")
        self.assertEqual((yield self.request("GET", BOX + "f.txt")).body, b"f")

    def test_reserved_box_names(self):
        root = self.mktemp()
        for name in ("__", "__token", "__role", "__ctl", "__anything"):
            self.assertRaises(ValueError, create_box, root, "cell1", name)

    def test_line_separators_escaped_in_the_event_log(self):
        for char in ("\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1e", "\n", "\r"):
            line = eventlog.format_line(0, 200, "k", "s" + char + "t", "davfile.get",
                                        "o" + char, schema="x" + char)
            self.assertEqual(len(line.splitlines()), 1, repr(char))

    @defer.inlineCallbacks
    def test_cookie_peer_from_the_query_string_only(self):
        accounts = self.server.auth.accounts
        accounts.add_account("cell1", "me", "pw-me")
        form = b"grant_type=password&username=me&password=pw-me&p_cookie=true"
        answer = yield self.request("POST", "/cell1/__token", form,
                                    {"Content-Type": "application/x-www-form-urlencoded"},
                                    anonymous=True)
        grant = answer.json()
        cookie = {"Cookie": "p_cookie=" + answer.headers.getRawHeaders(
            "set-cookie")[0].split(";")[0].split("=", 1)[1]}
        peer = b"p_cookie_peer=" + grant["p_cookie_peer"].encode()
        answer = yield self.request("POST", BOX, peer, dict(
            cookie, **{"Content-Type": "application/x-www-form-urlencoded",
                       "X-HTTP-Method-Override": "PROPFIND", "Depth": "0"}), anonymous=True)
        self.assertError(answer, 401, "PR401-AU-0009")  # the peer in the body is no peer

    @defer.inlineCallbacks
    def test_acl_capped_like_properties(self):
        self.server.config = Config(durable=False, max_prop_value=300)
        self.server.auth.accounts.add_role("cell1", "r")
        aces = "".join('<D:ace><D:principal><D:all/></D:principal><D:grant><D:privilege>'
                       '<D:read/></D:privilege></D:grant></D:ace>' for _ in range(20))
        body = ('<D:acl xmlns:D="DAV:">%s</D:acl>' % aces).encode()
        answer = yield self.request("ACL", BOX, body)
        self.assertError(answer, 400, "PR400-DV-0006")

    @defer.inlineCallbacks
    def test_only_a_boolean_true_makes_an_owner(self):
        import jwt

        tokens = self.server.auth.tokens
        claims = jwt.decode(tokens.owner_token(), tokens.secret, algorithms=["HS256"],
                            options={"verify_signature": True, "verify_iss": False})
        for claim in ("true", 1, "yes", [1]):
            token = jwt.encode(dict(claims, owner=claim), tokens.secret, algorithm="HS256")
            answer = yield self.request("PROPFIND", BOX, headers={
                "Authorization": "Bearer " + token, "Depth": "0"})
            self.assertIn(answer.code, (401, 403), claim)
