"""docs/behaviour.md §3 name rule."""
from twisted.trial.unittest import SynchronousTestCase

from personium_dav.dav.names import is_valid_name


class IsValidNameTests(SynchronousTestCase):
    def test_good(self):
        for name in ["a", "file.js", "a.b.c", "...", ".hidden", "日本語.txt",
                     "ไทย", "café", "\U0001F600", "a-b_c~!@#$%^&()+=,;'[]{}",
                     "x" * 256, "あ" * 256, "\U0001F600" * 256]:
            self.assertTrue(is_valid_name(name), name)

    def test_length(self):
        self.assertFalse(is_valid_name(""))
        self.assertFalse(is_valid_name("x" * 257))
        self.assertFalse(is_valid_name("あ" * 257))

    def test_dots(self):
        self.assertFalse(is_valid_name("."))
        self.assertFalse(is_valid_name(".."))

    def test_forbidden_chars(self):
        for ch in '\\/:*?"<>| ':
            self.assertFalse(is_valid_name("a%sb" % ch), repr(ch))
            self.assertFalse(is_valid_name(ch), repr(ch))

    def test_control_chars(self):
        for ch in ["\x00", "\x01", "\t", "\n", "\r", "\x1f", "\x7f", "\x85", "\x9f"]:
            self.assertFalse(is_valid_name("a%sb" % ch), repr(ch))

    def test_non_control_unicode_space_allowed(self):
        # Only the ASCII space is named by §3; other spaces are not Cc.
        self.assertTrue(is_valid_name("a\u3000b"))

    def test_not_a_string(self):
        self.assertFalse(is_valid_name(None))
        self.assertFalse(is_valid_name(b"abc"))
