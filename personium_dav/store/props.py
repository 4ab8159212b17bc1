"""Dead-property stores: the XML sidecar of a collection, and an in-memory twin.

An ``Entry`` is what the store keeps for one member: its dead properties in
document order, as self-contained element bytes, plus a version counter and
a modification time (for the collection itself also its kind and creation
time). Entries are never mutated once published: a transaction copies the
ones it changes, so readers on other threads always see a whole state.
"""
import os
import threading
import time
from dataclasses import dataclass, field, replace
from xml.sax.saxutils import quoteattr

from lxml import etree
from zope.interface import implementer

from ..interfaces import IPropertyStore, IPropertyTransaction
from ..dav import xmlutil
from . import layout

SIDECAR_NS = "urn:x-personium-dav:sidecar"
FORMAT_VERSION = "1.0"
_S = "{%s}" % SIDECAR_NS
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


class CorruptSidecar(Exception):
    """A sidecar that cannot be read (unknown major version, not XML)."""


@dataclass(frozen=True)
class Entry:
    props: dict = field(default_factory=dict)  # (ns, local) -> element bytes
    version: int = 0
    modified: int = 0  # milliseconds since the epoch
    created: int = 0
    kind: str = ""  # collection's own entry: box, collection, service, src


class _Transaction:
    """Staging shared by both stores; ``_write`` makes it durable."""

    def __init__(self, store, state):
        self._store = store
        self.state = dict(state)

    def _entry(self, member):
        return self.state.get(member) or Entry()

    def set(self, member, key, value):
        entry = self._entry(member)
        props = dict(entry.props)
        props[key] = value
        self.state[member] = replace(entry, props=props)

    def remove(self, member, key):
        entry = self._entry(member)
        if key in entry.props:
            props = dict(entry.props)
            del props[key]
            self.state[member] = replace(entry, props=props)

    def touch(self, member, millis):
        entry = self._entry(member)
        self.state[member] = replace(entry, version=entry.version + 1, modified=millis)

    def drop(self, member):
        self.state.pop(member, None)

    def adopt(self, member, entry):
        self.state[member] = entry

    def commit(self):
        self._store._write(self.state)
        return self.state

    def abort(self):
        self.state = None


@implementer(IPropertyTransaction)
class Transaction(_Transaction):
    pass


@implementer(IPropertyStore)
class MemoryPropertyStore:
    """Properties kept in a dict: for tests and for embedders with no disk."""

    def __init__(self):
        self._state = {}
        self.lock = threading.Lock()

    def read(self):
        return self._state

    def begin(self):
        return Transaction(self, self._state)

    def _write(self, state):
        self._state = state


_cache = {}  # sidecar path -> (stat key, state, bytes, settled); shared by every store object


@implementer(IPropertyStore)
class SidecarPropertyStore:
    """The properties of one collection directory, in its sidecar file.

    A commit writes a temporary file beside it, fsyncs it (when durable),
    renames it over the sidecar and fsyncs the directory: a crash leaves the
    old file or the new one. Reads are cached and revalidated on the file's
    (inode, mtime_ns, ctime_ns, size) once that key has settled, and on its
    bytes before.
    """

    def __init__(self, directory, durable=True):
        self.directory = directory
        self.path = os.path.join(directory, layout.SIDECAR)
        self.durable = durable

    def read(self):
        return read_state(self.directory)

    def _load(self):
        """The state in the file now; parsed only when its bytes differ from
        the cached copy's (equal bytes are the same state)."""
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
        except FileNotFoundError:
            return {}
        hit = _cache.get(self.path)
        state = hit[1] if hit is not None and hit[2] == data else decode(data)
        _remember(self.path, st, state, data)
        return state

    def begin(self):
        # read from disk, not from the cache: another server process on the
        # same data root may have committed since, and the cache key
        # (inode, mtime, size) can repeat (inodes are reused, mtimes are coarse)
        # -- the bytes are compared with the cached ones instead
        return Transaction(self, self._load())

    def _write(self, state):
        data = encode(state)
        tmp = os.path.join(self.directory, layout.SIDECAR_TMP)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                if self.durable:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:  # a full disk: the old sidecar stays, no partial copy beside it
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        if self.durable:
            layout.fsync_dir(self.directory)
        _remember(self.path, os.stat(self.path), state, data)


def _key(st):
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size


def _remember(path, st, state, data):
    """Cache a state; its stat key is trusted by ``read`` only once settled
    (until then ``read`` compares the bytes: layout.SETTLE_NS)."""
    _cache[path] = (_key(st), state, data, layout.settled(st, time.time_ns()))


def read_state(directory):
    """The state of a collection's sidecar, from the cache while the file's
    settled stat key is unchanged: what every request reads, once per
    collection on its path, so it is one ``stat`` when nothing changed."""
    path = directory + _SIDECAR_SUFFIX
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {}
    hit = _cache.get(path)
    if hit is not None and hit[3] and hit[0] == _key(st):
        return hit[1]
    return SidecarPropertyStore(directory)._load()


_SIDECAR_SUFFIX = os.sep + layout.SIDECAR


def encode(state):
    """The sidecar document for a state (values are inserted verbatim)."""
    out = [
        b'<?xml version="1.0" encoding="utf-8"?>\n<s:sidecar xmlns:s="',
        SIDECAR_NS.encode(),
        b'" version="' + FORMAT_VERSION.encode() + b'">\n',
    ]
    for member, entry in state.items():
        if member == "":
            head = '<s:self kind=%s version="%d" created="%d" modified="%d">' % (
                quoteattr(entry.kind), entry.version, entry.created, entry.modified)
            tail = b"</s:self>\n"
        else:
            head = '<s:member name=%s version="%d" modified="%d">' % (
                quoteattr(member), entry.version, entry.modified)
            tail = b"</s:member>\n"
        out.append(head.encode("utf-8"))
        out.extend(entry.props.values())
        out.append(tail)
    out.append(b"</s:sidecar>\n")
    return b"".join(out)


def decode(data):
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as e:
        raise CorruptSidecar(str(e))
    if root.tag != _S + "sidecar":
        raise CorruptSidecar("not a sidecar")
    major = (root.get("version") or "").split(".")[0]
    if major != FORMAT_VERSION.split(".")[0]:
        raise CorruptSidecar("unknown sidecar version %r" % root.get("version"))
    state = {}
    for node in xmlutil.children(root):
        props = {xmlutil.split(c.tag): xmlutil.freeze(c) for c in xmlutil.children(node)}
        entry = Entry(
            props=props,
            version=int(node.get("version", "0")),
            modified=int(node.get("modified", "0")),
            created=int(node.get("created", "0")),
            kind=node.get("kind", ""),
        )
        state["" if node.tag == _S + "self" else node.get("name")] = entry
    return state
