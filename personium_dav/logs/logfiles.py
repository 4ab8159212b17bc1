"""Append-only log files shared by several server processes (``--workers``).

A line is one ``write(2)`` on a file opened with ``O_APPEND``, so lines from
several processes never overwrite each other (twisted's ``LogFile`` seeks to
the end once and keeps its own offset). Rotation by size keeps the names of
``LogFile`` (``NAME.1`` the newest rotated file ... ``NAME.N``): the
process that finds the file over the limit renames it under an ``flock`` of
the file, after checking that nobody rotated it first; the others notice the
new file within a second and reopen it.
"""
import errno
import fcntl
import os
import queue
import threading
import time

from twisted.logger import Logger

_log = Logger()

RECHECK = 1.0  # seconds between checks that the path still names our file


class AppendLog:
    def __init__(self, path, rotate_length=10 * 1024 * 1024, max_rotated=10, mode=0o600):
        self.path = path
        self.rotate_length = rotate_length
        self.max_rotated = max_rotated
        self.mode = mode
        self._fd = None
        self._open()

    def _open(self):
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, self.mode)
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass  # a descriptor of a mount that is gone
        self._fd = fd
        st = os.fstat(fd)
        self._inode, self.size = (st.st_dev, st.st_ino), st.st_size
        self._next_check = time.monotonic() + RECHECK

    def write(self, text):
        data = text.encode("utf-8") if isinstance(text, str) else text
        now = time.monotonic()
        if self.size >= self.rotate_length or now >= self._next_check:
            self._check(now)
        try:
            os.write(self._fd, data)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
            # a descriptor the file system no longer answers (a remounted
            # shared mount): open the path again, once
            self._open()
            os.write(self._fd, data)
        self.size += len(data)

    def flush(self):
        pass  # every line is written at once

    def _check(self, now):
        """Reopen when another process rotated; rotate when over the limit."""
        self._next_check = now + RECHECK
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self._open()
        if (st.st_dev, st.st_ino) != self._inode:
            return self._open()
        self.size = st.st_size
        if self.size < self.rotate_length:
            return None
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            try:  # again, under the lock: rotated meanwhile?
                st = os.stat(self.path)
            except FileNotFoundError:
                st = None
            if (st is not None and (st.st_dev, st.st_ino) == self._inode
                    and st.st_size >= self.rotate_length):
                self._rotate()
                # the new file exists before the lock is released, so a
                # process that waited for the lock finds a file to stat
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, self.mode))
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        return self._open()

    def _rotate(self):
        oldest = "%s.%d" % (self.path, self.max_rotated)
        if os.path.exists(oldest):
            os.remove(oldest)
        for i in range(self.max_rotated - 1, 0, -1):
            name = "%s.%d" % (self.path, i)
            if os.path.exists(name):
                os.rename(name, "%s.%d" % (self.path, i + 1))
        os.rename(self.path, self.path + ".1")

    def close(self):
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError:
                pass  # a descriptor of a mount that is gone


class Background:
    """Calls made one after the other by a thread of its own, for log lines
    on a shared mount: a write there may block for as long as the mount
    does not answer, and must not block the reactor. At most ``limit``
    calls wait; past that a call is dropped and counted (``dropped``)."""

    def __init__(self, name, limit=10000):
        self._queue = queue.Queue(limit)
        self.dropped = 0
        self.failed = 0
        self._quiet_until = 0.0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def call(self, function, *args):
        try:
            self._queue.put_nowait((function, args))
        except queue.Full:
            self.dropped += 1

    def _run(self):
        while True:
            function, args = self._queue.get()
            if function is None:
                return
            try:
                function(*args)
            except Exception:
                self.failed += 1
                now = time.monotonic()
                if now >= self._quiet_until:  # one report per 10 s, not one per line
                    self._quiet_until = now + 10
                    _log.failure("a background log write failed ({n} so far)", n=self.failed)

    def close(self, timeout=2.0):
        """Write what waits (for at most ``timeout`` seconds), then stop."""
        try:
            self._queue.put((None, ()), timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)
