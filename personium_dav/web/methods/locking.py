"""Requests and locks: the ``If`` header (RFC 4918 §10.4) evaluated, and the
lock tokens a write must submit (§7.5), checked under the box's lock table.

A write holds the table (``Guard.hold``) around the part of its work that
holds the collection locks, then calls ``Guard.check`` with the state it read
there: 412 ``PR412-DV-0003`` when the If header is false, else 423
``PR423-DV-0001`` (``D:lock-token-submitted``) for every lock on what it
changes whose token it did not submit. A token counts only when the
principal that took the lock submits it (§6.4). What a write changes:

* the resource itself (PUT over a file, PROPPATCH): the locks covering it;
* a collection's membership (PUT of a new file, MKCOL, LOCK of an unmapped
  URL, DELETE, MOVE, COPY destination): the locks covering that collection,
  a depth-0 one included;
* a whole tree (DELETE, MOVE source, an overwritten destination): also the
  locks rooted anywhere below it.
"""
import contextlib
from urllib.parse import unquote_to_bytes, urlsplit

from ...dav import ifheader
from ...dav.errors import DavError
from ...dav.names import is_valid_name
from ...dav.xmlutil import escape


def identity(principal):
    """Who a lock belongs to: "" anonymous, "owner", or "{cell}#{account}"."""
    if principal is None or principal.anonymous:
        return ""
    if principal.owner:
        return "owner"
    return "%s#%s" % (principal.cell, principal.subject)


def hrefs(ctx, locks):
    """The ``D:href`` of each lock root, once."""
    roots = dict.fromkeys((lk.root, lk.collection) for lk in locks)
    return "".join("<D:href>%s</D:href>" % escape(ctx.href(list(root), collection))
                   for root, collection in roots)


class Guard:
    """The If header and lock tokens of one request (built on the reactor
    thread: a malformed If header is 400 ``PR400-DV-0009`` at once)."""

    def __init__(self, ctx, request):
        self.ctx = ctx
        raw = request.requestHeaders.getRawHeaders(b"if")
        self.lists = None
        if raw is not None:
            value = " ".join(v.decode("latin-1") for v in raw)
            try:
                self.lists = ifheader.parse(value)
            except ifheader.Malformed:
                raise DavError("PR400-DV-0009", "If", value)
        self.submitted = ifheader.tokens(self.lists)
        self.principal = identity(getattr(ctx, "principal", None))
        self.held = None

    @property
    def table(self):
        return self.ctx.server.locks

    @contextlib.contextmanager
    def hold(self, exclusive=False, removes=()):
        """Hold the box's lock table while the block runs; ``removes`` lists
        the (names, strict) whose locks (``Lock.below``) the write takes away,
        which makes the hold exclusive when there are any."""
        if removes and not exclusive:
            def exclusive(locks):
                return any(lk.below(n, s) for lk in locks for n, s in removes)
        with self.table.hold(self.ctx.cell, self.ctx.box, exclusive) as held:
            self.held = held
            try:
                yield held
            finally:
                self.held = None

    def locks(self):
        if self.held is not None:
            return self.held.locks
        return self.table.read(self.ctx.cell, self.ctx.box)

    def holds(self, lock):
        """Did this request submit the token of ``lock``, as its creator?"""
        return lock.token in self.submitted and lock.principal == self.principal

    def check(self, current=None, protected=()):
        """412 unless the If header holds; 423 unless every lock on the
        ``protected`` [(names, whole tree)] is held. ``current`` is the Info of
        the request URL as read under the collection lock (None: unmapped)."""
        locks = self.locks()
        if self.lists is not None and not ifheader.evaluate(self.lists,
                                                            self._state(locks, current)):
            raise DavError("PR412-DV-0003")
        # §7.5: a token for every locked resource the write changes; for a
        # tree, every lock root below it is such a resource. Any lock
        # covering a resource will do (shared locks: one of them).
        changed = []
        for names, tree in protected:
            changed.append(tuple(names))
            if tree:
                changed += [lk.root for lk in locks if lk.below(names, strict=True)]
        missing = []
        for names in dict.fromkeys(changed):
            covering = [lk for lk in locks if lk.covers(names)]
            if covering and not any(self.holds(lk) for lk in covering):
                missing += [lk for lk in covering if lk not in missing]
        if missing:
            raise DavError("PR423-DV-0001", condition="<D:lock-token-submitted>%s"
                           "</D:lock-token-submitted>" % hrefs(self.ctx, missing))

    def release(self, names, strict=False):
        """Drop the locks rooted at ``names`` (unless ``strict``) or below it."""
        if self.held is not None:
            self.held.drop(lambda lk: lk.below(names, strict))

    def _state(self, locks, current):
        ctx = self.ctx
        own = tuple(ctx.names)

        def state(tag):
            names = own if tag is None else self.names_of(tag)
            if names is None:  # not in this box: no state at all
                return None, frozenset()
            if names == own:
                info = current
            else:
                loc = ctx.tree.locate(ctx.tree.box_dir(ctx.cell, ctx.box), list(names))
                info = None if loc.service_exec or loc.foreign else loc.info
            # a lock's token matches every URL in its scope, mapped or not
            held = frozenset(lk.token for lk in locks if lk.covers(names))
            return (info.etag if info is not None else None), held

        return state

    def names_of(self, tag):
        """The names below this box of a resource tag (a URL, or an absolute
        path; host and scheme are not compared), or None."""
        ctx = self.ctx
        path = urlsplit(tag).path
        if not path.startswith(ctx.prefix + "/"):
            return None
        raw = path[len(ctx.prefix) + 1:].split("/")
        if raw and raw[-1] == "":
            raw.pop()
        try:
            names = [unquote_to_bytes(s).decode("utf-8") for s in raw]
        except UnicodeDecodeError:
            return None
        if names[:2] != [ctx.cell, ctx.box] or not all(map(is_valid_name, names[2:])):
            return None
        return tuple(names[2:])

