"""The request class of a personium-dav Site: request bodies with limits.

twisted.web's ``Request`` buffers a whole body (in memory below 100 kB, in an
anonymous temporary file above) before the resource sees it. ``DavRequest``
changes two things, before any resource runs:

* it counts body bytes as they arrive and, once a body is over the limit of
  its method (``max_file_size`` for PUT, ``max_xml_body`` for every other
  method), stops storing it and answers 413 ``PR413-DV-0001`` at once -- from
  ``Content-Length`` before reading anything, or, for a chunked body, after
  reading at most the limit -- and closes the connection;
* a PUT body is written straight into a temporary file the store gives
  (``Store.open_body``, in the data root's ``:tmp``), which PUT hands to the
  box API (``take_body``), which renames it into place: a 1 GiB upload is never in memory and is not copied a
  second time (on a shared mount, where a file system call may block the
  reactor, the body is kept as twisted.web keeps it and the store copies it
  in). A body that never completes (the client went away) or that no
  PUT handler took is deleted when the request ends.

``makeSite`` uses it. An embedder with its own ``Site`` passes
``requestFactory=requestFactoryFor(resource)`` (``resource`` from
``makeResource``); without it the resource still refuses oversized bodies
from ``Content-Length`` and after the fact (``methods.common.read_body``).
"""
import errno
import os
import time
from io import BytesIO

from twisted.logger import Logger
from twisted.web.http import HTTPChannel
from twisted.web.server import Request

from ..config import Config
from ..dav.errors import DavError
from .shims import pending_method

log = Logger()

_STATUS_TEXT = {413: b"Request Entity Too Large", 503: b"Service Unavailable"}


class DavRequest(Request):
    """A ``twisted.web.server.Request`` enforcing body limits, streaming PUT."""

    davServer = None  # the personium_dav.web.site.Server; see requestFactoryFor

    bodyPath = None  # the :tmp file a PUT body is being written to
    _refused = False
    _received = 0
    _limit = None

    def _method(self):
        method = pending_method(self.channel).upper()
        if method == b"POST":  # the envelope's X-HTTP-Method-Override
            override = self.requestHeaders.getRawHeaders(b"x-http-method-override")
            if override:
                method = override[0].strip().upper()
        return method

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # the whole header block must arrive within the idle timeout: a
        # client trickling one header byte at a time (which resets the idle
        # timer each time) cannot hold a connection for ever. A DavChannel
        # checks the deadline as bytes arrive (no timer per request); any
        # other channel gets a timer.
        self._headerTimer = None
        channel = self.channel
        limit = getattr(channel, "timeOut", None)
        if not limit:
            return
        if isinstance(channel, DavChannel):
            channel.headerDeadline = time.monotonic() + limit
            channel.slowRequest = self
        elif hasattr(channel, "callLater"):
            self._headerTimer = channel.callLater(limit, self._headersTooSlow)

    def _stopHeaderTimer(self):
        channel = self.channel
        if isinstance(channel, DavChannel) and channel.slowRequest is self:
            channel.headerDeadline = channel.slowRequest = None
        timer, self._headerTimer = self._headerTimer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _headersTooSlow(self):
        self._headerTimer = None
        channel = self.channel
        if channel is None or channel.transport is None:
            return
        log.info("headers too slow from {peer}: closing", peer=channel.transport.getPeer())
        channel.transport.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                                b"Content-Length: 0\r\n\r\n")
        _stop_reading(channel)
        channel.transport.loseConnection()

    def connectionLost(self, reason):
        self._stopHeaderTimer()
        super().connectionLost(reason)

    def gotLength(self, length):
        self._stopHeaderTimer()
        server = self.davServer
        config = server.config if server is not None else Config()
        method = self._method()
        self._limit = config.max_file_size if method == b"PUT" else config.max_xml_body
        if length is not None and length > self._limit:
            self.content = BytesIO()
            self._refuse("PR413-DV-0001")
            return
        if (method == b"PUT" and server is not None and length != 0
                and server.store.streams_bodies):
            try:
                self.bodyPath, self.content = server.store.open_body()
            except OSError:
                log.failure("cannot open a body file in the data root")
            else:
                self.notifyFinish().addBoth(self._dropBody)
                return
        super().gotLength(length)

    def handleContentChunk(self, data):
        if self._refused:
            return
        self._received += len(data)
        if self._limit is not None and self._received > self._limit:
            self._dropBody()
            self.content = BytesIO()
            self._refuse("PR413-DV-0001")
            return
        try:
            self.content.write(data)
        except OSError as e:
            self._dropBody()
            self.content = BytesIO()
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                self._refuse("PR503-SV-0005")
            else:
                log.failure("cannot store a request body")
                self._refuse("PR500-SV-0000")

    def requestReceived(self, command, path, version):
        if self._refused:
            return  # answered already; the connection is closing
        super().requestReceived(command, path, version)

    def _refuse(self, code):
        """Answer ``code`` now, before the body is in, and close the connection.

        The answer is written on the transport directly (the request line is
        all twisted.web knows of the request yet); whatever the client still
        sends is read and dropped until it closes or the idle timeout hits,
        so it can read the answer instead of a connection reset."""
        self._refused = True
        channel = self.channel
        # no "100 Continue" after the final answer
        self.requestHeaders.removeHeader(b"expect")
        error = DavError(code)
        body = error.body()
        head = b"HTTP/1.1 %d %s\r\n" % (error.status, _STATUS_TEXT.get(error.status, b"Error"))
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        head += b"Connection: close\r\n\r\n"
        channel.persistent = False
        _stop_reading(channel)
        transport = channel.transport
        transport.write(head + body)
        if hasattr(transport, "loseWriteConnection"):
            transport.loseWriteConnection()
        else:
            transport.loseConnection()
        # a client that never stops sending is cut off after the idle timeout
        if getattr(channel, "timeOut", None):
            channel.setTimeout(min(channel.timeOut, 10))
        else:
            channel.setTimeout(10)

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


def _stop_reading(channel):
    """Read and drop whatever the client still sends (so it can read the
    answer instead of a reset); a channel that is not ours stops reading."""
    if isinstance(channel, DavChannel):
        channel.discarding = True
    else:
        channel.transport.pauseProducing()


class DavChannel(HTTPChannel):
    """The Site's HTTP channel: it checks the header-block deadline of the
    request being read (``DavRequest``) whenever bytes arrive, so a client
    trickling its headers is cut off by its next byte after the deadline
    (and a silent one by the idle timeout) without a timer per request; and
    once an answer has refused a request early, it drops what arrives."""

    headerDeadline = None
    slowRequest = None
    discarding = False

    def dataReceived(self, data):
        if self.discarding:
            return None
        deadline = self.headerDeadline
        if deadline is not None and time.monotonic() > deadline:
            self.headerDeadline, request = None, self.slowRequest
            self.slowRequest = None
            return request._headersTooSlow()
        return HTTPChannel.dataReceived(self, data)


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
    ``makeResource``) anywhere in its tree: body limits and streamed PUT for
    the whole Site."""
    return type("DavRequest", (DavRequest,), {"davServer": resource.server})
