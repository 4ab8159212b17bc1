"""PROPFIND Depth 0 and 1: allprop (with include), propname, prop.

Depth 1 takes one listing of the collection and its one sidecar. A
member's D:response is rendered once and kept with its Info
(``Info.rendered``, when small), which store/listing.py hands back
unchanged while the member is. The listing runs in a thread; the
multistatus is written a slice of members at a time as the client takes
it (``Slices``, a push producer), each slice rendered in a thread unless all
its responses are kept, so neither a large listing nor a request naming
many properties blocks the reactor or holds a whole answer in memory. The
property names of one PROPFIND are capped (``--max-propfind-names``).
"""
import functools
from dataclasses import replace

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from ...auth.privileges import ACL_KEY, ANONYMOUS, acls_of, display_acl, load_acl
from ...dav.errors import DavError
from ...dav.live import BY_NAME_ONLY, QUOTA, all_live, live_value, live_values
from ...dav.lockxml import discovery
from ...dav.xmlutil import (DAV, MULTISTATUS_CLOSE, MULTISTATUS_OPEN, children, empty_element,
                            escape, parse, split)
from ..reply import XML_TYPE, Reply, xml_reply
from ...store.props import yield_gil
from ..state import quote_segment, state_of
from .common import header, members, preconditions, xml_body

OK = "<D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
MISSING = "<D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>"
SLICE = 64  # responses written at a time
KEEP = 4096  # bytes of a member's response kept with its Info for the next listing
ALLPROP_TAIL = ("</D:prop>%s</D:response>" % OK).encode()


def depth(request, rfc4918=False, collection=True):
    """0 or 1. Under --collection-semantics rfc4918 a missing Depth means
    infinity (RFC 4918 §9.1), which a resource without members ignores
    (§10.2); a collection still refuses it (403, finite depth only)."""
    value = header(request, "depth")
    if rfc4918 and value is None:
        value = "infinity"
    infinite = value is not None and value.strip().lower() == "infinity"
    if rfc4918 and not collection and infinite:
        return 0
    if infinite:
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
        found += "".join(live_value(info, k) or "" for k in keys if k in BY_NAME_ONLY)
        found += b"".join(info.props.values()).decode("utf-8")
        missing = "".join(empty_element(*k) for k in keys
                          if k not in info.props and live_value(info, k) is None)
    else:
        values, absent = [], []
        for key in keys:
            value = live_value(info, key)
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
    if keys and len(keys) > config.max_propfind_names:  # answers grow as members x names
        raise DavError("PR400-DV-0006", "more than %d property names in one PROPFIND"
                       % config.max_propfind_names)
    conds = preconditions(request, ctx)
    conds.check(info)
    answer = _answer
    if (ctx.server.store.shared or asked_space(kind, keys)) and (
            level == 0 or not info.is_collection):
        # Depth 0 reads the lock table: on a shared mount, in a thread; the
        # quota figures read the disk: in a thread too
        answer = _threaded
    if conds.if_lists:
        return ctx.server.pools.reads(ctx.api.check_if, conds, ctx.loc).addCallback(
            lambda _: answer(ctx, info, level, kind, keys))
    return answer(ctx, info, level, kind, keys)


def _threaded(ctx, *args):
    return ctx.server.pools.reads(_answer, ctx, *args)


def asked_space(kind, keys):
    """Are the quota properties asked for (by name: RFC 4331 keeps them out
    of allprop)? Reading them reads the disk."""
    return kind != "propname" and bool(keys) and not QUOTA.isdisjoint(keys)


def spaced(ctx, view):
    """``view`` that also gives collections their quota figures (blocking:
    it reads the box's usage and the disk's free space once)."""
    used, available = ctx.api.space()

    def view_spaced(info, own=True):
        info = view(info, own)
        return replace(info, space=(used, available)) if info.is_collection else info

    return view_spaced


def _answer(ctx, info, level, kind, keys):
    # D:acl only for callers holding read-acl
    shown = asked_acl(kind, keys)
    view = viewer(ctx, ctx.principal or ANONYMOUS, shown)
    space = asked_space(kind, keys)
    if space and (level == 0 or not info.is_collection):
        view = spaced(ctx, view)
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
    locked = _locked(ctx, kind, keys)
    views = [view]  # with the quota figures when asked: read in the listing's thread

    def one(m):
        """A member's response: the one kept with its Info while it is valid."""
        done = m.rendered
        if done is not None and done[0] == memo and locked is _unlocked:
            return done[1]
        out = response(base + quote_segment(m.name) + ("/" if m.is_collection else ""),
                       locked(views[0](m, False), ctx.names + [m.name]), kind, keys)
        # kept when it depends neither on the caller (its D:acl), a lock nor
        # the moment (quota figures), and is small (many properties asked)
        if (locked is _unlocked and not (shown and ACL_KEY in m.props)
                and not (space and m.is_collection) and len(out) <= KEEP):
            m.rendered = (memo, out)
        return out

    def render_members(part):
        """Responses of a slice of members (blocking: a thread)."""
        out = []
        for i, m in enumerate(part):
            if i % 64 == 63:
                yield_gil()
            out.append(one(m))
        return out

    def listing():
        """The collection's own response, its first slice of members, and
        every member (blocking: a thread)."""
        if space:
            views[0] = spaced(ctx, view)
        found = members(ctx, info)
        own = response(base, locked(views[0](info), ctx.names), kind, keys)
        return own, render_members(found[:SLICE]), found

    def kept(part):
        """The responses of a slice when every one is kept already (joined
        on the reactor: no thread), else None."""
        out = []
        for m in part:
            done = m.rendered
            if done is None or done[0] != memo or locked is not _unlocked:
                return None
            out.append(done[1])
        return out

    def reply(found):
        own, first, everyone = found
        head = b"".join((MULTISTATUS_OPEN, own, *first))
        if len(everyone) <= SLICE:
            return xml_reply(207, head + MULTISTATUS_CLOSE)
        rest = everyone[SLICE:]
        return Reply(207, headers={"Content-Type": XML_TYPE}, stream=lambda req: _stream(
            req, Slices(req, ctx.server.pools, head, rest, kept, render_members)))

    return ctx.server.pools.reads(listing).addCallback(reply)


def _stream(request, slices):
    return slices.start()


@implementer(IPushProducer)
class Slices:
    """The rest of a multistatus, SLICE members at a time, each rendered
    only when the client has taken the one before: the memory of a listing
    stays one slice, whatever the members times the properties asked. A
    slice whose responses are all kept is joined on the reactor; one to
    render goes to the ``reads`` pool.

    A push producer: it writes while the transport takes more, stops when
    paused, and goes on when a rendered slice comes back or the transport
    asks again. (A pull producer would be driven by twisted.web's
    ``_PullToPush``, which calls it in a loop for up to 10 ms a turn even
    while a slice is still being rendered: a reactor spinning in place,
    and every other request waiting for it.)"""

    def __init__(self, request, pools, head, members, kept, render):
        self.request, self.pools = request, pools
        self.head, self.members = head, members
        self.kept, self.render = kept, render
        self.next = 0
        self.busy = self.paused = self.stopped = False
        self.done = defer.Deferred()

    def start(self):
        self.request.write(self.head)
        self.request.registerProducer(self, True)
        self._produce()
        return self.done

    def _produce(self):
        """Write slices until the transport pauses us, a slice needs
        rendering or the answer is complete."""
        while not (self.busy or self.paused or self.stopped):
            if self.next >= len(self.members):
                self.stopped = True
                self.request.unregisterProducer()
                self.request.write(MULTISTATUS_CLOSE)
                self.request.finish()
                self.done.callback(None)
                return
            part = self.members[self.next:self.next + SLICE]
            self.next += SLICE
            ready = self.kept(part)
            if ready is None:
                self.busy = True
                self.pools.reads(self.render, part).addCallbacks(self.write, self.fail)
                return
            self.request.write(b"".join(ready))

    def write(self, responses):
        self.busy = False
        if self.stopped or state_of(self.request).disconnected:
            return
        self.request.write(b"".join(responses))
        self._produce()

    def fail(self, failure):
        self.busy = False
        self.stopped = True
        self.done.errback(failure)  # too late for an error answer: reply drops the connection

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False
        self._produce()

    def stopProducing(self):
        """The client went away."""
        if not self.stopped:
            self.stopped = True
            self.done.callback(None)


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
