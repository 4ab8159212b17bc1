"""Which ``p:path`` route of a service collection a request path selects.

Jersey URI-template semantics: a route is matched against the whole decoded
path below the service collection (no leading ``/``), literal text as is,
``{var}`` as one segment (``[^/]+``), ``{var: regex}`` as that regex (it may
span segments). Routes are tried in document order; the first one that
matches the WHOLE path wins.

A route's regex is written by whoever may PROPPATCH the collection, and a
pattern such as ``(\\w+\\s?)+$`` backtracks exponentially. Two fences keep one
request from holding the reactor:

* a path longer than ``MAX_PATH`` characters matches no route (404);
* matching uses the ``regex`` module with a time-out: all routes of one call
  share a budget of ``BUDGET`` seconds; when it runs out, the call matches no
  route (404) and the route that spent it is logged.

So the worst a hostile route costs is ``BUDGET`` of one reactor turn per call.
Routes without a regex of their own (literals and ``{var}`` segments) cannot
backtrack: they are matched without the time-out's bookkeeping (the
``regex`` module's time-out costs ~20 times the match of a short path), a
literal route by comparing the strings.
"""
import time

import regex
from twisted.logger import Logger

from ..dav.service import Var

MAX_PATH = 2048  # characters of the decoded path
BUDGET = 0.05  # seconds of matching per call, all routes together
DEFAULT_SEGMENT = r"[^/]+"

log = Logger()
_compiled = {}  # route name -> compiled pattern (or None when it cannot compile)
_CACHE_MAX = 4096


def pattern(route):
    """The compiled full-match pattern of a ``service.Route`` (cached by name):
    (pattern or None when it cannot compile, whether it holds a regex of
    its own, the literal text when the route is only literals)."""
    key = route.name
    if key in _compiled:
        return _compiled[key]
    parts, guarded, literal = [], False, True
    for seg in route.segments:
        if isinstance(seg, Var):
            parts.append("(?:%s)" % (seg.regex or DEFAULT_SEGMENT))
            guarded = guarded or seg.regex is not None
            literal = False
        else:
            parts.append(regex.escape(seg))
    try:
        compiled = regex.compile("/".join(parts), regex.V0)
    except (regex.error, OverflowError, RecursionError, ValueError):
        compiled = None
    if len(_compiled) >= _CACHE_MAX:
        _compiled.clear()
    text = "/".join(route.segments) if literal else None
    _compiled[key] = found = (compiled, guarded, text)
    return found


def match(routes, path):
    """The first route of ``routes`` whose template matches all of ``path``, or None."""
    if len(path) > MAX_PATH:
        return None
    end = None
    for route in routes:
        compiled, guarded, text = pattern(route)
        if text is not None:
            if path == text:
                return route
            continue
        if compiled is None:
            continue
        if not guarded:
            if compiled.fullmatch(path) is not None:
                return route
            continue
        if end is None:
            end = time.monotonic() + BUDGET
        left = end - time.monotonic()
        if left <= 0:
            log.warn("service routes: matching budget spent before route {name!r}", name=route.name)
            return None
        try:
            if compiled.fullmatch(path, timeout=left) is not None:
                return route
        except TimeoutError:
            log.warn("service routes: route {name!r} ran out of time", name=route.name)
            return None
    return None
