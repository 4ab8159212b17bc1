"""DELETE: a file, or a collection (whole only when asked, or under rfc4918),
and the locks rooted at it or below it."""
from ...dav.errors import DavError
from ..reply import Reply
from .common import header, preconditions, store

RECURSIVE = "X-Personium-Recursive"


def recursive_flag(request):
    value = header(request, RECURSIVE)
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise DavError("PR400-DV-0009", RECURSIVE, value)


def render(resource, request):
    ctx = resource.ctx
    recursive = recursive_flag(request)
    conds = preconditions(request, ctx)
    return store(ctx, ctx.api.delete, ctx.caller(), ctx.names, recursive,
                 conds).addCallback(lambda done: Reply(204))
