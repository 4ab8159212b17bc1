"""PUT: the body streams to a temporary file (web/request.py), then the box
API renames it into place under the collection's lock, once it has decided
whether it creates or overwrites and checked what that needs.

``X-OC-Mtime`` (ownCloud's header, which rclone and the ownCloud and
Nextcloud clients send): the file's modification time as whole seconds
since the epoch becomes its ``getlastmodified``, and the answer says
``X-OC-Mtime: accepted``. Anything but 1 to 12 ASCII digits up to the
end of year 9999 is 400 ``PR400-DV-0009``: a client is told, rather than
left with a time it did not ask for.
"""
from ...dav.errors import DavError
from ..request import take_body
from .common import content_length, created, header, preconditions, store

OC_MTIME = "X-OC-Mtime"
LAST_SECOND = 253402300799  # 9999-12-31T23:59:59Z: the last an HTTP date can say


def oc_mtime(request):
    """Milliseconds of a valid ``X-OC-Mtime``, None without one."""
    value = header(request, OC_MTIME.lower())
    if value is None:
        return None
    digits = value.strip()
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 12
            and int(digits) <= LAST_SECOND):
        raise DavError("PR400-DV-0009", OC_MTIME, value[:64])
    return int(digits) * 1000


def render(resource, request):
    ctx = resource.ctx
    content_type = header(request, "content-type")
    if not content_type and ctx.loc.parent_kind == "src":
        raise DavError("PR400-DV-0010", "Content-Type")
    if (content_length(request) or 0) > ctx.server.config.max_file_size:
        raise DavError("PR413-DV-0001")
    modified = oc_mtime(request)
    conds = preconditions(request, ctx)
    body = take_body(request, ctx.server.store) or request.content
    done = store(ctx, ctx.api.put, ctx.caller(), ctx.names, body, content_type or None,
                 conds, modified).addCallback(created)
    if modified is not None:
        done.addCallback(_accepted)
    return done


def _accepted(reply):
    reply.headers[OC_MTIME] = b"accepted"
    return reply
