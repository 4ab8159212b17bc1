"""The examples in docs/*.md, run as written (only the port is changed), so
the documentation cannot drift from the behaviour. The README's walkthrough
has its own test (tests/test_readme.py).

* docs/embedding.md: its ``embed.py`` is started as a subprocess on a free
  port, in a scratch directory, and the shell commands of its header
  comment (the owner's token, then ``curl -X MKCOL``) run there with bash.
* Every ``curl`` in a code block of docs/ must be one that a test runs: a
  new example without a test fails ``test_every_curl_is_run``.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import time

from lxml import etree
from twisted.internet import defer, threads
from twisted.trial import unittest

import personium_dav
from .support.clientauth import requireTool
from .support.realserver import STARTUP_TIMEOUT, _accepts, _sleep, freePort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
EMBED_PORT = "8090"

# every curl command line in docs/, and the test that runs it
RUN_BY = {
    ("embedding.md",
     'curl -X MKCOL -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8090/dav/cell1/box1/col'):
        "tests.test_docs.Embedding",
    ("conformance.md",
     "curl -X ACL -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/xml' "
     "--data '<D:acl xmlns:D=\"DAV:\" xml:base=\"http://127.0.0.1:8099/cell1/__role/__/\">"
     "<D:ace><D:principal><D:href>editor</D:href></D:principal><D:grant><D:privilege><D:all/>"
     "</D:privilege></D:grant></D:ace></D:acl>' http://127.0.0.1:8099/cell1/box1/"):
        "tests.test_litmus (the recipe's lines, then litmus, on the real plugin)",
    ("conformance.md",
     "curl -X MKCOL -u davuser:dav-Secret-1 http://127.0.0.1:8099/cell1/box1/litmus/"):
        "tests.test_litmus (the recipe's lines, then litmus, on the real plugin)",
}


RUN_BY_EMBEDDING = next(c for (doc, c) in RUN_BY if doc == "embedding.md")


def read(name):
    with open(os.path.join(DOCS, name), encoding="utf-8") as f:
        return f.read()


def embedding_example():
    """(the python block of docs/embedding.md, the shell commands of its
    header comment: the lines indented under ``# ... run with: ...``)."""
    text = read("embedding.md")
    code = text.split("```python\n", 1)[1].split("\n```", 1)[0]
    commands = re.findall(r"^#   (\S.*)$", code, re.M)
    return code, commands


def curl_lines():
    """(doc, command) for every curl in a fenced or indented code block."""
    found = []
    for path in sorted(glob.glob(os.path.join(DOCS, "*.md"))):
        fenced = False
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("```"):
                    fenced = not fenced
                    continue
                if not (fenced or line.startswith("    ")):
                    continue
                m = re.search(r"\bcurl\s.*$", line)
                if m:
                    found.append((os.path.basename(path), m.group(0).strip()))
    return found


class Inventory(unittest.TestCase):
    def test_every_curl_is_run(self):
        self.assertEqual(sorted(curl_lines()), sorted(RUN_BY))

    def test_embedding_example_parsed(self):
        code, commands = embedding_example()
        self.assertIn("makeResource", code)
        self.assertIn("reactor.listenTCP(%s," % EMBED_PORT, code)
        self.assertEqual(len(commands), 2, commands)
        self.assertTrue(commands[0].startswith("TOKEN=$(python -m personium_dav token "))
        self.assertEqual(commands[1], RUN_BY_EMBEDDING)


class Embedding(unittest.TestCase):
    """docs/embedding.md's embed.py, then its curl, then what they made."""

    def setUp(self):
        requireTool("curl")

    @defer.inlineCallbacks
    def start_example(self):
        code, commands = embedding_example()
        port = str(freePort())
        work = os.path.abspath(self.mktemp())
        os.makedirs(work)
        with open(os.path.join(work, "embed.py"), "w", encoding="utf-8") as f:
            f.write(code.replace(EMBED_PORT, port))
        env = self.env()
        log = open(os.path.join(work, "embed.log"), "wb")
        self.addCleanup(log.close)
        process = subprocess.Popen([sys.executable, "embed.py"], cwd=work, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def stop():
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.addCleanup(stop)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _accepts(int(port)):
            if process.poll() is not None or time.monotonic() > deadline:
                with open(os.path.join(work, "embed.log"), encoding="utf-8",
                          errors="replace") as f:
                    self.fail("embed.py did not start:\n" + f.read())
            yield _sleep(0.05)
        return port, work, [c.replace(EMBED_PORT, port) for c in commands]

    def env(self):
        """This interpreter's directory first on PATH (its ``python``) and
        this checkout first on PYTHONPATH."""
        env = dict(os.environ)
        source = os.path.dirname(os.path.dirname(os.path.abspath(personium_dav.__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
        env["PATH"] = os.pathsep.join((os.path.dirname(sys.executable), env.get("PATH", "")))
        if not shutil.which("python", path=env["PATH"]):
            raise unittest.SkipTest("no `python` on PATH for the documented commands")
        return env

    def shell(self, work, commands):
        """The documented commands in one bash, curl reporting its status on
        a last line of its own: (status of the last curl, its body)."""
        script = ("set -e\ncurl() { command curl -s -w '\\n%{http_code}' \"$@\"; }\n"
                  + "\n".join(commands) + "\n")
        result = subprocess.run(["bash", "-c", script], cwd=work, env=self.env(),
                                capture_output=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        body, _, status = result.stdout.rpartition(b"\n")
        return int(status), body

    def curl(self, *args):
        """curl with ARGS plus status on the last line: (status, body)."""
        result = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", *args],
                                capture_output=True, timeout=30)
        body, _, status = result.stdout.rpartition(b"\n")
        return int(status), body

    @defer.inlineCallbacks
    def test_example_runs(self):
        port, work, commands = yield self.start_example()
        status, body = yield threads.deferToThread(self.shell, work, commands)
        self.assertEqual(status, 201, body)
        token = subprocess.run(
            [sys.executable, "-m", "personium_dav", "token", "--data", "embedded-data", "--owner"],
            cwd=work, env=self.env(), capture_output=True, text=True, timeout=60).stdout.strip()
        owner = ("-H", "Authorization: Bearer " + token)
        # the data root the example provisions, relative to where it ran
        self.assertTrue(os.path.isdir(os.path.join(work, "embedded-data", "cell1", "box1", "col")))
        # the application's own page is still there beside the mount
        status, body = yield threads.deferToThread(self.curl, f"http://127.0.0.1:{port}/")
        self.assertEqual((status, body), (200, b"my application\n"))
        # hrefs carry the /dav prefix the resource was mounted under
        status, body = yield threads.deferToThread(
            self.curl, *owner, "-X", "PROPFIND", "-H", "Depth: 1",
            f"http://127.0.0.1:{port}/dav/cell1/box1/")
        self.assertEqual(status, 207, body)
        hrefs = [h.text for h in etree.fromstring(body).iterfind("{DAV:}response/{DAV:}href")]
        self.assertEqual(hrefs, ["/dav/cell1/box1/", "/dav/cell1/box1/col/"])
        # what the token is for: the same MKCOL without it is refused
        status, body = yield threads.deferToThread(
            self.curl, "-X", "MKCOL", f"http://127.0.0.1:{port}/dav/cell1/box1/other")
        self.assertEqual(status, 401, body)
        # the same MKCOL again: the collection exists
        status, body = yield threads.deferToThread(self.shell, work, commands)
        self.assertEqual(status, 405, body)
        # Config(collection_semantics="rfc4918") from the example is in force:
        # a non-empty collection goes with a plain DELETE
        yield threads.deferToThread(
            self.curl, *owner, "-X", "PUT", "--data-binary", "x",
            f"http://127.0.0.1:{port}/dav/cell1/box1/col/a.txt")
        status, body = yield threads.deferToThread(
            self.curl, *owner, "-X", "DELETE", f"http://127.0.0.1:{port}/dav/cell1/box1/col/")
        self.assertEqual(status, 204, body)
