"""Thread pools by purpose: blocking work never runs on the reactor, and no
kind of it can starve another.

* ``store``: the box API's writes and small reads (flock waits included);
* ``reads``: what may take long without writing: PROPFIND listings, a
  sidecar parsed on a cache miss.

(Password checks have a pool of their own, owned by ``auth``: argon2 costs
64 MiB a check, so made-up logins only ever queue behind each other.)

Each pool is a ``twisted.python.threadpool.ThreadPool`` of its own, started
when the ``Pools`` is made and stopped by ``stop`` (the server's owner calls
it at shutdown); work goes in with ``deferToThreadPool``.
"""
import errno
import threading

from twisted.internet import reactor as default_reactor
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from ..dav.errors import DavError

SIZES = {"store": 16, "reads": 4}


class Pools:
    def __init__(self, sizes=None, reactor=None):
        self.reactor = reactor or default_reactor
        self._pools = {}
        for name, size in {**SIZES, **(sizes or {})}.items():
            pool = ThreadPool(minthreads=0, maxthreads=size, name="personium-dav " + name)
            pool.threadFactory = _daemon  # a script that never stops them still exits
            pool.start()
            self._pools[name] = pool

    def run(self, kind, work, *args, **kwargs):
        """``work(*args)`` in the pool ``kind``; a Deferred of its result. A
        full disk becomes 503 ``PR503-SV-0005``."""
        d = deferToThreadPool(self.reactor, self._pools[kind], work, *args, **kwargs)
        d.addErrback(_disk_errors)
        return d

    def store(self, work, *args, **kwargs):
        return self.run("store", work, *args, **kwargs)

    def reads(self, work, *args, **kwargs):
        return self.run("reads", work, *args, **kwargs)

    def pool(self, kind):
        return self._pools[kind]

    def stop(self):
        for pool in self._pools.values():
            pool.stop()


def _daemon(*args, **kwargs):
    return threading.Thread(*args, daemon=True, **kwargs)


def _disk_errors(failure):
    error = failure.check(OSError) and failure.value
    if error and error.errno in (errno.ENOSPC, errno.EDQUOT):
        raise DavError("PR503-SV-0005")
    return failure
