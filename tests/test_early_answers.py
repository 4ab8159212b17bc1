"""Nothing is stored before it is known to be wanted (docs/reliability.md,
"Big bodies"): a request is routed, authenticated and checked for its
privilege when its header block is in, before a byte of its body is stored
or ``100 Continue`` is sent; a refused one is answered at once, its body
read and dropped up to a bound, then the connection closed."""
import base64
import functools
import os
import socket
import time

import treq
from twisted.internet import defer
from twisted.trial import unittest

from personium_dav.store import mounts, provision
from personium_dav.store.props import Miss

from .support import hardening
from .support.realserver import RealServer, addAccount, grantOnBox

BIG = 40 * 1024 * 1024


def send_head(port, head, body=b"", read_first=True, timeout=10):
    """Send a request's header block (and ``body``), then read what comes;
    (raw answer, seconds it took)."""
    s = hardening.connect(port, timeout=timeout)
    start = time.monotonic()
    try:
        s.sendall(head)
        if body:
            s.sendall(body)
        return hardening.read_response(s, timeout=timeout), time.monotonic() - start
    finally:
        s.close()


def put_head(path, length, auth=b"", expect=False):
    return (b"PUT %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n"
            b"Content-Type: application/octet-stream\r\n%s%s\r\n"
            % (path, length, auth, b"Expect: 100-continue\r\n" if expect else b""))


class EarlyAnswers(unittest.TestCase):
    timeout = 90

    @defer.inlineCallbacks
    def setUp(self):
        self.data = os.path.abspath(self.mktemp())
        provision.create_box(self.data, "cell1", "box1")
        addAccount(self.data, "cell1", "me", "pw-me", ["editor"])
        grantOnBox(self.data, "cell1", "box1", "editor")
        self.server = yield RealServer(self, self.data).start()
        self.port = self.server.port
        self.owner = ("Authorization: %s\r\n" % hardening.owner_headers(self.data)[
            "Authorization"]).encode()

    def tmp(self):
        return os.listdir(os.path.join(self.data, ":tmp"))

    @defer.inlineCallbacks
    def test_refused_before_the_body(self):
        for path, status in ((b"/nocell/x.bin", 404), (b"/cell1/nobox/x.bin", 404),
                             (b"/cell1/box1/x.bin", 401)):
            raw, _ = yield hardening.in_thread(send_head, self.port, put_head(path, BIG))
            self.assertEqual(hardening.status_of(raw), status, raw[:300])
            self.assertIn(b"Connection: close", raw)
            self.assertEqual(self.tmp(), [])
        raw, _ = yield hardening.in_thread(send_head, self.port, put_head(b"/cell1/box1/x.bin",
                                                                         BIG))
        self.assertIn(b"WWW-Authenticate: Basic", raw)

    @defer.inlineCallbacks
    def test_no_continue_before_a_refusal(self):
        raw, _ = yield hardening.in_thread(
            send_head, self.port, put_head(b"/cell1/box1/x.bin", BIG, expect=True))
        self.assertTrue(raw.startswith(b"HTTP/1.1 401 "), raw[:200])
        self.assertNotIn(b"100 Continue", raw)
        self.assertEqual(self.tmp(), [])

    @defer.inlineCallbacks
    def test_continue_once_accepted(self):
        """Also when the decision waits for a password check (Basic: argon2
        in a pool), and never for a wrong password."""
        basic = b"Authorization: Basic %s\r\n" % base64.b64encode(b"me:pw-me")
        wrong = b"Authorization: Basic %s\r\n" % base64.b64encode(b"me:wrong")
        for auth, path in ((self.owner, b"/cell1/box1/a.bin"), (basic, b"/cell1/box1/b.bin")):

            def exchange():
                s = hardening.connect(self.port, timeout=20)
                try:
                    s.sendall(put_head(path, 5, auth, expect=True))
                    first = s.recv(100)
                    s.sendall(b"hello")
                    return first, hardening.read_response(s, timeout=20)
                finally:
                    s.close()

            first, final = yield hardening.in_thread(exchange)
            self.assertEqual(first, b"HTTP/1.1 100 Continue\r\n\r\n")
            self.assertEqual(hardening.status_of(final), 201, final[:300])
        raw, _ = yield hardening.in_thread(
            send_head, self.port, put_head(b"/cell1/box1/c.bin", BIG, wrong, expect=True))
        self.assertTrue(raw.startswith(b"HTTP/1.1 401 "), raw[:200])
        self.assertEqual(self.tmp(), [])

    @defer.inlineCallbacks
    def test_a_client_without_expect_reads_its_answer(self):
        """It sends its (small) body along: read and dropped, answered."""
        raw, _ = yield hardening.in_thread(
            send_head, self.port, put_head(b"/cell1/box1/x.bin", 2000), b"y" * 2000)
        self.assertEqual(hardening.status_of(raw), 401, raw[:200])

    @defer.inlineCallbacks
    def test_a_large_body_is_not_read_for_ever(self):
        def push():
            s = hardening.connect(self.port, timeout=10)
            sent = 0
            try:
                s.sendall(put_head(b"/cell1/box1/x.bin", BIG))
                answer = s.recv(65536)
                try:
                    while sent < BIG:
                        s.sendall(b"z" * 65536)
                        sent += 65536
                except (BrokenPipeError, ConnectionResetError, socket.timeout):
                    pass
                return answer, sent
            finally:
                s.close()

        answer, sent = yield hardening.in_thread(push)
        self.assertTrue(answer.startswith(b"HTTP/1.1 401 "), answer[:200])
        self.assertLess(sent, BIG // 4)  # closed after a bound, not read to the end
        self.assertEqual(self.tmp(), [])


class EarlyRefusalHeaders(unittest.TestCase):
    """An early refusal carries the error's own headers: a 503 for a store
    that fails while a body is pending says when to retry."""

    @defer.inlineCallbacks
    def test_a_failing_store_answers_503_with_retry_after(self):
        server = hardening.LoopbackServer(self)
        root = server.site.resource

        def resolve(request, st, inline=False):
            if inline:
                raise Miss()  # as on a shared mount: resolved in a thread
            raise mounts.Unavailable("the data root does not answer")

        self.patch(root, "resolve", resolve)
        raw, _ = yield hardening.in_thread(
            send_head, server.portNumber,
            put_head(b"/cell1/box1/x.bin", 4, server.authHeader), b"lost")
        self.assertEqual(hardening.status_of(raw), 503, raw[:300])
        self.assertIn(b"Retry-After: 5", raw)
        self.assertIn(b"PR503-SV-0006", raw)
        self.assertEqual(server.tmp_files(), [])


class EarlyQuota(unittest.TestCase):
    """A PUT whose Content-Length the box's quota cannot take is answered
    507 before its body is sent; one that fits, or that replaces a file big
    enough, goes on."""

    @defer.inlineCallbacks
    def test_oversize_body_refused_before_it_is_sent(self):
        server = hardening.LoopbackServer(self)
        box = server.site.resource.server.store.box("cell1", "box1")
        box.usage.set_quota(4096)
        put = functools.partial(put_head, auth=server.authHeader, expect=True)
        raw, _ = yield hardening.in_thread(send_head, server.portNumber,
                                           put(b"/cell1/box1/big.bin", 5000))
        self.assertEqual(hardening.status_of(raw), 507, raw[:300])
        self.assertIn(b"PR507-DV-0001", raw)
        self.assertNotIn(b"100 Continue", raw)
        self.assertEqual(server.tmp_files(), [])
        # 3,000 bytes fit; then 3,000 more do not, unless they replace them
        reply = yield treq.put(server.url + "/cell1/box1/a.bin", b"a" * 3000,
                               headers=server.authHeaders, persistent=False)
        yield reply.content()
        self.assertEqual(reply.code, 201)
        raw, _ = yield hardening.in_thread(send_head, server.portNumber,
                                           put(b"/cell1/box1/b.bin", 3000))
        self.assertEqual(hardening.status_of(raw), 507, raw[:300])
        reply = yield treq.put(server.url + "/cell1/box1/a.bin", b"b" * 3500,
                               headers=server.authHeaders, persistent=False)
        yield reply.content()
        self.assertEqual(reply.code, 204)
        self.assertEqual(box.usage.used(), 3500)
