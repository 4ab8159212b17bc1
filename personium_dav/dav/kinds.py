"""Which methods each kind of resource takes: its exact ``Allow`` header.

Shared by the web layer (405 with ``Allow``, OPTIONS) and the box API,
which refuses an operation a kind does not take whoever calls it.
"""
from .errors import DavError

_LOCKS = ("LOCK", "UNLOCK")

METHODS = {
    "box": ("OPTIONS", "GET", "HEAD", "PROPFIND", "PROPPATCH", "ACL") + _LOCKS,
    "collection": ("OPTIONS", "GET", "HEAD", "PROPFIND", "PROPPATCH", "DELETE", "MOVE",
                   "COPY", "ACL") + _LOCKS,
    "service": ("OPTIONS", "PROPFIND", "PROPPATCH", "DELETE", "MOVE", "ACL") + _LOCKS,
    # __src: a lock on it guards its membership (which sources exist)
    "src": ("OPTIONS", "PROPFIND", "ACL") + _LOCKS,
    "file": ("OPTIONS", "GET", "HEAD", "PUT", "DELETE", "PROPFIND", "PROPPATCH", "COPY",
             "MOVE", "ACL") + _LOCKS,
    # below a service collection (but __src): a call of a service script
    "exec": ("OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE"),
}


def allow(kind):
    return ", ".join(METHODS[kind]).encode()


def refuse(kind):
    """405 ``PR405-MC-0001`` with the ``Allow`` of ``kind``."""
    return DavError("PR405-MC-0001", headers={"Allow": allow(kind)})


def require(kind, method):
    if method not in METHODS[kind]:
        raise refuse(kind)
