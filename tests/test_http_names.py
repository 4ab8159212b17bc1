"""docs/behaviour.md §3 names over HTTP: refused names, traversal, multibyte and long names."""
import os
from urllib.parse import quote, unquote

from twisted.internet import defer

from .support.steps import BOX, DavSteps

BAD_CHARS = '\\/:*?"<>| \x00\x01\x09\x0a\x0d\x1f\x7f\x85\x9f'


def enc(name):
    return quote(name, safe="")


class BadNameTests(DavSteps):
    @defer.inlineCallbacks
    def assertRefused(self, segment, name):
        """PUT and MKCOL of ``segment`` are 403 naming ``name``; reading it is 404."""
        for method in ("PUT", "MKCOL"):
            answer = yield self.request(method, BOX + segment, b"", {"Content-Type": "text/plain"})
            self.assertError(answer, 403, "PR403-DV-0004", "Resource name is invalid [%s]." % name)
        for method in ("GET", "PROPFIND", "DELETE", "PROPPATCH"):
            answer = yield self.request(method, BOX + segment, headers={"Depth": "0"})
            self.assertError(answer, 404, "PR404-DV-0001")

    @defer.inlineCallbacks
    def test_each_bad_character(self):
        for c in BAD_CHARS:
            for name in ("a%sb" % c, c, c + "x"):
                yield self.assertRefused(enc(name), name)
        self.assertEqual((yield self.hrefs(BOX)), [BOX])

    @defer.inlineCallbacks
    def test_dots(self):
        for segment, name in [("%2e", "."), ("%2e%2e", ".."), ("%2E%2E", "..")]:
            yield self.assertRefused(segment, name)
        yield self.put(BOX + "...", status=(201,))
        yield self.put(BOX + "a%2e%2e", status=(201,))
        self.assertEqual((yield self.hrefs(BOX)), [BOX, BOX + "...", BOX + "a.."])

    @defer.inlineCallbacks
    def test_encoded_slash(self):
        yield self.mkcol(BOX + "a")
        yield self.assertRefused("a%2fb", "a/b")
        self.assertEqual((yield self.hrefs(BOX + "a")), [BOX + "a/"])

    @defer.inlineCallbacks
    def test_invalid_utf8(self):
        for segment, shown in [("%ff", "\\xff"), ("a%c3", "a\\xc3"), ("%c0%ae%c0%ae", "\\xc0\\xae\\xc0\\xae")]:
            yield self.assertRefused(segment, shown)
        answer = yield self.request("PUT", BOX + "%ff/x.txt", b"x")
        self.assertError(answer, 404, "PR404-DV-0001")

    @defer.inlineCallbacks
    def test_bad_intermediate_segment(self):
        """Code's choice: a path through an invalid name is 404 even to PUT."""
        for segment in ("%2e%2e", "a%3ab", "%ff", "%3aprops.xml"):
            answer = yield self.request("PUT", BOX + segment + "/x.txt", b"x")
            self.assertError(answer, 404, "PR404-DV-0001")

    @defer.inlineCallbacks
    def test_no_way_out_of_the_box(self):
        for path in ["/cell1/box1/%2e%2e/%2e%2e/escape.txt", "/cell1/box1/%2e%2e%2fescape.txt",
                     "/cell1/box1/..%2f..%2fescape.txt", "/cell1/%2e%2e/escape.txt"]:
            answer = yield self.request("PUT", path, b"x", {"Content-Type": "text/plain"})
            self.assertIn(answer.code, (403, 404), path)
        found = [f for _, _, files in os.walk(os.path.dirname(self.data)) for f in files
                 if f == "escape.txt" or f.endswith("escape.txt")]
        self.assertEqual(found, [])

    @defer.inlineCallbacks
    def test_bookkeeping_names(self):
        yield self.put(BOX + "f.txt")
        for name in (":props.xml", ":lock", ":tmp", ":h" + "0" * 64, ":trash"):
            yield self.assertRefused(enc(name), name)
        for path in ("/%3atmp/", "/%3atrash/x", "/cell1/%3aprops.xml", "/cell1/box1/%3aprops.xml"):
            answer = yield self.request("GET", path)
            self.assertEqual(answer.code, 404, path)
            self.assertNotIn(b"sidecar", answer.body)


class MultibyteNameTests(DavSteps):
    LONG = "日本語の名前" * 42 + "テストだ"  # 256 characters, 768 bytes of UTF-8

    @defer.inlineCallbacks
    def roundtrip(self, name, body=b"content"):
        """PUT, GET, PROPFIND of a file called ``name``; its href."""
        path = BOX + enc(name)
        yield self.put(path, body, status=(201,))
        self.assertEqual((yield self.body_of(path)), body)
        (own,) = yield self.hrefs(path, "0")
        self.assertEqual(own, BOX + enc(name))
        listed = yield self.hrefs(BOX)
        self.assertIn(own, listed)
        return own

    @defer.inlineCallbacks
    def test_256_characters(self):
        self.assertEqual(len(self.LONG), 256)
        href = yield self.roundtrip(self.LONG)
        self.assertTrue(href.isascii(), href)
        self.assertEqual(unquote(href), BOX + self.LONG)
        other = "別" * 256
        answer = yield self.move(BOX + enc(self.LONG), BOX + enc(other))
        self.assertEqual(answer.code, 201, answer.body)
        self.assertEqual((yield self.body_of(BOX + enc(other))), b"content")
        self.assertFalse((yield self.exists(BOX + enc(self.LONG))))
        self.assertEqual([unquote(h) for h in (yield self.hrefs(BOX))], [BOX, BOX + other])

    @defer.inlineCallbacks
    def test_257_characters(self):
        name = self.LONG + "x"
        answer = yield self.request("PUT", BOX + enc(name), b"x", {"Content-Type": "text/plain"})
        self.assertError(answer, 403, "PR403-DV-0004", "Resource name is invalid [%s]." % name)
        answer = yield self.request("GET", BOX + enc(name))
        self.assertError(answer, 404, "PR404-DV-0001")
        yield self.put(BOX + "f.txt")
        answer = yield self.move(BOX + "f.txt", BOX + enc(name))
        self.assertError(answer, 403, "PR403-DV-0004", "Resource name is invalid [%s]." % name)

    @defer.inlineCallbacks
    def test_scripts(self):
        names = ["ภาษาไทย.txt", "café-ñandú-Øre.txt", "cafe\u0301.txt", "😀🀄.txt",
                 "𠮷野家", "\U0001F600" * 256, "한국어 없음".replace(" ", "_"), "עברית"]
        for name in names:
            yield self.roundtrip(name, name.encode("utf-8"))
        listed = {unquote(h) for h in (yield self.hrefs(BOX))}
        self.assertEqual(listed, {BOX} | {BOX + n for n in names})

    @defer.inlineCallbacks
    def test_multibyte_collections(self):
        col = BOX + enc("フォルダ") + "/" + enc("ไทย")
        yield self.mkcol(BOX + enc("フォルダ"))
        yield self.mkcol(col)
        yield self.put(col + "/" + enc("😀.txt"), b"deep")
        self.assertEqual((yield self.hrefs(col)), [col + "/", col + "/" + enc("😀.txt")])
        yield self.ok((yield self.move(BOX + enc("フォルダ"), BOX + enc("ÉTÉ"))), 201)
        self.assertEqual((yield self.body_of(BOX + enc("ÉTÉ") + "/" + enc("ไทย") + "/"
                                             + enc("😀.txt"))), b"deep")

    @defer.inlineCallbacks
    def test_error_url_is_percent_encoded(self):
        answer = yield self.request("PUT", BOX + enc("無い") + "/x.txt", b"x")
        self.assertError(answer, 409, "PR409-DV-0001",
                         "intermediate collection [http://localhost/cell1/box1/%s/] "
                         "should be created first." % enc("無い"))


class LongNameOnDiskTests(DavSteps):
    def disk_names(self):
        """Every file and directory name below the box."""
        box = os.path.join(self.data, "cell1", "box1")
        out = []
        for _, dirs, files in os.walk(box):
            out += dirs + files
        return out

    @defer.inlineCallbacks
    def test_hashed_on_disk(self):
        name = "長" * 256
        col = "コレクション" * 40 + "X"  # 241 characters, 721 bytes
        yield self.put(BOX + enc(name), b"long")
        yield self.mkcol(BOX + enc(col))
        yield self.put(BOX + enc(col) + "/" + enc(name), b"inside")
        on_disk = self.disk_names()
        self.assertTrue(all(len(n.encode("utf-8")) <= 255 for n in on_disk), on_disk)
        self.assertNotIn(name, on_disk)
        self.assertNotIn(col, on_disk)
        hashed = [n for n in on_disk if n.startswith(":h")]
        self.assertEqual(len(hashed), 3, on_disk)
        self.assertEqual({unquote(h) for h in (yield self.hrefs(BOX))},
                         {BOX, BOX + name, BOX + col + "/"})
        self.assertEqual((yield self.body_of(BOX + enc(col) + "/" + enc(name))), b"inside")

    @defer.inlineCallbacks
    def test_short_names_stay_as_they_are(self):
        yield self.put(BOX + enc("あ" * 80), b"x")  # 240 bytes
        self.assertIn("あ" * 80, self.disk_names())

    @defer.inlineCallbacks
    def test_move_and_copy_between_long_and_short(self):
        long1, long2 = "α" * 200, "β" * 256
        yield self.put(BOX + enc(long1), b"v")
        yield self.ok((yield self.copy(BOX + enc(long1), BOX + enc(long2))), 201)
        yield self.ok((yield self.move(BOX + enc(long1), BOX + "short.txt")), 201)
        yield self.ok((yield self.move(BOX + "short.txt", BOX + enc(long1))), 201)
        self.assertEqual({unquote(h) for h in (yield self.hrefs(BOX))},
                         {BOX, BOX + long1, BOX + long2})
        self.assertEqual((yield self.body_of(BOX + enc(long2))), b"v")
        self.assertTrue(all(len(n.encode("utf-8")) <= 255 for n in self.disk_names()))
        for name in (long1, long2):
            yield self.ok((yield self.request("DELETE", BOX + enc(name))), 204)
        self.assertEqual((yield self.hrefs(BOX)), [BOX])
        self.assertEqual([n for n in self.disk_names() if not n.startswith(":") or
                          n.startswith(":h")], [])
