"""The listing page in a real browser: headless Chromium (Debian
``chromium``) loads a collection of the real ``twistd -n personium-dav``
with an account's Basic credentials in the URL (Chromium answers the 401
challenge with them), under each sort; the test reads the DOM Chromium
built (``--dump-dom``): the rows and their order, the breadcrumbs, a
service collection's routes, and no element injected by hostile names; and
keeps a screenshot (``page.png``) in its temporary folder.

Skipped without chromium unless the environment variable CI is set (then it
fails).
"""
import os
import struct
from urllib.parse import quote

from twisted.internet import defer, threads
from twisted.trial import unittest

from .support import pages
from .support.clientauth import BOX_PATH, fetch, requireTool, startClientServer
from .support.mounts import run

RFC4918 = ("--collection-semantics", "rfc4918")
CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync"]
# (name, size, X-OC-Mtime): sizes and times in an order of their own
FILES = [("b report.txt", 300, 1_600_000_000), ("A notes.txt", 10, 1_700_000_000),
         ("c photo #1.jpg", 2000, 1_500_000_000), ("d 100% done.txt", 0, 1_650_000_000)]
TRICKY = ["e' onmouseover='alert(1)", "f&amp;x=1;.txt"]
PLANTED = ["<img src=x onerror=alert(1)>.txt", "<script>alert(2)<!--.txt"]
SERVICE = (
    '<D:propertyupdate xmlns:D="DAV:" xmlns:p="urn:x-personium:xmlns"><D:set><D:prop>'
    '<p:service language="JavaScript" subject="engine">'
    '<p:path name="hello" src="hello.js"/><p:path name="{x: &lt;img src=y&gt;}" src="x.js"/>'
    "</p:service></D:prop></D:set></D:propertyupdate>").encode("utf-8")
SERVICE_MKCOL = (b'<D:mkcol xmlns:D="DAV:" xmlns:p="urn:x-personium:xmlns"><D:set><D:prop>'
                 b"<D:resourcetype><D:collection/><p:service/></D:resourcetype>"
                 b"</D:prop></D:set></D:mkcol>")
XML = {"Content-Type": "application/xml"}


def in_thread(f, *args, **kwargs):
    return threads.deferToThread(f, *args, **kwargs)


class Browser(unittest.TestCase):
    timeout = 600

    def setUp(self):
        requireTool("chromium")

    def chromium(self, path, *args):
        """Chromium's output for the page at ``path`` (blocking)."""
        netloc = self.server.url.split("://", 1)[1]
        if self.auth is not None:
            netloc = "%s:%s@%s" % (quote(self.auth.user, safe=""),
                                   quote(self.auth.password, safe=""), netloc)
        profile = os.path.join(self.work, "profile")
        result = run(CHROMIUM + ["--user-data-dir=" + profile, *args,
                                 "http://%s%s" % (netloc, path)],
                     env={"PATH": os.environ.get("PATH", ""), "HOME": self.work},
                     timeout=120)
        return result.stdout

    @defer.inlineCallbacks
    def send(self, method, path, body=None, headers=None, code=201):
        status, _, answer = yield fetch(self.server, self.auth, method, quote(path), body, headers)
        self.assertEqual(status, code, answer)

    @defer.inlineCallbacks
    def test_listing_in_chromium(self):
        self.server, self.auth = yield startClientServer(self, *RFC4918)
        self.work = os.path.abspath(self.mktemp())
        os.makedirs(self.work)
        for name, size, seconds in FILES:
            yield self.send("PUT", BOX_PATH + name, b"x" * size, {"X-OC-Mtime": str(seconds)})
        for name in TRICKY:
            yield self.send("PUT", BOX_PATH + name, b"tricky", {"X-OC-Mtime": "1400000000"})
        yield self.send("MKCOL", BOX_PATH + "folder one")
        yield self.send("PUT", BOX_PATH + "folder one/inside #1.txt", b"in")
        yield self.send("MKCOL", BOX_PATH + "svc", SERVICE_MKCOL, XML)
        yield self.send("PROPPATCH", BOX_PATH + "svc", SERVICE, XML, code=207)
        box_dir = os.path.join(self.server.data_dir, "cell1", "box1")
        for name in PLANTED:  # names no request can make, put on the disk behind its back:
            with open(os.path.join(box_dir, name), "wb") as f:  # never listed
                f.write(b"planted")
        names = [n for n, _, _ in FILES] + TRICKY + ["folder one", "svc"]

        def order(key, reverse):
            """The expected row order for a sort (ties by name)."""
            info = {n: (s, t) for n, s, t in FILES}
            info.update({n: (6, 1_400_000_000) for n in TRICKY})

            def sort_key(n):
                folder = n in ("folder one", "svc")
                size, _ = info.get(n, (7, 0))  # planted: 7 bytes
                if key == "size":
                    return (-1 if folder else size, n.casefold(), n)
                if key == "kind":
                    return ({"folder one": 0, "svc": 1}.get(n, 2), n.casefold(), n)
                return (n.casefold(), n)

            return sorted(names, key=sort_key, reverse=reverse)

        for key in ("name", "kind", "size"):
            for direction in ("asc", "desc"):
                dom = yield in_thread(self.chromium,
                                      BOX_PATH + "?sort=%s&order=%s" % (key, direction),
                                      "--dump-dom")
                doc = pages.parse(dom)
                self.assertEqual(pages.foreign(doc), [], (key, direction))
                self.assertEqual([r["name"] for r in pages.rows(doc)],
                                 order(key, direction == "desc"), (key, direction))

        # modified: the times the files were PUT with; the rest (made now) last
        dom = yield in_thread(self.chromium, BOX_PATH + "?sort=modified&order=asc", "--dump-dom")
        found = pages.rows(pages.parse(dom))
        self.assertEqual([r["modified"] for r in found], sorted(r["modified"] for r in found))
        self.assertEqual([r["name"] for r in found][:6],
                         sorted(TRICKY) + ["c photo #1.jpg", "b report.txt", "d 100% done.txt",
                                           "A notes.txt"])

        # a bad sort falls back to the default; what each row says and links to
        dom = yield in_thread(self.chromium, BOX_PATH + "?sort=%3Cscript%3E&order=x", "--dump-dom")
        doc = pages.parse(dom)
        self.assertEqual(pages.foreign(doc), [])
        rows = {r["name"]: r for r in pages.rows(doc)}
        self.assertEqual(list(rows), order("name", False))
        self.assertEqual(rows["b report.txt"]["size"], 300)
        self.assertEqual(rows["folder one"]["shown_kind"], "folder")
        self.assertEqual(rows["svc"]["routes"], [("hello", "hello.js"), ("{x: <img src=y>}", "x.js")])
        for name in TRICKY:
            self.assertEqual(rows[name]["text"], name)
        for name in ("c photo #1.jpg", "d 100% done.txt", "folder one") + tuple(TRICKY):
            code, _, _ = yield fetch(self.server, self.auth, "GET", rows[name]["href"])
            self.assertEqual(code, 200, rows[name]["href"])
        self.assertEqual(pages.crumbs(doc), [("cell1", None), ("box1", None)])

        # a folder below: breadcrumbs back up
        dom = yield in_thread(self.chromium, BOX_PATH + "folder%20one/", "--dump-dom")
        doc = pages.parse(dom)
        self.assertEqual(pages.crumbs(doc), [("cell1", None), ("box1", BOX_PATH),
                                             ("folder one", None)])
        self.assertEqual([r["name"] for r in pages.rows(doc)], ["inside #1.txt"])

        # a screenshot, kept with the test's files
        shot = os.path.join(self.work, "page.png")
        yield in_thread(self.chromium, BOX_PATH + "?sort=size&order=desc",
                        "--screenshot=" + shot, "--window-size=1200,800",
                        "--hide-scrollbars")
        with open(shot, "rb") as f:
            head = f.read(24)
        self.assertEqual(head[:8], b"\x89PNG\r\n\x1a\n")
        self.assertEqual(struct.unpack(">II", head[16:24]), (1200, 800))
        self.assertGreater(os.path.getsize(shot), 5000)
