"""Accounts and roles of a cell, kept in ``DATA/{cell}/:accounts.json``.

    {"version": 1,
     "roles": ["editor", ...],
     "accounts": {"me": {"hash": "$argon2id$...", "roles": ["editor"],
                          "failures": 0, "locked_until": 0}}}

Passwords are hashed with argon2 (argon2-cffi) and never stored or logged in
clear. ``check_password`` counts failures: after ``lockout_attempts`` wrong
passwords in a row the account is locked for ``lockout_seconds``, and while
locked even the right password fails. Every change is a read-modify-write
under ``DATA/{cell}/:accounts.lock`` (see ``files``).
"""
import functools
import hashlib
import hmac
import os
import re
import threading
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from . import files

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
        self._verified = {}  # (cell, name, hash, hmac of password) -> True
        self._key = os.urandom(32)  # keys the cache of verified passwords
        self._lock = threading.Lock()

    # -- files --------------------------------------------------------------

    def _paths(self, cell):
        directory = os.path.join(self.root, cell)
        return os.path.join(directory, ACCOUNTS), os.path.join(directory, LOCK)

    def read(self, cell):
        """The cell's document (cached, revalidated on the file's stat)."""
        path, _ = self._paths(cell)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return _empty()
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        hit = self._cache.get(path)
        if hit is not None and hit[0] == key:
            return hit[1]
        doc = files.read_json(path, None) or _empty()
        self._cache[path] = (key, doc)
        return doc

    def _change(self, cell, change):
        """Apply ``change(doc)`` under the cell's lock and write the result."""
        directory = os.path.join(self.root, cell)
        if not os.path.isdir(directory):
            raise AccountError("no cell %r in %s" % (cell, self.root))
        path, lock = self._paths(cell)
        with self._lock, files.flocked(lock):
            self._cache.pop(path, None)
            doc = files.read_json(path, None) or _empty()
            result = change(doc)
            files.write_json(path, doc, durable=self.durable)
            self._cache.pop(path, None)
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
        def change(doc):
            if role not in doc["roles"]:
                raise AccountError("no role %r in cell %r" % (role, cell))
            doc["roles"].remove(role)
            for account in doc["accounts"].values():
                if role in account["roles"]:
                    account["roles"].remove(role)

        return self._change(cell, change)

    # -- accounts -------------------------------------------------------------

    def accounts(self, cell):
        """{name: [roles]} of the cell's accounts."""
        return {n: list(a["roles"]) for n, a in sorted(self.read(cell)["accounts"].items())}

    def get(self, cell, name):
        return self.read(cell)["accounts"].get(name)

    def add_account(self, cell, name, password, roles=()):
        """Create an account, or set the password and roles of an existing one."""
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
                                     "failures": 0, "locked_until": 0}
            return created

        return self._change(cell, change)

    def remove_account(self, cell, name):
        def change(doc):
            if name not in doc["accounts"]:
                raise AccountError("no account %r in cell %r" % (name, cell))
            del doc["accounts"][name]

        return self._change(cell, change)

    # -- passwords --------------------------------------------------------------

    def locked(self, cell, name):
        account = self.get(cell, name)
        return bool(account) and account.get("locked_until", 0) > self.clock()

    def check_password(self, cell, name, password):
        """The account's roles when the password is right; else AuthFailure.

        Blocking (argon2 and file writes): run it in a thread. A right
        password is remembered (keyed by an HMAC under a per-process key and
        by the stored hash) so that Basic clients do not pay argon2 on every
        request; a wrong one always pays it."""
        account = self.get(cell, name) if NAME.match(name or "") else None
        if account is None:
            _safe_verify(self.hasher, _dummy(self.hasher), password)  # same time as a real check
            raise AuthFailure("unknown")
        if account.get("locked_until", 0) > self.clock():
            raise AuthFailure("locked")
        mac = hmac.new(self._key, password.encode("utf-8"), hashlib.sha256).digest()
        memo = (cell, name, account["hash"], mac)
        if memo in self._verified:
            ok = True
        else:
            ok = _safe_verify(self.hasher, account["hash"], password)
        if ok:
            if len(self._verified) > 10000:
                self._verified.clear()
            self._verified[memo] = True
            if account.get("failures"):
                self._record(cell, name, success=True)
            return list(account["roles"])
        locked = self._record(cell, name, success=False)
        raise AuthFailure("locked" if locked else "wrong")

    def _record(self, cell, name, success):
        """Count a failure (True when it locks the account) or reset the count."""
        now = self.clock()

        def change(doc):
            account = doc["accounts"].get(name)
            if account is None:
                return False
            if success:
                account["failures"] = 0
                return False
            account["failures"] = account.get("failures", 0) + 1
            if account["failures"] >= self.lockout_attempts:
                account["failures"] = 0
                account["locked_until"] = now + self.lockout_seconds
                return True
            return False

        return self._change(cell, change)


def _safe_verify(hasher, hashed, password):
    try:
        return hasher.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
