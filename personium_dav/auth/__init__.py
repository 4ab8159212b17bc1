"""Accounts, tokens, cookie authentication, privileges and ACL evaluation.

``Auth`` bundles what a server needs: the ``AccountStore`` of the data root,
the ``TokenService`` signing with the data root's secret (and checking the
owner generation beside it), the ``Logins`` that check passwords in a
thread pool of their own, and the two seams an embedding application may
replace, an ``ITokenChecker`` and an ``IPrivilegePolicy``
(``personium_dav.interfaces``). ``close()`` stops the password pool.
"""
from dataclasses import dataclass

from .accounts import AccountError, AccountStore, AuthFailure, generation
from .checker import CredentialChecker
from .logins import Logins
from .privileges import ANONYMOUS, AclPolicy, Principal, Target
from .tokens import OwnerGeneration, TokenService, load_secret

__all__ = ["Auth", "AuthSettings", "AccountStore", "AccountError", "AuthFailure",
           "CredentialChecker", "AclPolicy", "Principal", "Target", "ANONYMOUS",
           "Logins", "OwnerGeneration", "TokenService", "load_secret"]


@dataclass(frozen=True)
class AuthSettings:
    lockout_attempts: int = 5  # wrong passwords in a row that lock an account
    lockout_seconds: float = 300.0  # how long it stays locked
    access_ttl: int = 3600  # seconds an access token (and its cookie) lives
    refresh_ttl: int = 86400  # seconds a refresh token lives
    login_rate: int = 30  # failed logins a minute per client address
    trusted_proxies: tuple = ()  # addresses whose X-Forwarded-For names the client
    hash_threads: int = 2  # threads checking passwords (argon2: 64 MiB each)


class Auth:
    """The envelope's state for one data root."""

    def __init__(self, data_root, settings=None, checker=None, policy=None, durable=True):
        settings = settings or AuthSettings()
        self.settings = settings
        self.accounts = AccountStore(data_root, settings.lockout_attempts,
                                     settings.lockout_seconds, durable=durable)
        self.tokens = TokenService(load_secret(data_root), settings.access_ttl,
                                   settings.refresh_ttl,
                                   owner_generation=OwnerGeneration(data_root),
                                   account_generation=self._generation_of)
        self.logins = Logins(self.accounts, settings.hash_threads, settings.login_rate,
                             settings.trusted_proxies)
        self.checker = checker if checker is not None else CredentialChecker(
            self.tokens, self.accounts, self.logins)
        self.policy = policy if policy is not None else AclPolicy()

    def _generation_of(self, cell, name):
        account = self.accounts.get(cell, name)
        return generation(account) if account is not None else 0

    def close(self):
        """Stop the password thread pool (started when first needed; also
        stopped at reactor shutdown)."""
        self.logins.close()
