"""litmus (the WebDAV conformance suite) as the tests run it: the suites,
the reader of its output, and docs/conformance.md's "Reproduce" recipe
(tests/test_litmus.py against one server, tests/test_scaleout.py through
nginx in front of three)."""
import os
import re
import subprocess
import sys

from .realserver import cliEnv

SUITES = ("basic", "copymove", "props", "locks", "http")
LITMUS_TIMEOUT = 240  # seconds for the five suites; a normal run takes a few

# No warning is allowed: a warning is a SHOULD of RFC 4918 the server misses.
ALLOWED_WARNINGS = set()

SUMMARY = re.compile(
    r"^<- summary for `([^']+)': of (\d+) tests run: (\d+) passed, (\d+) failed")
WARNING = re.compile(r"WARNING:\s*(.*?)\s*$")
WARNING_COUNT = re.compile(r"^-> (\d+) warnings? (?:was|were) issued")


def parse(output):
    """(summaries {suite: (run, passed, failed)}, warning texts, warnings counted)."""
    summaries, warnings, counted = {}, [], 0
    for line in output.replace("\r", "\n").split("\n"):
        m = SUMMARY.match(line.strip())
        if m:
            summaries[m.group(1)] = tuple(int(g) for g in m.group(2, 3, 4))
            continue
        m = WARNING_COUNT.match(line.strip())
        if m:
            counted += int(m.group(1))
            continue
        m = WARNING.search(line)
        if m:
            warnings.append(m.group(1))
    return summaries, warnings, counted


RECIPE_DATA, RECIPE_PORT = "/tmp/lit-data", "8099"


def recipe():
    """docs/conformance.md's "Reproduce" block, sorted: the command-line
    set-up lines, the owner-token line, the server line, the curl lines and
    (suites, URL, user, password) of the litmus line."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "docs", "conformance.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    block = text.split("### Reproduce\n", 1)[1].split("```sh\n", 1)[1].split("\n```", 1)[0]
    lines = [line.split("#")[0].strip() if line.startswith("cd ") else line.strip()
             for line in block.replace("\\\n", " ").splitlines()]
    steps = {"setup": [], "curl": []}
    for line in lines:
        if line.startswith(("python -m personium_dav", "echo ")):
            steps["setup"].append(line)
        elif line.startswith("TOKEN="):
            steps["token"] = line
        elif line.startswith("twistd "):
            steps["server"] = line
        elif line.startswith("curl "):
            steps["curl"].append(line)
        elif line.startswith("TESTS="):
            m = re.match(r'TESTS="([^"]+)" litmus (\S+) (\S+) (\S+)$', line)
            steps["litmus"] = m.groups()
    return steps


def run_shell(script):
    """Run a recipe line with bash, ``python`` being this interpreter and
    the checkout importable; its standard output."""
    env = cliEnv()
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env,
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError("%s\n%s%s" % (script, done.stdout, done.stderr))
    return done.stdout
