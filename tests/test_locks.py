"""WebDAV class 2: the If header (RFC 4918 §10.4), the lock table, LOCK and
UNLOCK (§9.10, §9.11), and what locks do to every other write (§7)."""
from twisted.trial import unittest

from personium_dav import ifheader
from personium_dav.ifheader import Condition, IfList

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

import os  # noqa: E402

from personium_dav.store import locks as store  # noqa: E402
from personium_dav.store.locks import Lock, LockTable  # noqa: E402


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
