"""Hostile paths (issue 4, item 2): the request bytes go over a real socket
exactly as written (no client normalises them), and every attempt to leave
the box or reach the server's bookkeeping gets 403 or 404. Symlinks planted
in a box to a directory and a file outside the data root are never followed:
the canary outside is not read, listed or written."""
import json
import os

from twisted.internet import defer
from twisted.trial import unittest

from .support import hardening

CANARY = b"canary: secret outside the data root\n"


def raw_request(port, method, path, body=b"", headers=b""):
    """(status, headers bytes, body bytes) for one request sent verbatim."""
    s = hardening.connect(port)
    try:
        s.sendall(b"%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n%s\r\n%s" % (method, path, len(body), headers, body))
        raw = hardening.read_response(s)
    finally:
        s.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    return hardening.status_of(raw), head, rest


class HostilePathTests(unittest.TestCase):

    def setUp(self):
        self.server = hardening.LoopbackServer(self)
        self.box = os.path.join(self.server.data, "cell1", "box1")
        self.outside = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.outside, "secrets"))
        self.canary = os.path.join(self.outside, "secrets", "canary.txt")
        with open(self.canary, "wb") as f:
            f.write(CANARY)
        os.symlink(os.path.join(self.outside, "secrets"), os.path.join(self.box, "linkdir"))
        os.symlink(self.canary, os.path.join(self.box, "linkfile"))
        os.makedirs(os.path.join(self.box, "plain"))
        os.symlink(self.canary, os.path.join(self.box, "plain", "inner"))
        with open(os.path.join(self.box, "plain", "ok.txt"), "wb") as f:
            f.write(b"ok")

    def request(self, method, path, body=b"", headers=b""):
        headers = self.server.authHeader + headers  # as the owner
        return hardening.in_thread(raw_request, self.server.portNumber, method, path, body, headers)

    def assertCanaryIntact(self):
        with open(self.canary, "rb") as f:
            self.assertEqual(f.read(), CANARY)
        self.assertEqual(os.listdir(os.path.join(self.outside, "secrets")), ["canary.txt"])
        self.assertTrue(os.path.islink(os.path.join(self.box, "linkfile")))
        self.assertTrue(os.path.islink(os.path.join(self.box, "linkdir")))

    def assertNoLeak(self, answer):
        status, head, body = answer
        self.assertNotIn(b"secret outside", body)
        self.assertNotIn(b"root:x:", body)
        self.assertNotIn(b"Traceback", body)
        self.assertNotIn(self.server.data.encode(), body)

    HOSTILE = [
        b"/cell1/box1/../../../../etc/passwd",
        b"/cell1/box1/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        b"/cell1/box1/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        b"/cell1/box1/..%2f..%2f..%2fetc%2fpasswd",
        b"/cell1/box1/..%5c..%5c..%5cetc%5cpasswd",
        b"/cell1/box1/plain%2fok.txt",
        b"/cell1/box1/%2e",
        b"/cell1/box1/.",
        b"/cell1/box1/..",
        b"/cell1/box1/x%00.txt",
        b"/cell1/box1/%00",
        b"/cell1/box1/%ff%fe",
        b"/cell1/box1/%c0%ae%c0%ae",  # overlong UTF-8 for ".."
        b"/cell1/box1/%ed%a0%80",  # a UTF-16 surrogate in UTF-8
        b"/cell1/box1/" + b"a" * 257,
        b"/cell1/box1/" + b"%e3%81%82" * 257,
        b"/cell1/box1/:props.xml",
        b"/cell1/box1/%3aprops.xml",
        b"/cell1/box1/:lock",
        b"/cell1/box1/:props.tmp",
        b"/cell1/box1/plain/:props.xml",
        b"/cell1/:tmp",
        b"/:tmp/",
        b"/:trash/",
        b"/cell1/box1/%3ah" + b"0" * 64,
        b"/%2e%2e/cell1/box1/",
        b"/cell1/%2e%2e/cell1/box1/",
        b"/cell1/box1/a%0d%0aX-Injected:%20yes",
        b"/cell1/box1/a%20b",
        b"/cell1/box1/a\\b",
    ]

    @defer.inlineCallbacks
    def test_reads(self):
        for path in self.HOSTILE:
            for method in (b"GET", b"HEAD", b"PROPFIND", b"DELETE", b"PROPPATCH", b"MOVE", b"COPY"):
                headers = b"Depth: 0\r\n"
                if method in (b"MOVE", b"COPY"):
                    headers += b"Destination: http://localhost/cell1/box1/moved\r\n"
                answer = yield self.request(method, path, headers=headers)
                self.assertIn(answer[0], (403, 404), (method, path, answer))
                self.assertNoLeak(answer)
                self.assertNotIn(b"X-Injected", answer[1])
        self.assertCanaryIntact()
        self.assertFalse(os.path.exists(os.path.join(self.box, "moved")))

    @defer.inlineCallbacks
    def test_writes(self):
        before = sorted(os.listdir(self.box))
        for path in self.HOSTILE:
            for method in (b"PUT", b"MKCOL"):
                answer = yield self.request(method, path, b"written" if method == b"PUT" else b"")
                self.assertIn(answer[0], (403, 404), (method, path, answer))
                self.assertNoLeak(answer)
        self.assertEqual(sorted(os.listdir(self.box)), before)
        self.assertFalse(os.path.exists("/etc/written"))
        self.assertCanaryIntact()

    @defer.inlineCallbacks
    def test_bad_names_to_create_are_403(self):
        for path in (b"/cell1/box1/%2e%2e", b"/cell1/box1/%5c", b"/cell1/box1/x%00",
                     b"/cell1/box1/%ff", b"/cell1/box1/:lock", b"/cell1/box1/" + b"a" * 257):
            answer = yield self.request(b"PUT", path, b"x")
            self.assertEqual(answer[0], 403, (path, answer))
            self.assertEqual(json.loads(answer[2])["code"], "PR403-DV-0004")

    @defer.inlineCallbacks
    def test_symlinks_never_read(self):
        for path in (b"/cell1/box1/linkfile", b"/cell1/box1/linkdir", b"/cell1/box1/linkdir/",
                     b"/cell1/box1/linkdir/canary.txt", b"/cell1/box1/plain/inner"):
            for method in (b"GET", b"HEAD", b"PROPFIND", b"OPTIONS"):
                answer = yield self.request(method, path, headers=b"Depth: 1\r\n")
                if method == b"OPTIONS":
                    self.assertNotIn(b"PUT", answer[1])
                    continue
                self.assertIn(answer[0], (403, 404), (method, path, answer))
                self.assertNoLeak(answer)
        self.assertCanaryIntact()

    @defer.inlineCallbacks
    def test_symlinks_never_listed(self):
        for path in (b"/cell1/box1/", b"/cell1/box1/plain/"):
            answer = yield self.request(b"PROPFIND", path, headers=b"Depth: 1\r\n")
            self.assertEqual(answer[0], 207)
            for name in (b"linkfile", b"linkdir", b"inner", b"canary"):
                self.assertNotIn(name, answer[2])
            answer = yield self.request(b"GET", path)
            self.assertEqual(answer[0], 200)
            self.assertNotIn(b"link", answer[2])
            self.assertNotIn(b"inner", answer[2])

    @defer.inlineCallbacks
    def test_symlinks_never_written(self):
        cases = [
            (b"PUT", b"/cell1/box1/linkfile", b"overwritten", b""),
            (b"PUT", b"/cell1/box1/linkdir/canary.txt", b"overwritten", b""),
            (b"PUT", b"/cell1/box1/linkdir/new.txt", b"new", b""),
            (b"PUT", b"/cell1/box1/plain/inner", b"overwritten", b""),
            (b"MKCOL", b"/cell1/box1/linkdir/sub", b"", b""),
            (b"MKCOL", b"/cell1/box1/linkfile", b"", b""),
            (b"DELETE", b"/cell1/box1/linkfile", b"", b""),
            (b"DELETE", b"/cell1/box1/linkdir", b"", b"X-Personium-Recursive: true\r\n"),
            (b"DELETE", b"/cell1/box1/linkdir/canary.txt", b"", b""),
            (b"PROPPATCH", b"/cell1/box1/linkfile",
             b'<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x xmlns="u">1</x>'
             b'</D:prop></D:set></D:propertyupdate>', b""),
            (b"MOVE", b"/cell1/box1/linkfile", b"",
             b"Destination: http://localhost/cell1/box1/moved\r\n"),
            (b"MOVE", b"/cell1/box1/plain/ok.txt", b"",
             b"Destination: http://localhost/cell1/box1/linkfile\r\n"),
            (b"MOVE", b"/cell1/box1/plain/ok.txt", b"",
             b"Destination: http://localhost/cell1/box1/linkdir/canary.txt\r\n"),
            (b"COPY", b"/cell1/box1/plain/ok.txt", b"",
             b"Destination: http://localhost/cell1/box1/linkdir/copy.txt\r\n"),
            (b"COPY", b"/cell1/box1/plain/ok.txt", b"",
             b"Destination: http://localhost/cell1/box1/linkfile\r\n"),
        ]
        for method, path, body, headers in cases:
            answer = yield self.request(method, path, body, headers)
            self.assertIn(answer[0], (403, 404), (method, path, answer))
            self.assertNoLeak(answer)
            self.assertCanaryIntact()
        with open(os.path.join(self.box, "plain", "ok.txt"), "rb") as f:
            self.assertEqual(f.read(), b"ok")

    @defer.inlineCallbacks
    def test_copy_and_delete_of_a_collection_holding_a_symlink(self):
        """A COPY of a collection never copies what a link inside points at;
        a recursive DELETE removes the link, not its target."""
        answer = yield self.request(b"COPY", b"/cell1/box1/plain", headers=(
            b"Destination: http://localhost/cell1/box1/copied\r\nDepth: infinity\r\n"))
        self.assertEqual(answer[0], 201, answer)
        copied = os.path.join(self.box, "copied")
        self.assertEqual(sorted(n for n in os.listdir(copied) if not n.startswith(":")), ["ok.txt"])
        answer = yield self.request(b"GET", b"/cell1/box1/copied/inner")
        self.assertEqual(answer[0], 404)
        answer = yield self.request(b"MOVE", b"/cell1/box1/plain", headers=(
            b"Destination: http://localhost/cell1/box1/moved\r\n"))
        self.assertEqual(answer[0], 201, answer)
        answer = yield self.request(b"DELETE", b"/cell1/box1/moved",
                                    headers=b"X-Personium-Recursive: true\r\n")
        self.assertEqual(answer[0], 204, answer)
        self.assertCanaryIntact()

    @defer.inlineCallbacks
    def test_symlinked_cell_and_box(self):
        os.symlink(self.outside, os.path.join(self.server.data, "cellx"))
        os.symlink(os.path.join(self.outside), os.path.join(self.server.data, "cell1", "boxx"))
        for path in (b"/cellx/secrets/canary.txt", b"/cellx/secrets/", b"/cell1/boxx/secrets/canary.txt",
                     b"/cell1/boxx/"):
            for method in (b"GET", b"PROPFIND", b"PUT"):
                answer = yield self.request(method, path, b"x" if method == b"PUT" else b"",
                                            headers=b"Depth: 1\r\n")
                self.assertIn(answer[0], (403, 404), (method, path, answer))
                self.assertNoLeak(answer)
        self.assertCanaryIntact()
