"""Who owns a temporary file, a trash entry or an intent record.

Several server processes, on one host or several, may share a data root.
Each one claims an owner id at start: it creates ``DATA/:owners/{id}`` and
holds an exclusive ``flock`` on it for as long as it lives (the kernel, or
the shared file system, releases it when the process dies, however it
dies). Everything it leaves in ``:tmp``, ``:trash`` and ``:journal`` is
named ``{id}.{...}``. Recovery touches only what a dead owner left: an owner
is dead when its file can be flocked by somebody else.
"""
import fcntl
import os
import secrets
import socket

from ..flocks import unlock_and_close
from . import layout


def _directory(root):
    return os.path.join(root, layout.OWNERS)


class Owner:
    """This process's claim; ``close()`` gives it up (at stop)."""

    def __init__(self, root):
        directory = _directory(root)
        os.makedirs(directory, exist_ok=True)
        self.id = secrets.token_hex(8)
        self.path = os.path.join(directory, self.id)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(self._fd, ("%s %d\n" % (socket.gethostname(), os.getpid())).encode())

    def held(self):
        """Is the claim still held? Not when its descriptor belongs to a
        mount that died (a FUSE daemon gone: ENOTCONN), even once remounted."""
        try:
            os.fstat(self._fd)
        except (OSError, TypeError):
            return False
        return True

    def owns(self, name):
        return name.startswith(self.id + ".")

    def close(self):
        """Release the claim; what this process left is then anybody's to recover."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.unlink(self.path)
            except OSError:
                pass  # gone, or its mount is: a claim nobody flocks is anybody's
            finally:
                try:
                    os.close(fd)
                except OSError:
                    pass  # a descriptor of a mount that is gone: the claim went with it


def owner_of(name):
    """The owner id a bookkeeping name starts with, or None (a name from an
    older server, before owners)."""
    head, dot, _ = name.partition(".")
    return head if dot and len(head) == 16 else None


def alive(root, owner):
    """Does the process that claimed ``owner`` still hold its claim?"""
    path = os.path.join(_directory(root), owner)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        unlock_and_close(fd)  # the probe's flock, if it got it
    return False


def forget_dead(root, keep=()):
    """Remove the claim files of dead owners (not those in ``keep``)."""
    directory = _directory(root)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        if name not in keep and not alive(root, name):
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:
                pass
