"""WebDAV class 2: the If header (RFC 4918 §10.4), the lock table, LOCK and
UNLOCK (§9.10, §9.11), and what locks do to every other write (§7)."""
import os

from lxml import etree
from treq.testing import StubTreq
from twisted.internet import defer
from twisted.trial import unittest

from personium_dav.dav import ifheader
from personium_dav.auth.privileges import Ace, acl_body
from personium_dav.config import Config
from personium_dav.dav.ifheader import Condition, IfList
from personium_dav.web.site import makeResource
from personium_dav.store import locks as store
from personium_dav.store.locks import Lock, LockTable

from .helpers import BOX, DavTestCase
from .steps import SERVICE_MKCOL, proppatch_body

TOKEN = "urn:uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


class IfHeaderParseTests(unittest.TestCase):
    """The grammar of §10.4.2, and what is not in it."""

    def test_untagged(self):
        self.assertEqual(ifheader.parse("(<%s>)" % TOKEN),
                         [IfList(None, (Condition(False, token=TOKEN),))])

    def test_tagged_lists_and_etags(self):
        value = ('<http://h/cell1/box1/a> (<%s> ["1-2"]) (Not <DAV:no-lock>)'
                 ' </cell1/box1/b/> ([W/"3-4"])' % TOKEN)
        self.assertEqual(ifheader.parse(value), [
            IfList("http://h/cell1/box1/a",
                   (Condition(False, token=TOKEN), Condition(False, etag='"1-2"'))),
            IfList("http://h/cell1/box1/a", (Condition(True, token="DAV:no-lock"),)),
            IfList("/cell1/box1/b/", (Condition(False, etag='W/"3-4"'),)),
        ])

    def test_white_space_and_case(self):
        lists = ifheader.parse('\t( not<DAV:no-lock>[ "x" ] )  (NOT [W/"y"])\r\n')
        self.assertEqual(lists, [
            IfList(None, (Condition(True, token="DAV:no-lock"), Condition(False, etag='"x"'))),
            IfList(None, (Condition(True, etag='W/"y"'),)),
        ])

    def test_an_etag_may_hold_brackets(self):
        self.assertEqual(ifheader.parse('(["a]b"])')[0].conditions,
                         (Condition(False, etag='"a]b"'),))

    def test_malformed(self):
        for value in ("", "   ", "()", "(", ")", "<http://h/a>", "(<%s>) <http://h/a> ()" % TOKEN,
                      "(<%s>) <http://h/a> (<%s>)" % (TOKEN, TOKEN),  # untagged, then tagged
                      "<http://h/a> <http://h/b> (<%s>)" % TOKEN,  # a tag without a list
                      "(<not a uri>)", "(<nocolon>)", "(<>)", "([nope])", '(["x" )', '(["x"',
                      "(Not)", "(Nothing <%s>)" % TOKEN, "(%s)" % TOKEN, "<%s" % TOKEN,
                      "(<%s>) junk" % TOKEN, '(["x"] x)', "(< >)", "<> (<%s>)" % TOKEN,
                      "<a b> (<%s>)" % TOKEN, "(<a:b) ", "([W/x])"):
            with self.assertRaises(ifheader.Malformed, msg=repr(value)):
                ifheader.parse(value)

    def test_submitted_tokens(self):
        lists = ifheader.parse("<http://h/y> (<urn:a> Not <urn:b>) <http://h/x> (<urn:c>)")
        self.assertEqual(ifheader.tokens(lists), {"urn:a", "urn:c"})
        self.assertEqual(ifheader.tokens(None), frozenset())


class IfHeaderEvaluationTests(unittest.TestCase):
    """§10.4.3: a list is a conjunction, lists are a disjunction; entity tags
    compare weakly; an unmapped URL has no state."""

    STATES = {None: ('"1-5"', {TOKEN}), "http://h/other": (None, set())}

    def holds(self, value):
        return ifheader.evaluate(ifheader.parse(value), self.STATES.__getitem__)

    def test_conditions(self):
        cases = {
            "(<%s>)" % TOKEN: True,
            "(<urn:uuid:other>)": False,
            "(Not <urn:uuid:other>)": True,
            "(Not <%s>)" % TOKEN: False,
            '(["1-5"])': True,
            '([W/"1-5"])': True,
            '(["1-6"])': False,
            '(Not ["1-6"])': True,
            '(<%s> ["1-5"])' % TOKEN: True,
            '(<%s> ["1-6"])' % TOKEN: False,
            '(<DAV:no-lock> ["1-5"])': False,
            "(<DAV:no-lock>)": False,
            "(<DAV:no-lock>) (Not <DAV:no-lock>)": True,
            '(<%sx>) (Not <DAV:no-lock>)' % TOKEN: True,
            '(<%s> ["1-6"]) (Not <DAV:no-lock> ["1-6"])' % TOKEN: False,
            # a tagged list is evaluated on its own resource
            '<http://h/other> (Not <%s>)' % TOKEN: True,
            '<http://h/other> (["1-5"])': False,
            '<http://h/other> (Not ["1-5"])': True,
        }
        for value, expected in cases.items():
            self.assertEqual(self.holds(value), expected, value)


# -- the lock table ------------------------------------------------------------------


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


class LockScopeTests(unittest.TestCase):
    def test_covers(self):
        zero, infinity = a_lock(("a",)), a_lock(("a",), depth="infinity")
        self.assertTrue(zero.covers(("a",)))
        self.assertFalse(zero.covers(("a", "b")))
        self.assertTrue(infinity.covers(["a", "b", "c"]))
        self.assertFalse(infinity.covers(("ab",)))
        self.assertFalse(infinity.covers(()))
        self.assertTrue(a_lock((), depth="infinity").covers(("x", "y")))

    def test_below(self):
        lock = a_lock(("a", "b"))
        self.assertTrue(lock.below(("a",)))
        self.assertTrue(lock.below(("a", "b")))
        self.assertFalse(lock.below(("a", "b"), strict=True))
        self.assertTrue(lock.below(()))
        self.assertFalse(lock.below(("b",)))

    def test_conflicts(self):
        ex, sh = "exclusive", "shared"
        cases = [
            (a_lock(("a",), sh), a_lock(("a",), sh), False),
            (a_lock(("a",), sh), a_lock(("a",), ex), True),
            (a_lock(("a",), ex), a_lock(("a",), sh), True),
            (a_lock(("a",), ex, "infinity"), a_lock(("a", "b"), ex), True),
            (a_lock(("a", "b"), ex), a_lock(("a",), ex, "infinity"), True),
            (a_lock(("a",), ex, "0"), a_lock(("a", "b"), ex), False),  # depth 0: members free
            (a_lock(("a", "b"), ex), a_lock(("a",), ex, "0"), False),
            (a_lock(("a",), ex), a_lock(("b",), ex), False),
        ]
        for held, wanted, expected in cases:
            self.assertEqual(held.conflicts(wanted), expected, (held, wanted))


class LockTableTests(unittest.TestCase):
    def setUp(self):
        self.root = os.path.abspath(self.mktemp())
        self.box = os.path.join(self.root, "cell1", "box1")
        os.makedirs(self.box)
        self.clock = Clock()
        self.table = LockTable(self.root, clock=self.clock)

    def add(self, table, lock):
        with table.hold("cell1", "box1", exclusive=True) as held:
            held.add(lock)

    def test_empty_box(self):
        self.assertEqual(self.table.read("cell1", "box1"), [])
        with self.table.hold("cell1", "box1") as held:
            self.assertEqual(held.locks, [])
        self.assertFalse(os.path.exists(os.path.join(self.box, store.TABLE)))

    def test_written_and_read_back(self):
        lock = a_lock(("a", "日本語.txt"), expires=2000.0)
        self.add(self.table, lock)
        self.assertEqual(self.table.read("cell1", "box1"), [lock])
        other = LockTable(self.root, clock=self.clock)  # another process: its own cache
        self.assertEqual(other.read("cell1", "box1"), [lock])
        self.assertEqual(sorted(os.listdir(self.box)), sorted([store.TABLE_LOCK, store.TABLE]))

    def test_a_shared_hold_cannot_change_the_table(self):
        with self.assertRaises(RuntimeError):
            with self.table.hold("cell1", "box1") as held:
                held.add(a_lock())
        self.assertEqual(self.table.read("cell1", "box1"), [])

    def test_an_exception_writes_nothing(self):
        with self.assertRaises(ZeroDivisionError):
            with self.table.hold("cell1", "box1", exclusive=True) as held:
                held.add(a_lock())
                1 / 0
        self.assertEqual(self.table.read("cell1", "box1"), [])

    def test_exclusive_only_when_asked(self):
        self.add(self.table, a_lock(("a",), expires=2000.0))
        with self.table.hold("cell1", "box1",
                             lambda locks: any(lk.root == ("a",) for lk in locks)) as held:
            self.assertTrue(held.exclusive)
            held.drop(lambda lk: True)
        self.assertEqual(self.table.read("cell1", "box1"), [])
        with self.table.hold("cell1", "box1", lambda locks: bool(locks)) as held:
            self.assertFalse(held.exclusive)

    def test_expired_locks_ignored_then_pruned(self):
        self.add(self.table, a_lock(("old",), expires=1060.0))
        self.clock.now = 1059.9
        self.assertEqual(len(self.table.read("cell1", "box1")), 1)
        self.clock.now = 1060.0
        self.assertEqual(self.table.read("cell1", "box1"), [])
        with open(os.path.join(self.box, store.TABLE), "rb") as f:
            self.assertIn(b'"old"', f.read())  # still on disk until the next change
        self.add(self.table, a_lock(("new",), expires=2000.0))
        with open(os.path.join(self.box, store.TABLE), "rb") as f:
            data = f.read()
        self.assertNotIn(b'"old"', data)
        self.assertIn(b'"new"', data)

    def test_a_leftover_temporary_file_is_ignored(self):
        lock = a_lock(expires=2000.0)
        self.add(self.table, lock)
        # a crash while the next table was being written
        with open(os.path.join(self.box, store.TABLE_TMP), "wb") as f:
            f.write(b'{"format": 1, "locks": [{"tok')
        fresh = LockTable(self.root, clock=self.clock)
        self.assertEqual(fresh.read("cell1", "box1"), [lock])
        second = a_lock(("b",), expires=2000.0)
        self.add(fresh, second)
        self.assertEqual(LockTable(self.root, clock=self.clock).read("cell1", "box1"),
                         [lock, second])
        self.assertFalse(os.path.exists(os.path.join(self.box, store.TABLE_TMP)))

    def test_changes_of_another_table_object_are_seen(self):
        other = LockTable(self.root, clock=self.clock)
        first = a_lock(("a",), expires=2000.0)
        self.add(self.table, first)
        self.assertEqual(other.read("cell1", "box1"), [first])
        with other.hold("cell1", "box1", exclusive=True) as held:
            held.drop(lambda lk: True)
            held.add(a_lock(("b",), expires=2000.0))
        self.assertEqual([lk.root for lk in self.table.read("cell1", "box1")], [("b",)])

    def test_corrupt_table(self):
        for data in (b"not json", b'{"format": 2, "locks": []}', b'{"format": 1}',
                     b'{"format": 1, "locks": [{"token": "x"}]}', b"[]", b"\xff"):
            with open(os.path.join(self.box, store.TABLE), "wb") as f:
                f.write(data)
            with self.assertRaises(store.CorruptLockTable, msg=data):
                LockTable(self.root).read("cell1", "box1")


# -- over HTTP ----------------------------------------------------------------------

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


class LockTests(LockTestCase):
    @defer.inlineCallbacks
    def test_lock_answer(self):
        answer = yield self.lock("a.txt", headers={"Timeout": "Second-600"})
        self.assertEqual(answer.header("content-type"), "application/xml; charset=utf-8")
        doc = answer.xml()
        self.assertEqual(doc.tag, D + "prop")
        [active] = doc.findall("%slockdiscovery/%sactivelock" % (D, D))
        self.assertIsNotNone(active.find("%slocktype/%swrite" % (D, D)))
        self.assertIsNotNone(active.find("%slockscope/%sexclusive" % (D, D)))
        self.assertEqual(active.findtext(D + "depth"), "infinity")  # the default
        self.assertEqual(active.findtext(D + "timeout"), "Second-600")
        self.assertEqual(active.findtext("%slocktoken/%shref" % (D, D)), answer.token)
        self.assertEqual(active.findtext("%slockroot/%shref" % (D, D)), BOX + "a.txt")
        # the owner comes back as it was sent: children, attributes, text
        owner = active.find(D + "owner")
        self.assertEqual(owner.findtext(D + "href"), "mailto:me@example.org")
        self.assertEqual(owner.find("{urn:x}who").attrib, {"a": "1"})
        self.assertEqual(owner.find("{urn:x}who").text, "Me & co")
        self.assertEqual(owner.find("{urn:x}who").tail, " tail")
        self.assertTrue(answer.token.startswith("urn:uuid:"))

    @defer.inlineCallbacks
    def test_owner_is_optional_and_prefixes_are_normalised(self):
        answer = yield self.lock("a.txt", owner="")
        self.assertIsNone(answer.xml().find(".//%sowner" % D))
        yield self.request("UNLOCK", BOX + "a.txt", headers={"Lock-Token": "<%s>" % answer.token})
        body = (b'<lockinfo xmlns="DAV:"><lockscope><shared/></lockscope><locktype><write/>'
                b'</locktype><owner>litmus test suite</owner></lockinfo>')
        answer = yield self.request("LOCK", BOX + "a.txt", body)
        self.assertEqual(answer.code, 200, answer.body)
        self.assertIn(b"<D:owner xmlns:D=\"DAV:\">litmus test suite</D:owner>", answer.body)
        self.assertNotIn(b'xmlns="DAV:"', answer.body)

    @defer.inlineCallbacks
    def test_timeouts(self):
        maximum = self.config.max_lock_timeout
        cases = {"Second-100": "Second-100", "Infinite": "Second-%d" % maximum,
                 "Second-99999999999": "Second-%d" % maximum, None: "Second-%d" % maximum,
                 "Extension-9, Second-30": "Second-30", "Infinite, Second-5": "Second-%d" % maximum,
                 "Second-0": "Second-1", "Second-" + "9" * 5000: "Second-%d" % maximum,
                 "garbage": "Second-%d" % maximum, "Second-²": "Second-%d" % maximum}
        for i, (value, granted) in enumerate(cases.items()):
            path = "t%d.txt" % i
            answer = yield self.lock(path, headers={} if value is None else {"Timeout": value},
                                     status=201)
            self.assertEqual(answer.xml().findtext(".//%stimeout" % D), granted, value)

    @defer.inlineCallbacks
    def test_depth(self):
        answer = yield self.lock("col", depth="0")
        self.assertEqual(answer.xml().findtext(".//%sdepth" % D), "0")
        answer = yield self.lock("a.txt", depth="Infinity")
        self.assertEqual(answer.xml().findtext(".//%sdepth" % D), "infinity")
        answer = yield self.lock("col/m.txt", depth="1", status=400)
        self.assertError(answer, 400, "PR400-DV-0009")

    @defer.inlineCallbacks
    def test_bad_bodies(self):
        bodies = {
            b"<not-xml": "PR400-DV-0001",
            b'<!DOCTYPE x [<!ENTITY e "x">]><D:lockinfo xmlns:D="DAV:"/>': "PR400-DV-0001",
            b'<D:propfind xmlns:D="DAV:"/>': "PR400-DV-0002",
            b'<D:lockinfo xmlns:D="DAV:"><D:locktype><D:write/></D:locktype></D:lockinfo>':
                "PR400-DV-0002",
            b'<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope></D:lockinfo>':
                "PR400-DV-0002",
            lockinfo(locktype="<D:read/>"): "PR400-DV-0002",
            lockinfo(scope="both"): "PR400-DV-0002",
            b'<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/><D:shared/></D:lockscope>'
            b"<D:locktype><D:write/></D:locktype></D:lockinfo>": "PR400-DV-0002",
        }
        for body, code in bodies.items():
            answer = yield self.request("LOCK", BOX + "a.txt", body)
            self.assertError(answer, 400, code)
        self.assertEqual((yield self.discovered("a.txt")), {BOX + "a.txt": []})

    @defer.inlineCallbacks
    def test_unknown_elements_ignored(self):
        body = (b'<D:lockinfo xmlns:D="DAV:" xmlns:x="urn:x"><x:extra/><D:lockscope><D:shared/>'
                b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>")
        answer = yield self.request("LOCK", BOX + "a.txt", body)
        self.assertEqual(answer.code, 200, answer.body)

    @defer.inlineCallbacks
    def test_box_and_service_collections_take_locks(self):
        made = yield self.request("MKCOL", BOX + "svc", SERVICE_MKCOL,
                                  {"Content-Type": "application/xml"})
        self.assertEqual(made.code, 201)
        answer = yield self.lock("svc/__src", depth="0")
        put = yield self.request("PUT", BOX + "svc/__src/a.js", b"x",
                                 {"Content-Type": "text/javascript"})
        self.assertLocked(put, BOX + "svc/__src/")
        put = yield self.request("PUT", BOX + "svc/__src/a.js", b"x",
                                 dict(with_token(answer.token, BOX + "svc/__src/"),
                                      **{"Content-Type": "text/javascript"}))
        self.assertEqual(put.code, 201, put.body)
        # depth infinity would reach the exclusive lock of __src
        yield self.lock("svc", status=423)
        answer = yield self.lock("svc", depth="0")
        patch = yield self.request("PROPPATCH", BOX + "svc", proppatch_body("<z:a>1</z:a>"))
        self.assertLocked(patch, BOX + "svc/")
        answer = yield self.lock("", depth="0")  # the box itself
        self.assertEqual(answer.xml().findtext(".//%slockroot/%shref" % (D, D)), BOX)
        self.assertLocked((yield self.request("MKCOL", BOX + "new")), BOX)


class LiveProperties(LockTestCase):
    @defer.inlineCallbacks
    def test_lockdiscovery_and_supportedlock(self):
        answer = yield self.request("PROPFIND", BOX + "a.txt", PROPNAME_LOCKS, {"Depth": "0"})
        self.assertEqual(answer.code, 207)
        prop = answer.xml().find(".//%spropstat/%sprop" % (D, D))
        self.assertEqual(len(prop.find(D + "lockdiscovery")), 0)
        entries = prop.findall("%ssupportedlock/%slockentry" % (D, D))
        self.assertEqual(sorted(etree.QName(e.find(D + "lockscope")[0]).localname
                                for e in entries), ["exclusive", "shared"])
        for entry in entries:
            self.assertIsNotNone(entry.find("%slocktype/%swrite" % (D, D)))
        lock = yield self.lock("col")
        found = yield self.discovered("col", "1")
        self.assertEqual(sorted(found), [BOX + "col/", BOX + "col/m.txt"])
        for href, active in found.items():
            self.assertEqual([a.findtext("%slocktoken/%shref" % (D, D)) for a in active],
                             [lock.token], href)
            self.assertEqual(active[0].findtext("%slockroot/%shref" % (D, D)), BOX + "col/")
        self.assertEqual((yield self.discovered("a.txt")), {BOX + "a.txt": []})
        # allprop: lockdiscovery, not supportedlock (docs/conformance.md); by include, both
        for body, supported in ((b"", False), (b'<D:propfind xmlns:D="DAV:"><D:allprop/>'
                                               b"<D:include><D:supportedlock/></D:include>"
                                               b"</D:propfind>", True)):
            answer = yield self.request("PROPFIND", BOX + "col/m.txt", body, {"Depth": "0"})
            doc = answer.xml()
            self.assertEqual(doc.findtext(".//%sactivelock/%slocktoken/%shref" % (D, D, D)),
                             lock.token)
            self.assertEqual(doc.find(".//%ssupportedlock" % D) is not None, supported)
        answer = yield self.request("PROPFIND", BOX + "col/m.txt",
                                    b'<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>',
                                    {"Depth": "0"})
        names = {el.tag for el in answer.xml().find(".//%sprop" % D)}
        self.assertLessEqual({D + "lockdiscovery", D + "supportedlock"}, names)
        self.assertNotIn(lock.token.encode(), answer.body)

    @defer.inlineCallbacks
    def test_protected(self):
        yield self.lock("a.txt")
        for name in ("lockdiscovery", "supportedlock"):
            body = ('<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:%s/></D:prop></D:set>'
                    "</D:propertyupdate>" % name).encode()
            for path in ("col", "col/m.txt"):
                answer = yield self.request("PROPPATCH", BOX + path, body)
                self.assertEqual(answer.code, 207, answer.body)
                self.assertIsNotNone(answer.xml().find(
                    ".//%serror/%scannot-modify-protected-property" % (D, D)))


class WritesOnLockedResources(LockTestCase):
    """RFC 4918 §7.5: every write needs the lock token in If (else 423 with
    D:lock-token-submitted); reads and COPY from a locked resource do not."""

    @defer.inlineCallbacks
    def test_a_locked_file(self):
        lock = yield self.lock("a.txt")
        href = BOX + "a.txt"
        attempts = [
            ("PUT", "a.txt", b"new", {}),
            ("PROPPATCH", "a.txt", proppatch_body("<z:a>1</z:a>"), {}),
            ("DELETE", "a.txt", b"", {}),
            ("MOVE", "a.txt", b"", {"Destination": BOX + "moved.txt"}),
            ("COPY", "col/m.txt", b"", {"Destination": BOX + "a.txt"}),  # onto it
            ("MOVE", "col/m.txt", b"", {"Destination": BOX + "a.txt"}),
            ("LOCK", "a.txt", lockinfo("shared"), {}),
        ]
        for method, path, body, headers in attempts:
            answer = yield self.request(method, BOX + path, body, headers)
            if method == "LOCK":
                self.assertEqual(answer.code, 423, answer.body)
                self.assertEqual(answer.xml().findtext(PCODE), "PR423-DV-0002")
                self.assertEqual(answer.xml().findtext(
                    "%sno-conflicting-lock/%shref" % (D, D)), href)
            else:
                self.assertLocked(answer, href)
        # nothing changed
        self.assertEqual((yield self.request("GET", BOX + "a.txt")).body, b"a")
        self.assertEqual((yield self.status("PROPFIND", "col/m.txt", headers={"Depth": "0"})), 207)
        # reads, and COPY from it, need no token
        self.assertEqual((yield self.status("GET", "a.txt")), 200)
        self.assertEqual((yield self.status("PROPFIND", "a.txt", headers={"Depth": "0"})), 207)
        self.assertEqual((yield self.status("COPY", "a.txt", headers={
            "Destination": BOX + "copy.txt"})), 201)
        self.assertEqual((yield self.discovered("copy.txt")), {BOX + "copy.txt": []})
        # with the token they all work
        token = with_token(lock.token)
        self.assertEqual((yield self.status("PUT", "a.txt", b"new", token)), 204)
        self.assertEqual((yield self.status("PROPPATCH", "a.txt", proppatch_body(
            "<z:a>1</z:a>"), token)), 207)
        # an untagged list is about the request URL (the source here): the
        # destination's token is submitted tagged with it
        self.assertEqual((yield self.status("COPY", "col/m.txt", headers=dict(
            token, Destination=BOX + "a.txt"))), 412)
        self.assertEqual((yield self.status("COPY", "col/m.txt", headers=dict(
            with_token(lock.token, BOX + "a.txt"), Destination=BOX + "a.txt"))), 204)
        self.assertEqual((yield self.request("GET", BOX + "a.txt")).body, b"m")

    @defer.inlineCallbacks
    def test_a_tagged_token_also_counts(self):
        lock = yield self.lock("a.txt")
        for tag in (BOX + "a.txt", "http://elsewhere.example" + BOX + "a.txt"):
            answer = yield self.request("PUT", BOX + "a.txt", b"x", with_token(lock.token, tag))
            self.assertEqual(answer.code, 204, answer.body)

    @defer.inlineCallbacks
    def test_a_depth_0_collection_lock(self):
        """It guards the membership, not the members' content."""
        lock = yield self.lock("col", depth="0")
        href = BOX + "col/"
        self.assertLocked((yield self.request("PUT", BOX + "col/new.txt", b"x")), href)
        self.assertLocked((yield self.request("MKCOL", BOX + "col/sub")), href)
        self.assertLocked((yield self.request("DELETE", BOX + "col/m.txt")), href)
        self.assertLocked((yield self.request("MOVE", BOX + "a.txt", headers={
            "Destination": BOX + "col/a.txt"})), href)
        self.assertLocked((yield self.request("LOCK", BOX + "col/new.txt", lockinfo())), href)
        self.assertEqual((yield self.status("PUT", "col/m.txt", b"changed")), 204)
        self.assertEqual((yield self.status("PROPPATCH", "col/m.txt", proppatch_body(
            "<z:a>1</z:a>"))), 207)
        self.assertEqual((yield self.status("PUT", "col/new.txt", b"x",
                                            with_token(lock.token, BOX + "col/"))), 201)
        # RFC 4918 §10.4.4: an untagged list is about the request URL, which
        # a depth-0 lock on its collection does not cover
        self.assertEqual((yield self.status("MKCOL", "col/sub", headers=with_token(
            lock.token))), 412)
        self.assertEqual((yield self.status("MKCOL", "col/sub", headers=with_token(
            lock.token, BOX + "col"))), 201)

    @defer.inlineCallbacks
    def test_a_depth_infinity_lock_covers_members_made_later(self):
        lock = yield self.lock("col")
        tagged = with_token(lock.token, self.url(BOX + "col/"))
        self.assertEqual((yield self.status("MKCOL", "col/later", headers=tagged)), 201)
        self.assertEqual((yield self.status("PUT", "col/later/deep.txt", b"x", tagged)), 201)
        href = BOX + "col/"
        self.assertLocked((yield self.request("PUT", BOX + "col/later/deep.txt", b"y")), href)
        self.assertLocked((yield self.request("PROPPATCH", BOX + "col/later/deep.txt",
                                              proppatch_body("<z:a>1</z:a>"))), href)
        self.assertLocked((yield self.request("DELETE", BOX + "col/later")), href)
        found = yield self.discovered("col/later/deep.txt")
        [active] = found[BOX + "col/later/deep.txt"]
        self.assertEqual(active.findtext("%slockroot/%shref" % (D, D)), href)
        # no new lock inside an exclusive one, even for its holder
        answer = yield self.request("LOCK", BOX + "col/m.txt", lockinfo(), tagged)
        self.assertEqual(answer.code, 423)
        self.assertEqual(answer.xml().findtext(PCODE), "PR423-DV-0002")

    @defer.inlineCallbacks
    def test_delete_of_a_tree_with_a_locked_member(self):
        member = yield self.lock("col/m.txt")
        answer = yield self.request("DELETE", BOX + "col", headers={"X-Personium-Recursive": "true"})
        self.assertLocked(answer, BOX + "col/m.txt")
        answer = yield self.request("MOVE", BOX + "col", headers={"Destination": BOX + "c2"})
        self.assertLocked(answer, BOX + "col/m.txt")
        answer = yield self.request("DELETE", BOX + "col", headers=dict(
            with_token(member.token, BOX + "col/m.txt"), **{"X-Personium-Recursive": "true"}))
        self.assertEqual(answer.code, 204, answer.body)
        self.assertEqual(self.server.store.locks.read("cell1", "box1"), [])

    @defer.inlineCallbacks
    def test_the_token_of_another_principal_does_not_count(self):
        accounts = self.server.auth.accounts
        accounts.add_role("cell1", "editor")
        accounts.add_account("cell1", "me", "pw-me", ["editor"])
        yield self.request("ACL", BOX, acl_body([Ace("editor", frozenset({"all"}))], CELL_URL))
        me = {"Authorization": "Bearer " + self.server.auth.tokens.issue("cell1", "me",
                                                                           ["editor"])}
        lock = yield self.lock("a.txt")  # the owner's lock
        answer = yield self.request("PUT", BOX + "a.txt", b"x", dict(with_token(lock.token), **me))
        self.assertLocked(answer, BOX + "a.txt")
        mine = yield self.lock("col/m.txt", headers=me)
        answer = yield self.request("PUT", BOX + "col/m.txt", b"x", with_token(mine.token))
        self.assertLocked(answer, BOX + "col/m.txt")
        answer = yield self.request("PUT", BOX + "col/m.txt", b"x", dict(with_token(mine.token),
                                                                          **me))
        self.assertEqual(answer.code, 204, answer.body)


class SharedAndExclusive(LockTestCase):
    @defer.inlineCallbacks
    def test_conflicts(self):
        first = yield self.lock("a.txt", "shared")
        second = yield self.lock("a.txt", "shared")
        self.assertNotEqual(first.token, second.token)
        answer = yield self.lock("a.txt", "exclusive", status=423)
        self.assertEqual(answer.xml().findtext(PCODE), "PR423-DV-0002")
        found = yield self.discovered("a.txt")
        self.assertEqual(sorted(a.findtext("%slocktoken/%shref" % (D, D))
                                for a in found[BOX + "a.txt"]),
                         sorted([first.token, second.token]))
        # either holder may write (one token per locked resource)
        for lock in (first, second):
            self.assertEqual((yield self.status("PUT", "a.txt", b"x", with_token(lock.token))),
                             204)
        self.assertLocked((yield self.request("PUT", BOX + "a.txt", b"x")), BOX + "a.txt")
        # an exclusive lock excludes a shared one
        yield self.lock("col/m.txt", "exclusive")
        yield self.lock("col/m.txt", "shared", status=423)

    @defer.inlineCallbacks
    def test_depth_infinity_against_members(self):
        yield self.lock("col/m.txt", "exclusive")
        answer = yield self.lock("col", "exclusive", status=423)  # infinity reaches m.txt
        self.assertEqual(answer.xml().findtext(".//%shref" % D), BOX + "col/m.txt")
        yield self.lock("col", "exclusive", depth="0")  # depth 0 does not
        yield self.lock("col", "shared", depth="infinity", status=423)


class RefreshTests(LockTestCase):
    @defer.inlineCallbacks
    def test_refresh_and_expiry(self):
        lock = yield self.lock("a.txt", headers={"Timeout": "Second-100"})
        self.clock.now += 90
        answer = yield self.request("LOCK", BOX + "a.txt", headers=dict(
            with_token(lock.token), Timeout="Second-100"))
        self.assertEqual(answer.code, 200, answer.body)
        self.assertIsNone(answer.header("lock-token"))
        active = answer.xml().find(".//%sactivelock" % D)
        self.assertEqual(active.findtext(D + "timeout"), "Second-100")
        self.assertEqual(active.findtext("%slocktoken/%shref" % (D, D)), lock.token)
        self.assertIsNotNone(active.find(D + "owner"))  # kept
        self.clock.now += 99
        self.assertLocked((yield self.request("PUT", BOX + "a.txt", b"x")), BOX + "a.txt")
        [active] = (yield self.discovered("a.txt"))[BOX + "a.txt"]
        self.assertEqual(active.findtext(D + "timeout"), "Second-1")
        self.clock.now += 1  # expired: no lock, no token needed
        self.assertEqual((yield self.discovered("a.txt")), {BOX + "a.txt": []})
        self.assertEqual((yield self.status("PUT", "a.txt", b"x")), 204)
        answer = yield self.request("LOCK", BOX + "a.txt", headers=with_token(lock.token))
        self.assertError(answer, 412, "PR412-DV-0003")
        # the next change of the table prunes it from the disk
        yield self.lock("col/m.txt")
        with open(os.path.join(self.data, "cell1", "box1", store.TABLE), "rb") as f:
            self.assertNotIn(lock.token.encode(), f.read())

    @defer.inlineCallbacks
    def test_refresh_keeps_the_granted_timeout_without_a_header(self):
        lock = yield self.lock("a.txt", headers={"Timeout": "Second-50"})
        self.clock.now += 40
        answer = yield self.request("LOCK", BOX + "a.txt", headers=with_token(lock.token))
        self.assertEqual(answer.xml().findtext(".//%stimeout" % D), "Second-50")

    @defer.inlineCallbacks
    def test_indirect_refresh_through_a_member(self):
        lock = yield self.lock("col", headers={"Timeout": "Second-60"})
        answer = yield self.request("LOCK", BOX + "col/m.txt", headers=dict(
            with_token(lock.token), Timeout="Second-3000"))
        self.assertEqual(answer.code, 200, answer.body)
        active = answer.xml().find(".//%sactivelock" % D)
        self.assertEqual(active.findtext("%slockroot/%shref" % (D, D)), BOX + "col/")
        self.assertEqual(active.findtext(D + "timeout"), "Second-3000")

    @defer.inlineCallbacks
    def test_refresh_refusals(self):
        lock = yield self.lock("a.txt")
        answer = yield self.request("LOCK", BOX + "a.txt")
        self.assertError(answer, 400, "PR400-DV-0010", "Header If is required.")
        answer = yield self.request("LOCK", BOX + "a.txt", headers={"If": '(["1-1"])'})
        self.assertError(answer, 400, "PR400-DV-0010")
        answer = yield self.request("LOCK", BOX + "a.txt", headers=with_token("urn:uuid:nope"))
        self.assertError(answer, 412, "PR412-DV-0003")
        # a lock on another resource does not refresh from here
        answer = yield self.request("LOCK", BOX + "col/m.txt", headers=with_token(lock.token))
        self.assertError(answer, 412, "PR412-DV-0003")


class UnlockTests(LockTestCase):
    def unlock(self, path, token, headers=None):
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Lock-Token"] = token
        return self.request("UNLOCK", BOX + path, headers=hdrs)

    @defer.inlineCallbacks
    def test_unlock(self):
        lock = yield self.lock("a.txt")
        answer = yield self.unlock("a.txt", "<%s>" % lock.token)
        self.assertEqual((answer.code, answer.body), (204, b""))
        self.assertEqual((yield self.status("PUT", "a.txt", b"x")), 204)
        answer = yield self.unlock("a.txt", "<%s>" % lock.token)
        self.assertEqual(answer.code, 409)
        doc = answer.xml()
        self.assertIsNotNone(doc.find(D + "lock-token-matches-request-uri"))
        self.assertEqual(doc.findtext(PCODE), "PR409-DV-0002")

    @defer.inlineCallbacks
    def test_through_a_member_of_a_depth_infinity_lock(self):
        lock = yield self.lock("col")
        answer = yield self.unlock("col/m.txt", "<%s>" % lock.token)
        self.assertEqual(answer.code, 204, answer.body)
        self.assertEqual(self.server.store.locks.read("cell1", "box1"), [])

    @defer.inlineCallbacks
    def test_refusals(self):
        lock = yield self.lock("a.txt")
        answer = yield self.unlock("a.txt", None)
        self.assertError(answer, 400, "PR400-DV-0010", "Header Lock-Token is required.")
        for bad in ("<a b>", "<>", "<<x>>", "  "):
            answer = yield self.unlock("a.txt", bad)
            self.assertEqual(answer.code, 400, bad)
        answer = yield self.unlock("a.txt", "<opaquelocktoken:foobar>")
        self.assertEqual(answer.code, 409)
        answer = yield self.unlock("col/m.txt", "<%s>" % lock.token)  # not in its scope
        self.assertEqual(answer.code, 409)
        answer = yield self.unlock("a.txt", lock.token)  # without <>: accepted
        self.assertEqual(answer.code, 204)

    @defer.inlineCallbacks
    def test_who_may_unlock(self):
        accounts = self.server.auth.accounts
        accounts.add_role("cell1", "editor")
        accounts.add_role("cell1", "admin")
        accounts.add_account("cell1", "me", "pw-me", ["editor"])
        accounts.add_account("cell1", "boss", "pw-boss", ["admin"])
        yield self.request("ACL", BOX, acl_body([
            Ace("editor", frozenset({"read", "write"})),
            Ace("admin", frozenset({"read", "write", "write-acl"}))], CELL_URL))

        def as_(name, roles):
            return {"Authorization": "Bearer " + self.server.auth.tokens.issue(
                "cell1", name, roles)}

        me, boss = as_("me", ["editor"]), as_("boss", ["admin"])
        lock = yield self.lock("a.txt")  # the owner's
        answer = yield self.unlock("a.txt", "<%s>" % lock.token, me)
        self.assertError(answer, 403, "PR403-AU-0002")
        answer = yield self.unlock("a.txt", "<%s>" % lock.token, boss)  # write-acl
        self.assertEqual(answer.code, 204, answer.body)
        mine = yield self.lock("a.txt", headers=me)
        answer = yield self.unlock("a.txt", "<%s>" % mine.token, me)
        self.assertEqual(answer.code, 204, answer.body)
        mine = yield self.lock("a.txt", headers=me)
        answer = yield self.request("UNLOCK", BOX + "a.txt", anonymous=True,
                                    headers={"Lock-Token": "<%s>" % mine.token})
        self.assertError(answer, 401, "PR401-AU-0001")
        self.assertEqual(len(self.server.store.locks.read("cell1", "box1")), 1)


class LockPrivileges(LockTestCase):
    """LOCK of a resource needs write-content on it (RFC 3744: DAV:write
    covers LOCK), of an unmapped URL bind on its collection; UNLOCK
    write-content."""

    @defer.inlineCallbacks
    def test_privileges(self):
        accounts = self.server.auth.accounts
        for role in ("reader", "binder", "writer"):
            accounts.add_role("cell1", role)
            accounts.add_account("cell1", role, "pw", [role])
        yield self.request("ACL", BOX, acl_body([
            Ace("reader", frozenset({"read"})), Ace("binder", frozenset({"read", "bind"})),
            Ace("writer", frozenset({"read", "write-content"}))], CELL_URL))

        def as_(role):
            return {"Authorization": "Bearer " + self.server.auth.tokens.issue(
                "cell1", role, [role])}

        cases = [("reader", "a.txt", 403), ("binder", "a.txt", 403), ("writer", "a.txt", 200),
                 ("reader", "new.txt", 403), ("writer", "new.txt", 403),
                 ("binder", "new.txt", 201)]
        for role, path, status in cases:
            answer = yield self.request("LOCK", BOX + path, lockinfo("shared"), as_(role))
            self.assertEqual(answer.code, status, (role, path, answer.body))
        answer = yield self.request("LOCK", BOX + "a.txt", lockinfo("shared"), anonymous=True)
        self.assertError(answer, 401, "PR401-AU-0001")


class IfHeaderOverHttp(LockTestCase):
    @defer.inlineCallbacks
    def test_malformed_is_400(self):
        for method, path in (("PUT", "a.txt"), ("GET", "a.txt"), ("PROPFIND", "a.txt"),
                             ("DELETE", "a.txt"), ("LOCK", "a.txt"), ("MKCOL", "new"),
                             ("PROPPATCH", "a.txt"), ("COPY", "a.txt"), ("UNLOCK", "a.txt")):
            headers = {"If": "(<not a token>", "Depth": "0", "Destination": BOX + "b.txt",
                       "Lock-Token": "<urn:x>"}
            answer = yield self.request(method, BOX + path, proppatch_body("<z:a/>")
                                        if method == "PROPPATCH" else b"", headers)
            self.assertError(answer, 400, "PR400-DV-0009")
            self.assertIn("If", answer.json()["message"]["value"])

    @defer.inlineCallbacks
    def test_conditions_without_locks(self):
        etag = (yield self.request("GET", BOX + "a.txt")).header("etag")
        ok = ['(["%s"])' % etag.strip('"').join('""')[1:-1], "(Not <DAV:no-lock>)",
              '(<DAV:no-lock>) (["%s"])' % etag[1:-1], "<%s> ([%s])" % (BOX + "a.txt", etag),
              "<%s> (Not [%s])" % (BOX + "col/", etag), '([W/%s])' % etag]
        for value in ok:
            answer = yield self.request("GET", BOX + "a.txt", headers={"If": value})
            self.assertEqual(answer.code, 200, value)
        bad = ['(["0-0"])', "(<DAV:no-lock>)", "(Not [%s])" % etag,
               "<%s> ([%s])" % (BOX + "col/", etag), "<http://other/cell1/box1/nothing> ([%s])"
               % etag, "(<urn:uuid:nope>)"]
        for value in bad:
            for method in ("GET", "PUT", "PROPFIND", "DELETE", "PROPPATCH"):
                body = proppatch_body("<z:a/>") if method == "PROPPATCH" else b""
                answer = yield self.request(method, BOX + "a.txt", body,
                                            {"If": value, "Depth": "0"})
                self.assertError(answer, 412, "PR412-DV-0003")
        self.assertEqual((yield self.request("GET", BOX + "a.txt")).body, b"a")
        # If-Match keeps its own code
        answer = yield self.request("PUT", BOX + "a.txt", b"x", {"If-Match": '"0-0"'})
        self.assertError(answer, 412, "PR412-DV-0001")
        answer = yield self.request("PUT", BOX + "a.txt", b"x", {"If-Match": etag,
                                                                "If": "(Not <DAV:no-lock>)"})
        self.assertEqual(answer.code, 204)

    @defer.inlineCallbacks
    def test_a_false_header_is_412_before_the_lock_is_423(self):
        lock = yield self.lock("a.txt")
        etag = (yield self.request("GET", BOX + "a.txt")).header("etag")
        answer = yield self.request("PUT", BOX + "a.txt", b"x", {"If": "(<DAV:no-lock> [%s])"
                                                                 % etag})
        self.assertError(answer, 412, "PR412-DV-0003")
        # true (the second list), but the token is not the lock's: 423
        answer = yield self.request("PUT", BOX + "a.txt", b"x", {
            "If": "(<%sx>) (Not <DAV:no-lock>)" % lock.token})
        self.assertLocked(answer, BOX + "a.txt")
        answer = yield self.request("PUT", BOX + "a.txt", b"x", {
            "If": "(<%s> [%s]) (Not <DAV:no-lock> [%s])" % (lock.token, etag, etag)})
        self.assertEqual(answer.code, 204)
        # a token matches every URL in its lock's scope, the unmapped ones too
        col = yield self.lock("col")
        answer = yield self.request("PUT", BOX + "col/new.txt", b"x", with_token(col.token))
        self.assertEqual(answer.code, 201, answer.body)

    @defer.inlineCallbacks
    def test_hostile_tags(self):
        """A tag outside the box, or naming what no resource can be, is an
        unmapped URL (no entity tag); the query and fragment are not the path."""
        etag = (yield self.request("GET", BOX + "a.txt")).header("etag")
        for tag in (BOX + "../../etc/passwd", BOX + "..", BOX + "a%00b", BOX + "%ff", "/",
                    "http://h", BOX + ":locks.json", BOX + "%3Alocks.json", "mailto:x@y",
                    "/cell1/box2/a.txt", BOX + "col/../a.txt"):
            answer = yield self.request("GET", BOX + "a.txt", headers={
                "If": "<%s> ([%s])" % (tag, etag)})
            self.assertError(answer, 412, "PR412-DV-0003")
        for tag in (self.url(BOX + "a.txt?q=1#f"), BOX + "a.txt/", BOX + "%61.txt"):
            answer = yield self.request("GET", BOX + "a.txt", headers={
                "If": "<%s> ([%s])" % (tag, etag)})
            self.assertEqual(answer.code, 200, tag)


class LocksFollowTheTree(LockTestCase):
    """DELETE and MOVE take a resource's locks away; COPY copies none; a
    MOVE destination is not locked by the source's lock."""

    @defer.inlineCallbacks
    def test_delete(self):
        lock = yield self.lock("a.txt")
        self.assertEqual((yield self.status("DELETE", "a.txt", headers=with_token(lock.token))),
                         204)
        self.assertEqual(self.server.store.locks.read("cell1", "box1"), [])
        self.assertEqual((yield self.status("PUT", "a.txt", b"again")), 201)
        self.assertEqual((yield self.discovered("a.txt")), {BOX + "a.txt": []})

    @defer.inlineCallbacks
    def test_move(self):
        lock = yield self.lock("a.txt")
        answer = yield self.request("MOVE", BOX + "a.txt", headers=dict(
            with_token(lock.token), Destination=BOX + "b.txt"))
        self.assertEqual(answer.code, 201, answer.body)
        self.assertEqual((yield self.discovered("b.txt")), {BOX + "b.txt": []})
        self.assertEqual((yield self.status("PUT", "b.txt", b"x")), 204)
        self.assertEqual((yield self.status("PUT", "a.txt", b"x")), 201)
        self.assertEqual(self.server.store.locks.read("cell1", "box1"), [])

    @defer.inlineCallbacks
    def test_move_of_a_collection_with_locked_members(self):
        member = yield self.lock("col/m.txt")
        col = yield self.lock("col", depth="0")
        headers = {"If": "<%s> (<%s>) <%s> (<%s>)" % (BOX + "col/m.txt", member.token,
                                                      BOX + "col/", col.token),
                   "Destination": BOX + "moved"}
        answer = yield self.request("MOVE", BOX + "col", headers=headers)
        self.assertEqual(answer.code, 201, answer.body)
        self.assertEqual(self.server.store.locks.read("cell1", "box1"), [])
        self.assertEqual((yield self.status("PUT", "moved/m.txt", b"x")), 204)

    @defer.inlineCallbacks
    def test_moved_into_a_locked_collection(self):
        col = yield self.lock("col")
        answer = yield self.request("MOVE", BOX + "a.txt", headers={"Destination": BOX + "col/a"})
        self.assertLocked(answer, BOX + "col/")
        answer = yield self.request("MOVE", BOX + "a.txt", headers=dict(
            with_token(col.token, BOX + "col/"), Destination=BOX + "col/a"))
        self.assertEqual(answer.code, 201, answer.body)
        self.assertLocked((yield self.request("PUT", BOX + "col/a", b"x")), BOX + "col/")

    @defer.inlineCallbacks
    def test_overwrite_keeps_the_destination_lock(self):
        lock = yield self.lock("a.txt")
        answer = yield self.request("MOVE", BOX + "col/m.txt", headers=dict(
            with_token(lock.token, BOX + "a.txt"), Destination=BOX + "a.txt"))
        self.assertEqual(answer.code, 204, answer.body)
        self.assertEqual((yield self.request("GET", BOX + "a.txt")).body, b"m")
        self.assertLocked((yield self.request("PUT", BOX + "a.txt", b"x")), BOX + "a.txt")

    @defer.inlineCallbacks
    def test_copy_copies_no_lock(self):
        yield self.lock("col")
        answer = yield self.request("COPY", BOX + "col", headers={"Destination": BOX + "c2"})
        self.assertEqual(answer.code, 201, answer.body)
        found = yield self.discovered("c2", "1")
        self.assertEqual(found, {BOX + "c2/": [], BOX + "c2/m.txt": []})
        self.assertEqual((yield self.status("PUT", "c2/m.txt", b"x")), 204)


class UnmappedLock(LockTestCase):
    """RFC 4918 §7.3: LOCK of an unmapped URL makes an empty, locked file."""

    @defer.inlineCallbacks
    def test_empty_locked_file(self):
        answer = yield self.lock("new.js", status=201)
        self.assertRegex(answer.header("etag"), r'^"1-\d+"$')
        got = yield self.request("GET", BOX + "new.js")
        self.assertEqual((got.code, got.body), (200, b""))
        self.assertIn(got.header("content-type"), ("text/javascript", "application/javascript"))
        self.assertLocked((yield self.request("PUT", BOX + "new.js", b"x")), BOX + "new.js")
        answer = yield self.request("PUT", BOX + "new.js", b"x", with_token(answer.token))
        self.assertEqual(answer.code, 204)
        yield self.lock("noext", status=201)
        got = yield self.request("GET", BOX + "noext")
        self.assertEqual(got.header("content-type"), "application/octet-stream")

    @defer.inlineCallbacks
    def test_where_it_cannot(self):
        yield self.request("MKCOL", BOX + "svc", SERVICE_MKCOL, {"Content-Type": "application/xml"})
        answer = yield self.request("LOCK", BOX + "svc/__src/new.js", lockinfo())
        self.assertError(answer, 405, "PR405-MC-0001")
        self.assertEqual(answer.header("allow"), "OPTIONS, PUT")
        answer = yield self.request("LOCK", BOX + "svc/run", lockinfo())
        self.assertError(answer, 501, "PR501-MC-0002")
        answer = yield self.request("LOCK", BOX + "missing/new.txt", lockinfo())
        self.assertError(answer, 409, "PR409-DV-0001")
        answer = yield self.request("LOCK", BOX + "bad:name", lockinfo())
        self.assertError(answer, 403, "PR403-DV-0004")
        answer = yield self.request("UNLOCK", BOX + "nothing", headers={"Lock-Token": "<urn:x>"})
        self.assertError(answer, 404, "PR404-DV-0001")
        self.assertEqual(sorted(os.listdir(os.path.join(self.data, "cell1", "box1",
                                                        "svc", "__src"))), [":props.xml"])

    @defer.inlineCallbacks
    def test_members_limit(self):
        self.server.config = Config(durable=False, max_members=2)
        answer = yield self.request("LOCK", BOX + "third.txt", lockinfo())
        self.assertError(answer, 400, "PR400-DV-0007")


class Rfc4918Semantics(LocksFollowTheTree, UnmappedLock):
    config = Config(durable=False, collection_semantics="rfc4918")

    @defer.inlineCallbacks
    def test_delete_of_a_locked_tree(self):
        yield self.lock("col/m.txt")
        self.assertLocked((yield self.request("DELETE", BOX + "col")), BOX + "col/m.txt")


class OptionsCorsAndLog(LockTestCase):
    @defer.inlineCallbacks
    def test_options(self):
        for path in ("", "a.txt", "col/", "new.txt"):
            answer = yield self.request("OPTIONS", BOX + path)
            self.assertEqual(answer.header("dav"), "1, 2", path)
            self.assertIn("LOCK", answer.header("allow"))

    @defer.inlineCallbacks
    def test_cors(self):
        answer = yield self.request("OPTIONS", BOX + "a.txt", anonymous=True, headers={
            "Origin": "http://app.example", "Access-Control-Request-Method": "LOCK"})
        self.assertEqual(answer.code, 200)
        methods = [m.strip() for m in answer.header("access-control-allow-methods").split(",")]
        self.assertLessEqual({"LOCK", "UNLOCK"}, set(methods))
        allowed = [h.strip().lower() for h in
                   answer.header("access-control-allow-headers").split(",")]
        self.assertLessEqual({"if", "lock-token", "timeout"}, set(allowed))
        answer = yield self.lock("a.txt", headers={"Origin": "http://app.example"})
        exposed = [h.strip() for h in answer.header("access-control-expose-headers").split(",")]
        self.assertIn("Lock-Token", exposed)

    @defer.inlineCallbacks
    def test_event_log(self):
        from personium_dav.ops import eventlog

        lock = yield self.lock("a.txt", headers={"X-Personium-RequestKey": "lk"})
        yield self.lock("col", headers={"X-Personium-RequestKey": "lc"})
        yield self.lock("made.txt", status=201, headers={"X-Personium-RequestKey": "ln"})
        yield self.request("UNLOCK", BOX + "a.txt", headers={
            "Lock-Token": "<%s>" % lock.token, "X-Personium-RequestKey": "ul"})
        with open(os.path.join(self.data, "cell1", eventlog.DIRECTORY, eventlog.NAME)) as f:
            lines = [line.split(",") for line in f.read().splitlines()]
        found = {fields[2].strip('"'): (fields[6].strip('"'), fields[8].strip('"'))
                 for fields in lines}
        self.assertEqual(found["lk"], ("davfile.lock", "200"))
        self.assertEqual(found["lc"], ("davcol.lock", "200"))
        self.assertEqual(found["ln"], ("davfile.lock", "201"))
        self.assertEqual(found["ul"], ("davfile.unlock", "204"))


class TheTableIsNotAResource(LockTestCase):
    @defer.inlineCallbacks
    def test_never_reachable(self):
        yield self.lock("a.txt")
        names = set(os.listdir(os.path.join(self.data, "cell1", "box1")))
        self.assertLessEqual({store.TABLE, store.TABLE_LOCK}, names)
        for name in (store.TABLE, store.TABLE_LOCK, store.TABLE_TMP, "%3Alocks.json"):
            for method in ("GET", "PROPFIND", "DELETE", "UNLOCK"):
                answer = yield self.request(method, BOX + name, headers={
                    "Depth": "0", "Lock-Token": "<urn:x>"})
                self.assertEqual(answer.code, 404, (name, method, answer.body))
            for method in ("PUT", "MKCOL", "LOCK"):  # they would create it
                answer = yield self.request(method, BOX + name, b"x")
                self.assertError(answer, 403, "PR403-DV-0004")
            answer = yield self.request("COPY", BOX + "a.txt", headers={
                "Destination": BOX + name})
            self.assertError(answer, 403, "PR403-DV-0004")
        answer = yield self.request("PROPFIND", BOX, headers={"Depth": "1"})
        self.assertEqual([h.text for h in answer.xml().iterfind("%sresponse/%shref" % (D, D))],
                         [BOX, BOX + "a.txt", BOX + "col/"])
        with open(os.path.join(self.data, "cell1", "box1", store.TABLE), "rb") as f:
            self.assertIn(b'"a.txt"', f.read())  # untouched


class SharedDataRoot(LockTestCase):
    """Two servers on one data root (as --workers N has): a lock taken
    through one binds writes through the other; a crash's leftover
    temporary table is ignored."""

    def second(self):
        resource = makeResource(self.data, self.config)
        resource.server.store.locks.clock = self.clock
        return StubTreq(resource), resource.server

    @defer.inlineCallbacks
    def through(self, stub, method, path, body=b"", headers=None):
        saved, self.stub = self.stub, stub
        try:
            return (yield self.request(method, BOX + path, body, headers))
        finally:
            self.stub = saved

    @defer.inlineCallbacks
    def test_two_servers(self):
        other, server = self.second()
        self.assertIsNot(server.store.locks, self.server.store.locks)
        lock = yield self.lock("a.txt")
        self.assertLocked((yield self.through(other, "PUT", "a.txt", b"x")), BOX + "a.txt")
        answer = yield self.through(other, "PUT", "a.txt", b"x", with_token(lock.token))
        self.assertEqual(answer.code, 204)
        answer = yield self.through(other, "LOCK", "a.txt", lockinfo("shared"))
        self.assertEqual(answer.code, 423)
        answer = yield self.through(other, "UNLOCK", "a.txt", headers={
            "Lock-Token": "<%s>" % lock.token})
        self.assertEqual(answer.code, 204)
        self.assertEqual((yield self.status("PUT", "a.txt", b"y")), 204)
        answer = yield self.through(other, "LOCK", "col", lockinfo())
        self.assertEqual(answer.code, 200)
        self.assertLocked((yield self.request("DELETE", BOX + "col/m.txt")), BOX + "col/")

    @defer.inlineCallbacks
    def test_a_leftover_temporary_table(self):
        lock = yield self.lock("a.txt")
        box = os.path.join(self.data, "cell1", "box1")
        with open(os.path.join(box, store.TABLE_TMP), "wb") as f:
            f.write(b"{half a table")
        other, _ = self.second()  # a server started after the crash
        self.assertLocked((yield self.through(other, "PUT", "a.txt", b"x")), BOX + "a.txt")
        answer = yield self.through(other, "LOCK", "col", lockinfo())
        self.assertEqual(answer.code, 200, answer.body)
        self.assertFalse(os.path.exists(os.path.join(box, store.TABLE_TMP)))
        self.assertEqual(len(self.server.store.locks.read("cell1", "box1")), 2)
        self.assertEqual((yield self.status("PUT", "a.txt", b"x", with_token(lock.token))), 204)


class RealProcesses(unittest.TestCase):
    """Two ``twistd -n personium-dav`` processes on one data root."""

    timeout = 120

    @defer.inlineCallbacks
    def test_a_lock_binds_the_other_process(self):
        import http.client

        from personium_dav.store import provision
        from tests.realserver import RealServer, ownerHeaders

        data = os.path.abspath(self.mktemp())
        provision.create_box(data, "cell1", "box1")
        first = yield RealServer(self, data, "--relaxed").start()
        second = yield RealServer(self, data, "--relaxed").start()
        owner = ownerHeaders(data)

        def send(server, method, path, body=b"", headers=None):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            try:
                conn.request(method, BOX + path, body, dict(owner, **(headers or {})))
                response = conn.getresponse()
                return response.status, dict(response.getheaders()), response.read()
            finally:
                conn.close()

        self.assertEqual(send(first, "PUT", "doc.txt", b"one")[0], 201)
        status, headers, body = send(first, "LOCK", "doc.txt", lockinfo())
        self.assertEqual(status, 200, body)
        token = headers["Lock-Token"][1:-1]
        status, _, body = send(second, "PUT", "doc.txt", b"two")
        self.assertEqual(status, 423, body)
        self.assertIn(b"lock-token-submitted", body)
        self.assertEqual(send(second, "PUT", "doc.txt", b"two", with_token(token))[0], 204)
        self.assertEqual(send(second, "LOCK", "doc.txt", lockinfo("shared"))[0], 423)
        status, _, body = send(second, "PROPFIND", "doc.txt", PROPNAME_LOCKS, {"Depth": "0"})
        self.assertIn(token.encode(), body)
        self.assertEqual(send(second, "UNLOCK", "doc.txt", b"", {"Lock-Token": "<%s>" % token})[0],
                         204)
        self.assertEqual(send(first, "PUT", "doc.txt", b"three")[0], 204)
        self.assertEqual(send(first, "GET", "doc.txt")[2], b"three")


class TimeoutOption(unittest.TestCase):
    def test_max_lock_timeout(self):
        from twisted.python import usage

        from personium_dav.ops.tap import Options

        options = Options()
        options.parseOptions(["--max-lock-timeout", "600"])
        self.assertEqual(options.config().max_lock_timeout, 600)
        defaults = Options()
        defaults.parseOptions([])
        self.assertEqual(defaults.config().max_lock_timeout, Config().max_lock_timeout)
        for bad in ("0", "-5", "x"):
            with self.assertRaises(usage.UsageError):
                Options().parseOptions(["--max-lock-timeout", bad])


class TableFlock(LockTestCase):
    """A write holds the box's lock table shared from its check to its
    write: it waits while another process changes the table (a LOCK being
    granted holds it exclusive), and not while one only checks it."""

    def flock(self, mode):
        import fcntl

        fd = os.open(os.path.join(self.data, "cell1", "box1", store.TABLE_LOCK),
                     os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, mode)
        return fd

    @defer.inlineCallbacks
    def test_a_write_waits_for_a_change_of_the_table(self):
        import fcntl

        from twisted.internet import reactor, task

        fd = self.flock(fcntl.LOCK_EX)
        try:
            pending = self.request("PUT", BOX + "a.txt", b"waited")
            yield task.deferLater(reactor, 0.5, lambda: None)
            self.assertFalse(pending.called)
            self.assertEqual((yield self.request("GET", BOX + "a.txt")).body, b"a")
        finally:
            os.close(fd)
        answer = yield pending
        self.assertEqual(answer.code, 204, answer.body)
        self.assertEqual((yield self.request("GET", BOX + "a.txt")).body, b"waited")

    @defer.inlineCallbacks
    def test_writes_share_the_table(self):
        import fcntl

        fd = self.flock(fcntl.LOCK_SH)
        try:
            answer = yield self.request("PUT", BOX + "a.txt", b"x")
            self.assertEqual(answer.code, 204)
            answer = yield self.request("MKCOL", BOX + "c2")
            self.assertEqual(answer.code, 201)
        finally:
            os.close(fd)
