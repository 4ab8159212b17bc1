"""Thread pools by purpose: blocking work never runs on the reactor, and no
kind of it can starve another.

* ``store``: the box API's writes and small reads (flock waits included);
* ``reads``: what may take long without writing: PROPFIND listings, a
  sidecar parsed on a cache miss, resolution on a shared mount.

(Password checks have a pool of their own, owned by ``auth``: argon2 costs
64 MiB a check, so made-up logins only ever queue behind each other.)

Each pool is a ``twisted.python.threadpool.ThreadPool`` of its own, started
when the ``Pools`` is made and stopped by ``stop`` (the server's owner calls
it at shutdown); work goes in with ``deferToThreadPool``.

A file system that stops answering (a shared mount whose metadata engine is
gone blocks every call for up to a minute) must not stop the server
answering, so each pool is bounded twice:

* a **deadline** (``deadline`` seconds, ``--store-timeout``): a request whose
  work has not finished by then answers 503 ``PR503-SV-0007``. Work still
  queued then is never started (the 503 is true: nothing was done); work
  already running cannot be stopped and may still complete (like any
  request whose answer was lost: every write is atomic);
* a **queue bound** (``QUEUED`` times the pool's threads, running work
  included, until it really ends): past it, 503 at once, nothing queued.

Errors of the file system itself (EIO, ENOTCONN, ESTALE...) answer 503
``PR503-SV-0006``, a full disk 503 ``PR503-SV-0005``.
"""
import errno
import threading

from twisted.internet import defer
from twisted.internet import reactor as default_reactor
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from ..dav.errors import DavError
from ..store import mounts

SIZES = {"store": 16, "reads": 4}
QUEUED = 4  # work items a pool takes per thread (running ones included)
RETRY_AFTER = {"Retry-After": "5"}


class Pools:
    def __init__(self, sizes=None, reactor=None, deadline=None):
        self.reactor = reactor or default_reactor
        self.deadline = deadline  # seconds, or None for none
        self._pools = {}
        self._limits = {}
        self._busy = {}
        self._lock = threading.Lock()
        for name, size in {**SIZES, **(sizes or {})}.items():
            pool = ThreadPool(minthreads=0, maxthreads=size, name="personium-dav " + name)
            pool.threadFactory = _daemon  # a script that never stops them still exits
            pool.start()
            self._pools[name] = pool
            self._limits[name] = size * QUEUED
            self._busy[name] = 0

    def run(self, kind, work, *args, **kwargs):
        """``work(*args)`` in the pool ``kind``; a Deferred of its result
        (or of the 503 that a full queue, a passed deadline or a failing
        file system answers)."""
        with self._lock:
            if self._busy[kind] >= self._limits[kind]:
                return defer.fail(DavError("PR503-SV-0007", headers=RETRY_AFTER))
            self._busy[kind] += 1
        expired = []

        def guarded():
            try:
                if expired:  # its request has answered 503 already: not started
                    raise DavError("PR503-SV-0007", headers=RETRY_AFTER)
                return work(*args, **kwargs)
            finally:
                with self._lock:
                    self._busy[kind] -= 1

        d = deferToThreadPool(self.reactor, self._pools[kind], guarded)
        if self.deadline:
            d.addTimeout(self.deadline, self.reactor,
                         onTimeoutCancel=lambda result, timeout: _late(expired))
        d.addErrback(storage_errors)
        return d

    def store(self, work, *args, **kwargs):
        return self.run("store", work, *args, **kwargs)

    def reads(self, work, *args, **kwargs):
        return self.run("reads", work, *args, **kwargs)

    def pool(self, kind):
        return self._pools[kind]

    def busy(self, kind):
        """Work items of ``kind`` queued or running now."""
        return self._busy[kind]

    def stop(self):
        for pool in self._pools.values():
            pool.stop()


def _late(expired):
    expired.append(True)
    raise DavError("PR503-SV-0007", headers=RETRY_AFTER)


def _daemon(*args, **kwargs):
    return threading.Thread(*args, daemon=True, **kwargs)


def as_dav_error(error):
    """The 503 a file-system error answers, or None for any other error."""
    if isinstance(error, mounts.Unavailable):
        return DavError("PR503-SV-0006", headers=RETRY_AFTER)
    if isinstance(error, OSError):
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            return DavError("PR503-SV-0005")
        if mounts.is_unavailable(error):
            return DavError("PR503-SV-0006", headers=RETRY_AFTER)
    return None


def storage_errors(failure):
    mapped = as_dav_error(failure.value)
    if mapped is not None:
        raise mapped
    return failure
