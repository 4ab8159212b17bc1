"""How many bytes a box holds, and the quota its operator set on them.

    DATA/{cell}/{box}/:usage    the running total, and its flock
    DATA/{cell}/{box}/:quota    the quota in bytes (absent: none), set by the operator

The total is kept, never counted on a write: every write of the box API that
puts, removes or moves files (PUT, DELETE, COPY, MOVE, LOCK of an unmapped
URL) holds the flock of ``:usage`` across its change of the tree, as the
last lock it takes, checks the quota there, and records the new total
before it lets go. So processes sharing a data root never lose an update,
and a recount that holds the flock sees a tree no one is changing.

A write first marks the record pending, then changes the tree, then records
the total unmarked. A writer that dies in between (or fails half-way)
leaves the mark; whoever takes the flock next finds it and recounts the box
(as for a missing record). Counted are the bytes of the box's files (every
member file, ``__src`` sources included); directories, sidecars and
extended attributes are not. The record is not fsynced: after a power
loss the operator recounts (``python -m personium_dav box quota CELL BOX
--recount``).
"""
import contextlib
import fcntl
import os
import re
import stat

from ..flocks import unlock_and_close
from ..dav.errors import DavError
from . import layout

USAGE = ":usage"
QUOTA = ":quota"
QUOTA_TMP = ":quota.tmp"
_RECORD = 64  # bytes of the record, always written whole at offset 0
_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4, "P": 1024 ** 5}
_SIZE = re.compile(r"(\d{1,18})(?:\.(\d{1,6}))?\s*([KMGTP]?)(?:I?B)?", re.I | re.A)


def parse_size(text):
    """Bytes of a quota as an operator writes it: ``10G``, ``500MiB``,
    ``1.5T``, ``123`` (binary multiples); None for ``0`` or ``none`` (no
    quota). ValueError for anything else."""
    text = text.strip()
    if text.lower() == "none":
        return None
    m = _SIZE.fullmatch(text)
    if m is None:
        raise ValueError("not a size: %r (examples: 10G, 500M, 1.5T, 0, none)" % text)
    whole, fraction, unit = m.groups()
    unit_bytes = _UNITS[unit.upper()]
    size = int(whole) * unit_bytes
    if fraction:
        size += int(fraction) * unit_bytes // 10 ** len(fraction)
    return size or None


def file_bytes(path):
    """The bytes of the files of a collection's tree (or of one file):
    member files only, never a symlink or bookkeeping file."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    if not stat.S_ISDIR(st.st_mode):
        return 0
    total = 0
    with os.scandir(path) as it:
        for de in it:
            if layout.is_bookkeeping(de.name) and not de.name.startswith(layout.HASHED):
                continue
            if de.is_dir(follow_symlinks=False):
                total += file_bytes(de.path)
            elif de.is_file(follow_symlinks=False):
                total += de.stat(follow_symlinks=False).st_size
    return total


class Usage:
    """The usage and quota of one box (``box_dir``)."""

    def __init__(self, box_dir):
        self.box_dir = box_dir
        self.path = os.path.join(box_dir, USAGE)

    def quota(self):
        """The quota in bytes, or None."""
        try:
            with open(os.path.join(self.box_dir, QUOTA), "rb") as f:
                value = f.read(64).strip()
        except FileNotFoundError:
            return None
        return int(value) if value.isdigit() and int(value) > 0 else None

    def set_quota(self, size):
        """Set (an int) or remove (None) the quota: the file replaced at once."""
        path = os.path.join(self.box_dir, QUOTA)
        if size is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return
        tmp = os.path.join(self.box_dir, QUOTA_TMP)
        with open(tmp, "w") as f:
            f.write("%d\n" % size)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        layout.fsync_dir(self.box_dir)

    def used(self):
        """The bytes the box holds (recounted first when there is no good record)."""
        recorded = self.peek()
        if recorded is not None:
            return recorded
        with self.change() as held:
            return held.used

    def recount(self):
        """Count the box again (the operator's command); the new total."""
        with self.change(recount=True) as held:
            return held.used

    @contextlib.contextmanager
    def change(self, recount=False):
        """Hold the flock of ``:usage``; a ``Held`` to check and record with."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield Held(self, fd, recount)
        finally:
            unlock_and_close(fd)

    def peek(self):
        """The recorded total, read without the flock; None when missing or pending."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:  # a pending record's total is the one before the write in progress
            return _parse(os.pread(fd, _RECORD, 0))[0]
        finally:
            os.close(fd)


class Held:
    """The usage of a box while its flock is held."""

    def __init__(self, usage, fd, recount=False):
        self._usage, self._fd = usage, fd
        used, pending = _parse(os.pread(fd, _RECORD, 0))
        if used is None or pending or recount:
            used = file_bytes(usage.box_dir)
            self._write(used)
        self.used = used
        self.quota = usage.quota()

    def room(self, delta):
        """507 ``PR507-DV-0001`` when ``delta`` more bytes would pass the
        quota (a write that frees bytes is always let through)."""
        if delta > 0 and self.quota is not None and self.used + delta > self.quota:
            raise DavError("PR507-DV-0001")

    @contextlib.contextmanager
    def charge(self, delta):
        """Around a change of the tree that adds ``delta`` bytes (negative:
        frees them): checked first, marked pending while it runs, recorded
        after. A change that fails leaves the mark: the next holder recounts."""
        self.room(delta)
        self._write(self.used, pending=True)
        yield
        self.used = max(self.used + delta, 0)
        self._write(self.used)

    def _write(self, used, pending=False):
        record = (b"%d%s\n" % (used, b" pending" if pending else b"")).ljust(_RECORD)
        os.pwrite(self._fd, record, 0)


def _parse(raw):
    """(used, pending) of a record; (None, False) when it is not one."""
    fields = raw.split()
    if not fields or not fields[0].isdigit() or len(fields) > 2:
        return None, False
    if len(fields) == 2 and fields[1] != b"pending":
        return None, False
    return int(fields[0]), len(fields) == 2
