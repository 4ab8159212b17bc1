"""Limits on password guessing (docs/security.md, "Lockout" and "Failed
logins per address"): an attempt counts from its start, so attempts sent
together never try more passwords than the lockout allows; and failed
logins are limited per client address (the TCP peer, or what a trusted
proxy wrote in X-Forwarded-For), refused without running argon2.

In memory (``DavTestCase``); the options through the real plugin."""
import base64
import json
import os
import threading
import time
from urllib.parse import urlencode

from argon2 import PasswordHasher
from twisted.internet import defer, reactor, task, threads
from twisted.python import usage
from twisted.trial import unittest
from twisted.web.test.requesthelper import DummyRequest
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress

from personium_dav.ops import tap
from personium_dav.auth.logins import RateLimiter, client_address, parse_networks
from personium_dav.config import Config

from .support import realserver
from .support.clientauth import fetch
from .support.helpers import BOX, DavTestCase, grant

TOKEN_URL = "/cell1/__token"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()}


class CountingHasher:
    """argon2 at its smallest cost, counting the verifications it runs, each
    held for ``delay`` seconds (as a real argon2 check takes time: attempts
    sent together are then under way together)."""

    def __init__(self, delay=0.0):
        self.inner = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        self.delay = delay
        self.verified = 0
        self._lock = threading.Lock()

    def hash(self, password):
        return self.inner.hash(password)

    def verify(self, hashed, password):
        with self._lock:
            self.verified += 1
        time.sleep(self.delay)
        return self.inner.verify(hashed, password)


def setUpAccount(testcase):
    server = testcase.server
    testcase.hasher = server.auth.accounts.hasher = CountingHasher()
    accounts = server.auth.accounts
    accounts.add_role("cell1", "editor")
    accounts.add_account("cell1", "me", "right-pw", ["editor"])
    grant(server, "editor")


@defer.inlineCallbacks
def until(condition, what):
    """Wait (reactor turns, at most 30 s) until ``condition()`` holds."""
    for _ in range(3000):
        if condition():
            return
        yield task.deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("never happened: " + what)


class ConcurrentLockout(DavTestCase):
    """The issue's case: on a fresh account (lockout after 5), eight wrong
    passwords and then the right one, all under way together."""

    config = Config(lockout_attempts=5, lockout_seconds=3600)

    def setUp(self):
        DavTestCase.setUp(self)
        setUpAccount(self)
        self.hasher.delay = 0.1
        # the requests the server has taken (and so started checking)
        self.seen = 0
        checker = self.server.envelope.checker
        authenticate = checker.authenticate

        def counted(request, cell):
            self.seen += 1
            return authenticate(request, cell)

        checker.authenticate = counted
        from personium_dav.web import token_endpoint as endpoint

        issue = endpoint.issue

        def countedIssue(*args):
            self.seen += 1
            return issue(*args)

        self.patch(endpoint, "issue", countedIssue)

    @defer.inlineCallbacks
    def sendTogether(self, wrong, right):
        """``wrong`` requests; once the server has taken them all (their
        checks are under way), ``right``; every answer."""
        pending = [wrong() for _ in range(8)]
        yield until(lambda: self.seen >= 8, "the eight wrong passwords arrived")
        pending.append(right())
        answers = yield defer.gatherResults(pending)
        return answers

    @defer.inlineCallbacks
    def test_basic(self):
        answers = yield self.sendTogether(
            lambda: self.request("GET", BOX, headers=basic("me", "wrong-pw")),
            lambda: self.request("GET", BOX, headers=basic("me", "right-pw")))
        for answer in answers:
            self.assertError(answer, 401, "PR401-AU-0001")
        self.assertLessEqual(self.hasher.verified, 5)
        # locked: the right password stays refused, and no argon2 runs for it
        verified = self.hasher.verified
        self.assertError((yield self.request("GET", BOX, headers=basic("me", "right-pw"))),
                         401, "PR401-AU-0001")
        self.assertEqual(self.hasher.verified, verified)

    @defer.inlineCallbacks
    def test_token_endpoint(self):
        def grant(password):
            return lambda: self.request("POST", TOKEN_URL, urlencode(
                {"grant_type": "password", "username": "me", "password": password}).encode(),
                FORM, anonymous=True)

        answers = yield self.sendTogether(grant("wrong-pw"), grant("right-pw"))
        self.assertEqual([(a.code, a.json()["error"]) for a in answers],
                         [(400, "invalid_grant")] * 9)
        self.assertLessEqual(self.hasher.verified, 5)

    @defer.inlineCallbacks
    def test_right_password_within_the_budget(self):
        """A right password that starts while attempts remain logs in, and
        resets the count."""
        self.hasher.delay = 0
        for _ in range(4):
            self.assertEqual((yield self.request("GET", BOX, headers=basic(
                "me", "wrong-pw"))).code, 401)
        self.assertEqual((yield self.request("GET", BOX, headers=basic(
            "me", "right-pw"))).code, 200)
        self.assertEqual(self.server.auth.accounts.get("cell1", "me")["failures"], 0)


class RateLimit(DavTestCase):
    """Failed logins per address: the in-memory client is 127.0.0.1."""

    config = Config(login_rate=3, lockout_attempts=100)

    def setUp(self):
        DavTestCase.setUp(self)
        setUpAccount(self)

    @defer.inlineCallbacks
    def test_over_the_limit_without_argon2(self):
        for user in ("ghost1", "ghost2", "me"):  # unknown accounts count too
            self.assertError((yield self.request("GET", BOX, headers=basic(user, "bad"))),
                             401, "PR401-AU-0001")
        verified = self.hasher.verified
        # the right password, from this address, now fails at once
        self.assertError((yield self.request("GET", BOX, headers=basic("me", "right-pw"))),
                         401, "PR401-AU-0001")
        answer = yield self.request("POST", TOKEN_URL, urlencode(
            {"grant_type": "password", "username": "me", "password": "right-pw"}).encode(),
            FORM, anonymous=True)
        self.assertEqual((answer.code, answer.json()["error"]), (400, "invalid_grant"))
        self.assertEqual(self.hasher.verified, verified)
        # tokens are not passwords: the owner's still works
        self.assertEqual((yield self.request("PROPFIND", BOX, headers={"Depth": "0"})).code,
                         207)
        # a minute later the address may try again
        limiter = self.server.auth.logins.limiter
        now = time.monotonic()
        limiter.clock = lambda: now + 61
        self.assertEqual((yield self.request("GET", BOX, headers=basic("me", "right-pw"))).code,
                         200)

    @defer.inlineCallbacks
    def test_successes_do_not_count(self):
        for _ in range(6):
            self.assertEqual((yield self.request("GET", BOX, headers=basic(
                "me", "right-pw"))).code, 200)
        self.server.auth.accounts._verified.clear()  # argon2 again for each
        for _ in range(6):
            self.assertEqual((yield self.request("GET", BOX, headers=basic(
                "me", "right-pw"))).code, 200)

    @defer.inlineCallbacks
    def test_together(self):
        """Ten failed logins under way together: three run argon2."""
        self.hasher.delay = 0.05
        answers = yield defer.gatherResults(
            [self.request("GET", BOX, headers=basic("me", "bad%d" % i)) for i in range(10)])
        self.assertEqual([a.code for a in answers], [401] * 10)
        self.assertEqual(self.hasher.verified, 3)


PROXY = "127.0.0.1"  # the in-memory client's address, configured as a proxy


class TrustedProxy(DavTestCase):
    config = Config(login_rate=2, lockout_attempts=100, trusted_proxies=(PROXY, "10.0.0.0/8"))

    def setUp(self):
        DavTestCase.setUp(self)
        setUpAccount(self)

    def attempt(self, password, forwarded=None, override=None):
        headers = basic("me", password)
        if forwarded is not None:
            headers["X-Forwarded-For"] = forwarded
        if override is not None:
            headers["X-Override"] = "X-Forwarded-For: " + override
        return self.request("GET", BOX, headers=headers)

    @defer.inlineCallbacks
    def test_per_forwarded_address(self):
        for _ in range(2):
            self.assertEqual((yield self.attempt("bad", "203.0.113.5")).code, 401)
        # that client is over the limit, whatever it puts left of its address
        # or whichever trusted proxies it came through
        for forwarded in ("203.0.113.5", "198.51.100.7, 203.0.113.5",
                          "203.0.113.5, 10.1.2.3", "203.0.113.5:4711"):
            self.assertEqual((yield self.attempt("right-pw", forwarded)).code, 401, forwarded)
        # another client behind the same proxy is not
        self.assertEqual((yield self.attempt("right-pw", "203.0.113.6")).code, 200)
        self.assertEqual((yield self.attempt("right-pw", "203.0.113.5, 203.0.113.6")).code, 200)

    @defer.inlineCallbacks
    def test_overriding_the_header_does_not_help(self):
        """X-Override replaces X-Forwarded-For after the proxy wrote it: such
        requests count as the proxy's own address."""
        for i in range(2):
            self.assertEqual((yield self.attempt("bad", "203.0.113.5",
                                                 override="192.0.2.%d" % i)).code, 401)
        self.assertEqual((yield self.attempt("right-pw", override="192.0.2.9")).code, 401)
        self.assertEqual((yield self.attempt("right-pw")).code, 401)  # the proxy's own
        self.assertEqual((yield self.attempt("right-pw", "203.0.113.5")).code, 200)


class UntrustedForwarding(DavTestCase):
    config = Config(login_rate=2, lockout_attempts=100)

    def setUp(self):
        DavTestCase.setUp(self)
        setUpAccount(self)

    @defer.inlineCallbacks
    def test_header_ignored(self):
        """Without --trusted-proxy, X-Forwarded-For is anyone's to write:
        the TCP peer is counted."""
        for i in range(2):
            headers = dict(basic("me", "bad"), **{"X-Forwarded-For": "192.0.2.%d" % i})
            self.assertEqual((yield self.request("GET", BOX, headers=headers)).code, 401)
        headers = dict(basic("me", "right-pw"), **{"X-Forwarded-For": "192.0.2.99"})
        self.assertEqual((yield self.request("GET", BOX, headers=headers)).code, 401)


class Units(unittest.TestCase):
    def request(self, peer, forwarded=()):
        request = DummyRequest([b""])
        request.client = peer
        if forwarded:
            request.requestHeaders.setRawHeaders(b"x-forwarded-for", list(forwarded))
        return request

    def test_client_address(self):
        trusted = parse_networks(["192.0.2.1", "10.0.0.0/8", "::1"])
        peer = IPv4Address("TCP", "192.0.2.1", 1)
        self.assertEqual(client_address(self.request(peer, [b"203.0.113.1"]), ()), "192.0.2.1")
        self.assertEqual(client_address(self.request(peer, [b"203.0.113.1"]), trusted),
                         "203.0.113.1")
        self.assertEqual(client_address(self.request(peer, [b"1.1.1.1, 203.0.113.1",
                                                            b"10.0.0.9"]), trusted),
                         "203.0.113.1")
        self.assertEqual(client_address(self.request(peer, [b"10.0.0.9"]), trusted), "192.0.2.1")
        self.assertEqual(client_address(self.request(peer), trusted), "192.0.2.1")
        self.assertEqual(client_address(self.request(peer, [b"[2001:db8::1]:80"]), trusted),
                         "2001:db8::1")
        self.assertEqual(client_address(self.request(
            IPv6Address("TCP", "::ffff:198.51.100.2", 1)), trusted), "198.51.100.2")
        self.assertEqual(client_address(self.request(
            IPv6Address("TCP", "::1", 1), [b"unknown"]), trusted), "unknown")
        self.assertEqual(client_address(self.request(UNIXAddress(b"/run/s")), trusted), "unix")

    def test_limiter(self):
        now = [0.0]
        limiter = RateLimiter(2, clock=lambda: now[0])
        a = limiter.reserve("a")
        self.assertIsNotNone(limiter.reserve("a"))
        self.assertIsNone(limiter.reserve("a"))
        self.assertIsNotNone(limiter.reserve("b"))
        limiter.release("a", a)  # a success does not count
        self.assertIsNotNone(limiter.reserve("a"))
        self.assertIsNone(limiter.reserve("a"))
        now[0] = 60.5
        self.assertIsNotNone(limiter.reserve("a"))

    def test_options(self):
        options = tap.Options()
        options.parseOptions(["--login-rate", "7", "--trusted-proxy", "127.0.0.1, 10.0.0.0/8",
                              "--hash-threads", "3"])
        config = options.config()
        self.assertEqual((config.login_rate, config.trusted_proxies, config.hash_threads),
                         (7, ("127.0.0.1", "10.0.0.0/8"), 3))
        self.assertEqual(tap.Options().config().trusted_proxies, ())
        for bad in (["--trusted-proxy", "proxy.example"], ["--login-rate", "0"],
                    ["--hash-threads", "0"]):
            self.assertRaises(usage.UsageError, tap.Options().parseOptions, bad)


class RealPlugin(unittest.TestCase):
    """``--login-rate`` and ``--trusted-proxy`` on the command line of the
    real plugin, over TCP from 127.0.0.1."""

    @defer.inlineCallbacks
    def test_options(self):
        data = os.path.abspath(self.mktemp())
        user, password = yield threads.deferToThread(realserver.provisionUser, data)
        server = yield realserver.RealServer(
            self, data, "--login-rate", "2", "--trusted-proxy", "127.0.0.1").start()

        def get(pw, forwarded):
            headers = dict(basic(user, pw), **{"X-Forwarded-For": forwarded})
            return fetch(server, None, "GET", BOX, None, headers)

        for _ in range(2):
            self.assertEqual((yield get("bad", "203.0.113.5"))[0], 401)
        code, _, body = yield get(password, "203.0.113.5")
        self.assertEqual((code, json.loads(body)["code"]), (401, "PR401-AU-0001"))
        self.assertEqual((yield get(password, "203.0.113.6"))[0], 200)
