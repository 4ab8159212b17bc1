"""The request class and channel of a personium-dav Site: nothing is stored
before it is known to be wanted, and no client can hold a connection for
free.

twisted.web's ``Request`` buffers a whole body (in memory below 100 kB, in an
anonymous temporary file above) before any resource sees it, and answers
``Expect: 100-continue`` on its own. ``DavRequest`` decides first, when the
header block is complete (``gotLength``):

* a body over the limit of its method (``--max-file-size`` for PUT,
  ``--max-xml-body`` for the rest) is 413 at once, from ``Content-Length``
  or, chunked, as soon as the count passes the limit;
* the request is routed, authenticated and checked for the privilege its
  method needs (``DavRoot.precheck``: the same checks the method runs,
  less what needs the body) before a byte of the body is stored or
  ``100 Continue`` is sent. A refused request is answered at once (401,
  403, 404, 405, 409...), its body read and dropped up to ``DISCARD`` bytes
  so that a client that sent no ``Expect`` still reads its answer, and the
  connection closed. This is a pre-check: what a write may do is decided
  by the box API under its lock;
* an accepted PUT body is written straight into a temporary file of the
  store (``Store.open_body``), which the box API renames into place: a
  1 GiB upload is never in memory nor copied twice (on a shared mount,
  where a file system call may block the reactor, the body is kept as
  twisted.web keeps it and the store copies it in).

``DavChannel`` keeps the deadlines of slow clients, checked on the bytes as
they arrive (no timer per request): a request's header block must be
complete within ``--header-timeout`` of its first byte (408), and a body must
keep coming at ``--min-body-rate`` bytes a second, after a grace of the
header timeout (408); a connection's idle time is ``--idle-timeout``.
``DavSite`` (web/site.py) caps the connections of one client address.

``makeSite`` uses them. An embedder with its own ``Site`` passes
``requestFactory=requestFactoryFor(resource)`` (``resource`` from
``makeResource``); without it the resource still refuses oversized bodies
from ``Content-Length`` and after the fact (``methods.common.read_body``).
"""
import errno
import os
import time
from io import BytesIO

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.http import HTTPChannel, RESPONSES
from twisted.web.server import Request

from ..config import Config
from ..dav.errors import DavError
from . import shims
from .envelope import challenged
from .state import state_of

log = Logger()

MAX_LENGTH_DIGITS = 18  # a Content-Length longer than this is no body we take
DISCARD = 64 * 1024  # body bytes read and dropped after an early answer, at most
PENDING = 64 * 1024  # body bytes held in memory while the request is being checked


class DavRequest(Request):
    """A ``twisted.web.server.Request`` checked before its body is stored."""

    davServer = None  # the personium_dav.web.site.Server; see requestFactoryFor

    bodyPath = None  # the :tmp file a PUT body is being written to
    _refused = False
    _received = 0
    _limit = None
    _pending = None  # body chunks held while the pre-check runs
    _received_line = None  # the request line, when the body was in before the check

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # a channel that is not a DavChannel gets a timer for the header block
        self._headerTimer = None
        channel = self.channel
        if isinstance(channel, DavChannel):
            channel.headersBegin()
        elif getattr(channel, "timeOut", None) and hasattr(channel, "callLater"):
            self._headerTimer = channel.callLater(channel.timeOut, self._tooSlow)

    @property
    def config(self):
        server = self.davServer
        return server.config if server is not None else Config()

    def _method(self):
        method = shims.pending_method(self.channel).upper()
        if method == b"POST":  # the envelope's X-HTTP-Method-Override
            override = self.requestHeaders.getRawHeaders(b"x-http-method-override")
            if override:
                method = override[0].strip().upper()
        return method

    def _stopHeaderTimer(self):
        timer, self._headerTimer = self._headerTimer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _tooSlow(self):
        """408 and close: the header block, or the body, came too slowly."""
        self._headerTimer = None
        channel = self.channel
        if channel is None or channel.transport is None:
            return
        log.info("request too slow from {peer}: closing", peer=channel.transport.getPeer())
        self._refused = True
        channel.transport.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                                b"Content-Length: 0\r\n\r\n")
        _stop_reading(channel)
        channel.transport.loseConnection()

    def connectionLost(self, reason):
        self._stopHeaderTimer()
        super().connectionLost(reason)

    # -- the header block is complete ------------------------------------------

    def gotLength(self, length):
        self._stopHeaderTimer()
        if self._refused:  # answered while its headers arrived
            self.content = BytesIO()
            return
        method = self._method()
        # PUT and POST (a service call's) may be large: bounded by where they
        # go once routed (_open); other methods' bodies are XML
        self._limit = (self.config.max_file_size if method in (b"PUT", b"POST")
                       else self.config.max_xml_body)
        if length is not None and length > self._limit:
            self.content = BytesIO()
            self._refuse(DavError("PR413-DV-0001"))
            return
        if isinstance(self.channel, DavChannel):
            self.channel.bodyBegins(length)
        if length == 0 or self.davServer is None:
            self._open(method, length)
            return
        self.bodyLength = length  # what the precheck may refuse at once (a quota)
        decision = self._precheck()
        if isinstance(decision, DavError):
            self.content = BytesIO()
            self._refuse(decision)
        elif isinstance(decision, Deferred):  # a password to check, a sidecar to parse
            self.content = BytesIO()
            self._pending = []
            expect = self.requestHeaders.getRawHeaders(b"expect")
            self.requestHeaders.removeHeader(b"expect")  # not before it is decided
            decision.addCallback(self._decided, method, length, expect)
        else:
            self._open(method, length)

    def _precheck(self):
        """None when the request may go on, a DavError to answer, or a
        Deferred of either; also None when the URL is no resource of ours."""
        uri = shims.pending_path(self.channel)
        self.method = shims.pending_method(self.channel)
        self.uri, _, _ = uri.partition(b"#")
        self.path = self.uri.split(b"?", 1)[0]
        self.prepath, self.postpath = shims.split_path(self.path)
        try:
            resource = self.channel.site.getResourceFor(self)
            precheck = getattr(resource, "precheck", None)
            if precheck is None:
                return None
            decision = precheck(self)
        except DavError as error:
            return error
        except Exception:
            log.failure("checking a request before its body failed")
            return None  # the request goes on; its handler answers
        if isinstance(decision, Deferred):
            return decision.addErrback(_as_error)
        return decision

    def _decided(self, decision, method, length, expect):
        held, self._pending = self._pending, None
        if self.channel is None:  # the client went away meanwhile
            return
        if isinstance(decision, DavError):
            self._refuse(decision)
            return
        self._open(method, length)
        if self._refused:  # too large for where it goes
            return
        if expect and expect[0].lower() == b"100-continue":
            shims.send_continue(self.channel)
        for chunk in held:
            self.handleContentChunk(chunk)
        self.channel.transport.resumeProducing()
        line, self._received_line = self._received_line, None
        if line is not None and not self._refused:  # the body was in already
            Request.requestReceived(self, *line)

    def _open(self, method, length):
        """Where the body goes, and how large it may be: a file of the store
        for a PUT or a service call (up to ``max_file_size``), else memory
        (twisted.web's own choice, up to ``max_xml_body``)."""
        server = self.davServer
        st = state_of(self)
        large = method == b"PUT" or getattr(st and st.prechecked, "large_bodies", False)
        self._limit = self.config.max_file_size if large else self.config.max_xml_body
        if length is not None and length > self._limit:
            self.content = BytesIO()
            self._refuse(DavError("PR413-DV-0001"))
            return
        if (large and server is not None and length != 0
                and server.store.streams_bodies):
            try:
                self.bodyPath, self.content = server.store.open_body()
            except OSError:
                log.failure("cannot open a body file in the data root")
            else:
                self.notifyFinish().addBoth(self._dropBody)
                return
        Request.gotLength(self, length)

    # -- the body ---------------------------------------------------------------

    def handleContentChunk(self, data):
        if self._refused:
            return
        if self._pending is not None:  # still being checked: held, a little
            self._pending.append(data)
            if sum(map(len, self._pending)) > PENDING:
                self.channel.transport.pauseProducing()
            return
        self._received += len(data)
        if self._limit is not None and self._received > self._limit:
            self._dropBody()
            self.content = BytesIO()
            self._refuse(DavError("PR413-DV-0001"))
            return
        try:
            self.content.write(data)
        except OSError as e:
            self._dropBody()
            self.content = BytesIO()
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                self._refuse(DavError("PR503-SV-0005"))
            else:
                log.failure("cannot store a request body")
                self._refuse(DavError("PR500-SV-0000"))

    def requestReceived(self, command, path, version):
        if self._refused:
            return  # answered already; the connection is closing
        if self._pending is not None:  # still being checked: processed once accepted
            self._received_line = (command, path, version)
            return
        super().requestReceived(command, path, version)

    def _refuse(self, error):
        """Answer ``error`` now, before the body is in, and close the connection.

        The answer is written on the transport directly (twisted.web has not
        begun the request yet); what the client still sends is read and
        dropped up to ``DISCARD`` bytes, so it can read the answer instead
        of a connection reset."""
        self._refused = True
        channel = self.channel
        self.requestHeaders.removeHeader(b"expect")  # no "100 Continue" after the answer
        st = state_of(self)
        headers = {b"Content-Type": error.content_type, b"Connection": b"close"}
        if st is not None:
            challenged(error, st.cell_url)
            headers.update(st.headers)
        for name, value in error.headers.items():  # str or bytes, as the error has them
            headers[_bytes(name)] = _bytes(value)
        body = error.body(st.href if st is not None and st.cell else None)
        headers[b"Content-Length"] = b"%d" % len(body)
        channel.transport.write(shims.response_head(error.status, RESPONSES.get(
            error.status, b"Error"), headers) + body)
        channel.persistent = False
        _stop_reading(channel)
        transport = channel.transport
        if hasattr(transport, "loseWriteConnection"):
            transport.loseWriteConnection()
        else:
            transport.loseConnection()
        # a client that never stops sending is cut off: DISCARD, or 10 s
        channel.setTimeout(min(getattr(channel, "timeOut", None) or 10, 10))

    def _dropBody(self, _=None):
        """Delete the PUT body file unless a handler took it over."""
        path, self.bodyPath = self.bodyPath, None
        if path is None:
            return None
        try:
            self.content.close()
        except Exception:
            pass
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError:
            log.failure("cannot remove {path}", path=path)
        return None


def _bytes(text):
    return text.encode("latin-1") if isinstance(text, str) else text


def _as_error(failure):
    if failure.check(DavError):
        return failure.value
    log.failure("checking a request before its body failed", failure)
    return None  # the request goes on; its handler answers


def _stop_reading(channel):
    """Read and drop what the client still sends (so it can read the answer
    instead of a reset); a channel that is not ours stops reading."""
    if isinstance(channel, DavChannel):
        channel.discarding = 0
    else:
        channel.transport.pauseProducing()


class DavChannel(HTTPChannel):
    """The Site's HTTP channel: the deadlines of each request's header block
    and body, checked on the bytes as they arrive; after an early answer,
    what arrives is dropped (and the connection closed past ``DISCARD``)."""

    discarding = None  # bytes dropped since an early answer; None while reading
    admitted = False
    headerDeadline = None
    bodyStart = bodyRate = bodyGrace = None
    bodyReceived = 0

    def _limits(self):
        return getattr(getattr(self, "site", None), "config", None) or Config()

    _local = None  # the connection's own address

    def getHost(self):
        """Asked of the socket once per connection: twisted.web asks for
        every request (a ``getsockname`` each), and it never changes."""
        if self._local is None:
            self._local = HTTPChannel.getHost(self)
        return self._local

    def connectionMade(self):
        HTTPChannel.connectionMade(self)
        site = getattr(self, "site", None)
        if site is None or not hasattr(site, "admit"):
            return
        self.admitted = site.admit(self.transport.getPeer())
        if not self.admitted:  # too many from this address: 503, closed
            body = DavError("PR503-SV-0008").body()
            self.transport.write(shims.response_head(503, b"Service Unavailable", {
                b"Content-Type": b"application/json", b"Connection": b"close",
                b"Content-Length": b"%d" % len(body)}) + body)
            self.discarding = 0
            self.transport.loseConnection()

    def connectionLost(self, reason):
        if self.admitted:
            self.admitted = False
            self.site.release(self.transport.getPeer())
        return HTTPChannel.connectionLost(self, reason)

    def headersBegin(self):
        """A request line has arrived (its first byte began the deadline)."""
        if self.headerDeadline is None:
            self.headerDeadline = time.monotonic() + self._limits().header_timeout

    def bodyBegins(self, length):
        self.headerDeadline = None
        if length != 0:
            config = self._limits()
            self.bodyStart = time.monotonic()
            self.bodyRate, self.bodyGrace = config.min_body_rate, config.header_timeout
            self.bodyReceived = 0

    def allContentReceived(self):
        self.bodyStart = None
        return HTTPChannel.allContentReceived(self)

    def headerReceived(self, line):
        """A Content-Length of thousands of digits would make twisted.web's
        own parser raise (Python refuses ``int`` of over 4,300 digits) and
        drop the connection unanswered: answer it 400 first."""
        name, colon, value = line.partition(b":")
        if colon and name.strip().lower() == b"content-length":
            value = value.strip(b" \t")
            if len(value) > MAX_LENGTH_DIGITS and self.requests:
                self.requests[-1]._refuse(DavError(
                    "PR400-DV-0009", "Content-Length", value[:32].decode("latin-1") + "..."))
                return False
        return HTTPChannel.headerReceived(self, line)

    def dataReceived(self, data):
        if self.discarding is not None:
            self.discarding += len(data)
            if self.discarding > DISCARD:
                self.transport.loseConnection()
            return None
        now = time.monotonic()
        if self.headerDeadline is None and self.bodyStart is None and not self.requests:
            # the first byte of a request: its header block has till then
            self.headerDeadline = now + self._limits().header_timeout
        elif self.headerDeadline is not None and now > self.headerDeadline:
            return self._slow()
        elif self.bodyStart is not None:
            self.bodyReceived += len(data)
            late = now - self.bodyStart - self.bodyGrace
            if late > 0 and self.bodyReceived < late * self.bodyRate:
                return self._slow()
        return HTTPChannel.dataReceived(self, data)

    def _slow(self):
        self.headerDeadline = self.bodyStart = None
        if self.requests:
            return self.requests[-1]._tooSlow()
        self.transport.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                             b"Content-Length: 0\r\n\r\n")
        self.discarding = 0
        self.transport.loseConnection()

    def requestDone(self, request):
        self.headerDeadline = self.bodyStart = None
        return HTTPChannel.requestDone(self, request)


def take_body(request, store):
    """The (path, file) of a PUT body that ``DavRequest`` streamed into a
    file of ``store``, now owned by the caller; None otherwise (then the
    body is in ``request.content``)."""
    path = getattr(request, "bodyPath", None)
    if path is None or not store.is_body(path):
        return None
    request.bodyPath = None
    return path, request.content


def requestFactoryFor(resource):
    """A ``requestFactory`` for a Site embedding ``resource`` (from
    ``makeResource``) anywhere in its tree: body limits, the check before
    the body, streamed PUT, for the whole Site."""
    return type("DavRequest", (DavRequest,), {"davServer": resource.server})
