"""p:service validation and route parsing (docs/behaviour.md §6)."""
from twisted.trial.unittest import SynchronousTestCase

from personium_dav.dav.errors import DavError
from personium_dav.dav.service import SERVICE, Route, Var, parse_route, validate
from personium_dav.dav.xmlutil import parse

CODE = "PR400-DV-0006"


def service(inner="", attrs=""):
    """Parse a p:service element wrapped in a D:prop, as PROPPATCH sees it."""
    body = ('<D:prop xmlns:D="DAV:" xmlns:p="urn:x-personium:xmlns">'
            "<p:service %s>%s</p:service></D:prop>" % (attrs, inner))
    root = parse(body.encode("utf-8"))
    (el,) = root.iter(SERVICE)
    return el


def path(name, src="a.js"):
    return '<p:path name="%s" src="%s"/>' % (name, src)


class ServiceTests(SynchronousTestCase):
    def ok(self, inner="", attrs=""):
        return validate(service(inner, attrs))

    def bad(self, inner="", attrs=""):
        err = self.assertRaises(DavError, validate, service(inner, attrs))
        self.assertEqual(err.code, CODE)
        self.assertEqual(err.status, 400)
        self.assertTrue(err.message.startswith("XML validate error. Cause:["))
        return err

    # language / subject

    def test_language_absent(self):
        self.assertEqual(self.ok(path("x")), [Route("x", "a.js", ["x"])])

    def test_language_javascript(self):
        self.assertEqual(len(self.ok(path("x"), 'language="JavaScript"')), 1)

    def test_language_other(self):
        for lang in ["Python", "javascript", "", " JavaScript"]:
            err = self.bad(path("x"), 'language="%s"' % lang)
            self.assertIn("language must be JavaScript", err.message)

    def test_subject_ok(self):
        self.assertEqual(self.ok("", 'subject="engine_account"'), [])
        self.assertEqual(self.ok("", 'subject="アカウント"'), [])

    def test_subject_empty(self):
        self.bad("", 'subject=""')

    def test_subject_space(self):
        self.bad("", 'subject="a b"')
        self.bad("", 'subject="a&#9;b"')
        self.bad("", 'subject="a&#x7f;"')

    # children

    def test_no_paths(self):
        self.assertEqual(self.ok(), [])
        self.assertEqual(self.ok("\n  <!-- none -->\n  "), [])

    def test_several_paths_in_order(self):
        routes = self.ok(path("a", "a.js") + "\n<!-- c -->\n" + path("b/c", "b.js"))
        self.assertEqual([(r.name, r.src, r.segments) for r in routes],
                         [("a", "a.js", ["a"]), ("b/c", "b.js", ["b", "c"])])

    def test_other_child_element(self):
        err = self.bad(path("a") + "<p:other/>")
        self.assertIn("unexpected element [{urn:x-personium:xmlns}other]",
                      err.message)
        self.bad('<path name="a" src="a.js"/>')
        self.bad('<D:path xmlns:D="DAV:" name="a" src="a.js"/>')

    def test_text_content(self):
        self.bad("hello")
        self.bad(path("a") + " tail ")
        self.bad("<!-- c --> x")

    def test_path_without_name(self):
        self.bad('<p:path src="a.js"/>')

    def test_path_empty_name(self):
        err = self.bad(path(""))
        self.assertIn("path name is empty", err.message)

    def test_missing_src(self):
        self.bad('<p:path name="a"/>')

    def test_bad_src_chars(self):
        for ch in ["\\", "/", ":", "*", "?", "&quot;", "&lt;", "&gt;", "|", " ",
                   "&#9;", "&#x7f;", "&#x85;"]:
            err = self.bad(path("a", "a%sb.js" % ch))
            self.assertIn("src is not a valid file name", err.message)

    def test_bad_src_dots_and_empty(self):
        self.bad(path("a", "."))
        self.bad(path("a", ".."))
        self.bad(path("a", ""))

    def test_src_length(self):
        self.assertEqual(self.ok(path("a", "x" * 256))[0].src, "x" * 256)
        self.bad(path("a", "x" * 257))
        src = "日本語" * 85 + "あ"
        self.assertEqual(len(src), 256)
        self.assertEqual(self.ok(path("a", src))[0].src, src)
        self.bad(path("a", src + "あ"))

    def test_duplicate_names(self):
        err = self.bad(path("x", "a.js") + path("x", "b.js"))
        self.assertIn("duplicate path name [x]", err.message)

    def test_same_src_twice_ok(self):
        self.assertEqual(len(self.ok(path("x") + path("y"))), 2)

    # routes

    def test_template(self):
        (route,) = self.ok(path("{id}"))
        self.assertEqual(route.segments, [Var("id")])
        self.assertIsNone(route.segments[0].regex)

    def test_template_with_regex_braces(self):
        (route,) = self.ok(path("users/{id: [0-9]{3}}/x"))
        self.assertEqual(route.name, "users/{id: [0-9]{3}}/x")
        self.assertEqual(route.segments, ["users", Var("id", "[0-9]{3}"), "x"])

    def test_template_with_regex_slash(self):
        (route,) = self.ok(path("{id: a/b}"))
        self.assertEqual(route.segments, [Var("id", "a/b")])

    def test_template_whitespace(self):
        self.assertEqual(parse_route("{ id }"), [Var("id")])
        self.assertEqual(parse_route("{_a.b-c:\\d+ }"), [Var("_a.b-c", "\\d+")])

    def test_bad_regex(self):
        err = self.bad(path("{id: [}"))
        self.assertIn("invalid regex in path", err.message)
        self.bad(path("{id: (}"))

    def test_unbalanced_brace(self):
        for name in ["{id", "id}", "{id}}", "a/{b", "{{id}"]:
            self.bad(path(name))

    def test_bad_template(self):
        for name in ["{}", "{1id}", "{a b}", "{id}{x}", "x{id}", "{id}x", "{ : x}"]:
            self.bad(path(name))

    def test_empty_segment(self):
        for name in ["a//b", "/a", "a/", "/"]:
            err = self.bad(path(name))
            self.assertIn("empty segment", err.message)

    def test_bad_literal(self):
        self.bad(path("a b"))
        self.bad(path("a&#9;b"))

    def test_multibyte_literal(self):
        self.assertEqual(parse_route("日本/{id}"), ["日本", Var("id")])
