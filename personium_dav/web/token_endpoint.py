"""``POST {CellURL}__token``: the OAuth2 token endpoint of a cell.

``grant_type=password`` with ``username`` and ``password`` (an account of
the cell), or ``grant_type=refresh_token`` with ``refresh_token``, answers

    {"access_token": ..., "token_type": "Bearer", "expires_in": 3600,
     "refresh_token": ..., "refresh_token_expires_in": 86400}

and with ``p_cookie=true`` also sets the ``p_cookie`` cookie (HttpOnly, path
the cell) and adds ``p_cookie_peer`` to the body: the cookie is accepted only
together with that value as the ``p_cookie_peer`` query parameter. Failures
are 400 with an OAuth2 error body (RFC 6749 §5.2): ``invalid_grant`` for
wrong credentials, a locked account, too many failed logins from the
client's address, or a bad refresh token. A refresh token is accepted only
while its account has the generation it was issued for (the password,
roles and revocations since then end it); the new tokens carry the
account's roles and generation as they are now.
"""
import json
from urllib.parse import parse_qs

from twisted.internet import defer

from ..auth.accounts import AuthFailure, Login, generation
from ..auth.tokens import TokenExpired, TokenInvalid
from .reply import Refusal, Reply

MAX_FORM = 64 * 1024
JSON = b"application/json"
NO_STORE = {"Cache-Control": b"no-store", "Pragma": b"no-cache"}


def oauth_error(error, description, status=400):
    body = json.dumps({"error": error, "error_description": description}).encode()
    return Refusal(Reply(status, body, dict(NO_STORE), JSON))


def _form(request):
    content = request.content
    content.seek(0)
    raw = content.read(MAX_FORM + 1)
    if len(raw) > MAX_FORM:
        raise oauth_error("invalid_request", "request body is too large")
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise oauth_error("invalid_request", "request body is not UTF-8")
    return {k: v[0] for k, v in fields.items()}


def issue(auth, request, cell, cookie_path):
    """Answer one token request (a Deferred of a Reply, or raises Refusal)."""
    form = _form(request)
    grant = form.get("grant_type")
    want_cookie = form.get("p_cookie", "").lower() == "true"
    if grant == "password":
        username, password = form.get("username"), form.get("password")
        if not username or password is None:
            raise oauth_error("invalid_request", "username and password are required")

        def failed(failure):
            failure.trap(AuthFailure)
            raise oauth_error("invalid_grant", "authentication failed")

        d = auth.logins.check(request, cell, username, password).addErrback(failed)
    elif grant == "refresh_token":
        token = form.get("refresh_token")
        if not token:
            raise oauth_error("invalid_request", "refresh_token is required")
        try:
            claims = auth.tokens.verify(token, kind="refresh")
        except (TokenExpired, TokenInvalid):
            raise oauth_error("invalid_grant", "invalid or expired refresh token")
        account = auth.accounts.get(cell, claims.get("sub") or "")
        if (claims.get("cell") != cell or account is None
                or generation(account) != claims.get("gen", 0)):
            raise oauth_error("invalid_grant", "invalid or expired refresh token")
        if auth.accounts.locked(cell, claims["sub"]):
            raise oauth_error("invalid_grant", "the account is locked")
        d = defer.succeed(Login(claims["sub"], tuple(account["roles"]), generation(account)))
    elif grant is None:
        raise oauth_error("invalid_request", "grant_type is required")
    else:
        raise oauth_error("unsupported_grant_type", "unsupported grant_type")

    def answer(login):
        tokens = auth.tokens
        access = tokens.issue(cell, login.name, login.roles, generation=login.generation)
        refresh = tokens.issue(cell, login.name, login.roles, kind="refresh",
                               generation=login.generation)
        body = {
            "access_token": access, "token_type": "Bearer",
            "expires_in": tokens.access_ttl,
            "refresh_token": refresh, "refresh_token_expires_in": tokens.refresh_ttl,
        }
        headers = dict(NO_STORE)
        if want_cookie:
            value, peer = tokens.cookie(tokens.verify(access))
            body["p_cookie_peer"] = peer
            attrs = "p_cookie=%s; Path=%s; HttpOnly; SameSite=Lax" % (value, cookie_path)
            if request.isSecure():
                attrs += "; Secure"
            headers["Set-Cookie"] = attrs.encode("latin-1")
        return Reply(200, json.dumps(body).encode(), headers, JSON)

    return d.addCallback(answer)
