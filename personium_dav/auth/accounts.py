"""Accounts and roles of a cell, kept in ``DATA/{cell}/:accounts.json``.

    {"version": 1, "generation": 7,
     "roles": ["editor", ...],
     "accounts": {"me": {"hash": "$argon2id$...", "roles": ["editor"],
                          "generation": 7, "failures": 0, "locked_until": 0}}}

Passwords are hashed with argon2 (argon2-cffi) and never stored or logged in
clear. Every change is a read-modify-write under ``DATA/{cell}/:accounts.lock``
(see ``files``).

**Generations.** Each account has a ``generation``, carried in every token
issued for it (claim ``gen``) and compared at every use of the token. It is
raised when the account's password or roles change (``account add`` over an
existing account, ``role remove`` of a role it holds) and by ``token
revoke``: every token issued before then stops working, refresh tokens and
cookies included. A new value is always higher than any the cell gave out
before (the document's own ``generation`` counts them), so an account
removed and made again does not bring its old tokens back. A file written
before generations existed reads as generation 0 everywhere, as do tokens
without ``gen``: they keep working.

**Lockout.** An attempt is counted when it *starts*: ``check`` reserves it
under the lock (``failures`` + 1) before running argon2, and refuses without
running it once ``lockout_attempts`` are counted, so however many attempts
arrive together at most that many passwords are ever tried per window, the
right one included. A right password resets the count; a wrong one that
finds the count spent, or an attempt that arrives when it is spent, locks
the account for ``lockout_seconds`` (so a count left by a process stopped
in the middle of a check ends with that lock). While locked, even the
right password fails.
"""
import functools
import hashlib
import hmac
import os
import re
import threading
import time
from typing import NamedTuple

from argon2 import PasswordHasher
from twisted.python.threadable import isInIOThread
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from . import files
from ..flocks import flocked

ACCOUNTS = ":accounts.json"
LOCK = ":accounts.lock"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$")  # accounts and roles

_HASHER = PasswordHasher()


@functools.lru_cache(maxsize=None)
def _dummy(hasher):
    """A hash to verify against for an unknown account (so that it takes the
    time a real check takes); made when first needed, not at import: one
    argon2 hash holds its memory cost (64 MiB) while it runs."""
    return hasher.hash("personium-dav: no such account")


class AuthFailure(Exception):
    """A password check that did not pass: ``reason`` is unknown, wrong or locked."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class AccountError(ValueError):
    """An operator request that cannot be done (shown by the command line)."""


def _empty():
    return {"version": 1, "roles": [], "accounts": {}}


def generation(account):
    """An account's generation (0 in a file written before generations)."""
    return account.get("generation", 0)


def _next_generation(doc):
    """A generation higher than any the cell's document gave out."""
    highest = max([doc.get("generation", 0)]
                  + [generation(a) for a in doc["accounts"].values()])
    doc["generation"] = highest + 1
    return highest + 1


class Login(NamedTuple):
    """Who a right password is: the account's name, roles and generation."""

    name: str
    roles: tuple
    generation: int


def _login(name, account):
    return Login(name, tuple(account["roles"]), generation(account))


class AccountStore:
    """The accounts and roles of every cell under one data root."""

    def __init__(self, data_root, lockout_attempts=5, lockout_seconds=300.0,
                 clock=time.time, hasher=_HASHER, durable=True):
        self.root = os.path.abspath(data_root)
        self.lockout_attempts = lockout_attempts
        self.lockout_seconds = lockout_seconds
        self.clock = clock
        self.hasher = hasher
        self.durable = durable
        self._cache = {}  # path -> (stat key, document)
        # True on a shared mount (docs/scale-out.md): a call there may block,
        # so the reactor thread takes the document as a thread last found it
        # (each request's resolution reads it again in the reads pool first)
        self.revalidated_in_threads = False
        self._latest = {}  # path -> the document as last read
        self._verified = {}  # (cell, name, hash, hmac of password) -> True
        self._key = os.urandom(32)  # keys the cache of verified passwords
        self._lock = threading.Lock()

    # -- files --------------------------------------------------------------

    def _paths(self, cell):
        directory = os.path.join(self.root, cell)
        return os.path.join(directory, ACCOUNTS), os.path.join(directory, LOCK)

    def read(self, cell):
        """The cell's document: parsed once, then kept in memory while the
        file's stat key is unchanged (one ``stat`` a call). The same object
        is returned until the file changes; callers must not modify it."""
        path, _ = self._paths(cell)
        if self.revalidated_in_threads and isInIOThread():
            latest = self._latest.get(path)
            if latest is not None:  # checked by this request's resolution, in a thread
                return latest
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self._latest[path] = doc = _empty()
            return doc
        key = files.stat_key(st)
        hit = self._cache.get(path)
        if hit is not None and hit[0] == key:
            self._latest[path] = hit[1]
            return hit[1]
        doc = files.read_json(path, None) or _empty()
        self._cache[path] = (key, doc)
        self._latest[path] = doc
        return doc

    def _change(self, cell, change):
        """Apply ``change(doc)`` under the cell's lock and write the result;
        nothing is written when ``change`` raises."""
        directory = os.path.join(self.root, cell)
        if not os.path.isdir(directory):
            raise AccountError("no cell %r in %s" % (cell, self.root))
        path, lock = self._paths(cell)
        with self._lock, flocked(lock):
            self._cache.pop(path, None)
            doc = files.read_json(path, None) or _empty()
            result = change(doc)
            files.write_json(path, doc, durable=self.durable)
            self._cache.pop(path, None)
            self._latest.pop(path, None)
        return result

    # -- roles ----------------------------------------------------------------

    def roles(self, cell):
        return list(self.read(cell)["roles"])

    def has_role(self, cell, role):
        return role in self.read(cell)["roles"]

    def add_role(self, cell, role):
        if not NAME.match(role):
            raise AccountError("invalid role name %r" % role)

        def change(doc):
            if role in doc["roles"]:
                return False
            doc["roles"].append(role)
            doc["roles"].sort()
            return True

        return self._change(cell, change)

    def remove_role(self, cell, role):
        """Remove a role and take it from every account holding it (whose
        generation is raised: their tokens end)."""
        def change(doc):
            if role not in doc["roles"]:
                raise AccountError("no role %r in cell %r" % (role, cell))
            doc["roles"].remove(role)
            for account in doc["accounts"].values():
                if role in account["roles"]:
                    account["roles"].remove(role)
                    account["generation"] = _next_generation(doc)

        return self._change(cell, change)

    # -- accounts -------------------------------------------------------------

    def accounts(self, cell):
        """{name: [roles]} of the cell's accounts."""
        return {n: list(a["roles"]) for n, a in sorted(self.read(cell)["accounts"].items())}

    def get(self, cell, name):
        return self.read(cell)["accounts"].get(name)

    def add_account(self, cell, name, password, roles=()):
        """Create an account, or set the password and roles of an existing one
        (a new generation either way: the tokens of the old one end)."""
        if not NAME.match(name):
            raise AccountError("invalid account name %r" % name)
        if not password:
            raise AccountError("the password is empty")
        hashed = self.hasher.hash(password)

        def change(doc):
            unknown = [r for r in roles if r not in doc["roles"]]
            if unknown:
                raise AccountError("no role %s in cell %r (add it with: role add)"
                                   % (", ".join(map(repr, unknown)), cell))
            created = name not in doc["accounts"]
            doc["accounts"][name] = {"hash": hashed, "roles": sorted(set(roles)),
                                     "generation": _next_generation(doc),
                                     "failures": 0, "locked_until": 0}
            return created

        return self._change(cell, change)

    def remove_account(self, cell, name):
        def change(doc):
            if name not in doc["accounts"]:
                raise AccountError("no account %r in cell %r" % (name, cell))
            del doc["accounts"][name]
            _next_generation(doc)

        return self._change(cell, change)

    def revoke(self, cell, name=None):
        """Raise the generation of one account (every account of the cell
        when ``name`` is None): all their tokens end. The names revoked."""
        def change(doc):
            if name is not None and name not in doc["accounts"]:
                raise AccountError("no account %r in cell %r" % (name, cell))
            names = [name] if name is not None else sorted(doc["accounts"])
            for each in names:
                doc["accounts"][each]["generation"] = _next_generation(doc)
            return names

        return self._change(cell, change)

    # -- passwords --------------------------------------------------------------

    def locked(self, cell, name):
        account = self.get(cell, name)
        return bool(account) and account.get("locked_until", 0) > self.clock()

    def _memo(self, cell, name, hashed, password):
        mac = hmac.new(self._key, password.encode("utf-8"), hashlib.sha256).digest()
        return (cell, name, hashed, mac)

    def remembered(self, cell, name, password):
        """The ``Login`` when this very password was verified before and the
        account is in good standing (not locked, no attempt counted): no
        argon2 and no write, for a Basic client that sends its password on
        every request. None when the full ``check`` is needed."""
        if not NAME.match(name or ""):
            return None
        account = self.get(cell, name)
        if (account is None or account.get("failures", 0)
                or account.get("locked_until", 0) > self.clock()):
            return None
        if self._memo(cell, name, account["hash"], password) in self._verified:
            return _login(name, account)
        return None

    def check(self, cell, name, password):
        """The ``Login`` when the password is right; else AuthFailure.

        Blocking (argon2 and file writes): run it in a thread. The attempt
        is reserved first (see the module's docstring); then a right
        password is remembered (keyed by an HMAC under a per-process key and
        by the stored hash) so that ``remembered`` can answer the next time
        without argon2; a wrong one always pays it."""
        account = self.get(cell, name) if NAME.match(name or "") else None
        if account is None:
            _safe_verify(self.hasher, _dummy(self.hasher), password)  # same time as a real check
            raise AuthFailure("unknown")
        account = self._reserve(cell, name)
        memo = self._memo(cell, name, account["hash"], password)
        if memo in self._verified or _safe_verify(self.hasher, account["hash"], password):
            if len(self._verified) > 10000:
                self._verified.clear()
            self._verified[memo] = True
            self._settle(cell, name, success=True)
            return _login(name, account)
        locked = self._settle(cell, name, success=False)
        raise AuthFailure("locked" if locked else "wrong")

    def check_password(self, cell, name, password):
        """The account's roles when the password is right; else AuthFailure."""
        return list(self.check(cell, name, password).roles)

    def _reserve(self, cell, name):
        """Count one attempt before it runs, under the lock; the account as
        it is then. AuthFailure (nothing written) when the account is gone,
        locked, or its attempts are all counted already."""
        now = self.clock()

        def change(doc):
            account = doc["accounts"].get(name)
            if account is None:
                raise AuthFailure("unknown")
            if account.get("locked_until", 0) > now:
                raise AuthFailure("locked")
            if account.get("failures", 0) >= self.lockout_attempts:
                # every attempt of the window is counted (under way, or lost
                # with a process that stopped during its check): locked now,
                # so that the lock, and not a lost count, ends this
                account["failures"] = 0
                account["locked_until"] = now + self.lockout_seconds
                return None
            account["failures"] = account.get("failures", 0) + 1
            return dict(account)

        account = self._change(cell, change)
        if account is None:
            raise AuthFailure("locked")
        return account

    def _settle(self, cell, name, success):
        """After the check: a right password resets the count; a wrong one
        that finds every attempt counted locks the account (True)."""
        now = self.clock()

        def change(doc):
            account = doc["accounts"].get(name)
            if account is None:
                raise _Unchanged(False)
            if success:
                if not account.get("failures", 0):
                    raise _Unchanged(False)
                account["failures"] = 0
                return False
            if account.get("locked_until", 0) > now:
                raise _Unchanged(True)
            if account.get("failures", 0) < self.lockout_attempts:
                raise _Unchanged(False)
            account["failures"] = 0
            account["locked_until"] = now + self.lockout_seconds
            return True

        try:
            return self._change(cell, change)
        except _Unchanged as unchanged:
            return unchanged.result


class _Unchanged(Exception):
    """Raised by a change that writes nothing; carries its result."""

    def __init__(self, result):
        super().__init__(result)
        self.result = result


def _safe_verify(hasher, hashed, password):
    try:
        return hasher.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
