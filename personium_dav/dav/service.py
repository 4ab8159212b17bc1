"""The ``p:service`` property: validation on write (docs/behaviour.md §6) and its routes.

A route is a ``p:path`` ``name`` split into ``/``-separated segments, each a
literal (``str``) or a JAX-RS style template variable (``Var``): ``{id}`` or
``{id: regex}``. Templates are found by brace depth, so a regex may hold
braces (``[0-9]{3}``) and slashes.
"""
import re
import unicodedata
from dataclasses import dataclass, field
from typing import List, Optional, Union

from .errors import DavError
from .names import is_valid_name
from .xmlutil import PNS, has_text, is_element

SERVICE = "{%s}service" % PNS
PATH = "{%s}path" % PNS
LANGUAGE = "JavaScript"

_TEMPLATE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(?::\s*(.*?)\s*)?", re.S)


@dataclass(frozen=True)
class Var:
    """A template segment: variable ``name``, ``regex`` or None for ``{id}``."""

    name: str
    regex: Optional[str] = None


@dataclass
class Route:
    """One ``p:path``: its ``name`` (the route), ``src`` file and segments."""

    name: str
    src: str
    segments: List[Union[str, Var]] = field(default_factory=list)


def _bad(cause):
    return DavError("PR400-DV-0006", cause)


def _plain(text):
    """True when ``text`` has no whitespace and no control character."""
    return not any(c.isspace() or unicodedata.category(c) == "Cc" for c in text)


def validate(element):
    """Check a ``p:service`` element; return its routes or raise PR400-DV-0006."""
    language = element.get("language")
    if language is not None and language != LANGUAGE:
        raise _bad("language must be JavaScript")
    subject = element.get("subject")
    if subject is not None:
        if not subject:
            raise _bad("subject is empty")
        if not _plain(subject):
            raise _bad("subject has whitespace or control characters [%s]" % subject)
    if has_text(element):
        raise _bad("unexpected text in service")
    routes, seen = [], set()
    for child in element:
        if not is_element(child):
            continue
        if child.tag != PATH:
            raise _bad("unexpected element [%s]" % child.tag)
        route = _path(child)
        if route.name in seen:
            raise _bad("duplicate path name [%s]" % route.name)
        seen.add(route.name)
        routes.append(route)
    return routes


def _path(el):
    """One ``p:path`` element -> Route."""
    name = el.get("name")
    if name is None:
        raise _bad("path name is missing")
    if not name:
        raise _bad("path name is empty")
    src = el.get("src")
    if src is None:
        raise _bad("src is missing in path [%s]" % name)
    if not is_valid_name(src):
        raise _bad("src is not a valid file name [%s]" % src)
    return Route(name, src, parse_route(name))


def parse_route(name):
    """Split a route into literal and ``Var`` segments or raise PR400-DV-0006."""
    return [_segment(seg, name) for seg in _split(name)]


def _split(name):
    """Split on ``/`` outside braces; braces must balance."""
    segs, cur, depth = [], [], 0
    for ch in name:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise _bad("unbalanced braces in path [%s]" % name)
        elif ch == "/" and depth == 0:
            segs.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    if depth:
        raise _bad("unbalanced braces in path [%s]" % name)
    segs.append("".join(cur))
    return segs


def _segment(seg, name):
    if not seg:
        raise _bad("empty segment in path [%s]" % name)
    if "{" not in seg and "}" not in seg:
        if not _plain(seg):
            raise _bad("invalid segment in path [%s]" % name)
        return seg
    inner = seg[1:-1]
    if seg[0] != "{" or seg[-1] != "}" or not _balanced(inner):
        raise _bad("invalid segment in path [%s]" % name)
    m = _TEMPLATE.fullmatch(inner)
    if m is None:
        raise _bad("invalid template in path [%s]" % name)
    regex = m.group(2) or None
    if regex is not None:
        try:
            re.compile(regex)
        except (re.error, OverflowError, RecursionError, ValueError):
            raise _bad("invalid regex in path [%s]" % name)
    return Var(m.group(1), regex)


def _balanced(text):
    """True when braces in ``text`` never close more than they opened."""
    depth = 0
    for ch in text:
        depth += ch == "{"
        depth -= ch == "}"
        if depth < 0:
            return False
    return depth == 0
