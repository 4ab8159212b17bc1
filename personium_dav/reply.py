"""Writing answers: a handler returns a ``Reply`` (or a Deferred of one) or
raises ``DavError``; ``respond`` writes either, and turns any unexpected
failure into a logged 500 without a traceback for the client.
"""
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web.server import NOT_DONE_YET

from .errors import DavError

log = Logger()

ENVELOPE = "personium_envelope"  # the request attribute holding envelope.State

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
    """Run ``handler(request)`` and write what it gives; NOT_DONE_YET."""
    finished = []
    request.notifyFinish().addBoth(finished.append)
    d = defer.maybeDeferred(handler, request)
    d.addCallback(_write, request, finished)
    d.addErrback(_fail, request, finished)
    d.addErrback(lambda f: log.failure("writing an answer failed", f))
    return NOT_DONE_YET


def _set_headers(request, headers):
    for name, value in headers.items():
        if isinstance(value, (list, tuple)):
            for v in value:
                request.responseHeaders.addRawHeader(name, v)
        else:
            request.responseHeaders.setRawHeaders(name, [value])


def _write(reply, request, finished):
    if finished:
        return None
    request.setResponseCode(reply.status)
    envelope = getattr(request, ENVELOPE, None)
    if envelope is not None:  # request key, CORS: on every answer, errors too
        _set_headers(request, envelope.headers)
    _set_headers(request, reply.headers)
    if reply.stream is not None:
        return reply.stream(request)  # it finishes the request itself
    if reply.status not in (204, 304) and not request.responseHeaders.hasHeader(b"content-length"):
        request.setHeader(b"Content-Length", b"%d" % len(reply.body))
    if reply.body and request.method != b"HEAD":
        request.write(reply.body)
    request.finish()
    return None


def error_reply(error):
    headers = {"Content-Type": error.content_type}
    headers.update(error.headers)
    return Reply(error.status, error.body(), headers)


def _fail(failure, request, finished):
    if finished:
        return None
    if failure.check(Refusal):
        reply = failure.value.reply
    elif failure.check(DavError):
        reply = error_reply(failure.value)
    else:
        log.failure("unexpected failure on {method} {path} (request key {key})", failure,
                    method=request.method, path=request.path,
                    key=getattr(getattr(request, ENVELOPE, None), "key", "-"))
        reply = error_reply(DavError("PR500-SV-0000"))
    if request.startedWriting:
        request.loseConnection()  # too late for an error answer
        return None
    request.responseHeaders = type(request.responseHeaders)()
    return _write(reply, request, finished)
