"""Tokens end with what granted them (docs/security.md, "Tokens"): the
roles of a token are the account's as it is now, and a token carries its
account's generation (or the owner generation), raised by every password or
role change, by the account's removal and by ``token revoke``; access
tokens, refresh tokens and the p_cookie alike.

In memory (``DavTestCase``) and, for the command line, against the real
plugin on a loopback port while ``python -m personium_dav`` changes the
accounts beside it."""
import base64
import json
import os
import subprocess
import sys
from urllib.parse import urlencode

import jwt
from argon2 import PasswordHasher
from twisted.internet import defer, threads
from twisted.trial import unittest

from personium_dav.auth import files
from personium_dav.auth.accounts import AccountStore

from personium_dav.auth.tokens import ALGORITHM, ISSUER, OwnerGeneration, load_secret

from .support import realserver
from .support.clientauth import fetch
from .support import helpers
from .support.helpers import BOX, DavTestCase

TOKEN_URL = "/cell1/__token"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def bearer(token):
    return {"Authorization": "Bearer " + token}


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()}


def grant(server, role, privileges=("read",)):
    """An ACL on box1 granting ``role`` the privileges (and nothing else)."""
    helpers.grant(server, role, privileges)


def cheapHashes(server):
    """argon2 at its smallest cost, for speed (the same code path)."""
    server.auth.accounts.hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class Revocation(DavTestCase):
    def setUp(self):
        DavTestCase.setUp(self)
        cheapHashes(self.server)
        self.accounts = self.server.auth.accounts
        self.accounts.add_role("cell1", "auditor")
        self.accounts.add_account("cell1", "aud", "aud-pw", ["auditor"])
        grant(self.server, "auditor")

    @defer.inlineCallbacks
    def login(self, user="aud", password="aud-pw", cookie=False):
        """The token endpoint's answer for a password grant (and the cookie)."""
        form = {"grant_type": "password", "username": user, "password": password}
        if cookie:
            form["p_cookie"] = "true"
        answer = yield self.request("POST", TOKEN_URL, urlencode(form).encode(), FORM,
                                    anonymous=True)
        self.assertEqual(answer.code, 200, answer.body)
        body = answer.json()
        if cookie:
            body["cookie"] = answer.header("set-cookie").split(";")[0].split("=", 1)[1]
        return body

    def refresh(self, token):
        return self.request("POST", TOKEN_URL, urlencode(
            {"grant_type": "refresh_token", "refresh_token": token}).encode(), FORM,
            anonymous=True)

    def with_cookie(self, grant_):
        return self.request("GET", BOX + "?p_cookie_peer=" + grant_["p_cookie_peer"],
                            headers={"Cookie": "p_cookie=" + grant_["cookie"]}, anonymous=True)

    @defer.inlineCallbacks
    def test_removed_role_ends_the_token_at_once(self):
        """The token is used (and so remembered by the bearer cache), the
        role removed, the same token used again: refused."""
        token = (yield self.login())["access_token"]
        for _ in range(2):
            self.assertEqual((yield self.request("GET", BOX, headers=bearer(token))).code, 200)
        self.accounts.remove_role("cell1", "auditor")
        answer = yield self.request("GET", BOX, headers=bearer(token))
        self.assertError(answer, 401, "PR401-AU-0006")

    @defer.inlineCallbacks
    def test_roles_are_the_accounts_not_the_tokens(self):
        """A token whose ``roles`` claim names a role the account does not
        hold (same generation) gets nothing from that role."""
        self.accounts.add_account("cell1", "plain", "plain-pw", [])
        gen = self.accounts.get("cell1", "plain")["generation"]
        token = self.server.auth.tokens.issue("cell1", "plain", ["auditor"], generation=gen)
        answer = yield self.request("GET", BOX, headers=bearer(token))
        self.assertError(answer, 403, "PR403-AU-0002")

    @defer.inlineCallbacks
    def test_password_reset_ends_access_refresh_and_cookie(self):
        grant_ = yield self.login(cookie=True)
        self.assertEqual((yield self.request("GET", BOX, headers=bearer(
            grant_["access_token"]))).code, 200)
        self.assertEqual((yield self.with_cookie(grant_)).code, 200)
        # same roles, new password (account add over an existing account)
        self.accounts.add_account("cell1", "aud", "new-pw", ["auditor"])
        answer = yield self.request("GET", BOX, headers=bearer(grant_["access_token"]))
        self.assertError(answer, 401, "PR401-AU-0006")
        self.assertError((yield self.with_cookie(grant_)), 401, "PR401-AU-0009")
        answer = yield self.refresh(grant_["refresh_token"])
        self.assertEqual((answer.code, answer.json()["error"]), (400, "invalid_grant"))
        # the new password's tokens work
        fresh = yield self.login(password="new-pw")
        self.assertEqual((yield self.request("GET", BOX, headers=bearer(
            fresh["access_token"]))).code, 200)

    @defer.inlineCallbacks
    def test_refresh_token_does_not_outlive_roles_and_password(self):
        """The issue's case: password reset and roles removed, the old
        refresh token no longer mints tokens (it did, forever)."""
        grant_ = yield self.login()
        answer = yield self.refresh(grant_["refresh_token"])
        self.assertEqual(answer.code, 200, answer.body)
        self.accounts.add_account("cell1", "aud", "other-pw", [])
        for token in (grant_["refresh_token"], answer.json()["refresh_token"]):
            answer = yield self.refresh(token)
            self.assertEqual((answer.code, answer.json()["error"]), (400, "invalid_grant"))

    @defer.inlineCallbacks
    def test_refresh_gives_current_roles(self):
        """A refreshed token is the account as it is now: a token from a
        refresh after the ACL's role was taken away reads nothing."""
        self.accounts.add_role("cell1", "other")
        self.accounts.add_account("cell1", "two", "two-pw", ["auditor", "other"])
        grant_ = yield self.login("two", "two-pw")
        self.accounts.revoke("cell1", "two")
        answer = yield self.refresh(grant_["refresh_token"])
        self.assertEqual(answer.code, 400)
        fresh = yield self.login("two", "two-pw")
        self.accounts.remove_role("cell1", "other")  # raises two's generation too
        self.assertError((yield self.request("GET", BOX, headers=bearer(
            fresh["access_token"]))), 401, "PR401-AU-0006")

    @defer.inlineCallbacks
    def test_removed_and_made_again(self):
        """An account removed and made again (same name, same password, same
        roles) does not bring its old tokens back."""
        old = yield self.login()
        self.accounts.remove_account("cell1", "aud")
        self.accounts.add_account("cell1", "aud", "aud-pw", ["auditor"])
        self.assertError((yield self.request("GET", BOX, headers=bearer(
            old["access_token"]))), 401, "PR401-AU-0006")
        answer = yield self.refresh(old["refresh_token"])
        self.assertEqual(answer.code, 400)

    @defer.inlineCallbacks
    def test_revoke_one_and_all(self):
        self.accounts.add_account("cell1", "b", "b-pw", ["auditor"])
        a, b = (yield self.login()), (yield self.login("b", "b-pw"))
        self.accounts.revoke("cell1", "aud")
        self.assertError((yield self.request("GET", BOX, headers=bearer(a["access_token"]))),
                         401, "PR401-AU-0006")
        self.assertEqual((yield self.request("GET", BOX, headers=bearer(b["access_token"]))).code,
                         200)
        self.accounts.revoke("cell1")
        self.assertError((yield self.request("GET", BOX, headers=bearer(b["access_token"]))),
                         401, "PR401-AU-0006")
        # the accounts themselves still log in
        self.assertEqual((yield self.request("GET", BOX, headers=basic("b", "b-pw"))).code, 200)

    @defer.inlineCallbacks
    def test_owner_revocation(self):
        old = self.ownerToken
        self.assertEqual((yield self.request("PROPFIND", BOX, headers={"Depth": "0"})).code, 207)
        OwnerGeneration(self.data).raise_()  # what token revoke --owner does
        answer = yield self.request("PROPFIND", BOX, headers={"Depth": "0"})
        self.assertError(answer, 401, "PR401-AU-0006")
        self.ownerToken = self.server.auth.tokens.owner_token()
        self.assertNotEqual(old, self.ownerToken)
        self.assertEqual((yield self.request("PROPFIND", BOX, headers={"Depth": "0"})).code, 207)

    @defer.inlineCallbacks
    def test_change_by_another_process(self):
        """Another AccountStore on the same root (another server process or
        the command line) revokes: this one refuses the token it had
        remembered."""
        token = (yield self.login())["access_token"]
        self.assertEqual((yield self.request("GET", BOX, headers=bearer(token))).code, 200)
        AccountStore(self.data).revoke("cell1", "aud")
        self.assertError((yield self.request("GET", BOX, headers=bearer(token))),
                         401, "PR401-AU-0006")


class LegacyFiles(DavTestCase):
    """An accounts file and tokens from before generations keep working."""

    @defer.inlineCallbacks
    def test_no_generation_field(self):
        cheapHashes(self.server)
        hashed = self.server.auth.accounts.hasher.hash("old-pw")
        doc = {"version": 1, "roles": ["auditor"],
               "accounts": {"old": {"hash": hashed, "roles": ["auditor"],
                                    "failures": 0, "locked_until": 0}}}
        files.write_json(os.path.join(self.data, "cell1", ":accounts.json"), doc)
        grant(self.server, "auditor")
        secret = load_secret(self.data)

        def legacy(kind):  # the claims this server issued before: no "gen"
            return jwt.encode({"iss": ISSUER, "typ": kind, "cell": "cell1", "sub": "old",
                               "roles": ["auditor"], "owner": False, "iat": 1,
                               "exp": 2 ** 40, "jti": "x"}, secret, algorithm=ALGORITHM)

        self.assertEqual((yield self.request("GET", BOX, headers=bearer(legacy("access")))).code,
                         200)
        self.assertEqual((yield self.request("GET", BOX, headers=basic("old", "old-pw"))).code,
                         200)
        answer = yield self.request("POST", TOKEN_URL, urlencode(
            {"grant_type": "refresh_token", "refresh_token": legacy("refresh")}).encode(),
            FORM, anonymous=True)
        self.assertEqual(answer.code, 200, answer.body)
        # and they end like any other
        self.server.auth.accounts.revoke("cell1", "old")
        self.assertError((yield self.request("GET", BOX, headers=bearer(legacy("access")))),
                         401, "PR401-AU-0006")


class BearerCache(DavTestCase):
    """The bearer path stays cheap: a token seen before costs no JSON
    parsing of the accounts file while the file is unchanged."""

    @defer.inlineCallbacks
    def test_no_json_per_request(self):
        accounts = self.server.auth.accounts
        accounts.add_role("cell1", "auditor")
        accounts.add_account("cell1", "aud", "aud-pw", ["auditor"])
        grant(self.server, "auditor")
        gen = accounts.get("cell1", "aud")["generation"]
        token = self.server.auth.tokens.issue("cell1", "aud", generation=gen)
        parsed = []
        real = files.read_json
        self.patch(files, "read_json", lambda *a: parsed.append(a) or real(*a))
        for _ in range(20):
            self.assertEqual((yield self.request("GET", BOX, headers=bearer(token))).code, 200)
        self.assertEqual(parsed, [])
        # changed on disk by someone else: read once again, and refused
        AccountStore(self.data).revoke("cell1", "aud")
        del parsed[:]
        for _ in range(3):
            self.assertError((yield self.request("GET", BOX, headers=bearer(token))),
                             401, "PR401-AU-0006")
        self.assertEqual(len([p for p in parsed if p[0].endswith(":accounts.json")]), 1)

    def test_every_write_has_a_new_stat_key(self):
        """Rewrites of the same size in the same clock tick still differ
        (the mtime is pushed forward), so a stat-revalidated copy is never
        taken for the new file."""
        path = os.path.join(self.data, "cell1", "probe.json")
        keys = []
        for i in range(50):
            files.write_json(path, {"generation": i % 10}, durable=False)
            keys.append(files.stat_key(os.stat(path))[1:])
        mtimes = [k[0] for k in keys]
        self.assertEqual(mtimes, sorted(set(mtimes)))


def cli(data, *args, stdin=None):
    result = subprocess.run([sys.executable, "-m", "personium_dav", *args, "--data", data],
                            input=stdin, capture_output=True, text=True, timeout=60,
                            env=realserver.cliEnv())
    return result


class CommandLine(unittest.TestCase):
    """The real plugin; ``role remove``, ``account add`` and ``token revoke``
    run by the command line beside it, as an operator would."""

    @defer.inlineCallbacks
    def setUp(self):
        self.data = os.path.abspath(self.mktemp())
        yield threads.deferToThread(self.provision)
        self.server = yield realserver.RealServer(self, self.data).start()

    def provision(self):
        realserver.provisionUser(self.data, "aud", "aud-pw", "auditor")
        realserver.addAccount(self.data, "cell1", "other", "other-pw", ["auditor"])
        # the issue's ACL: box1 readable by auditor only
        realserver.grantOnBox(self.data, "cell1", "box1", "auditor", ("read",))

    def run_cli(self, *args, stdin=None):
        return threads.deferToThread(cli, self.data, *args, stdin=stdin)

    @defer.inlineCallbacks
    def login(self, user, password):
        code, _, body = yield fetch(self.server, None, "POST", TOKEN_URL, urlencode(
            {"grant_type": "password", "username": user, "password": password}).encode(), FORM)
        self.assertEqual(code, 200, body)
        return json.loads(body)

    @defer.inlineCallbacks
    def get(self, token, path=BOX):
        code, _, body = yield fetch(self.server, None, "GET", path, None, bearer(token))
        return code, body

    @defer.inlineCallbacks
    def test_role_remove_and_revoke(self):
        aud = yield self.login("aud", "aud-pw")
        other = yield self.login("other", "other-pw")
        self.assertEqual((yield self.get(aud["access_token"]))[0], 200)
        self.assertEqual((yield self.get(aud["access_token"]))[0], 200)  # remembered now
        result = yield self.run_cli("role", "remove", "cell1", "auditor")
        self.assertEqual(result.returncode, 0, result.stderr)
        code, body = yield self.get(aud["access_token"])
        self.assertEqual((code, json.loads(body)["code"]), (401, "PR401-AU-0006"))
        code, _, body = yield fetch(self.server, None, "POST", TOKEN_URL, urlencode(
            {"grant_type": "refresh_token", "refresh_token": aud["refresh_token"]}).encode(),
            FORM)
        self.assertEqual((code, json.loads(body)["error"]), (400, "invalid_grant"))
        # made again and given back: new tokens only; token revoke CELL ACCOUNT
        yield self.run_cli("role", "add", "cell1", "auditor")
        result = yield self.run_cli("account", "add", "cell1", "aud", "--role", "auditor",
                                    stdin="aud-pw\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual((yield self.get(aud["access_token"]))[0], 401)
        aud = yield self.login("aud", "aud-pw")
        self.assertEqual((yield self.get(aud["access_token"]))[0], 200)
        result = yield self.run_cli("token", "revoke", "cell1", "aud")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual((yield self.get(aud["access_token"]))[0], 401)
        # token revoke CELL --all (other lost auditor with the role: log in again)
        other = yield self.login("other", "other-pw")
        self.assertEqual((yield self.get(other["access_token"]))[0], 403)  # no role now
        result = yield self.run_cli("token", "revoke", "cell1", "--all")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual((yield self.get(other["access_token"]))[0], 401)
        # unknown account or cell: exit 2, nothing changed
        self.assertEqual((yield self.run_cli("token", "revoke", "cell1", "ghost")).returncode, 2)
        self.assertEqual((yield self.run_cli("token", "revoke", "nocell", "--all")).returncode,
                         2)
        self.assertEqual((yield self.run_cli("token", "revoke", "cell1")).returncode, 2)

    @defer.inlineCallbacks
    def test_revoke_owner(self):
        old = (yield self.run_cli("token", "--owner")).stdout.strip()
        self.assertEqual((yield self.get(old))[0], 200)
        result = yield self.run_cli("token", "revoke", "--owner")
        self.assertEqual(result.returncode, 0, result.stderr)
        code, body = yield self.get(old)
        self.assertEqual((code, json.loads(body)["code"]), (401, "PR401-AU-0006"))
        new = (yield self.run_cli("token", "--owner")).stdout.strip()
        self.assertEqual((yield self.get(new))[0], 200)
        self.assertEqual(open(os.path.join(self.data, ":owner-generation")).read().strip(), "1")
