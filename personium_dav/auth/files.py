"""Bookkeeping files of the envelope: JSON written atomically under a lock.

Every name holds ``:`` (docs/behaviour.md §3 forbids it in resource names), so no URL can
reach one. A write goes to a temporary file beside the target, is fsynced,
renamed over it, and the directory fsynced: a crash leaves the old file or
the new one. Writers hold ``fcntl.flock`` on a lock file, so several server
processes (and the operator command line) on one data root lose no update.
"""
import contextlib
import errno
import fcntl
import json
import os
import time

# unlock errors that say the metadata engine of a shared mount is away (tried again)
UNLOCK_RETRIED = frozenset((errno.EIO, errno.ETIMEDOUT))
UNLOCK_PATIENCE = 600.0  # seconds an unlock is tried again before it is given up


@contextlib.contextmanager
def flocked(lock_path):
    """Hold an exclusive flock on ``lock_path`` (created 0600 when missing)."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        unlock_and_close(fd)


def unlock_and_close(fd, patience=UNLOCK_PATIENCE, sleep=time.sleep):
    """Release the flock of ``fd`` (held, or asked for), then close it.

    Closing alone releases a flock, but on JuiceFS the release that
    close(2) implies is sent after close returns, and when the metadata
    engine does not answer then it is dropped: the engine keeps the lock
    for as long as that mount lives, and every writer of the directory, on
    every host, waits for it (docs/scale-out.md, "Flocks when the
    metadata engine comes back"). An explicit ``LOCK_UN`` reports the
    failure, so it is tried again while the error says the engine is away
    (``EIO``, ``ETIMEDOUT``), for up to ``patience`` seconds; any other
    error is not retried (a dead FUSE daemon's locks go with its session).
    It is sent when ``LOCK_EX`` failed too: the engine may have recorded a
    lock whose answer was lost. On a local disk it is one cheap call."""
    try:
        deadline = time.monotonic() + patience
        delay = 0.1
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
                return
            except OSError as e:
                if e.errno not in UNLOCK_RETRIED or time.monotonic() >= deadline:
                    return
            sleep(delay)
            delay = min(delay * 2, 2.0)
    finally:
        os.close(fd)


def read_json(path, default=None):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        return default


def stat_key(st):
    """What tells one version of a file from another without reading it."""
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def write_atomic(path, data, mode=0o600, durable=True):
    """Replace ``path`` with ``data`` (bytes): temp + fsync + rename.

    The new file's mtime is later than the old one's, to the nanosecond
    (set so when the clock's tick has not moved on): a reader that
    revalidates a cached copy on ``stat_key`` can never take a new version
    for an old one, even when the inode number comes back and the size is
    the same (as for a raised generation)."""
    directory = os.path.dirname(path)
    try:
        before = os.stat(path).st_mtime_ns
    except FileNotFoundError:
        before = None
    tmp = path + ".tmp"  # callers hold the lock: one writer at a time
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if before is not None and os.stat(tmp).st_mtime_ns <= before:
            os.utime(tmp, ns=(before + 1, before + 1))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if durable:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def write_json(path, value, durable=True):
    data = json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
    write_atomic(path, data + b"\n", durable=durable)
