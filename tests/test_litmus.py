"""litmus (the WebDAV conformance suite, Debian package ``litmus``) against the
real ``twistd -n personium-dav --collection-semantics rfc4918``.

All five suites, basic, copymove, props, locks and http (litmus's own order),
must pass whole, with no warning at all: the server is DAV class 2 (docs/behaviour.md §4,
``DAV: 1, 2`` now that locking exists). docs/conformance.md has the table and
every known difference from RFC 4918.

Without ``litmus`` on PATH the test is skipped, unless the environment
variable CI is set: then it fails, so a CI image that lost litmus is noticed.
"""
import os
import shutil
import subprocess
import tempfile

from twisted.internet import defer
from twisted.trial import unittest

from personium_dav.config import Config
from .support.helpers import BOX, DavTestCase
from .support.litmus import (ALLOWED_WARNINGS, LITMUS_TIMEOUT, RECIPE_DATA, RECIPE_PORT,
                             SUITES, parse, recipe, run_shell)
from .support.realserver import RealServer, freePort


class ParseTests(unittest.TestCase):
    """The output reader itself, on litmus's real shapes."""

    def test_parse(self):
        out = (" 2. options............... WARNING: server does not claim Class 2 compliance\r\n"
               "    ...................... pass (with 1 warning)\n"
               "<- summary for `basic': of 16 tests run: 16 passed, 0 failed. 100.0%\n"
               "-> 1 warning was issued.\n"
               " 4. copy_overwrite........ FAIL (COPY overwrites collection: 400 Bad Request)\n"
               "<- summary for `copymove': of 13 tests run: 12 passed, 1 failed. 92.3%\n"
               "-> 2 warnings were issued.\n")
        summaries, warnings, counted = parse(out)
        self.assertEqual(summaries, {"basic": (16, 16, 0), "copymove": (13, 12, 1)})
        self.assertEqual(warnings, ["server does not claim Class 2 compliance"])
        self.assertEqual(counted, 3)


class LitmusTests(unittest.TestCase):
    timeout = LITMUS_TIMEOUT + 60

    def setUp(self):
        self.litmus = shutil.which("litmus")
        if self.litmus is None:
            message = "litmus is not installed (apt-get install litmus)"
            if os.environ.get("CI"):
                self.fail(message + "; CI is set, so this is a failure, not a skip")
            raise unittest.SkipTest(message)

    @defer.inlineCallbacks
    def test_litmus(self):
        """docs/conformance.md's recipe, line by line: the account, the ACL,
        the collection (docs/behaviour.md §9: Basic authentication, as such clients do),
        then litmus with those credentials."""
        steps = recipe()
        data = os.path.abspath(self.mktemp())
        port = freePort()

        def ours(line):
            return line.replace(RECIPE_DATA, data).replace(RECIPE_PORT, str(port))

        for line in steps["setup"]:
            run_shell(ours(line))
        self.assertIn("--collection-semantics rfc4918", steps["server"])
        server = yield RealServer(
            self, data, "--collection-semantics", "rfc4918", port=port).start()
        for line, expected in zip(steps["curl"], (200, 201)):
            status = run_shell(ours(steps["token"]) + "\n" + ours(line)
                               + " -s -o /dev/null -w '%{http_code}'")
            self.assertEqual(status, str(expected), line)
        suites, url, user, password = steps["litmus"]
        self.assertEqual(suites, " ".join(SUITES))
        url = ours(url)
        self.assertEqual(url, server.url + "/cell1/box1/litmus/")

        cwd = tempfile.mkdtemp(prefix="litmus-")  # litmus writes debug.log here
        self.addCleanup(shutil.rmtree, cwd, True)
        env = dict(os.environ, TESTS=" ".join(SUITES))
        try:
            run = subprocess.run(
                [self.litmus, url, user, password], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                timeout=LITMUS_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            self.fail(f"litmus did not finish in {LITMUS_TIMEOUT}s:\n"
                      f"{(e.output or b'').decode(errors='replace')}")
        output = run.stdout.decode("utf-8", "replace")

        def explain():
            try:
                with open(os.path.join(cwd, "debug.log"), errors="replace") as f:
                    debug = f.read()[-20000:]
            except OSError:
                debug = "(no debug.log)"
            return (f"litmus exit code {run.returncode}\n{output}\n"
                    f"---- end of debug.log ----\n{debug}\n"
                    f"---- server log ----\n{server.log()[-5000:]}")

        summaries, warnings, counted = parse(output)
        for suite in SUITES:
            self.assertIn(suite, summaries, f"no summary for {suite}\n" + explain())
            tests, passed, failed = summaries[suite]
            self.assertEqual((passed, failed), (tests, 0),
                             f"suite {suite} did not pass whole\n" + explain())
        self.assertNotIn("SKIPPED", output, explain())
        unexpected = [w for w in warnings if w not in ALLOWED_WARNINGS]
        self.assertEqual(unexpected, [], explain())
        self.assertEqual(counted, len(warnings), explain())
        self.assertEqual(counted, 0, explain())  # any warning fails
        self.assertEqual(run.returncode, 0, explain())


EXTENDED = (b'<?xml version="1.0" encoding="utf-8" ?>'
            b'<propfind xmlns="DAV:"><foobar/><allprop/></propfind>')


class ExtendedPropfindTests(DavTestCase):
    """What litmus's props/propextended and props/propwformed send; litmus
    passes them whatever the status, so they are checked here."""

    @defer.inlineCallbacks
    def test_unknown_element_ignored(self):
        # RFC 4918 §17: an element the server does not know is ignored
        answer = yield self.request("PROPFIND", BOX, EXTENDED, {"Depth": "0"})
        self.assertEqual(answer.code, 207, answer.body)
        self.assertTrue(list(answer.xml().iter("{DAV:}getetag")))

    @defer.inlineCallbacks
    def test_only_unknown_elements_refused(self):
        body = b'<propfind xmlns="DAV:"><foobar/></propfind>'
        answer = yield self.request("PROPFIND", BOX, body, {"Depth": "0"})
        self.assertError(answer, 400, "PR400-DV-0001")

    @defer.inlineCallbacks
    def test_missing_depth_on_file_refused(self):
        # docs/behaviour.md §7 under the default semantics: Depth is required everywhere
        answer = yield self.request("PUT", BOX + "f.txt", b"x")
        self.assertEqual(answer.code, 201)
        answer = yield self.request("PROPFIND", BOX + "f.txt", EXTENDED)
        self.assertError(answer, 400, "PR400-DV-0003")


class RFC4918DepthTests(DavTestCase):
    """--collection-semantics rfc4918: no Depth means infinity (RFC 4918 §9.1)."""

    config = Config(collection_semantics="rfc4918")

    @defer.inlineCallbacks
    def test_missing_depth_on_file_is_depth_0(self):
        # §10.2: a resource without internal members ignores Depth
        answer = yield self.request("PUT", BOX + "f.txt", b"x")
        self.assertEqual(answer.code, 201)
        for headers in ({}, {"Depth": "infinity"}):
            answer = yield self.request("PROPFIND", BOX + "f.txt", EXTENDED, headers)
            self.assertEqual(answer.code, 207, answer.body)
            hrefs = [h.text for h in answer.xml().iter("{DAV:}href")]
            self.assertEqual(hrefs, [BOX + "f.txt"])

    @defer.inlineCallbacks
    def test_missing_depth_on_collection_refused(self):
        answer = yield self.request("PROPFIND", BOX, EXTENDED)
        self.assertError(answer, 403, "PR403-DV-0001")

    @defer.inlineCallbacks
    def test_bad_depth_still_refused(self):
        answer = yield self.request("PUT", BOX + "f.txt", b"x")
        answer = yield self.request("PROPFIND", BOX + "f.txt", b"", {"Depth": "2"})
        self.assertError(answer, 400, "PR400-DV-0003")
