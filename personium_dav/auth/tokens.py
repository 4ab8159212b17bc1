"""Signed tokens (PyJWT, HS256) and the data root's signing secret.

The secret is 32 random bytes made on first start in ``DATA/:secret``
(mode 0600). A token carries ``typ`` (access, refresh or cookie), ``cell``
(None for the owner), ``sub`` (the account), ``roles`` (as they were at
issue: for information only, authorization reads the account as it is
now), ``owner``, ``gen`` (the generation of the account, or for the owner
the owner generation, see below), ``iat``, ``exp`` and a random ``jti``. A
cookie token also carries ``peer``: the SHA-256 of the ``p_cookie_peer``
value handed to the client with it.

The owner generation is kept beside the secret, in ``DATA/:owner-generation``
(a number; 0 when missing). ``token revoke --owner`` raises it: every owner
token issued before stops working.
"""
import hashlib
import hmac
import os
import secrets
import time
import uuid

import jwt

from twisted.python.threadable import isInIOThread

from . import files
from ..flocks import flocked

SECRET = ":secret"
OWNER_GENERATION = ":owner-generation"
ISSUER = "personium-dav"
ALGORITHM = "HS256"


class TokenExpired(Exception):
    pass


class TokenInvalid(Exception):
    pass


def _read_secret(path):
    """The stored secret, or None when missing or too short to trust."""
    try:
        with open(path, "rb") as f:
            data = f.read().strip()
    except FileNotFoundError:
        return None
    return data if len(data) >= 32 else None


def load_secret(data_root):
    """The signing secret of a data root, made (0600) when missing; read again
    under the lock so two processes starting at once agree on one secret."""
    path = os.path.join(os.path.abspath(data_root), SECRET)
    data = _read_secret(path)
    if data is not None:
        return data
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with flocked(path + ".lock"):
        data = _read_secret(path)
        if data is None:
            data = secrets.token_hex(32).encode("ascii")
            files.write_atomic(path, data + b"\n", mode=0o600)
        return data


class OwnerGeneration:
    """The owner generation of a data root (``DATA/:owner-generation``).

    ``current()`` is on the path of every owner request: it costs one
    ``stat``, the file being read again only when its stat key changes. A
    file that cannot be read as a number gives None, which matches no
    token (an owner token then works again only after ``raise_()``)."""

    def __init__(self, data_root):
        root = os.path.abspath(data_root)
        self.path = os.path.join(root, OWNER_GENERATION)
        self.lock = os.path.join(root, SECRET + ".lock")
        self._cache = None  # (stat key, value)
        # as AccountStore's: on a shared mount the reactor thread takes the
        # value a thread last read (each request's resolution reads it first)
        self.revalidated_in_threads = False
        self._latest = ()  # (the value last read,), or () before the first

    def current(self):
        if self.revalidated_in_threads and self._latest and isInIOThread():
            return self._latest[0]
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._latest = (0,)
            return 0
        key = files.stat_key(st)
        hit = self._cache
        if hit is not None and hit[0] == key:
            self._latest = (hit[1],)
            return hit[1]
        value = self._read()
        self._cache = (key, value)
        self._latest = (value,)
        return value

    def _read(self):
        try:
            with open(self.path, "rb") as f:
                text = f.read(64).strip()
        except FileNotFoundError:
            return 0
        return int(text) if text.isdigit() else None

    def raise_(self):
        """A new owner generation (the tokens of the old ones end); the new value."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with flocked(self.lock):
            value = (self._read() or 0) + 1
            files.write_atomic(self.path, b"%d\n" % value, mode=0o600)
        return value


def peer_digest(peer):
    return hashlib.sha256(peer.encode("utf-8")).hexdigest()


def _copy(claims):
    """A copy a caller may change without touching the remembered claims."""
    return {k: list(v) if isinstance(v, list) else v for k, v in claims.items()}


class TokenService:
    """Issues and verifies the server's tokens."""

    def __init__(self, secret, access_ttl=3600, refresh_ttl=86400, clock=time.time,
                 owner_generation=None, account_generation=None):
        self.secret = secret
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.clock = clock
        self.owner_generation = owner_generation  # an OwnerGeneration, or None (always 0)
        # (cell, account) -> its generation now, for ``issue`` without one
        self.account_generation = account_generation
        self._verified = {}  # (token, kind) -> claims of a token that verified

    def owner_gen(self):
        """The owner generation now (0 without an ``owner_generation``)."""
        return self.owner_generation.current() if self.owner_generation is not None else 0

    def issue(self, cell, subject, roles=(), owner=False, ttl=None, kind="access",
              generation=None, **extra):
        """A signed token. Without ``generation``, it is the one the token
        would be checked against now: the owner generation for the owner,
        else the account's (``account_generation``; 0 without it)."""
        if generation is None:
            if owner:
                generation = self.owner_gen()
            elif self.account_generation is not None and cell and subject:
                generation = self.account_generation(cell, subject)
            else:
                generation = 0
        if ttl is None:
            ttl = self.refresh_ttl if kind == "refresh" else self.access_ttl
        now = int(self.clock())
        claims = {
            "iss": ISSUER, "typ": kind, "cell": cell, "sub": subject,
            "roles": sorted(roles), "owner": bool(owner), "gen": generation,
            "iat": now, "exp": now + int(ttl), "jti": uuid.uuid4().hex,
        }
        claims.update(extra)
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def owner_token(self, ttl=None):
        generation = self.owner_gen()
        if generation is None:
            raise TokenInvalid("the owner generation file is unreadable")
        return self.issue(None, "owner", owner=True, ttl=ttl, generation=generation)

    VERIFIED_CACHE = 1024  # tokens remembered as verified (cleared when full)

    def verify(self, token, kind="access"):
        """The claims of a valid token of that kind; TokenExpired or TokenInvalid.

        A token that verified once is remembered (the same bytes carry the same
        valid signature): a repeat only checks ``exp`` again, as PyJWT does,
        instead of decoding and HMAC-checking it on every request."""
        hit = self._verified.get((token, kind))
        if hit is not None:
            if int(hit["exp"]) <= time.time():  # PyJWT's rule (leeway 0)
                self._verified.pop((token, kind), None)
                raise TokenExpired()
            return _copy(hit)
        try:
            claims = jwt.decode(
                token, self.secret, algorithms=[ALGORITHM], issuer=ISSUER,
                options={"require": ["exp", "iat", "iss", "typ", "sub"]})
        except jwt.ExpiredSignatureError:
            raise TokenExpired()
        except jwt.InvalidTokenError:
            raise TokenInvalid()
        if claims.get("typ") != kind:
            raise TokenInvalid()
        if not isinstance(claims.get("roles", []), list):
            raise TokenInvalid()
        if type(claims.get("gen", 0)) is not int:
            raise TokenInvalid()
        if len(self._verified) >= self.VERIFIED_CACHE:
            self._verified.clear()
        self._verified[(token, kind)] = _copy(claims)
        return claims

    def cookie(self, access_claims):
        """(p_cookie value, p_cookie_peer) for the same grant as an access token."""
        peer = secrets.token_urlsafe(24)
        value = self.issue(access_claims["cell"], access_claims["sub"],
                           access_claims.get("roles", ()), access_claims.get("owner", False),
                           ttl=access_claims["exp"] - int(self.clock()), kind="cookie",
                           generation=access_claims.get("gen", 0), peer=peer_digest(peer))
        return value, peer

    def verify_cookie(self, value, peer):
        """The claims of a cookie token whose peer matches; TokenExpired/TokenInvalid."""
        claims = self.verify(value, kind="cookie")
        expected = claims.get("peer")
        if not isinstance(expected, str) or not peer or not hmac.compare_digest(
                expected, peer_digest(peer)):
            raise TokenInvalid()
        return claims
