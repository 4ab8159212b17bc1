"""The request envelope of docs/behaviour.md §9: what every request passes through.

In order, before routing:

1. ``X-Personium-RequestKey``: up to 128 of ``A-Z a-z 0-9 - _`` (empty is
   allowed), else 400 PR400-EV-0002; made when absent (4 base64url
   characters, ``_``, a random UUID in 22 base64url characters); returned in
   the response, written in the event log and the access log.
2. ``X-HTTP-Method-Override: M`` on a POST makes the method ``M``.
3. ``X-Override: Name: Value`` (repeatable) replaces that request header, in
   order; a value with nothing before the colon is ignored.
4. ``Origin``: CORS response headers; a preflight (``OPTIONS`` with
   ``Access-Control-Request-Method``) is answered without authentication.

Then, once the URL names a cell, authentication (an ``ITokenChecker``); the
privilege checks are the box API's (an ``IPrivilegePolicy``): 401 for
anonymous callers and bad credentials (every 401 carries both challenges),
403 PR403-AU-0002 for known callers lacking the privilege.
"""
import base64
import os
import re
import time

from twisted.internet import address, defer
from twisted.logger import Logger
from twisted.web.http import _escape

from ..dav.errors import DavError
from ..logs import eventlog
from .state import IRequestState, RequestState, state_of

log = Logger()

REQUEST_KEY = b"X-Personium-RequestKey"
_KEY = re.compile(r"^[A-Za-z0-9_-]{0,128}$")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 method token
ALLOW_HEADERS = (b"Authorization, Content-Type, Depth, Destination, Overwrite, If-Match, "
                 b"If-None-Match, If, Lock-Token, Timeout, Range, X-HTTP-Method-Override, "
                 b"X-Override, X-Personium-RequestKey, X-Personium-Recursive, Accept, Origin")
EXPOSE_HEADERS = (b"ETag, X-Personium-RequestKey, Location, Content-Range, "
                  b"WWW-Authenticate, DAV, Allow, Lock-Token")
ALL_METHODS = (b"OPTIONS, GET, HEAD, POST, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, "
               b"MOVE, COPY, ACL, LOCK, UNLOCK")


def record(request):
    """Write the request's event-log line, once, when its answer is decided
    (the status is set): from ``reply``, for every answer, errors included."""
    st = state_of(request)
    if st is None or st.recorded:
        return
    st.recorded = True
    if st.envelope is not None:
        st.envelope.log_event(request, st)


# -- 1. the request key -----------------------------------------------------------

_random = bytearray()  # random bytes drawn 4 KiB at a time: one getrandom(2) per 215 keys
os.register_at_fork(after_in_child=_random.clear)  # a child never repeats its parent's keys


def new_key():
    """4 base64url characters, ``_``, a random (version 4) UUID as 22
    base64url characters."""
    if len(_random) < 19:
        _random.extend(os.urandom(4085))
    raw = _random[-19:]
    del _random[-19:]
    raw[9] = raw[9] & 0x0F | 0x40  # the UUID's version (byte 6 of its 16)
    raw[11] = raw[11] & 0x3F | 0x80  # and its variant (byte 8)
    return (base64.urlsafe_b64encode(raw[:3]) + b"_"
            + base64.urlsafe_b64encode(raw[3:])[:22]).decode("ascii")


def request_key(request):
    """The request's key (made when absent); 400 PR400-EV-0002 when invalid."""
    values = request.requestHeaders.getRawHeaders(REQUEST_KEY)
    if values is None:
        return new_key()
    if len(values) != 1:
        raise DavError("PR400-EV-0002")
    try:
        value = values[0].decode("ascii")
    except UnicodeDecodeError:
        raise DavError("PR400-EV-0002")
    if not _KEY.match(value) or "\n" in value:
        raise DavError("PR400-EV-0002")
    return value


# -- 2 and 3. overrides -----------------------------------------------------------

def override_method(request):
    if request.method != b"POST":
        return
    value = request.getHeader(b"x-http-method-override")
    if value is None:
        return
    value = value.decode("latin-1").strip().upper()
    if _TOKEN.match(value):
        request.method = value.encode("ascii")


def override_headers(request):
    for raw in request.requestHeaders.getRawHeaders(b"x-override") or ():
        name, colon, value = raw.partition(b":")
        name, value = name.strip(), value.strip()
        if not colon or not name or not _TOKEN.match(name.decode("latin-1")):
            continue
        request.requestHeaders.setRawHeaders(name, [value])


# -- 4. CORS ----------------------------------------------------------------------------

def is_preflight(request):
    return (request.method == b"OPTIONS" and request.getHeader(b"origin") is not None
            and request.getHeader(b"access-control-request-method") is not None)


def cors_headers(request):
    origin = request.getHeader(b"origin")
    if origin is None:
        return {}
    headers = {
        b"Access-Control-Allow-Origin": origin,
        b"Access-Control-Allow-Credentials": b"true",
        b"Access-Control-Expose-Headers": EXPOSE_HEADERS,
        b"Vary": b"Origin",
    }
    asked = request.getHeader(b"access-control-request-headers")
    headers[b"Access-Control-Allow-Headers"] = (
        asked if asked else ALLOW_HEADERS)
    if is_preflight(request):
        headers[b"Access-Control-Allow-Methods"] = ALL_METHODS
        headers[b"Access-Control-Max-Age"] = b"600"
    return headers


# -- authentication and authorization ----------------------------------------------

def challenges(cell_url):
    realm = cell_url.replace("\\", "\\\\").replace('"', '\\"').encode("latin-1", "replace")
    return [b'Bearer realm="' + realm + b'"', b'Basic realm="' + realm + b'"']


def challenged(error, cell_url):
    """Every 401 carries both challenges, whoever raised it."""
    if error.status == 401 and "WWW-Authenticate" not in error.headers and cell_url:
        error.headers = dict(error.headers, **{"WWW-Authenticate": challenges(cell_url)})
    return error


class Envelope:
    """One per server: the checker, the policy and the event log it uses."""

    def __init__(self, checker, policy, events=None):
        self.checker = checker
        self.policy = policy
        self.events = events

    def begin(self, request, server=None, prefix=""):
        """Steps 1-4 on a fresh request; its ``RequestState``. Raises DavError
        (400 PR400-EV-0002) for a bad request key, before anything else."""
        key = request_key(request)
        st = RequestState(key, self, server, request, prefix)
        request.setComponent(IRequestState, st)
        st.headers[REQUEST_KEY] = key.encode("ascii")
        override_method(request)
        override_headers(request)
        if request.getHeader(b"origin") is not None:
            st.headers.update(cors_headers(request))
            st.preflight = is_preflight(request)
        return st

    def authenticate(self, request, st):
        """The caller's Principal on the request's cell, kept in its state --
        or a Deferred of it when the check must wait (a password hash runs in
        a thread)."""
        principal = self.checker.authenticate(request, st.cell)
        if isinstance(principal, defer.Deferred):
            def keep(principal):
                st.principal = principal
                return principal

            return principal.addCallback(keep)
        st.principal = principal
        return principal

    # -- the event log ------------------------------------------------------------

    def log_event(self, request, st):
        if self.events is None or not st.cell:
            return
        try:
            subject = eventlog.subject_of(st.principal, st.cell_url_of)
            method = request.method.decode("latin-1")
            line = eventlog.format_line(
                time.time(), request.code, st.key, subject,
                eventlog.event_type(st.kind, method, request.code),
                eventlog.object_of(st.box, st.names))
            self.events.write(st.cell, line)
        except Exception:
            log.failure("writing the event log failed")


# -- the access log ------------------------------------------------------------------

_SECRET_QUERY = re.compile(rb"((?:^|[?&;])p_cookie_peer=)[^&;#]*", re.I)


_PLAIN = re.compile(rb"[ !#-\[\]-~]*")  # printable ASCII but " and backslash: its own escape


def _field(value):
    """twisted.web's escaping of a log field, skipped for a plain one (the
    usual case: twisted's own goes through ``repr`` for every field)."""
    if isinstance(value, str):
        value = value.encode("ascii")
    if _PLAIN.fullmatch(value):
        return value.decode("ascii")
    return _escape(value)


def access_log_formatter(timestamp, request):
    """twisted.web's combined log line (``combinedLogFormatter``, the same
    text), with ``p_cookie_peer`` masked and the request key appended as a
    last quoted field."""
    client = request.getClientAddress()
    ip = client.host if isinstance(client, (address.IPv4Address, address.IPv6Address)) else "-"
    st = state_of(request)
    return '"%s" - - %s "%s %s %s" %d %s "%s" "%s" "%s"' % (
        _field(ip), timestamp, _field(request.method),
        _field(_SECRET_QUERY.sub(rb"\1***", request.uri)), _field(request.clientproto),
        request.code, request.sentLength or "-",
        _field(request.getHeader(b"referer") or b"-"),
        _field(request.getHeader(b"user-agent") or b"-"),
        st.key if st is not None else "-")  # a request key holds [A-Za-z0-9_-] only
