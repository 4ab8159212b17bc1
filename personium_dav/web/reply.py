"""Writing answers: a handler returns a ``Reply`` (or a Deferred of one) or
raises ``DavError``; ``respond`` writes either, and turns any unexpected
failure into a logged 500 without a traceback for the client.
"""
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python import failure
from twisted.web.server import NOT_DONE_YET

from ..dav.errors import DavError
from .pools import as_dav_error
from .envelope import challenged, record
from .state import state_of

log = Logger()

XML_TYPE = b"application/xml; charset=utf-8"


class Reply:
    """Status, headers and a body: bytes, or ``stream(request)`` returning a
    Deferred that fires once it has written everything."""

    def __init__(self, status, body=b"", headers=None, content_type=None, stream=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        if content_type:
            self.headers["Content-Type"] = content_type
        self.stream = stream


class Refusal(Exception):
    """A failure whose answer is not a JSON error (a multistatus, say)."""

    def __init__(self, reply):
        super().__init__(reply.status)
        self.reply = reply


def xml_reply(status, body, headers=None):
    return Reply(status, body, headers, XML_TYPE)


def respond(request, handler):
    """Run ``handler(request)`` and write what it gives; NOT_DONE_YET.

    A handler that answers at once (most reads) is written at once, with no
    Deferred in between; one that returns a Deferred is written when it fires.
    """
    try:
        result = handler(request)
        if isinstance(result, defer.Deferred):
            result.addCallback(_write, request)
            result.addErrback(_fail, request)
            result.addErrback(_unwritten)
            return NOT_DONE_YET
        done = _write(result, request)
    except Exception:
        try:
            done = _fail(failure.Failure(), request)
        except Exception:
            _unwritten(failure.Failure())
            return NOT_DONE_YET
    if isinstance(done, defer.Deferred):  # a streamed body
        done.addErrback(_fail, request)
        done.addErrback(_unwritten)
    return NOT_DONE_YET


def _unwritten(failure):
    log.failure("writing an answer failed", failure)


def _gone(request):
    """The request is answered already, or its client went away."""
    if request.finished:
        return True
    st = state_of(request)
    return st is not None and st.disconnected


def _set_headers(request, headers):
    for name, value in headers.items():
        if isinstance(value, (list, tuple)):
            for v in value:
                request.responseHeaders.addRawHeader(name, v)
        else:
            request.responseHeaders.setRawHeaders(name, [value])


def _write(reply, request):
    request.setResponseCode(reply.status)
    if _gone(request):
        record(request)  # the event log has it, with the status it would have had
        return None
    st = state_of(request)
    if st is not None:  # request key, CORS: on every answer, errors too
        _set_headers(request, st.headers)
    _set_headers(request, reply.headers)
    record(request)
    if reply.stream is not None:
        return reply.stream(request)  # it finishes the request itself
    if reply.status not in (204, 304) and not request.responseHeaders.hasHeader(b"content-length"):
        request.setHeader(b"Content-Length", b"%d" % len(reply.body))
    if reply.body and request.method != b"HEAD":
        request.write(reply.body)
    request.finish()
    return None


def error_reply(error, st=None):
    """The answer to a ``DavError``: a 401 with both challenges, and the
    hrefs of the locks a 423 names, as the request sees them."""
    if st is not None:
        challenged(error, st.cell_url)
    headers = {"Content-Type": error.content_type}
    headers.update(error.headers)
    return Reply(error.status, error.body(st.href if st is not None and st.cell else None),
                 headers)


def _fail(failure, request):
    storage = as_dav_error(failure.value)  # a failing file system: 503, not 500
    if failure.check(Refusal):
        reply = failure.value.reply
    elif failure.check(DavError) or storage is not None:
        reply = error_reply(storage or failure.value, state_of(request))
    else:
        st = state_of(request)
        log.failure("unexpected failure on {method} {path} (request key {key})", failure,
                    method=request.method, path=request.path,
                    key=st.key if st is not None else "-")
        reply = error_reply(DavError("PR500-SV-0000"))
    if request.startedWriting:
        request.loseConnection()  # too late for an error answer
        return None
    if not _gone(request):
        request.responseHeaders = type(request.responseHeaders)()
    return _write(reply, request)
