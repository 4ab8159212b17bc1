"""In-memory HTTP against the real resources: treq's StubTreq, pumped.

The server answers from the thread pool, so the stub's in-memory connection
is flushed on a short timer until the answer and its body have arrived.
"""
import os

from lxml import etree
from treq.testing import StubTreq
from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from personium_dav.store import provision
from personium_dav.config import Config
from personium_dav.web.site import makeResource
from twisted.web.resource import Resource

BASE = "http://localhost"
REQUEST_TIMEOUT = 60  # seconds
BOX = "/cell1/box1/"
NS = {"D": "DAV:", "p": "urn:x-personium:xmlns"}


def grant(server, role, privileges=("all",), names=()):
    """An ACL granting ``role`` the privileges on ``names`` of cell1/box1,
    set through the box API as the owner."""
    from personium_dav.auth.privileges import Ace, Principal, serialize_acl
    from personium_dav.store.box import Caller

    value = serialize_acl([Ace(role, frozenset(privileges))])
    server.store.box("cell1", "box1").set_acl(Caller(Principal(owner=True)), list(names), value)


def options_on_one_connection(site, transport, times):
    """``times`` OPTIONS of the box, unauthenticated, on one kept-alive
    connection of ``site``'s own channel over ``transport`` (in memory:
    no socket, no reactor). -> the channel, still connected."""
    channel = site.buildProtocol(("127.0.0.1", 40000))
    channel.makeConnection(transport)
    for _ in range(times):
        channel.dataReceived(b"OPTIONS /cell1/box1/ HTTP/1.1\r\nHost: x\r\n\r\n")
    return channel


class Answer:
    """A response with its body read: status, headers, body, and helpers."""

    def __init__(self, response, body):
        self.code = response.code
        self.headers = response.headers
        self.body = body
        # twisted's client keeps Content-Length out of the headers (but for HEAD)
        self.length = response.length if isinstance(response.length, int) else None

    def header(self, name):
        values = self.headers.getRawHeaders(name.encode("ascii"))
        return values[0].decode("latin-1") if values else None

    def json(self):
        import json

        return json.loads(self.body)

    def xml(self):
        return etree.fromstring(self.body)


class DavTestCase(unittest.TestCase):
    """A fresh data root with cell1/box1, served in memory."""

    config = Config()
    prefix = None  # mount the resource below this path segment, when set

    def setUp(self):
        self.data = os.path.abspath(self.mktemp())
        provision.create_box(self.data, "cell1", "box1")
        resource = makeResource(self.data, self.config)
        self.server = resource.server
        self.addCleanup(self.server.close)
        # every request authenticates as the data root's owner unless it is
        # sent with anonymous=True or its own Authorization header
        self.ownerToken = self.server.auth.tokens.owner_token(ttl=24 * 3600)
        if self.prefix:
            root = Resource()
            root.putChild(self.prefix.encode(), resource)
            resource = root
        self.stub = StubTreq(resource)

    def url(self, path):
        if path.startswith("http"):
            return path
        return BASE + ("/" + self.prefix if self.prefix else "") + path

    @defer.inlineCallbacks
    def request(self, method, path, body=b"", headers=None, anonymous=False):
        """Send one request; an ``Answer`` once its body is in. It carries the
        owner's Bearer token unless ``anonymous`` or ``headers`` has an
        Authorization of its own."""
        pump = task.LoopingCall(self.stub.flush)
        # not now: a request sent from a callback of another one's answer runs
        # inside StubTreq.flush, and a flush nested in a flush loses the
        # connections that the outer one has not reached yet
        pump.start(0.002, now=False)
        try:
            hdrs = {k: [v] if isinstance(v, (str, bytes)) else v for k, v in (headers or {}).items()}
            if not anonymous and not any(str(k).lower() in ("authorization", "b'authorization'")
                                         for k in hdrs):
                hdrs["Authorization"] = ["Bearer " + self.ownerToken]
            # a request that never completes fails the test instead of hanging it
            response = yield self.stub.request(method, self.url(path), data=body or None,
                                               headers=hdrs).addTimeout(REQUEST_TIMEOUT, reactor)
            content = yield response.content().addTimeout(REQUEST_TIMEOUT, reactor)
        finally:
            pump.stop()
        return Answer(response, content)

    def assertError(self, answer, status, code, message=None):
        """A Personium JSON error; ``message`` (when given) is its exact text."""
        self.assertEqual(answer.code, status, answer.body)
        self.assertEqual(answer.header("content-type"), "application/json")
        self.assertEqual(answer.json()["code"], code)
        if message is not None:
            self.assertEqual(answer.json()["message"], {"lang": "en", "value": message})
