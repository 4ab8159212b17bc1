"""The README's walkthrough, run as written against the real twistd plugin.

Each command of the walkthrough's shell block is followed by a ``# -> NNN``
comment: the status the command must answer. Only the box URL is changed.
"""
import os
import re
import shutil

from twisted.internet import utils
from twisted.trial import unittest
from twisted.internet import defer

from .support.realserver import ownerToken, startServer

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
EXPECT = re.compile(r"^# -> (\d{3})$")


def walkthrough_steps(text):
    """[(shell command, expected status)] from the Walkthrough's sh block."""
    section = text.split("## Walkthrough", 1)[1]
    block = section.split("```sh\n", 1)[1].split("\n```", 1)[0]
    steps, command = [], []
    for line in block.splitlines():
        expected = EXPECT.match(line)
        if expected:
            steps.append(("\n".join(command), int(expected.group(1))))
            command = []
        elif not line.startswith("#") and not line.startswith(("BASE=", "TOKEN=")):
            command.append(line)
    return steps


class ReadmeWalkthrough(unittest.TestCase):
    def setUp(self):
        if not shutil.which("curl"):
            raise unittest.SkipTest("curl is not installed")

    def test_steps_parsed(self):
        with open(README, encoding="utf-8") as f:
            steps = walkthrough_steps(f.read())
        self.assertEqual([s for _, s in steps], [201, 201, 207, 207, 200, 200])

    @defer.inlineCallbacks
    def test_walkthrough_runs(self):
        data = self.mktemp()
        base = yield startServer(self, data)
        token = ownerToken(data)
        with open(README, encoding="utf-8") as f:
            steps = walkthrough_steps(f.read())
        outputs = []
        for command, expected in steps:
            out = yield utils.getProcessOutput(
                "/bin/bash", ["-c", command], env={"BASE": base + "/cell1/box1", "TOKEN": token,
                                                  "PATH": os.environ.get("PATH", "")})
            outputs.append(out)
            status = int(out.split(b" ", 2)[1])
            self.assertEqual(status, expected, (command, out))
        # the routes come back through PROPFIND, and __src with its file
        propfind = outputs[3]
        self.assertIn(b'<p:path name="sample" src="sample.js"/>', propfind)
        self.assertIn(b"/cell1/box1/svc/__src/", propfind)
        self.assertIn(b"function(request)", outputs[4])
        # the service answers what its script returns
        head, _, body = outputs[5].partition(b"\r\n\r\n")
        self.assertEqual(body, b"hello")
        self.assertIn(b"Content-Type: text/html", head)
