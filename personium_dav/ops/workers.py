"""``--workers N``: N server processes sharing the listening sockets and the data root.

The process twistd started (the first worker) binds every ``--listen`` TCP
port itself, then starts N-1 more processes, ``python -m personium_dav.ops.workers
<the same plugin options>``, each inheriting the listening sockets: every
process builds the same Site from the same options and serves connections
from the shared sockets (``reactor.adoptStreamPort``); the kernel hands each
new connection to one of them. They share the data root exactly as separate
servers on one root would: writes take the per-collection ``flock``, a
transaction reads its sidecar from disk under that lock, and group commit
(``store.group``) batches within one process.

The extra processes run as the user twistd runs the first one as (they start
after it has dropped privileges), log to the same standard output, die with
it (``PR_SET_PDEATHSIG`` on Linux), and are stopped with it: TERM, then KILL
after ten seconds. A worker that exits is not restarted.
"""
import os
import signal
import subprocess
import sys

from twisted.application import service
from twisted.logger import Logger

ENV = "PERSONIUM_DAV_WORKER_FDS"  # "fd:family,..." in --listen order, in the children
STOP_SECONDS = 10.0

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


class WorkerPool(service.Service):
    """Start (in startService) and stop the N-1 extra worker processes."""

    def __init__(self, count, listeners, argv):
        self.count, self.listeners, self.argv = count, listeners, list(argv)
        self.processes = []

    def startService(self):
        super().startService()
        fds = [(lst.port.fileno(), lst.port.addressFamily) for lst in self.listeners]
        env = dict(os.environ)
        env[ENV] = ",".join("%d:%d" % (fd, int(family)) for fd, family in fds)
        # the children import what this process imported
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        command = [sys.executable, "-m", "personium_dav.ops.workers", *self.argv]
        for _ in range(self.count - 1):
            process = subprocess.Popen(command, env=env, pass_fds=[fd for fd, _ in fds],
                                       stdin=subprocess.DEVNULL)
            self.processes.append(process)
            log.info("personium-dav: worker pid {pid} started", pid=process.pid)

    def stopService(self):
        super().stopService()
        processes, self.processes = self.processes, []
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.info("personium-dav: worker pid {pid} stopped", pid=process.pid)


def inherited():
    """[(fd, family)] handed to this process by the first worker, or None."""
    value = os.environ.get(ENV)
    if not value:
        return None
    return [tuple(int(x) for x in item.split(":")) for item in value.split(",")]


def _die_with_parent():
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv=None):
    """A worker process: the plugin options, the sockets from the environment."""
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from personium_dav.ops import tap

    _die_with_parent()
    parent = os.getppid()
    options = tap.Options()
    options.parseOptions(sys.argv[1:] if argv is None else argv)
    top = tap.makeService(options)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    if os.getppid() != parent:  # the first worker is gone already
        return 1
    top.privilegedStartService()
    top.startService()
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())

