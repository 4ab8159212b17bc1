"""The shims of web/shims.py against the installed Twisted: each fails if
twisted.web changes what it relies on."""
import os

from twisted.internet.testing import StringTransport
from twisted.trial import unittest
from twisted.web.http import HTTPChannel, Request

from personium_dav.web import shims


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
        site = makeSite(data)
        channel = site.buildProtocol(("127.0.0.1", 40000))
        transport = CountingTransport()
        channel.makeConnection(transport)
        for _ in range(3):
            channel.dataReceived(b"OPTIONS /cell1/box1/ HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(transport.value().count(b"HTTP/1.1 401 "), 3)
        self.assertEqual(transport.asked, 1)
        self.assertEqual(channel.getHost(), transport.getHost())
        channel.connectionLost(Failure(ConnectionDone()))


class WriteAtOnce(unittest.TestCase):
    """An answer goes to the socket when it is written, not at the reactor's
    next turn; a TLS connection keeps its transport's own writes."""

    def site(self):
        from personium_dav.store import provision
        from personium_dav.web.site import makeSite

        data = os.path.abspath(self.mktemp())
        provision.create_box(data, "cell1", "box1")
        return makeSite(data)

    def test_the_answer_is_sent_before_the_request_is_logged(self):
        import socket

        from twisted.internet import defer, reactor

        site = self.site()
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = socket.create_connection(("127.0.0.1", port.getHost().port))
        self.addCleanup(client.close)
        seen = defer.Deferred()
        log = site.log

        def logged(request):  # in Request.finish, after the answer's last write
            try:
                seen.callback(client.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT))
            except BlockingIOError:
                seen.callback(b"")
            return log(request)

        self.patch(site, "log", logged)
        client.sendall(b"OPTIONS /cell1/box1/ HTTP/1.1\r\nHost: x\r\n\r\n")
        seen.addCallback(lambda data: self.assertTrue(data.startswith(b"HTTP/1.1 401 "), data))
        return seen

    def test_tls_connection_answers_through_its_transport(self):
        import socket
        import ssl as stdlib_ssl

        from twisted.internet import reactor, ssl, threads

        site = self.site()
        cert = ssl.KeyPair.generate().selfSignedCert(1, commonName="127.0.0.1")
        port = reactor.listenSSL(0, site, cert.options(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)

        def fetch():
            context = stdlib_ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = stdlib_ssl.CERT_NONE
            with socket.create_connection(("127.0.0.1", port.getHost().port), timeout=10) as raw:
                with context.wrap_socket(raw) as s:
                    s.sendall(b"OPTIONS /cell1/box1/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    chunks = []
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            return b"".join(chunks)
                        chunks.append(chunk)

        d = threads.deferToThread(fetch)

        def check(answer):
            head, _, body = answer.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 401 "), answer[:200])
            length = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
            self.assertEqual(len(body), int(length[0].split(b":")[1]))

        return d.addCallback(check)
