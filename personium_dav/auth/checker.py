"""The default ``ITokenChecker``: Bearer tokens, Basic passwords, the cookie.

Order (SPEC §9): an ``Authorization`` header wins; without one, the
``p_cookie`` cookie together with the ``p_cookie_peer`` query parameter;
without any, the request is anonymous. Every failure is a 401 carrying
both challenges (added by the envelope).
"""
import base64
import binascii
import time

from twisted.internet import defer, threads
from zope.interface import implementer

from ..dav.errors import DavError
from ..interfaces import ITokenChecker
from .accounts import AuthFailure
from .privileges import ANONYMOUS, Principal
from .tokens import TokenExpired, TokenInvalid

COOKIE = b"p_cookie"
PEER = b"p_cookie_peer"


def credentials(request):
    """What the request presents: ("bearer", token), ("basic", user,
    password), ("cookie", value, peer), or None; 401 PR401-AU-0003 for an
    unknown or malformed scheme."""
    value = request.getHeader(b"authorization")
    if value is not None:
        value = value.decode("latin-1")
        scheme, _, rest = value.strip().partition(" ")
        scheme, rest = scheme.lower(), rest.strip()
        if scheme == "bearer" and rest:
            return ("bearer", rest)
        if scheme == "basic" and rest:
            try:
                raw = base64.b64decode(rest.encode("ascii"), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeError, ValueError):
                raise DavError("PR401-AU-0003")
            user, colon, password = raw.partition(":")
            if not colon:
                raise DavError("PR401-AU-0003")
            return ("basic", user, password)
        raise DavError("PR401-AU-0003")
    cookie = _cookie(request, COOKIE)
    if cookie is not None:
        peer = (request.args.get(PEER) or [b""])[0]
        return ("cookie", cookie.decode("latin-1"), peer.decode("latin-1"))
    return None


def _cookie(request, name):
    """The value of a cookie from the Cookie header(s) as they are now
    (after X-Override), or None."""
    for header in request.requestHeaders.getRawHeaders(b"cookie") or ():
        for part in header.split(b";"):
            key, eq, value = part.strip().partition(b"=")
            if eq and key == name:
                return value.strip().strip(b'"')
    return None


@implementer(ITokenChecker)
class CredentialChecker:
    """Checks tokens with a ``TokenService`` and passwords with an ``AccountStore``."""

    KNOWN = 1024  # bearer tokens whose Principal is remembered (cleared when full)

    def __init__(self, tokens, accounts):
        self.tokens = tokens
        self.accounts = accounts
        self._known = {}  # bearer token -> (exp, Principal)

    def _bearer(self, token):
        """The Principal of a bearer token. A token seen before is not decoded
        again: its Principal is remembered with its ``exp``, and only the
        expiry and (for an account) the account's existence are re-checked;
        anything else takes the full path, which raises the right error."""
        hit = self._known.get(token)
        if hit is not None and hit[0] > time.time() and (
                hit[1].owner or self.accounts.get(hit[1].cell, hit[1].subject) is not None):
            return hit[1]
        claims = self.tokens.verify(token)
        principal = self._principal(claims, "bearer")
        if len(self._known) >= self.KNOWN:
            self._known.clear()
        self._known[token] = (int(claims["exp"]), principal)
        return principal

    def _principal(self, claims, via):
        if claims.get("owner"):
            return Principal(subject=claims.get("sub") or "owner", owner=True, via=via)
        cell, subject = claims.get("cell"), claims.get("sub")
        if not cell or not subject or self.accounts.get(cell, subject) is None:
            raise TokenInvalid()  # the account is gone
        return Principal(cell, subject, frozenset(claims.get("roles") or ()), via=via)

    def authenticate(self, request, cell):
        found = credentials(request)
        if found is None:
            return ANONYMOUS
        kind = found[0]
        if kind == "basic":
            return self._basic(cell, found[1], found[2])
        try:
            if kind == "bearer":
                return self._bearer(found[1])
            return self._principal(self.tokens.verify_cookie(found[1], found[2]), "cookie")
        except TokenExpired:
            raise DavError("PR401-AU-0009" if kind == "cookie" else "PR401-AU-0002")
        except TokenInvalid:
            raise DavError("PR401-AU-0009" if kind == "cookie" else "PR401-AU-0006")

    def _basic(self, cell, user, password):
        if cell is None:
            return defer.fail(DavError("PR401-AU-0001"))

        def check():
            try:
                roles = self.accounts.check_password(cell, user, password)
            except AuthFailure:
                raise DavError("PR401-AU-0001")
            return Principal(cell, user, frozenset(roles), via="basic")

        return threads.deferToThread(check)
