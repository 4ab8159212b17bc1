"""Authentication over HTTP (docs/behaviour.md §9): anonymous callers, Basic with the
lockout, Bearer tokens (expired, tampered, wrong scheme), the token
endpoint's grants and failures, and the p_cookie."""
import base64
import json
from urllib.parse import urlencode

from twisted.internet import defer

from personium_dav.auth.tokens import TokenService
from personium_dav.config import Config

from .support.helpers import BOX, DavTestCase, grant

REALM = "http://localhost/cell1/"
TOKEN_URL = "/cell1/__token"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()}


class AuthTestCase(DavTestCase):
    config = Config(lockout_attempts=3, lockout_seconds=3600)

    def setUp(self):
        DavTestCase.setUp(self)
        accounts = self.server.auth.accounts
        accounts.add_role("cell1", "editor")
        accounts.add_account("cell1", "me", "right-pw", ["editor"])
        # the role may do anything in the box

        grant(self.server, "editor")

    def assert401(self, answer, code):
        self.assertError(answer, 401, code)
        self.assertEqual(answer.headers.getRawHeaders("www-authenticate"),
                         ['Bearer realm="%s"' % REALM, 'Basic realm="%s"' % REALM])

    def token_request(self, **form):
        return self.request("POST", TOKEN_URL, urlencode(form).encode(), FORM, anonymous=True)


class AnonymousTests(AuthTestCase):
    @defer.inlineCallbacks
    def test_every_method_needs_credentials(self):
        for method in ("GET", "PROPFIND", "PROPPATCH", "MKCOL", "PUT", "DELETE", "ACL"):
            answer = yield self.request(method, BOX + "x", b"", {"Depth": "0"}, anonymous=True)
            self.assert401(answer, "PR401-AU-0001")

    @defer.inlineCallbacks
    def test_options_tells_nothing_to_strangers(self):
        answer = yield self.request("OPTIONS", BOX, anonymous=True)
        self.assert401(answer, "PR401-AU-0001")
        answer = yield self.request("OPTIONS", BOX)
        self.assertEqual(answer.code, 200)


class BasicTests(AuthTestCase):
    @defer.inlineCallbacks
    def test_right_and_wrong(self):
        answer = yield self.request("MKCOL", BOX + "c", headers=basic("me", "right-pw"))
        self.assertEqual(answer.code, 201)
        self.assert401((yield self.request("MKCOL", BOX + "d", headers=basic("me", "wrong"))),
                       "PR401-AU-0001")
        self.assert401((yield self.request("MKCOL", BOX + "d", headers=basic("who", "x"))),
                       "PR401-AU-0001")

    @defer.inlineCallbacks
    def test_lockout(self):
        for _ in range(3):
            self.assert401((yield self.request("GET", BOX, headers=basic("me", "wrong"))),
                           "PR401-AU-0001")
        # locked: even the right password is refused, Basic and the token endpoint
        self.assert401((yield self.request("GET", BOX, headers=basic("me", "right-pw"))),
                       "PR401-AU-0001")
        answer = yield self.token_request(grant_type="password", username="me",
                                          password="right-pw")
        self.assertEqual((answer.code, answer.json()["error"]), (400, "invalid_grant"))
        # until the lock time is over
        self.server.auth.accounts.clock = lambda: 10 ** 12
        self.assertEqual((yield self.request("GET", BOX, headers=basic("me", "right-pw"))).code,
                         200)


class TokenTests(AuthTestCase):
    @defer.inlineCallbacks
    def test_expired(self):
        token = self.server.auth.tokens.issue("cell1", "me", ["editor"], ttl=-10)
        answer = yield self.request("GET", BOX, headers={"Authorization": "Bearer " + token})
        self.assert401(answer, "PR401-AU-0002")

    @defer.inlineCallbacks
    def test_tampered(self):
        good = self.server.auth.tokens.issue("cell1", "me", ["editor"])
        forged = TokenService(b"0" * 64).issue(None, "owner", owner=True)
        head, body, sig = good.split(".")
        payload = json.loads(base64.urlsafe_b64decode(body + "=="))
        payload["owner"] = True
        evil = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
        for token in (forged, head + "." + evil + "." + sig, "not-a-token"):
            answer = yield self.request("GET", BOX, headers={"Authorization": "Bearer " + token})
            self.assert401(answer, "PR401-AU-0006")

    @defer.inlineCallbacks
    def test_wrong_scheme(self):
        for value in ("Digest username=me", "Negotiate abc", "Basic ###"):
            answer = yield self.request("GET", BOX, headers={"Authorization": value})
            self.assert401(answer, "PR401-AU-0003")

    @defer.inlineCallbacks
    def test_removed_account(self):
        token = self.server.auth.tokens.issue("cell1", "me", ["editor"])
        self.server.auth.accounts.remove_account("cell1", "me")
        answer = yield self.request("GET", BOX, headers={"Authorization": "Bearer " + token})
        self.assert401(answer, "PR401-AU-0006")


class TokenEndpointTests(AuthTestCase):
    @defer.inlineCallbacks
    def test_password_and_refresh_grants(self):
        answer = yield self.token_request(grant_type="password", username="me",
                                          password="right-pw")
        self.assertEqual(answer.code, 200, answer.body)
        self.assertEqual(answer.header("cache-control"), "no-store")
        grant = answer.json()
        self.assertEqual(set(grant), {"access_token", "token_type", "expires_in",
                                      "refresh_token", "refresh_token_expires_in"})
        self.assertEqual((grant["token_type"], grant["expires_in"]), ("Bearer", 3600))
        bearer = {"Authorization": "Bearer " + grant["access_token"]}
        self.assertEqual((yield self.request("MKCOL", BOX + "c", headers=bearer)).code, 201)
        # the refresh token is not an access token
        answer = yield self.request("GET", BOX, headers={
            "Authorization": "Bearer " + grant["refresh_token"]})
        self.assert401(answer, "PR401-AU-0006")
        answer = yield self.token_request(grant_type="refresh_token",
                                          refresh_token=grant["refresh_token"])
        self.assertEqual(answer.code, 200, answer.body)
        bearer = {"Authorization": "Bearer " + answer.json()["access_token"]}
        self.assertEqual((yield self.request("GET", BOX, headers=bearer)).code, 200)

    @defer.inlineCallbacks
    def test_failures(self):
        cases = [
            ({"grant_type": "password", "username": "me", "password": "wrong"}, "invalid_grant"),
            ({"grant_type": "password", "username": "ghost", "password": "x"}, "invalid_grant"),
            ({"grant_type": "refresh_token", "refresh_token": "garbage"}, "invalid_grant"),
            ({"grant_type": "refresh_token",
              "refresh_token": self.server.auth.tokens.issue("cell1", "me")}, "invalid_grant"),
            ({"grant_type": "password", "username": "me"}, "invalid_request"),
            ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
            ({}, "invalid_request"),
        ]
        for form, error in cases:
            answer = yield self.token_request(**form)
            self.assertEqual((answer.code, answer.json()["error"]), (400, error), form)
            self.assertNotIn("access_token", answer.json())

    @defer.inlineCallbacks
    def test_refresh_for_another_cell(self):
        from personium_dav.store import provision

        provision.create_box(self.data, "cell2", "box1")
        token = self.server.auth.tokens.issue("cell1", "me", kind="refresh")
        answer = yield self.request("POST", "/cell2/__token", urlencode(
            {"grant_type": "refresh_token", "refresh_token": token}).encode(), FORM,
            anonymous=True)
        self.assertEqual((answer.code, answer.json()["error"]), (400, "invalid_grant"))

    @defer.inlineCallbacks
    def test_only_post(self):
        answer = yield self.request("GET", TOKEN_URL, anonymous=True)
        self.assertError(answer, 405, "PR405-MC-0001")


class CookieTests(AuthTestCase):
    @defer.inlineCallbacks
    def cookie_grant(self):
        answer = yield self.token_request(grant_type="password", username="me",
                                          password="right-pw", p_cookie="true")
        self.assertEqual(answer.code, 200, answer.body)
        peer = answer.json()["p_cookie_peer"]
        set_cookie = answer.header("set-cookie")
        self.assertIn("HttpOnly", set_cookie)
        self.assertIn("Path=/cell1/", set_cookie)
        value = set_cookie.split(";")[0].split("=", 1)[1]
        return value, peer

    @defer.inlineCallbacks
    def test_right_and_wrong_peer(self):
        value, peer = yield self.cookie_grant()
        cookie = {"Cookie": "p_cookie=" + value}
        answer = yield self.request("GET", BOX + "?p_cookie_peer=" + peer, headers=cookie,
                                    anonymous=True)
        self.assertEqual(answer.code, 200, answer.body)
        answer = yield self.request("GET", BOX + "?p_cookie_peer=wrong", headers=cookie,
                                    anonymous=True)
        self.assert401(answer, "PR401-AU-0009")
        answer = yield self.request("GET", BOX, headers=cookie, anonymous=True)
        self.assert401(answer, "PR401-AU-0009")
        # the cookie is no Bearer token, nor the other way round
        answer = yield self.request("GET", BOX, headers={"Authorization": "Bearer " + value})
        self.assert401(answer, "PR401-AU-0006")

    @defer.inlineCallbacks
    def test_authorization_header_wins(self):
        value, peer = yield self.cookie_grant()
        answer = yield self.request("GET", BOX + "?p_cookie_peer=" + peer, headers={
            "Cookie": "p_cookie=" + value, "Authorization": "Bearer bad"})
        self.assert401(answer, "PR401-AU-0006")
