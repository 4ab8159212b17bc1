"""Shared directory fsyncs: writers that renamed files into one directory
at about the same time wait for one ``fsync`` of it instead of one each.

A writer registers once its rename is done, then waits until a sync that
*started after* its registration has finished: the first one to find no
sync running does it for everyone registered so far; the others wait for
it, or for the next one if it had started before they registered. No write
is acknowledged before the fsync that covers its rename (the durable
promise of storage.md is unchanged); what changes is that eight concurrent
PUTs into a collection cost about two directory fsyncs, not eight.
"""
import os
import threading


class _Directory:
    __slots__ = ("registered", "synced", "running")

    def __init__(self):
        self.registered = self.synced = 0
        self.running = False


class DirectorySyncs:
    def __init__(self):
        self._cond = threading.Condition()
        self._dirs = {}  # (st_dev, st_ino) -> _Directory

    def sync(self, fd):
        """fsync the directory open as ``fd``, shared with concurrent callers."""
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        with self._cond:
            d = self._dirs.get(key)
            if d is None:
                d = self._dirs[key] = _Directory()
            d.registered += 1
            mine = d.registered
            while d.synced < mine:
                if d.running:
                    self._cond.wait()
                    continue
                d.running = True
                covered = d.registered
                self._cond.release()
                try:
                    os.fsync(fd)
                finally:
                    self._cond.acquire()
                    d.running = False
                    self._cond.notify_all()
                d.synced = covered
            if not d.running and d.synced == d.registered and self._dirs.get(key) is d:
                del self._dirs[key]  # nobody waits: forget it
