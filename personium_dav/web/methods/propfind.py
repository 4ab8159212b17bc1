"""PROPFIND Depth 0 and 1: allprop (with include), propname, prop.

Depth 1 takes one listing of the collection and its one sidecar. A
member's D:response is rendered once and kept with its Info
(``Info.rendered``), which store/listing.py hands back unchanged while the
member is. The listing and the rendering run in a thread; the multistatus
is joined and written in slices on the reactor, a slice per turn, so a
large listing never blocks it (and no second copy of a whole answer is
kept).
"""
import functools
from dataclasses import replace

from twisted.internet import task

from ...auth.privileges import ACL_KEY, ANONYMOUS, acls_of, display_acl, load_acl
from ...dav.errors import DavError
from ...dav.live import BY_NAME_ONLY, all_live, live_value, live_values
from ...dav.lockxml import discovery
from ...dav.xmlutil import (DAV, MULTISTATUS_CLOSE, MULTISTATUS_OPEN, children, empty_element,
                            escape, parse, split)
from ..reply import XML_TYPE, Reply, xml_reply
from ..state import quote_segment, state_of
from .common import header, preconditions, xml_body

OK = "<D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
MISSING = "<D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>"
SLICE = 64  # responses written per turn of the reactor
ALLPROP_TAIL = ("</D:prop>%s</D:response>" % OK).encode()


def depth(request, rfc4918=False, collection=True):
    """0 or 1. Under --collection-semantics rfc4918 a missing Depth means
    infinity (RFC 4918 §9.1), which a resource without members ignores
    (§10.2); a collection still refuses it (403, finite depth only)."""
    value = header(request, "depth")
    if rfc4918 and value is None:
        value = "infinity"
    if rfc4918 and not collection and value == "infinity":
        return 0
    if value == "infinity":
        raise DavError("PR403-DV-0001")
    if value not in ("0", "1"):
        raise DavError("PR400-DV-0003", "" if value is None else value)
    return int(value)


KNOWN = {"{DAV:}propname", "{DAV:}allprop", "{DAV:}include", "{DAV:}prop"}


def request_kind(root):
    """('allprop', include keys) | ('propname', None) | ('prop', keys)."""
    if root is None:
        return "allprop", []
    if root.tag != "{DAV:}propfind":
        raise DavError("PR400-DV-0001")
    # RFC 4918 §17: elements the server does not know are ignored
    found = [c for c in children(root) if c.tag in KNOWN]
    tags = [c.tag for c in found]
    if tags == ["{DAV:}propname"]:
        return "propname", None
    if tags and tags[0] == "{DAV:}allprop" and tags[1:] in ([], ["{DAV:}include"]):
        include = [split(e.tag) for e in children(found[1])] if len(found) > 1 else []
        return "allprop", include
    if tags == ["{DAV:}prop"]:
        return "prop", [split(e.tag) for e in children(found[0])]
    raise DavError("PR400-DV-0001")


def response(href, info, kind, keys):
    """One D:response for a resource."""
    if kind == "allprop" and not keys:  # the common case, by plain formatting
        head = "<D:response><D:href>%s</D:href><D:propstat><D:prop>%s" % (
            escape(href), all_live(info))
        return b"".join((head.encode("utf-8"), *info.props.values(), ALLPROP_TAIL))
    if kind == "propname":
        names = [empty_element(*k) for k, _ in live_values(info)]
        names += [empty_element(*k) for k in info.props]
        found, missing = "".join(names), ""
    elif kind == "allprop":
        found = "".join(v for _, v in live_values(info, allprop=True))
        found += "".join(live_value(info, k) for k in keys if k in BY_NAME_ONLY)
        found += b"".join(info.props.values()).decode("utf-8")
        missing = "".join(empty_element(*k) for k in keys
                          if k not in info.props and live_value(info, k) is None)
    else:
        values, absent = [], []
        for key in keys:
            value = live_value(info, key) if key[0] == DAV else None
            if value is None:
                raw = info.props.get(key)
                value = raw.decode("utf-8") if raw is not None else None
            (values if value is not None else absent).append(value or empty_element(*key))
        found, missing = "".join(values), "".join(absent)
    out = "<D:response><D:href>%s</D:href>" % escape(href)
    if found or not missing:
        out += "<D:propstat><D:prop>%s</D:prop>%s" % (found, OK)
    if missing:
        out += "<D:propstat><D:prop>%s</D:prop>%s" % (missing, MISSING)
    return (out + "</D:response>").encode("utf-8")


@functools.lru_cache(maxsize=256)
def _parsed_kind(body):
    kind, keys = request_kind(parse(body))
    return kind, None if keys is None else tuple(keys)


def _request_kind(body):
    """request_kind of a body; a client's usual (small) bodies are parsed once."""
    if body is None:
        return request_kind(None)
    if len(body) > 4096:
        return request_kind(parse(body))
    kind, keys = _parsed_kind(body)  # errors (DavError) are never cached
    return kind, None if keys is None else list(keys)


def asked_acl(kind, keys):
    """Is ``D:acl`` asked for? By name (``D:prop``, ``D:allprop`` with
    ``D:include``) or ``D:propname``: as RFC 3744 properties, it is not part
    of a plain ``allprop`` (RFC 4918 §9.1), which keeps generic clients'
    listings free of principal hrefs."""
    return kind == "propname" or ACL_KEY in (keys or ())


def viewer(ctx, principal, wanted=True):
    """``view(info, own)`` -> the Info as ``principal`` may see it in a
    PROPFIND: ``D:acl`` shown (with ``xml:base``) only when ``wanted`` and
    with read-acl on the resource."""
    if not wanted:
        def hide(info, own=True):
            if ACL_KEY not in info.props:
                return info
            return replace(info, props={k: v for k, v in info.props.items() if k != ACL_KEY})

        return hide
    api, loc = ctx.api, ctx.loc
    chain = acls_of(loc.chain)
    base = ctx.cell_url
    own_ok = api.may(principal, "read-acl", ctx.names, chain)

    def view(info, own=True):
        value = info.props.get(ACL_KEY)
        if value is None:
            return info
        props = dict(info.props)
        if own:
            ok = own_ok
        else:
            ok = api.may(principal, "read-acl", ctx.names + [info.name],
                         chain + [load_acl(value)])
        if ok:
            props[ACL_KEY] = display_acl(value, base)
        else:
            del props[ACL_KEY]
        return replace(info, props=props)

    return view


def render(resource, request):
    ctx = resource.ctx
    config = ctx.server.config
    info = ctx.loc.info
    level = depth(request, config.rfc4918, info.is_collection)
    body = xml_body(request, config)
    kind, keys = _request_kind(body)
    conds = preconditions(request, ctx)
    conds.check(info)
    answer = _answer
    if ctx.server.store.shared and (level == 0 or not info.is_collection):
        answer = _threaded  # Depth 0 reads the lock table: on a shared mount, in a thread
    if conds.if_lists:
        return ctx.server.pools.reads(ctx.api.check_if, conds, ctx.loc).addCallback(
            lambda _: answer(ctx, info, level, kind, keys))
    return answer(ctx, info, level, kind, keys)


def _threaded(ctx, *args):
    return ctx.server.pools.reads(_answer, ctx, *args)


def _answer(ctx, info, level, kind, keys):
    # D:acl only for callers holding read-acl
    shown = asked_acl(kind, keys)
    view = viewer(ctx, ctx.principal or ANONYMOUS, shown)
    if level == 0 or not info.is_collection:
        # the lock table is read like the sidecars resolve() read: through a
        # cache revalidated on its stat, never waiting for its flock
        shown_info = _locked(ctx, kind, keys)(view(info), ctx.names)
        href = ctx.href(ctx.names, info.is_collection)
        memo = (kind, None if keys is None else tuple(keys), href)
        done = info.rendered
        if shown_info is info and done is not None and done[0] == memo:
            own = done[1]  # the resource has not changed since (store/tree.py _infos)
        else:
            own = response(href, shown_info, kind, keys)
            if shown_info is info and not (shown and ACL_KEY in info.props):
                info.rendered = (memo, own)
        return xml_reply(207, MULTISTATUS_OPEN + own + MULTISTATUS_CLOSE)

    base = ctx.href(ctx.names, True)  # each member's href is base + its name
    memo = (kind, None if keys is None else tuple(keys), base)  # what a rendering depends on

    def listing():
        """The collection's own response and its members' (blocking: a
        thread)."""
        members = ctx.api.members(info)
        locked = _locked(ctx, kind, keys)
        own = response(base, locked(view(info), ctx.names), kind, keys)
        if locked is not _unlocked:  # a lock's D:lockdiscovery: rendered fresh
            return own, [
                response(base + quote_segment(m.name) + ("/" if m.is_collection else ""),
                         locked(view(m, False), ctx.names + [m.name]), kind, keys)
                for m in members]
        out = []
        for m in members:
            done = m.rendered
            if done is not None and done[0] == memo:
                out.append(done[1])
                continue
            done = response(base + quote_segment(m.name) + ("/" if m.is_collection else ""),
                            view(m, False), kind, keys)
            if not (shown and ACL_KEY in m.props):  # its D:acl depends on the caller
                m.rendered = (memo, done)
            out.append(done)
        return own, out

    def reply(found):
        own, responses = found
        if len(responses) <= SLICE:
            return xml_reply(207, b"".join((MULTISTATUS_OPEN, own, *responses, MULTISTATUS_CLOSE)))
        return Reply(207, headers={"Content-Type": XML_TYPE},
                     stream=lambda req: _stream(req, _slices(own, responses)))

    return ctx.server.pools.reads(listing).addCallback(reply)


def _slices(own, responses):
    """The multistatus in pieces of SLICE responses, each joined only when
    it is written (on the reactor thread: large joins made in a pool thread
    stay in that thread's malloc arena, 9 MiB more resident after a
    10,000-member listing)."""
    yield MULTISTATUS_OPEN + own
    for i in range(0, len(responses), SLICE):
        yield b"".join(responses[i:i + SLICE])
    yield MULTISTATUS_CLOSE


LOCKDISCOVERY = (DAV, "lockdiscovery")


def _unlocked(info, names):
    return info


def _locked(ctx, kind, keys):
    """``locked(info, names)`` -> the Info with its ``D:lockdiscovery`` when
    the request shows it and a lock covers it; ``_unlocked`` when no lock
    touches the request's resource or what is below it."""
    if kind == "propname" or (kind == "prop" and LOCKDISCOVERY not in keys):
        return _unlocked
    locks = [lk for lk in ctx.api.read_locks()
             if lk.covers(ctx.names) or lk.below(ctx.names)]
    if not locks:
        return _unlocked
    now = ctx.api.clock()

    def locked(info, names):
        value = discovery(ctx.href, locks, names, now)
        return info if value is None else replace(info, discovery=value)

    return locked


def _stream(request, chunks):
    st = state_of(request)

    def write_all():
        for chunk in chunks:
            if request.finished or st.disconnected:
                return
            request.write(chunk)
            yield
        request.finish()

    return task.cooperate(write_all()).whenDone()
