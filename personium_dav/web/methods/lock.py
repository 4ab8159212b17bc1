"""LOCK and UNLOCK (RFC 4918 §9.10, §9.11): write locks, exclusive or
shared, ``Depth: 0`` or ``infinity``, with a timeout; and the
``D:lockdiscovery`` value PROPFIND shows (``D:supportedlock`` is in live.py).

* LOCK with a ``D:lockinfo`` body takes a new lock: 200 (201 when it made an
  empty resource at an unmapped URL, §7.3) with ``Lock-Token`` and a
  ``D:prop/D:lockdiscovery`` body; a conflicting lock is 423 with
  ``D:no-conflicting-lock``.
* LOCK without a body refreshes the locks covering the URL whose tokens the
  ``If`` header submits (their creator's only): 200, or 412 when there is none.
* UNLOCK with ``Lock-Token``: 204; a token that names no lock covering the
  URL is 409 with ``D:lock-token-matches-request-uri``. Only the lock's
  creator, or a principal holding ``write-acl`` on its root, may remove it.

The locks themselves, their conflicts and who may use a token are the box
API's (store/box.py); this module reads the request and writes the answer.
"""
import re

from lxml import etree

from ...dav.errors import DavError
from ...dav.lockxml import discovery
from ...dav.xmlutil import DAV, XML_HEAD, children, is_element, parse
from ..reply import XML_TYPE, Reply
from .common import header, preconditions, store, xml_body

_SECONDS = re.compile(r"second-([0-9]{1,12})\Z", re.I)


def _answer(ctx, status, locks, headers):
    """The ``D:prop/D:lockdiscovery`` of a LOCK answer: ``locks`` (the
    granted or refreshed ones first) as they cover the request URL."""
    value = discovery(ctx.href, list(locks), ctx.names, ctx.api.clock())
    body = XML_HEAD + ('<D:prop xmlns:D="DAV:">%s</D:prop>'
                       % (value or "<D:lockdiscovery/>")).encode("utf-8")
    return Reply(status, body, dict(headers, **{"Content-Type": XML_TYPE}))


# -- the request ------------------------------------------------------------------

def _owner(el):
    """The ``D:owner`` element as sent (text, children, attributes, the
    namespaces they use), written with ``D:`` for ``DAV:`` like the rest."""
    def build(src, parent):
        nsmap = {p: u for p, u in src.nsmap.items() if u != DAV and p != "D"}
        if parent is None:
            nsmap["D"] = DAV
            out = etree.Element(src.tag, dict(src.attrib), nsmap)
        else:
            out = etree.SubElement(parent, src.tag, dict(src.attrib), nsmap)
        out.text = src.text
        for child in src:
            if is_element(child):
                build(child, out).tail = child.tail
            elif len(out):
                out[-1].tail = (out[-1].tail or "") + (child.tail or "")
            else:
                out.text = (out.text or "") + (child.tail or "")
        return out

    return etree.tostring(build(el, None), encoding="unicode")


def lockinfo(body):
    """(scope, owner XML) of a ``D:lockinfo``; 400 for anything else."""
    root = parse(body)
    if root.tag != "{DAV:}lockinfo":
        raise DavError("PR400-DV-0002")
    scope = locktype = None
    owner = ""
    for el in children(root):  # RFC 4918 §17: unknown elements are ignored
        inner = [c.tag for c in children(el)]
        if el.tag == "{DAV:}lockscope":
            if inner not in (["{DAV:}exclusive"], ["{DAV:}shared"]):
                raise DavError("PR400-DV-0002")
            scope = inner[0][len("{DAV:}"):]
        elif el.tag == "{DAV:}locktype":
            if inner != ["{DAV:}write"]:
                raise DavError("PR400-DV-0002")  # write locks only
            locktype = "write"
        elif el.tag == "{DAV:}owner":
            owner = _owner(el)
    if scope is None or locktype is None:
        raise DavError("PR400-DV-0002")
    return scope, owner


def depth(request):
    value = header(request, "depth")
    if value is None:
        return "infinity"
    if value.strip().lower() in ("0", "infinity"):
        return value.strip().lower()
    raise DavError("PR400-DV-0009", "Depth", value)


def timeout(request, maximum):
    """Seconds to grant: the first ``Second-N`` or ``Infinite`` of the
    ``Timeout`` header, capped at ``maximum``; None without the header.
    Values it does not understand are skipped (RFC 4918 §10.7)."""
    value = header(request, "timeout")
    if value is None:
        return None
    for part in value.split(","):
        part = part.strip()
        if part.lower() == "infinite":
            return maximum
        m = _SECONDS.match(part)
        if m:
            return max(1, min(int(m.group(1)), maximum))
    return maximum


# -- LOCK -------------------------------------------------------------------------

def render_lock(resource, request):
    ctx = resource.ctx
    config = ctx.server.config
    granted = timeout(request, config.max_lock_timeout)
    conds = preconditions(request, ctx)
    body = xml_body(request, config)
    if body is None:  # a refresh of the locks whose tokens the If header submits
        def refreshed(done):
            return _answer(ctx, 200, done.locks, {})

        return store(ctx, ctx.api.refresh, ctx.caller(), ctx.names, granted,
                     conds).addCallback(refreshed)
    scope, owner = lockinfo(body)
    level = depth(request)
    if granted is None:
        granted = config.max_lock_timeout

    def locked(done):
        lock = done.locks[0]
        headers = {"Lock-Token": ("<%s>" % lock.token).encode("ascii")}
        if done.created:
            headers["ETag"] = done.info.etag.encode()
        return _answer(ctx, 201 if done.created else 200, done.locks, headers)

    return store(ctx, ctx.api.lock, ctx.caller(), ctx.names, scope, level, owner, granted,
                 conds).addCallback(locked)


# -- UNLOCK -----------------------------------------------------------------------

def lock_token(request):
    value = header(request, "lock-token")
    if value is None or not value.strip():
        raise DavError("PR400-DV-0010", "Lock-Token")
    token = value.strip()
    if token.startswith("<") and token.endswith(">"):
        token = token[1:-1].strip()
    if not token or any(c.isspace() or c in "<>" for c in token):
        raise DavError("PR400-DV-0009", "Lock-Token", value)
    return token


def render_unlock(resource, request):
    ctx = resource.ctx
    token = lock_token(request)
    conds = preconditions(request, ctx)
    return store(ctx, ctx.api.unlock, ctx.caller(), ctx.names, token,
                 conds).addCallback(lambda done: Reply(204))
