"""cadaver (Debian package ``cadaver``, a neon command-line WebDAV client)
scripted against the real ``twistd -n personium-dav``.

cadaver reads its commands from stdin and exits 0 whatever happened, so each
test reads the transcript command by command (``succeeded.`` / ``failed:``
and what was printed) and then asks the server itself, over plain HTTP, what
it now holds. Credentials, when the server needs them, come from
``tests.support.clientauth`` and reach cadaver through ``$HOME/.netrc``.

Skipped when cadaver is not on PATH, unless the environment variable CI is
set: then it fails.
"""
import os
import re
import subprocess
from urllib.parse import quote

from lxml import etree
from twisted.internet import defer, threads
from twisted.trial import unittest

from .support.clientauth import BOX_PATH, fetch, netrc, requireTool, startClientServer

CADAVER_TIMEOUT = 60
CUSTOM_NS = "http://webdav.org/cadaver/custom-properties/"  # cadaver's propset namespace
PROMPT = re.compile(r"^dav:[^\n>]*> ", re.M)
CONTENT = "hello from cadaver\nsecond line\n"


def transcript(output):
    """[(command, what cadaver printed for it)] from a session's stdout."""
    steps = []
    for chunk in PROMPT.split(output)[1:]:
        command, _, printed = chunk.partition("\n")
        if command.strip():
            steps.append((command.strip(), printed))
    return steps


class TranscriptTests(unittest.TestCase):
    def test_transcript(self):
        out = ("dav:/cell1/box1/> mkcol a\nCreating `a': succeeded.\n"
               "dav:/cell1/box1/> get a/x y\nDownloading `/cell1/box1/a/x' to y: [.. failed:\n"
               "404 Not Found\ndav:/cell1/box1/> \nConnection to `127.0.0.1' closed.\n")
        self.assertEqual(transcript(out), [
            ("mkcol a", "Creating `a': succeeded.\n"),
            ("get a/x y", "Downloading `/cell1/box1/a/x' to y: [.. failed:\n404 Not Found\n"),
        ])


class CadaverBase(unittest.TestCase):
    """Runs sessions; the test classes below say under which semantics."""

    semantics = ("--collection-semantics", "rfc4918")

    def setUp(self):
        requireTool("cadaver")

    @defer.inlineCallbacks
    def run_cadaver(self, commands):
        """Start a server, run the commands in one cadaver session in a
        scratch directory; (server, auth, workdir, [(command, printed)])."""
        server, auth = yield startClientServer(self, *self.semantics)
        work = os.path.abspath(self.mktemp())
        home = os.path.join(work, "home")
        os.makedirs(home)
        rc = os.path.join(home, ".netrc")
        with open(rc, "w") as f:
            f.write(netrc(auth))
        os.chmod(rc, 0o600)
        with open(os.path.join(work, "local.txt"), "w") as f:
            f.write(CONTENT)
        env = {"HOME": home, "PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8"}
        script = "".join(c + "\n" for c in commands) + "quit\n"
        result = yield threads.deferToThread(
            subprocess.run, ["cadaver", server.url + BOX_PATH], input=script.encode("utf-8"),
            capture_output=True, cwd=work, env=env, timeout=CADAVER_TIMEOUT)
        output = result.stdout.decode("utf-8", "replace")
        self.output = output + result.stderr.decode("utf-8", "replace")
        steps = transcript(output)
        # every command ran, in order, and the session ended on its own quit
        self.assertEqual([c for c, _ in steps], list(commands) + ["quit"], self.output)
        return server, auth, work, steps

    def printed(self, steps, command):
        for c, printed in steps:
            if c == command:
                return printed
        self.fail(f"{command!r} not in transcript:\n{self.output}")

    def assertSucceeded(self, steps, *commands):
        for command in commands:
            printed = self.printed(steps, command)
            self.assertIn("succeeded.", printed, (command, self.output))
            self.assertNotIn("failed", printed, (command, self.output))

    @defer.inlineCallbacks
    def status(self, server, auth, path, method="GET"):
        code, _, _ = yield fetch(server, auth, method, quote(path))
        return code

    @defer.inlineCallbacks
    def dead_props(self, server, auth, path):
        """{(ns, name): text} of the dead properties PROPFIND shows on path."""
        code, _, body = yield fetch(server, auth, "PROPFIND", quote(path), headers={"Depth": "0"})
        self.assertEqual(code, 207, body)
        props = {}
        for el in etree.fromstring(body).iterfind(".//{DAV:}prop/*"):
            qname = etree.QName(el)
            if qname.namespace != "DAV:":
                props[(qname.namespace, qname.localname)] = el.text
        return props



class CadaverSession(CadaverBase):
    """``--collection-semantics rfc4918``: what cadaver, like every ordinary
    WebDAV client, expects (DELETE and COPY/MOVE act on whole collections)."""

    @defer.inlineCallbacks
    def test_session(self):
        """mkcol, put, get, ls, propset, propget, propdel, copy, move, delete,
        then the same for collections; each checked on the server."""
        commands = [
            "mkcol docs",
            "cd docs",
            "put local.txt hello.txt",
            "put local.txt ファイル.txt",
            "get hello.txt got.txt",
            "ls",
            "propset hello.txt color red",
            "propset hello.txt shape round",
            "propget hello.txt color",
            "propdel hello.txt shape",
            "propget hello.txt",
            "copy hello.txt copy.txt",
            "move copy.txt moved.txt",
            "put local.txt doomed.txt",
            "delete doomed.txt",
            "cd ..",
            "mkcol scratch",
            "put local.txt scratch/junk.txt",
            "copy docs docs2",
            "move docs2 archive",
            "rmcol scratch",
            "ls",
        ]
        server, auth, work, steps = yield self.run_cadaver(commands)
        self.assertSucceeded(steps, *[c for c in commands if c.split()[0] in (
            "mkcol", "put", "get", "ls", "propset", "propdel", "copy", "move",
            "delete", "rmcol")])
        docs = BOX_PATH + "docs/"

        # get: the downloaded bytes are the uploaded ones
        with open(os.path.join(work, "got.txt"), encoding="utf-8") as f:
            self.assertEqual(f.read(), CONTENT)
        code, headers, body = yield fetch(server, auth, "GET", docs + "hello.txt")
        self.assertEqual((code, body), (200, CONTENT.encode()))
        self.assertEqual(headers["content-type"], "text/plain")

        # ls: both files with their size; the multibyte name shown decoded
        listing = self.printed(steps, "ls")
        for name in ("hello.txt", "ファイル.txt"):
            self.assertRegex(listing, r"\s%s\s+%d\s" % (re.escape(name), len(CONTENT)))
        self.assertEqual((yield self.status(server, auth, docs + "ファイル.txt")), 200)

        # propset/propget/propdel: cadaver's namespace, the value stored
        self.assertIn("Value of color is: red", self.printed(steps, "propget hello.txt color"))
        allprops = self.printed(steps, "propget hello.txt")
        self.assertIn(CUSTOM_NS + " color = red", allprops)
        self.assertNotIn("shape", allprops)
        self.assertIn("DAV: getcontentlength = %d" % len(CONTENT), allprops)
        props = yield self.dead_props(server, auth, docs + "hello.txt")
        self.assertEqual(props, {(CUSTOM_NS, "color"): "red"})

        # copy then move: the copy (with its dead property) ends up as moved.txt
        self.assertEqual((yield self.status(server, auth, docs + "copy.txt")), 404)
        code, _, body = yield fetch(server, auth, "GET", docs + "moved.txt")
        self.assertEqual((code, body), (200, CONTENT.encode()))
        props = yield self.dead_props(server, auth, docs + "moved.txt")
        self.assertEqual(props, {(CUSTOM_NS, "color"): "red"})

        # delete
        self.assertEqual((yield self.status(server, auth, docs + "doomed.txt")), 404)

        # collections: COPY whole, MOVE to a new name, DELETE a non-empty one
        self.assertEqual((yield self.status(server, auth, BOX_PATH + "docs2/", "PROPFIND")), 404)
        for name in ("hello.txt", "moved.txt", "ファイル.txt"):
            code, _, body = yield fetch(server, auth, "GET", quote(BOX_PATH + "archive/" + name))
            self.assertEqual((code, body), (200, CONTENT.encode()), name)
        props = yield self.dead_props(server, auth, BOX_PATH + "archive/hello.txt")
        self.assertEqual(props, {(CUSTOM_NS, "color"): "red"})
        self.assertEqual((yield self.status(server, auth, BOX_PATH + "scratch/", "PROPFIND")), 404)
        listing = [c for c, _ in steps].index("ls", 6)
        top = steps[listing][1]
        self.assertRegex(top, r"Coll:\s+archive\s")
        self.assertRegex(top, r"Coll:\s+docs\s")
        self.assertNotIn("scratch", top)

    @defer.inlineCallbacks
    def test_failures_are_reported(self):
        """cadaver shows the server's refusals; nothing changes on the server."""
        commands = [
            "mkcol dup",
            "mkcol dup",
            "get nope.txt out.txt",
            "mkcol missing/child",
            "put local.txt missing/x.txt",
            "mkcol bad:name",
            "propget nope.txt",
        ]
        server, auth, work, steps = yield self.run_cadaver(commands)
        self.assertSucceeded(steps, "mkcol dup")
        expected = {
            "mkcol dup": "405",
            "get nope.txt out.txt": "404",
            "mkcol missing/child": "409",
            "put local.txt missing/x.txt": "409",
            "mkcol bad:name": "403",
        }
        for command, code in expected.items():
            printed = [p for c, p in steps if c == command][-1]
            self.assertIn("failed:", printed, (command, self.output))
            self.assertIn(code, printed, (command, self.output))
        self.assertIn("404", self.printed(steps, "propget nope.txt"))
        # cadaver opens the local file before it asks: a failed get leaves it
        # empty (a cadaver habit); no error body ever lands in it
        out = os.path.join(work, "out.txt")
        self.assertEqual(os.path.getsize(out) if os.path.exists(out) else 0, 0)
        code, _, body = yield fetch(server, auth, "PROPFIND", BOX_PATH, headers={"Depth": "1"})
        self.assertEqual(code, 207)
        hrefs = [h.text for h in etree.fromstring(body).iterfind("{DAV:}response/{DAV:}href")]
        self.assertEqual(sorted(hrefs), [BOX_PATH, BOX_PATH + "dup/"])


class CadaverPersoniumSemantics(CadaverBase):
    """Under the default ``--collection-semantics personium`` a plain
    ``rmcol`` of a non-empty collection is refused (403 ``PR403-DV-0003``):
    cadaver cannot send ``X-Personium-Recursive``. Empty ones go."""

    semantics = ()

    @defer.inlineCallbacks
    def test_rmcol(self):
        commands = [
            "mkcol full",
            "put local.txt full/a.txt",
            "rmcol full",
            "mkcol empty",
            "rmcol empty",
            "delete full/a.txt",
            "rmcol full",
        ]
        server, auth, work, steps = yield self.run_cadaver(commands)
        first, second = [p for c, p in steps if c == "rmcol full"]
        self.assertIn("failed:", first, self.output)
        self.assertIn("403", first, self.output)
        self.assertIn("succeeded.", second, self.output)
        self.assertSucceeded(steps, "mkcol full", "put local.txt full/a.txt",
                             "rmcol empty", "delete full/a.txt")
        for path in ("full/", "empty/"):
            self.assertEqual((yield self.status(server, auth, BOX_PATH + path, "PROPFIND")), 404)
