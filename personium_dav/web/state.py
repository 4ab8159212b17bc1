"""What the server knows of one request, reached through one adapter.

``RequestState`` is made by the envelope when a request begins (its key, the
headers every answer carries), filled in by the resolution (cell, box, the
names below it, where they point) and by authentication (the principal),
and read by the methods, the answer writer and the logs. It is the
request's component for ``IRequestState`` (twisted.web's requests are
``Componentized``): ``state_of(request)``.
"""
from urllib.parse import quote, unquote_to_bytes, urlsplit

from zope.interface import Interface

from ..dav.conditions import OUTSIDE
from ..dav.names import is_valid_name
from ..store.box import Caller


_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _origin(scheme, netloc):
    """(scheme, host, port) compared without case and with default ports."""
    scheme = scheme.lower()
    host, colon, port = netloc.lower().rpartition(":")
    if not colon or "]" in port:  # no port (an IPv6 literal's colons are inside [])
        host, port = netloc.lower(), ""
    return scheme, host, port or _DEFAULT_PORTS.get(scheme, "")


class IRequestState(Interface):
    """The personium-dav state of a twisted.web request."""


def state_of(request):
    """The request's state; None for a request that is not a twisted.web
    ``Request`` (a test's stand-in) or that the envelope never began."""
    get = getattr(request, "getComponent", None)
    return get(IRequestState) if get is not None else None


_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.~!$&'()+,;=@-")


def quote_segment(name):
    """A name as one href segment, percent-encoded where it must be."""
    if _PLAIN.issuperset(name):
        return name  # nothing to quote (the common case, and a fast one)
    return quote(name, safe="!$&'()+,;=@~")


class RequestState:
    __slots__ = ("key", "headers", "preflight", "principal", "cell", "box", "names", "kind",
                 "envelope", "recorded", "server", "request", "prefix", "loc", "_cell_url", "_origin",
                 "disconnected", "prechecked")

    def __init__(self, key, envelope=None, server=None, request=None, prefix=""):
        self.key = key
        self.headers = {}  # name -> value(s): set on every answer, errors included
        self.preflight = False
        self.principal = None
        self.cell = None
        self.box = None  # the box's name
        self.names = []  # the decoded segments below the box
        self.kind = None  # the resource kind, for the event type
        self.envelope = envelope  # writes the event-log line
        self.recorded = False
        self.server = server
        self.request = request
        self.prefix = prefix  # the href of where the resource is mounted
        self.loc = None  # where the names point (store.tree.Location)
        self._cell_url = None
        self._origin = None
        self.disconnected = False  # the client went away (web/reply.py)
        self.prechecked = None  # accepted before its body: the resource it was routed to

    # -- the box API ----------------------------------------------------------

    @property
    def api(self):
        """The box API of the request's box."""
        return self.server.store.box(self.cell, self.box)

    def caller(self):
        return Caller(self.principal, self.url)

    # -- URLs -----------------------------------------------------------------

    def href(self, names, collection):
        path = "".join("/" + quote_segment(n) for n in [self.cell, self.box, *names])
        return self.prefix + path + ("/" if collection else "")

    def origin(self):
        """``{scheme}://{host}`` of the request (asked once: after the
        envelope's overrides, which come first, it does not change)."""
        if self._origin is None:
            request = self.request
            scheme = "https" if request.isSecure() else "http"
            host = (request.getHeader(b"host") or b"localhost").decode("latin-1")
            self._origin = "%s://%s" % (scheme, host)
        return self._origin

    def same_server(self, scheme, netloc):
        """Is ``scheme://netloc`` this server, as the request reached it (its
        ``Host``) or as its public URL (``--public-url``) names it?"""
        own = [self.origin()]
        if self.server.config.public_url:
            parts = urlsplit(self.server.config.public_url)
            own.append("%s://%s" % (parts.scheme, parts.netloc))
        return _origin(scheme, netloc) in {_origin(*o.split("://", 1)) for o in own}

    def url(self, names, collection=True):
        return self.origin() + self.href(list(names), collection)

    def parent_url(self):
        return self.url(self.names[:-1])

    @property
    def cell_url(self):
        """``{scheme}://{host}{prefix}/{cell}/``: the realm of the challenges."""
        if self._cell_url is None and self.cell is not None:
            self._cell_url = "%s%s/%s/" % (self.origin(), self.prefix, self.cell)
        return self._cell_url

    def cell_url_of(self, cell):
        """The URL of a cell of this server, as this request names them."""
        if cell == self.cell and self.cell_url:
            return self.cell_url
        return "%s%s/%s/" % (self.origin(), self.prefix, cell)

    def cell_path(self):
        """The decoded path of the cell: ``{mount prefix}/{cell}/``."""
        return unquote_to_bytes(self.prefix).decode("utf-8", "replace") + "/" + self.cell + "/"

    def segments(self, path):
        """The decoded segments of an absolute path below where the server is
        mounted (cell, box, names...), or None when it is not below it or not
        UTF-8."""
        if not path.startswith(self.prefix + "/"):
            return None
        raw = path[len(self.prefix) + 1:].split("/")
        if raw and raw[-1] == "":
            raw.pop()
        try:
            return [unquote_to_bytes(s).decode("utf-8") for s in raw]
        except UnicodeDecodeError:
            return None

    def names_of(self, url):
        """The names below this box of a URL or absolute path (host and
        scheme are not compared), or ``OUTSIDE``: how an ``If`` header's
        resource tag is read."""
        names = self.segments(urlsplit(url).path)
        spaces = self.server.config.rfc4918
        if (names is None or names[:2] != [self.cell, self.box]
                or not all(is_valid_name(n, spaces) for n in names[2:])):
            return OUTSIDE
        return tuple(names[2:])
