"""The lock table of a box: its WebDAV write locks (RFC 4918 §6, §7) on disk.

    DATA/{cell}/{box}/:locks.json   the table
    DATA/{cell}/{box}/:locks.lock   its flock (the table file itself is replaced)
    DATA/{cell}/{box}/:locks.tmp    the next table, while it is being written

A lock names the resource it is rooted at by its names below the box, so it
covers URLs: a depth-infinity lock on a collection covers members created
later, and a resource moved away leaves its locks behind (the methods drop
them). Every bookkeeping name holds ``:``, so no URL reaches the table.

Writers (every request that writes in the box) hold the flock shared while
they check the locks and write; LOCK, UNLOCK and the writes that remove locks
(DELETE, MOVE) hold it exclusive, and only they change the table: the check
and the write are atomic with respect to a new lock, across threads and
server processes. A change writes ``:locks.tmp`` (fsynced), renames it over
``:locks.json`` and fsyncs the directory, so a crash leaves the old table or
the new one; a leftover ``:locks.tmp`` is never read. Expired locks are
ignored by readers and pruned at the next change. Readers without the flock
(PROPFIND) use a cache revalidated on (inode, mtime_ns, size); holders
always read the bytes.
"""
import contextlib
import fcntl
import json
import os
import time
import uuid
from dataclasses import dataclass

from ..flocks import unlock_and_close
from . import layout

TABLE = ":locks.json"
TABLE_LOCK = ":locks.lock"
TABLE_TMP = ":locks.tmp"
FORMAT = 1


class CorruptLockTable(Exception):
    """A lock table that cannot be read (not JSON, unknown format)."""


def new_token():
    return "urn:uuid:" + str(uuid.uuid4())


@dataclass(frozen=True)
class Lock:
    token: str
    root: tuple  # the names below the box of the resource it is rooted at
    collection: bool  # the root was a collection when locked (for its href)
    depth: str  # "0" or "infinity"
    scope: str  # "exclusive" or "shared"
    owner: str  # the D:owner element as sent (XML), "" when none
    principal: str  # who took it (locking.identity)
    timeout: int  # seconds granted by the last LOCK or refresh
    expires: float  # seconds since the epoch (the table's clock)

    def covers(self, names):
        """Is the URL at ``names`` in the scope of this lock?"""
        n = len(self.root)
        return tuple(names[:n]) == self.root and (len(names) == n or self.depth == "infinity")

    def below(self, names, strict=False):
        """Is the lock rooted at ``names`` (unless ``strict``) or under it?"""
        n = len(names)
        return self.root[:n] == tuple(names) and (len(self.root) > n or not strict)

    def conflicts(self, other):
        """Can ``other`` (a requested lock) not be granted beside this one?"""
        if self.scope == "shared" and other.scope == "shared":
            return False
        return self.covers(other.root) or other.covers(self.root)


def encode(locks):
    rows = [{"token": lk.token, "root": list(lk.root), "collection": lk.collection,
             "depth": lk.depth, "scope": lk.scope, "owner": lk.owner,
             "principal": lk.principal, "timeout": lk.timeout, "expires": lk.expires}
            for lk in locks]
    return json.dumps({"format": FORMAT, "locks": rows}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def decode(data):
    try:
        doc = json.loads(data.decode("utf-8"))
        if doc.get("format") != FORMAT:
            raise CorruptLockTable("unknown lock table format %r" % doc.get("format"))
        return tuple(Lock(token=r["token"], root=tuple(r["root"]), collection=r["collection"],
                          depth=r["depth"], scope=r["scope"], owner=r["owner"],
                          principal=r["principal"], timeout=r["timeout"],
                          expires=r["expires"]) for r in doc["locks"])
    except CorruptLockTable:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CorruptLockTable(str(e))


class Held:
    """The live locks of a box while its table's flock is held."""

    def __init__(self, locks, exclusive):
        self.locks = list(locks)
        self.exclusive = exclusive
        self.changed = False

    def _change(self):
        if not self.exclusive:
            raise RuntimeError("the lock table is held shared: it cannot change")
        self.changed = True

    def add(self, lock):
        self._change()
        self.locks.append(lock)

    def put(self, lock):
        """Replace the lock of the same token."""
        self._change()
        self.locks = [lock if lk.token == lock.token else lk for lk in self.locks]

    def drop(self, predicate):
        """Remove the locks ``predicate`` selects; the removed ones."""
        gone = [lk for lk in self.locks if predicate(lk)]
        if gone:
            self._change()
            self.locks = [lk for lk in self.locks if not predicate(lk)]
        return gone


def _key(st):
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size


class LockTable:
    """The lock tables of every box under a data root. ``clock`` (seconds
    since the epoch) decides expiry; tests replace it."""

    def __init__(self, root, durable=True, clock=time.time):
        self.root = os.path.abspath(root)
        self.durable = durable
        self.clock = clock
        self._cache = {}  # table path -> (stat key, bytes, locks, settled)

    def _dir(self, cell, box):
        return os.path.join(self.root, cell, box)

    def _live(self, locks):
        now = self.clock()
        return [lk for lk in locks if lk.expires > now]

    def read(self, cell, box):
        """The live locks of a box, without the flock (a table is replaced
        whole, so this sees an old one or a new one)."""
        path = os.path.join(self._dir(cell, box), TABLE)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return []
        hit = self._cache.get(path)
        if hit is not None and hit[3] and hit[0] == _key(st):
            return self._live(hit[2])
        return self._live(self._load(path))

    def _load(self, path):
        """The locks in the file now (parsed only when its bytes changed)."""
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
        except FileNotFoundError:
            return ()
        hit = self._cache.get(path)
        locks = hit[2] if hit is not None and hit[1] == data else decode(data)
        self._remember(path, st, data, locks)
        return locks

    def _remember(self, path, st, data, locks):
        """Cache a table; its stat key is trusted by ``read`` once settled
        (until then ``read`` compares the bytes, as for sidecars)."""
        self._cache[path] = (_key(st), data, locks, layout.settled(st, time.time_ns()))

    @contextlib.contextmanager
    def hold(self, cell, box, exclusive=False):
        """Hold the table's flock and yield a ``Held``; its changes are
        written when the block ends without an exception. ``exclusive`` is a
        bool, or a function of the live locks saying whether they must change
        (then the flock is exclusive only when they must)."""
        directory = self._dir(cell, box)
        path = os.path.join(directory, TABLE)
        wanted = exclusive
        if callable(exclusive):
            wanted = exclusive(self.read(cell, box))
        fd = os.open(os.path.join(directory, TABLE_LOCK), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wanted else fcntl.LOCK_SH)
            locks = self._live(self._load(path))
            if not wanted and callable(exclusive) and exclusive(locks):
                wanted = True  # a lock came meanwhile; converting is not atomic: read again
                fcntl.flock(fd, fcntl.LOCK_EX)
                locks = self._live(self._load(path))
            held = Held(locks, wanted)
            yield held
            if held.changed:
                self._write(directory, path, held.locks)
        finally:
            unlock_and_close(fd)

    def _write(self, directory, path, locks):
        data = encode(self._live(locks))  # expired ones are pruned
        tmp = os.path.join(directory, TABLE_TMP)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                if self.durable:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:  # a full disk: the old table stays
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        if self.durable:
            layout.fsync_dir(directory)
        self._remember(path, os.stat(path), data, decode(data))
