"""The envelope's parts on their own: accounts, tokens, privileges, ACL
parsing, request keys, overrides, CORS, the event log and the command line."""
import io
import os
import stat
import sys

from twisted.trial import unittest
from twisted.web.test.requesthelper import DummyRequest
from zope.interface.verify import verifyObject

from personium_dav.web import envelope
from personium_dav.web.state import IRequestState, RequestState
from personium_dav.logs import eventlog
from personium_dav.auth.accounts import AccountError, AccountStore, AuthFailure
from personium_dav.auth.checker import CredentialChecker, credentials
from personium_dav.auth.privileges import (ANONYMOUS, AclPolicy, Ace, Principal, Target,
                                           covers, load_acl, parse_acl, serialize_acl)
from personium_dav.auth.tokens import TokenExpired, TokenInvalid, TokenService, load_secret
from personium_dav.dav.errors import DavError
from personium_dav.interfaces import IPrivilegePolicy, ITokenChecker


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def cellRoot(testcase, *cells):
    root = os.path.abspath(testcase.mktemp())
    for cell in cells or ("cell1",):
        os.makedirs(os.path.join(root, cell))
    return root


class AccountStoreTests(unittest.TestCase):
    def setUp(self):
        self.clock = Clock()
        self.root = cellRoot(self)
        self.store = AccountStore(self.root, lockout_attempts=3, lockout_seconds=60,
                                  clock=self.clock)

    def test_hashedNeverClear(self):
        self.store.add_role("cell1", "editor")
        self.assertTrue(self.store.add_account("cell1", "me", "s3cret-pw", ["editor"]))
        path = os.path.join(self.root, "cell1", ":accounts.json")
        raw = open(path, "rb").read()
        self.assertNotIn(b"s3cret-pw", raw)
        self.assertIn(b"$argon2", raw)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(self.store.accounts("cell1"), {"me": ["editor"]})
        self.assertEqual(self.store.check_password("cell1", "me", "s3cret-pw"), ["editor"])

    def test_wrongAndUnknown(self):
        self.store.add_account("cell1", "me", "pw")
        self.assertEqual(self.assertRaises(
            AuthFailure, self.store.check_password, "cell1", "me", "nope").reason, "wrong")
        self.assertEqual(self.assertRaises(
            AuthFailure, self.store.check_password, "cell1", "who", "pw").reason, "unknown")

    def test_lockout(self):
        self.store.add_account("cell1", "me", "pw")
        for _ in range(2):
            self.assertRaises(AuthFailure, self.store.check_password, "cell1", "me", "x")
        failure = self.assertRaises(AuthFailure, self.store.check_password, "cell1", "me", "x")
        self.assertEqual(failure.reason, "locked")
        # the right password is refused while locked
        failure = self.assertRaises(AuthFailure, self.store.check_password, "cell1", "me", "pw")
        self.assertEqual(failure.reason, "locked")
        self.clock.now += 61
        self.assertEqual(self.store.check_password("cell1", "me", "pw"), [])

    def test_successResetsFailures(self):
        self.store.add_account("cell1", "me", "pw")
        for _ in range(2):
            self.assertRaises(AuthFailure, self.store.check_password, "cell1", "me", "x")
        self.store.check_password("cell1", "me", "pw")
        for _ in range(2):
            self.assertRaises(AuthFailure, self.store.check_password, "cell1", "me", "x")
        self.assertEqual(self.store.check_password("cell1", "me", "pw"), [])

    def test_unknownRole(self):
        self.assertRaises(AccountError, self.store.add_account, "cell1", "me", "pw", ["nope"])

    def test_badNames(self):
        self.assertRaises(AccountError, self.store.add_account, "cell1", "a b", "pw")
        self.assertRaises(AccountError, self.store.add_role, "cell1", "a:b")
        self.assertRaises(AccountError, self.store.add_account, "nocell", "me", "pw")
        self.assertRaises(AccountError, self.store.add_account, "cell1", "me", "")

    def test_removeRoleAndAccount(self):
        self.store.add_role("cell1", "r")
        self.store.add_account("cell1", "me", "pw", ["r"])
        self.store.remove_role("cell1", "r")
        self.assertEqual(self.store.accounts("cell1"), {"me": []})
        self.store.remove_account("cell1", "me")
        self.assertEqual(self.store.accounts("cell1"), {})
        self.assertRaises(AccountError, self.store.remove_account, "cell1", "me")

    def test_generations(self):
        """Raised by every password or role change, by revoke, and never
        given twice in a cell (docs/security.md, "Revocation")."""
        store = self.store
        store.add_role("cell1", "r")
        store.add_role("cell1", "s")
        store.add_account("cell1", "me", "pw", ["r"])
        store.add_account("cell1", "you", "pw", ["s"])
        gen = lambda name: store.get("cell1", name)["generation"]
        seen = [gen("me"), gen("you")]
        store.add_account("cell1", "me", "pw", ["r"])  # the same again: still new
        seen.append(gen("me"))
        you = gen("you")
        store.remove_role("cell1", "r")
        seen.append(gen("me"))
        self.assertEqual(gen("you"), you)  # did not hold it
        self.assertEqual(store.revoke("cell1", "you"), ["you"])
        seen.append(gen("you"))
        store.remove_account("cell1", "me")
        store.add_account("cell1", "me", "pw")
        seen.append(gen("me"))
        self.assertEqual(store.revoke("cell1"), ["me", "you"])
        seen += [gen("me"), gen("you")]
        self.assertEqual(seen, sorted(set(seen)))
        self.assertRaises(AccountError, store.revoke, "cell1", "ghost")
        self.assertRaises(AccountError, store.revoke, "nocell")

    def test_attemptsCountedAtTheirStart(self):
        """Attempts reserved and never settled (under way, or lost with a
        stopped process) spend the count: the next one runs no argon2 and
        locks the account, for the lockout time only."""
        self.store.add_account("cell1", "me", "pw")
        verified = []
        real = self.store.hasher.verify
        self.store.hasher = type("H", (), {"hash": self.store.hasher.hash,
                                           "verify": lambda s, h, p: verified.append(p)
                                           or real(h, p)})()
        for _ in range(3):
            self.store._reserve("cell1", "me")
        failure = self.assertRaises(AuthFailure, self.store.check_password, "cell1", "me", "pw")
        self.assertEqual((failure.reason, verified), ("locked", []))
        self.assertTrue(self.store.locked("cell1", "me"))
        self.clock.now += 61
        self.assertEqual(self.store.check_password("cell1", "me", "pw"), [])
        self.assertEqual(self.store.get("cell1", "me")["failures"], 0)

    def test_sharedBetweenStores(self):
        """Another process (another store object) sees the change."""
        other = AccountStore(self.root)
        self.store.add_account("cell1", "me", "pw")
        self.assertIn("me", other.accounts("cell1"))


class TokenTests(unittest.TestCase):
    def setUp(self):
        self.root = cellRoot(self)
        self.tokens = TokenService(load_secret(self.root))

    def test_secretFile(self):
        path = os.path.join(self.root, ":secret")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(load_secret(self.root), self.tokens.secret)

    def test_roundTrip(self):
        claims = self.tokens.verify(self.tokens.issue("cell1", "me", ["r"]))
        self.assertEqual((claims["cell"], claims["sub"], claims["roles"], claims["owner"]),
                         ("cell1", "me", ["r"], False))
        self.assertTrue(self.tokens.verify(self.tokens.owner_token())["owner"])

    def test_expired(self):
        token = self.tokens.issue("cell1", "me", ttl=-5)
        self.assertRaises(TokenExpired, self.tokens.verify, token)

    def test_tampered(self):
        token = self.tokens.issue("cell1", "me")
        head, body, sig = token.split(".")
        forged = TokenService(b"x" * 64).issue("cell1", "me", owner=True)
        self.assertRaises(TokenInvalid, self.tokens.verify, forged)
        self.assertRaises(TokenInvalid, self.tokens.verify, head + "." + body + "." + sig[::-1])
        self.assertRaises(TokenInvalid, self.tokens.verify, "garbage")
        import jwt
        none = jwt.encode({"sub": "x", "owner": True}, None, algorithm="none")
        self.assertRaises(TokenInvalid, self.tokens.verify, none)

    def test_kinds(self):
        refresh = self.tokens.issue("cell1", "me", kind="refresh")
        self.assertRaises(TokenInvalid, self.tokens.verify, refresh)
        self.assertEqual(self.tokens.verify(refresh, "refresh")["typ"], "refresh")

    def test_cookie(self):
        claims = self.tokens.verify(self.tokens.issue("cell1", "me"))
        value, peer = self.tokens.cookie(claims)
        self.assertEqual(self.tokens.verify_cookie(value, peer)["sub"], "me")
        self.assertRaises(TokenInvalid, self.tokens.verify_cookie, value, peer + "x")
        self.assertRaises(TokenInvalid, self.tokens.verify_cookie, value, "")


class PrivilegeTests(unittest.TestCase):
    def test_tree(self):
        self.assertTrue(covers({"all"}, "write-content"))
        self.assertTrue(covers({"write"}, "bind"))
        self.assertTrue(covers({"read"}, "read-properties"))
        self.assertFalse(covers({"read"}, "read-acl"))
        self.assertFalse(covers({"write"}, "write-acl"))
        self.assertFalse(covers({"bind"}, "write-content"))
        self.assertTrue(covers({"all"}, "exec"))

    def test_policy(self):
        policy = AclPolicy()
        verifyObject(IPrivilegePolicy, policy)
        acls = [[Ace("editor", frozenset({"write"}))], [Ace(None, frozenset({"read"}))]]
        target = Target("cell1", "box1", ["col"], acls)
        editor = Principal("cell1", "me", frozenset({"editor"}))
        self.assertTrue(policy.allowed(editor, "bind", target))
        self.assertTrue(policy.allowed(ANONYMOUS, "read", target))
        self.assertFalse(policy.allowed(ANONYMOUS, "bind", target))
        # roles of another cell do not count
        stranger = Principal("cell2", "me", frozenset({"editor"}))
        self.assertFalse(policy.allowed(stranger, "bind", target))
        self.assertTrue(policy.allowed(Principal(owner=True, subject="o"), "write-acl", target))


ROLE_BASE = "http://localhost/cell1/__role/__/"


def aclBody(*aces, base=ROLE_BASE):
    inner = "".join(aces)
    return ('<D:acl xmlns:D="DAV:" xmlns:p="urn:x-personium:xmlns" xml:base="%s">%s</D:acl>'
            % (base, inner)).encode()


def ace(principal, *privs):
    grants = "".join("<D:privilege>%s</D:privilege>" % p for p in privs)
    return "<D:ace><D:principal>%s</D:principal><D:grant>%s</D:grant></D:ace>" % (
        principal, grants)


class AclParseTests(unittest.TestCase):
    def parse(self, body, roles=("editor",)):
        return parse_acl(body, "http://localhost/cell1/box1/col/", "/cell1/", "box1",
                         lambda r: r in roles)

    def test_roundTrip(self):
        aces = self.parse(aclBody(ace("<D:href>editor</D:href>", "<D:write/>", "<p:exec/>"),
                                  ace("<D:all/>", "<D:read/>")))
        self.assertEqual(aces, [Ace("editor", frozenset({"write", "exec"})),
                                Ace(None, frozenset({"read"}))])
        self.assertEqual(load_acl(serialize_acl(aces)), aces)

    def test_hrefForms(self):
        self.assertEqual(self.parse(aclBody(ace("<D:href>../box1/editor</D:href>", "<D:read/>")))
                         [0].role, "editor")
        self.assertEqual(self.parse(aclBody(
            ace("<D:href>http://other:9/cell1/__role/__/editor</D:href>", "<D:read/>"),
            base="x/"))[0].role, "editor")

    def test_errors(self):
        def code(body):
            return self.assertRaises(DavError, self.parse, body).code

        self.assertEqual(code(b"<D:acl xmlns:D='DAV:'"), "PR400-DV-0002")
        self.assertEqual(code(None), "PR400-DV-0002")
        self.assertEqual(code(b"<D:prop xmlns:D='DAV:'/>"), "PR400-DV-0002")
        self.assertEqual(code(aclBody("<D:ace><D:grant/></D:ace>")), "PR400-DV-0002")
        self.assertEqual(code(aclBody(ace("<D:all/>", "<D:fly/>"))), "PR400-DV-0006")
        self.assertEqual(code(aclBody(ace("<D:href>ghost</D:href>", "<D:read/>"))),
                         "PR400-DV-0006")
        self.assertEqual(code(aclBody(ace("<D:href>editor</D:href>", "<D:read/>"),
                                      base="http://localhost/cell2/__role/__/")),
                         "PR400-DV-0006")
        self.assertEqual(code(aclBody(ace("<D:authenticated/>", "<D:read/>"))),
                         "PR400-DV-0006")


class FakeAccounts:
    def read(self, cell):
        return {"accounts": {"me": {"roles": []}}}

    def get(self, cell, name):
        return self.read(cell)["accounts"].get(name)


class EnvelopePartsTests(unittest.TestCase):
    def request(self, method=b"GET", headers=None):
        request = DummyRequest([b"cell1", b"box1"])
        request.method = method
        for name, value in (headers or {}).items():
            values = value if isinstance(value, list) else [value]
            request.requestHeaders.setRawHeaders(name, values)
        return request

    def test_requestKeys(self):
        for ok in ["", "a" * 128, "abc-DEF_123"]:
            self.assertEqual(envelope.request_key(
                self.request(headers={"X-Personium-RequestKey": ok})), ok)
        for bad in ["a" * 129, "abc#123", "a b", "ü"]:
            error = self.assertRaises(DavError, envelope.request_key, self.request(
                headers={"X-Personium-RequestKey": bad.encode("utf-8")}))
            self.assertEqual(error.code, "PR400-EV-0002")
        made = envelope.request_key(self.request())
        self.assertRegex(made, r"^[A-Za-z0-9_-]{4}_[A-Za-z0-9_-]{22}$")

    def test_overrides(self):
        request = self.request(b"POST", {"X-HTTP-Method-Override": "propfind",
                                         "X-Override": ["Depth: 0", "Depth:1", ": x",
                                                        "Destination : http://h/a:b"]})
        envelope.override_method(request)
        envelope.override_headers(request)
        self.assertEqual(request.method, b"PROPFIND")
        self.assertEqual(request.getHeader(b"depth"), b"1")
        self.assertEqual(request.getHeader(b"destination"), b"http://h/a:b")

    def test_methodOverrideOnlyOnPost(self):
        request = self.request(b"GET", {"X-HTTP-Method-Override": "DELETE"})
        envelope.override_method(request)
        self.assertEqual(request.method, b"GET")

    def test_cors(self):
        self.assertEqual(envelope.cors_headers(self.request()), {})
        request = self.request(b"OPTIONS", {"Origin": "http://app",
                                            "Access-Control-Request-Method": "PUT"})
        headers = envelope.cors_headers(request)
        self.assertTrue(envelope.is_preflight(request))
        self.assertEqual(headers[b"Access-Control-Allow-Origin"], b"http://app")
        self.assertEqual(headers[b"Access-Control-Allow-Credentials"], b"true")
        self.assertIn(b"X-Personium-RequestKey", headers[b"Access-Control-Expose-Headers"])
        self.assertIn(b"ETag", headers[b"Access-Control-Expose-Headers"])

    def test_credentials(self):
        self.assertIsNone(credentials(self.request()))
        self.assertEqual(credentials(self.request(headers={"Authorization": "Bearer t"})),
                         ("bearer", "t"))
        self.assertEqual(credentials(self.request(headers={"Authorization": "Basic bWU6cDpx"})),
                         ("basic", "me", "p:q"))
        for bad in ["Digest x", "Basic !!!", "Bearer", "Basic bWU="]:
            error = self.assertRaises(DavError, credentials,
                                      self.request(headers={"Authorization": bad}))
            self.assertEqual(error.code, "PR401-AU-0003")

    def test_checkerSeam(self):
        tokens = TokenService(b"k" * 64)
        checker = CredentialChecker(tokens, FakeAccounts())
        verifyObject(ITokenChecker, checker)
        request = self.request(headers={"Authorization": "Bearer " + tokens.issue("cell1", "me")})
        self.assertEqual(checker.authenticate(request, "cell1").subject, "me")
        gone = self.request(headers={"Authorization": "Bearer " + tokens.issue("cell1", "ghost")})
        self.assertEqual(self.assertRaises(DavError, checker.authenticate, gone, "cell1").code,
                         "PR401-AU-0006")

    def test_accessLogMasksPeer(self):
        request = self.request()
        request.uri = b"/cell1/box1/a?x=1&p_cookie_peer=SECRETPEER"
        request.clientproto = b"HTTP/1.1"
        request.code, request.sentLength = 200, 0
        request.getComponent = {IRequestState: RequestState("KEY_1")}.get
        line = envelope.access_log_formatter("[ts]", request)
        self.assertNotIn("SECRETPEER", line)
        self.assertTrue(line.endswith('"KEY_1"'), line)

    def test_accessLogIsTwistedsCombinedLine(self):
        """The formatter writes what twisted.web's combinedLogFormatter
        writes (plus the key), for plain fields and for ones to escape."""
        from twisted.internet.address import IPv4Address
        from twisted.web.http import combinedLogFormatter
        fields = [b"/a/b?x=1", b'/q"uote\\back', b"/\xff\x00\x7f\x1b", b"/caf\xc3\xa9", b""]
        for uri in fields:
            for other in [None, b"", b'http://x/"y', b"\xfe\n"]:
                request = self.request(method=b'PROP"X' if other == b"" else b"GET")
                request.uri, request.clientproto = uri, b"HTTP/1.1"
                request.code, request.sentLength = 207, 12
                request.client = IPv4Address("TCP", "127.0.0.1", 1)
                request.getComponent = {IRequestState: RequestState("K")}.get
                if other is not None:
                    request.requestHeaders.setRawHeaders(b"referer", [b"first", other])
                    request.requestHeaders.setRawHeaders(b"user-agent", [other])
                self.assertEqual(envelope.access_log_formatter("[ts]", request),
                                 combinedLogFormatter("[ts]", request) + ' "K"')


class EventLogTests(unittest.TestCase):
    def test_line(self):
        line = eventlog.format_line(0.5, 201, "KEY", "http://h/cell1/#me", "davfile.create",
                                    'personium-localcell:/box1/a"b\nc')
        self.assertEqual(line, '1970-01-01T00:00:00.500Z,[INFO ],"KEY","false","",'
                               '"http://h/cell1/#me","davfile.create",'
                               '"personium-localcell:/box1/a""b c","201"')
        self.assertIn("[WARN ]", eventlog.format_line(0, 404, "", "", "t", "o"))
        self.assertIn("[ERROR]", eventlog.format_line(0, 500, "", "", "t", "o"))

    def test_types(self):
        self.assertEqual(eventlog.event_type("file", "PUT", 201), "davfile.create")
        self.assertEqual(eventlog.event_type("file", "PUT", 204), "davfile.update")
        self.assertEqual(eventlog.event_type("service", "PROPPATCH", 207), "servicecol.proppatch")

    def test_rotation(self):
        root = cellRoot(self)
        events = eventlog.EventLog(root, rotate_length=200, max_rotated=3)
        self.addCleanup(events.close)
        for i in range(20):
            events.write("cell1", eventlog.format_line(0, 200, "K%d" % i, "", "t", "o"))
        names = sorted(os.listdir(os.path.join(root, "cell1", ":log")))
        self.assertIn("events.log", names)
        self.assertIn("events.log.1", names)
        self.assertNotIn("events.log.4", names)
        events.write("nocell", "x")  # no such cell: nothing written
        self.assertFalse(os.path.exists(os.path.join(root, "nocell")))


class FakeStdin(io.StringIO):
    def isatty(self):
        return False


class CommandLineTests(unittest.TestCase):
    def setUp(self):
        from personium_dav import __main__ as main

        self.main = main.main
        self.root = cellRoot(self)
        self.out, self.err = io.StringIO(), io.StringIO()
        self.patch(sys, "stdout", self.out)
        self.patch(sys, "stderr", self.err)

    def run_cli(self, *args, stdin=""):
        self.patch(sys, "stdin", FakeStdin(stdin))
        return self.main(list(args) + ["--data", self.root])

    def test_accounts(self):
        self.assertEqual(self.run_cli("role", "add", "cell1", "editor"), 0)
        self.assertEqual(self.run_cli("account", "add", "cell1", "me", "--role", "editor",
                                      stdin="pass word\n"), 0)
        self.assertEqual(self.run_cli("account", "list", "cell1"), 0)
        self.assertIn("me\teditor", self.out.getvalue())
        store = AccountStore(self.root)
        self.assertEqual(store.check_password("cell1", "me", "pass word"), ["editor"])
        self.assertEqual(self.run_cli("account", "add", "cell1", "you", "--role", "ghost",
                                      stdin="pw\n"), 2)
        self.assertEqual(self.run_cli("account", "remove", "cell1", "me"), 0)
        self.assertEqual(self.run_cli("role", "remove", "cell1", "editor"), 0)
        self.assertEqual(store.accounts("cell1"), {})

    def test_noPasswordOption(self):
        self.patch(sys, "stdin", FakeStdin(""))
        self.assertRaises(SystemExit, self.main, ["account", "add", "cell1", "me",
                                                  "--password", "x", "--data", self.root])

    def test_tokens(self):
        self.assertEqual(self.run_cli("token", "--owner"), 0)
        tokens = TokenService(load_secret(self.root))
        owner = tokens.verify(self.out.getvalue().strip())
        self.assertTrue(owner["owner"])
        self.run_cli("account", "add", "cell1", "me", stdin="pw\n")
        self.out.truncate(0)
        self.out.seek(0)
        self.assertEqual(self.run_cli("token", "--cell", "cell1", "--account", "me",
                                      "--ttl", "60"), 0)
        claims = tokens.verify(self.out.getvalue().strip().splitlines()[-1])
        self.assertEqual((claims["cell"], claims["sub"], claims["exp"] - claims["iat"]),
                         ("cell1", "me", 60))
        self.assertEqual(self.run_cli("token", "--cell", "cell1", "--account", "ghost"), 2)
        self.assertEqual(self.run_cli("token"), 2)
