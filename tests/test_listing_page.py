"""The listing page a browser gets for a collection (web/listing_page.py),
in memory: rows, sorting, breadcrumbs, service routes, its own ETag and
304, the security headers, hostile names; and what other clients keep
getting (the plain index with the collection's ETag)."""
import os
import time
from urllib.parse import quote

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from personium_dav.config import Config
from personium_dav.web import listing_page
from .support import pages
from .support.dav import SERVICE_MKCOL, XML
from .support.helpers import BOX, DavTestCase

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SERVICE_PROP = (
    '<D:propertyupdate xmlns:D="DAV:" xmlns:p="urn:x-personium:xmlns"><D:set><D:prop>'
    '<p:service language="JavaScript" subject="engine">'
    '<p:path name="hello" src="hello.js"/>'
    '<p:path name="items/{id: &lt;script&gt;[0-9]{3}}" src="items.js"/>'
    "</p:service></D:prop></D:set></D:propertyupdate>").encode("utf-8")
# valid names (rfc4918 allows spaces) that would break careless markup or URLs
TRICKY = ["a' onmouseover='alert(1)", "&lt;b&gt;amp&amp;.txt", "100% #1.txt",
          "日本語 ファイル.txt", "x'y&z=1;.txt"]
# names no request can create (< > " are refused), planted on the disk
PLANTED = ["<img src=x onerror=alert(1)>.txt", '"><svg onload=alert(1)>', "<script>alert(1)<!--", "<b>bold<b>"]


class PureTests(SynchronousTestCase):
    def test_wants_html(self):
        for accept in ("text/html", HTML["Accept"], "TEXT/HTML; charset=utf-8",
                       "application/xhtml+xml", "text/plain, text/html;q=0.5"):
            self.assertTrue(listing_page.wants_html(accept), accept)
        for accept in (None, "", "*/*", "application/xml", "text/html;q=0",
                       "text/html; q=0.000, application/json", "text/htmlx"):
            self.assertFalse(listing_page.wants_html(accept), accept)

    def test_sort_of(self):
        self.assertEqual(listing_page.sort_of({}), ("name", "asc"))
        self.assertEqual(listing_page.sort_of({b"sort": [b"size"], b"order": [b"desc"]}),
                         ("size", "desc"))
        self.assertEqual(listing_page.sort_of({b"sort": [b"MODIFIED"]}), ("modified", "asc"))
        for bad in ([b"bogus"], [b""], [b"\xff\xfe"], [b"size;drop"]):
            self.assertEqual(listing_page.sort_of({b"sort": bad, b"order": bad}),
                             ("name", "asc"))

    def test_human_size(self):
        self.assertEqual(listing_page.human_size(0), "0 bytes")
        self.assertEqual(listing_page.human_size(1023), "1023 bytes")
        self.assertEqual(listing_page.human_size(1536), "1.5 KiB")
        self.assertEqual(listing_page.human_size(200 * 1024 ** 2), "200.0 MiB")
        self.assertEqual(listing_page.human_size(3 * 1024 ** 5), "3072.0 TiB")


class ListingPageTests(DavTestCase):
    config = Config(collection_semantics="rfc4918")

    @defer.inlineCallbacks
    def page(self, path=BOX, query="", headers=None, code=200):
        hdrs = dict(HTML)
        hdrs.update(headers or {})
        answer = yield self.request("GET", path + query, headers=hdrs)
        if code is not None:
            self.assertEqual(answer.code, code, answer.body)
        return answer

    @defer.inlineCallbacks
    def fill(self):
        """Three files of different sizes and times, a folder, a service."""
        for name, size in (("b.txt", 300), ("A.txt", 10), ("c.bin", 2000)):
            yield self.request("PUT", BOX + name, b"x" * size)
            time.sleep(0.005)  # distinct modification times
        yield self.request("MKCOL", BOX + "folder")
        answer = yield self.request("MKCOL", BOX + "svc", SERVICE_MKCOL, XML)
        self.assertEqual(answer.code, 201)
        answer = yield self.request("PROPPATCH", BOX + "svc", SERVICE_PROP, XML)
        self.assertEqual(answer.code, 207, answer.body)

    @defer.inlineCallbacks
    def test_rows_and_headers(self):
        yield self.fill()
        answer = yield self.page()
        self.assertEqual(answer.header("content-type"), "text/html; charset=utf-8")
        csp = answer.header("content-security-policy")
        self.assertIn("default-src 'none'", csp)
        self.assertNotIn("script-src", csp)  # falls back to default-src: no script
        self.assertNotIn("unsafe", csp)
        self.assertEqual(answer.header("x-content-type-options"), "nosniff")
        self.assertEqual(answer.header("vary"), "Accept")
        self.assertTrue(answer.header("etag").startswith('"page-'))
        doc = pages.parse(answer.body)
        self.assertEqual(pages.foreign(doc), [])
        found = pages.rows(doc)
        self.assertEqual([r["name"] for r in found], ["A.txt", "b.txt", "c.bin", "folder", "svc"])
        by_name = {r["name"]: r for r in found}
        self.assertEqual(by_name["b.txt"]["size"], 300)
        self.assertEqual(by_name["b.txt"]["shown_kind"], "file")
        self.assertEqual(by_name["b.txt"]["href"], BOX + "b.txt")
        self.assertEqual((by_name["folder"]["kind"], by_name["folder"]["href"],
                          by_name["folder"]["text"]), ("folder", BOX + "folder/", "folder/"))
        self.assertEqual(by_name["svc"]["kind"], "service")
        self.assertEqual(by_name["svc"]["routes"],
                         [("hello", "hello.js"), ("items/{id: <script>[0-9]{3}}", "items.js")])
        self.assertNotIn(b"<script>", answer.body)
        self.assertEqual(pages.crumbs(doc), [("cell1", None), ("box1", None)])

    @defer.inlineCallbacks
    def test_sorting(self):
        yield self.fill()
        expected = {
            ("name", "asc"): ["A.txt", "b.txt", "c.bin", "folder", "svc"],
            ("kind", "asc"): ["folder", "svc", "A.txt", "b.txt", "c.bin"],
            ("size", "asc"): ["folder", "svc", "A.txt", "b.txt", "c.bin"],
            ("modified", "asc"): ["b.txt", "A.txt", "c.bin", "folder", "svc"],
        }
        for (sort, _), names in list(expected.items()):
            expected[(sort, "desc")] = names[::-1]
        for (sort, order), names in expected.items():
            answer = yield self.page(query="?sort=%s&order=%s" % (sort, order))
            doc = pages.parse(answer.body)
            self.assertEqual([r["name"] for r in pages.rows(doc)], names, (sort, order))
            # the current column links to the other order
            current = doc.xpath("//th[@aria-sort]/a")[0].get("href")
            self.assertEqual(current, "?sort=%s&order=%s" % (
                sort, "desc" if order == "asc" else "asc"))
        default = yield self.page()
        for query in ("?sort=nope&order=sideways", "?sort=", "?order=up", "?sort=%ff",
                      "?sort=name&sort=size"):
            answer = yield self.page(query=query)
            self.assertEqual(answer.body, default.body, query)
            self.assertEqual(answer.header("etag"), default.header("etag"), query)

    @defer.inlineCallbacks
    def test_etag_and_304(self):
        yield self.fill()
        first = yield self.page()
        tag = first.header("etag")
        self.assertNotEqual(tag, (yield self.request("GET", BOX)).header("etag"))
        same = yield self.page()
        self.assertEqual(same.header("etag"), tag)
        not_modified = yield self.page(headers={"If-None-Match": tag}, code=304)
        self.assertEqual(not_modified.header("etag"), tag)
        self.assertEqual(not_modified.body, b"")
        other_sort = yield self.page(query="?sort=size")
        self.assertNotEqual(other_sort.header("etag"), tag)
        yield self.page(query="?sort=size", headers={"If-None-Match": tag}, code=200)

        seen = {tag}
        for method, path, body in [("PUT", "new.txt", b"n"),           # added
                                   ("PUT", "b.txt", b"changed"),       # changed
                                   ("PROPPATCH", "A.txt",              # a property changed
                                    b'<D:propertyupdate xmlns:D="DAV:" xmlns:z="urn:z"><D:set>'
                                    b"<D:prop><z:a>1</z:a></D:prop></D:set></D:propertyupdate>"),
                                   ("DELETE", "c.bin", b""),           # removed
                                   ("MKCOL", "folder/inner", b"")]:    # inside a member: unseen
            answer = yield self.request(method, BOX + path, body)
            self.assertIn(answer.code, (201, 204, 207), (method, path))
            again = yield self.page(headers={"If-None-Match": tag}, code=None)
            if path == "folder/inner":
                self.assertEqual(again.code, 304)
                continue
            self.assertEqual(again.code, 200, (method, path))
            tag = again.header("etag")
            self.assertNotIn(tag, seen)
            seen.add(tag)
        # the plain index keeps the collection's own ETag and its 304
        plain = yield self.request("GET", BOX)
        box_tag = plain.header("etag")
        answer = yield self.request("GET", BOX, headers={"If-None-Match": box_tag})
        self.assertEqual(answer.code, 304)
        # If-Match is the collection's
        yield self.page(headers={"If-Match": '"nope"'}, code=412)
        yield self.page(headers={"If-Match": box_tag}, code=200)

    @defer.inlineCallbacks
    def test_plain_index_unchanged(self):
        """Clients that do not ask for HTML keep the small index."""
        yield self.fill()
        for headers in ({}, {"Accept": "*/*"}, {"Accept": "application/xml"}):
            answer = yield self.request("GET", BOX, headers=headers)
            self.assertEqual(answer.code, 200)
            self.assertTrue(answer.body.startswith(b"<!DOCTYPE html><title>/cell1/box1/</title>"))
            self.assertIn(b'<li><a href="/cell1/box1/folder/">folder/</a></li>', answer.body)
            self.assertNotIn(b"<table>", answer.body)
            self.assertTrue(answer.header("etag").startswith('"1-'))

    @defer.inlineCallbacks
    def test_breadcrumbs_and_head(self):
        yield self.request("MKCOL", BOX + "a%20b")
        yield self.request("MKCOL", BOX + "a%20b/c%23d")
        yield self.request("PUT", BOX + "a%20b/c%23d/f.txt", b"x")
        answer = yield self.page(BOX + "a%20b/c%23d/")
        doc = pages.parse(answer.body)
        self.assertEqual(pages.crumbs(doc), [("cell1", None), ("box1", BOX),
                                             ("a b", BOX + "a%20b/"), ("c#d", None)])
        self.assertEqual([r["href"] for r in pages.rows(doc)], [BOX + "a%20b/c%23d/f.txt"])
        self.assertEqual(doc.findtext(".//title"), "cell1/box1/a b/c#d/")
        head = yield self.request("HEAD", BOX + "a%20b/", headers=HTML)
        self.assertEqual(head.code, 200)
        self.assertEqual(head.body, b"")
        self.assertTrue(head.header("etag").startswith('"page-'))
        empty = yield self.page(BOX + "a%20b/c%23d/")
        self.assertNotIn(b"empty", empty.body)
        yield self.request("DELETE", BOX + "a%20b/c%23d/f.txt")
        empty = yield self.page(BOX + "a%20b/c%23d/")
        self.assertIn(b"This collection is empty.", empty.body)

    @defer.inlineCallbacks
    def test_hostile_names(self):
        """Names cannot add markup or scripts; hrefs lead back to them."""
        for name in TRICKY:
            answer = yield self.request("PUT", BOX + quote(name), b"x")
            self.assertEqual(answer.code, 201, name)
        box_dir = os.path.join(self.data, "cell1", "box1")
        for name in PLANTED:
            with open(os.path.join(box_dir, name), "wb") as f:
                f.write(b"planted")
        answer = yield self.page()
        doc = pages.parse(answer.body)
        self.assertEqual(pages.foreign(doc), [])
        found = {r["name"]: r for r in pages.rows(doc)}
        # names planted on the disk that break the name rule are never
        # listed (no URL could reach them)
        self.assertEqual(set(found), set(TRICKY))
        for name in TRICKY:
            self.assertEqual(found[name]["text"], name)
            got = yield self.request("GET", found[name]["href"])
            self.assertEqual((got.code, got.body), (200, b"x"), name)
        for raw in (b"<img", b"<svg", b"<b>", b"<script", b"onerror=alert(1)>"):
            self.assertNotIn(raw, answer.body)
