"""PUT: the body streams to a temporary file (web/request.py), then the box
API renames it into place under the collection's lock, once it has decided
whether it creates or overwrites and checked what that needs."""
from ...dav.errors import DavError
from ..request import take_body
from .common import content_length, created, header, preconditions, store


def render(resource, request):
    ctx = resource.ctx
    content_type = header(request, "content-type")
    if not content_type and ctx.loc.parent_kind == "src":
        raise DavError("PR400-DV-0010", "Content-Type")
    if (content_length(request) or 0) > ctx.server.config.max_file_size:
        raise DavError("PR413-DV-0001")
    conds = preconditions(request, ctx)
    body = take_body(request, ctx.server.store) or request.content
    return store(ctx, ctx.api.put, ctx.caller(), ctx.names, body, content_type or None,
                 conds).addCallback(created)
