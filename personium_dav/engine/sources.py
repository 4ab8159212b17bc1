"""The routes and sources of service collections, read through the box API
and kept while they are unchanged.

A call needs the routes of its service collection (the ``p:service``
property, parsed once per distinct value: a new value comes with a new
sidecar entry) and the text of the sources it runs and ``require``s, under
``__src``. A source's text is kept with the validator of the file it was
read from (ETag, file id and size), and every call locates the file again
(an ``lstat`` per level, from the service collection the call's own walk
has just found, or from the box for a ``require``; the sidecars from their
cache, and for a file changed in the last two seconds its extended
attribute), so a
PUT of a new source is seen by the very next call in every server process.
Locating never follows a symlink: something planted under ``__src`` that is
not a plain file is no source at all.
"""
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import List, Optional

from ..dav import service as service_xml
from ..dav.errors import DavError
from ..dav.properties import SERVICE
from ..dav.xmlutil import parse
from ..store.props import Miss
from ..store.tree import SRC

INLINE_READ = 64 * 1024  # bytes of a source read on the reactor thread when not cached
KEPT_BYTES = 64 * 1024 * 1024  # source text kept, all collections together
KEPT_SERVICES = 1024  # distinct p:service values kept parsed


class TooLarge(Exception):
    """A source larger than a call may hold."""


@dataclass(frozen=True)
class Service:
    """A parsed ``p:service``: the ``subject`` account (or None) and the routes."""

    subject: Optional[str]
    routes: List[object]


class Sources:
    """One per server: parsed ``p:service`` values and source texts."""

    def __init__(self, kept_bytes=KEPT_BYTES):
        self.kept_bytes = kept_bytes
        self._services = {}  # p:service bytes -> Service, or None when it cannot be read
        self._texts = OrderedDict()  # file path -> (validator, text), least recent first
        self._size = 0
        self._lock = threading.Lock()  # sources are read on the reactor and in the pools

    def service(self, props):
        """The ``Service`` of a service collection's dead properties, or None
        when it has no ``p:service`` (or one that cannot be read)."""
        value = props.get(SERVICE)
        if value is None:
            return None
        try:
            return self._services[value]
        except KeyError:
            pass
        try:
            element = parse(value)
            found = Service(element.get("subject"), service_xml.validate(element))
        except DavError:
            found = None
        if len(self._services) >= KEPT_SERVICES:
            self._services.clear()
        self._services[value] = found
        return found

    def text(self, api, service_names, name, inline=False, limit=None, service_dir=None):
        """The text of ``__src/{name}`` of the service collection at
        ``service_names`` in the box ``api`` (walked from ``service_dir``, its
        directory, when the caller has just found it), or None when there is
        no such plain file. With ``inline``, ``Miss`` when that needs more
        than a cached read (a sidecar to parse, a large file to read: do it
        in a thread). ``TooLarge`` past ``limit`` bytes."""
        if service_dir is not None:
            loc = api.locate_source(service_dir, name, inline)
        else:
            loc = api.locate(list(service_names) + [SRC, name], inline)
        info = loc.info
        if info is None or loc.foreign or loc.service_exec or info.kind != "file" \
                or loc.parent_kind != "src":
            return None
        validator = (info.etag, info.fid, info.size)
        with self._lock:
            hit = self._texts.get(info.path)
            if hit is not None and hit[0] == validator:
                self._texts.move_to_end(info.path)
                return hit[1]
        if limit is not None and info.size > limit:
            raise TooLarge(name)
        if inline and info.size > INLINE_READ:
            raise Miss(info.path)
        data = api.content(info)
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        text = data.decode("utf-8", "replace")
        self._keep(info.path, validator, text)
        return text

    def _keep(self, path, validator, text):
        size = len(text)
        if size > self.kept_bytes // 4:
            return  # one huge source would push out every other
        with self._lock:
            old = self._texts.pop(path, None)
            if old is not None:
                self._size -= len(old[1])
            self._texts[path] = (validator, text)
            self._size += size
            while self._size > self.kept_bytes and self._texts:
                _, (_, dropped) = self._texts.popitem(last=False)
                self._size -= len(dropped)
