"""personium-dav: a WebDAV server on Twisted hosting Personium boxes.

The embedding API (docs/embedding.md): ``makeResource``, ``makeSite``,
``requestFactoryFor``, ``createBox`` and ``Config``. The functions import
their modules when called, so importing the package installs no reactor.
"""
from .config import Config

__version__ = "0.1.0"
__all__ = ["Config", "createBox", "makeResource", "makeSite", "requestFactoryFor"]


def makeResource(*args, **kwargs):
    """See ``personium_dav.web.site.makeResource``."""
    from .web.site import makeResource as make

    return make(*args, **kwargs)


def makeSite(*args, **kwargs):
    """See ``personium_dav.web.site.makeSite``."""
    from .web.site import makeSite as make

    return make(*args, **kwargs)


def requestFactoryFor(resource):
    """See ``personium_dav.web.request.requestFactoryFor``."""
    from .web.request import requestFactoryFor as make

    return make(resource)


def createBox(data_root, cell, box):
    """Provision a box (and its cell and data root); True when it is new."""
    from .store.provision import create_box

    return create_box(data_root, cell, box)
