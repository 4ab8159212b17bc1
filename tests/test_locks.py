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
