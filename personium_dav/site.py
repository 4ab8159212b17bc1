"""The embedding API: a resource for any twisted.web tree, or a whole Site."""
import os

from twisted.logger import Logger
from twisted.web.server import Site

from .auth import Auth, AuthSettings
from .config import Config
from .envelope import Envelope, access_log_formatter
from .eventlog import EventLog
from .logfiles import AppendLog
from .request import DavChannel, requestFactoryFor
from .resources import DavRoot
from .store.locks import LockTable
from .store.tree import Tree

_log = Logger()


class Server:
    """The state every request shares: the tree on disk, the settings, and
    the request envelope (accounts, tokens, the token checker, the privilege
    policy, the event log), and the boxes' lock tables."""

    def __init__(self, data_root, config, checker=None, policy=None):
        self.config = config
        self.tree = Tree(data_root, durable=config.durable)
        self.tree.prepare()
        self.locks = LockTable(self.tree.root, durable=config.durable)
        self.auth = Auth(self.tree.root, AuthSettings(
            lockout_attempts=config.lockout_attempts, lockout_seconds=config.lockout_seconds,
            access_ttl=config.token_ttl, refresh_ttl=config.refresh_ttl,
            login_rate=config.login_rate, trusted_proxies=tuple(config.trusted_proxies),
            hash_threads=config.hash_threads),
            checker=checker, policy=policy, durable=config.durable)
        self.events = EventLog(self.tree.root, config.event_log_size, config.event_log_files)
        self.envelope = Envelope(self.auth.checker, self.auth.policy, self.events)


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
        super().__init__(resource, logPath=access_log, **kwargs)
        self._rotation = rotate_length, max_rotated

    def _openLogFile(self, path):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        return AppendLog(path, *self._rotation)

    def log(self, request):
        """The access-log line. A line that cannot be written (a full disk)
        is reported and lost; the answer, already sent, is not: twisted.web
        logs inside ``Request.finish``, and an exception there would close a
        kept-alive connection under the client."""
        try:
            super().log(request)
        except OSError:
            _log.failure("writing the access log failed")


def makeSite(data_root, config=None, timeout=60, checker=None, policy=None, access_log=None):
    """A ``Site`` serving the data root at ``/``; idle connections close after
    ``timeout`` seconds. Its requests are ``request.DavRequest``: bodies over
    the limits are refused while they arrive, PUT bodies stream to disk. Its
    access log lines end with the request key (``X-Personium-RequestKey``);
    they go to the file ``access_log`` (rotated like the event log), or, when
    it is None, where twisted.web sends them (the log of the process)."""
    config = config or Config()
    resource = makeResource(data_root, config, checker, policy)
    return DavSite(resource, access_log, config.event_log_size, config.event_log_files,
                   timeout=timeout, requestFactory=requestFactoryFor(resource),
                   logFormatter=access_log_formatter)
