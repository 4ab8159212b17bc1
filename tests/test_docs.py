"""The examples in docs/*.md, run as written (only the port is changed), so
the documentation cannot drift from the behaviour. The README's walkthrough
has its own test (tests/test_readme.py).

* docs/embedding.md: its ``embed.py`` is started as a subprocess on a free
  port and the ``curl -X MKCOL`` from its header comment is run through it.
* Every ``curl`` in docs/ must be one that a test runs: a new example
  without a test fails ``test_every_curl_is_run``.
"""
import glob
import os
import re
import subprocess
import sys
import time

from lxml import etree
from twisted.internet import defer, threads
from twisted.trial import unittest

import personium_dav
from tests.clientauth import requireTool
from tests.realserver import STARTUP_TIMEOUT, _accepts, _sleep, freePort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
EMBED_PORT = "8090"

# every curl command line in docs/, and the test that runs it
RUN_BY = {
    ("embedding.md", "curl -X MKCOL http://127.0.0.1:8090/dav/cell1/box1/col"):
        "tests.test_docs.Embedding",
    ("conformance.md", "curl -X MKCOL http://127.0.0.1:8099/cell1/box1/litmus/"):
        "tests.test_litmus (the same MKCOL, then litmus, on the real plugin)",
}


def read(name):
    with open(os.path.join(DOCS, name), encoding="utf-8") as f:
        return f.read()


def embedding_example():
    """(the python block of docs/embedding.md, the curl command in its comment)."""
    text = read("embedding.md")
    code = text.split("```python\n", 1)[1].split("\n```", 1)[0]
    curl = re.search(r"^#\s+(curl .*)$", code, re.M).group(1).strip()
    return code, curl


def curl_lines():
    found = []
    for path in sorted(glob.glob(os.path.join(DOCS, "*.md"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = re.search(r"\bcurl\s.*$", line)
                if m:
                    found.append((os.path.basename(path), m.group(0).strip()))
    return found


class Inventory(unittest.TestCase):
    def test_every_curl_is_run(self):
        self.assertEqual(sorted(curl_lines()), sorted(RUN_BY))

    def test_embedding_example_parsed(self):
        code, curl = embedding_example()
        self.assertIn("makeResource", code)
        self.assertIn("reactor.listenTCP(%s," % EMBED_PORT, code)
        self.assertEqual(curl, "curl -X MKCOL http://127.0.0.1:8090/dav/cell1/box1/col")


class Embedding(unittest.TestCase):
    """docs/embedding.md's embed.py, then its curl, then what they made."""

    def setUp(self):
        requireTool("curl")

    @defer.inlineCallbacks
    def start_example(self):
        code, curl = embedding_example()
        port = str(freePort())
        work = os.path.abspath(self.mktemp())
        os.makedirs(work)
        with open(os.path.join(work, "embed.py"), "w", encoding="utf-8") as f:
            f.write(code.replace(EMBED_PORT, port))
        env = dict(os.environ)
        source = os.path.dirname(os.path.dirname(os.path.abspath(personium_dav.__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
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
        return port, work, curl.replace(EMBED_PORT, port)

    def curl(self, *args):
        """curl with ARGS plus status on the last line: (status, body)."""
        result = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", *args],
                                capture_output=True, timeout=30)
        body, _, status = result.stdout.rpartition(b"\n")
        return int(status), body

    @defer.inlineCallbacks
    def test_example_runs(self):
        port, work, curl = yield self.start_example()
        self.assertTrue(curl.startswith("curl "))
        status, body = yield threads.deferToThread(self.curl, *curl.split()[1:])
        self.assertEqual(status, 201, body)
        # the data root the example provisions, relative to where it ran
        self.assertTrue(os.path.isdir(os.path.join(work, "embedded-data", "cell1", "box1", "col")))
        # the application's own page is still there beside the mount
        status, body = yield threads.deferToThread(self.curl, f"http://127.0.0.1:{port}/")
        self.assertEqual((status, body), (200, b"my application\n"))
        # hrefs carry the /dav prefix the resource was mounted under
        status, body = yield threads.deferToThread(
            self.curl, "-X", "PROPFIND", "-H", "Depth: 1", f"http://127.0.0.1:{port}/dav/cell1/box1/")
        self.assertEqual(status, 207, body)
        hrefs = [h.text for h in etree.fromstring(body).iter("{DAV:}href")]
        self.assertEqual(hrefs, ["/dav/cell1/box1/", "/dav/cell1/box1/col/"])
        # the same MKCOL again: the collection exists
        status, body = yield threads.deferToThread(self.curl, *curl.split()[1:])
        self.assertEqual(status, 405, body)
        # Config(collection_semantics="rfc4918") from the example is in force:
        # a non-empty collection goes with a plain DELETE
        yield threads.deferToThread(
            self.curl, "-X", "PUT", "--data-binary", "x",
            f"http://127.0.0.1:{port}/dav/cell1/box1/col/a.txt")
        status, body = yield threads.deferToThread(
            self.curl, "-X", "DELETE", f"http://127.0.0.1:{port}/dav/cell1/box1/col/")
        self.assertEqual(status, 204, body)
