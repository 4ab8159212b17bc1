"""The resource name rule, shared by every part of the server: one path
segment, percent-decoded as UTF-8 (docs/conformance.md, "Names")."""
import re

MAX_LENGTH = 256
FORBIDDEN = frozenset('\\/:*?"<>| ')

# 1 to 256 characters, none forbidden, none of Unicode category Cc (exactly
# U+0000-U+001F and U+007F-U+009F): one regular expression, checked on every
# segment of every request. Under --collection-semantics rfc4918 (the mode
# for desktop clients, whose users name files with spaces) a space is allowed.
_VALID = re.compile('[^\\\\/:*?"<>| \x00-\x1f\x7f-\x9f]{1,%d}' % MAX_LENGTH).fullmatch
_VALID_SPACES = re.compile('[^\\\\/:*?"<>|\x00-\x1f\x7f-\x9f]{1,%d}' % MAX_LENGTH).fullmatch


def is_valid_name(name, spaces=False):
    """True when ``name`` is a valid collection or file name (one segment).

    1 to 256 characters; none of ``\\ / : * ? " < > |``, no space (unless
    ``spaces``), no control character (Unicode Cc); not ``.`` or ``..``.
    """
    match = _VALID_SPACES if spaces else _VALID
    return (isinstance(name, str) and match(name) is not None
            and name != "." and name != "..")
