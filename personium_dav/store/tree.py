"""The box tree on disk: locating resources, reading their state, and the
write primitives (file, collection, delete, move, copy).

Every write primitive expects the caller to hold the lock of each directory
it changes (``Tree.locked``); the methods take them, check the request's
conditions against the state under the lock, then call the primitive. All of
it blocks, so the methods run it with ``deferToThread``.
"""
import contextlib
import fcntl
import os
import shutil
import stat
import time
import uuid
from dataclasses import dataclass, field, replace

from . import layout, listing
from .props import Entry, SidecarPropertyStore, read_state

SRC = "__src"
_NO_PROPS = {}  # never changed: the props of a resource without an entry
_COLLECTION = Entry(kind="collection")
_NO_ENTRY = Entry()

# path -> (stat key, sidecar entry, Info) of a resource read in full: while
# its lstat key and its entry (the same object: entries are never changed)
# are the same, so is its Info, and a request need not read its user.pdav
# again. A file's key is (inode, ctime_ns, size), a collection's (inode,
# mtime_ns) beside its own entry. Trusted only for a settled stat, as
# store/listing.py explains; cleared whole when full.
_infos = {}
INFOS_KEPT = 4096


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
    discovery: str = None  # its D:lockdiscovery when locked (set by PROPFIND)
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
        return '"%d-%d"' % (self.version, self.modified)


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
    foreign: bool = False  # a symlink or special file on the way: never entered
    chain: list = field(default_factory=list)  # dead props of the box and each resource found

    @property
    def name(self):
        return self.names[-1] if self.names else ""

    @property
    def exists(self):
        return self.info is not None


class Tree:
    def __init__(self, root, durable=True):
        self.root = os.path.abspath(root)
        self.durable = durable

    # -- set-up -------------------------------------------------------------

    def make_dirs(self):
        for name in (layout.TMP, layout.TRASH):
            os.makedirs(os.path.join(self.root, name), exist_ok=True)

    def prepare(self):
        """At server start: make the bookkeeping folders, and empty what a
        crash left in them (files older than a minute: another server process
        on the same root may be using the newer ones)."""
        self.make_dirs()
        layout.check_xattrs(self.root)
        limit = time.time() - 60
        for name in (layout.TMP, layout.TRASH):
            with os.scandir(os.path.join(self.root, name)) as it:
                for de in it:
                    if de.stat(follow_symlinks=False).st_mtime < limit:
                        _remove(de.path)

    def box_dir(self, cell, box):
        # cell and box names are checked (provision.CELL_NAME, BOX_NAME): one
        # segment each, so a plain join is the same as os.path.join
        return self.root + os.sep + cell + os.sep + box

    def cell_exists(self, cell):
        return _is_real_dir(self.root + os.sep + cell)

    def box_exists(self, cell, box):
        return _is_real_dir(self.box_dir(cell, box))

    def tmp_path(self):
        return os.path.join(self.root, layout.TMP, uuid.uuid4().hex)

    def props(self, directory):
        return SidecarPropertyStore(directory, self.durable)

    @contextlib.contextmanager
    def locked(self, *directories):
        """Hold the flock of each directory, taken in path order (no deadlock)."""
        fds = []
        try:
            for d in sorted(set(directories)):
                fd = os.open(os.path.join(d, layout.LOCK), os.O_RDWR | os.O_CREAT, 0o600)
                fds.append(fd)
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            for fd in fds:
                os.close(fd)  # closing releases the lock

    # -- reading ------------------------------------------------------------

    def locate(self, box_dir, names):
        """Walk ``names`` down from the box. On the way it keeps the dead
        properties of the box and of each resource it finds (``loc.chain``),
        so the ACL check of the request needs no second walk."""
        loc = Location(box_dir=box_dir, names=names)
        state = read_state(box_dir)
        own = state.get("")
        loc.chain = chain = [own.props if own is not None else _NO_PROPS]
        directory, kind = box_dir, "box"
        last = len(names) - 1
        for i, name in enumerate(names):
            if kind == "service" and name != SRC:
                loc.service_exec = True
                return loc
            path = directory + os.sep + layout.disk_name(name)
            if i == last:
                loc.parent_dir, loc.parent_kind, loc.path = directory, kind, path
                loc.info = info = self.info(path, name, parent_state=state)
                if info is None:
                    loc.foreign = _is_foreign(path)
                else:
                    chain.append(info.props)
                return loc
            if not _is_real_dir(path):
                loc.foreign = _is_foreign(path)
                return loc
            state = read_state(path)
            own = state.get("")
            if own is None:
                kind = "collection"
                chain.append(_NO_PROPS)
            else:
                kind = own.kind or "collection"
                chain.append(own.props)
            directory = path
        loc.path = box_dir
        loc.info = self.info(box_dir, "", parent_state=state)
        return loc

    def collection_entry(self, directory):
        return read_state(directory).get("") or _COLLECTION

    def info(self, path, name, st=None, parent_state=None):
        """The state of the resource at ``path``, or None if nothing is there."""
        try:
            st = st or os.lstat(path)  # a planted symlink is never followed
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
            return None
        if stat.S_ISDIR(st.st_mode):
            found = read_state(path).get("")
            key = (st.st_ino, st.st_mtime_ns)  # (the mtime: for a sidecar without times)
        else:
            if parent_state is None:
                parent_state = read_state(os.path.dirname(path))
            found = parent_state.get(name)
            key = (st.st_ino, st.st_ctime_ns, st.st_size)
        hit = _infos.get(path)
        if hit is not None and hit[0] == key and hit[1] is found and hit[2].name == name:
            return hit[2]
        if stat.S_ISDIR(st.st_mode):
            entry = found or _COLLECTION
            mtime = int(st.st_mtime * 1000)
            return self._keep(path, key, found, st, Info(
                kind=entry.kind or "collection", name=name, path=path,
                created=entry.created or mtime, modified=entry.modified or mtime,
                version=max(entry.version, 1), props=entry.props))
        meta = layout.read_meta(path)
        entry = found or _NO_ENTRY
        mtime = int(st.st_mtime * 1000)
        return self._keep(path, key, found, st, Info(
            kind="file", name=name, path=path, size=st.st_size,
            created=meta.get("c", mtime),
            modified=max(meta.get("m", mtime), entry.modified),
            version=meta.get("v", 1) + entry.version,
            content_type=meta.get("t", "application/octet-stream"),
            props=entry.props))

    @staticmethod
    def _keep(path, key, entry, st, info):
        if layout.settled(st, time.time_ns()):
            if len(_infos) >= INFOS_KEPT:
                _infos.clear()
            _infos[path] = (key, entry, info)
        return info

    def members(self, directory):
        """Info of every member of a collection, sorted by name, from one
        listing and the collection's sidecar."""
        return listing.members(directory, self.props(directory).read(), self.info)

    def count_members(self, directory):
        """How many members a collection has (the caller holds its lock).

        Counting is a scan of the directory, so the count is recorded in the
        collection's lock file with the directory's stat key, and reused
        while the key is the same: a PUT into a collection of 100,000 files
        must not read all of them. A writer that adds a member records the
        new count (``counted``); any other change moves the key (the kernel
        gives a directory a new ctime at every change made after its ctime
        was read, even within one clock tick), and the next count scans."""
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
        layout.write_count(directory, count, _directory_key(directory))

    def has_members(self, info):
        """For DELETE: a service collection counts only the files of its __src."""
        directory = info.path
        if info.kind == "service":
            directory = os.path.join(directory, SRC)
        with os.scandir(directory) as it:
            return any(_is_member(de.name) for de in it)

    # -- writing (callers hold the locks) ------------------------------------

    def _sync(self, *directories):
        if self.durable:
            for d in directories:
                layout.fsync_dir(d)

    def receive(self, source, limit=None):
        """Copy a request body to a temporary file (fsynced); its path."""
        tmp = self.tmp_path()
        try:
            with open(tmp, "wb") as out:
                source.seek(0)
                shutil.copyfileobj(source, out, 1024 * 1024)
                if self.durable:
                    out.flush()
                    os.fsync(out.fileno())
        except BaseException:
            _unlink(tmp)  # a full disk leaves no half body behind
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
            _unlink(tmp)
            raise
        return tmp

    def install_file(self, tmp, loc, content_type, previous, sync=True):
        """Rename a received body over ``loc``; returns its new Info. With
        ``sync=False`` the caller fsyncs the directory (``_sync``) itself,
        after releasing the lock, before acknowledging."""
        millis = now_ms()
        meta = {"v": 1, "c": millis, "m": millis, "t": content_type}
        if previous is not None:
            old = layout.read_meta(previous.path)
            meta["v"] = old.get("v", 1) + 1
            meta["c"] = previous.created
        if layout.disk_name(loc.name) != loc.name:
            meta["n"] = loc.name
        layout.write_meta(tmp, meta)
        os.replace(tmp, loc.path)
        store = self.props(loc.parent_dir)
        if previous is None and loc.name in store.read():
            txn = store.begin()  # a stale entry left by a crash mid-DELETE
            txn.drop(loc.name)
            txn.commit()
        if sync:
            self._sync(loc.parent_dir)
        return self.info(loc.path, loc.name)

    def build_collection(self, kind, props=None, name=None):
        """A new collection in the temporary area, ready to be renamed in."""
        tmp = self.tmp_path()
        os.mkdir(tmp)
        try:
            millis = now_ms()
            txn = self.props(tmp).begin()
            txn.adopt("", Entry(props=dict(props or {}), version=1,
                                created=millis, modified=millis, kind=kind))
            txn.commit()
            if kind == "service":
                src = os.path.join(tmp, SRC)
                os.mkdir(src)
                txn = self.props(src).begin()
                txn.adopt("", Entry(version=1, created=millis, modified=millis, kind="src"))
                txn.commit()
            if name is not None and layout.disk_name(name) != name:
                layout.write_meta(tmp, {"n": name})
        except BaseException:
            _remove(tmp)  # a full disk leaves no half-built collection behind
            raise
        return tmp

    def install_collection(self, tmp, loc):
        try:
            os.rename(tmp, loc.path)
        except BaseException:
            _remove(tmp)
            raise
        self._sync(loc.parent_dir)

    def discard(self, loc):
        """Take ``loc`` out of the tree at once; a collection's bytes go later."""
        info = loc.info
        if info.kind == "file":
            os.unlink(loc.path)
            store = self.props(loc.parent_dir)
            if loc.name in store.read():
                txn = store.begin()
                txn.drop(loc.name)
                txn.commit()
            self._sync(loc.parent_dir)
            return None
        trash = os.path.join(self.root, layout.TRASH, uuid.uuid4().hex)
        os.rename(loc.path, trash)
        self._sync(loc.parent_dir)
        return trash

    def purge(self, trash):
        if trash:
            shutil.rmtree(trash, ignore_errors=True)

    def relocate(self, src, dst):
        """MOVE: rename ``src`` to ``dst`` (already cleared), properties along.

        A file's properties sit in its collection's sidecar, so a file MOVE
        is ordered for crashes: a file at ``dst`` is deleted first, the
        properties are written under the new name, then the file is renamed,
        then the old name's properties dropped. A crash between two steps
        leaves the file with its properties at one end (plus, at most, an
        unreachable entry that the next PUT of that name clears)."""
        if layout.disk_name(dst.name) != dst.name:
            meta = layout.read_meta(src.path)
            meta["n"] = dst.name
            layout.write_meta(src.path, meta)
        if src.info.kind == "file":
            self._clear_file(dst)
            self._carry_entry(src, dst, keep_source=True)
        os.rename(src.path, dst.path)
        self._sync(src.parent_dir, dst.parent_dir)
        if src.info.kind == "file" and (src.parent_dir, src.name) != (dst.parent_dir, dst.name):
            self._drop_entry(src)

    def duplicate(self, src, dst, depth_infinity=True):
        """COPY: build a copy of ``src`` in the temporary area, then rename it in."""
        info = src.info
        if info.kind == "file":
            tmp = self.tmp_path()
            try:
                shutil.copyfile(src.path, tmp)
                millis = now_ms()
                meta = {"v": 1, "c": millis, "m": millis, "t": info.content_type}
                if dst.info is not None and dst.info.kind == "file":
                    meta["v"] = layout.read_meta(dst.path).get("v", 1) + 1
                if layout.disk_name(dst.name) != dst.name:
                    meta["n"] = dst.name
                layout.write_meta(tmp, meta)
                if self.durable:
                    with open(tmp, "rb+") as f:
                        os.fsync(f.fileno())
                self._clear_file(dst)  # ordered for crashes as in relocate
                self._carry_entry(src, dst, keep_source=True, copy=True)
                os.replace(tmp, dst.path)
            except BaseException:
                _unlink(tmp)  # a full disk leaves no half copy behind
                raise
        else:
            if depth_infinity:
                tmp = self.tmp_path()
                try:
                    shutil.copytree(src.path, tmp, ignore=_ignore_locks)
                    entry = self.collection_entry(tmp)
                    millis = now_ms()
                    txn = self.props(tmp).begin()
                    txn.adopt("", replace(entry, version=1, created=millis, modified=millis))
                    txn.commit()
                    if layout.disk_name(dst.name) != dst.name:
                        layout.write_meta(tmp, {"n": dst.name})
                except BaseException:
                    if os.path.lexists(tmp):
                        _remove(tmp)  # a full disk leaves no half copy behind
                    raise
            else:
                tmp = self.build_collection(info.kind if info.kind != "box" else "collection",
                                            info.props, dst.name)
            self.install_collection(tmp, dst)
        self._sync(dst.parent_dir)

    def _carry_entry(self, src, dst, keep_source, copy=False):
        """Give ``dst`` the sidecar entry of ``src`` (a copy: properties
        only), or none; drop the source's unless ``keep_source``."""
        entry = self.props(src.parent_dir).read().get(src.name)
        target = self.props(dst.parent_dir)
        if entry is None and dst.name not in target.read():
            return
        txn = target.begin()
        if entry is None:
            txn.drop(dst.name)
        else:
            txn.adopt(dst.name, Entry(props=entry.props) if copy else entry)
        txn.commit()
        if not keep_source and entry is not None:
            self._drop_entry(src)

    def _drop_entry(self, loc):
        store = self.props(loc.parent_dir)
        if loc.name in store.read():
            txn = store.begin()
            txn.drop(loc.name)
            txn.commit()

    def _clear_file(self, dst):
        """Delete the file at ``dst`` (with its properties) before another
        takes its place."""
        if dst.info is not None and dst.info.kind == "file":
            self.discard(dst)
            dst.info = None


def _is_member(disk_name):
    """A directory entry that is a member, not bookkeeping."""
    return not disk_name.startswith(":") or disk_name.startswith(layout.HASHED)


def _directory_key(directory):
    st = os.stat(directory)
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns


def _ignore_locks(directory, names):
    """What a COPY leaves out: lock files, sidecar temporaries, and anything
    planted that is not a plain file or directory (a symlink is never followed)."""
    return [n for n in names if n in (layout.LOCK, layout.SIDECAR_TMP)
            or _is_foreign(os.path.join(directory, n))]


def _is_foreign(path):
    """True when something is at ``path`` that is neither a plain file nor a
    directory (a symlink planted in the data root, a fifo, a socket)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _is_real_dir(path):
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        os.unlink(path)
