"""docs/security.md names the test proving each guarantee it states: every
test it names must exist, so the document cannot cite a test that was
renamed or removed."""
import glob
import importlib
import os
import re

from twisted.trial import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CITED = re.compile(r"`(tests\.[\w.]+|[A-Z]\w*\.test_\w+|test_\w+)`")


def sources():
    out = {}
    for path in glob.glob(os.path.join(ROOT, "tests", "test_*.py")):
        with open(path, encoding="utf-8") as f:
            out[path] = f.read()
    return out


class Citations(unittest.TestCase):
    def test_every_cited_test_exists(self):
        with open(os.path.join(ROOT, "docs", "security.md"), encoding="utf-8") as f:
            cited = CITED.findall(f.read())
        self.assertGreater(len(cited), 10)
        texts = sources()
        for name in cited:
            if name.startswith("tests."):
                parts = name.split(".")
                module = importlib.import_module(".".join(parts[:2]))
                obj = module
                for part in parts[2:]:
                    obj = getattr(obj, part, None)
                    self.assertIsNotNone(obj, name)
            elif "." in name:
                cls, method = name.split(".")
                self.assertTrue(any(("class %s(" % cls) in t and ("def %s(" % method) in t
                                    for t in texts.values()), name)
            else:
                self.assertTrue(any(("def %s(" % name) in t for t in texts.values()), name)
