"""PROPPATCH: every instruction checked before any is applied, then all of
them committed at once under the collection's lock (SPEC §6)."""
from ...dav import service
from ...dav.errors import DavError
from ...dav.live import PROTECTED
from ..reply import Refusal, xml_reply
from ...store import group
from ...store.tree import now_ms
from ...dav.xmlutil import (MULTISTATUS_CLOSE, MULTISTATUS_OPEN, PNS, children, empty_element,
                       escape, freeze, parse, split)
from .common import check_conditions, conditions, in_thread, xml_body
from .locking import Guard

SERVICE = (PNS, "service")
STATUS = {200: "HTTP/1.1 200 OK", 403: "HTTP/1.1 403 Forbidden",
          424: "HTTP/1.1 424 Failed Dependency"}


def instructions(root):
    """[(op, element)] in document order from a D:propertyupdate."""
    if root.tag != "{DAV:}propertyupdate":
        raise DavError("PR400-DV-0001")
    ops = []
    for op in children(root):
        if op.tag not in ("{DAV:}set", "{DAV:}remove"):
            raise DavError("PR400-DV-0002")
        props = children(op)
        if not props or any(p.tag != "{DAV:}prop" for p in props):
            raise DavError("PR400-DV-0002")
        kind = "set" if op.tag == "{DAV:}set" else "remove"
        ops.extend((kind, el) for p in props for el in children(p))
    if not ops:
        raise DavError("PR400-DV-0001")
    return ops


def refusal(op, el):
    """The precondition a property instruction fails, or None.

    A bad ``p:service`` refuses the whole request (400) instead."""
    key = split(el.tag)
    if key in PROTECTED:
        return "cannot-modify-protected-property"
    if key == SERVICE and op == "set":
        service.validate(el)
    return None


def frozen(elements, config=None):
    values = {split(el.tag): freeze(el) for el in elements}
    if config is not None:
        check_limits(len(elements), values.items(), config)
    return values


def check_limits(count, values, config):
    """400 PR400-DV-0006 for too many properties in one request, or for a
    property value (serialised) over ``max_prop_value`` bytes."""
    if count > config.max_props_per_request:
        raise DavError("PR400-DV-0006", "more than %d properties in one request"
                       % config.max_props_per_request)
    for (ns, local), value in values:
        if value is not None and len(value) > config.max_prop_value:
            raise DavError("PR400-DV-0006", "value of {%s}%s is larger than %d bytes"
                           % (ns, local, config.max_prop_value))


def _propstat(names, status, error=None):
    out = "<D:propstat><D:prop>%s</D:prop><D:status>%s</D:status>" % ("".join(names), STATUS[status])
    if error:  # RFC 4918 §14.22: the precondition as D:error, then a description
        out += "<D:error><D:%s/></D:error>" % error
        out += "<D:responsedescription>%s</D:responsedescription>" % escape(error)
    return out + "</D:propstat>"


def _multistatus(href, propstats):
    inner = "<D:response><D:href>%s</D:href>%s</D:response>" % (escape(href), "".join(propstats))
    return MULTISTATUS_OPEN + inner.encode("utf-8") + MULTISTATUS_CLOSE


def render(resource, request):
    ctx = resource.ctx
    loc, tree = ctx.loc, ctx.tree
    info = loc.info
    body = xml_body(request, ctx.config)
    if body is None:
        raise DavError("PR400-DV-0001")
    ops = instructions(parse(body))
    if len(ops) > ctx.config.max_props_per_request:
        check_limits(len(ops), (), ctx.config)
    href = ctx.href(ctx.names, info.is_collection)
    refused = [(el, refusal(op, el)) for op, el in ops]
    if any(reason for _, reason in refused):
        failed = [empty_element(*split(el.tag)) for el, reason in refused if reason]
        others = [empty_element(*split(el.tag)) for el, reason in refused if not reason]
        stats = [_propstat(failed, 403, "cannot-modify-protected-property")]
        if others:
            stats.append(_propstat(others, 424))
        raise Refusal(xml_reply(207, _multistatus(href, stats)))
    staged = [(op, split(el.tag), freeze(el) if op == "set" else None) for op, el in ops]
    check_limits(len(staged), ((key, value) for _, key, value in staged), ctx.config)
    if info.is_collection:
        directory, member = loc.path, ""
    else:
        directory, member = loc.parent_dir, loc.name
    if_match, if_none_match = conditions(request)
    guard = Guard(ctx, request)

    def change(txn):
        current = tree.info(loc.path, loc.name)
        if current is None:
            raise DavError("PR404-DV-0001", ctx.url(ctx.names, False))
        check_conditions(if_match, if_none_match, current)
        guard.check(current, [(ctx.names, False)])
        for op, key, value in staged:
            if op == "set":
                txn.set(member, key, value)
            else:
                txn.remove(member, key)
        txn.touch(member, now_ms())

    def work():
        with guard.hold():  # the box's locks cannot change until the commit
            if if_match is None and if_none_match is None:
                # concurrent PROPPATCHes of one collection share one commit
                group.commit(tree, directory, member, change)
            else:  # conditions are checked against the disk: a commit of its own
                with tree.locked(directory):
                    txn = tree.props(directory).begin()
                    change(txn)
                    txn.commit()
        return tree.info(loc.path, loc.name)

    def answer(new):
        echoed = [value.decode("utf-8") if op == "set" else empty_element(*key)
                  for op, key, value in staged]
        return xml_reply(207, _multistatus(href, [_propstat(echoed, 200)]),
                         {"ETag": new.etag.encode()})

    return in_thread(work).addCallback(answer)
