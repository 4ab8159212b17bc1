"""The XML sidecar of a collection: its own state and its files' dead properties.

A state is a dict: ``""`` -> ``(Entry,)`` for the collection itself, and a
file's name -> the entries kept for that name, each tagged with the file id
(``Entry.fid``) of the file it belongs to. A file's id sits in its own
``user.pdav`` (``layout``) and moves with it; the entry a file shows is the
one with its id. So a file can replace another in one ``rename(2)`` with
both sets of properties on disk: the incoming file's entry is written
beside the old one first, and the old one is dropped after (store/tree.py).
Files from before ids have ``fid`` "" and match entries without one.

Entries are never changed once made: a transaction copies what it changes,
so a reader on another thread always sees a whole state, and a cached
``Info`` can be trusted while its entry is the very same object.

The file is a base document followed by change records (format 3): a
commit appends one record holding the whole entries of every name it
changed, so a PROPPATCH writes a few hundred bytes and one fsync instead of
a new file, its fsync, a rename and the directory's fsync. A record begins
with a NUL byte, which no XML document can hold, then its length and CRC-32
in hex and a newline; a torn or partly visible record fails its check and,
with everything after it, is not part of the state (the next commit writes
over it). Once the records outgrow the base (and ``COMPACT_AT``), or when
the base is of a format before 3 (which no record may follow), a commit
writes a new base instead, as every commit did before (docs/storage.md).
"""
import collections
import os
import re
import threading
import time
import zlib
from dataclasses import dataclass, field, replace
from xml.sax.saxutils import quoteattr

from lxml import etree

from ..dav import xmlutil
from . import layout

SIDECAR_NS = "urn:x-personium-dav:sidecar"
FORMAT_VERSION = "3.0"  # 3: change records; 2: members carry the id of their file
_READABLE = ("1", "2", "3")
_APPENDABLE = re.compile(rb'<[^?!][^>]*?\sversion="3\.')  # a base records may follow
_S = "{%s}" % SIDECAR_NS
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


class CorruptSidecar(Exception):
    """A sidecar that cannot be read (unknown major version, not XML)."""


class Miss(Exception):
    """An inline read would have to parse a large sidecar: do it in a thread."""


INLINE_PARSE = 16 * 1024  # bytes of a sidecar an inline read may parse (a few ms)
INLINE_READ = 1024 * 1024  # bytes an inline read may read to compare with its cache
COMPACT_AT = 16 * 1024  # bytes of records a sidecar keeps before a new base, at least
RECORD = b"\0"  # begins a change record: no XML document holds a NUL


@dataclass(frozen=True)
class Entry:
    props: dict = field(default_factory=dict)  # (ns, local) -> element bytes
    version: int = 0
    modified: int = 0  # milliseconds since the epoch
    created: int = 0
    kind: str = ""  # the collection's own entry: box, collection, service, src
    fid: str = ""  # a file's entry: the id of the file it belongs to


def find(state, name, fid=""):
    """The entry of ``name`` for the file ``fid`` (the collection: "", "")."""
    for entry in state.get(name, ()):
        if entry.fid == fid:
            return entry
    return None


def own(state):
    """The collection's own entry, or None."""
    found = state.get("")
    return found[0] if found else None


class Transaction:
    """Changes staged on a copy of a state; ``commit`` writes them at once."""

    def __init__(self, sidecar, state, origin=None):
        self._sidecar = sidecar
        self._base = state
        self._origin = origin  # the file's bytes it was read from (whole records), or None
        self.state = dict(state)
        self.changed = False  # whether a commit would write anything new

    def entry(self, name, fid=""):
        return find(self.state, name, fid)

    def put(self, name, fid, entry):
        """Give the file ``fid`` (at ``name``) this entry, beside the others."""
        others = tuple(e for e in self.state.get(name, ()) if e.fid != fid)
        self.state[name] = others + (replace(entry, fid=fid),)
        self.changed = True

    def _change(self, name, fid, **changes):
        entry = self.entry(name, fid) or Entry()
        self.put(name, fid, replace(entry, **changes))

    def set(self, name, fid, key, value):
        entry = self.entry(name, fid) or Entry()
        self._change(name, fid, props={**entry.props, key: value})

    def remove(self, name, fid, key):
        entry = self.entry(name, fid)
        if entry is not None and key in entry.props:
            props = dict(entry.props)
            del props[key]
            self._change(name, fid, props=props)

    def touch(self, name, fid, millis):
        entry = self.entry(name, fid) or Entry()
        self._change(name, fid, version=entry.version + 1, modified=millis)

    def keep(self, name, fids=()):
        """Drop the entries of ``name`` whose file is none of ``fids``."""
        entries = self.state.get(name, ())
        kept = tuple(e for e in entries if e.fid in fids)
        if len(kept) == len(entries):
            return
        self.changed = True
        if kept:
            self.state[name] = kept
        else:
            del self.state[name]

    def commit(self):
        self._sidecar.write(self.state, self._base, self._origin)
        return self.state


class Sidecars:
    """The sidecars of one data root, read through a bounded cache.

    A commit appends a change record (fsynced, when durable) or, when the
    records have outgrown the base, writes a temporary file beside the
    sidecar, fsyncs it, renames it over and fsyncs the directory: a crash
    leaves the state before the commit or after it. A read is served from
    the cache while the file's (inode, mtime_ns, ctime_ns, size) is
    unchanged and settled (``layout.settled``); a transaction always reads
    the bytes, and only what follows the cached bytes is parsed (another
    process on the data root may have committed). The cache keeps the least
    recently read sidecars up to ``budget`` bytes of files."""

    def __init__(self, durable=True, budget=64 * 1024 * 1024):
        self.durable = durable
        self.budget = budget
        self._cache = collections.OrderedDict()  # path -> (key, state, bytes, settled)
        self._size = 0
        self._lock = threading.Lock()

    def read(self, directory, inline=False):
        """The state of a collection's sidecar ({} when it has none). With
        ``inline`` (on the reactor thread) a read that would parse more than
        ``INLINE_PARSE`` bytes, or read more than ``INLINE_READ``, raises
        ``Miss`` instead."""
        path = directory + _SUFFIX
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return {}
        hit = self._cache.get(path)
        if hit is not None and hit[3] and hit[0] == _key(st):
            return hit[1]
        if inline and st.st_size > (INLINE_READ if hit is not None else INLINE_PARSE):
            raise Miss(path)
        return self.load(directory, INLINE_PARSE if inline else None)

    def load(self, directory, parse_limit=None):
        """The state in the file now (only the bytes after the cached ones
        are parsed; ``Miss`` when they are more than ``parse_limit``)."""
        return self._load(directory, parse_limit)[0]

    def _load(self, directory, parse_limit=None):
        """(state, the file's bytes up to its last whole record) or ({}, None)."""
        path = directory + _SUFFIX
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
        except FileNotFoundError:
            return {}, None
        hit = self._cache.get(path)
        if hit is not None and data.startswith(hit[2]):
            if len(data) == len(hit[2]):
                state, end = hit[1], len(data)
            else:  # records appended since: apply them to a copy
                if parse_limit is not None and len(data) - len(hit[2]) > parse_limit:
                    raise Miss(path)
                state = dict(hit[1])
                end = _apply_records(state, data, len(hit[2]))
                if end == len(hit[2]):  # only a torn record: nothing new
                    state = hit[1]
        elif parse_limit is not None and len(data) > parse_limit:
            raise Miss(path)
        else:
            state, end = _decode(data)
        good = data if end == len(data) else data[:end]
        self._remember(path, st, state, good)
        return state, good

    def begin(self, directory):
        """A transaction on the sidecar as it is on disk (the caller holds
        the directory's lock until it commits)."""
        state, origin = self._load(directory)
        return Transaction(_Bound(self, directory), state, origin)

    def write(self, directory, state, base=None, origin=None):
        """Make ``state`` the sidecar's: a record of what differs from
        ``base`` appended to ``origin`` (the file's bytes ``base`` was read
        from), or a new file."""
        if origin is not None and base is not None:
            names = _changed(base, state)
            if not names:
                return
            payload = encode(state, names)
            end = origin.find(RECORD)
            base_size = len(origin) if end < 0 else end
            if (len(origin) - base_size + len(payload) <= max(COMPACT_AT, base_size)
                    and _APPENDABLE.search(origin, 0, 512)):
                self._append(directory, state, origin, payload)
                return
        self._rewrite(directory, state)

    def _append(self, directory, state, origin, payload):
        path = directory + _SUFFIX
        record = _record(payload)
        fd = os.open(path, os.O_WRONLY)
        try:
            size = os.fstat(fd).st_size
            done = 0
            while done < len(record):
                done += os.pwrite(fd, record[done:], len(origin) + done)
            if size > len(origin) + len(record):  # what a torn record left
                os.ftruncate(fd, len(origin) + len(record))
            if self.durable:
                os.fsync(fd)
            st = os.fstat(fd)
        except BaseException:
            try:  # a full disk: the record goes, the state before it stays
                os.ftruncate(fd, len(origin))
            except OSError:
                pass  # a reader skips what fails its check anyway
            raise
        finally:
            os.close(fd)
        self._remember(path, st, state, origin + record)

    def _rewrite(self, directory, state):
        data = encode(state)
        path = directory + _SUFFIX
        tmp = os.path.join(directory, layout.SIDECAR_TMP)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                if self.durable:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:  # a full disk: the old sidecar stays, no partial copy beside it
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        if self.durable:
            layout.fsync_dir(directory)
        self._remember(path, os.stat(path), state, data)

    def _remember(self, path, st, state, data):
        with self._lock:
            old = self._cache.pop(path, None)
            if old is not None:
                self._size -= len(old[2])
            if len(data) > self.budget:
                return
            self._cache[path] = (_key(st), state, data, layout.settled(st, time.time_ns()))
            self._size += len(data)
            while self._size > self.budget:
                self._size -= len(self._cache.popitem(last=False)[1][2])

    def forget(self):
        """Empty the cache (tests; an embedder that wants the memory back)."""
        with self._lock:
            self._cache.clear()
            self._size = 0


class _Bound:
    """A transaction's way back to its sidecar."""

    def __init__(self, sidecars, directory):
        self.sidecars, self.directory = sidecars, directory

    def write(self, state, base=None, origin=None):
        self.sidecars.write(self.directory, state, base, origin)


_SUFFIX = os.sep + layout.SIDECAR


def _key(st):
    return st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size


def _changed(base, state):
    """The names whose entries differ (entries are never changed in place)."""
    names = [name for name, entries in state.items() if base.get(name) is not entries]
    return names + [name for name in base if name not in state]


def encode(state, names=None):
    """The sidecar document for a state (values are inserted verbatim), or
    with ``names`` the payload of a change record: each name dropped, then
    its entries now."""
    if names is None:
        out = [b'<?xml version="1.0" encoding="utf-8"?>\n<s:sidecar xmlns:s="',
               SIDECAR_NS.encode(), b'" version="' + FORMAT_VERSION.encode() + b'">\n']
        items = state.items()
    else:
        out = [b'<s:change xmlns:s="', SIDECAR_NS.encode(), b'">']
        out.extend(b"<s:drop name=%s/>" % quoteattr(name).encode("utf-8") for name in names)
        items = [(name, state.get(name, ())) for name in names]
    for name, entries in items:
        for entry in entries:
            if name == "":
                head = '<s:self kind=%s version="%d" created="%d" modified="%d">' % (
                    quoteattr(entry.kind), entry.version, entry.created, entry.modified)
                tail = b"</s:self>\n"
            else:
                fid = ' id=%s' % quoteattr(entry.fid) if entry.fid else ""
                head = '<s:member name=%s%s version="%d" modified="%d">' % (
                    quoteattr(name), fid, entry.version, entry.modified)
                tail = b"</s:member>\n"
            out.append(head.encode("utf-8"))
            out.extend(entry.props.values())
            out.append(tail)
    out.append(b"</s:sidecar>\n" if names is None else b"</s:change>")
    return b"".join(out)


def yield_gil():
    """Let the reactor thread run: a long computation in a pool thread
    (parsing a large sidecar, listing a large collection) would otherwise
    hold the GIL for up to the interpreter's switch interval (5 ms) every
    time the reactor wants it back, several times per request it serves."""
    time.sleep(0)


def decode(data):
    """The state of a sidecar file's bytes (base and whole records)."""
    return _decode(data)[0]


def _decode(data):
    """(state, the offset after the last whole record)."""
    end = data.find(RECORD)
    root = _parse(data if end < 0 else data[:end])
    if root.tag != _S + "sidecar":
        raise CorruptSidecar("not a sidecar")
    if (root.get("version") or "").split(".")[0] not in _READABLE:
        raise CorruptSidecar("unknown sidecar version %r" % root.get("version"))
    state = {}
    _apply(state, root)
    return state, (len(data) if end < 0 else _apply_records(state, data, end))


def _record(payload):
    """A change record: NUL, the payload's length and CRC-32 in hex, newline, payload."""
    return RECORD + b"%08x %08x\n" % (len(payload), zlib.crc32(payload)) + payload


_HEAD = len(_record(b""))  # the bytes before a record's payload


def _apply_records(state, data, offset):
    """Apply the whole records from ``offset`` on to ``state``; the offset
    after the last one (a torn or foreign tail ends them)."""
    while offset + _HEAD <= len(data) and data[offset:offset + 1] == RECORD:
        head = data[offset + 1:offset + _HEAD]
        if head[8:9] != b" " or head[17:] != b"\n":
            break
        try:
            length, crc = int(head[:8], 16), int(head[9:17], 16)
        except ValueError:
            break
        start = offset + _HEAD
        payload = data[start:start + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            break
        try:
            root = _parse(payload)
        except CorruptSidecar:
            break
        if root.tag != _S + "change":
            break
        _apply(state, root)
        offset = start + length
    return offset


def _parse(data):
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as e:
        raise CorruptSidecar(str(e))


def _apply(state, root):
    """The entries of a base document or a change record, over ``state``."""
    for i, node in enumerate(xmlutil.children(root)):
        if i % 64 == 63:
            yield_gil()
        if node.tag == _S + "drop":
            state.pop(node.get("name"), None)
            continue
        props = {xmlutil.split(c.tag): xmlutil.freeze(c) for c in xmlutil.children(node)}
        entry = Entry(
            props=props,
            version=int(node.get("version", "0")),
            modified=int(node.get("modified", "0")),
            created=int(node.get("created", "0")),
            kind=node.get("kind", ""),
            fid=node.get("id", ""),
        )
        name = "" if node.tag == _S + "self" else node.get("name")
        others = tuple(e for e in state.get(name, ()) if e.fid != entry.fid)
        state[name] = others + (entry,)
