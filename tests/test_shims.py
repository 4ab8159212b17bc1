"""The shims of web/shims.py against the installed Twisted: each fails if
twisted.web changes what it relies on."""
import os

from twisted.internet.testing import StringTransport
from twisted.trial import unittest
from twisted.web.http import HTTPChannel, Request

from personium_dav.web import shims
from .support.helpers import options_on_one_connection


class Probe(Request):
    """Records what the shims see when the header block is complete."""

    seen = []
    drop_expect = False

    def gotLength(self, length):
        channel = self.channel
        Probe.seen.append((shims.pending_method(channel), shims.pending_path(channel),
                           shims.pending_version(channel)))
        if Probe.drop_expect:
            self.requestHeaders.removeHeader(b"expect")
        super().gotLength(length)

    def process(self):
        self.setResponseCode(204)
        self.finish()


def channel():
    ch = HTTPChannel()
    ch.requestFactory = Probe
    transport = StringTransport()
    ch.makeConnection(transport)
    return ch, transport


class Shims(unittest.TestCase):
    def setUp(self):
        Probe.seen = []
        Probe.drop_expect = False

    def test_the_request_line_before_the_body(self):
        ch, _ = channel()
        ch.dataReceived(b"PROPPATCH /a/b%20c?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n")
        self.assertEqual(Probe.seen, [(b"PROPPATCH", b"/a/b%20c?x=1", b"HTTP/1.1")])

    def test_split_path_as_twisted(self):
        from twisted.web.resource import Resource
        from twisted.web.server import Request as SiteRequest, Site

        seen = []

        class Leaf(Resource):
            isLeaf = True

            def render(self, request):
                seen.append((request.prepath, request.postpath))
                return b""

        from twisted.internet.error import ConnectionDone
        from twisted.python.failure import Failure

        site = Site(Leaf(), timeout=None)
        ch = site.buildProtocol(None)
        ch.requestFactory = SiteRequest
        ch.makeConnection(StringTransport())
        ch.dataReceived(b"GET /a/b%20c/ HTTP/1.1\r\nHost: h\r\n\r\n")
        ch.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([shims.split_path(b"/a/b%20c/")], seen)

    def test_twisted_answers_continue_unless_expect_is_gone(self):
        head = (b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
                b"Expect: 100-continue\r\n\r\n")
        ch, transport = channel()
        ch.dataReceived(head)
        self.assertEqual(transport.value(), b"HTTP/1.1 100 Continue\r\n\r\n")
        Probe.drop_expect = True
        ch, transport = channel()
        ch.dataReceived(head)
        self.assertEqual(transport.value(), b"")  # the server decides, then sends it
        shims.send_continue(ch)
        self.assertEqual(transport.value(), b"HTTP/1.1 100 Continue\r\n\r\n")

    def test_no_continue_for_http_1_0(self):
        ch, transport = channel()
        Probe.drop_expect = True
        ch.dataReceived(b"PUT /x HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        shims.send_continue(ch)
        self.assertEqual(transport.value(), b"")

    def test_response_head(self):
        head = shims.response_head(401, b"Unauthorized", {
            b"WWW-Authenticate": [b"Bearer x", b"Basic x"], b"Content-Length": b"0"})
        self.assertEqual(head, b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer x\r\n"
                               b"WWW-Authenticate: Basic x\r\nContent-Length: 0\r\n\r\n")


class CountingTransport(StringTransport):
    asked = 0

    def getHost(self):
        self.asked += 1
        return super().getHost()


class ChannelAddress(unittest.TestCase):
    def test_asked_once_per_connection(self):
        """twisted.web asks the channel for its own address at every request
        (a getsockname each): the server's channel asks the socket once."""
        from twisted.internet.error import ConnectionDone
        from twisted.python.failure import Failure

        from personium_dav.store import provision
        from personium_dav.web.site import makeSite

        data = os.path.abspath(self.mktemp())
        provision.create_box(data, "cell1", "box1")
        transport = CountingTransport()
        channel = options_on_one_connection(makeSite(data), transport, 3)
        self.assertEqual(transport.value().count(b"HTTP/1.1 401 "), 3)
        self.assertEqual(transport.asked, 1)
        self.assertEqual(channel.getHost(), transport.getHost())
        channel.connectionLost(Failure(ConnectionDone()))
