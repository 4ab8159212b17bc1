"""The twisted.web resources: one class per kind of thing a URL can name.

``DavRoot`` is the only resource in the twisted.web tree (a leaf): it walks
the request path itself, asks the box API where it points (on the reactor
thread when everything it needs is cached, in the ``reads`` pool when a
sidecar must be parsed, and always there on a shared mount, where any call
may block), and hands the request to a fresh resource of the
right kind. Each kind lists the methods it takes (``dav.kinds``: the exact
``Allow``); anything else is 405 with ``Allow``, never twisted.web's bare
501. Before a method runs, the caller is authenticated and checked for the
privilege the method needs on what the URL names now; a write's final
check, on the effect it turns out to have, is the box API's, under its lock.
"""
from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from ..dav import kinds
from ..dav.errors import DavError
from ..dav.names import is_valid_name
from ..store.box import denied
from ..store.props import Miss
from ..store.provision import BOX_NAME, CELL_NAME
from . import service, token_endpoint
from .envelope import ALL_METHODS, override_method
from .methods import (acl, copymove, delete, get, lock, mkcol, options, propfind, proppatch,
                      put)
from .reply import Reply, respond
from .state import quote_segment, state_of

TOKEN = "__token"  # POST {CellURL}__token: the cell's token endpoint


class DavRoot(Resource):
    """The whole URL space of a data root: /{cell}/{box}/{path...}."""

    isLeaf = True

    def __init__(self, server):
        super().__init__()
        self._server = server
        self._prefixes = {}  # request.prepath (a tuple) -> the href prefix it makes

    @property
    def server(self):
        """The state requests share. twisted.web's ``putChild`` assigns
        ``child.server`` (the parent's, usually None): that is ignored."""
        return self._server

    @server.setter
    def server(self, value):
        pass

    def _prefix(self, prepath):
        key = tuple(prepath)
        prefix = self._prefixes.get(key)
        if prefix is None:
            prefix = "".join("/" + quote_segment(p.decode("utf-8", "replace")) for p in key)
            if len(self._prefixes) < 64:  # an embedder mounts the resource at a few places
                self._prefixes[key] = prefix
        return prefix

    def render(self, request):
        request.defaultContentType = None
        st = state_of(request)
        if st is not None and st.prechecked:  # begun when its headers were in
            override_method(request)  # (twisted.web set the method of the request line again)
        else:
            try:  # the request key first, then the overrides, then routing
                st = self.server.envelope.begin(request, self.server,
                                                self._prefix(request.prepath))
            except DavError as error:
                return respond(request, _raiser(error))
        request.notifyFinish().addErrback(_went_away, st)
        if st.preflight:  # CORS preflight: answered without authentication
            return respond(request, lambda r: Reply(200, headers={"Allow": ALL_METHODS}))
        if st.prechecked:  # resolved, authenticated and authorized before its body
            return st.prechecked.render(request)
        try:
            if self.server.store.shared:  # a call there may block: never on the reactor
                raise Miss()
            resource = self.resolve(request, st, inline=True)
        except Miss:  # a sidecar to parse: not on the reactor thread
            d = self.server.pools.reads(self.resolve, request, st)
            d.addCallbacks(lambda resource: resource.render(request),
                           lambda failure: respond(request, _raiser(failure.value)))
            return NOT_DONE_YET
        except Exception as error:  # an unreadable sidecar: JSON 500, logged; a failing disk: 503
            return respond(request, _raiser(error))
        return resource.render(request)

    def precheck(self, request):
        """What is decided when a request's header block is complete, before
        its body is stored (web/request.py): the envelope, the resolution,
        authentication, and the privilege and refusals that need no body.
        None to go on, a DavError to answer, or a Deferred of either."""
        st = self.server.envelope.begin(request, self.server, self._prefix(request.prepath))
        if st.preflight:
            return None
        try:
            if self.server.store.shared:  # a call there may block: never on the reactor
                raise Miss()
            resource = self.resolve(request, st, inline=True)
        except Miss:
            d = self.server.pools.reads(self.resolve, request, st)
            return d.addCallback(
                lambda resource: _accepted(st, resource, resource.precheck(request)))
        return _accepted(st, resource, resource.precheck(request))

    def resolve(self, request, st, inline=False):
        # the data root is the mount it was at start (store/mounts.py): a
        # vanished mount is 503, never a 404 for every cell
        self.server.store.check_root()
        segments = list(request.postpath)
        slash = bool(segments) and segments[-1] == b""
        if slash:
            segments.pop()
        # a segment that is not UTF-8 keeps its bad bytes as "\xff": never a
        # valid name, so 403 to create it and 404 for the rest
        names = [s.decode("utf-8", "backslashreplace") for s in segments]
        if not names:
            return Unknown(st, DavError("PR404-MC-0001"))
        cell = names[0]
        store = self.server.store
        if not CELL_NAME.match(cell) or not store.cell_exists(cell):
            return Unknown(st, DavError("PR404-DV-0003"))
        if not inline and self.server.store.shared:
            # authentication will read these on the reactor thread: read them here
            self.server.auth.revalidate(cell)
        if len(names) == 1:
            return Unknown(st, DavError("PR404-MC-0001"))
        if names[1] == TOKEN and len(names) == 2:
            st.cell = cell
            return TokenEndpoint(st)
        box = names[1]
        if not BOX_NAME.match(box) or not store.box_exists(cell, box):
            url = "%s%s/%s/%s/" % (st.origin(), st.prefix, quote_segment(cell),
                                   quote_segment(box))
            return Unknown(st, DavError("PR404-DV-0002", url))
        st.cell, st.box, st.names = cell, box, names[2:]
        spaces = self.server.config.rfc4918
        bad = next((i for i, name in enumerate(st.names) if not is_valid_name(name, spaces)),
                   None)
        if bad is not None:
            loc = st.api.locate(st.names[:bad], inline)
            if loc.service_exec or (loc.info is not None and loc.info.kind == "service"):
                # below a service collection the path is the script's, whatever it holds
                loc.names, loc.service_exec, st.loc = st.names, True, loc
                return ServiceExecution(st)
            if bad < len(st.names) - 1:
                return Unknown(st, DavError("PR404-DV-0001", st.url(st.names, False)))
            st.loc = loc  # the parent's, for its privileges
            return BadName(st)
        st.loc = loc = st.api.locate(st.names, inline)
        if loc.foreign:  # a planted symlink: as if the name were invalid
            return BadName(st)
        if loc.service_exec:
            return ServiceExecution(st)
        if loc.info is None:
            return Null(st) if loc.parent_dir is not None else Orphan(st)
        if slash and loc.info.kind == "file":  # a file is no collection: "f.txt/" names nothing
            return Unknown(st, DavError("PR404-DV-0001", st.url(st.names, True)))
        return KINDS[loc.info.kind](st)


def _accepted(st, resource, decision):
    """Remember a request accepted before its body (``st.prechecked``: its
    resource): once its body is in, it runs at once, as what was decided."""
    if isinstance(decision, Deferred):
        return decision.addCallback(lambda d: _accepted(st, resource, d))
    if decision is None and st.principal is not None:
        st.prechecked = resource
    return decision


def _went_away(failure, st):
    st.disconnected = True


class DavResource(Resource):
    """Dispatch to ``render_METHOD``; 405 with ``Allow`` for the rest."""

    isLeaf = True
    kind = None  # a key of dav.kinds.METHODS: what the resource takes (its Allow)
    # the privilege a method needs, on "self" (the resource) or "parent"
    # (its collection), checked before the method runs. A method not listed
    # needs none; the box API checks the effect of a write again, under its
    # lock (and the destination of a COPY or MOVE only there).
    privileges = {
        "GET": ("read", "self"),
        "HEAD": ("read", "self"),
        "PROPFIND": ("read-properties", "self"),
        "PROPPATCH": ("write-properties", "self"),
        "PUT": ("write-content", "self"),
        "DELETE": ("unbind", "parent"),
        "MKCOL": ("bind", "parent"),
        "MOVE": ("unbind", "parent"),
        "COPY": ("read", "self"),
        "ACL": ("write-acl", "self"),
        # RFC 3744 §3.2: DAV:write-content covers LOCK (and UNLOCK)
        "LOCK": ("write-content", "self"),
        "UNLOCK": ("write-content", "self"),
    }
    checked = True  # False: no authentication at all (outside any box)
    # methods dispatched to their handler although the kind does not take
    # them (they answer a more precise refusal than 405)
    refusals = ("MKCOL",)

    def __init__(self, ctx):
        super().__init__()
        self.ctx = ctx

    @property
    def methods(self):
        return kinds.METHODS[self.kind] if self.kind else ("OPTIONS",)

    def allow(self):
        return ", ".join(self.methods).encode()

    def guarded(self, method, handler):
        """``handler`` behind authentication and the privilege check."""
        if not self.checked:
            return handler
        ctx = self.ctx
        ctx.kind = self.event_kind(method)

        def run(request):
            if ctx.prechecked:  # authenticated and authorized when its headers were in
                return handler(request)
            principal = ctx.server.envelope.authenticate(request, ctx)
            if isinstance(principal, Deferred):
                return principal.addCallback(authorize, request)
            return authorize(principal, request)

        def authorize(principal, request):
            if ctx.loc is not None and not ctx.api.knows(principal, ctx.loc):
                raise denied(principal)  # the same whether the name exists or not
            needed = self.needs(method)
            if needed is not None:
                privilege, depth = needed
                ctx.api.require(principal, privilege, ctx.loc, depth)
            return handler(request)

        return run

    def needs(self, method):
        """(privilege, how many names down the resource it is checked on), or None."""
        needed = self.privileges.get(method)
        if needed is None:
            return None
        privilege, where = needed
        return privilege, len(self.ctx.names) - (where == "parent")

    def event_kind(self, method):
        """The resource kind named in the event log (davfile, davcol, ...)."""
        info = getattr(self.ctx.loc, "info", None)
        if info is not None:
            return info.kind
        return {"PUT": "file", "MKCOL": "collection", "LOCK": "file"}.get(method, "")

    def dispatch(self, request):
        """(method, handler): the handler of the method, or the one that
        refuses it."""
        method = request.method.decode("latin-1")
        if method == "HEAD" and "HEAD" in self.methods:
            method = "GET"
        # twisted.web's Resource.render_HEAD calls render_GET, which most
        # kinds lack (HEAD on a missing resource was a 500): never inherit it
        handler = getattr(self, "render_" + method, None) if method != "HEAD" else None
        if method == "REPORT":
            handler = _raiser(DavError("PR501-MC-0001"))
        elif handler is None or method not in self.methods + self.refusals:
            handler = self.fallback
        return method, handler

    def render(self, request):
        return respond(request, self.guarded(*self.dispatch(request)))

    def precheck(self, request):
        """Before the body: authentication, the privilege the method needs,
        and the refusals that need no body (see ``DavRoot.precheck``)."""
        method, handler = self.dispatch(request)
        early = handler == self.fallback or method == "REPORT" or (
            method in self.refusals and method not in self.methods)
        try:
            result = self.guarded(method, handler if early else _nothing)(request)
        except DavError as error:
            return error
        if isinstance(result, Deferred):
            return result.addCallbacks(lambda _: self._room(method, request), _error_of)
        return self._room(method, request)

    def _room(self, method, request):
        """A PUT whose body the box's quota cannot take: 507 before it is sent."""
        ctx = self.ctx
        length = getattr(request, "bodyLength", None)
        if method != "PUT" or not length or ctx.box is None or ctx.server.store.shared:
            return None  # (a shared mount is never read on the reactor: the write checks)
        try:
            ctx.api.refuse_oversize(ctx.loc, length)
        except DavError as error:
            return error
        except OSError:
            return None  # a hint only: the write checks again, and answers the failure
        return None

    def fallback(self, request):
        raise DavError("PR405-MC-0001", headers={"Allow": self.allow()})

    render_OPTIONS = options.render


def _nothing(request):
    return None


def _error_of(failure):
    failure.trap(DavError)
    return failure.value


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


class Existing(DavResource):
    """What every existing resource takes (``dav.kinds`` says which)."""

    render_ACL = acl.render
    render_GET = get.render_collection
    render_PROPFIND = propfind.render
    render_PROPPATCH = proppatch.render
    render_DELETE = delete.render
    render_MOVE = copymove.render_move
    render_COPY = copymove.render_copy
    render_MKCOL = mkcol.render_existing
    render_LOCK = lock.render_lock
    render_UNLOCK = lock.render_unlock

    def __init__(self, ctx):
        super().__init__(ctx)
        self.kind = ctx.loc.info.kind


class SourceCollection(Existing):
    refusals = ("MOVE",)  # 400 PR400-DV-0011; MKCOL on it is a plain 405

    def render_MOVE(self, request):
        raise DavError("PR400-DV-0011")


class File(Existing):
    render_GET = get.render_file
    render_PUT = put.render


class Null(DavResource):
    """Nothing there yet, in an existing collection: PUT and MKCOL create,
    and so does LOCK (an empty file, RFC 4918 §7.3) but in ``__src``, whose
    sources are made by PUT with their Content-Type."""

    @property
    def methods(self):
        if self.ctx.loc.parent_kind == "src":
            return ("OPTIONS", "PUT")
        return ("OPTIONS", "PUT", "MKCOL", "LOCK")

    privileges = dict(DavResource.privileges, PUT=("bind", "parent"),
                      LOCK=("bind", "parent"))
    render_PUT = put.render
    render_MKCOL = mkcol.render
    render_LOCK = lock.render_lock

    def fallback(self, request):
        if request.method == b"LOCK":  # in __src
            raise DavError("PR405-MC-0001", headers={"Allow": self.allow()})
        raise DavError("PR404-DV-0001", self.ctx.url(self.ctx.names, False))


class Orphan(Null):
    """The parent collection is missing: 409 for PUT and MKCOL, 404 otherwise."""

    methods = ("OPTIONS",)
    refusals = ("PUT", "MKCOL", "LOCK")

    def render_PUT(self, request):
        raise DavError("PR409-DV-0001", self.ctx.parent_url())

    render_MKCOL = render_LOCK = render_PUT


class BadName(Orphan):
    """The last segment is not a valid name: 403 to create, 404 otherwise."""

    def render_PUT(self, request):
        raise DavError("PR403-DV-0004", self.ctx.names[-1])

    render_MKCOL = render_LOCK = render_PUT

    def fallback(self, request):
        raise DavError("PR404-DV-0001", self.ctx.url(self.ctx.names, False))


class ServiceExecution(DavResource):
    """Below a service collection, outside __src: GET, POST, PUT and DELETE
    (HEAD as GET) run a service script (web/service.py); every method needs
    ``exec`` on the service collection first. With execution turned off
    (``--script-workers 0``) every method is 501 ``PR501-MC-0002``."""

    kind = "exec"
    RUNS = ("GET", "POST", "PUT", "DELETE")
    large_bodies = True  # any method's body up to --max-file-size, streamed to :tmp

    def needs(self, method):
        # exec on the service collection, whose ACLs the resolution read
        return "exec", len(self.ctx.loc.chain) - 1

    def event_kind(self, method):
        return "exec" if method in self.RUNS else "service"

    def dispatch(self, request):
        method = request.method.decode("latin-1")
        if method == "HEAD":
            method = "GET"
        if method == "REPORT":
            handler = _raiser(DavError("PR501-MC-0001"))
        elif self.ctx.server.config.script_workers <= 0:
            handler = _raiser(DavError("PR501-MC-0002", "service execution"))
        elif method in self.RUNS:
            handler = self.execute
        elif method == "OPTIONS":
            handler = self.render_OPTIONS
        else:
            handler = self.fallback
        return method, handler

    def execute(self, request):
        return service.execute(self, request)


class TokenEndpoint(DavResource):
    """``POST {CellURL}__token``: the cell's OAuth2 token endpoint; it needs
    no authentication (it is where credentials are exchanged)."""

    checked = False

    @property
    def methods(self):
        return ("OPTIONS", "POST")

    def render_POST(self, request):
        ctx = self.ctx
        ctx.kind = "token"
        cookie_path = ctx.prefix + "/" + ctx.cell + "/"
        return token_endpoint.issue(ctx.server.auth, request, ctx.cell, cookie_path)


KINDS = {
    "box": Existing,
    "collection": Existing,
    "service": Existing,
    "src": SourceCollection,
    "file": File,
}
