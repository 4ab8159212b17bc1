"""Exclusive flocks that are released even on a shared mount.

Every writer of the data root (the store's collections, usage ledgers and
lock tables, the envelope's bookkeeping files) holds ``fcntl.flock`` on a
lock file; this module is the one place that takes and releases them.
"""
import contextlib
import errno
import fcntl
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
