"""What file system the data root is on, and whether it is safe to serve.

The store is correct on a file system that shows every process, on every
host, the names, attributes and bytes as they are now: a local disk, or a
shared file system mounted without client-side caches of names and
attributes. A mount that caches them for a while (JuiceFS's default 1 s, NFS's
attribute cache) lets one host read a sidecar, a file or a lock table that
another host has replaced, even under the flock: old bytes and ETags,
deleted files served, locks missed, property updates lost. So at start
(``check``) the server reads ``/proc/self/mountinfo``, finds the mount
holding the data root and refuses it (``UnsafeMount``, naming the mount
options to use) unless it is known to be consistent:

* a local file system (on a block device, tmpfs, overlay...): safe, not shared;
* ``fuse.juicefs``: its ``.config`` (at the mount root, readable by root only)
  must show ``AttrTimeout``, ``EntryTimeout``, ``DirEntryTimeout``,
  ``NegEntryTimeout`` and ``OpenCache`` of 0 and no ``ReaddirCache``; when it cannot be read, the
  operator states it with ``--shared-mount-consistent``;
* ``nfs``/``nfs4``: the options must hold ``noac`` (or every ``ac*`` at 0)
  and ``lookupcache=none``;
* ``ceph`` (the kernel client) and ``fuse.ceph-fuse``: coherent by design
  (the MDS hands out capabilities);
* anything else (another ``fuse.*``, ``cifs``, ``9p``, ``glusterfs``...):
  only with ``--shared-mount-consistent``.

A mount that is not local is *shared*: its calls may block (a metadata
engine gone) and it may skip updating directory times, so the server
resolves URLs in a thread pool there and trusts no directory time
(docs/scale-out.md).

``RootWatch`` answers, cheaply and per request, whether the data root is
still the mount it was at start (a FUSE daemon that died leaves
``ENOTCONN``; a mount that vanished leaves the empty directory below it).
"""
import errno
import json
import os
import threading
import time
from dataclasses import dataclass

MOUNTINFO = "/proc/self/mountinfo"
LOCAL_TYPES = frozenset((
    "ext2", "ext3", "ext4", "xfs", "btrfs", "bcachefs", "zfs", "f2fs", "jfs", "reiserfs",
    "nilfs2", "tmpfs", "ramfs", "overlay", "fuse.fuse-overlayfs", "squashfs"))
COHERENT_TYPES = frozenset(("ceph", "fuse.ceph-fuse", "fuse.ceph"))
JUICEFS = "fuse.juicefs"
NFS_TYPES = frozenset(("nfs", "nfs4"))
JUICEFS_OPTIONS = "--enable-xattr --attr-cache 0 --entry-cache 0 --dir-entry-cache 0"
# .config key -> the juicefs mount option that sets it
JUICEFS_TIMEOUTS = {
    ("AttrTimeout",): "--attr-cache",
    ("EntryTimeout",): "--entry-cache",
    ("DirEntryTimeout",): "--dir-entry-cache",
    ("NegEntryTimeout",): "--negative-entry-cache",
    ("Meta", "OpenCache"): "--open-cache",
}
# errors that say the file system is not there (or not answering) now
UNAVAILABLE = frozenset((errno.EIO, errno.ENOTCONN, errno.ESTALE, errno.ETIMEDOUT,
                         errno.EHOSTDOWN, errno.ECONNABORTED, errno.ENXIO))


class UnsafeMount(Exception):
    """The data root is on a mount that can serve stale names or attributes."""


@dataclass(frozen=True)
class Mount:
    """One line of mountinfo: where, what, from where, with which options."""

    point: str
    fstype: str
    source: str
    options: tuple  # the mount's and the superblock's options, as written

    def option(self, name):
        """The value of ``name=value`` (True for a bare ``name``), or None."""
        for item in self.options:
            key, eq, value = item.partition("=")
            if key == name:
                return value if eq else True
        return None


@dataclass(frozen=True)
class Verdict:
    """What the server makes of the data root's mount."""

    mount: Mount
    shared: bool  # not a local file system: calls may block, directory times may lag
    how: str  # why it is accepted, for the start-up log


def _unescape(field):
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return (field.replace("\\040", " ").replace("\\011", "\t")
            .replace("\\012", "\n").replace("\\134", "\\"))


def parse(text):
    """The mounts of a mountinfo text, in its order (later mounts over earlier)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        sep = fields.index("-", 6)
        if len(fields) < sep + 3:
            continue
        fstype, source = fields[sep + 1], _unescape(fields[sep + 2])
        options = fields[5].split(",")
        if len(fields) > sep + 3:
            options += fields[sep + 3].split(",")
        mounts.append(Mount(_unescape(fields[4]), fstype, source, tuple(options)))
    return mounts


def mount_of(path, mounts):
    """The mount holding ``path`` (a real, absolute path): the last mounted
    of those whose mount point is the longest prefix of it."""
    best = None
    for m in mounts:
        point = m.point.rstrip("/") or "/"
        if path == point or path.startswith(point if point == "/" else point + "/"):
            if best is None or len(point) >= len(best.point.rstrip("/") or "/"):
                best = m
    return best


def read_juicefs_config(mount):
    """The parsed ``.config`` of a JuiceFS mount; PermissionError when this
    user may not read it (it is root's only)."""
    with open(os.path.join(mount.point, ".config"), "rb") as f:
        return json.loads(f.read().decode("utf-8"))


def judge(mount, declared=False, juicefs_config=read_juicefs_config):
    """A ``Verdict`` for ``mount``, or ``UnsafeMount`` saying what to do.
    ``declared``: the operator stated the mount is consistent
    (``--shared-mount-consistent``); it counts only where the server cannot
    see the mount's caches itself."""
    fstype = mount.fstype
    where = "the data root's mount %s (%s)" % (mount.point, fstype)
    if fstype in LOCAL_TYPES:
        return Verdict(mount, False, "local file system")
    if fstype == JUICEFS:
        try:
            config = juicefs_config(mount)
        except (PermissionError, FileNotFoundError):
            if declared:
                return Verdict(mount, True, "declared consistent (--shared-mount-consistent)")
            raise UnsafeMount(
                "%s: cannot read its .config to check its caches (it is readable by root "
                "only). Mount it with `juicefs mount %s ...` and start the server with "
                "--shared-mount-consistent to state it is mounted so." % (where, JUICEFS_OPTIONS))
        cached = []
        for keys, option in JUICEFS_TIMEOUTS.items():
            value = config
            for key in keys:
                value = value.get(key, 0) if isinstance(value, dict) else 0
            if value:
                cached.append("%s %gs" % (option, value / 1e9))
        if config.get("ReaddirCache"):
            cached.append("--readdir-cache")
        if cached:
            raise UnsafeMount(
                "%s caches names or attributes (%s): another host's changes would be "
                "seen late, and writes based on them lost. Mount it with `juicefs mount "
                "%s ...`." % (where, ", ".join(cached), JUICEFS_OPTIONS))
        return Verdict(mount, True, "JuiceFS without metadata caches (checked in .config)")
    if fstype in NFS_TYPES:
        noac = mount.option("noac") or all(
            mount.option(k) == "0" for k in ("acregmin", "acregmax", "acdirmin", "acdirmax"))
        if noac and mount.option("lookupcache") == "none":
            return Verdict(mount, True, "NFS with noac and lookupcache=none")
        raise UnsafeMount(
            "%s caches attributes or names: mount it with -o noac,lookupcache=none." % where)
    if fstype in COHERENT_TYPES:
        return Verdict(mount, True, "coherent shared file system")
    if mount.source.startswith("/dev/") and not fstype.startswith("fuse"):
        return Verdict(mount, False, "local file system on %s" % mount.source)
    if declared:
        return Verdict(mount, True, "declared consistent (--shared-mount-consistent)")
    raise UnsafeMount(
        "%s is not a file system this server knows to be consistent across hosts. If it "
        "shows every host's changes at once (no client cache of names, attributes or "
        "negative lookups), start the server with --shared-mount-consistent; see "
        "docs/scale-out.md." % where)


def check(root, declared=False, mountinfo=MOUNTINFO, juicefs_config=read_juicefs_config):
    """The ``Verdict`` on the data root ``root``; ``UnsafeMount`` when it
    must not be served. Without a readable mountinfo (not Linux) the root
    is taken for a local file system."""
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as f:
            mounts = parse(f.read())
    except OSError:
        mounts = []
    found = mount_of(os.path.realpath(root), mounts)
    if found is None:
        return Verdict(Mount("/", "unknown", "", ()), False, "no mount table")
    return judge(found, declared, juicefs_config)


def is_unavailable(error):
    """Is ``error`` the file system failing (not a missing file)?"""
    return isinstance(error, OSError) and error.errno in UNAVAILABLE


class Unavailable(Exception):
    """The data root is not the mount it was at start, or does not answer."""


class RootWatch:
    """Is the data root still there, on the mount it was on at start?

    Checked at most every ``period`` seconds (the verdict is kept in
    between): the root must ``stat``, be the very directory it was
    (device-independent: its inode number), sit on the same device as its
    mount point, and (on a shared mount) that mount point must still be a
    mount (its device not its parent's). A remount of the same volume passes again; a dead FUSE
    daemon (``ENOTCONN``), a vanished mount (the bare directory below it)
    or another volume does not."""

    def __init__(self, root, mount_point, shared=True, period=1.0, clock=time.monotonic):
        self.root = root
        # on a local file system only the root itself is checked: a bind
        # mount may share its parent's device
        self.point = mount_point if shared else "/"
        self.period = period
        self.clock = clock
        self.inode = os.stat(root).st_ino
        self._checked = None  # (when, error or None)
        self._lock = threading.Lock()

    def _probe(self):
        try:
            st = os.stat(self.root)
            if st.st_ino != self.inode:
                return "the data root %s is not the directory it was at start" % self.root
            if self.point not in ("/", self.root):
                point = os.stat(self.point)
                if point.st_dev != st.st_dev:
                    return "the data root %s is not on its mount %s any more" % (
                        self.root, self.point)
            if self.point != "/":
                point = st if self.point == self.root else os.stat(self.point)
                if os.stat(os.path.dirname(self.point)).st_dev == point.st_dev:
                    return "nothing is mounted at %s any more" % self.point
        except OSError as e:
            return "the data root %s does not answer: %s" % (self.root, e)
        return None

    def check(self):
        """Raise ``Unavailable`` when the data root is not its mount now;
        True when this call probed it (False: the kept verdict)."""
        now = self.clock()
        checked = self._checked
        probed = False
        if checked is None or now - checked[0] >= self.period:
            with self._lock:
                checked = self._checked
                if checked is None or now - checked[0] >= self.period:
                    checked = self._checked = (self.clock(), self._probe())
                    probed = True
        if checked[1] is not None:
            raise Unavailable(checked[1])
        return probed
