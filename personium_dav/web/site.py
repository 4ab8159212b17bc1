"""The embedding API: a resource for any twisted.web tree, or a whole Site."""
import os

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web.http import datetimeToLogString
from twisted.web.server import Site

from ..auth import Auth
from ..config import Config
from ..engine import ScriptPool
from ..engine.sources import Sources
from ..ops.eventlog import EventLog
from ..ops.logfiles import AppendLog
from ..ops.pools import Pools
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
        self.auth = Auth(root, config, checker=checker, policy=policy)
        self.store = Store(root, config, self.auth.policy)
        self.store.recover()
        self.pools = Pools(reactor=reactor)
        self.events = EventLog(root, config.event_log_size, config.event_log_files)
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
                                       http_allow=config.script_http_allow)
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
                 max_rotated=10, **kwargs):
        super().__init__(resource, **kwargs)
        self.accessLogPath = access_log
        self.accessLog = None
        self._rotation = rotate_length, max_rotated
        self._second = self._stamp = None

    def startFactory(self):
        super().startFactory()
        if self.accessLogPath and self.accessLog is None:
            os.makedirs(os.path.dirname(self.accessLogPath), mode=0o700, exist_ok=True)
            self.accessLog = AppendLog(self.accessLogPath, *self._rotation)

    def stopFactory(self):
        super().stopFactory()
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
            self.accessLog.write(access_log_formatter(self._stamp, request) + "\n")
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
    return DavSite(resource, access_log, config.event_log_size, config.event_log_files,
                   timeout=config.idle_timeout, requestFactory=requestFactoryFor(resource),
                   logFormatter=access_log_formatter)
