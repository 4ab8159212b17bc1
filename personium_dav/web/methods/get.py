"""GET and HEAD: files with ETag, conditions and one byte range; for
collections, the listing page (web/listing_page.py) when a browser asks for
HTML, else a small HTML index."""
import re
from dataclasses import replace
from html import escape

from twisted.web.static import NoRangeStaticProducer, SingleRangeStaticProducer

from ...dav.conditions import NotModified, weak_match
from ...dav.errors import DavError
from ...dav.live import http_date
from .. import listing_page
from ..reply import Reply
from .common import MAX_NUMBER_DIGITS, header, members, not_found, preconditions

SMALL = 64 * 1024  # files up to this size are read whole; larger ones streamed
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _range(value, size):
    """(start, end) inclusive for one satisfiable range, None to send it all,
    or raise 416; several ranges are answered with the whole file."""
    m = _RANGE.match(value.strip().replace(" ", ""))
    if not m or m.group(0) == "bytes=-":
        return None
    first, last = m.groups()
    if len(first) > MAX_NUMBER_DIGITS or len(last) > MAX_NUMBER_DIGITS:
        raise _unsatisfiable(size)  # past any file's size
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


def _checked(ctx, conds, answer):
    """``answer()`` once the ``If`` header holds (it may read other
    resources and the lock table: a thread), at once without one."""
    if not conds.if_lists:
        return answer()
    return ctx.server.pools.reads(ctx.api.check_if, conds, ctx.loc).addCallback(
        lambda _: answer())


def render_file(resource, request):
    ctx = resource.ctx
    info = ctx.loc.info
    conds = preconditions(request, ctx)
    headers = {
        "ETag": info.etag.encode(),
        "Last-Modified": http_date(info.modified).encode(),
        "Accept-Ranges": b"bytes",
    }
    try:
        conds.check(info, read=True)
    except NotModified:
        return Reply(304, headers=headers)
    if ctx.server.store.shared:  # a read there may block: in a thread
        return _checked(ctx, conds, lambda: ctx.server.pools.reads(
            _file, ctx, request, conds, info, headers, True))
    return _checked(ctx, conds, lambda: _file(ctx, request, conds, info, headers))


def _file(ctx, request, conds, info, headers, threaded=False):
    headers["Content-Type"] = info.content_type.encode("latin-1", "replace")
    status, start, length = 200, 0, info.size
    ranged = header(request, "range")
    if ranged is not None and info.size > 0 and conds.range_applies(info):
        span = _range(ranged, info.size)
        if span is not None:
            status, start, length = 206, span[0], span[1] - span[0] + 1
            headers["Content-Range"] = b"bytes %d-%d/%d" % (span[0], span[1], info.size)
    headers["Content-Length"] = b"%d" % length
    if request.method == b"HEAD":
        return Reply(status, headers=headers)
    try:  # deleted or moved since the URL was resolved: as if it had been before
        if length <= SMALL:
            return Reply(status, ctx.api.content(info, start, length), headers)
        opened = ctx.api.open(info)
    except (FileNotFoundError, NotADirectoryError):
        raise not_found(ctx)
    if threaded:  # opened here, in the thread, and read in threads too
        return Reply(status, headers=headers, stream=lambda req: ThreadedFileProducer(
            req, opened, start, length, ctx.server.pools.reads).start())
    return Reply(status, headers=headers,
                 stream=lambda req: _stream(req, opened, status, start, length))


def _stream(request, f, status, start, length):
    request.notifyFinish().addBoth(lambda _: f.close())
    if status == 206:
        SingleRangeStaticProducer(request, f, start, length).start()
    else:
        NoRangeStaticProducer(request, f).start()


class ThreadedFileProducer:
    """Writes ``length`` bytes of the open file ``f`` from ``start``, each
    chunk read by ``run`` (the ``reads`` pool): on a shared mount a read may
    block, which twisted.web's static producers would do on the reactor
    thread. A push producer: it reads the next chunk once the last one is
    written and the transport is not paused. The file stays open from the
    first chunk to the last, so the answer is one version of the file even
    if another request replaces it meanwhile."""

    CHUNK = 256 * 1024

    def __init__(self, request, f, start, length, run):
        self.request, self.f, self.run = request, f, run
        self.offset, self.remaining = start, length
        self.paused = self.busy = self.done = False

    def start(self):
        self.request.notifyFinish().addBoth(self._close)
        self.request.registerProducer(self, True)
        self._next()

    def _read(self, offset, size):
        self.f.seek(offset)
        return self.f.read(size)

    def _next(self):
        if self.paused or self.busy or self.done:
            return
        if self.remaining <= 0:
            self.done = True
            self.request.unregisterProducer()
            self.request.finish()
            return
        self.busy = True
        d = self.run(self._read, self.offset, min(self.CHUNK, self.remaining))
        d.addCallbacks(self._got, self._failed)

    def _got(self, data):
        self.busy = False
        if self.done:
            return
        if not data:  # the file is shorter than its size said: cut the answer
            return self._failed(None)
        self.offset += len(data)
        self.remaining -= len(data)
        self.request.write(data)
        self._next()

    def _failed(self, failure):
        """Too late for an error answer: the connection is closed."""
        self.busy = False
        if not self.done:
            self.done = True
            self.request.unregisterProducer()
            self.request.loseConnection()

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False
        self._next()

    def stopProducing(self):
        self.done = True

    def _close(self, _):
        self.done = True
        self.f.close()


def render_collection(resource, request):
    ctx = resource.ctx
    info = ctx.loc.info
    conds = preconditions(request, ctx)
    if listing_page.wants_html(header(request, "accept")):
        return _page(ctx, request, info, conds)
    try:
        conds.check(info, read=True)
    except NotModified:
        return Reply(304, headers={"ETag": info.etag.encode(), "Vary": b"Accept"})

    def page(members):
        rows = "".join(
            '<li><a href="%s">%s</a></li>' % (
                escape(ctx.href(ctx.names + [m.name], m.is_collection)),
                escape(m.name + ("/" if m.is_collection else "")))
            for m in members)
        title = escape(ctx.href(ctx.names, True))
        body = "<!DOCTYPE html><title>%s</title><h1>%s</h1><ul>%s</ul>" % (title, title, rows)
        return Reply(200, body.encode("utf-8"), {"ETag": info.etag.encode(), "Vary": b"Accept"},
                     b"text/html; charset=utf-8")

    return _checked(ctx, conds, lambda: ctx.server.pools.reads(
        members, ctx, info).addCallback(page))


def _page(ctx, request, info, conds):
    """The listing page for people. Its ETag is its own (listing_page.etag):
    If-None-Match is compared with it, the other conditions with the
    collection's."""
    wanted = conds.if_none_match
    conds = replace(conds, if_none_match=None, if_modified_since=None)
    conds.check(info, read=True)
    sort, order = listing_page.sort_of(request.args)
    crumbs = [(ctx.cell, None), (ctx.box, ctx.href([], True))]
    crumbs += [(name, ctx.href(ctx.names[:i + 1], True)) for i, name in enumerate(ctx.names)]
    crumbs[-1] = (crumbs[-1][0], None)  # where the reader is: no link
    base = ctx.href(ctx.names, True)

    def build():
        """List and render in the reads pool (a large collection is a large page)."""
        found = members(ctx, info)
        tag = listing_page.etag(info, found, sort, order)
        headers = dict(listing_page.HEADERS, ETag=tag.encode())
        if wanted is not None and weak_match(wanted, tag):
            del headers["Content-Type"]
            return Reply(304, headers=headers)
        return Reply(200, listing_page.render(crumbs, base, found, sort, order), headers)

    return _checked(ctx, conds, lambda: ctx.server.pools.reads(build))
