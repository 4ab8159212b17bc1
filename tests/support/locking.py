"""Locks for the tests: a lock row, a clock, LOCK bodies, and a test case
with the lock requests."""

from twisted.internet import defer

from personium_dav.config import Config
from personium_dav.store import locks as store
from personium_dav.store.locks import Lock

from .helpers import BOX, DavTestCase

TOKEN = "urn:uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def a_lock(root=("a",), scope="exclusive", depth="0", expires=1000.0, token=None,
           principal="owner"):
    return Lock(token=token or store.new_token(), root=tuple(root), collection=False,
                depth=depth, scope=scope, owner="", principal=principal, timeout=60,
                expires=expires)


class Clock:
    """A fake clock: tests move it instead of sleeping."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


D = "{DAV:}"
PCODE = "{urn:x-personium:xmlns}code"
CELL_URL = "http://localhost/cell1/"
OWNER = ('<D:owner xmlns:x="urn:x"><D:href>mailto:me@example.org</D:href>'
         '<x:who a="1">Me &amp; co</x:who> tail</D:owner>')
PROPNAME_LOCKS = (b'<D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/><D:supportedlock/>'
                  b"</D:prop></D:propfind>")


def lockinfo(scope="exclusive", owner=OWNER, locktype="<D:write/>"):
    return ('<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
            "<D:lockscope><D:%s/></D:lockscope><D:locktype>%s</D:locktype>%s</D:lockinfo>"
            % (scope, locktype, owner)).encode("utf-8")


def with_token(token, tag=None):
    """An If header submitting ``token`` (untagged, or tagged with a URL)."""
    return {"If": ("<%s> " % tag if tag else "") + "(<%s>)" % token}


class LockTestCase(DavTestCase):
    """A box with a file ``a.txt`` and a collection ``col/`` holding ``m.txt``;
    the lock table's clock is a fake one."""

    config = Config(durable=False)

    @defer.inlineCallbacks
    def setUp(self):
        DavTestCase.setUp(self)
        self.clock = Clock(1_800_000_000.0)
        self.server.store.locks.clock = self.clock
        for method, path, body in (("PUT", "a.txt", b"a"), ("MKCOL", "col", b""),
                                   ("PUT", "col/m.txt", b"m")):
            answer = yield self.request(method, BOX + path, body)
            self.assertIn(answer.code, (201, 204), answer.body)

    @defer.inlineCallbacks
    def lock(self, path, scope="exclusive", depth=None, headers=None, status=200, **kw):
        hdrs = dict(headers or {})
        if depth is not None:
            hdrs["Depth"] = depth
        answer = yield self.request("LOCK", BOX + path, lockinfo(scope, **kw), hdrs)
        self.assertEqual(answer.code, status, answer.body)
        if status in (200, 201):
            header = answer.header("lock-token")
            self.assertRegex(header, r"^<urn:uuid:[0-9a-f-]{36}>$")
            answer.token = header[1:-1]
        return answer

    @defer.inlineCallbacks
    def status(self, method, path, body=b"", headers=None):
        answer = yield self.request(method, BOX + path, body, headers)
        return answer.code

    @defer.inlineCallbacks
    def discovered(self, path, depth="0"):
        """{href: [activelock elements]} from a PROPFIND for D:lockdiscovery."""
        answer = yield self.request("PROPFIND", BOX + path, PROPNAME_LOCKS, {"Depth": depth})
        self.assertEqual(answer.code, 207, answer.body)
        out = {}
        for response in answer.xml().iterfind(D + "response"):
            out[response.findtext(D + "href")] = response.findall(
                ".//%slockdiscovery/%sactivelock" % (D, D))
        return out

    def assertLocked(self, answer, *hrefs):
        """423 with D:lock-token-submitted naming the lock roots, and the code."""
        self.assertEqual(answer.code, 423, answer.body)
        self.assertEqual(answer.header("content-type"), "application/xml; charset=utf-8")
        doc = answer.xml()
        self.assertEqual(doc.tag, D + "error")
        self.assertEqual(sorted(h.text for h in doc.iterfind(
            "%slock-token-submitted/%shref" % (D, D))), sorted(hrefs))
        self.assertEqual(doc.findtext(PCODE), "PR423-DV-0001")


