"""The twisted.web resources: one class per kind of thing a URL can name.

``DavRoot`` is the only resource in the twisted.web tree (a leaf): it walks
the request path itself, finds what it names on disk, and hands the request
to a fresh resource of the right kind. Each kind lists the methods it takes
(the exact ``Allow``); anything else is 405 with ``Allow``, never
twisted.web's bare 501.
"""
import re
from urllib.parse import quote

from twisted.internet.defer import Deferred
from twisted.web.resource import Resource

from ..auth import endpoint
from ..auth.privileges import Target, acls_along, acls_of
from .envelope import ALL_METHODS, state
from ..dav.errors import DavError
from .methods import (acl, copymove, delete, get, lock, locking, mkcol, options, propfind,
                      proppatch, put)
from .methods.common import in_thread
from ..dav.names import is_valid_name
from ..store.provision import BOX_NAME, CELL_NAME
from .reply import Reply, respond

TOKEN = "__token"  # POST {CellURL}__token: the cell's token endpoint



_PLAIN = re.compile(r"[A-Za-z0-9_.~!$&'()+,;=@-]*").fullmatch  # what quote() keeps


def quote_segment(name):
    if _PLAIN(name):
        return name  # nothing to quote (the common case, and a fast one)
    return quote(name, safe="!$&'()+,;=@~")


_prefixes = {}  # request.prepath (a tuple) -> the href prefix it makes


def _prefix(prepath):
    key = tuple(prepath)
    prefix = _prefixes.get(key)
    if prefix is None:
        prefix = "".join("/" + quote_segment(p.decode("utf-8", "replace")) for p in key)
        if len(_prefixes) < 64:  # an embedder mounts the resource at a few places
            _prefixes[key] = prefix
    return prefix


class Context:
    """What a request's handlers share: the server, and where the box is."""

    def __init__(self, server, request, cell=None, box=None, names=()):
        self.server = server
        self.tree = server.tree
        self.config = server.config
        self.request = request
        self.prefix = _prefix(request.prepath)
        self.cell, self.box, self.names = cell, box, list(names)
        self._cell_url = None

    def href(self, names, collection):
        path = "".join("/" + quote_segment(n) for n in [self.cell, self.box, *names])
        return self.prefix + path + ("/" if collection else "")

    def url(self, names, collection=True):
        request = self.request
        scheme = b"https" if request.isSecure() else b"http"
        host = request.getHeader(b"host") or b"localhost"
        return "%s://%s%s" % (scheme.decode(), host.decode("latin-1"), self.href(names, collection))

    def parent_url(self):
        return self.url(self.names[:-1])

    def cell_url(self):
        """``{scheme}://{host}{prefix}/{cell}/``: the realm of the challenges."""
        if self._cell_url is None:
            self._cell_url = acl.cell_url(self)
        return self._cell_url

    def acls(self, names):
        """The ACLs that govern ``names`` (the box's first): from what
        resolving the request read on its way when ``names`` is the request
        path or a prefix of it, else read along ``names``."""
        loc = getattr(self, "loc", None)
        if loc is not None and loc.chain and names == self.names[:len(names)]:
            return acls_of(loc.chain[:len(names) + 1])
        return acls_along(self.tree, self.tree.box_dir(self.cell, self.box), names)


class DavRoot(Resource):
    """The whole URL space of a data root: /{cell}/{box}/{path...}."""

    isLeaf = True

    def __init__(self, server):
        super().__init__()
        self._server = server

    @property
    def server(self):
        """The state requests share. twisted.web's ``putChild`` assigns
        ``child.server`` (the parent's, usually None): that is ignored."""
        return self._server

    @server.setter
    def server(self, value):
        pass

    def render(self, request):
        request.defaultContentType = None
        try:  # SPEC §9: the request key first, then the overrides, then routing
            st = self.server.envelope.begin(request)
        except DavError as error:
            return respond(request, _raiser(error))
        if st.preflight:  # CORS preflight: answered without authentication
            return respond(request, lambda r: Reply(200, headers={"Allow": ALL_METHODS}))
        try:
            resource = self.resolve(request)
        except Exception as error:  # an unreadable sidecar, a disk error: JSON 500, logged
            return respond(request, _raiser(error))
        return resource.render(request)

    def resolve(self, request):
        segments = list(request.postpath)
        if segments and segments[-1] == b"":
            segments.pop()
        ctx = Context(self.server, request)
        # a segment that is not UTF-8 keeps its bad bytes as "\xff": never a
        # valid name (SPEC §3), so 403 to create it and 404 for the rest
        names = [s.decode("utf-8", "backslashreplace") for s in segments]
        if not names:
            return Unknown(ctx, DavError("PR404-MC-0001"))
        cell = names[0]
        tree = self.server.tree
        if not CELL_NAME.match(cell) or not tree.cell_exists(cell):
            return Unknown(ctx, DavError("PR404-DV-0003"))
        if len(names) == 1:
            return Unknown(ctx, DavError("PR404-MC-0001"))
        if names[1] == TOKEN and len(names) == 2:
            ctx.cell = cell
            return TokenEndpoint(ctx)
        ctx.cell, ctx.box = cell, names[1]
        if not BOX_NAME.match(ctx.box) or not tree.box_exists(cell, ctx.box):
            return Unknown(ctx, DavError("PR404-DV-0002", ctx.url([])))
        ctx.names = names[2:]
        for name in ctx.names[:-1]:
            if not is_valid_name(name):
                return Unknown(ctx, DavError("PR404-DV-0001", ctx.url(ctx.names, False)))
        if ctx.names and not is_valid_name(ctx.names[-1]):
            return BadName(ctx)
        loc = tree.locate(tree.box_dir(cell, ctx.box), ctx.names)
        ctx.loc = loc
        if loc.foreign:  # a planted symlink: as if the name were invalid
            return BadName(ctx)
        if loc.service_exec:
            return ServiceExecution(ctx)
        if loc.info is None:
            return Null(ctx) if loc.parent_dir is not None else Orphan(ctx)
        return KINDS[loc.info.kind](ctx)


class DavResource(Resource):
    """Dispatch to ``render_METHOD``; 405 with ``Allow`` for the rest."""

    isLeaf = True
    methods = ("OPTIONS",)  # what the resource takes: the Allow header
    # SPEC §9: the privileges a method needs, each on "self" (the resource)
    # or "parent" (its collection); MOVE and COPY also need bind on the
    # Destination's parent (``needs``). A method not listed needs none.
    privileges = {
        "GET": (("read", "self"),),
        "HEAD": (("read", "self"),),
        "PROPFIND": (("read-properties", "self"),),
        "PROPPATCH": (("write-properties", "self"),),
        "PUT": (("write-content", "self"),),
        "DELETE": (("unbind", "parent"),),
        "MKCOL": (("bind", "parent"),),
        "MOVE": (("unbind", "parent"),),
        "COPY": (("read", "self"),),
        "ACL": (("write-acl", "self"),),
        # RFC 3744 §3.2: DAV:write-content covers LOCK (and UNLOCK)
        "LOCK": (("write-content", "self"),),
        "UNLOCK": (("write-content", "self"),),
    }
    # methods that take no locks but still answer 412 to a false If header
    conditional = ("GET", "HEAD", "PROPFIND", "ACL")
    checked = True  # False: no authentication at all (outside any box)

    def __init__(self, ctx):
        super().__init__()
        self.ctx = ctx

    def allow(self):
        return ", ".join(self.methods).encode()

    def needs(self, method, request):
        """[(privilege, names below the box)] that ``method`` needs here."""
        names = self.ctx.names
        out = [(privilege, names if where == "self" else names[:-1])
               for privilege, where in self.privileges.get(method, ())]
        if method in ("MOVE", "COPY"):
            try:
                _, destination = copymove._destination(self.ctx, request)
            except DavError:
                destination = None  # the handler answers the bad Destination
            if destination:
                out.append(("bind", destination[:-1]))
        return out

    def guarded(self, method, handler):
        """``handler`` behind authentication and the privilege check."""
        if not self.checked:
            return handler
        ctx = self.ctx
        envelope = ctx.server.envelope

        def run(request):
            st = state(request)
            if st is not None:
                st.cell, st.box, st.names = ctx.cell, ctx.box, ctx.names
                st.url_of_cell = ctx.cell_url
                st.kind = self.event_kind(method)
            principal = envelope.authenticate(request, ctx.cell, ctx.cell_url)
            if isinstance(principal, Deferred):
                return principal.addCallback(authorize, request)
            return authorize(principal, request)

        def authorize(principal, request):
            ctx.principal = principal
            for privilege, names in self.needs(method, request):
                target = Target(ctx.cell, ctx.box, names, ctx.acls(names))
                envelope.authorize(principal, privilege, target, ctx.cell_url)
            if (method in self.conditional and request.getHeader(b"if") is not None
                    and handler != self.fallback):
                guard = locking.Guard(ctx, request)  # a malformed If: 400 now
                d = in_thread(guard.check, getattr(ctx.loc, "info", None))
                return d.addCallback(lambda _: handler(request))
            return handler(request)

        return run

    def event_kind(self, method):
        """The resource kind named in the event log (davfile, davcol, ...)."""
        info = getattr(getattr(self.ctx, "loc", None), "info", None)
        if info is not None:
            return info.kind
        return {"PUT": "file", "MKCOL": "collection", "LOCK": "file"}.get(method, "")

    def render(self, request):
        method = request.method.decode("latin-1")
        if method == "HEAD" and "HEAD" in self.methods:
            method = "GET"
        # twisted.web's Resource.render_HEAD calls render_GET, which most
        # kinds lack (HEAD on a missing resource was a 500): never inherit it
        handler = getattr(self, "render_" + method, None) if method != "HEAD" else None
        if method == "REPORT":
            handler = _raiser(DavError("PR501-MC-0001"))
        elif handler is None:
            handler = self.fallback
        return respond(request, self.guarded(method, handler))

    def fallback(self, request):
        raise DavError("PR405-MC-0001", headers={"Allow": self.allow()})

    render_OPTIONS = options.render


def _raiser(error):
    def handler(request):
        raise error

    return handler


class Unknown(DavResource):
    """Outside any box: the given error for everything but OPTIONS."""

    checked = False

    def __init__(self, ctx, error):
        super().__init__(ctx)
        self.error = error

    def fallback(self, request):
        raise self.error


class Lockable(DavResource):
    """A resource that takes LOCK and UNLOCK (every kind that exists)."""

    render_LOCK = lock.render_lock
    render_UNLOCK = lock.render_unlock


class Box(Lockable):
    methods = ("OPTIONS", "GET", "HEAD", "PROPFIND", "PROPPATCH", "ACL", "LOCK", "UNLOCK")
    render_ACL = acl.render
    render_GET = get.render_collection
    render_PROPFIND = propfind.render
    render_PROPPATCH = proppatch.render
    render_MKCOL = mkcol.render_existing


class Collection(Lockable):
    methods = ("OPTIONS", "GET", "HEAD", "PROPFIND", "PROPPATCH", "DELETE", "MOVE", "COPY",
               "ACL", "LOCK", "UNLOCK")
    render_ACL = acl.render
    render_GET = get.render_collection
    render_PROPFIND = propfind.render
    render_PROPPATCH = proppatch.render
    render_DELETE = delete.render
    render_MOVE = copymove.render_move
    render_COPY = copymove.render_copy
    render_MKCOL = mkcol.render_existing


class ServiceCollection(Lockable):
    methods = ("OPTIONS", "PROPFIND", "PROPPATCH", "DELETE", "MOVE", "ACL", "LOCK", "UNLOCK")
    render_ACL = acl.render
    render_PROPFIND = propfind.render
    render_PROPPATCH = proppatch.render
    render_DELETE = delete.render
    render_MOVE = copymove.render_move
    render_MKCOL = mkcol.render_existing


class SourceCollection(Lockable):
    """``__src``: a lock on it guards its membership (which sources exist)."""

    methods = ("OPTIONS", "PROPFIND", "ACL", "LOCK", "UNLOCK")
    render_ACL = acl.render
    render_PROPFIND = propfind.render

    def render_MOVE(self, request):
        raise DavError("PR400-DV-0011")


class File(Lockable):
    methods = ("OPTIONS", "GET", "HEAD", "PUT", "DELETE", "PROPFIND", "PROPPATCH", "COPY", "MOVE",
               "ACL", "LOCK", "UNLOCK")
    render_ACL = acl.render
    render_GET = get.render_file
    render_PUT = put.render
    render_DELETE = delete.render
    render_PROPFIND = propfind.render
    render_PROPPATCH = proppatch.render
    render_MOVE = copymove.render_move
    render_COPY = copymove.render_copy
    render_MKCOL = mkcol.render_existing


class Null(DavResource):
    """Nothing there yet, in an existing collection: PUT and MKCOL create,
    and so does LOCK (an empty file, RFC 4918 §7.3) but in ``__src``, whose
    sources are made by PUT with their Content-Type (SPEC §5)."""

    @property
    def methods(self):
        if self.ctx.loc.parent_kind == "src":
            return ("OPTIONS", "PUT")
        return ("OPTIONS", "PUT", "MKCOL", "LOCK")

    privileges = dict(DavResource.privileges, PUT=(("bind", "parent"),),
                      LOCK=(("bind", "parent"),))
    render_PUT = put.render
    render_MKCOL = mkcol.render

    def render_LOCK(self, request):
        if "LOCK" not in self.methods:
            raise DavError("PR405-MC-0001", headers={"Allow": self.allow()})
        return lock.render_lock(self, request)

    def fallback(self, request):
        raise DavError("PR404-DV-0001", self.ctx.url(self.ctx.names, False))


class Orphan(Null):
    """The parent collection is missing: 409 for PUT and MKCOL, 404 otherwise."""

    methods = ("OPTIONS",)

    def render_PUT(self, request):
        raise DavError("PR409-DV-0001", self.ctx.parent_url())

    render_MKCOL = render_LOCK = render_PUT


class BadName(Null):
    """The last segment is not a valid name: 403 to create, 404 otherwise."""

    methods = ("OPTIONS",)

    def render_PUT(self, request):
        raise DavError("PR403-DV-0004", self.ctx.names[-1])

    render_MKCOL = render_LOCK = render_PUT


class ServiceExecution(DavResource):
    """Below a service collection, outside __src: the engine's, not ours."""

    def needs(self, method, request):
        return [("exec", self.ctx.names)]

    def event_kind(self, method):
        return "service"

    def fallback(self, request):
        raise DavError("PR501-MC-0002", "service execution")

    render_OPTIONS = fallback


class TokenEndpoint(DavResource):
    """``POST {CellURL}__token``: the cell's OAuth2 token endpoint; it needs
    no authentication (it is where credentials are exchanged)."""

    methods = ("OPTIONS", "POST")
    checked = False

    def render_POST(self, request):
        st = state(request)
        if st is not None:
            st.cell, st.url_of_cell, st.kind = self.ctx.cell, self.ctx.cell_url, "token"
        cookie_path = self.ctx.prefix + "/" + self.ctx.cell + "/"
        return endpoint.issue(self.ctx.server.auth, request, self.ctx.cell, cookie_path)


KINDS = {
    "box": Box,
    "collection": Collection,
    "service": ServiceCollection,
    "src": SourceCollection,
    "file": File,
}
