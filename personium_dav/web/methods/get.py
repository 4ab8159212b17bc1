"""GET and HEAD: files with ETag, conditions and one byte range; a small
HTML index for collections."""
import os
import re
from html import escape

from twisted.web.static import NoRangeStaticProducer, SingleRangeStaticProducer

from ...dav.errors import DavError
from ...dav.live import http_date
from ..reply import Reply
from .common import conditions, header, in_thread, matches

SMALL = 64 * 1024  # files up to this size are read whole; larger ones streamed
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _range(value, size):
    """(start, end) inclusive for one satisfiable range, None to send it all,
    or raise 416; several ranges are answered with the whole file."""
    m = _RANGE.match(value.strip().replace(" ", ""))
    if not m or m.group(0) == "bytes=-":
        return None
    first, last = m.groups()
    if first == "":
        length = int(last)
        if length == 0:
            raise _unsatisfiable(size)
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None
    if start >= size:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size):
    return DavError("PR416-DV-0001", headers={"Content-Range": b"bytes */%d" % size})


def render_file(resource, request):
    info = resource.ctx.loc.info
    if_match, if_none_match = conditions(request)
    if if_match is not None and not matches(if_match, info):
        raise DavError("PR412-DV-0001")
    headers = {
        "ETag": info.etag.encode(),
        "Last-Modified": http_date(info.modified).encode(),
        "Accept-Ranges": b"bytes",
    }
    if if_none_match is not None and matches(if_none_match, info):
        return Reply(304, headers=headers)
    headers["Content-Type"] = info.content_type.encode("latin-1", "replace")
    status, start, length = 200, 0, info.size
    ranged = header(request, "range")
    if ranged is not None and info.size > 0:
        span = _range(ranged, info.size)
        if span is not None:
            status, start, length = 206, span[0], span[1] - span[0] + 1
            headers["Content-Range"] = b"bytes %d-%d/%d" % (span[0], span[1], info.size)
    headers["Content-Length"] = b"%d" % length
    if request.method == b"HEAD":
        return Reply(status, headers=headers)
    if length <= SMALL:
        fd = os.open(info.path, os.O_RDONLY | os.O_CLOEXEC)  # no buffer, no seek: 3 syscalls
        try:
            return Reply(status, os.pread(fd, length, start), headers)
        finally:
            os.close(fd)
    return Reply(status, headers=headers, stream=lambda req: _stream(req, info.path, status, start, length))


def _stream(request, path, status, start, length):
    f = open(path, "rb")
    request.notifyFinish().addBoth(lambda _: f.close())
    if status == 206:
        SingleRangeStaticProducer(request, f, start, length).start()
    else:
        NoRangeStaticProducer(request, f).start()


def render_collection(resource, request):
    ctx = resource.ctx

    def page(members):
        rows = "".join(
            '<li><a href="%s">%s</a></li>' % (
                escape(ctx.href(ctx.names + [m.name], m.is_collection)),
                escape(m.name + ("/" if m.is_collection else "")))
            for m in members)
        title = escape(ctx.href(ctx.names, True))
        body = "<!DOCTYPE html><title>%s</title><h1>%s</h1><ul>%s</ul>" % (title, title, rows)
        return Reply(200, body.encode("utf-8"), {"ETag": ctx.loc.info.etag.encode()},
                     b"text/html; charset=utf-8")

    return in_thread(ctx.tree.members, ctx.loc.path).addCallback(page)
