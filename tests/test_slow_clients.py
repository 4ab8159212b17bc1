"""Slow and idle clients (issue 4, item 6), against the real server started
with a small ``--idle-timeout``: an idle connection is closed after it; a
client trickling its headers is cut off when the whole header block has not
arrived within it; an oversized header block is refused at once (twisted.web's
16 KiB / 500 header limits); a trickled body is bounded by the body limits;
and meanwhile the server keeps answering other clients."""
import os
import socket
import time

from twisted.internet import defer
from twisted.trial import unittest

from personium_dav.store import provision
from .support import hardening
from .support.realserver import RealServer

IDLE = 1.0


def closed_after(port, send=b"", timeout=10):
    """Seconds until the server closes a connection that sent ``send``."""
    s = hardening.connect(port, timeout=timeout)
    try:
        start = time.monotonic()
        if send:
            s.sendall(send)
        hardening.read_response(s, timeout=timeout)
        return time.monotonic() - start
    finally:
        s.close()


def trickle_headers(port, auth, seconds):
    """Send a request's headers one byte every 0.1 s; (seconds until the
    server closed, what it answered)."""
    s = hardening.connect(port, timeout=seconds + 5)
    start = time.monotonic()
    head = b"GET /cell1/box1/ HTTP/1.1\r\nHost: l\r\n" + auth + b"X-Slow: " + b"a" * 200
    try:
        for byte in head:
            try:
                s.sendall(bytes([byte]))
            except OSError:
                break
            if time.monotonic() - start > seconds:
                break
            time.sleep(0.1)
        s.settimeout(5)
        try:
            data = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            data = b""
        return time.monotonic() - start, data
    finally:
        s.close()


class SlowClientTests(unittest.TestCase):

    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        data = os.path.abspath(self.mktemp())
        provision.create_box(data, "cell1", "box1")
        self.server = yield RealServer(self, data, "--idle-timeout", str(IDLE),
                                       "--header-timeout", str(IDLE),
                                       "--max-xml-body", "4096").start()
        self.http = hardening.HTTP(self.server.url, data)
        self.auth = ("Authorization: %s\r\n" % self.http.auth["Authorization"]).encode() \
            if self.http.auth else b""

    @defer.inlineCallbacks
    def assertServing(self):
        start = time.monotonic()
        answer = yield self.http("PROPFIND", "/cell1/box1/", None, {"Depth": "0"})
        self.assertEqual(answer.code, 207)
        self.assertLess(time.monotonic() - start, 2.0)

    @defer.inlineCallbacks
    def test_idle_connection_closed(self):
        waited = yield hardening.in_thread(closed_after, self.server.port)
        self.assertGreater(waited, IDLE * 0.8)
        self.assertLess(waited, IDLE + 3)

    @defer.inlineCallbacks
    def test_idle_after_a_request_closed(self):
        """A kept-alive connection is closed once idle too."""
        def keepalive():
            s = hardening.connect(self.server.port)
            try:
                s.sendall(b"OPTIONS /cell1/box1/ HTTP/1.1\r\nHost: l\r\n\r\n")
                first = hardening.read_one_response(s)
                start = time.monotonic()
                rest = hardening.read_response(s, timeout=IDLE + 5)
                return first, rest, time.monotonic() - start
            finally:
                s.close()

        first, rest, waited = yield hardening.in_thread(keepalive)
        self.assertEqual(hardening.status_of(first), 401)  # anonymous; kept alive
        self.assertEqual(rest, b"")
        self.assertLess(waited, IDLE + 3)

    @defer.inlineCallbacks
    def test_trickled_headers_cut_off(self):
        d = hardening.in_thread(trickle_headers, self.server.port, self.auth, 10)
        # the server keeps answering others meanwhile
        yield hardening.sleep(0.3)
        for _ in range(3):
            yield self.assertServing()
        waited, answer = yield d
        self.assertLess(waited, IDLE + 3)
        self.assertIn(answer[:12], (b"", b"HTTP/1.1 408"))

    @defer.inlineCallbacks
    def test_oversized_header_block_refused(self):
        def send(headers):
            s = hardening.connect(self.server.port)
            try:
                s.sendall(b"GET /cell1/box1/ HTTP/1.1\r\nHost: l\r\n" + headers)
                return hardening.read_response(s, timeout=5)
            except (BrokenPipeError, ConnectionResetError):
                return b"HTTP/1.1 400 (reset while sending)"
            finally:
                s.close()

        one_big = b"X-Big: " + b"a" * 20000 + b"\r\n\r\n"
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(600)) + b"\r\n"
        endless = b"X-Big: " + b"a" * (4 * 1024 * 1024)  # never ends: must not be buffered
        for headers in (one_big, many, endless):
            start = time.monotonic()
            raw = yield hardening.in_thread(send, headers)
            # 400, or (a line past LineReceiver's 16 KiB) the connection closed
            # at once; either way within the idle timeout, nothing buffered
            self.assertIn(hardening.status_of(raw), (400, None), raw[:100])
            self.assertTrue(raw == b"" or hardening.status_of(raw) == 400, raw[:100])
            self.assertLess(time.monotonic() - start, IDLE + 3)
            yield self.assertServing()
        raw = yield hardening.in_thread(send, many)
        self.assertEqual(hardening.status_of(raw), 400)

    @defer.inlineCallbacks
    def test_trickled_body_bounded(self):
        """A body trickled past the XML limit is refused once over it."""
        def trickle():
            s = hardening.connect(self.server.port)
            try:
                s.sendall(b"PROPPATCH /cell1/box1/ HTTP/1.1\r\nHost: l\r\n%s"
                          b"Transfer-Encoding: chunked\r\n\r\n" % self.auth)
                sent = 0
                while sent < 1024 * 1024:
                    try:
                        s.sendall(b"200\r\n" + b"x" * 512 + b"\r\n")
                    except OSError:
                        break
                    sent += 512
                    time.sleep(0.001)
                    s.setblocking(False)
                    try:
                        data = s.recv(65536)
                    except BlockingIOError:
                        data = None
                    s.setblocking(True)
                    if data is not None:
                        return sent, data + hardening.read_response(s, timeout=3)
                return sent, hardening.read_response(s, timeout=3)
            finally:
                s.close()

        d = hardening.in_thread(trickle)
        yield self.assertServing()
        sent, raw = yield d
        self.assertEqual(hardening.status_of(raw), 413, raw[:200])
        self.assertLess(sent, 256 * 1024)
        yield self.assertServing()


def poll(s):
    """What the server has sent so far (b"" when it closed), or None."""
    s.setblocking(False)
    try:
        return s.recv(65536)
    except BlockingIOError:
        return None
    except OSError:
        return b""
    finally:
        s.setblocking(True)


def trickle(port, head, every, seconds):
    """Send ``head`` a byte every ``every`` seconds; (seconds until the
    server answered or closed, what it answered)."""
    s = hardening.connect(port, timeout=seconds + 5)
    start = time.monotonic()
    try:
        for byte in head:
            try:
                s.sendall(bytes([byte]))
            except OSError:
                break
            data = poll(s)
            if data is not None or time.monotonic() - start > seconds:
                return time.monotonic() - start, data or b""
            time.sleep(every)
        return time.monotonic() - start, hardening.read_response(s, timeout=5)
    finally:
        s.close()


class Deadlines(unittest.TestCase):
    """--header-timeout from a request's first byte (the request line
    included), --min-body-rate for a body, --max-connections-per-address."""

    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        data = os.path.abspath(self.mktemp())
        provision.create_box(data, "cell1", "box1")
        self.server = yield RealServer(self, data, "--header-timeout", "1.5",
                                       "--idle-timeout", "30", "--min-body-rate", "1000",
                                       "--max-connections-per-address", "4").start()
        self.http = hardening.HTTP(self.server.url, data)
        self.auth = ("Authorization: %s\r\n" % self.http.auth["Authorization"]).encode()

    @defer.inlineCallbacks
    def test_a_trickled_request_line(self):
        waited, answer = yield hardening.in_thread(
            trickle, self.server.port, b"GET /cell1/box1/" + b"a" * 100 + b" HTTP/1.1\r\n",
            0.1, 10)
        self.assertLess(waited, 4)  # --header-timeout, not the idle timeout
        self.assertIn(answer[:12], (b"", b"HTTP/1.1 408"))

    @defer.inlineCallbacks
    def test_a_trickled_body(self):
        head = (b"PUT /cell1/box1/slow.bin HTTP/1.1\r\nHost: l\r\n%sContent-Length: 1000000\r\n"
                b"Content-Type: application/octet-stream\r\n\r\n" % self.auth)

        def send():
            s = hardening.connect(self.server.port, timeout=15)
            start = time.monotonic()
            try:
                s.sendall(head)
                while time.monotonic() - start < 12:
                    try:
                        s.sendall(b"x" * 100)  # 1,000 bytes a second, not 1,000 of them
                    except OSError:
                        break
                    data = poll(s)
                    if data is not None:
                        return time.monotonic() - start, data
                    time.sleep(0.5)
                return time.monotonic() - start, b""
            finally:
                s.close()

        waited, answer = yield hardening.in_thread(send)
        self.assertLess(waited, 8)
        self.assertIn(answer[:12], (b"", b"HTTP/1.1 408"))
        self.assertEqual(os.listdir(os.path.join(self.server.data_dir, ":tmp")), [])

    @defer.inlineCallbacks
    def test_connections_per_address(self):
        def hold(count):
            sockets = [hardening.connect(self.server.port) for _ in range(count)]
            try:
                extra = hardening.connect(self.server.port)
                try:
                    return hardening.read_response(extra, timeout=5)
                finally:
                    extra.close()
            finally:
                for s in sockets:
                    s.close()

        raw = yield hardening.in_thread(hold, 4)
        self.assertEqual(hardening.status_of(raw), 503, raw[:200])
        self.assertIn(b"PR503-SV-0008", raw)
        yield hardening.sleep(0.3)
        status = (yield self.http("OPTIONS", "/cell1/box1/")).code
        self.assertEqual(status, 200)  # the slots are back once those are closed
