"""MKCOL: plain, or extended (RFC 5689) for a service collection with __src."""
from ...dav.errors import DavError
from ...dav.properties import frozen, refusal
from ...dav.xmlutil import DAV, PNS, XML_HEAD, children, empty_element, parse, split
from ..reply import Refusal, xml_reply
from .common import created, header, preconditions, store, xml_body

PLAIN = {(DAV, "collection")}
SERVICE = {(DAV, "collection"), (PNS, "service")}
RESOURCETYPE = (DAV, "resourcetype")


def render_existing(resource, request):
    raise DavError("PR405-DV-0001", headers={"Allow": resource.allow()})


def _is_xml_type(value):
    media = value.split(";")[0].strip().lower()
    return media in ("application/xml", "text/xml") or media.endswith("+xml")


def _requested(request, config):
    """(kind, dead properties) that the body asks for; raises for bad bodies."""
    body = xml_body(request, config)
    if body is None:
        return "collection", []
    content_type = header(request, "content-type")
    if content_type is not None and not _is_xml_type(content_type):
        raise DavError("PR415-MC-0001")
    root = parse(body)
    if root.tag != "{DAV:}mkcol":
        raise DavError("PR415-MC-0001")
    kind, props, failed = "collection", [], []
    for op in children(root):
        if op.tag != "{DAV:}set":
            raise DavError("PR400-DV-0002")
        for prop in children(op):
            if prop.tag != "{DAV:}prop":
                raise DavError("PR400-DV-0002")
            for el in children(prop):
                key = split(el.tag)
                if key == RESOURCETYPE:
                    types = {split(c.tag) for c in children(el)}
                    if types == SERVICE:
                        kind = "service"
                    elif types != PLAIN:
                        failed.append(key)
                elif refusal("set", el) is not None:
                    failed.append(key)
                else:
                    props.append(el)
    if failed:
        raise _mkcol_failure(failed)
    return kind, props


def _mkcol_failure(failed):
    names = "".join(empty_element(*key) for key in failed)
    body = (XML_HEAD.decode() + '<D:mkcol-response xmlns:D="DAV:"><D:propstat><D:prop>%s</D:prop>'
            "<D:status>HTTP/1.1 403 Forbidden</D:status></D:propstat></D:mkcol-response>" % names)
    return Refusal(xml_reply(403, body.encode("utf-8")))


def render(resource, request):
    ctx = resource.ctx
    config = ctx.server.config
    if ctx.loc.parent_kind == "src":
        raise DavError("PR405-DV-0001", headers={"Allow": resource.allow()})
    if len(ctx.names) > config.max_depth:
        raise DavError("PR400-DV-0008")
    kind, elements = _requested(request, config)
    ctx.kind = kind  # the event log's type: servicecol.create for a service collection
    props = frozen(elements, config)
    conds = preconditions(request, ctx)
    return store(ctx, ctx.api.mkcol, ctx.caller(), ctx.names, kind, props,
                 conds).addCallback(created)
