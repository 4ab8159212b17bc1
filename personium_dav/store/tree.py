"""The box tree on disk: locating resources, reading their state, and the
write primitives (file, collection, removal, move, copy).

Every write primitive expects its caller (store/box.py) to hold the locks of
the directories it changes (``Tree.locked``), taken in the one order every
write follows, and to have checked what the write may do. All of it blocks:
the box API runs it in a thread pool.

A file's sidecar entry is tagged with the file's id (store/props.py), so a
file replaces another with one ``rename(2)``: the incoming file's entry is
written beside the old one first and the old one dropped after, and a crash
between any two steps leaves one file or the other, each with its own
properties. Replacing a collection takes two renames and an intent record
(store/journal.py).
"""
import contextlib
import errno
import fcntl
import os
import shutil
import stat
import time
import uuid
from dataclasses import dataclass, field, replace

from ..flocks import unlock_and_close
from ..auth.privileges import ACL_KEY
from . import layout
from .journal import remove
from .listing import Listings
from .props import Entry, Sidecars, find, own
from .syncs import DirectorySyncs

SRC = "__src"
_NO_PROPS = {}  # never changed: the props of a resource without an entry
_COLLECTION = Entry(kind="collection")
_NO_ENTRY = Entry()
INFOS_KEPT = 4096


class Gone(Exception):
    """A directory a write must lock is not there (any more)."""


def now_ms():
    return int(time.time() * 1000)


@dataclass(slots=True)
class Info:
    """What a PROPFIND or a condition needs to know of one resource."""

    kind: str  # box, collection, service, src, file
    name: str
    path: str
    size: int = 0
    created: int = 0
    modified: int = 0
    version: int = 1
    content_type: str = ""
    props: dict = field(default_factory=dict)
    fid: str = ""  # a file's id (store/props.py); "" for collections and older files
    # when the server last wrote a file whose ``modified`` a client chose
    # (X-OC-Mtime), else 0: the ETag is made of it then, so that a file
    # made again with the same time and version never repeats an old ETag
    written: int = 0
    discovery: str = None  # its D:lockdiscovery when locked (set by PROPFIND)
    space: tuple = None  # a collection's (used, available) bytes, when asked (PROPFIND)
    # what a PROPFIND rendered of it: (what it depends on, bytes). An Info is
    # never changed once made, and a listing hands back the same object while
    # the member is unchanged (store/listing.py), so this stays true with it;
    # ``replace`` (a changed copy) starts without it.
    rendered: tuple = field(default=None, init=False, repr=False, compare=False)

    @property
    def is_collection(self):
        return self.kind != "file"

    @property
    def etag(self):
        return '"%d-%d"' % (self.version, self.written or self.modified)


@dataclass
class Location:
    """Where a request path points, found by walking the box's directories."""

    box_dir: str
    names: list  # the decoded segments below the box
    parent_dir: str = None  # None when an intermediate collection is missing
    parent_kind: str = ""
    path: str = ""
    info: Info = None  # None when nothing is there
    service_exec: bool = False  # below a service collection, outside __src
    service_dir: str = None  # the service collection's directory, when the walk reached one
    foreign: bool = False  # a symlink or special file on the way: never entered
    chain: list = field(default_factory=list)  # dead props of the box and each resource found

    @property
    def name(self):
        return self.names[-1] if self.names else ""

    @property
    def exists(self):
        return self.info is not None


class Tree:
    def __init__(self, root, durable=True, owner=None, trust_dir_times=True):
        self.root = os.path.abspath(root)
        self.durable = durable
        self.owner = owner  # store/owners.Owner: names this process's temporaries
        # False on a shared mount (store/mounts.py), which may skip updating a
        # directory's times (JuiceFS: within 100 ms of the last update): then
        # no cache is keyed on them (the member count, a listing's subcollections)
        self.trust_dir_times = trust_dir_times
        self.sidecars = Sidecars(durable)
        self.listings = Listings()
        self.syncs = DirectorySyncs()
        # path -> (stat key, sidecar entry, Info) of a resource read in full:
        # while its lstat key and its entry (the same object: entries are
        # never changed) are the same, so is its Info. A file's key is
        # (inode, ctime_ns, size), a collection's (inode, mtime_ns). Trusted
        # only for a settled stat (store/listing.py); cleared whole when full.
        self._infos = {}

    # -- set-up -------------------------------------------------------------

    def make_dirs(self):
        for name in (layout.TMP, layout.TRASH, layout.OWNERS, layout.JOURNAL):
            os.makedirs(os.path.join(self.root, name), exist_ok=True)

    def box_dir(self, cell, box):
        # cell and box names are checked (provision.CELL_NAME, BOX_NAME): one
        # segment each, so a plain join is the same as os.path.join
        return self.root + os.sep + cell + os.sep + box

    def cell_exists(self, cell):
        return _is_real_dir(self.root + os.sep + cell)

    def box_exists(self, cell, box):
        return _is_real_dir(self.box_dir(cell, box))

    def tmp_path(self):
        prefix = self.owner.id + "." if self.owner is not None else ""
        return os.path.join(self.root, layout.TMP, prefix + uuid.uuid4().hex)

    def trash_path(self):
        prefix = self.owner.id + "." if self.owner is not None else ""
        return os.path.join(self.root, layout.TRASH, prefix + uuid.uuid4().hex)

    @contextlib.contextmanager
    def locked(self, *directories):
        """Hold the flock of each directory, taken in path order (no
        deadlock); ``Gone`` when one of them is not a directory any more."""
        fds = []
        try:
            for d in sorted(set(directories)):
                try:
                    fd = os.open(d + _LOCK_SUFFIX, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
                except (FileNotFoundError, NotADirectoryError):
                    raise Gone(d)
                fds.append(fd)
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_nlink == 0:  # its directory was deleted meanwhile
                    raise Gone(d)
            yield
        finally:
            for fd in fds:
                unlock_and_close(fd)

    # -- reading ------------------------------------------------------------

    def state(self, directory, inline=False):
        return self.sidecars.read(directory, inline)

    def locate(self, box_dir, names, inline=False, start=None):
        """``_walk``, once more after a stale file handle (a shared mount
        whose entry another host replaced): a second ESTALE is raised."""
        try:
            return self._walk(box_dir, names, inline, start)
        except OSError as e:
            if e.errno != errno.ESTALE:
                raise
        return self._walk(box_dir, names, inline, start)

    def _walk(self, box_dir, names, inline=False, start=None):
        """Walk ``names`` down from the box, or from ``start`` (a directory
        and its kind, found by an earlier walk). On the way it keeps the dead
        properties of the box and of each resource it finds (``loc.chain``),
        so the privilege checks need no second walk. With ``inline`` it
        reads only what is cached (``props.Miss`` otherwise): the web layer
        resolves on the reactor thread when it can, in a pool when not."""
        loc = Location(box_dir=box_dir, names=names)
        if start is None:
            state = self.sidecars.read(box_dir, inline)
            mine = own(state)
            loc.chain = chain = [mine.props if mine is not None else _NO_PROPS]
            directory, kind = box_dir, "box"
        else:
            state, chain = None, loc.chain
            directory, kind = start
        last = len(names) - 1
        for i, name in enumerate(names):
            if kind == "service" and name != SRC:
                loc.service_exec, loc.service_dir = True, directory
                return loc
            path = directory + os.sep + layout.disk_name(name)
            if i == last:
                loc.parent_dir, loc.parent_kind, loc.path = directory, kind, path
                loc.info = info = self.info(path, name, parent_state=state, inline=inline)
                if info is None:
                    loc.foreign = _is_foreign(path)
                else:
                    chain.append(info.props)
                    if info.kind == "service":
                        loc.service_dir = path
                return loc
            if not _is_real_dir(path):
                loc.foreign = _is_foreign(path)
                return loc
            state = self.sidecars.read(path, inline)
            mine = own(state)
            if mine is None:
                kind = "collection"
                chain.append(_NO_PROPS)
            else:
                kind = mine.kind or "collection"
                chain.append(mine.props)
            directory = path
        loc.path = box_dir
        loc.info = self.info(box_dir, "", parent_state=state, inline=inline)
        return loc

    def collection_entry(self, directory):
        return own(self.sidecars.read(directory)) or _COLLECTION

    def info(self, path, name, st=None, parent_state=None, inline=False):
        """The state of the resource at ``path``, or None if nothing is there."""
        try:
            st = st or os.lstat(path)  # a planted symlink is never followed
        except (FileNotFoundError, NotADirectoryError):
            return None
        hit = self._infos.get(path)
        if stat.S_ISDIR(st.st_mode):
            found = own(self.sidecars.read(path, inline))
            key = (st.st_ino, st.st_mtime_ns)  # (the mtime: for a sidecar without times)
            if hit is not None and hit[0] == key and hit[1] is found and hit[2].name == name:
                return hit[2]
            entry = found or _COLLECTION
            mtime = int(st.st_mtime * 1000)
            return self._keep(path, key, found, st, Info(
                kind=entry.kind or "collection", name=name, path=path,
                created=entry.created or mtime, modified=entry.modified or mtime,
                version=max(entry.version, 1), props=entry.props))
        if not stat.S_ISREG(st.st_mode):
            return None
        if parent_state is None:
            parent_state = self.sidecars.read(os.path.dirname(path), inline)
        key = (st.st_ino, st.st_ctime_ns, st.st_size)
        if hit is not None and hit[0] == key and hit[2].name == name:
            # the same file (its id with it): the same Info while its entry is too
            if hit[1] is find(parent_state, name, hit[2].fid):
                return hit[2]
        meta = layout.read_meta(path)
        fid = meta.get("i", "")
        found = find(parent_state, name, fid)
        entry = found or _NO_ENTRY
        mtime = int(st.st_mtime * 1000)
        return self._keep(path, key, found, st, Info(
            kind="file", name=name, path=path, size=st.st_size,
            created=meta.get("c", mtime),
            modified=max(meta.get("m", mtime), entry.modified),
            version=meta.get("v", 1) + entry.version,
            content_type=meta.get("t", "application/octet-stream"),
            props=entry.props, fid=fid,
            written=max(meta["w"], entry.modified) if "w" in meta else 0))

    def _keep(self, path, key, entry, st, info):
        if layout.settled(st, time.time_ns()):
            if len(self._infos) >= INFOS_KEPT:
                self._infos.clear()
            self._infos[path] = (key, entry, info)
        return info

    def members(self, directory):
        """Info of every member of a collection, sorted by name, from one
        listing and the collection's sidecar (read again once after ESTALE)."""
        try:
            return self.listings.members(directory, self.sidecars.read(directory), self.info)
        except OSError as e:
            if e.errno != errno.ESTALE:
                raise
        return self.listings.members(directory, self.sidecars.read(directory), self.info)

    def count_members(self, directory):
        """How many members a collection has (the caller holds its lock).

        Counting is a scan of the directory, so the count is recorded in the
        collection's lock file with the directory's stat key, and reused
        while the key is the same: a PUT into a collection of 100,000 files
        must not read all of them. A writer that adds a member records the
        new count (``counted``); any other change moves the key (the kernel
        gives a directory a new ctime at every change made after its ctime
        was read, even within one clock tick), and the next count scans.
        Where directory times may lag (``trust_dir_times`` False) it always
        scans."""
        if not self.trust_dir_times:
            with os.scandir(directory) as it:
                return sum(1 for de in it if _is_member(de.name))
        key = _directory_key(directory)
        recorded = layout.read_count(directory)
        if recorded is not None and recorded[1] == key:
            return recorded[0]
        with os.scandir(directory) as it:
            count = sum(1 for de in it if _is_member(de.name))
        layout.write_count(directory, count, key)
        return count

    def counted(self, directory, count):
        """Record ``count`` as the members of ``directory`` after the caller,
        still holding its lock, added one to the ``count_members`` it read."""
        if self.trust_dir_times:
            layout.write_count(directory, count, _directory_key(directory))

    def has_members(self, info):
        """For DELETE: a service collection counts only the files of its __src."""
        directory = info.path
        if info.kind == "service":
            directory = os.path.join(directory, SRC)
        with os.scandir(directory) as it:
            return any(_is_member(de.name) for de in it)

    def height(self, path):
        """Levels of collections below ``path`` (a service collection's
        __src not counted)."""
        best = 0
        with os.scandir(path) as it:
            for de in it:
                if not de.is_dir(follow_symlinks=False):
                    continue
                if layout.is_bookkeeping(de.name) and not de.name.startswith(layout.HASHED):
                    continue
                if de.name == SRC and self.collection_entry(de.path).kind == "src":
                    continue
                best = max(best, 1 + self.height(de.path))
        return best

    # -- writing (callers hold the locks) ------------------------------------

    def sync(self, *directories):
        if self.durable:
            for d in dict.fromkeys(directories):
                layout.fsync_dir(d)

    def handle(self, directory):
        """An open directory, to fsync after its lock is released
        (``sync_handle``): it follows the directory wherever it is moved."""
        return os.open(directory, os.O_RDONLY | os.O_DIRECTORY) if self.durable else None

    def sync_handle(self, fd):
        """fsync (and close) a handle from ``handle``; concurrent writers of
        one directory share the fsync (store/syncs.py)."""
        if fd is not None:
            try:
                self.syncs.sync(fd)
            finally:
                os.close(fd)

    def receive(self, source):
        """Copy a body (bytes or a file object) to a temporary file (fsynced); its path."""
        tmp = self.tmp_path()
        try:
            with open(tmp, "wb") as out:
                if isinstance(source, bytes):
                    out.write(source)
                else:
                    source.seek(0)
                    shutil.copyfileobj(source, out, 1024 * 1024)
                if self.durable:
                    out.flush()
                    os.fsync(out.fileno())
        except BaseException:
            remove(tmp)  # a full disk leaves no half body behind
            raise
        return tmp

    def settle(self, tmp, out):
        """A body already streamed to ``tmp`` (open as ``out``): flushed,
        fsynced when durable, closed; its path. Deleted if that fails."""
        try:
            with out:
                out.flush()
                if self.durable:
                    os.fsync(out.fileno())
        except BaseException:
            remove(tmp)
            raise
        return tmp

    def install_file(self, tmp, loc, content_type, current, modified=None):
        """Rename a received body over ``loc`` (a new file, or over the file
        ``current``, whose id and properties it keeps); its new Info.
        ``modified``: the modification time a client gave (milliseconds),
        else now. The caller fsyncs the directory (``sync``), maybe after
        releasing the lock so that concurrent PUTs share journal commits."""
        millis = now_ms()
        meta = {"v": 1, "c": millis, "m": modified if modified is not None else millis,
                "t": content_type, "i": layout.new_fid()}
        if modified is not None and modified != millis:
            meta["w"] = millis
        if current is not None:
            meta["v"] = layout.read_meta(current.path).get("v", 1) + 1
            meta["c"] = current.created
            meta["i"] = current.fid
        if layout.disk_name(loc.name) != loc.name:
            meta["n"] = loc.name
        layout.write_meta(tmp, meta)
        os.replace(tmp, loc.path)
        return self.info(loc.path, loc.name)

    def build_collection(self, kind, props=None, name=None):
        """A new collection in the temporary area, ready to be renamed in."""
        tmp = self.tmp_path()
        os.mkdir(tmp)
        try:
            millis = now_ms()
            txn = self.sidecars.begin(tmp)
            txn.put("", "", Entry(props=dict(props or {}), version=1,
                                  created=millis, modified=millis, kind=kind))
            txn.commit()
            if kind == "service":
                src = os.path.join(tmp, SRC)
                os.mkdir(src)
                txn = self.sidecars.begin(src)
                txn.put("", "", Entry(version=1, created=millis, modified=millis, kind="src"))
                txn.commit()
            if name is not None and layout.disk_name(name) != name:
                layout.write_meta(tmp, {"n": name})
        except BaseException:
            remove(tmp)  # a full disk leaves no half-built collection behind
            raise
        return tmp

    def install_collection(self, tmp, loc):
        try:
            os.rename(tmp, loc.path)
        except BaseException:
            remove(tmp)
            raise
        self.sync(loc.parent_dir)

    def remove_file(self, loc):
        """Delete the file at ``loc`` and its entry."""
        os.unlink(loc.path)
        self.drop_entries(loc.parent_dir, loc.name)
        self.sync(loc.parent_dir)

    def set_aside(self, loc):
        """Take ``loc`` out of the tree into ``:trash`` at once (the rename
        is the deletion); its trash path, for ``purge`` once answered."""
        trash = self.trash_path()
        os.rename(loc.path, trash)
        self.sync(loc.parent_dir)
        return trash

    @staticmethod
    def purge(trash):
        if trash:
            remove(trash)

    def move(self, src, dst):
        """MOVE ``src`` to ``dst``, which is unmapped or a file (when ``src``
        is a file): one rename, properties along."""
        if src.info.kind != "file":
            self._rename_named(src, dst)
            self.sync(src.parent_dir, dst.parent_dir)
            return
        fid = src.info.fid or self._give_fid(src)
        entry = find(self.sidecars.read(src.parent_dir), src.name, fid)
        old = dst.info.fid if dst.info is not None else None
        if entry is not None:  # beside the entry of the file it replaces
            txn = self.sidecars.begin(dst.parent_dir)
            txn.put(dst.name, fid, entry)
            txn.commit()
        self._rename_named(src, dst)
        self.sync(src.parent_dir, dst.parent_dir)
        self.drop_entries(src.parent_dir, src.name, fid=fid)
        if old is not None:
            self.drop_entries(dst.parent_dir, dst.name, keep=(fid,))

    def copy(self, src, dst, depth_infinity=True):
        """COPY ``src`` to ``dst``, which is unmapped or a file (when ``src``
        is a file). The copy never carries a ``D:acl``: it gets the ACL a PUT
        there would get (it inherits)."""
        info = src.info
        if info.kind != "file":
            if depth_infinity:
                tmp = self._copy_tree(src.path, dst.name)
            else:
                tmp = self.build_collection(info.kind if info.kind != "box" else "collection",
                                            _without_acl(info.props), dst.name)
            self.install_collection(tmp, dst)
            return
        tmp = self.tmp_path()
        fid = layout.new_fid()
        try:
            shutil.copyfile(src.path, tmp)
            millis = now_ms()
            meta = {"v": 1, "c": millis, "m": millis, "t": info.content_type, "i": fid}
            if dst.info is not None:
                meta["v"] = layout.read_meta(dst.path).get("v", 1) + 1
            if layout.disk_name(dst.name) != dst.name:
                meta["n"] = dst.name
            layout.write_meta(tmp, meta)
            if self.durable:
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
            entry = find(self.sidecars.read(src.parent_dir), src.name, info.fid)
            props = _without_acl(entry.props) if entry is not None else {}
            if props:
                txn = self.sidecars.begin(dst.parent_dir)
                txn.put(dst.name, fid, Entry(props=props))
                txn.commit()
            os.replace(tmp, dst.path)
        except BaseException:
            remove(tmp)  # a full disk leaves no half copy behind
            raise
        self.sync(dst.parent_dir)
        if dst.info is not None:
            self.drop_entries(dst.parent_dir, dst.name, keep=(fid,))

    def _copy_tree(self, path, name):
        """A copy of the collection at ``path`` in the temporary area: plain
        files and directories only, new times on its own entry, no ACL."""
        tmp = self.tmp_path()
        try:
            shutil.copytree(path, tmp, ignore=_ignore_bookkeeping)
            for directory, _, _ in os.walk(tmp):
                txn = self.sidecars.begin(directory)
                for member, entries in list(txn.state.items()):
                    for e in entries:
                        if ACL_KEY in e.props:
                            txn.put(member, e.fid, replace(e, props=_without_acl(e.props)))
                if directory == tmp:
                    millis = now_ms()
                    entry = txn.entry("") or _COLLECTION
                    txn.put("", "", replace(entry, version=1, created=millis, modified=millis))
                if txn.changed:
                    txn.commit()
            meta = {"n": name} if layout.disk_name(name) != name else None
            if meta:
                layout.write_meta(tmp, meta)
        except BaseException:
            if os.path.lexists(tmp):
                remove(tmp)  # a full disk leaves no half copy behind
            raise
        return tmp

    def _rename_named(self, src, dst):
        """rename(2) with the real-name record of hashed names: the entry
        keeps its old name beside the new one until the rename is done, so a
        crash between the two leaves a name that matches its disk name."""
        hashed = layout.disk_name(dst.name) != dst.name
        if hashed:
            meta = layout.read_meta(src.path)
            meta["n"] = dst.name
            if layout.disk_name(src.name) != src.name:
                meta["n0"] = src.name
            layout.write_meta(src.path, meta)
        os.rename(src.path, dst.path)

    def _give_fid(self, loc):
        """An id for a file from before ids: its entry is copied under the
        id first, then the id set on the file, so a crash between leaves the
        file matching one of the two."""
        fid = layout.new_fid()
        entry = find(self.sidecars.read(loc.parent_dir), loc.name, "")
        if entry is not None:
            txn = self.sidecars.begin(loc.parent_dir)
            txn.put(loc.name, fid, entry)
            txn.commit()
        meta = layout.read_meta(loc.path)
        meta["i"] = fid
        layout.write_meta(loc.path, meta)
        return fid

    def drop_entries(self, directory, name, keep=(), fid=None):
        """Drop the sidecar entries of ``name`` but those of the files
        ``keep`` (with ``fid``: only that file's entry)."""
        entries = self.sidecars.read(directory).get(name, ())
        if fid is not None:
            keep = tuple(e.fid for e in entries if e.fid != fid)
        if any(e.fid not in keep for e in entries):
            txn = self.sidecars.begin(directory)
            txn.keep(name, keep)
            txn.commit()


_LOCK_SUFFIX = os.sep + layout.LOCK


def _without_acl(props):
    if ACL_KEY not in props:
        return props
    return {k: v for k, v in props.items() if k != ACL_KEY}


def _is_member(disk_name):
    """A directory entry that is a member, not bookkeeping."""
    return not disk_name.startswith(":") or disk_name.startswith(layout.HASHED)


def _directory_key(directory):
    st = os.stat(directory)
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns


def _ignore_bookkeeping(directory, names):
    """What a COPY leaves out: lock files, sidecar temporaries, and anything
    planted that is not a plain file or directory (a symlink is never followed)."""
    return [n for n in names if n in (layout.LOCK, layout.SIDECAR_TMP)
            or _is_foreign(os.path.join(directory, n))]


def _is_foreign(path):
    """True when something is at ``path`` that is neither a plain file nor a
    directory (a symlink planted in the data root, a fifo, a socket)."""
    try:
        mode = os.lstat(path).st_mode
    except _MISSING:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


# what says "nothing there"; any other error (EIO, ENOTCONN: the file
# system failing) is raised, never read as a missing cell, box or resource
_MISSING = (FileNotFoundError, NotADirectoryError, PermissionError)


def _is_real_dir(path):
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except _MISSING:
        return False
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            return False
        raise
