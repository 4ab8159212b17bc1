"""Shared pieces of the hardening tests: an in-process server on a real
loopback port (so twisted.web's HTTP parser and ``request.DavRequest`` run),
blocking raw-socket clients run in a thread, and real-HTTP treq helpers."""
from dataclasses import replace
import os
import select
import socket
import time

from twisted.internet import defer, reactor, task, threads

from personium_dav.store import provision
from personium_dav.config import Config
from personium_dav.web.site import makeSite
from personium_dav.store import layout

BOX = "/cell1/box1/"


def sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


class LoopbackServer:
    """makeSite on 127.0.0.1:random in this process; ``stop`` waits until
    every connection it accepted is gone (no dirty reactor)."""

    def __init__(self, testcase, config=None, timeout=60, data=None):
        self.data = data or os.path.abspath(testcase.mktemp())
        provision.create_box(self.data, "cell1", "box1")
        self.site = makeSite(self.data, replace(config or Config(), idle_timeout=timeout))
        # the owner's credentials for raw requests (docs/behaviour.md §9: nothing is open)
        token = self.site.resource.server.auth.tokens.owner_token(ttl=24 * 3600)
        self.authHeader = b"Authorization: Bearer %s\r\n" % token.encode("ascii")
        self.authHeaders = {"Authorization": "Bearer " + token}
        self.open = set()
        build = self.site.buildProtocol

        def buildProtocol(addr):
            proto = build(addr)
            lost = proto.connectionLost

            def connectionLost(reason):
                self.open.discard(proto)
                return lost(reason)

            proto.connectionLost = connectionLost
            self.open.add(proto)
            return proto

        self.site.buildProtocol = buildProtocol
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.portNumber = self.port.getHost().port
        self.url = "http://127.0.0.1:%d" % self.portNumber
        testcase.addCleanup(self.stop)

    @defer.inlineCallbacks
    def stop(self):
        yield self.port.stopListening()
        deadline = time.monotonic() + 5
        while self.open and time.monotonic() < deadline:
            yield sleep(0.02)
        for proto in list(self.open):
            proto.transport.abortConnection()
        while self.open:
            yield sleep(0.01)

    def tmp_files(self):
        return os.listdir(os.path.join(self.data, layout.TMP))


def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return s


def read_response(sock, timeout=10):
    """Everything the server sends until it closes (or timeout)."""
    sock.settimeout(timeout)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not data:
            break
        out += data
    return out


def read_one_response(sock, timeout=10):
    """Head and body of one response with Content-Length (keeps the connection)."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return buf
        buf += data
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        data = sock.recv(65536)
        if not data:
            break
        body += data
    return head + b"\r\n\r\n" + body


def status_of(raw):
    line = raw.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def stream_chunked(port, method, path, total, chunk=16384, content_type=b"application/xml",
                   auth=b""):
    """Send a chunked body of ``total`` bytes, stopping as soon as an answer
    arrives; (bytes sent, raw answer). ``auth``: header lines to add."""
    s = connect(port)
    try:
        s.sendall(b"%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: %s\r\n"
                  b"Transfer-Encoding: chunked\r\nDepth: 0\r\n%s\r\n"
                  % (method, path, content_type, auth))
        piece = (b"<a>" + b"x" * (chunk - 7) + b"</a>")[:chunk]
        sent = 0
        while sent < total:
            readable, _, _ = select.select([s], [], [], 0)
            if readable:
                break
            try:
                s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        else:
            try:
                s.sendall(b"0\r\n\r\n")
            except OSError:
                pass
        return sent, read_response(s)
    finally:
        s.close()


def in_thread(f, *args, **kw):
    return threads.deferToThread(f, *args, **kw)


_tokens = {}


def owner_headers(data):
    """Headers authenticating as the owner of the data root DATA on a real
    server (``python -m personium_dav token --data DIR --owner``), cached."""
    from .realserver import ownerHeaders

    data = os.path.abspath(data)
    if data not in _tokens:
        _tokens[data] = ownerHeaders(data)
    return dict(_tokens[data])


class HTTP:
    """treq over real HTTP, one connection per request (a killed server
    leaves no stale pooled connection), with the owner's credentials."""

    def __init__(self, base, data=None, timeout=20, auth=None):
        from twisted.web.client import HTTPConnectionPool

        self.base = base
        self.auth = dict(auth) if auth is not None else owner_headers(data) if data else {}
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.timeout = timeout

    @defer.inlineCallbacks
    def __call__(self, method, path, body=None, headers=None):
        import treq

        hdrs = dict(self.auth)
        hdrs.update(headers or {})
        response = yield treq.request(
            method, self.base + path, data=body, pool=self.pool, timeout=self.timeout,
            headers={k: [v] for k, v in hdrs.items()})
        content = yield response.content()
        return Reply(response, content)


class Reply:
    def __init__(self, response, body):
        self.code = response.code
        self.headers = response.headers
        self.body = body

    def header(self, name):
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None
