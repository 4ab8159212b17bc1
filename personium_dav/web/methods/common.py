"""What several methods share: headers, bodies, preconditions, and running
a box operation in its pool."""
from ...dav.conditions import NONE, Preconditions
from ...dav.errors import DavError

MAX_NUMBER_DIGITS = 18  # a byte count or offset (an int64 has 19)


def header(request, name):
    value = request.getHeader(name.encode("ascii"))
    return None if value is None else value.decode("latin-1")


def number(value):
    """A non-negative decimal number of a header, or None when it is not one
    (so that no header can make ``int`` parse thousands of digits)."""
    value = value.strip()
    if not value.isascii() or not value.isdigit() or len(value) > MAX_NUMBER_DIGITS:
        return None
    return int(value)


def content_length(request):
    """The Content-Length as it is now (``X-Override`` may have replaced it),
    or None; 400 ``PR400-DV-0009`` when it is not a decimal number."""
    value = header(request, "content-length")
    if value is None:
        return None
    length = number(value)
    if length is None:
        raise DavError("PR400-DV-0009", "Content-Length", value[:64])
    return length


def read_body(request, limit):
    """The request body, refused with 413 past ``limit`` bytes."""
    if (content_length(request) or 0) > limit:
        raise DavError("PR413-DV-0001")
    content = request.content
    content.seek(0)
    body = content.read(limit + 1)
    if len(body) > limit:
        raise DavError("PR413-DV-0001")
    return body


def xml_body(request, config):
    """The request body when it holds anything but white space, else None."""
    body = read_body(request, config.max_xml_body)
    return body if body.strip() else None


CONDITIONAL = frozenset((b"If", b"If-Match", b"If-None-Match", b"If-Modified-Since",
                         b"If-Unmodified-Since", b"If-Range"))


def preconditions(request, ctx):
    """The request's preconditions (If-Match, If-None-Match, the dates,
    If-Range, the ``If`` header), its resource tags read as names in the box."""
    if not any(name in CONDITIONAL for name, _ in request.requestHeaders.getAllRawHeaders()):
        return NONE  # (most requests: one pass over a few headers)
    return Preconditions.from_headers(lambda name: header(request, name), ctx.names_of)


def not_found(ctx):
    return DavError("PR404-DV-0001", ctx.url(ctx.names, False))


def members(ctx, info):
    """A collection's members; 404 if it went away since it was resolved."""
    try:
        return ctx.api.members(info)
    except (FileNotFoundError, NotADirectoryError):
        raise not_found(ctx)


def store(ctx, work, *args):
    """``work(*args)`` (a box operation) in the store's thread pool."""
    return ctx.server.pools.store(work, *args)


def created(done):
    """201 or 204 with the new ETag, for a write that made or replaced a resource."""
    from ..reply import Reply

    headers = {"ETag": done.info.etag.encode()} if done.info is not None else {}
    return Reply(201 if done.created else 204, headers=headers)
