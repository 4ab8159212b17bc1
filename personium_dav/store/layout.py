"""How the data root looks on disk.

    DATA/{cell}/{box}/...      a box: collections are directories, files files
    DIR/:props.xml             a collection's sidecar (its own and its files' properties)
    DIR/:lock                  the collection's lock file (fcntl.flock), holding its member count
    DATA/:tmp/                 bodies and collections being built ({owner}.{uuid})
    DATA/:trash/               what is being deleted or was moved aside ({owner}.{uuid})
    DATA/:owners/{owner}       one per live server process, flocked while it lives
    DATA/:journal/             intents of replacing MOVE/COPY ({owner}.{uuid}.json)

Every bookkeeping name holds ``:``, which no resource name may (docs/behaviour.md §3), so
no URL can ever reach one. A name whose UTF-8 form is too long for one file
name is stored as ``:h`` + its SHA-256, and its real name is kept in the
entry's extended attribute. A file's version, times and content type live in
the extended attribute ``user.pdav`` of the file itself, written before the
file is renamed into place, so they change atomically with its bytes, and
so does its id (``i``), which ties it to its entry in the sidecar.
"""
import errno
import hashlib
import json
import os
import secrets
import tempfile

SIDECAR = ":props.xml"
SIDECAR_TMP = ":props.tmp"
LOCK = ":lock"
TMP = ":tmp"
TRASH = ":trash"
OWNERS = ":owners"
JOURNAL = ":journal"
HASHED = ":h"
XATTR = "user.pdav"
MAX_DISK_NAME = 240  # bytes; most filesystems stop at 255
# A stat is trusted as a cache key only once its ctime is this much older than
# the clock: a fresh inode gets a coarse timestamp (a kernel tick, up to a
# second on some filesystems) and inode numbers are reused at once, so a file
# replaced within that tick can repeat (inode, ctime, size) exactly.
SETTLE_NS = 2 * 10**9


def settled(st, now_ns):
    """Can ``st`` serve as a cache key? (see SETTLE_NS)"""
    return st.st_ctime_ns < now_ns - SETTLE_NS


def disk_name(name):
    if len(name) <= MAX_DISK_NAME // 4:  # 4 bytes a character at most: short enough
        return name
    raw = name.encode("utf-8")
    if len(raw) <= MAX_DISK_NAME:
        return name
    return HASHED + hashlib.sha256(raw).hexdigest()


def is_bookkeeping(disk):
    return disk.startswith(":")


_decode = json.JSONDecoder().decode  # json.loads minus its per-call set-up


# getxattr errors that mean "no metadata here"; any other (EIO, ENOTCONN:
# the file system failing) is raised, never read as a file without metadata
# (which would show another version, type and ETag)
_NO_META = frozenset((errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOENT,
                      errno.ENOTDIR))


def read_meta(path):
    """The ``user.pdav`` metadata of a file or directory ({} when absent)."""
    try:
        return _decode(os.getxattr(path, XATTR).decode("utf-8"))
    except ValueError:
        return {}
    except OSError as e:
        if e.errno in _NO_META:
            return {}
        raise


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def write_meta(path, meta):
    os.setxattr(path, XATTR, _encode(meta).encode())


def new_fid():
    """A file id: ties a file to its entry in its collection's sidecar."""
    return secrets.token_urlsafe(9)


def real_name(directory, disk):
    """The resource name of a directory entry (None for bookkeeping files).
    A hashed entry keeps its name in ``n``, and while a MOVE renames it, its
    previous name in ``n0``: the one whose hash is the disk name is right."""
    if not disk.startswith(":"):
        return disk
    if disk.startswith(HASHED):
        meta = read_meta(os.path.join(directory, disk))
        for name in (meta.get("n"), meta.get("n0")):
            if isinstance(name, str) and disk_name(name) == disk:
                return name
    return None


_COUNT_SIZE = 96  # bytes of the record: always written whole, at offset 0


def read_count(directory):
    """(members, directory key) recorded in a collection's lock file, or None."""
    try:
        fd = os.open(os.path.join(directory, LOCK), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fields = os.pread(fd, _COUNT_SIZE, 0).split()
    finally:
        os.close(fd)
    try:
        count, *key = (int(f) for f in fields)
    except ValueError:
        return None
    return (count, tuple(key)) if len(key) == 3 else None


def write_count(directory, count, key):
    """Record a collection's member count with its directory's stat key (a
    hint, never fsynced: a record that does not match the key is ignored)."""
    record = (b"%d %d %d %d\n" % (count, *key)).ljust(_COUNT_SIZE)
    fd = os.open(os.path.join(directory, LOCK), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, record, 0)
    finally:
        os.close(fd)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_xattrs(directory):
    """Refuse a data root on a filesystem without user extended attributes.
    The probe's name is unique: several processes may start on one root at
    once (``--workers``, or servers started together)."""
    fd, probe = tempfile.mkstemp(prefix=":xattr-probe-", dir=directory)
    os.close(fd)
    try:
        write_meta(probe, {})
    except OSError as e:
        raise RuntimeError(
            "the data root %s is on a filesystem without user extended attributes "
            "(%s); use ext4, xfs, btrfs or tmpfs" % (directory, e))
    finally:
        os.remove(probe)
