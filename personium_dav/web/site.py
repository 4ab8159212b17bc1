"""The embedding API: a resource for any twisted.web tree, or a whole Site."""
import ipaddress
import os

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web.http import datetimeToLogString
from twisted.web.server import Site

from ..auth import Auth
from ..auth.logins import is_trusted, parse_networks
from ..config import Config, node_of
from ..engine import SPARE, ScriptPool
from ..engine.sources import Sources
from ..logs.eventlog import EventLog
from ..logs.logfiles import AppendLog, Background
from ..store import mounts
from .pools import Pools
from ..store.box import Store
from ..store.journal import remove
from .envelope import Envelope, access_log_formatter
from .request import DavChannel, requestFactoryFor
from .resources import DavRoot

_log = Logger()


class Server:
    """The state every request shares: the settings, the box store (the
    tree on disk, lock tables, journal, privilege policy), the thread pools,
    and the request envelope (accounts, tokens, the token checker, the event
    log). ``close`` releases it (pools, the store's claim on its temporaries);
    a reactor shutdown does too."""

    def __init__(self, data_root, config, checker=None, policy=None, reactor=None):
        self._config = config
        root = os.path.abspath(data_root)
        # the mount is judged before anything is written there (the secret)
        mount = mounts.check(root, config.shared_mount_consistent)
        self.auth = Auth(root, config, checker=checker, policy=policy, shared=mount.shared)
        self.store = Store(root, config, self.auth.policy, mount=mount)
        self.store.recover()
        self.pools = Pools(reactor=reactor, deadline=config.store_timeout)
        # on a shared mount a log line is written by a thread of its own: a
        # write there may block while the mount does not answer
        self.events = EventLog(root, config.event_log_size, config.event_log_files,
                               queued=self.store.shared,
                               node=node_of(config) if self.store.shared else None)
        self.envelope = Envelope(self.auth.checker, self.auth.policy, self.events)
        self.sources = Sources()
        self._scripts = self._scripts_dir = self._scripts_stopped = None
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        self._shutdown = reactor.addSystemEventTrigger("during", "shutdown", self.close)
        # the reactor waits for a Deferred only in the "before" phase: the
        # script workers are stopped (and reaped) there
        self._before = reactor.addSystemEventTrigger("before", "shutdown", self.stop_scripts)

    @property
    def config(self):
        return self._config

    @config.setter
    def config(self, config):
        """New settings take effect at once (the store reads them per operation)."""
        self._config = self.store.config = config

    def scripts(self):
        """The ``ScriptPool`` running service scripts, started at the first
        call (each server process has its own); None when execution is off
        (``script_workers`` 0). Once stopped, it answers every call
        PR500-SC-0001."""
        if self._scripts is None:
            config = self.config
            if config.script_workers <= 0 or self._scripts_stopped is not None:
                return None
            self._scripts_dir = self.store.scripts_dir()
            self._scripts = ScriptPool(config.script_workers, config.script_timeout,
                                       config.script_memory, self._scripts_dir,
                                       reactor=self._reactor,
                                       http_allow=config.script_http_allow,
                                       spare=SPARE)
            self._scripts.start()
        return self._scripts

    def stop_scripts(self):
        """Stop the script workers (calls then answer PR500-SC-0001); a
        Deferred that fires once they have exited and their folder is gone."""
        if self._scripts_stopped is None:
            pool = self._scripts
            if pool is None:
                self._scripts_stopped = defer.succeed(None)
            else:
                self._scripts_stopped = pool.stop().addBoth(
                    lambda _: remove(self._scripts_dir))
        done = defer.Deferred()
        self._scripts_stopped.addBoth(lambda outcome: done.callback(None) or outcome)
        return done

    def close(self):
        """Release everything; a Deferred that fires once the script workers
        have exited (trial's clean-ups and a reactor shutdown wait for it)."""
        if self._shutdown is None:
            return None
        trigger, self._shutdown = self._shutdown, None
        for trigger in (trigger, self._before):
            try:
                self._reactor.removeSystemEventTrigger(trigger)
            except (ValueError, KeyError):
                pass  # it is running now
        stopped = self.stop_scripts()
        self.pools.stop()
        self.auth.close()
        self.store.close()
        self.events.close()
        return stopped


def makeResource(data_root, config=None, checker=None, policy=None):
    """An ``IResource`` serving the cells under ``data_root``.

    ``putChild`` it anywhere: every href it writes carries the prefix it is
    mounted at. ``config`` is a ``personium_dav.config.Config``. ``checker``
    (an ``ITokenChecker``) and ``policy`` (an ``IPrivilegePolicy``) replace
    the built-in authentication and ACL evaluation (docs/security.md).
    """
    return DavRoot(Server(data_root, config or Config(), checker, policy))


class DavSite(Site):
    """A Site whose channels are ``DavChannel`` and whose access log, when
    it has a path, is an ``AppendLog``: one ``write(2)`` a line, rotated by
    size, shared safely by ``--workers``. (twisted.web's own path for a Site
    without one goes through the logging system, which costs more than
    answering a small GET.)"""

    # a plain HTTP/1.1 channel (twisted's default wraps it to negotiate
    # HTTP/2 over TLS, which needs the h2 package this server does not use)
    protocol = DavChannel

    def __init__(self, resource, access_log=None, rotate_length=10 * 1024 * 1024,
                 max_rotated=10, config=None, queued=False, **kwargs):
        super().__init__(resource, **kwargs)
        self.config = config or Config()
        self.connections = {}  # client address -> open connections
        self._trusted = None
        self.accessLogPath = access_log
        self.accessLog = None
        # a log on a shared mount is written by a thread of its own
        self._queued = queued
        self._background = None
        self._rotation = rotate_length, max_rotated
        self._second = self._stamp = None

    def admit(self, peer):
        """Count a new connection of ``peer``; False when its address holds
        ``--max-connections-per-address`` open already (a trusted proxy,
        which carries many clients, has no cap)."""
        host = getattr(peer, "host", None)
        if self._trusted is None:
            self._trusted = parse_networks(self.config.trusted_proxies)
        try:
            if host is None or is_trusted(ipaddress.ip_address(host), self._trusted):
                return True
        except ValueError:
            return True  # not an IP address: no TCP client to count
        count = self.connections.get(host, 0)
        if count >= self.config.max_connections_per_address:
            return False
        self.connections[host] = count + 1
        return True

    def release(self, peer):
        host = getattr(peer, "host", None)
        left = self.connections.get(host, 0) - 1
        if left > 0:
            self.connections[host] = left
        else:
            self.connections.pop(host, None)

    def startFactory(self):
        super().startFactory()
        if self.accessLogPath and self.accessLog is None:
            os.makedirs(os.path.dirname(self.accessLogPath), mode=0o700, exist_ok=True)
            self.accessLog = AppendLog(self.accessLogPath, *self._rotation)
            if self._queued:
                self._background = Background("personium-dav access log")

    def stopFactory(self):
        super().stopFactory()
        if self._background is not None:
            self._background.close()
            self._background = None
        if self.accessLog is not None:
            self.accessLog.close()
            self.accessLog = None

    def log(self, request):
        """The access-log line. A line that cannot be written (a full disk)
        is reported and lost; the answer, already sent, is not: twisted.web
        logs inside ``Request.finish``, and an exception there would close a
        kept-alive connection under the client."""
        try:
            if self.accessLog is None:
                super().log(request)
                return
            second = int(self.reactor.seconds())
            if second != self._second:
                self._second, self._stamp = second, datetimeToLogString(second)
            line = access_log_formatter(self._stamp, request) + "\n"
            if self._background is not None:
                self._background.call(self.accessLog.write, line)
            else:
                self.accessLog.write(line)
        except OSError:
            _log.failure("writing the access log failed")


def makeSite(data_root, config=None, checker=None, policy=None, access_log=None):
    """A ``Site`` serving the data root at ``/``; idle connections close after
    ``config.idle_timeout`` seconds. Its requests are ``request.DavRequest``: bodies over
    the limits are refused while they arrive, PUT bodies stream to disk. Its
    access log lines end with the request key (``X-Personium-RequestKey``);
    they go to the file ``access_log`` (rotated like the event log), or, when
    it is None, where twisted.web sends them (the log of the process)."""
    config = config or Config()
    resource = makeResource(data_root, config, checker, policy)
    queued = access_log is not None and _on_shared_mount(resource, access_log)
    return DavSite(resource, access_log, config.event_log_size, config.event_log_files,
                   config=config, queued=queued, timeout=config.idle_timeout,
                   requestFactory=requestFactoryFor(resource),
                   logFormatter=access_log_formatter)


def _on_shared_mount(resource, path):
    """Is the log file ``path`` on the data root's shared mount?"""
    store = resource.server.store
    if not store.shared:
        return False
    point = store.mount.mount.point.rstrip("/") + "/"
    return os.path.abspath(path).startswith(point)
