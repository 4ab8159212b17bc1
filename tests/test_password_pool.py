"""Password checks run in a thread pool of their own (docs/security.md,
"Password checks"): however many slow checks are waiting, the store's
operations, which run in twisted's default pool, are served. The pool is
small, belongs to the server's ``Auth``, and stops with ``close()``.

The slow checks are a fake hasher that holds every verification until the
test lets it go: the test observes what completes while they are held, it
measures no time."""
import base64
import json
import threading

from argon2 import PasswordHasher
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from personium_dav.auth import Auth
from personium_dav.auth.logins import QUEUED
from personium_dav.config import Config

from .support.helpers import BOX, DavTestCase

HELD = 2 * QUEUED  # made-up Basic logins held in their password check: as many as 2 threads take


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()}


class HeldHasher:
    """Every verification waits until ``release()``; counts how many run at once."""

    def __init__(self):
        self.inner = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.running = self.most = self.entered = 0

    def hash(self, password):
        return self.inner.hash(password)

    def verify(self, hashed, password):
        with self.lock:
            self.entered += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            self.gate.wait(120)  # let go by the test (or its cleanup)
            return self.inner.verify(hashed, password)
        finally:
            with self.lock:
                self.running -= 1

    def release(self):
        self.gate.set()


@defer.inlineCallbacks
def until(condition, what):
    for _ in range(3000):  # reactor turns, at most 30 s
        if condition():
            return
        yield task.deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("never happened: " + what)


class StoreNotStarved(DavTestCase):
    # many logins from one address here: the per-address limit is not the subject
    config = Config(login_rate=1000, hash_threads=2)

    def setUp(self):
        DavTestCase.setUp(self)
        self.hasher = HeldHasher()
        self.server.auth.accounts.hasher = self.hasher
        # run before the pool is closed (cleanups run last first)
        self.addCleanup(self.hasher.release)

    @defer.inlineCallbacks
    def test_owner_served_while_logins_wait(self):
        done = []
        logins = []
        for i in range(HELD):
            d = self.request("GET", BOX, headers=basic("nobody%d" % i, "made-up"))
            d.addCallback(lambda answer: done.append(answer) or answer)
            logins.append(d)
        yield until(lambda: self.hasher.entered >= 1, "a password check started")
        # the store answers the owner while every login is still held
        answer = yield self.request("PROPFIND", BOX, headers={"Depth": "1"})
        self.assertEqual(answer.code, 207)
        answer = yield self.request("PUT", BOX + "f.txt", b"data",
                                    {"Content-Type": "text/plain"})
        self.assertEqual(answer.code, 201)
        self.assertEqual(done, [])
        # one more is not queued: 503 at once, a login the pool can take later
        answer = yield self.request("GET", BOX, headers=basic("one-more", "made-up"))
        self.assertEqual(answer.code, 503)
        self.assertEqual(answer.headers.getRawHeaders("Retry-After"), ["5"])
        self.assertEqual(json.loads(answer.body)["code"], "PR503-SV-0009")
        self.assertEqual(done, [])
        # the pool is the configured size, never more
        self.assertEqual(self.hasher.most, 2)
        self.hasher.release()
        answers = yield defer.gatherResults(logins)
        self.assertEqual([a.code for a in answers], [401] * HELD)
        self.assertEqual(self.hasher.entered, HELD)
        self.assertEqual(self.hasher.most, 2)


def poolThreads():
    return [t for t in threading.enumerate() if "personium-dav-passwords" in t.name]


class Lifecycle(unittest.TestCase):
    def test_started_when_needed_and_closed(self):
        root = self.mktemp()
        from personium_dav import createBox

        createBox(root, "cell1", "box1")
        auth = Auth(root, Config(hash_threads=1, durable=False))
        auth.accounts.hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        auth.accounts.add_account("cell1", "me", "pw")
        self.assertEqual(poolThreads(), [])  # nothing started yet
        other = Auth(root, Config(durable=False))  # a second server: a pool of its own
        self.assertIsNot(other.logins, auth.logins)

        from twisted.web.test.requesthelper import DummyRequest

        d = auth.logins.check(DummyRequest([b""]), "cell1", "me", "pw")

        def checked(login):
            self.assertEqual(login.name, "me")
            self.assertEqual(len(poolThreads()), 1)
            auth.close()
            other.close()
            self.assertEqual(poolThreads(), [])
            auth.close()  # twice is harmless

        return d.addCallback(checked)
