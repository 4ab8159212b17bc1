"""The members of a collection from one listing, remembered per process.

A PROPFIND Depth 1 lists a collection again and again. For a member
unchanged since the last listing, ``members`` costs the ``lstat`` that the
listing needs anyway and a comparison: no ``getxattr``, no subcollection
sidecar, no new ``Info``. It hands back the very ``Info`` object of the last
listing, and when no member changed the very same list, so what a caller
derives from an ``Info`` (``Info.rendered``) stays valid with it.

A member's record is trusted while all of these hold:

* its ``lstat`` is the same: inode, ctime_ns, size. Every change the server
  makes to a file (new bytes, its ``user.pdav``) puts a new inode there or
  bumps its ctime, as does any other change of its bytes, size, mode, mtime
  or attributes, by anyone (no call sets a ctime); a subcollection's own
  state is its sidecar, to which a commit may append without touching the
  directory, so a subcollection is also checked by its sidecar's own stat
  (``info`` hands back the same Info while that sidecar is unchanged);
* for a file, its entry in the collection's sidecar is the same ``Entry``
  object (entries are never mutated; a commit, or a re-read of a changed
  sidecar, makes new ones);
* the stat had settled when it was remembered (``layout.settled``): until a
  stat is older than any timestamp tick, a replacement reusing the inode
  number can repeat it exactly, so a member younger than that is read in full.

Memory is bounded: at most ``capacity`` members over all directories, the
least recently listed directories dropped first; a larger collection is not
remembered at all. Each ``Tree`` owns one ``Listings``.
"""
import collections
import os
import stat
import threading
import time

from ..dav.names import is_valid_name
from . import layout

from .props import find, yield_gil

CAPACITY = 20_000  # members remembered, over all directories (~1.3 KiB each)
_OWN = object()  # the "entry" of a subcollection or a non-member: not in the sidecar
_Dir = collections.namedtuple("_Dir", "state names records listing")


class Listings:
    """The members of the collections listed lately, per directory."""

    def __init__(self, capacity=CAPACITY):
        self.capacity = capacity
        self._dirs = collections.OrderedDict()  # directory -> _Dir, least recent first
        self._size = 0
        self._lock = threading.Lock()

    def members(self, directory, state, info):
        """The members' Info of a collection, sorted by name (never changed
        once handed out). ``state`` is its sidecar state;
        ``info(path, name, st, state)`` reads one member in full."""
        known = self._dirs.get(directory)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:  # names relative to the open directory: no path walk per member
            names = os.listdir(fd)
            if known is not None and known.names == names:
                old = known.records  # the same names in the same order: compare in step
            else:
                by_name = dict(zip(known.names, known.records)) if known is not None else {}
                old = [by_name.get(disk) for disk in names]
            changed = known is None or old is not known.records
            same = known is not None and state is known.state  # then every entry is too
            records, unkept = [], []
            now = time.time_ns()
            for i, (disk, record) in enumerate(zip(names, old)):
                if i % 256 == 255:
                    yield_gil()
                if disk[0] == ":" and not disk.startswith(layout.HASHED):
                    records.append(None)  # bookkeeping
                    continue
                try:
                    st = os.stat(disk, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    records.append(None)
                    changed = True
                    continue
                key = (st.st_ino, st.st_ctime_ns, st.st_size)
                if record is not None and record[0] == key and (
                        same or record[1] is _OWN
                        or record[1] is find(state, record[2].name, record[2].fid)):
                    if record[1] is not _OWN or record[2] is None or record[2].path is None:
                        records.append(record)
                        continue
                    # a subcollection: its sidecar decides
                    again = info(os.path.join(directory, disk), record[2].name, st, state)
                    if again is record[2]:
                        records.append(record)
                        continue
                changed = True
                record = _read(directory, disk, st, key, state, info)
                if layout.settled(st, now):
                    records.append(record)
                else:
                    records.append(None)
                    if record[2] is not None:
                        unkept.append(record[2])
        finally:
            os.close(fd)
        if changed:
            listing = sorted([r[2] for r in records if r is not None and r[2] is not None]
                             + unkept, key=_name)
        else:
            listing = known.listing
        self._remember(directory, _Dir(state, names, records, listing))
        return listing

    def _remember(self, directory, entry):
        with self._lock:
            old = self._dirs.pop(directory, None)
            if old is not None:
                self._size -= len(old.names)
            if len(entry.names) > self.capacity:
                return
            self._dirs[directory] = entry
            self._size += len(entry.names)
            while self._size > self.capacity:
                self._size -= len(self._dirs.popitem(last=False)[1].names)

    def clear(self):
        """Forget every directory (tests, and an embedder that wants memory back)."""
        with self._lock:
            self._dirs.clear()
            self._size = 0


def _read(directory, disk, st, key, state, info):
    """(key, entry, Info) of one entry read in full; Info None when it is no
    member (a symlink, a special file, a hashed name without its real name, a
    name no URL can reach: not UTF-8, or against the name rule)."""
    name = layout.real_name(directory, disk)
    found = None
    if name is not None and is_valid_name(name, spaces=True) and _utf8(name):
        try:
            found = info(os.path.join(directory, disk), name, st, state)
        except FileNotFoundError:
            pass
    if found is None or stat.S_ISDIR(st.st_mode):
        return key, _OWN, found
    return key, find(state, name, found.fid), found


def _utf8(name):
    try:
        name.encode("utf-8")  # a file name that was not UTF-8 holds surrogates
    except UnicodeEncodeError:
        return False
    return True


def _name(info):
    return info.name
