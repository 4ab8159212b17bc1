"""HTTP preconditions (RFC 9110 §13) and the WebDAV ``If`` header (RFC 4918
§10.4), as data a store operation evaluates under its locks.

``Preconditions`` is what a request (or a script) asks: parsed once from the
headers, with the resource tags of the ``If`` header already mapped to names
in the box, so evaluating it needs no HTTP. The order is RFC 9110 §13.2.2's:
``If-Match``, else ``If-Unmodified-Since``; ``If-None-Match``, else (GET and
HEAD) ``If-Modified-Since``; then (GET with ``Range``) ``If-Range``; then the
``If`` header. They are evaluated only where the request would otherwise
succeed (the caller checks existence and kind first).
"""
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from . import ifheader
from .errors import DavError

class _Self:
    def __repr__(self):
        return "SELF"


SELF = _Self()  # the resource of an untagged If list: the request URL
OUTSIDE = None  # a resource tag that names nothing in this box


class NotModified(Exception):
    """A GET or HEAD whose If-None-Match or If-Modified-Since says 304."""


def _tags(value):
    return tuple(t.strip() for t in value.split(",") if t.strip())


def http_seconds(value):
    """Seconds since the epoch of an HTTP date, or None when it is not one
    (RFC 9110 §13.1.3: an invalid date is ignored)."""
    if value is None or len(value) > 64:
        return None
    try:
        return int(parsedate_to_datetime(value.strip()).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def strong_match(tags, etag):
    """If-Match: ``*`` matches any existing resource; a weak tag never matches."""
    if etag is None:
        return False
    return "*" in tags or etag in tags


def weak_match(tags, etag):
    """If-None-Match: compared weakly (``W/`` ignored on both sides)."""
    if etag is None:
        return False
    bare = etag[2:] if etag.startswith("W/") else etag
    return "*" in tags or any((t[2:] if t.startswith("W/") else t) == bare for t in tags)


@dataclass(frozen=True)
class Preconditions:
    if_match: tuple = None  # entity tags, or ("*",); None when absent
    if_none_match: tuple = None
    if_unmodified_since: int = None  # seconds since the epoch
    if_modified_since: int = None
    if_range: str = None  # an entity tag or an HTTP date, as sent
    if_lists: tuple = ()  # ((names | SELF | OUTSIDE, (Condition, ...)), ...)
    submitted: frozenset = field(default_factory=frozenset)  # lock tokens of the If header

    @classmethod
    def from_headers(cls, get, names_of):
        """From request headers: ``get(name)`` -> str or None; ``names_of(tag)``
        -> the names in this box a resource tag of the If header names, or
        OUTSIDE. A malformed If header is 400 ``PR400-DV-0009``."""
        raw_if = get("if")
        lists = ()
        if raw_if is not None:
            try:
                parsed = ifheader.parse(raw_if)
            except ifheader.Malformed:
                raise DavError("PR400-DV-0009", "If", raw_if)
            lists = tuple((SELF if lst.resource is None else names_of(lst.resource),
                           lst.conditions) for lst in parsed)
        match, none_match = get("if-match"), get("if-none-match")
        return cls(
            if_match=None if match is None else _tags(match),
            if_none_match=None if none_match is None else _tags(none_match),
            if_unmodified_since=http_seconds(get("if-unmodified-since")),
            if_modified_since=http_seconds(get("if-modified-since")),
            if_range=get("if-range"),
            if_lists=lists,
            submitted=ifheader.tokens(parsed) if lists else frozenset())

    @property
    def empty(self):
        return (self.if_match is None and self.if_none_match is None
                and self.if_unmodified_since is None and self.if_modified_since is None
                and not self.if_lists)

    def check(self, info, read=False):
        """RFC 9110 §13.2.2 steps 1-4 against ``info`` (None: unmapped).
        412 ``PR412-DV-0001`` when one fails; ``NotModified`` for a read
        (GET, HEAD) that should be answered 304."""
        etag = info.etag if info is not None else None
        if self.if_match is not None:
            if not strong_match(self.if_match, etag):
                raise DavError("PR412-DV-0001")
        elif self.if_unmodified_since is not None and info is not None:
            if info.modified // 1000 > self.if_unmodified_since:
                raise DavError("PR412-DV-0001")
        if self.if_none_match is not None:
            if weak_match(self.if_none_match, etag):
                if read:
                    raise NotModified()
                raise DavError("PR412-DV-0001")
        elif read and self.if_modified_since is not None and info is not None:
            if info.modified // 1000 <= self.if_modified_since:
                raise NotModified()

    def range_applies(self, info):
        """RFC 9110 §13.1.5: a Range is honoured only when If-Range (if sent)
        matches: an entity tag strongly, a date exactly."""
        value = self.if_range
        if value is None:
            return True
        value = value.strip()
        if value.startswith('"') or value.startswith("W/"):
            return value == info.etag
        seconds = http_seconds(value)
        return seconds is not None and seconds == info.modified // 1000

    def if_header_holds(self, state):
        """The ``If`` header (True when absent): ``state(names)`` -> (etag or
        None, lock tokens covering that URL) for SELF or a tuple of names."""
        if not self.if_lists:
            return True
        lists = [ifheader.IfList(names, conditions) for names, conditions in self.if_lists]

        def of(names):
            if names is OUTSIDE:  # not in this box: no state at all
                return None, frozenset()
            return state(names)

        return ifheader.evaluate(lists, of)


NONE = Preconditions()
