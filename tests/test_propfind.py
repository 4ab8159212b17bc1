"""PROPFIND (docs/behaviour.md §7): depth, request kinds, live and dead properties, the
hardened parser, the multistatus shape, and the streamed Depth 1 listing."""
import http.client
import os
import re
import socket
import threading
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from lxml import etree
from twisted.internet import defer, reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from personium_dav.web.methods import propfind as propfind_method
from personium_dav.web.methods.propfind import SLICE
from personium_dav.store import layout, props

from .support import hardening
from .support.dav import (ALLPROP, BY_NAME, LIVE_COMMON, LIVE_FILE, PNS, PROPNAME,
                          XML_TYPE, DavMixin, by_tag, prop_request,
                          proppatch_body, responses, tags)
from .support.helpers import BOX, NS, DavTestCase

class PropfindTests(DavMixin, DavTestCase):

    # -- Depth -------------------------------------------------------------

    @defer.inlineCallbacks
    def test_depth_0_lists_only_the_target(self):
        yield self.mkcol(BOX + "col")
        yield self.put(BOX + "col/a.txt")
        answer = yield self.propfind(BOX + "col/", "0")
        self.assertEqual(answer.code, 207)
        self.assertEqual(list(responses(answer.xml())), [BOX + "col/"])

    @defer.inlineCallbacks
    def test_depth_1_lists_direct_members(self):
        yield self.mkcol(BOX + "col")
        yield self.mkcol(BOX + "col/sub")
        yield self.put(BOX + "col/a.txt")
        yield self.put(BOX + "col/sub/deep.txt")
        answer = yield self.propfind(BOX + "col/", "1")
        self.assertEqual(answer.code, 207)
        self.assertEqual(sorted(responses(answer.xml())),
                         [BOX + "col/", BOX + "col/a.txt", BOX + "col/sub/"])

    @defer.inlineCallbacks
    def test_depth_1_on_a_file_is_the_file(self):
        yield self.put(BOX + "a.txt")
        answer = yield self.propfind(BOX + "a.txt", "1")
        self.assertEqual(answer.code, 207)
        self.assertEqual(list(responses(answer.xml())), [BOX + "a.txt"])

    @defer.inlineCallbacks
    def test_depth_1_of_service_collection_lists_src(self):
        yield self.mkcol(BOX + "svc", service=True)
        answer = yield self.propfind(BOX + "svc", "1")
        self.assertEqual(answer.code, 207)
        found = responses(answer.xml())
        self.assertEqual(sorted(found), [BOX + "svc/", BOX + "svc/__src/"])
        rt = by_tag(found[BOX + "svc/__src/"][200])["{DAV:}resourcetype"]
        self.assertEqual(tags(rt), ["{DAV:}collection"])

    @defer.inlineCallbacks
    def test_depth_infinity_refused(self):
        yield self.put(BOX + "a.txt")
        for path in (BOX, "/cell1/box1", BOX + "a.txt"):
            for value in ("infinity", "Infinity", "INFINITY", " infinity "):
                answer = yield self.propfind(path, value)
                self.assertError(answer, 403, "PR403-DV-0001")
                self.assertEqual(answer.json()["message"]["value"],
                                 "Infinite depth is not supported.")

    @defer.inlineCallbacks
    def test_depth_missing(self):
        answer = yield self.propfind(BOX, None)
        self.assertError(answer, 400, "PR400-DV-0003")
        message = answer.json()["message"]["value"]
        self.assertTrue(message.startswith("Invalid depth header value:["), message)
        self.assertNotIn("None", message)

    @defer.inlineCallbacks
    def test_depth_bad_values(self):
        for value in ("2", "one", "-1", "0,1", "01", "infinite"):
            answer = yield self.propfind(BOX, value)
            self.assertError(answer, 400, "PR400-DV-0003")
            self.assertEqual(answer.json()["message"]["value"],
                             "Invalid depth header value:[%s]." % value)

    # -- request bodies ------------------------------------------------------

    @defer.inlineCallbacks
    def test_empty_body_is_allprop(self):
        yield self.put(BOX + "a.txt")
        yield self.proppatch(BOX + "a.txt", proppatch_body('<x:color xmlns:x="urn:t">red</x:color>'))
        for body in (b"", b"  \r\n\t "):
            answer = yield self.propfind(BOX + "a.txt", "0", body)
            self.assertEqual(answer.code, 207, answer.body)
            stats = responses(answer.xml())[BOX + "a.txt"]
            self.assertEqual(list(stats), [200])
            self.assertEqual(sorted(tags(stats[200])), sorted(LIVE_FILE + ["{urn:t}color"]))
        explicit = yield self.propfind(BOX + "a.txt", "0", ALLPROP)
        self.assertEqual(sorted(tags(responses(explicit.xml())[BOX + "a.txt"][200])),
                         sorted(LIVE_FILE + ["{urn:t}color"]))

    @defer.inlineCallbacks
    def test_allprop_lists_live_and_dead_values(self):
        yield self.mkcol(BOX + "col")
        yield self.proppatch(BOX + "col", proppatch_body(
            '<x:a xmlns:x="urn:t">one</x:a>', '<x:b xmlns:x="urn:t"><x:c/></x:b>'))
        answer = yield self.propfind(BOX + "col", "0", ALLPROP)
        stats = responses(answer.xml())[BOX + "col/"]
        self.assertEqual(list(stats), [200])
        found = by_tag(stats[200])
        self.assertEqual(sorted(found), sorted(LIVE_COMMON + ["{urn:t}a", "{urn:t}b"]))
        self.assertEqual(found["{urn:t}a"].text, "one")
        self.assertEqual(tags(found["{urn:t}b"]), ["{urn:t}c"])

    @defer.inlineCallbacks
    def test_allprop_with_include(self):
        yield self.put(BOX + "a.txt")
        body = (b'<D:propfind xmlns:D="DAV:" xmlns:x="urn:t"><D:allprop/>'
                b'<D:include><D:getetag/><x:nothing/></D:include></D:propfind>')
        answer = yield self.propfind(BOX + "a.txt", "0", body)
        self.assertEqual(answer.code, 207, answer.body)
        stats = responses(answer.xml())[BOX + "a.txt"]
        self.assertEqual(sorted(tags(stats[200])), sorted(LIVE_FILE))  # getetag once
        self.assertEqual(tags(stats[404]), ["{urn:t}nothing"])

    @defer.inlineCallbacks
    def test_allprop_include_of_a_file_property_on_a_collection(self):
        body = (b'<D:propfind xmlns:D="DAV:"><D:allprop/>'
                b'<D:include><D:getcontentlength/><D:resourcetype/></D:include></D:propfind>')
        answer = yield self.propfind(BOX, "0", body)
        stats = responses(answer.xml())[BOX]
        self.assertEqual(sorted(tags(stats[200])), sorted(LIVE_COMMON))
        self.assertEqual(tags(stats[404]), ["{DAV:}getcontentlength"])

    @defer.inlineCallbacks
    def test_allprop_followed_by_something_else_is_refused(self):
        body = b'<D:propfind xmlns:D="DAV:"><D:allprop/><D:propname/></D:propfind>'
        answer = yield self.propfind(BOX, "0", body)
        self.assertError(answer, 400, "PR400-DV-0001")

    @defer.inlineCallbacks
    def test_propname(self):
        yield self.put(BOX + "a.txt")
        yield self.proppatch(BOX + "a.txt", proppatch_body('<x:color xmlns:x="urn:t">red</x:color>'))
        yield self.mkcol(BOX + "col")
        answer = yield self.propfind(BOX, "1", PROPNAME)
        self.assertEqual(answer.code, 207)
        found = responses(answer.xml())
        names = found[BOX + "a.txt"][200]
        self.assertEqual(sorted(tags(names)), sorted(LIVE_FILE + BY_NAME + ["{urn:t}color"]))
        self.assertEqual(sorted(tags(found[BOX + "col/"][200])), sorted(LIVE_COMMON + BY_NAME))
        for stats in found.values():
            for el in stats[200]:
                self.assertEqual((el.text, len(el), dict(el.attrib)), (None, 0, {}),
                                 "propname gives names only: %s" % el.tag)
        self.assertNotIn(b"red", answer.body)

    @defer.inlineCallbacks
    def test_prop_known_live_dead_and_unknown(self):
        yield self.put(BOX + "a.txt", b"12345")
        yield self.proppatch(BOX + "a.txt", proppatch_body(
            '<x:color xmlns:x="urn:t">red</x:color>', '<bare xmlns="">b</bare>'))
        body = prop_request('<D:getcontentlength/>', '<x:color xmlns:x="urn:t"/>',
                            '<x:missing xmlns:x="urn:t"/>', '<D:displayname/>',
                            '<bare xmlns=""/>', '<nothing xmlns=""/>')
        answer = yield self.propfind(BOX + "a.txt", "0", body)
        self.assertEqual(answer.code, 207)
        stats = responses(answer.xml())[BOX + "a.txt"]
        self.assertEqual(sorted(stats), [200, 404])
        found = by_tag(stats[200])
        self.assertEqual(list(found), ["{DAV:}getcontentlength", "{urn:t}color", "bare"])
        self.assertEqual(found["{DAV:}getcontentlength"].text, "5")
        self.assertEqual(found["{urn:t}color"].text, "red")
        self.assertEqual(found["bare"].text, "b")
        self.assertEqual(tags(stats[404]), ["{urn:t}missing", "{DAV:}displayname", "nothing"])
        for el in stats[404]:
            self.assertEqual((el.text, len(el)), (None, 0))

    @defer.inlineCallbacks
    def test_prop_only_unknown(self):
        answer = yield self.propfind(BOX, "0", prop_request('<x:m xmlns:x="urn:t"/>'))
        self.assertEqual(answer.code, 207)
        stats = responses(answer.xml())[BOX]
        self.assertEqual(list(stats), [404])
        self.assertEqual(tags(stats[404]), ["{urn:t}m"])

    @defer.inlineCallbacks
    def test_file_only_properties_are_missing_on_collections(self):
        answer = yield self.propfind(BOX, "0", prop_request(
            "<D:getcontentlength/>", "<D:getcontenttype/>", "<D:getetag/>"))
        stats = responses(answer.xml())[BOX]
        self.assertEqual(tags(stats[200]), ["{DAV:}getetag"])
        self.assertEqual(tags(stats[404]), ["{DAV:}getcontentlength", "{DAV:}getcontenttype"])

    # -- refused bodies ------------------------------------------------------

    @defer.inlineCallbacks
    def test_bad_bodies(self):
        bodies = [
            b'<D:propertyupdate xmlns:D="DAV:"/>',  # another root
            b'<propfind><allprop/></propfind>',  # no namespace
            b'<D:propfind xmlns:D="urn:not-dav"><D:allprop/></D:propfind>',
            b'<D:propfind xmlns:D="DAV:"><D:allprop/>',  # not well-formed
            b'<D:propfind xmlns:D="DAV:"><D:allprop></D:propfind>',
            b'not xml at all',
            b'<x:propfind xmlns:D="DAV:"><D:allprop/></x:propfind>',  # unbound prefix
            b'<D:propfind xmlns:D="DAV:" xmlns:x=""><D:allprop/></D:propfind>',  # bad decl
            b'<D:propfind xmlns:D="DAV:"><D:prop/><D:allprop/></D:propfind>',
            b'<D:propfind xmlns:D="DAV:"><D:unknown/></D:propfind>',
            '<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'.encode("utf-16-le"),
            b'\xff\xfe<bad',
        ]
        for body in bodies:
            answer = yield self.propfind(BOX, "0", body)
            self.assertError(answer, 400, "PR400-DV-0001")
            self.assertEqual(answer.json()["message"]["value"], "XML parse error.")

    @defer.inlineCallbacks
    def test_billion_laughs_refused(self):
        body = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
                b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
                b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n'
                b'<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">\n'
                b']>\n<D:propfind xmlns:D="DAV:"><D:prop><x:a xmlns:x="urn:&lol4;"/>'
                b'</D:prop></D:propfind>')
        answer = yield self.propfind(BOX, "0", body)
        self.assertError(answer, 400, "PR400-DV-0001")
        self.assertNotIn(b"lol", answer.body)

    @defer.inlineCallbacks
    def test_external_entity_refused(self):
        body = (b'<?xml version="1.0"?>\n<!DOCTYPE D:propfind [\n'
                b'<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
                b'<D:propfind xmlns:D="DAV:"><D:prop><D:x>&xxe;</D:x></D:prop></D:propfind>')
        answer = yield self.propfind(BOX, "0", body)
        self.assertError(answer, 400, "PR400-DV-0001")
        self.assertNotIn(b"root:", answer.body)
        self.assertNotIn(b"passwd", answer.body)

    @defer.inlineCallbacks
    def test_plain_doctype_refused(self):
        body = b'<!DOCTYPE D:propfind><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
        answer = yield self.propfind(BOX, "0", body)
        self.assertError(answer, 400, "PR400-DV-0001")

    # -- the multistatus -----------------------------------------------------

    @defer.inlineCallbacks
    def test_content_type_and_dav_prefix(self):
        yield self.put(BOX + "a.txt")
        for body in (b"", ALLPROP, PROPNAME, prop_request("<D:getetag/>", '<x:n xmlns:x="urn:t"/>')):
            for depth in ("0", "1"):
                answer = yield self.propfind(BOX, depth, body)
                self.assertEqual(answer.code, 207)
                self.assertEqual(answer.header("content-type"), XML_TYPE)
                self.assertTrue(answer.body.startswith(b'<?xml version="1.0" encoding="utf-8"?>'))
                self.assertIn(b'<D:multistatus xmlns:D="DAV:">', answer.body)
                root = answer.xml()
                for el in root.iter():
                    if isinstance(el.tag, str) and el.tag.startswith("{DAV:}"):
                        self.assertEqual(el.prefix, "D", el.tag)
                self.assertEqual(re.findall(rb'xmlns:(\w+)="DAV:"', answer.body), [b"D"])

    @defer.inlineCallbacks
    def test_hrefs_absolute_and_percent_encoded(self):
        names = ["日本語.txt", "a#b%c.txt", "ไทย", "😀&x.txt", "e\u0301t\u00e9"]
        yield self.mkcol(BOX + "col")
        for name in names:
            if "." in name:
                yield self.put(BOX + "col/" + quote(name))
            else:
                yield self.mkcol(BOX + "col/" + quote(name))
        answer = yield self.propfind(BOX + "col", "1")
        self.assertEqual(answer.code, 207)
        hrefs = list(responses(answer.xml()))
        for href in hrefs:
            self.assertTrue(href.startswith("/cell1/box1/col/"), href)
            self.assertRegex(href, r"^[\x21-\x7e]+$")  # ASCII, no space
            for ch in "#?\"<> ":
                self.assertNotIn(ch, href)
        decoded = sorted(unquote(h) for h in hrefs)
        expected = sorted([BOX + "col/"] + [BOX + "col/" + n + ("" if "." in n else "/")
                                            for n in names])
        self.assertEqual(decoded, expected)
        self.assertIn("/cell1/box1/col/a%23b%25c.txt", hrefs)

    @defer.inlineCallbacks
    def test_collection_without_trailing_slash_answered_directly(self):
        yield self.mkcol(BOX + "col")
        yield self.mkcol(BOX + "svc", service=True)
        for path, href in [(BOX + "col", BOX + "col/"), ("/cell1/box1", BOX),
                           (BOX + "svc", BOX + "svc/"), (BOX + "svc/__src", BOX + "svc/__src/")]:
            answer = yield self.propfind(path, "0")
            self.assertEqual(answer.code, 207, path)
            self.assertIsNone(answer.header("location"))
            self.assertEqual(list(responses(answer.xml())), [href])

    @defer.inlineCallbacks
    def test_missing_resource_is_404(self):
        answer = yield self.propfind(BOX + "nothing", "0")
        self.assertError(answer, 404, "PR404-DV-0001")

    # -- live properties -----------------------------------------------------

    @defer.inlineCallbacks
    def test_live_properties_of_a_file(self):
        put = yield self.put(BOX + "a.txt", b"hello world", "text/x-test; charset=utf-8")
        get = yield self.request("GET", BOX + "a.txt")
        self.assertEqual(get.code, 200)
        found = yield self.props_of(BOX + "a.txt")
        self.assertEqual(sorted(found), sorted(LIVE_FILE))
        self.assertEqual(found["{DAV:}getetag"].text, get.header("etag"))
        self.assertEqual(found["{DAV:}getetag"].text, put.header("etag"))
        self.assertRegex(found["{DAV:}getetag"].text, r'^"1-\d+"$')
        self.assertEqual(found["{DAV:}getcontentlength"].text, "11")
        self.assertEqual(found["{DAV:}getcontenttype"].text, "text/x-test; charset=utf-8")
        self.assertEqual(len(found["{DAV:}resourcetype"]), 0)
        self.assertFalse((found["{DAV:}resourcetype"].text or "").strip())
        created = found["{DAV:}creationdate"].text
        self.assertRegex(created, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        modified = found["{DAV:}getlastmodified"].text
        self.assertRegex(modified, r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$")
        self.assertEqual(modified, get.header("last-modified") or modified)
        # the ETag's milliseconds are the last modification
        millis = int(found["{DAV:}getetag"].text.strip('"').split("-")[1])
        self.assertEqual(int(parsedate_to_datetime(modified).timestamp()), millis // 1000)

    @defer.inlineCallbacks
    def test_etag_follows_updates(self):
        yield self.put(BOX + "a.txt", b"one")
        second = yield self.put(BOX + "a.txt", b"two!")
        found = yield self.props_of(BOX + "a.txt")
        self.assertEqual(found["{DAV:}getetag"].text, second.header("etag"))
        self.assertTrue(found["{DAV:}getetag"].text.startswith('"2-'))
        self.assertEqual(found["{DAV:}getcontentlength"].text, "4")
        patched = yield self.proppatch(BOX + "a.txt", proppatch_body('<x:a xmlns:x="urn:t"/>'))
        found = yield self.props_of(BOX + "a.txt")
        self.assertEqual(found["{DAV:}getetag"].text, patched.header("etag"))
        self.assertTrue(found["{DAV:}getetag"].text.startswith('"3-'))
        get = yield self.request("GET", BOX + "a.txt")
        self.assertEqual(get.header("etag"), patched.header("etag"))

    @defer.inlineCallbacks
    def test_live_properties_of_collections(self):
        made = yield self.mkcol(BOX + "col")
        yield self.mkcol(BOX + "svc", service=True)
        col = yield self.props_of(BOX + "col")
        self.assertEqual(sorted(col), sorted(LIVE_COMMON))
        self.assertEqual(tags(col["{DAV:}resourcetype"]), ["{DAV:}collection"])
        if made.header("etag"):
            self.assertEqual(col["{DAV:}getetag"].text, made.header("etag"))
        self.assertRegex(col["{DAV:}getetag"].text, r'^"\d+-\d+"$')
        svc = yield self.props_of(BOX + "svc")
        self.assertEqual(sorted(svc), sorted(LIVE_COMMON))
        self.assertEqual(tags(svc["{DAV:}resourcetype"]),
                         ["{DAV:}collection", "{%s}service" % PNS])
        src = yield self.props_of(BOX + "svc/__src")
        self.assertEqual(tags(src["{DAV:}resourcetype"]), ["{DAV:}collection"])
        box = yield self.props_of(BOX)
        self.assertEqual(tags(box["{DAV:}resourcetype"]), ["{DAV:}collection"])

    @defer.inlineCallbacks
    def test_file_in_src_has_file_properties(self):
        yield self.mkcol(BOX + "svc", service=True)
        yield self.put(BOX + "svc/__src/sample.js", b"function(){}", "text/javascript")
        answer = yield self.propfind(BOX + "svc/__src", "1")
        found = responses(answer.xml())
        props = by_tag(found[BOX + "svc/__src/sample.js"][200])
        self.assertEqual(props["{DAV:}getcontenttype"].text, "text/javascript")
        self.assertEqual(props["{DAV:}getcontentlength"].text, "12")

    # -- large listings --------------------------------------------------------

    @defer.inlineCallbacks
    def test_depth_1_streamed_listing(self):
        count = SLICE * 2 + 37
        box_dir = os.path.join(self.data, "cell1", "box1")
        os.mkdir(os.path.join(box_dir, "big"))
        yield self.proppatch(BOX + "big", proppatch_body('<x:own xmlns:x="urn:t">me</x:own>'))
        big = os.path.join(box_dir, "big")
        names = ["f%04d-ü.txt" % i for i in range(count)]
        for name in names:
            with open(os.path.join(big, name), "wb") as f:
                f.write(b"x" * 3)
        yield self.mkcol(BOX + "big/zz-sub")
        middle = names[count // 2]  # in a slice of its own, neither first nor last
        yield self.proppatch(BOX + "big/" + middle,
                             proppatch_body('<x:tag xmlns:x="urn:t">v</x:tag>'))
        streamed = []
        original = propfind_method._stream

        def stream(request, chunks):
            streamed.append(1)
            return original(request, chunks)

        self.patch(propfind_method, "_stream", stream)
        answer = yield self.propfind(BOX + "big", "1")
        self.assertEqual(answer.code, 207)
        self.assertEqual(answer.header("content-type"), XML_TYPE)
        self.assertEqual(streamed, [1])  # the streamed path, not one buffered body
        root = answer.xml()  # well-formed
        hrefs = [h.text for h in root.findall("D:response/D:href", NS)]
        self.assertEqual(len(hrefs), len(set(hrefs)))
        expected = {BOX + "big/"} | {BOX + "big/" + n for n in names} | {BOX + "big/zz-sub/"}
        self.assertEqual({unquote(h) for h in hrefs}, expected)
        found = responses(root)
        dead = by_tag(found[BOX + "big/" + quote(middle)][200])
        self.assertEqual(dead["{urn:t}tag"].text, "v")
        self.assertEqual(dead["{DAV:}getcontentlength"].text, "3")
        own = by_tag(found[BOX + "big/"][200])
        self.assertEqual(own["{urn:t}own"].text, "me")
        self.assertNotIn(b"props.xml", answer.body)
        self.assertNotIn(b"lock</D:href>", answer.body)

    @defer.inlineCallbacks
    def test_bookkeeping_files_never_listed(self):
        yield self.mkcol(BOX + "col")
        yield self.proppatch(BOX + "col", proppatch_body('<x:a xmlns:x="urn:t"/>'))
        yield self.put(BOX + "col/f.txt")
        yield self.proppatch(BOX + "col/f.txt", proppatch_body('<x:a xmlns:x="urn:t"/>'))
        answer = yield self.propfind(BOX + "col", "1")
        self.assertEqual(sorted(responses(answer.xml())), [BOX + "col/", BOX + "col/f.txt"])
        self.assertNotIn(b"%3A", answer.body)

    @defer.inlineCallbacks
    def test_unreadable_sidecar_is_a_json_500(self):
        yield self.mkcol(BOX + "col")
        sidecar = os.path.join(self.data, "cell1", "box1", "col", layout.SIDECAR)
        with open(sidecar, "wb") as f:
            f.write(b'<s:sidecar xmlns:s="urn:x-personium-dav:sidecar" version="9.0"/>')
        self.server.store.tree.sidecars.forget()
        for path, depth in ((BOX + "col", "0"), (BOX + "col/", "1"), (BOX, "1")):
            answer = yield self.propfind(path, depth)
            self.assertError(answer, 500, "PR500-SV-0000")
            self.assertNotIn(self.data.encode(), answer.body)
            self.assertNotIn(b"Traceback", answer.body)
        self.assertEqual(len(self.flushLoggedErrors(props.CorruptSidecar)), 3)


class PlainFormattingTests(SynchronousTestCase):
    """allprop's plain formatting says exactly what the generic writer says."""

    def test_all_live_is_the_join_of_live_values(self):
        from personium_dav.dav.live import all_live, live_values
        from personium_dav.store.tree import Info

        infos = [Info(kind=k, name="n", path="/p", created=1795476700123,
                      modified=1795476750999, version=3) for k in
                 ("box", "collection", "service", "src")]
        infos.append(Info(kind="file", name="f", path="/p", size=12, created=1, modified=2,
                          content_type='text/x-a&b<c>; q="1"'))
        for info in infos:
            self.assertEqual(all_live(info), "".join(v for _, v in live_values(info, allprop=True)))
            head = "<D:response><D:href>/a&amp;b</D:href><D:propstat><D:prop>"
            props_ = {("urn:t", "a"): b'<x:a xmlns:x="urn:t">\xc3\xbc</x:a>'}
            info.props = props_
            self.assertEqual(
                propfind_method.response("/a&b", info, "allprop", []),
                (head + all_live(info) + props_[("urn:t", "a")].decode("utf-8") +
                 "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
                 ).encode("utf-8"))


class Amplification(DavMixin, DavTestCase):
    """A PROPFIND naming many properties: capped (--max-propfind-names), and
    written a slice of members at a time, nothing of it kept."""

    def names(self, count):
        return prop_request(*('<x:p%d xmlns:x="urn:amp"/>' % i for i in range(count)))

    @defer.inlineCallbacks
    def test_cap(self):
        answer = yield self.propfind(BOX, "1", self.names(1001))
        self.assertError(answer, 400, "PR400-DV-0006",
                         "XML validate error. Cause:[more than 1000 property names in one "
                         "PROPFIND].")

    @defer.inlineCallbacks
    def test_many_names_many_members(self):
        yield self.mkcol(BOX + "c")
        for i in range(3 * SLICE):
            yield self.put(BOX + "c/f%03d.txt" % i)
        slices = []
        real = propfind_method.Slices

        class Counting(real):
            def __init__(self, *args):
                super().__init__(*args)
                slices.append(self)

        self.patch(propfind_method, "Slices", Counting)
        answer = yield self.propfind(BOX + "c", "1", self.names(1000))
        self.assertEqual(answer.code, 207)
        found = responses(answer.xml())
        self.assertEqual(len(found), 3 * SLICE + 1)
        for stats in found.values():
            self.assertEqual(len(stats[404]), 1000)
        self.assertEqual(len(slices), 1)  # the streamed path
        listing = self.server.store.tree.members(
            os.path.join(self.data, "cell1", "box1", "c"))
        self.assertTrue(all(m.rendered is None for m in listing))  # too large to keep


class HandMadeNames(DavMixin, DavTestCase):
    @defer.inlineCallbacks
    def test_names_no_url_reaches_are_not_listed(self):
        """Files put in a box by hand whose names are not UTF-8 or break the
        name rule: never listed, never a 500."""
        box = os.path.join(self.data, "cell1", "box1").encode()
        for name in (b"\xff\xfe.txt", b"a:b.txt", b"tab\t.txt"):
            with open(os.path.join(box, name), "wb") as f:
                f.write(b"x")
        yield self.put(BOX + "fine.txt")
        for accept in (None, "text/html"):
            answer = yield self.request("GET", BOX, headers={"Accept": accept} if accept else {})
            self.assertEqual(answer.code, 200)
        answer = yield self.propfind(BOX, "1")
        self.assertEqual(answer.code, 207)
        self.assertEqual(sorted(responses(answer.xml())), [BOX, BOX + "fine.txt"])


class StreamedOverLoopback(TestCase):
    """The streamed listing through twisted.web's real HTTP channel and a
    real socket: it waits for a slice being rendered without calling
    anything in the meantime, and it stops writing while the client does
    not read."""

    def big(self, server, count, name_length=8):
        big = os.path.join(server.data, "cell1", "box1", "big")
        os.mkdir(big)
        for i in range(count):
            with open(os.path.join(big, ("f%06d" % i).ljust(name_length, "n")), "wb") as f:
                f.write(b"x")

    def counting(self, slow=None, send_buffer=None):
        """Slices that count the calls asking them for more, whose
        renderings in the pool first wait for ``slow`` (an Event) if given,
        and whose connection's socket has a send buffer of ``send_buffer``
        bytes if given (a slow network: the kernel takes little at a time)."""
        made = []
        real = propfind_method.Slices

        class Counting(real):
            resumed = 0

            def __init__(self, *args):
                super().__init__(*args)
                made.append(self)
                if send_buffer is not None:
                    self.request.channel.transport.socket.setsockopt(
                        socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
                render = self.render
                if slow is not None:
                    def waiting(part):
                        slow.wait(10)
                        return render(part)

                    self.render = waiting

            def resumeProducing(self):
                self.resumed += 1
                return super().resumeProducing()

        self.patch(propfind_method, "Slices", Counting)
        return made

    @defer.inlineCallbacks
    def test_waits_for_a_slice_without_spinning(self):
        """A slice rendered in the pool for 0.3 s: nothing asks the producer
        for more meanwhile (a pull producer is called in a loop by
        twisted.web for 10 ms a reactor turn, keeping every other request
        waiting)."""
        server = hardening.LoopbackServer(self)
        self.big(server, 3 * SLICE)
        slow = threading.Event()
        made = self.counting(slow)
        reactor.callLater(0.3, slow.set)
        http = hardening.HTTP(server.url, auth=server.authHeaders)
        answer = yield http("PROPFIND", BOX + "big/", headers={"Depth": "1"})
        self.assertEqual(answer.code, 207)
        self.assertEqual(len(responses(etree.fromstring(answer.body))), 3 * SLICE + 1)
        self.assertEqual(len(made), 1)
        self.assertLess(made[0].resumed, 20)

    @defer.inlineCallbacks
    def test_a_client_that_does_not_read_pauses_the_listing(self):
        """1.2 MB of listing to a client that reads nothing for a while: the
        server stops once the socket buffers are full, then goes on and
        ends a well-formed answer when the client reads."""
        server = hardening.LoopbackServer(self)
        count = 30 * SLICE
        self.big(server, count, name_length=200)
        made = self.counting(send_buffer=4096)
        conn = http.client.HTTPConnection("127.0.0.1", server.portNumber, timeout=60)
        self.addCleanup(conn.close)
        conn.sock = socket.socket()
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
        conn.sock.connect(("127.0.0.1", server.portNumber))
        conn.request("PROPFIND", BOX + "big/", headers=dict(server.authHeaders, Depth="1"))
        yield hardening.sleep(1.0)
        self.assertEqual(len(made), 1)
        self.assertTrue(made[0].paused)
        self.assertLess(made[0].next, count // 2)  # not written ahead of the client
        answer = yield hardening.in_thread(conn.getresponse)  # off the reactor: it blocks
        body = yield hardening.in_thread(answer.read)
        self.assertTrue(made[0].stopped)
        # resumed by the transport once the client read (once may be all:
        # a client that then reads fast keeps the buffers from filling again)
        self.assertGreaterEqual(made[0].resumed, 1)
        self.assertEqual(answer.status, 207)
        self.assertEqual(answer.getheader("transfer-encoding"), "chunked")
        self.assertEqual(len(responses(etree.fromstring(body))), count + 1)
