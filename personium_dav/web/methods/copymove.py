"""COPY and MOVE inside a box: the Destination, Overwrite and Depth headers
read here; the rules of service collections and ``__src``, the privileges
of the effect, the locks and the replacing itself are the box API's."""
from urllib.parse import urlsplit

from ...dav.errors import DavError
from ...dav.names import is_valid_name
from .common import created, header, preconditions, store


def destination(ctx, request):
    """The decoded segments below the box that the Destination names: a URL
    of this server (502 for another one), read as UTF-8 whether its
    non-ASCII characters come raw or percent-encoded (400 when not UTF-8)."""
    raw = request.getHeader(b"destination")
    if not raw:
        raise DavError("PR400-DV-0010", "Destination")
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DavError("PR400-DV-0009", "Destination", raw.decode("latin-1"))
    invalid = DavError("PR400-DV-0009", "Destination", value)
    try:
        parts = urlsplit(value)
    except ValueError:
        raise invalid
    if (parts.scheme or parts.netloc) and not ctx.same_server(parts.scheme, parts.netloc):
        raise DavError("PR502-DV-0001", value)
    names = ctx.segments(parts.path)
    if names is None or names[:2] != [ctx.cell, ctx.box] or len(names) < 3:
        raise invalid
    for name in names[2:]:
        if not is_valid_name(name, ctx.server.config.rfc4918):
            raise DavError("PR403-DV-0004", name)
    dest, own = names[2:], ctx.names
    if dest == own:
        raise DavError("PR403-DV-0005", value)
    if dest[:len(own)] == own or own[:len(dest)] == dest:
        raise invalid  # into itself, or over its own ancestor (the box API refuses it too)
    return dest


def overwrite(request):
    value = header(request, "overwrite")
    if value is None or value.strip().upper() == "T":
        return True
    if value.strip().upper() == "F":
        return False
    raise DavError("PR400-DV-0009", "Overwrite", value)


def depth(request, allowed):
    value = header(request, "depth")
    if value is None:
        return "infinity"
    if value.strip().lower() not in allowed:
        raise DavError("PR400-DV-0009", "Depth", value)
    return value.strip().lower()


def render_move(resource, request):
    ctx = resource.ctx
    dest, replace = destination(ctx, request), overwrite(request)
    depth(request, ("infinity",))
    conds = preconditions(request, ctx)
    return store(ctx, ctx.api.move, ctx.caller(), ctx.names, dest, replace,
                 conds).addCallback(created)


def render_copy(resource, request):
    ctx = resource.ctx
    dest, replace = destination(ctx, request), overwrite(request)
    level = depth(request, ("0", "infinity"))
    conds = preconditions(request, ctx)
    return store(ctx, ctx.api.copy, ctx.caller(), ctx.names, dest, replace, level,
                 conds).addCallback(created)
