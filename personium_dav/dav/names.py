"""The resource name rule (SPEC §3), shared by every part of the server."""
import re

MAX_LENGTH = 256
FORBIDDEN = frozenset('\\/:*?"<>| ')

# 1 to 256 characters, none forbidden, none of Unicode category Cc (exactly
# U+0000-U+001F and U+007F-U+009F): one regular expression, checked on every
# segment of every request
_VALID = re.compile('[^\\\\/:*?"<>| \x00-\x1f\x7f-\x9f]{1,%d}' % MAX_LENGTH).fullmatch


def is_valid_name(name):
    """True when ``name`` is a valid collection or file name (one segment).

    1 to 256 characters; none of ``\\ / : * ? " < > |``, no space, no
    control character (Unicode Cc); not ``.`` or ``..``.
    """
    return (isinstance(name, str) and _VALID(name) is not None
            and name != "." and name != "..")
