"""Accounts, tokens, cookie authentication, privileges and ACL evaluation.

``Auth`` bundles what a server needs: the ``AccountStore`` of the data root,
the ``TokenService`` signing with the data root's secret, and the two seams
an embedding application may replace, an ``ITokenChecker`` and an
``IPrivilegePolicy`` (``personium_dav.interfaces``).
"""
from dataclasses import dataclass

from .accounts import AccountError, AccountStore, AuthFailure
from .checker import CredentialChecker
from .privileges import ANONYMOUS, AclPolicy, Principal, Target
from .tokens import TokenService, load_secret

__all__ = ["Auth", "AuthSettings", "AccountStore", "AccountError", "AuthFailure",
           "CredentialChecker", "AclPolicy", "Principal", "Target", "ANONYMOUS",
           "TokenService", "load_secret"]


@dataclass(frozen=True)
class AuthSettings:
    lockout_attempts: int = 5  # wrong passwords in a row that lock an account
    lockout_seconds: float = 300.0  # how long it stays locked
    access_ttl: int = 3600  # seconds an access token (and its cookie) lives
    refresh_ttl: int = 86400  # seconds a refresh token lives


class Auth:
    """The envelope's state for one data root."""

    def __init__(self, data_root, settings=None, checker=None, policy=None, durable=True):
        settings = settings or AuthSettings()
        self.settings = settings
        self.accounts = AccountStore(data_root, settings.lockout_attempts,
                                     settings.lockout_seconds, durable=durable)
        self.tokens = TokenService(load_secret(data_root), settings.access_ttl,
                                   settings.refresh_ttl)
        self.checker = checker if checker is not None else CredentialChecker(
            self.tokens, self.accounts)
        self.policy = policy if policy is not None else AclPolicy()
