"""Bookkeeping files of the envelope: JSON written atomically under a lock.

Every name holds ``:`` (docs/behaviour.md §3 forbids it in resource names), so no URL can
reach one. A write goes to a temporary file beside the target, is fsynced,
renamed over it, and the directory fsynced: a crash leaves the old file or
the new one. Writers hold ``fcntl.flock`` on a lock file, so several server
processes (and the operator command line) on one data root lose no update.
"""
import json
import os


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
