"""PROPPATCH: every instruction checked before any is applied, then all of
them committed at once by the box API (docs/behaviour.md §6)."""
from ...dav.errors import DavError
from ...dav.properties import check_limits, instructions, refusal
from ...dav.xmlutil import (MULTISTATUS_CLOSE, MULTISTATUS_OPEN, empty_element, escape,
                            freeze, parse, split)
from ..reply import Refusal, xml_reply
from .common import preconditions, store, xml_body

STATUS = {200: "HTTP/1.1 200 OK", 403: "HTTP/1.1 403 Forbidden",
          424: "HTTP/1.1 424 Failed Dependency"}


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
    config = ctx.server.config
    info = ctx.loc.info
    body = xml_body(request, config)
    if body is None:
        raise DavError("PR400-DV-0001")
    ops = instructions(parse(body))
    if len(ops) > config.max_props_per_request:
        check_limits(len(ops), (), config)
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
    check_limits(len(staged), ((key, value) for _, key, value in staged), config)
    conds = preconditions(request, ctx)

    def answer(done):
        echoed = [value.decode("utf-8") if op == "set" else empty_element(*key)
                  for op, key, value in staged]
        return xml_reply(207, _multistatus(href, [_propstat(echoed, 200)]),
                         {"ETag": done.info.etag.encode()})

    return store(ctx, ctx.api.proppatch, ctx.caller(), ctx.names, staged,
                 conds).addCallback(answer)
