"""The few places where twisted.web offers no public way to do what the
server must, each a small function with a test (tests/test_shims.py) that
fails if Twisted changes underneath. Nothing else in the package touches a
private name of Twisted; ``setup.py`` pins the Twisted versions these were
checked against.
"""


def pending_method(channel):
    """The method of the request whose headers a channel is reading.

    A request learns its method only once its body has arrived
    (``requestReceived``), but the body limit (PUT's or the XML one) and
    the choice of where to stream it must be made when its length is known
    (``gotLength``), before the body: the channel keeps the request line's
    method meanwhile."""
    return getattr(channel, "_command", b"") or b""
