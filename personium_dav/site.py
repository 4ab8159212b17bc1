"""The embedding API: a resource for any twisted.web tree, or a whole Site."""
from twisted.web.server import Site

from .auth import Auth, AuthSettings
from .config import Config
from .envelope import Envelope, access_log_formatter
from .eventlog import EventLog
from .request import requestFactoryFor
from .resources import DavRoot
from .store.locks import LockTable
from .store.tree import Tree


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
            access_ttl=config.token_ttl, refresh_ttl=config.refresh_ttl),
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


def makeSite(data_root, config=None, timeout=60, checker=None, policy=None):
    """A ``Site`` serving the data root at ``/``; idle connections close after
    ``timeout`` seconds. Its requests are ``request.DavRequest``: bodies over
    the limits are refused while they arrive, PUT bodies stream to disk. Its
    access log lines end with the request key (``X-Personium-RequestKey``)."""
    resource = makeResource(data_root, config, checker, policy)
    return Site(resource, timeout=timeout, requestFactory=requestFactoryFor(resource),
                logFormatter=access_log_formatter)
