"""The resource name rule (SPEC §3), shared by every part of the server."""
import unicodedata

MAX_LENGTH = 256
FORBIDDEN = frozenset('\\/:*?"<>| ')


def is_valid_name(name):
    """True when ``name`` is a valid collection or file name (one segment).

    1 to 256 characters; none of ``\\ / : * ? " < > |``, no space, no
    control character (Unicode Cc); not ``.`` or ``..``.
    """
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_LENGTH:
        return False
    if name in (".", ".."):
        return False
    return not any(
        c in FORBIDDEN or unicodedata.category(c) == "Cc" for c in name
    )
