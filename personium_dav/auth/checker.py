"""The default ``ITokenChecker``: Bearer tokens, Basic passwords, the cookie.

Order (docs/behaviour.md §9): an ``Authorization`` header wins; without one, the
``p_cookie`` cookie together with the ``p_cookie_peer`` query parameter;
without any, the request is anonymous. Every failure is a 401 carrying
both challenges (added by the envelope).
"""
import base64
import binascii
import time
from urllib.parse import parse_qs

from twisted.internet import defer
from zope.interface import implementer

from ..dav.errors import DavError
from ..interfaces import ITokenChecker
from .accounts import AuthFailure, generation
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
        # from the query string only (request.args also holds a form body's fields)
        query = request.uri.partition(b"?")[2]
        peer = (parse_qs(query).get(PEER) or [b""])[0]
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
    """Checks tokens with a ``TokenService``, and passwords with ``Logins``
    over an ``AccountStore`` (its own ``Logins`` when none is given).

    A token names an account and the generation it was issued for; the
    account's roles are read as they are *now*, and a token whose account is
    gone or whose generation is not the account's any more (a changed
    password or roles, ``token revoke``) is refused. The owner's tokens
    carry the owner generation (``TokenService.owner_gen``)."""

    KNOWN = 1024  # bearer tokens whose Principal is remembered (cleared when full)

    def __init__(self, tokens, accounts, logins=None):
        self.tokens = tokens
        self.accounts = accounts
        if logins is None:
            from .logins import Logins

            logins = Logins(accounts)
        self.logins = logins
        self._known = {}  # bearer token -> Known

    def _bearer(self, token):
        """The Principal of a bearer token.

        A token seen before is not decoded again: what it names is
        remembered with its ``exp``, the accounts document its Principal was
        made from, and its generation. A repeat costs a ``stat`` of the
        accounts file (``AccountStore.read`` keeps the parsed document in
        memory while the file is unchanged): while the document is the same
        object the remembered Principal is still right; when it changed, the
        generation is compared again and the Principal made anew from the
        account's roles. Never a Principal for an expired or revoked token:
        those take the full path, which raises the right error."""
        hit = self._known.get(token)
        if hit is not None and hit.exp > time.time():
            principal = self._known_principal(hit)
            if principal is not None:
                return principal
            self._known.pop(token, None)
        claims = self.tokens.verify(token)
        principal, doc = self._principal_of(claims, "bearer")
        if len(self._known) >= self.KNOWN:
            self._known.clear()
        self._known[token] = Known(int(claims["exp"]), claims.get("gen", 0), principal, doc)
        return principal

    def _known_principal(self, hit):
        principal = hit.principal
        if principal.owner:
            return principal if self.tokens.owner_gen() == hit.gen else None
        doc = self.accounts.read(principal.cell)
        if doc is hit.doc:
            return principal
        account = doc["accounts"].get(principal.subject)
        if account is None or generation(account) != hit.gen:
            return None
        roles = frozenset(account["roles"])
        if roles != principal.roles:
            principal = Principal(principal.cell, principal.subject, roles, via=principal.via)
        hit.principal, hit.doc = principal, doc
        return principal

    def _principal_of(self, claims, via):
        """(the Principal of valid claims, the accounts document it was read
        from); TokenInvalid for a gone account or an old generation."""
        gen = claims.get("gen", 0)
        if claims.get("owner") is True:  # a boolean true, nothing merely truthy
            if self.tokens.owner_gen() != gen:
                raise TokenInvalid()  # token revoke --owner
            return Principal(subject=claims.get("sub") or "owner", owner=True, via=via), None
        cell, subject = claims.get("cell"), claims.get("sub")
        if not cell or not subject:
            raise TokenInvalid()
        doc = self.accounts.read(cell)
        account = doc["accounts"].get(subject)
        if account is None or generation(account) != gen:
            raise TokenInvalid()  # the account is gone, or changed since the token
        return Principal(cell, subject, frozenset(account["roles"]), via=via), doc

    def _principal(self, claims, via):
        return self._principal_of(claims, via)[0]

    def authenticate(self, request, cell):
        found = credentials(request)
        if found is None:
            return ANONYMOUS
        kind = found[0]
        if kind == "basic":
            return self._basic(request, cell, found[1], found[2])
        try:
            if kind == "bearer":
                return self._bearer(found[1])
            return self._principal(self.tokens.verify_cookie(found[1], found[2]), "cookie")
        except TokenExpired:
            raise DavError("PR401-AU-0009" if kind == "cookie" else "PR401-AU-0002")
        except TokenInvalid:
            raise DavError("PR401-AU-0009" if kind == "cookie" else "PR401-AU-0006")

    def _basic(self, request, cell, user, password):
        if cell is None:
            return defer.fail(DavError("PR401-AU-0001"))

        def passed(login):
            return Principal(cell, user, frozenset(login.roles), via="basic")

        def failed(failure):
            failure.trap(AuthFailure)
            raise DavError("PR401-AU-0001")

        return self.logins.check(request, cell, user, password).addCallbacks(passed, failed)


class Known:
    """What the bearer cache remembers of a token."""

    __slots__ = ("exp", "gen", "principal", "doc")

    def __init__(self, exp, gen, principal, doc):
        self.exp, self.gen, self.principal, self.doc = exp, gen, principal, doc
