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
"""
import io
import mimetypes
import os
import re
from dataclasses import replace

from lxml import etree

from ...auth.privileges import Target, acls_along
from ...dav.errors import DavError
from ..reply import XML_TYPE, Reply
from ...store.locks import Lock, new_token
from ...dav.xmlutil import DAV, XML_HEAD, children, escape, is_element, parse
from .common import header, in_thread, room_for_one, xml_body
from .locking import Guard, hrefs

_SECONDS = re.compile(r"second-([0-9]{1,12})\Z", re.I)


# -- what PROPFIND and LOCK answers show ----------------------------------------

def activelock(ctx, lock, now):
    remaining = max(0, int(lock.expires - now + 0.999))
    return (
        "<D:activelock><D:locktype><D:write/></D:locktype>"
        "<D:lockscope><D:%s/></D:lockscope><D:depth>%s</D:depth>%s"
        "<D:timeout>Second-%d</D:timeout>"
        "<D:locktoken><D:href>%s</D:href></D:locktoken>"
        "<D:lockroot>%s</D:lockroot></D:activelock>"
        % (lock.scope, lock.depth, lock.owner, remaining, escape(lock.token),
           hrefs(ctx, [lock])))


def discovery(ctx, locks, names, now, first=()):
    """The ``D:lockdiscovery`` of the URL at ``names``: every live lock
    covering it (those of ``first`` first), or None when there is none."""
    covering = [lk for lk in locks if lk.covers(names)]
    if not covering:
        return None
    ordered = [lk for lk in covering if lk.token in first]
    ordered += [lk for lk in covering if lk.token not in first]
    return ("<D:lockdiscovery>%s</D:lockdiscovery>"
            % "".join(activelock(ctx, lk, now) for lk in ordered))


def _answer(ctx, status, locks, tokens, headers):
    now = ctx.server.locks.clock()
    value = discovery(ctx, locks, ctx.names, now, tokens) or "<D:lockdiscovery/>"
    body = XML_HEAD + ('<D:prop xmlns:D="DAV:">%s</D:prop>' % value).encode("utf-8")
    headers = dict(headers, **{"Content-Type": XML_TYPE})
    return Reply(status, body, headers)


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


def _principal_may_break(ctx, lock):
    """May the caller remove a lock another principal took? write-acl on its root."""
    names = list(lock.root)
    box_dir = ctx.tree.box_dir(ctx.cell, ctx.box)
    target = Target(ctx.cell, ctx.box, names, acls_along(ctx.tree, box_dir, names))
    return ctx.server.envelope.policy.allowed(ctx.principal, "write-acl", target)


# -- LOCK -------------------------------------------------------------------------

def render_lock(resource, request):
    ctx = resource.ctx
    loc, tree, config = ctx.loc, ctx.tree, ctx.config
    guard = Guard(ctx, request)
    granted = timeout(request, config.max_lock_timeout)
    body = xml_body(request, config)
    if body is None:
        return _refresh(ctx, guard, granted)
    scope, owner = lockinfo(body)
    level = depth(request)
    may_create = loc.info is None
    if granted is None:
        granted = config.max_lock_timeout

    def work():
        created = None
        with guard.hold(exclusive=True) as held:
            with tree.locked(loc.parent_dir or loc.path):
                info = tree.info(loc.path, loc.name)
                if info is None and not may_create:
                    raise DavError("PR404-DV-0001", ctx.url(ctx.names, False))
                guard.check(info, [] if info is not None else [(ctx.names[:-1], False)])
                now = ctx.server.locks.clock()
                lock = Lock(token=new_token(), root=tuple(ctx.names),
                            collection=info is not None and info.is_collection, depth=level,
                            scope=scope, owner=owner, principal=guard.principal,
                            timeout=granted, expires=now + granted)
                conflicting = [lk for lk in held.locks if lk.conflicts(lock)]
                if conflicting:
                    raise DavError("PR423-DV-0002", condition="<D:no-conflicting-lock>%s"
                                   "</D:no-conflicting-lock>" % hrefs(ctx, conflicting))
                if info is None:
                    created = _create_empty(ctx)
                held.add(lock)
            locks = list(held.locks)
        headers = {"Lock-Token": ("<%s>" % lock.token).encode("ascii")}
        if created is not None:
            headers["ETag"] = created.etag.encode()
        return _answer(ctx, 201 if created is not None else 200, locks, {lock.token}, headers)

    return in_thread(work)


def _create_empty(ctx):
    """RFC 4918 §7.3: LOCK of an unmapped URL makes an empty file (its type
    guessed from the name, as for a PUT without Content-Type)."""
    loc, tree = ctx.loc, ctx.tree
    members = room_for_one(tree, loc.parent_dir, ctx.config)
    content_type = mimetypes.guess_type(loc.name)[0] or "application/octet-stream"
    tmp = tree.receive(io.BytesIO(b""))
    try:
        info = tree.install_file(tmp, loc, content_type, None)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    tree.counted(loc.parent_dir, members + 1)
    return info


def _refresh(ctx, guard, granted):
    if not guard.submitted:
        raise DavError("PR400-DV-0010", "If")
    loc, tree = ctx.loc, ctx.tree

    def work():
        with guard.hold(exclusive=True) as held:
            guard.check(tree.info(loc.path, loc.name))
            mine = [lk for lk in held.locks if lk.covers(ctx.names) and guard.holds(lk)]
            if not mine:
                raise DavError("PR412-DV-0003")
            now = ctx.server.locks.clock()
            for lk in mine:
                seconds = granted if granted is not None else lk.timeout
                held.put(replace(lk, timeout=seconds, expires=now + seconds))
            locks = list(held.locks)
        return _answer(ctx, 200, locks, {lk.token for lk in mine}, {})

    return in_thread(work)


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
    loc, tree = ctx.loc, ctx.tree
    token = lock_token(request)
    guard = Guard(ctx, request)

    def work():
        with guard.hold(exclusive=True) as held:
            guard.check(tree.info(loc.path, loc.name))  # the If header, when sent
            lock = next((lk for lk in held.locks if lk.token == token), None)
            if lock is None or not lock.covers(ctx.names):
                raise DavError("PR409-DV-0002",
                               condition="<D:lock-token-matches-request-uri/>")
            if lock.principal != guard.principal and not _principal_may_break(ctx, lock):
                raise DavError("PR403-AU-0002")
            held.drop(lambda lk: lk.token == token)
        return Reply(204)

    return in_thread(work)
