"""``--workers N``: N server processes sharing the listening sockets and the data root.

The process twistd started (the first worker) binds every ``--listen`` TCP
port itself, then starts N-1 more processes, ``python -m
personium_dav.ops.worker <the same plugin options>``, each handed the
listening sockets (``reactor.spawnProcess`` with ``childFDs``): every
process builds the same Site from the same options and serves connections
from the shared sockets (``reactor.adoptStreamPort``); the kernel hands
each new connection to one of them. They share the data root exactly as
separate servers on one root would: every write takes the store's flocks,
and each process claims an owner id for its temporaries and intent records
(store/owners.py).

The first process supervises the others: a worker that exits is logged
and started again after a delay that doubles from one second up to a
minute while it keeps dying young, and what it left on the data root is
settled at once (``Store.recover``: its intent records, temporaries and
trash). At stop, each gets TERM, then KILL after ten seconds; nothing
blocks the reactor meanwhile. A worker also dies with the first process
(``PR_SET_PDEATHSIG`` on Linux).
"""
import os
import signal
import sys

from twisted.application import service
from twisted.internet import defer, protocol
from twisted.logger import Logger

ENV = "PERSONIUM_DAV_WORKER_FDS"  # "fd:family,..." in --listen order, in the children
STOP_SECONDS = 10.0
FIRST_DELAY, MAX_DELAY = 1.0, 60.0
YOUNG = 30.0  # a worker that dies younger than this doubles the delay

log = Logger()


class _Listening(service.Service):
    """A service owning one listening port, closed when it stops."""

    port = None

    def stopService(self):
        super().stopService()
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()
        return None


class Listener(_Listening):
    """Listen on one TCP strports description (bound in privilegedStartService,
    like strports.service) and keep the port, whose socket the workers share."""

    def __init__(self, description, factory):
        self.description = description
        self.factory = factory
        self.port = None

    def privilegedStartService(self):
        from twisted.internet import endpoints, reactor

        failures = []
        d = endpoints.serverFromString(reactor, self.description).listen(self.factory)
        d.addCallbacks(lambda port: setattr(self, "port", port), failures.append)
        if failures:  # TCP endpoints answer at once: fail the start like strports
            failures[0].raiseException()
        super().privilegedStartService()


class Adopted(_Listening):
    """Serve connections from a listening socket inherited from the first worker."""

    def __init__(self, fd, family, factory):
        self.fd, self.family, self.factory = fd, family, factory
        self.port = None

    def startService(self):
        from twisted.internet import reactor

        super().startService()
        self.port = reactor.adoptStreamPort(self.fd, self.family, self.factory)
        os.close(self.fd)  # adoptStreamPort serves a duplicate of it


class _Worker(protocol.ProcessProtocol):
    """One extra worker process; its output goes to this process's log."""

    def __init__(self, pool, slot):
        self.pool, self.slot = pool, slot
        self.started = None
        self.ended = defer.Deferred()
        self.pid = None

    def connectionMade(self):
        self.pid = self.transport.pid

    def outReceived(self, data):
        sys.stdout.write(data.decode("utf-8", "replace"))
        sys.stdout.flush()

    errReceived = outReceived

    def processEnded(self, reason):
        self.ended.callback(None)
        self.pool.ended(self, reason)

    def signal(self, name):
        try:
            self.transport.signalProcess(name)
        except Exception:  # gone already
            pass


class WorkerPool(service.Service):
    """Start, supervise and stop the N-1 extra worker processes.
    ``recover()`` (a Deferred) settles what a dead worker left."""

    def __init__(self, count, listeners, argv, recover=None, reactor=None):
        self.count, self.listeners, self.argv = count, listeners, list(argv)
        self.recover = recover
        self.reactor = reactor
        self.workers = {}  # slot -> _Worker
        self.delays = {}  # slot -> the delay before the next start
        self.pending = {}  # slot -> the delayed call that will start it

    def startService(self):
        super().startService()
        if self.reactor is None:
            from twisted.internet import reactor

            self.reactor = reactor
        for slot in range(1, self.count):
            self.spawn(slot)

    def spawn(self, slot):
        self.pending.pop(slot, None)
        if not self.running:
            return
        fds = [(lst.port.fileno(), lst.port.addressFamily) for lst in self.listeners]
        env = dict(os.environ)
        env[ENV] = ",".join("%d:%d" % (fd, int(family)) for fd, family in fds)
        # the children import what this process imported
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        child_fds = {0: "w", 1: "r", 2: "r"}
        child_fds.update({fd: fd for fd, _ in fds})
        worker = _Worker(self, slot)
        worker.started = self.reactor.seconds()
        self.reactor.spawnProcess(
            worker, sys.executable, [sys.executable, "-m", "personium_dav.ops.worker",
                                     *self.argv], env=env, childFDs=child_fds)
        self.workers[slot] = worker
        log.info("personium-dav: worker pid {pid} started", pid=worker.pid)

    def ended(self, worker, reason):
        if self.workers.get(worker.slot) is worker:
            del self.workers[worker.slot]
        if self.recover is not None:  # its owner is dead now: settle what it left
            self.recover().addErrback(
                lambda f: log.failure("settling what worker pid {pid} left failed", f,
                                      pid=worker.pid))
        if not self.running:
            log.info("personium-dav: worker pid {pid} stopped", pid=worker.pid)
            return
        young = self.reactor.seconds() - worker.started < YOUNG
        delay = self.delays.get(worker.slot, FIRST_DELAY) if young else FIRST_DELAY
        self.delays[worker.slot] = min(delay * 2, MAX_DELAY)
        log.warn("personium-dav: worker pid {pid} exited ({why}); restarting it in {d:g} s",
                 pid=worker.pid, why=reason.value, d=delay)
        self.pending[worker.slot] = self.reactor.callLater(delay, self.spawn, worker.slot)

    def stopService(self):
        super().stopService()
        for call in self.pending.values():
            call.cancel()
        self.pending.clear()
        workers = list(self.workers.values())
        for worker in workers:
            worker.signal("TERM")
        kill = self.reactor.callLater(STOP_SECONDS, lambda: [w.signal("KILL") for w in workers])
        done = defer.DeferredList([w.ended for w in workers])
        done.addCallback(lambda _: kill.active() and kill.cancel())
        return done


def inherited():
    """[(fd, family)] handed to this process by the first worker, or None."""
    value = os.environ.get(ENV)
    if not value:
        return None
    return [tuple(int(x) for x in item.split(":")) for item in value.split(",")]


def die_with_parent():
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
