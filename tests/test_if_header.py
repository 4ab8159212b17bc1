"""The ``If`` header (RFC 4918 §10.4): its grammar, its evaluation, and over HTTP."""

from twisted.internet import defer
from twisted.trial import unittest

from personium_dav.dav import ifheader
from personium_dav.dav.ifheader import Condition, IfList

from .support.helpers import BOX
from .support.steps import proppatch_body

from .support.locking import (TOKEN, with_token, LockTestCase)


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


