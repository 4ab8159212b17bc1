"""personium-dav: a WebDAV server on Twisted hosting Personium boxes."""
__version__ = "0.1.0"


def makeResource(*args, **kwargs):
    """See ``personium_dav.site.makeResource`` (imported lazily: no reactor here)."""
    from .site import makeResource as make

    return make(*args, **kwargs)


def makeSite(*args, **kwargs):
    """See ``personium_dav.site.makeSite``."""
    from .site import makeSite as make

    return make(*args, **kwargs)
