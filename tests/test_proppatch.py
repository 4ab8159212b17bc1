"""PROPPATCH (docs/behaviour.md §6): document order, atomicity, protected live properties,
refused bodies, the 207 answer, value fidelity and ``p:service``."""
from lxml import etree
from twisted.internet import defer

from .support.helpers import BOX, NS, DavTestCase
from .support.dav import (XML_TYPE, DavMixin, by_tag, prop_request, proppatch_body,
                            responses, tags)

PNS = "urn:x-personium:xmlns"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
PROTECTED = ["getetag", "resourcetype", "getlastmodified", "creationdate", "getcontentlength"]

SAMPLE_SERVICE = (
    '<p:service language="JavaScript" subject="engine">'
    '<p:path name="sample" src="sample.js"/></p:service>')

# The Personium reference's sample request, as written there.
REFERENCE_SAMPLE = (
    b'<?xml version="1.0" encoding="utf-8" ?>\n'
    b'<D:propertyupdate xmlns:D="DAV:" xmlns:p="urn:x-personium:xmlns"\n'
    b'    xmlns:z="http://www.w3.com/standards/z39.50/">\n'
    b'  <D:set>\n    <D:prop>\n'
    b'      <p:service language="JavaScript" subject="engine">\n'
    b'        <p:path name="sample" src="sample.js"/>\n'
    b'      </p:service>\n'
    b'    </D:prop>\n  </D:set>\n</D:propertyupdate>')


def nodes(el):
    return list(el)  # elements, comments and processing instructions


def assert_same(test, got, expected, where="value"):
    """Semantic XML equality: tag, every attribute, text, children, tails."""
    test.assertEqual(got.tag, expected.tag, where)
    test.assertEqual(dict(got.attrib), dict(expected.attrib), "%s attributes" % where)
    test.assertEqual(got.text or "", expected.text or "", "%s text" % where)
    a, b = nodes(got), nodes(expected)
    test.assertEqual(len(a), len(b), "%s children" % where)
    for i, (x, y) in enumerate(zip(a, b)):
        assert_same(test, x, y, "%s/%d" % (where, i))
        test.assertEqual(x.tail or "", y.tail or "", "%s/%d tail" % (where, i))


class ProppatchTests(DavMixin, DavTestCase):

    @defer.inlineCallbacks
    def etag(self, path):
        found = yield self.props_of(path, "<D:getetag/>")
        return found["{DAV:}getetag"].text

    @defer.inlineCallbacks
    def dead(self, path, *names):
        """(found elements by tag, missing tags) for ``names`` of ``path``."""
        answer = yield self.propfind(path, "0", prop_request(*names))
        self.assertEqual(answer.code, 207, answer.body)
        (stats,) = responses(answer.xml()).values()
        return by_tag(stats.get(200, [])), tags(stats.get(404, []))

    # -- document order ------------------------------------------------------

    @defer.inlineCallbacks
    def test_set_then_remove_leaves_it_absent(self):
        body = proppatch_body('<x:a xmlns:x="urn:t">v</x:a>', remove=['<x:a xmlns:x="urn:t"/>'])
        answer = yield self.proppatch(BOX, body)
        self.assertEqual(answer.code, 207, answer.body)
        found, missing = yield self.dead(BOX, '<x:a xmlns:x="urn:t"/>')
        self.assertEqual((found, missing), ({}, ["{urn:t}a"]))

    @defer.inlineCallbacks
    def test_remove_then_set_leaves_it_present(self):
        yield self.proppatch(BOX, proppatch_body('<x:a xmlns:x="urn:t">old</x:a>'))
        body = (b'<D:propertyupdate xmlns:D="DAV:" xmlns:x="urn:t">'
                b'<D:remove><D:prop><x:a/></D:prop></D:remove>'
                b'<D:set><D:prop><x:a>new</x:a></D:prop></D:set></D:propertyupdate>')
        answer = yield self.proppatch(BOX, body)
        self.assertEqual(answer.code, 207, answer.body)
        found, missing = yield self.dead(BOX, '<x:a xmlns:x="urn:t"/>')
        self.assertEqual(missing, [])
        self.assertEqual(found["{urn:t}a"].text, "new")

    @defer.inlineCallbacks
    def test_two_sets_last_wins(self):
        body = (b'<D:propertyupdate xmlns:D="DAV:" xmlns:x="urn:t">'
                b'<D:set><D:prop><x:a>1</x:a></D:prop></D:set>'
                b'<D:set><D:prop><x:a>2</x:a><x:b>b</x:b></D:prop></D:set></D:propertyupdate>')
        answer = yield self.proppatch(BOX, body)
        self.assertEqual(answer.code, 207)
        found, _ = yield self.dead(BOX, '<x:a xmlns:x="urn:t"/>', '<x:b xmlns:x="urn:t"/>')
        self.assertEqual((found["{urn:t}a"].text, found["{urn:t}b"].text), ("2", "b"))

    # -- atomicity and protected properties -----------------------------------

    @defer.inlineCallbacks
    def test_protected_live_property_fails_the_whole_request(self):
        yield self.put(BOX + "f.txt")
        for path in (BOX + "f.txt", BOX):
            for name in PROTECTED:
                before = yield self.etag(path)
                body = proppatch_body('<x:a xmlns:x="urn:t">1</x:a>', "<D:%s>x</D:%s>" % (name, name),
                                      '<x:b xmlns:x="urn:t">2</x:b>',
                                      remove=['<x:c xmlns:x="urn:t"/>'])
                answer = yield self.proppatch(path, body)
                self.assertEqual(answer.code, 207, answer.body)
                self.assertEqual(answer.header("content-type"), XML_TYPE)
                found = responses(answer.xml())
                self.assertEqual(len(found), 1)
                (stats,) = found.values()
                self.assertEqual(sorted(stats), [403, 424])
                self.assertEqual(tags(stats[403]), ["{DAV:}" + name])
                self.assertEqual(sorted(tags(stats[424])),
                                 ["{urn:t}a", "{urn:t}b", "{urn:t}c"])
                root = answer.xml()
                (ps403,) = [ps for ps in root.iterfind("D:response/D:propstat", NS)
                            if "403" in ps.findtext("D:status", namespaces=NS)]
                self.assertIsNotNone(
                    ps403.find("D:error/D:cannot-modify-protected-property", NS),
                    "403 propstat names the precondition")
                self.assertEqual(ps403.findtext("D:status", namespaces=NS),
                                 "HTTP/1.1 403 Forbidden")
                # nothing stored, nothing changed
                dead, missing = yield self.dead(path, '<x:a xmlns:x="urn:t"/>',
                                                '<x:b xmlns:x="urn:t"/>')
                self.assertEqual((dead, sorted(missing)), ({}, ["{urn:t}a", "{urn:t}b"]))
                after = yield self.etag(path)
                self.assertEqual(after, before, name)

    @defer.inlineCallbacks
    def test_removing_a_protected_property_is_refused(self):
        before = yield self.etag(BOX)
        body = proppatch_body('<x:a xmlns:x="urn:t">1</x:a>', remove=["<D:getetag/>"])
        answer = yield self.proppatch(BOX, body)
        self.assertEqual(answer.code, 207)
        (stats,) = responses(answer.xml()).values()
        self.assertEqual(tags(stats[403]), ["{DAV:}getetag"])
        self.assertEqual(tags(stats[424]), ["{urn:t}a"])
        after = yield self.etag(BOX)
        self.assertEqual(after, before)

    @defer.inlineCallbacks
    def test_file_only_live_property_refused_on_a_collection_too(self):
        answer = yield self.proppatch(BOX, proppatch_body("<D:getcontenttype>x/y</D:getcontenttype>"))
        self.assertEqual(answer.code, 207)
        (stats,) = responses(answer.xml()).values()
        self.assertEqual(list(stats), [403])

    @defer.inlineCallbacks
    def test_if_match_mismatch(self):
        before = yield self.etag(BOX)
        answer = yield self.proppatch(BOX, proppatch_body('<x:a xmlns:x="urn:t"/>'),
                                      {"If-Match": '"999-1"'})
        self.assertError(answer, 412, "PR412-DV-0001")
        _, missing = yield self.dead(BOX, '<x:a xmlns:x="urn:t"/>')
        self.assertEqual(missing, ["{urn:t}a"])
        answer = yield self.proppatch(BOX, proppatch_body('<x:a xmlns:x="urn:t"/>'),
                                      {"If-Match": before})
        self.assertEqual(answer.code, 207)

    # -- refused bodies ------------------------------------------------------

    @defer.inlineCallbacks
    def test_parse_errors(self):
        bodies = [
            b"",
            b"   \n",
            b"<D:propertyupdate xmlns:D='DAV:'>",
            b"<D:propfind xmlns:D='DAV:'><D:allprop/></D:propfind>",
            b"<propertyupdate><set><prop><a/></prop></set></propertyupdate>",
            b"<D:propertyupdate xmlns:D='DAV:'/>",
            b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b"<D:propertyupdate xmlns:D='DAV:'><D:set><D:prop><a xmlns=''>&e;</a>"
            b"</D:prop></D:set></D:propertyupdate>",
        ]
        for body in bodies:
            answer = yield self.proppatch(BOX, body)
            self.assertError(answer, 400, "PR400-DV-0001")
            self.assertEqual(answer.json()["message"]["value"], "XML parse error.")
        _, missing = yield self.dead(BOX, '<a xmlns=""/>')
        self.assertEqual(missing, ["a"])

    @defer.inlineCallbacks
    def test_content_errors(self):
        bodies = [
            b"<D:propertyupdate xmlns:D='DAV:'><D:set/></D:propertyupdate>",
            b"<D:propertyupdate xmlns:D='DAV:'><D:remove/></D:propertyupdate>",
            b"<D:propertyupdate xmlns:D='DAV:'><D:set><x:a xmlns:x='urn:t'/></D:set>"
            b"</D:propertyupdate>",
            b"<D:propertyupdate xmlns:D='DAV:'><D:set><D:prop><x:a xmlns:x='urn:t'/></D:prop>"
            b"</D:set><D:remove/></D:propertyupdate>",
        ]
        for body in bodies:
            answer = yield self.proppatch(BOX, body)
            self.assertError(answer, 400, "PR400-DV-0002")
            self.assertEqual(answer.json()["message"]["value"], "XML content error.")
        _, missing = yield self.dead(BOX, '<x:a xmlns:x="urn:t"/>')
        self.assertEqual(missing, ["{urn:t}a"])

    @defer.inlineCallbacks
    def test_remove_absent_is_ok(self):
        before = yield self.etag(BOX)
        answer = yield self.proppatch(BOX, proppatch_body(remove=['<x:none xmlns:x="urn:t"/>']))
        self.assertEqual(answer.code, 207)
        (stats,) = responses(answer.xml()).values()
        self.assertEqual(list(stats), [200])
        self.assertEqual(tags(stats[200]), ["{urn:t}none"])
        self.assertNotEqual(answer.header("etag"), before)

    # -- the answer ------------------------------------------------------------

    @defer.inlineCallbacks
    def test_answer_echoes_values_and_new_etag(self):
        yield self.proppatch(BOX, proppatch_body('<x:gone xmlns:x="urn:t">g</x:gone>'))
        before = yield self.etag(BOX)
        body = proppatch_body('<x:a xmlns:x="urn:t" k="v">val<x:c>1</x:c></x:a>',
                              remove=['<x:gone xmlns:x="urn:t"/>'])
        answer = yield self.proppatch("/cell1/box1", body)
        self.assertEqual(answer.code, 207)
        self.assertEqual(answer.header("content-type"), XML_TYPE)
        etag = answer.header("etag")
        self.assertRegex(etag, r'^"\d+-\d+"$')
        self.assertNotEqual(etag, before)
        self.assertEqual(int(etag.strip('"').split("-")[0]),
                         int(before.strip('"').split("-")[0]) + 1)
        self.assertIn(b'<D:multistatus xmlns:D="DAV:">', answer.body)
        found = responses(answer.xml())
        self.assertEqual(list(found), [BOX])
        self.assertEqual(list(found[BOX]), [200])
        echoed = found[BOX][200]
        self.assertEqual(tags(echoed), ["{urn:t}a", "{urn:t}gone"])
        assert_same(self, echoed[0], etree.fromstring(
            '<x:a xmlns:x="urn:t" k="v">val<x:c>1</x:c></x:a>'))
        self.assertEqual((echoed[1].text, len(echoed[1])), (None, 0))
        now = yield self.etag(BOX)
        self.assertEqual(now, etag)

    @defer.inlineCallbacks
    def test_etag_changes_every_time(self):
        seen = set()
        for i in range(3):
            answer = yield self.proppatch(BOX, proppatch_body('<x:a xmlns:x="urn:t">%d</x:a>' % i))
            seen.add(answer.header("etag"))
        self.assertEqual(len(seen), 3)

    @defer.inlineCallbacks
    def test_proppatch_on_a_file(self):
        put = yield self.put(BOX + "f.txt", b"content")
        answer = yield self.proppatch(BOX + "f.txt", proppatch_body('<x:a xmlns:x="urn:t">1</x:a>'))
        self.assertEqual(answer.code, 207)
        self.assertEqual(list(responses(answer.xml())), [BOX + "f.txt"])
        self.assertNotEqual(answer.header("etag"), put.header("etag"))
        found, _ = yield self.dead(BOX + "f.txt", '<x:a xmlns:x="urn:t"/>')
        self.assertEqual(found["{urn:t}a"].text, "1")
        get = yield self.request("GET", BOX + "f.txt")
        self.assertEqual((get.body, get.header("etag")), (b"content", answer.header("etag")))
        # the property is the file's alone
        _, missing = yield self.dead(BOX, '<x:a xmlns:x="urn:t"/>')
        self.assertEqual(missing, ["{urn:t}a"])
        # a new PUT keeps the properties
        yield self.put(BOX + "f.txt", b"other")
        found, _ = yield self.dead(BOX + "f.txt", '<x:a xmlns:x="urn:t"/>')
        self.assertEqual(found["{urn:t}a"].text, "1")

    @defer.inlineCallbacks
    def test_proppatch_on_src_is_not_allowed(self):
        yield self.mkcol(BOX + "svc", service=True)
        answer = yield self.proppatch(BOX + "svc/__src", proppatch_body('<x:a xmlns:x="urn:t"/>'))
        self.assertError(answer, 405, "PR405-MC-0001")

    @defer.inlineCallbacks
    def test_proppatch_missing_resource(self):
        answer = yield self.proppatch(BOX + "nothing", proppatch_body('<x:a xmlns:x="urn:t"/>'))
        self.assertError(answer, 404, "PR404-DV-0001")

    # -- value fidelity --------------------------------------------------------

    @defer.inlineCallbacks
    def roundtrip(self, path, body, expected, name):
        """PROPPATCH ``body``, then the property ``name`` (Clark) must equal
        ``expected`` in the echo and in PROPFIND, Depth 0 and 1."""
        answer = yield self.proppatch(path, body)
        self.assertEqual(answer.code, 207, answer.body)
        want = etree.fromstring(expected.encode("utf-8"))
        (stats,) = responses(answer.xml()).values()
        assert_same(self, by_tag(stats[200])[name], want, "echo")
        ns, local = name[1:].split("}") if name.startswith("{") else ("", name)
        query = ('<X:%s xmlns:X="%s"/>' % (local, ns)) if ns else '<%s xmlns=""/>' % local
        found, _ = yield self.dead(path, query)
        assert_same(self, found[name], want, "prop")
        allprop = yield self.propfind(path, "0")
        (stats,) = responses(allprop.xml()).values()
        assert_same(self, by_tag(stats[200])[name], want, "allprop")
        return found[name]

    @defer.inlineCallbacks
    def test_fidelity_attributes_children_mixed_content(self):
        value = ('<x:v xmlns:x="urn:t" xmlns:y="urn:y" plain="1" y:ns="2" '
                 'quote="a&quot;&lt;&amp;&#10;b">'
                 'head<y:b y:k="&#x1F600;">bold</y:b> mid <x:e/><!-- c -->'
                 '<n xmlns="">no-ns<deep xmlns="urn:d">d</deep></n>end</x:v>')
        got = yield self.roundtrip(BOX, proppatch_body(value), value, "{urn:t}v")
        self.assertEqual(got.get("quote"), 'a"<&\nb')
        self.assertEqual(got[0].get("{urn:y}k"), "\U0001F600")

    @defer.inlineCallbacks
    def test_fidelity_astral_characters(self):
        value = '<x:emoji xmlns:x="urn:t">\U0001F600 \U00020BB7 \u00e9</x:emoji>'
        got = yield self.roundtrip(BOX, proppatch_body(value), value, "{urn:t}emoji")
        self.assertEqual(got.text, "\U0001F600 \U00020BB7 \u00e9")

    @defer.inlineCallbacks
    def test_fidelity_whitespace_kept(self):
        value = '<x:ws xmlns:x="urn:t">  two  spaces\n\tand a tab  </x:ws>'
        yield self.roundtrip(BOX, proppatch_body(value), value, "{urn:t}ws")

    @defer.inlineCallbacks
    def test_fidelity_xml_lang_from_propertyupdate(self):
        body = ('<D:propertyupdate xmlns:D="DAV:" xml:lang="ja"><D:set><D:prop>'
                '<x:title xmlns:x="urn:t">題名</x:title></D:prop></D:set></D:propertyupdate>')
        got = yield self.roundtrip(BOX, body.encode("utf-8"),
                                   '<x:title xmlns:x="urn:t" xml:lang="ja">題名</x:title>',
                                   "{urn:t}title")
        self.assertEqual(got.get(XML_LANG), "ja")

    @defer.inlineCallbacks
    def test_fidelity_xml_lang_from_prop_overrides(self):
        body = ('<D:propertyupdate xmlns:D="DAV:" xml:lang="ja"><D:set><D:prop xml:lang="fr">'
                '<x:t xmlns:x="urn:t">titre</x:t>'
                '<x:u xmlns:x="urn:t" xml:lang="en">own</x:u></D:prop></D:set></D:propertyupdate>')
        yield self.roundtrip(BOX, body.encode("utf-8"),
                             '<x:t xmlns:x="urn:t" xml:lang="fr">titre</x:t>', "{urn:t}t")
        found, _ = yield self.dead(BOX, '<x:u xmlns:x="urn:t"/>')
        self.assertEqual(found["{urn:t}u"].get(XML_LANG), "en")

    @defer.inlineCallbacks
    def test_fidelity_no_namespace_property(self):
        body = (b'<propertyupdate xmlns="DAV:"><set><prop>'
                b'<foo xmlns="">bar<baz/></foo></prop></set></propertyupdate>')
        yield self.roundtrip(BOX, body, "<foo>bar<baz/></foo>", "foo")
        answer = yield self.propfind(BOX, "0", b"")
        (stats,) = responses(answer.xml()).values()
        self.assertIn("foo", tags(stats[200]))
        self.assertNotIn("{DAV:}foo", tags(stats[200]))

    @defer.inlineCallbacks
    def test_fidelity_default_namespace_property(self):
        body = (b'<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
                b'<color xmlns="urn:t">red<shade>dark</shade></color></D:prop></D:set>'
                b'</D:propertyupdate>')
        yield self.roundtrip(BOX, body, '<color xmlns="urn:t">red<shade>dark</shade></color>',
                             "{urn:t}color")

    @defer.inlineCallbacks
    def test_fidelity_dead_property_in_dav_namespace(self):
        body = proppatch_body("<D:displayname>My box</D:displayname>")
        yield self.roundtrip(BOX, body, '<D:displayname xmlns:D="DAV:">My box</D:displayname>',
                             "{DAV:}displayname")

    @defer.inlineCallbacks
    def test_fidelity_namespace_declared_on_the_value_kept(self):
        value = '<x:typed xmlns:x="urn:t" xmlns:q="urn:q">q:name</x:typed>'
        got = yield self.roundtrip(BOX, proppatch_body(value), value, "{urn:t}typed")
        self.assertEqual(got.nsmap.get("q"), "urn:q")

    @defer.inlineCallbacks
    def test_empty_is_not_absent(self):
        yield self.roundtrip(BOX, proppatch_body('<x:e xmlns:x="urn:t"/>'),
                             '<x:e xmlns:x="urn:t"/>', "{urn:t}e")
        found, missing = yield self.dead(BOX, '<x:e xmlns:x="urn:t"/>', '<x:f xmlns:x="urn:t"/>')
        self.assertEqual(list(found), ["{urn:t}e"])
        self.assertEqual(missing, ["{urn:t}f"])
        yield self.proppatch(BOX, proppatch_body(remove=['<x:e xmlns:x="urn:t"/>']))
        found, missing = yield self.dead(BOX, '<x:e xmlns:x="urn:t"/>')
        self.assertEqual((found, missing), ({}, ["{urn:t}e"]))

    @defer.inlineCallbacks
    def test_fidelity_on_a_file(self):
        yield self.put(BOX + "f.txt")
        value = '<x:v xmlns:x="urn:t" a="1">\U0001F600<x:c/>t</x:v>'
        yield self.roundtrip(BOX + "f.txt", proppatch_body(value), value, "{urn:t}v")
        answer = yield self.propfind(BOX, "1")
        stats = responses(answer.xml())[BOX + "f.txt"]
        assert_same(self, by_tag(stats[200])["{urn:t}v"], etree.fromstring(value.encode()))

    @defer.inlineCallbacks
    def test_windows_properties_stored(self):
        yield self.put(BOX + "f.txt")
        body = (b'<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:">'
                b'<D:set><D:prop><Z:Win32CreationTime>Mon, 01 Jan 2024 00:00:00 GMT'
                b'</Z:Win32CreationTime><Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>'
                b'</D:prop></D:set></D:propertyupdate>')
        answer = yield self.proppatch(BOX + "f.txt", body)
        self.assertEqual(answer.code, 207)
        found, _ = yield self.dead(BOX + "f.txt", '<Z:Win32FileAttributes '
                                   'xmlns:Z="urn:schemas-microsoft-com:"/>')
        self.assertEqual(found["{urn:schemas-microsoft-com:}Win32FileAttributes"].text,
                         "00000020")

    # -- p:service ---------------------------------------------------------------

    def service_body(self, service):
        return ('<D:propertyupdate xmlns:D="DAV:" xmlns:p="%s"><D:set><D:prop>%s'
                '</D:prop></D:set></D:propertyupdate>' % (PNS, service)).encode("utf-8")

    @defer.inlineCallbacks
    def service_of(self, path):
        found, _ = yield self.dead(path, '<p:service xmlns:p="%s"/>' % PNS)
        return found.get("{%s}service" % PNS)

    @defer.inlineCallbacks
    def test_service_reference_sample(self):
        yield self.mkcol(BOX + "svc", service=True)
        before = yield self.etag(BOX + "svc")
        answer = yield self.proppatch(BOX + "svc", REFERENCE_SAMPLE)
        self.assertEqual(answer.code, 207, answer.body)
        patched = answer.header("etag")
        self.assertNotEqual(answer.header("etag"), before)
        (stats,) = responses(answer.xml()).values()
        self.assertEqual(list(stats), [200])
        echoed = by_tag(stats[200])["{%s}service" % PNS]
        self.assertEqual(echoed.get("language"), "JavaScript")
        stored = yield self.service_of(BOX + "svc")
        self.assertEqual(stored.get("language"), "JavaScript")
        self.assertEqual(stored.get("subject"), "engine")
        paths = stored.findall("p:path", NS)
        self.assertEqual([(p.get("name"), p.get("src")) for p in paths], [("sample", "sample.js")])
        assert_same(self, stored, echoed)
        # allprop on the service collection serves it too, beside the resourcetype
        answer = yield self.propfind(BOX + "svc", "0")
        (stats,) = responses(answer.xml()).values()
        props = by_tag(stats[200])
        self.assertIn("{%s}service" % PNS, props)
        self.assertEqual(tags(props["{DAV:}resourcetype"]),
                         ["{DAV:}collection", "{%s}service" % PNS])
        now = yield self.etag(BOX + "svc")
        self.assertEqual(now, patched)

    @defer.inlineCallbacks
    def test_service_invalid_kinds(self):
        yield self.mkcol(BOX + "svc", service=True)
        yield self.proppatch(BOX + "svc", self.service_body(SAMPLE_SERVICE))
        before = yield self.etag(BOX + "svc")
        bad = {
            "language": '<p:service language="Python"><p:path name="a" src="a.js"/></p:service>',
            "src": '<p:service><p:path name="a" src="dir/a.js"/></p:service>',
            "src colon": '<p:service><p:path name="a" src="a:b.js"/></p:service>',
            "duplicate": ('<p:service><p:path name="a" src="a.js"/>'
                          '<p:path name="a" src="b.js"/></p:service>'),
            "regex": '<p:service><p:path name="item/{id: [0-9}" src="a.js"/></p:service>',
            "regex2": '<p:service><p:path name="item/{id: (a}" src="a.js"/></p:service>',
            "other child": '<p:service><p:other/></p:service>',
            "empty name": '<p:service><p:path name="" src="a.js"/></p:service>',
            "subject": '<p:service subject="a b"/>',
        }
        for what, service in bad.items():
            body = self.service_body('<x:extra xmlns:x="urn:t">1</x:extra>' + service)
            answer = yield self.proppatch(BOX + "svc", body)
            self.assertError(answer, 400, "PR400-DV-0006")
            message = answer.json()["message"]["value"]
            self.assertRegex(message, r"^XML validate error\. Cause:\[.+\]\.$", what)
            stored = yield self.service_of(BOX + "svc")
            self.assertEqual([(p.get("name"), p.get("src")) for p in stored], [("sample", "sample.js")],
                             what)
            _, missing = yield self.dead(BOX + "svc", '<x:extra xmlns:x="urn:t"/>')
            self.assertEqual(missing, ["{urn:t}extra"], what)
            after = yield self.etag(BOX + "svc")
            self.assertEqual(after, before, what)

    @defer.inlineCallbacks
    def test_service_invalid_even_without_earlier_value(self):
        yield self.mkcol(BOX + "svc", service=True)
        answer = yield self.proppatch(BOX + "svc", self.service_body(
            '<p:service language="Ruby"/>'))
        self.assertError(answer, 400, "PR400-DV-0006")
        stored = yield self.service_of(BOX + "svc")
        self.assertIsNone(stored)

    @defer.inlineCallbacks
    def test_service_later_set_replaces_whole_element(self):
        yield self.mkcol(BOX + "svc", service=True)
        first = ('<p:service language="JavaScript" subject="engine">'
                 '<p:path name="a" src="a.js"/><p:path name="b/{id}" src="b.js"/></p:service>')
        second = '<p:service><p:path name="c/{n: [0-9]{3}}" src="c.js"/></p:service>'
        answer = yield self.proppatch(BOX + "svc", self.service_body(first))
        self.assertEqual(answer.code, 207)
        stored = yield self.service_of(BOX + "svc")
        self.assertEqual(len(stored), 2)
        answer = yield self.proppatch(BOX + "svc", self.service_body(second))
        self.assertEqual(answer.code, 207)
        stored = yield self.service_of(BOX + "svc")
        assert_same(self, stored, etree.fromstring(
            ('<p:service xmlns:p="%s"><p:path name="c/{n: [0-9]{3}}" src="c.js"/></p:service>'
             % PNS).encode()))
        self.assertIsNone(stored.get("subject"))

    @defer.inlineCallbacks
    def test_service_remove(self):
        yield self.mkcol(BOX + "svc", service=True)
        yield self.proppatch(BOX + "svc", self.service_body(SAMPLE_SERVICE))
        answer = yield self.proppatch(BOX + "svc", proppatch_body(
            remove=['<p:service xmlns:p="%s"/>' % PNS]))
        self.assertEqual(answer.code, 207)
        stored = yield self.service_of(BOX + "svc")
        self.assertIsNone(stored)
        # the collection is still a service collection
        found = yield self.props_of(BOX + "svc", "<D:resourcetype/>")
        self.assertEqual(tags(found["{DAV:}resourcetype"]),
                         ["{DAV:}collection", "{%s}service" % PNS])
