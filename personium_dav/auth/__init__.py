"""Accounts, tokens, cookie authentication, privileges and ACL evaluation.

``Auth`` bundles what a server needs: the ``AccountStore`` of the data root,
the ``TokenService`` signing with the data root's secret (and checking the
owner generation beside it), the ``Logins`` that check passwords in a
thread pool of their own, and the two seams an embedding application may
replace, an ``ITokenChecker`` and an ``IPrivilegePolicy``
(``personium_dav.interfaces``). ``close()`` stops the password pool.
"""
from ..config import Config
from .accounts import AccountError, AccountStore, AuthFailure, generation
from .checker import CredentialChecker
from .logins import Logins
from .privileges import ANONYMOUS, AclPolicy, Principal, Target
from .tokens import OwnerGeneration, TokenService, load_secret

__all__ = ["Auth", "AccountStore", "AccountError", "AuthFailure",
           "CredentialChecker", "AclPolicy", "Principal", "Target", "ANONYMOUS",
           "Logins", "OwnerGeneration", "TokenService", "load_secret"]


class Auth:
    """The envelope's state for one data root."""

    def __init__(self, data_root, config=None, checker=None, policy=None, shared=False):
        config = config or Config()
        self.accounts = AccountStore(data_root, config.lockout_attempts,
                                     config.lockout_seconds, durable=config.durable)
        self.tokens = TokenService(load_secret(data_root), config.token_ttl,
                                   config.refresh_ttl,
                                   owner_generation=OwnerGeneration(data_root),
                                   account_generation=self._generation_of)
        self.logins = Logins(self.accounts, config.hash_threads, config.login_rate,
                             config.trusted_proxies)
        self.checker = checker if checker is not None else CredentialChecker(
            self.tokens, self.accounts, self.logins)
        self.policy = policy if policy is not None else AclPolicy()
        # on a shared mount (docs/scale-out.md) a stat may block: the files
        # authentication reads are revalidated by ``revalidate``, in a thread
        self.accounts.revalidated_in_threads = shared
        self.tokens.owner_generation.revalidated_in_threads = shared

    def revalidate(self, cell):
        """Read again (in a thread) what authenticating a request of
        ``cell`` reads: its accounts and the owner generation."""
        self.accounts.read(cell)
        self.tokens.owner_generation.current()

    def _generation_of(self, cell, name):
        account = self.accounts.get(cell, name)
        return generation(account) if account is not None else 0

    def close(self):
        """Stop the password thread pool (started when first needed; also
        stopped at reactor shutdown)."""
        self.logins.close()
