"""The few places where twisted.web offers no public way to do what the
server must, each a small function with a test (tests/test_shims.py) that
fails if Twisted changes underneath. Nothing else in the package touches a
private name of Twisted; ``setup.py`` pins the Twisted versions these were
checked against.
"""
from urllib.parse import unquote_to_bytes


def pending_method(channel):
    """The method of the request whose headers a channel is reading.

    A request learns its method only once its body has arrived
    (``requestReceived``), but the body limit (PUT's or the XML one) and
    the choice of where to stream it must be made when its length is known
    (``gotLength``), before the body: the channel keeps the request line's
    method meanwhile."""
    return getattr(channel, "_command", b"") or b""


def pending_path(channel):
    """The request-target of the request whose headers a channel is reading
    (kept by the channel until the body is in, as the method is)."""
    return getattr(channel, "_path", b"") or b"/"


def pending_version(channel):
    return getattr(channel, "_version", b"") or b""


def split_path(path):
    """(prepath, postpath) of a request path, as twisted.web's
    ``Request.requestReceived`` makes them."""
    return [], [unquote_to_bytes(segment) for segment in path[1:].split(b"/")]


def send_continue(channel):
    """``100 Continue``, which twisted.web would have sent as soon as the
    headers were in (``HTTPChannel.allHeadersReceived``) had the request not
    still been checked: it removes ``Expect`` before that, and sends this
    once the request is accepted. Only to HTTP/1.1 clients, as twisted.web."""
    if pending_version(channel) == b"HTTP/1.1":
        channel.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")


def response_head(status, message, headers):
    """The status line and header block of an answer written before
    twisted.web has begun the request (an early refusal)."""
    lines = [b"HTTP/1.1 %d %s" % (status, message)]
    for name, value in headers.items():
        for v in (value if isinstance(value, (list, tuple)) else [value]):
            lines.append(name + b": " + v)
    return b"\r\n".join(lines) + b"\r\n\r\n"
