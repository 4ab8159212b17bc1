"""Service execution: a GET, POST, PUT or DELETE below a service collection
runs the script its routes name (docs/services.md).

One call: the collection's ``p:service`` (parsed once per value,
``engine/sources.py``) selects a route by the path below the collection
(``engine/routes.py``); the route's source is read through the box API
(never through a symlink, kept while its file is unchanged); the request
becomes a ``Job`` that the server's ``ScriptPool`` runs on a worker, whose
``_p`` calls a ``BoxHost`` answers through the box API as the principal the
script acts as; the ``Result`` is written as it is. A client that goes away
cancels its call.
"""
import hashlib
import os
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from twisted.internet import defer
from twisted.web.static import NoRangeStaticProducer

from ..dav.errors import DavError
from ..engine import Job, framing, result, routes
from ..engine.boxhost import BoxHost, Call
from ..engine.sources import TooLarge
from ..logs.eventlog import object_of
from ..store.props import Miss
from ..store.provision import CELL_NAME
from .reply import Reply
from .state import quote_segment

# hop-by-hop headers and the length: the server frames the answer itself
DROPPED = frozenset(("content-length", "transfer-encoding", "connection", "keep-alive",
                     "upgrade", "trailer", "te", "proxy-connection"))
GONE = 499  # the event log's status of a call whose client went away (as nginx logs it)
MIB = 1024 * 1024


@dataclass
class Plan:
    """What a call runs: the source (the route's ``src`` and its text), the
    service's subject, and the names of the service collection."""

    subject: object
    src: str
    source: str
    service_names: list


class Urls:
    """This server's URLs as the request names them (for ``BoxHost``)."""

    def __init__(self, st):
        self.st = st

    def cell(self, cell):
        return self.st.cell_url_of(cell)

    def resource(self, cell, box, names, collection):
        path = "".join("/" + quote_segment(n) for n in [cell, box, *names])
        return self.st.origin() + self.st.prefix + path + ("/" if collection else "")

    def cell_of(self, text):
        """The cell a name or a URL of this server names, or None (scheme and
        host are not compared: the server answers to several names)."""
        if CELL_NAME.match(text):
            return text
        try:
            path = urlsplit(text).path
        except ValueError:
            return None
        prefix = self.st.prefix + "/"
        if not path.startswith(prefix):
            return None
        return unquote(path[len(prefix):].split("/", 1)[0])


def execute(resource, request):
    """Run the script a service path names; a Reply, or a Deferred of one."""
    ctx = resource.ctx
    pool = ctx.server.scripts()
    if pool is None:
        raise DavError("PR501-MC-0002", "service execution")
    try:
        plan = _plan(ctx, True)
    except Miss:  # a sidecar to parse, a large source to read: not on the reactor
        return ctx.server.pools.reads(_plan, ctx, False).addCallback(
            _run, ctx, request, pool)
    return _run(plan, ctx, request, pool)


def _read_limit(config):
    """Bytes a script may be handed at once: its heap, within one frame."""
    return min(config.script_memory * MIB, framing.MAX_FRAME - MIB)


def _plan(ctx, inline):
    """The ``Plan`` of a call, or the ``Result`` that answers it at once."""
    loc = ctx.loc
    depth = len(loc.chain) - 1  # the service collection: names[:depth]
    sources = ctx.server.sources
    service = sources.service(loc.chain[depth])
    if service is None:
        return result.service_property_invalid()
    route = routes.match(service.routes, "/".join(ctx.names[depth:]))
    if route is None:
        return result.not_found()
    try:
        source = sources.text(ctx.api, ctx.names[:depth], route.src, inline,
                              _read_limit(ctx.server.config), loc.service_dir)
    except TooLarge:
        return result.timeout()  # it could only run out of memory
    if source is None:
        return result.not_found()
    return Plan(service.subject, route.src, source, ctx.names[:depth])


def _run(plan, ctx, request, pool):
    if isinstance(plan, result.Result):
        return _reply(plan, request)
    if ctx.disconnected:
        return Reply(GONE)
    d = _body(ctx, request)
    d.addCallback(_call, plan, ctx, request, pool)
    return d


def _body(ctx, request):
    """A Deferred of (bytes, path or None, whether the path is ours to delete)."""
    config = ctx.server.config
    content = request.content
    path = getattr(request, "bodyPath", None)
    if path is not None and ctx.server.store.is_body(path):
        # a body the request streamed to :tmp: it stays the request's
        # (deleted when the request ends, after the call)
        content.flush()
        return defer.succeed((b"", path, False))
    if content is None:
        return defer.succeed((b"", None, False))
    content.seek(0, os.SEEK_END)
    size = content.tell()
    if size > config.max_file_size:  # (a body in memory: twisted.web's, not ours)
        raise DavError("PR413-DV-0001")
    content.seek(0)
    if size <= framing.INLINE_BODY:
        return defer.succeed((content.read(), None, False))

    def copy():  # a large body twisted.web buffered: a file the worker can read
        path = os.path.join(ctx.server.store.scripts_dir(), "body-" + uuid.uuid4().hex)
        with open(path, "wb") as out:
            while True:
                block = content.read(MIB)
                if not block:
                    break
                out.write(block)
        return b"", path, True

    return ctx.server.pools.store(copy)


def _call(body, plan, ctx, request, pool):
    data, path, owned = body
    server = ctx.server
    job = _job(ctx, request, plan, data, path)
    host = BoxHost(server, Call(
        principal=ctx.principal, cell=ctx.cell, box=ctx.box, service=plan.service_names,
        subject=plan.subject, key=ctx.key, request=request, urls=Urls(ctx),
        read_limit=_read_limit(server.config)))
    d = pool.run(job, host)

    def went_away(failure):
        if not d.called:
            d.cancel()

    request.notifyFinish().addErrback(went_away)

    def cleanup(outcome):
        if owned:
            try:
                os.unlink(path)
            except OSError:
                pass
        return outcome

    def cancelled(failure):
        failure.trap(defer.CancelledError)
        return Reply(GONE)

    return d.addBoth(cleanup).addCallback(_reply, request).addErrback(cancelled)


def _text(raw):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _job(ctx, request, plan, data, path):
    origin = ctx.origin()
    uri = _text(request.uri)
    headers = []
    for name, values in request.requestHeaders.getAllRawHeaders():
        name = name.decode("latin-1")
        headers.extend((name, _text(v)) for v in values)
    where = "/".join([ctx.cell, ctx.box, *plan.service_names])
    headers += [
        ("x-personium-fs-path", object_of(ctx.box, plan.service_names)),
        ("x-personium-fs-routing-id", hashlib.sha256(where.encode("utf-8")).hexdigest()[:32]),
        ("x-personium-box-schema", ""),
        ("x-personium-requestkey", ctx.key),
    ]
    method = request.method.decode("latin-1")
    return Job(source=plan.source, name=plan.src, method="GET" if method == "HEAD" else method,
               base_url=origin + ctx.prefix + "/", url=origin + uri,
               path_info=uri.split("?", 1)[0], headers=headers, body=data, body_path=path)


def _reply(res, request):
    """A ``Result`` as a Reply: status and headers as the script gave them
    (hop-by-hop ones and the length dropped), the body in memory or
    streamed from the worker's file, which is unlinked once open."""
    headers = {}
    for name, value in res.headers:
        if name.lower() not in DROPPED:
            headers[name.encode("ascii")] = value.encode("utf-8")
    if not res.body_path:
        return Reply(res.status, res.body, headers)
    try:
        f = open(res.body_path, "rb")
    finally:
        res.discard()
    size = os.fstat(f.fileno()).st_size
    headers[b"Content-Length"] = b"%d" % size
    if request.method == b"HEAD" or res.status in (204, 304):
        f.close()
        return Reply(res.status, b"", headers)

    def stream(req):
        req.notifyFinish().addBoth(lambda _: f.close())
        NoRangeStaticProducer(req, f).start()

    return Reply(res.status, headers=headers, stream=stream)
