"""Route selection (engine/routes.py): Jersey templates, document order,
full matches, and the fences against catastrophic regexes."""
import time

from twisted.trial import unittest

from personium_dav.engine import routes
from personium_dav.dav.service import Route, parse_route


def table(*names):
    return [Route(n, "src%d.js" % i, parse_route(n)) for i, n in enumerate(names, 1)]


class Matching(unittest.TestCase):
    def pick(self, rs, path):
        r = routes.match(rs, path)
        return r and r.src

    def test_contract_example(self):
        rs = table("aaa", "aaa/BBB", r"{id: .\d+}/BBB", "{id}/BBB", "aaa/{id}/view")
        for path, src in [("aaa", "src1.js"), ("aaa/BBB", "src2.js"), ("1234/BBB", "src3.js"),
                          ("12aa/BBB", "src4.js"), ("aaa/1234/view", "src5.js"),
                          ("aaa/1234/edit", None)]:
            self.assertEqual(self.pick(rs, path), src, path)

    def test_full_match_only(self):
        rs = table("aaa", "{x}")
        self.assertEqual(self.pick(rs, "aaab"), "src2.js")
        self.assertIsNone(self.pick(rs, "aaa/b"))
        self.assertIsNone(self.pick(rs, ""))

    def test_var_is_one_segment_regex_may_span(self):
        self.assertIsNone(self.pick(table("{x}"), "a/b"))
        self.assertEqual(self.pick(table("{x: .+}"), "a/b/c"), "src1.js")
        self.assertEqual(self.pick(table("files/{p: [a-z]+/[0-9]{3}}"), "files/ab/123"), "src1.js")

    def test_literals_are_not_regex(self):
        rs = table("a.c", "x+")
        self.assertIsNone(self.pick(rs, "abc"))
        self.assertEqual(self.pick(rs, "a.c"), "src1.js")
        self.assertEqual(self.pick(rs, "x+"), "src2.js")
        self.assertIsNone(self.pick(rs, "xx"))

    def test_document_order_wins(self):
        self.assertEqual(self.pick(table("{id}", "aaa"), "aaa"), "src1.js")

    def test_multibyte(self):
        self.assertEqual(self.pick(table("日本/{name}"), "日本/太郎"), "src1.js")

    def test_long_path_matches_nothing(self):
        rs = table("{x: .*}")
        self.assertEqual(self.pick(rs, "a" * routes.MAX_PATH), "src1.js")
        self.assertIsNone(self.pick(rs, "a" * (routes.MAX_PATH + 1)))

    def test_catastrophic_regex_is_bounded(self):
        rs = table(r"{x: (.*a){25}}", "{y: .*}")
        t = time.monotonic()
        self.assertIsNone(self.pick(rs, "a" * 2000 + "!"))
        self.assertLess(time.monotonic() - t, 1.0)
