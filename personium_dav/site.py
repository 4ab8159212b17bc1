"""The embedding API: a resource for any twisted.web tree, or a whole Site."""
from twisted.web.server import Site

from .config import Config
from .request import requestFactoryFor
from .resources import DavRoot
from .store.tree import Tree


class Server:
    """The state every request shares: the tree on disk and the settings."""

    def __init__(self, data_root, config):
        self.config = config
        self.tree = Tree(data_root, durable=config.durable)
        self.tree.prepare()


def makeResource(data_root, config=None):
    """An ``IResource`` serving the cells under ``data_root``.

    ``putChild`` it anywhere: every href it writes carries the prefix it is
    mounted at. ``config`` is a ``personium_dav.config.Config``.
    """
    return DavRoot(Server(data_root, config or Config()))


def makeSite(data_root, config=None, timeout=60):
    """A ``Site`` serving the data root at ``/``; idle connections close after
    ``timeout`` seconds. Its requests are ``request.DavRequest``: bodies over
    the limits are refused while they arrive, PUT bodies stream to disk."""
    resource = makeResource(data_root, config)
    return Site(resource, timeout=timeout, requestFactory=requestFactoryFor(resource))
