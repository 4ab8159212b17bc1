"""The ``If`` request header of RFC 4918 §10.4: parsing and evaluation.

    If = 1*No-tag-list | 1*Tagged-list
    No-tag-list = List
    Tagged-list = Resource-Tag 1*List
    List = "(" 1*Condition ")"
    Condition = ["Not"] ( State-token | "[" entity-tag "]" )
    State-token = Coded-URL                      ; "<" absolute-URI ">"
    Resource-Tag = "<" Simple-ref ">"

``parse`` turns a header value into a list of ``IfList`` (a resource tag, or
None for the request URL, and its conditions); anything else raises
``Malformed`` (the caller answers 400). ``evaluate`` is pure: it asks a
``state(tag)`` function for the (entity tag, state tokens) of the resource a
list names. A list holds when all of its conditions do; the header holds
when any list does (§10.4.3). No I/O here.
"""
import re
from dataclasses import dataclass

_WS = " \t\r\n"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+\Z")
_ETAG = re.compile(r'(W/)?"[^"]*"')


class Malformed(ValueError):
    """An If header that does not follow the grammar."""


@dataclass(frozen=True)
class Condition:
    negated: bool
    token: str = None  # a state token (absolute URI), or
    etag: str = None  # an entity tag, as sent ('"x"' or 'W/"x"')


@dataclass(frozen=True)
class IfList:
    resource: str  # the Resource-Tag (a URL), or None: the request URL
    conditions: tuple


class _Reader:
    def __init__(self, text):
        self.text, self.pos = text, 0

    def skip(self):
        while self.pos < len(self.text) and self.text[self.pos] in _WS:
            self.pos += 1

    def peek(self):
        self.skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def until(self, closing):
        """The text up to ``closing`` (consumed); the opening char is consumed already."""
        end = self.text.find(closing, self.pos)
        if end < 0:
            raise Malformed("unterminated %r" % closing)
        out = self.text[self.pos:end]
        self.pos = end + 1
        return out


def parse(value):
    """[IfList] of a header value; raises Malformed."""
    r = _Reader(value or "")
    lists, tagged, tag, tag_used = [], None, None, True
    while r.peek():
        c = r.peek()
        if c == "<":
            if tagged is False or not tag_used:
                raise Malformed("a resource tag without a list, or after untagged lists")
            r.pos += 1
            tag = r.until(">").strip()
            if not tag or any(ch in _WS for ch in tag):
                raise Malformed("bad resource tag")
            tagged, tag_used = True, False
        elif c == "(":
            if tagged is None:
                tagged = False
            r.pos += 1
            lists.append(IfList(tag if tagged else None, _conditions(r)))
            tag_used = True
        else:
            raise Malformed("unexpected %r" % c)
    if not lists or not tag_used:
        raise Malformed("no list")
    return lists


def _conditions(r):
    out = []
    while True:
        c = r.peek()
        if c == ")":
            r.pos += 1
            break
        negated = False
        if r.text[r.pos:r.pos + 3].lower() == "not":
            negated = True
            r.pos += 3
            c = r.peek()
        if c == "<":
            r.pos += 1
            token = r.until(">").strip()
            if not _SCHEME.match(token):
                raise Malformed("a state token must be an absolute URI")
            out.append(Condition(negated, token=token))
        elif c == "[":
            r.pos += 1
            r.skip()
            m = _ETAG.match(r.text, r.pos)
            if not m:
                raise Malformed("bad entity tag")
            r.pos = m.end()
            r.skip()
            if r.text[r.pos:r.pos + 1] != "]":
                raise Malformed("bad entity tag")
            r.pos += 1
            out.append(Condition(negated, etag=m.group(0)))
        else:
            raise Malformed("a condition must be a state token or an entity tag")
    if not out:
        raise Malformed("empty list")
    return tuple(out)


def tokens(lists):
    """The state tokens a header submits (RFC 4918 §10.4.1; not the negated ones)."""
    return frozenset(c.token for lst in lists or () for c in lst.conditions
                     if c.token and not c.negated)


def _weak(tag):
    return tag[2:] if tag.startswith("W/") else tag


def evaluate(lists, state):
    """True when the header holds. ``state(resource)`` -> (etag or None, set of
    state tokens) of the resource a list names (None: the request URL); an
    unmapped URL has no entity tag. Entity tags compare weakly."""
    cache = {}
    for lst in lists:
        if lst.resource not in cache:
            cache[lst.resource] = state(lst.resource)
        etag, held = cache[lst.resource]
        if all(_holds(c, etag, held) for c in lst.conditions):
            return True
    return False


def _holds(condition, etag, held):
    if condition.token is not None:
        found = condition.token in held
    else:
        found = etag is not None and _weak(condition.etag) == _weak(etag)
    return found != condition.negated
