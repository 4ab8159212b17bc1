"""The box API: every operation a request or a service script performs on a
box, for a principal, with the same checks whoever calls it.

Each write follows one path, under one lock order (the box's lock table,
shared or exclusive, then the directories it changes, in path order):

1. re-read the state of what it touches (``locate``), since the caller's
   view may be old;
2. decide the effect: create, overwrite, replace a collection, delete;
3. ask the privilege policy about that effect for the principal (RFC 3744
   App. B: an overwrite needs what a PUT over the target needs, anything
   deleted needs ``unbind`` on its parent);
4. check the preconditions (``dav.conditions``: If-Match..., the ``If``
   header) and the WebDAV lock tokens (RFC 4918 §7), then room;
5. write, count, sync; return a result the caller renders.

Structural changes of collections (DELETE, MOVE or COPY of a collection,
anything that replaces one) hold the box's lock table exclusive, every
other write holds it shared: no write inside a collection runs while the
collection is moved or deleted, so a write never lands in a collection that
has gone, and a race answers 404 or 409 as if the requests had come one
after the other. All of it blocks: callers run it in a thread pool.
"""
import contextlib
import mimetypes
import os
import threading
from dataclasses import dataclass, replace

from twisted.logger import Logger

from ..auth.privileges import ACL_KEY, Target, acls_of
from ..dav import kinds
from ..dav.conditions import NONE, SELF
from ..dav.errors import DavError
from ..dav.names import is_valid_name
from . import layout, mounts
from .journal import Journal, remove
from .locks import Lock, LockTable, new_token
from .owners import Owner
from .group import GroupCommit
from .props import Miss
from .tree import SRC, Gone, Tree, now_ms
from .usage import Usage, file_bytes

__all__ = ["Store", "Box", "Caller", "Done", "Miss"]

_log = Logger()


def lock_identity(principal):
    """Who a lock belongs to: "" anonymous, "owner", or "{cell}#{account}"."""
    if principal is None or principal.anonymous:
        return ""
    if principal.owner:
        return "owner"
    return "%s#%s" % (principal.cell, principal.subject)


def _plain_url(names, collection):
    return "/" + "/".join(names) + ("/" if collection and names else "")


@dataclass(frozen=True)
class Caller:
    """Who asks, and how its answers name a resource (an error message
    carries the URL of what was not found)."""

    principal: object
    url: object = _plain_url  # (names, collection) -> str

    def not_found(self, names):
        return DavError("PR404-DV-0001", self.url(list(names), False))

    def no_parent(self, names):
        return DavError("PR409-DV-0001", self.url(list(names[:-1]), True))


@dataclass(frozen=True)
class Done:
    """What a write did: ``created`` (201) or not (204), and the resource
    after it (None when it is gone)."""

    created: bool
    info: object = None
    locks: tuple = ()  # LOCK: the lock granted first, then the locks covering the URL


class Store:
    """The boxes of one data root and what every operation shares: the
    tree, the lock tables, the journal, the privilege policy, the settings."""

    def __init__(self, root, config, policy, clock=None, mount=None):
        self.config = config
        self.policy = policy
        # refused before anything is written on it (store/mounts.py)
        self.mount = mount or mounts.check(root, config.shared_mount_consistent)
        self.shared = self.mount.shared
        self.tree = Tree(root, config.durable, trust_dir_times=not self.shared)
        self.tree.make_dirs()
        layout.check_xattrs(self.tree.root)
        self.watch = mounts.RootWatch(self.tree.root, self.mount.mount.point, self.shared)
        self._lost = False  # the root was unavailable at the last check
        self._reclaiming = threading.Lock()
        self.owner = self.tree.owner = Owner(self.tree.root)
        self.locks = LockTable(self.tree.root, durable=config.durable,
                               **({"clock": clock} if clock else {}))
        self.journal = Journal(self.tree.root, self.owner, config.durable)
        self.group = GroupCommit(self.tree)
        self._boxes = {}

    @property
    def root(self):
        return self.tree.root

    def cell_exists(self, cell):
        return self.tree.cell_exists(cell)

    def box_exists(self, cell, box):
        return self.tree.box_exists(cell, box)

    def box(self, cell, box):
        key = (cell, box)
        found = self._boxes.get(key)
        if found is None:
            if len(self._boxes) > 1024:
                self._boxes.clear()
            found = self._boxes[key] = Box(self, cell, box)
        return found

    def recover(self):
        """Settle what dead server processes left (store/journal.py)."""
        def lock_box(cell, box):
            return self.locks.hold(cell, box, exclusive=True)

        @contextlib.contextmanager
        def lock_dir(directory):
            try:
                with self.tree.locked(directory):
                    yield
            except Gone:
                yield  # the target's collection is gone: nothing to bring back

        return self.journal.recover(lock_box, lock_dir)

    @property
    def streams_bodies(self):
        """Do PUT bodies stream into the data root as they arrive? Not on a
        shared mount: there that is a file system call on the reactor thread,
        which blocks it while the mount does not answer; the body is then
        kept like any other and copied in by the store's thread."""
        return not self.shared

    def check_root(self):
        """``mounts.Unavailable`` unless the data root is its mount now.
        When the mount was lost and is back (a remount), this process claims
        a new owner id: its claim on the old one went with the old mount,
        and another server may sweep what the old id named (store/owners.py)."""
        try:
            probed = self.watch.check()
        except mounts.Unavailable as e:
            if not self._lost:
                _log.error("personium-dav: data root unavailable: {why}", why=e)
            self._lost = True
            raise
        if probed and not self.owner.held():
            with self._reclaiming:
                if not self.owner.held():
                    old, self.owner = self.owner, Owner(self.tree.root)
                    self.tree.owner = self.journal.owner = self.owner
                    old.close()
                    _log.info("personium-dav: data root back; owner {new} replaces {old}",
                              new=self.owner.id, old=old.id)
        self._lost = False

    def open_body(self):
        """(path, file) of a fresh temporary file for a body that streams in
        (web/request.py); ``Box.put`` takes it over."""
        path = self.tree.tmp_path()
        return path, open(path, "w+b")

    def is_body(self, path):
        """Is ``path`` a body this process opened with ``open_body``?"""
        folder, name = os.path.split(path)
        return folder == os.path.dirname(self.tree.tmp_path()) and self.owner.owns(name)

    def scripts_dir(self):
        """This process's folder under ``:tmp`` for the bodies service
        scripts exchange with their workers (made when missing). It is named
        like every temporary of this process, so the recovery that follows
        its death removes it whole."""
        path = os.path.join(self.root, layout.TMP, self.owner.id + ".scripts")
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path

    def close(self):
        self.owner.close()


class Box:
    """One box's operations. ``names`` are the decoded segments below the
    box; ``conds`` a ``dav.conditions.Preconditions``."""

    def __init__(self, store, cell, name):
        self.store = store
        self.tree = store.tree
        self.cell, self.name = cell, name
        self.dir = store.tree.box_dir(cell, name)
        self.usage = Usage(self.dir)

    @property
    def config(self):
        return self.store.config

    # -- reading --------------------------------------------------------------

    def exists(self):
        return self.tree.box_exists(self.cell, self.name)

    def locate(self, names, inline=False):
        """Where ``names`` point (a ``tree.Location``); with ``inline``,
        ``Miss`` when that would parse a sidecar (do it in a thread)."""
        return self.tree.locate(self.dir, list(names), inline)

    def locate_source(self, service_dir, name, inline=False):
        """Where ``__src/{name}`` of the service collection at
        ``service_dir`` (``Location.service_dir``) points, walked from there:
        a call has just walked down to it. Its chain holds ``__src`` and the
        file only."""
        return self.tree.locate(self.dir, [SRC, name], inline, (service_dir, "service"))

    def members(self, info):
        return self.tree.members(info.path)

    def read_locks(self):
        """The live WebDAV locks of the box (read without its flock)."""
        return self.store.locks.read(self.cell, self.name)

    def clock(self):
        return self.store.locks.clock()

    def allowed(self, principal, privilege, loc, depth=None):
        """Does ``principal`` hold ``privilege`` on the resource ``depth``
        names down ``loc`` (default: ``loc`` itself)? Its ACLs are those
        ``locate`` read on its way."""
        depth = len(loc.names) if depth is None else depth
        return self.may(principal, privilege, loc.names[:depth], acls_of(loc.chain[:depth + 1]))

    def knows(self, principal, loc):
        """May ``principal`` learn whether the name ``loc`` points at exists?
        Only with some privilege on its parent, or on it (when it exists and
        its own ACL grants one): anyone else gets the same answer whether it
        exists or not (behaviour.md §9)."""
        if principal.owner:
            return True
        depth = max(len(loc.names) - 1, 0)
        return (self._holds_any(principal, loc, depth)
                or loc.info is not None and self._holds_any(principal, loc, len(loc.names)))

    def _holds_any(self, principal, loc, depth):
        policy = self.store.policy
        if hasattr(policy, "any_privilege"):
            target = Target(self.cell, self.name, list(loc.names[:depth]),
                            acls_of(loc.chain[:depth + 1]))
            return policy.any_privilege(principal, target)
        return any(self.allowed(principal, p, loc, depth) for p in LEAVES)

    def may(self, principal, privilege, names, acls):
        """The policy's answer for ``names`` governed by ``acls`` (the box's first)."""
        target = Target(self.cell, self.name, list(names), acls)
        return self.store.policy.allowed(principal, privilege, target)

    def require(self, principal, privilege, loc, depth=None):
        if not self.allowed(principal, privilege, loc, depth):
            raise denied(principal)

    def check_if(self, conds, loc):
        """A read's ``If`` header, against the lock table as it is."""
        self._check_if(self.read_locks(), conds, loc)

    @staticmethod
    def content(info, start=0, length=None):
        """Bytes of a file (a read of ``length`` bytes from ``start``)."""
        fd = os.open(info.path, os.O_RDONLY | os.O_CLOEXEC)  # no buffer, no seek
        try:
            return os.pread(fd, info.size if length is None else length, start)
        finally:
            os.close(fd)

    @staticmethod
    def open(info):
        """A file object on a file's bytes, for a streamed answer."""
        return open(info.path, "rb")

    def read(self, caller, names, conds=NONE, limit=None):
        """A file's Info and bytes, as ``_p``'s getString wants them; 413
        ``PR413-DV-0002`` for a file larger than ``limit`` bytes."""
        loc = self._existing(caller, self._names(names))
        self.require(caller.principal, "read", loc)
        if loc.info.kind != "file":
            raise kinds.refuse(loc.info.kind)
        conds.check(loc.info)
        if limit is not None and loc.info.size > limit:
            raise DavError("PR413-DV-0002")
        return loc.info, self.content(loc.info)

    def properties(self, caller, names):
        """A resource's Info (its dead properties in ``props``), as
        ``read-properties`` allows: what a Depth 0 PROPFIND shows."""
        loc = self._existing(caller, self._names(names))
        self.require(caller.principal, "read-properties", loc)
        return loc.info

    def listing(self, caller, names):
        """(Info of a collection, Info of each member), as ``read-properties``
        on the collection allows: what a Depth 1 PROPFIND shows."""
        loc = self._existing(caller, self._names(names))
        self.require(caller.principal, "read-properties", loc)
        if not loc.info.is_collection:
            raise kinds.refuse("file")
        return loc.info, self.members(loc.info)

    def space(self):
        """(used, available) bytes of the box (RFC 4331): its files' bytes,
        and what is left of the disk of the data root or of the box's quota,
        whichever is less."""
        used = self.usage.used()
        st = os.statvfs(self.store.root)
        available = st.f_bavail * st.f_frsize
        quota = self.usage.quota()
        if quota is not None:
            available = min(available, max(quota - used, 0))
        return used, available

    def refuse_oversize(self, loc, length):
        """507 at once for a body of ``length`` bytes to ``loc`` that the
        box's quota cannot take, before it is sent. A hint only: the write
        checks again, exactly, under its locks; no recount here."""
        quota = self.usage.quota()
        if quota is None:
            return
        used = self.usage.peek() or 0  # no record yet: at least nothing
        info = getattr(loc, "info", None)
        replaced = info.size if info is not None and not info.is_collection else 0
        if length - replaced > quota - used:
            raise DavError("PR507-DV-0001")

    # -- writing --------------------------------------------------------------

    def put(self, caller, names, body, content_type=None, conds=NONE, modified=None):
        """A file's content: ``body`` is bytes, or the (path, file) of a body
        already in ``:tmp`` (``Store.open_body``), which this takes over."""
        names = self._names(names, creating=True)
        tree = self.tree
        streamed = isinstance(body, tuple)
        try:
            tmp = tree.settle(*body) if streamed else tree.receive(body)
        except BaseException:
            if streamed:
                remove(body[0])
            raise
        handle = None
        try:
            loc = self._target(caller, names)
            content_type = content_type or guess_type(names[-1])
            with self._hold(False, loc.parent_dir, caller, names) as held:
                loc = self._target(caller, names)
                current = loc.info
                if current is not None and current.kind != "file":
                    raise kinds.refuse(current.kind)
                if current is None:
                    self.require(caller.principal, "bind", loc, len(names) - 1)
                else:
                    self.require(caller.principal, "write-content", loc)
                conds.check(current)
                # a new file changes its collection's members; a file over
                # one, that file
                self._check_locks(held, conds, caller, loc,
                                  [(names if current else names[:-1], False)])
                members = None if current else self._room(loc.parent_dir)
                handle = tree.handle(loc.parent_dir)
                grows = os.stat(tmp).st_size - (current.size if current else 0)
                with self.usage.change() as usage, usage.charge(grows):
                    info = tree.install_file(tmp, loc, content_type, current, modified)
                if members is not None:
                    tree.counted(loc.parent_dir, members + 1)
        except BaseException:
            remove(tmp)
            if handle is not None:
                os.close(handle)
            raise
        # durable before the answer; outside the lock, so that concurrent
        # PUTs into one collection share journal commits (the handle follows
        # the collection if it is moved meanwhile)
        tree.sync_handle(handle)
        return Done(current is None, info)

    def mkcol(self, caller, names, kind="collection", props=None, conds=NONE):
        names = self._names(names, creating=True)
        if len(names) > self.config.max_depth:
            raise DavError("PR400-DV-0008")
        loc = self._target(caller, names)
        with self._hold(False, loc.parent_dir, caller, names) as held:
            loc = self._target(caller, names)
            if loc.parent_kind == "src" or loc.info is not None:
                raise DavError("PR405-DV-0001", headers={
                    "Allow": kinds.allow(loc.info.kind if loc.info else "file")})
            self.require(caller.principal, "bind", loc, len(names) - 1)
            conds.check(None)
            self._check_locks(held, conds, caller, loc, [(names[:-1], False)])
            members = self._room(loc.parent_dir)
            tmp = self.tree.build_collection(kind, props, names[-1])
            self.tree.install_collection(tmp, loc)
            self.tree.counted(loc.parent_dir, members + 1)
            info = self.tree.info(loc.path, loc.name)
        return Done(True, info)

    def delete(self, caller, names, recursive=False, conds=NONE):
        """A file, or a collection: whole when ``recursive`` (or under
        ``--collection-semantics rfc4918``), else only when it is empty."""
        names = self._names(names)
        recursive = recursive or self.config.rfc4918
        while True:
            loc = self._existing(caller, names)
            structural = loc.info.is_collection
            with self._hold(structural or self._removes([(names, False)]), loc.parent_dir,
                            caller, names, gone=caller.not_found) as held:
                loc = self._existing(caller, names)
                if loc.info.is_collection != structural:
                    continue  # it became a collection meanwhile: lock the box whole
                kinds.require(loc.info.kind, "DELETE")
                self.require(caller.principal, "unbind", loc, len(names) - 1)
                conds.check(loc.info)
                self._check_locks(held, conds, caller, loc,
                                  [(names[:-1], False), (names, True)])
                if loc.info.is_collection and not recursive and self.tree.has_members(loc.info):
                    raise DavError("PR403-DV-0003")
                trash = None
                freed = file_bytes(loc.path) if loc.info.is_collection else loc.info.size
                with self.usage.change() as usage, usage.charge(-freed):
                    if loc.info.is_collection:
                        trash = self.tree.set_aside(loc)
                    else:
                        self.tree.remove_file(loc)
                held.drop(lambda lk: lk.below(names))
            self.tree.purge(trash)
            return Done(False)

    def copy(self, caller, names, dest, overwrite=True, depth="infinity", conds=NONE):
        return self._transfer(caller, names, dest, overwrite, depth, conds, move=False)

    def move(self, caller, names, dest, overwrite=True, conds=NONE):
        return self._transfer(caller, names, dest, overwrite, "infinity", conds, move=True)

    def proppatch(self, caller, names, changes, conds=NONE):
        """Apply ``changes`` ([(op, key, value)]: "set" with the element's
        bytes, "remove" with None) to the dead properties of ``names``, all
        or nothing; the resource after."""
        names = self._names(names)
        loc = self._existing(caller, names)
        kinds.require(loc.info.kind, "PROPPATCH")
        directory, member = self._sidecar_of(loc)

        def change(txn):
            current = self._existing(caller, names)
            kinds.require(current.info.kind, "PROPPATCH")
            self.require(caller.principal, "write-properties", current)
            conds.check(current.info)
            self._check_locks(held, conds, caller, current, [(names, False)])
            fid = current.info.fid
            for op, key, value in changes:
                if op == "set":
                    txn.set(member, fid, key, value)
                else:
                    txn.remove(member, fid, key)
            txn.touch(member, fid, now_ms())
            return lambda: self.tree.info(current.path, current.name)  # once committed

        with self._hold(False, None, caller, names, gone=caller.not_found) as held:
            if conds.empty:  # concurrent PROPPATCHes of one collection share one commit
                info = self.store.group.commit(directory, member, change)
            else:  # conditions are checked against the disk: a commit of its own
                info = self._commit(directory, change, caller, names)
        return Done(False, info)

    def set_acl(self, caller, names, value, conds=NONE):
        """Replace the ``D:acl`` of ``names`` (None removes it)."""
        names = self._names(names)
        loc = self._existing(caller, names)
        directory, member = self._sidecar_of(loc)

        def change(txn):
            current = self._existing(caller, names)
            self.require(caller.principal, "write-acl", current)
            conds.check(current.info)
            self._check_locks(held, conds, caller, current, [(names, False)])
            if value is None:
                txn.remove(member, current.info.fid, ACL_KEY)
            else:
                txn.set(member, current.info.fid, ACL_KEY, value)
            return lambda: self.tree.info(current.path, current.name)

        with self._hold(False, None, caller, names, gone=caller.not_found) as held:
            info = self._commit(directory, change, caller, names)
        return Done(False, info)

    def lock(self, caller, names, scope, depth, owner, timeout, conds=NONE):
        """A new write lock (RFC 4918 §9.10); an unmapped URL gets an empty
        file (§7.3). ``Done.locks``: the new lock, then every lock covering
        the URL."""
        names = self._names(names, creating=True)
        loc = self._target(caller, names)
        directory = loc.parent_dir if names else self.dir
        with self._hold(True, directory, caller, names) as held:
            loc = self._target(caller, names)
            info = loc.info
            if info is None:
                if loc.parent_kind == "src":  # sources are made by PUT, with a type
                    raise kinds.refuse("file")
                self.require(caller.principal, "bind", loc, len(names) - 1)
            else:
                self.require(caller.principal, "write-content", loc)
            conds.check(info)
            self._check_locks(held, conds, caller, loc,
                              [] if info is not None else [(names[:-1], False)])
            now = self.clock()
            lock = Lock(token=new_token(), root=tuple(names),
                        collection=info is not None and info.is_collection, depth=depth,
                        scope=scope, owner=owner, principal=lock_identity(caller.principal),
                        timeout=timeout, expires=now + timeout)
            conflicting = [lk for lk in held.locks if lk.conflicts(lock)]
            if conflicting:
                raise DavError("PR423-DV-0002", condition="no-conflicting-lock",
                               locks=conflicting)
            created = None
            if info is None:
                members = self._room(loc.parent_dir)
                with self.usage.change() as usage, usage.charge(0):  # an empty file
                    created = self.tree.install_file(self.tree.receive(b""), loc,
                                                     guess_type(names[-1]), None)
                self.tree.sync(loc.parent_dir)
                self.tree.counted(loc.parent_dir, members + 1)
            held.add(lock)
            locks = [lock] + [lk for lk in held.locks if lk is not lock and lk.covers(names)]
        return Done(created is not None, created or info, tuple(locks))

    def refresh(self, caller, names, timeout, conds=NONE):
        """Refresh the locks covering ``names`` whose tokens ``conds``
        submits (their creator's only); 412 when there is none."""
        names = self._names(names)
        if not conds.submitted:
            raise DavError("PR400-DV-0010", "If")
        with self._hold(True, None, caller, names) as held:
            loc = self.locate(names)
            self._check_locks(held, conds, caller, loc, [])
            me = lock_identity(caller.principal)
            mine = [lk for lk in held.locks if lk.covers(names)
                    and lk.token in conds.submitted and lk.principal == me]
            if not mine:
                raise DavError("PR412-DV-0003")
            now = self.clock()
            for lk in mine:
                seconds = timeout if timeout is not None else lk.timeout
                held.put(replace(lk, timeout=seconds, expires=now + seconds))
            tokens = {lk.token for lk in mine}
            locks = [lk for lk in held.locks if lk.token in tokens]
            locks += [lk for lk in held.locks if lk.token not in tokens and lk.covers(names)]
        return Done(False, loc.info, tuple(locks))

    def unlock(self, caller, names, token, conds=NONE):
        """Remove a lock covering ``names``: its creator, or a principal
        holding ``write-acl`` on its root, may."""
        names = self._names(names)
        with self._hold(True, None, caller, names) as held:
            loc = self.locate(names)
            self._check_locks(held, conds, caller, loc, [])
            lock = next((lk for lk in held.locks if lk.token == token), None)
            if lock is None or not lock.covers(names):
                raise DavError("PR409-DV-0002", condition="lock-token-matches-request-uri")
            if lock.principal != lock_identity(caller.principal):
                root = self.locate(list(lock.root))
                depth = min(len(lock.root), len(root.chain) - 1)
                if not self.allowed(caller.principal, "write-acl", root, depth):
                    raise DavError("PR403-AU-0002")
            held.drop(lambda lk: lk.token == token)
        return Done(False)

    # -- COPY and MOVE --------------------------------------------------------

    def _transfer(self, caller, names, dest, overwrite, depth, conds, move):
        names, dest = self._names(names), self._names(dest, creating=True)
        src = self._existing(caller, names)
        if move and src.info.kind == "src":
            raise DavError("PR400-DV-0011")
        kinds.require(src.info.kind, "MOVE" if move else "COPY")
        if dest == names:
            raise DavError("PR403-DV-0005", caller.url(dest, src.info.is_collection))
        if dest[:len(names)] == names or names[:len(dest)] == dest:
            # into itself, or over its own ancestor: refused before anything moves
            raise DavError("PR400-DV-0009", "Destination",
                           caller.url(dest, src.info.is_collection))
        removes = [(dest, True)] + ([(names, False)] if move else [])
        while True:
            dst = self.locate(dest)
            structural = _structural(src, dst)
            with self._hold(structural or self._removes(removes),
                            (src.parent_dir, dst.parent_dir), caller, names,
                            gone=caller.not_found) as held:
                src, dst = self._existing(caller, names), self.locate(dest)
                if _structural(src, dst) != structural:
                    continue  # a file became a collection meanwhile: lock the box whole
                created, trash = self._transfer_locked(held, caller, src, dst, overwrite,
                                                       depth, conds, move)
                info = self.tree.info(dst.path, dst.name)
            self.tree.purge(trash)
            return Done(created, info)

    def _transfer_locked(self, held, caller, src, dst, overwrite, depth, conds, move):
        names, dest = src.names, dst.names
        principal = caller.principal
        self.require(principal, "unbind" if move else "read", src,
                     len(names) - 1 if move else None)
        self.require(principal, "bind", dst, len(dest) - 1)
        self._check_destination(caller, src, dst, dest, overwrite)
        created = dst.info is None
        if not created:  # RFC 3744 App. B: what replacing the target needs
            if move:
                self.require(principal, "unbind", dst, len(dest) - 1)
            else:
                self.require(principal, "write-content", dst)
                self.require(principal, "write-properties", dst)
            if dst.info.is_collection:  # its members are deleted
                self.require(principal, "unbind", dst)
        conds.check(src.info)
        protected = [(dest[:-1], False)] + ([(dest, True)] if not created else [])
        if move:
            protected += [(names[:-1], False), (names, True)]
        self._check_locks(held, conds, caller, src, protected)
        if (src.info.is_collection and depth == "infinity"
                and len(dest) + self.tree.height(src.path) > self.config.max_depth):
            raise DavError("PR400-DV-0008")
        grows = created and not (move and dst.parent_dir == src.parent_dir)
        members = self._room(dst.parent_dir) if grows else None
        trash = None
        with self.usage.change() as usage, usage.charge(_grows(src, dst, move, depth)):
            if not created and _structural(src, dst):
                trash = self._replace(src, dst, move, depth)
            elif move:
                self.tree.move(src, dst)
            else:
                self.tree.copy(src, dst, depth == "infinity")
        if members is not None:
            self.tree.counted(dst.parent_dir, members + 1)
        if move:
            held.drop(lambda lk: lk.below(names))
        if not created:
            held.drop(lambda lk: lk.below(dest, strict=True))
        return created, trash

    def _replace(self, src, dst, move, depth):
        """Put ``src`` (or its copy) where ``dst`` is, a collection on
        either side: ``dst`` goes aside under an intent record first
        (store/journal.py). Its trash path, to purge once answered."""
        journal = self.store.journal
        aside = journal.aside_path()
        record = journal.record(self.cell, self.name, dst.parent_dir,
                                layout.disk_name(dst.name), aside)
        old = dst.info
        try:
            os.rename(dst.path, aside)
            self.tree.sync(dst.parent_dir)
            dst.info = None
            try:
                if move:
                    self.tree.move(src, dst)
                else:
                    self.tree.copy(src, dst, depth == "infinity")
            except BaseException:
                os.rename(aside, dst.path)  # the old one back, as recovery would
                self.tree.sync(dst.parent_dir)
                raise
        finally:
            journal.done(record)
        if old.kind == "file":  # drop its entry, now that nothing of it is left
            new = self.tree.info(dst.path, dst.name)
            self.tree.drop_entries(dst.parent_dir, dst.name,
                                   keep=(new.fid,) if new is not None and new.fid else ())
        return aside

    def _check_destination(self, caller, src, dst, dest, overwrite):
        """The rules of service collections and __src (docs/behaviour.md §4)."""
        info = src.info
        if dst.foreign:  # a planted symlink on the way: never written through
            raise DavError("PR403-DV-0004", dest[-1])
        if dst.service_exec:
            raise DavError("PR400-DV-0016")
        if dst.parent_dir is None:
            raise caller.no_parent(dest)
        if dst.info is not None and dst.info.kind == "src":
            raise DavError("PR400-DV-0017")  # before the rule for the service parent
        if src.parent_kind == "src" and dst.parent_kind != "src":
            raise DavError("PR400-DV-0016")
        if dst.parent_kind == "service":
            raise DavError("PR400-DV-0016")
        if dst.parent_kind == "src" and info.is_collection:
            raise DavError("PR400-DV-0018")
        if info.is_collection and len(dest) > self.config.max_depth:
            raise DavError("PR400-DV-0008")
        if dst.info is not None:
            if not overwrite:
                raise DavError("PR412-DV-0002")
            if dst.info.is_collection and not self.config.rfc4918:
                raise DavError("PR400-DV-0012")

    # -- the steps every write shares -------------------------------------------

    @contextlib.contextmanager
    def _hold(self, exclusive, directories, caller, names, gone=None):
        """The box's lock table (shared or exclusive), then the directories
        (one, several, or None for none). A directory that has gone is 409
        (its collection is missing), or what ``gone(names)`` says."""
        if isinstance(directories, str):
            directories = (directories,)
        directories = [d for d in directories or () if d is not None]
        with self.store.locks.hold(self.cell, self.name, exclusive) as held:
            try:
                with self.tree.locked(*directories):
                    yield held
            except Gone:
                raise (gone or caller.no_parent)(names)

    def _commit(self, directory, change, caller, names):
        """``change(txn)`` committed alone; what it returns (called under
        the lock once committed)."""
        try:
            with self.tree.locked(directory):
                txn = self.tree.sidecars.begin(directory)
                after = change(txn)
                txn.commit()
                return after()
        except Gone:
            raise caller.not_found(names)

    def _names(self, names, creating=False):
        """Names as a list, each a valid resource name (403 to create, else 404)."""
        names = list(names)
        for i, name in enumerate(names):
            if not is_valid_name(name, self.config.rfc4918):
                if creating and i == len(names) - 1:
                    raise DavError("PR403-DV-0004", name)
                raise DavError("PR404-DV-0001", _plain_url(names, False))
        return names

    def _target(self, caller, names):
        """Where a create or overwrite goes: an existing parent collection."""
        loc = self.locate(names)
        if loc.foreign:
            raise DavError("PR403-DV-0004", names[-1])
        if loc.service_exec:
            raise kinds.refuse("service")
        if names and loc.parent_dir is None:
            raise caller.no_parent(names)
        return loc

    def _existing(self, caller, names):
        loc = self.locate(names)
        if loc.info is None or loc.service_exec or loc.foreign:
            raise caller.not_found(names)
        return loc

    def _sidecar_of(self, loc):
        """(directory, member) of the sidecar holding a resource's properties."""
        if loc.info.is_collection:
            return loc.path, ""
        return loc.parent_dir, loc.name

    def _room(self, directory):
        """The member count of ``directory`` (locked); 400 ``PR400-DV-0007``
        when one more would pass ``--max-members``."""
        members = self.tree.count_members(directory)
        if members >= self.config.max_members:
            raise DavError("PR400-DV-0007")
        return members

    def _removes(self, removes):
        """A function of the live locks: does the write remove any of them
        (then it holds the lock table exclusive)?"""
        def exclusive(locks):
            return any(lk.below(n, s) for lk in locks for n, s in removes)

        return exclusive

    def _check_locks(self, held, conds, caller, loc, protected):
        """The ``If`` header, then the lock tokens, against the lock table
        this write holds."""
        self._check_if(held.locks, conds, loc)
        self._check_tokens(held.locks, conds, caller, protected)

    def _check_if(self, locks, conds, loc):
        """412 ``PR412-DV-0003`` unless the ``If`` header holds."""
        if not conds.if_lists:
            return

        def state(names):
            if names is SELF:
                names, info = tuple(loc.names), loc.info
            else:
                other = self.locate(list(names))
                info = None if other.service_exec or other.foreign else other.info
            held = frozenset(lk.token for lk in locks if lk.covers(names))
            return (info.etag if info is not None else None), held

        if not conds.if_header_holds(state):
            raise DavError("PR412-DV-0003")

    def _check_tokens(self, locks, conds, caller, protected):
        """423 unless the caller submitted a token (as the lock's creator,
        RFC 4918 §6.4) for every locked resource the write changes:
        ``protected`` is [(names, whole tree)]; for a tree, every lock
        rooted below it counts too. Any lock covering a resource will do
        (shared locks: one of them)."""
        if not locks:
            return
        submitted = conds.submitted
        me = lock_identity(caller.principal)
        changed = []
        for names, tree in protected:
            changed.append(tuple(names))
            if tree:
                changed += [lk.root for lk in locks if lk.below(names, strict=True)]
        missing = []
        for names in dict.fromkeys(changed):
            covering = [lk for lk in locks if lk.covers(names)]
            if covering and not any(lk.token in submitted and lk.principal == me
                                    for lk in covering):
                missing += [lk for lk in covering if lk not in missing]
        if missing:
            raise DavError("PR423-DV-0001", condition="lock-token-submitted", locks=missing)


# every privilege without children: holding any privilege means holding one of these
LEAVES = ("read-properties", "read-acl", "bind", "unbind", "write-content",
          "write-properties", "write-acl", "exec")


def _grows(src, dst, move, depth):
    """The bytes a COPY or MOVE adds to the box: the copy's, less those of
    the destination it replaces."""
    added = 0
    if not move:
        if src.info.kind == "file":
            added = src.info.size
        elif depth == "infinity":
            added = file_bytes(src.path)
    removed = 0
    if dst.info is not None:
        removed = dst.info.size if dst.info.kind == "file" else file_bytes(dst.path)
    return added - removed


def _structural(src, dst):
    """Does a COPY or MOVE change a collection (then it locks the box whole)?"""
    return src.info.is_collection or (dst.info is not None and dst.info.is_collection)


def denied(principal):
    """401 for an anonymous caller (the web layer adds the challenges),
    403 for anyone else."""
    if principal is None or principal.anonymous:
        return DavError("PR401-AU-0001")
    return DavError("PR403-AU-0002")


def guess_type(name):
    return mimetypes.guess_type(name)[0] or "application/octet-stream"

