"""The host a service call's ``_p`` requests go to: the box API and the
accounts of this server, for the principal a script acts as.

Every box operation a script asks for is the operation an HTTP request by
that principal would run (``store.box.Box``: the same privilege policy,
preconditions, WebDAV locks and limits), in the store's thread pool, and
writes the event-log line that request would write. A script can do no more
than its principal could over HTTP.

Who acts (``args["as"]``, ``engine/host.py``):

* ``client``: the principal of the HTTP request that runs the script;
* ``serviceSubject``: the account named by the ``subject`` attribute of the
  service collection's ``p:service``, with the roles it holds now (none
  named: 400; no such account: 401);
* ``password``: an account of a cell of this server, by its password,
  checked like a Basic login (``auth.logins``: the per-address limit, the
  lockout, argon2 in the password pool, never on the reactor); a wrong one
  is 401.
"""
import re
import time
from dataclasses import dataclass
from typing import Any, List, Optional
from xml.sax.saxutils import escape

from lxml import etree
from twisted.internet import defer

from ..auth.accounts import AuthFailure, generation
from ..auth.privileges import Principal
from ..dav.conditions import NONE, Preconditions
from ..dav.errors import DavError
from ..dav.names import is_valid_name
from ..dav.properties import check_limits
from ..dav.xmlutil import PNS
from ..logs import eventlog
from ..store.box import Caller
from ..store.props import Miss
from ..store.provision import BOX_NAME, CELL_NAME
from .host import HostError
from .sources import TooLarge

PROP_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}\Z")  # setProp/getProp: a p: element name
# op -> the HTTP method it stands for (its event-log type)
METHODS = {"dav.getString": "GET", "dav.put": "PUT", "dav.del": "DELETE", "dav.mkCol": "MKCOL",
           "dav.getFileList": "PROPFIND", "dav.getColList": "PROPFIND",
           "dav.setProp": "PROPPATCH", "dav.getProp": "PROPFIND"}
_PLAIN_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass
class Call:
    """What the host knows of the HTTP call running the script.

    ``urls`` makes and reads this server's URLs as the request names them:
    ``cell(cell)``, ``resource(cell, box, names, collection)``,
    ``cell_of(text)`` (the cell a URL or a name names, or None)."""

    principal: Any
    cell: str
    box: str
    service: List[str]  # the names of the service collection below its box
    subject: Optional[str]  # p:service's subject account, or None
    key: str  # the request key (the event-log lines of _p calls carry it)
    request: Any  # the twisted.web request (its client address limits password logins)
    urls: Any
    read_limit: int  # bytes a getString or require may hand to the script


class BoxHost:
    """``host.call(op, args)`` for one call (engine/host.py lists the ops)."""

    def __init__(self, server, call):
        self.store = server.store
        self.auth = server.auth
        self.pools = server.pools
        self.events = server.events
        self.sources = server.sources
        self.config = server.config
        self.context = call
        self._logins = {}  # (cell, user, password) -> Principal, within this call

    def call(self, op, args):
        if op == "require":
            return self._require(args["name"])
        d = defer.maybeDeferred(self._principal, args["as"])
        return d.addCallback(self._run, op, args)

    # -- who acts -------------------------------------------------------------

    def _principal(self, acc):
        kind, c = acc["as"], self.context
        if kind == "client":
            return c.principal
        if kind == "serviceSubject":
            if not c.subject:
                raise HostError(400, "The service has no subject (the subject attribute of "
                                     "p:service): as('serviceSubject') cannot act.")
            account = self.auth.accounts.get(c.cell, c.subject)
            if account is None:
                raise HostError(401, "The service subject [%s] is not an account of the cell."
                                % c.subject)
            return Principal(c.cell, c.subject, frozenset(account["roles"]), via="service")
        cell = self._cell(acc["cellUrl"])
        key = (cell, acc["userId"], acc["password"])
        known = self._logins.get(key)
        if known is not None:
            return known

        def passed(login):
            principal = Principal(cell, login.name, frozenset(login.roles), via="password")
            self._logins[key] = principal
            return principal

        def failed(failure):
            failure.trap(AuthFailure)
            raise HostError(401, "Authentication failed.")

        return self.auth.logins.check(c.request, cell, acc["userId"], acc["password"]) \
            .addCallbacks(passed, failed)

    def _cell(self, text):
        cell = self.context.cell if text is None else self.context.urls.cell_of(text)
        if cell is None or not CELL_NAME.match(cell) or not self.store.tree.cell_exists(cell):
            raise HostError(404, "Cell not found.")
        return cell

    def _box(self, cell, name):
        box = self.context.box if name is None else name
        if not BOX_NAME.match(box) or not self.store.tree.box_exists(cell, box):
            raise HostError(404, "Box not found at [%s]."
                            % self.context.urls.resource(cell, box, [], True))
        return box

    # -- the ops ----------------------------------------------------------------

    def _run(self, principal, op, args):
        cell = args.get("cell")
        if cell is None and args["as"]["as"] == "password":
            cell = args["as"]["cellUrl"]  # the account's own cell
        cell = self._cell(cell)
        if op == "cell":
            return {"name": cell, "url": self.context.urls.cell(cell)}
        if op == "cell.getToken":
            return self._token(principal)
        box = self._box(cell, args.get("box"))
        if op == "box":
            return {"name": box, "schema": ""}
        names = args["path"].split("/") if args["path"] else []
        work = getattr(self, "_" + op.replace(".", "_"))
        return self._dav(principal, cell, box, names, work, dict(args, op=op))

    def _token(self, principal):
        tokens = self.auth.tokens
        if principal.anonymous:
            raise HostError(401, "Authorization required.")
        if principal.owner:
            return {"access_token": tokens.owner_token(), "token_type": "Bearer",
                    "expires_in": tokens.access_ttl, "refresh_token": "",
                    "refresh_token_expires_in": 0}
        account = self.auth.accounts.get(principal.cell, principal.subject)
        if account is None:
            raise HostError(401, "Authentication failed.")
        roles, gen = account["roles"], generation(account)
        return {
            "access_token": tokens.issue(principal.cell, principal.subject, roles, generation=gen),
            "token_type": "Bearer", "expires_in": tokens.access_ttl,
            "refresh_token": tokens.issue(principal.cell, principal.subject, roles,
                                          kind="refresh", generation=gen),
            "refresh_token_expires_in": tokens.refresh_ttl,
        }

    def _require(self, name):
        c = self.context
        api = self.store.box(c.cell, c.box)

        def read(inline):
            try:
                text = self.sources.text(api, c.service, name + ".js", inline, c.read_limit)
            except TooLarge:
                raise HostError(413, "Module is too large [%s]." % name)
            if text is None:
                raise HostError(404, "404 Not Found")
            return text

        try:
            return read(True)
        except Miss:  # a sidecar to parse, a large file: in a thread
            return self.pools.reads(read, False)

    def _dav(self, principal, cell, box, names, work, args):
        """``work(api, caller, names, args)`` -> (value, status, kind) in the
        store's pool, and the event-log line of the request it stands for."""
        api = self.store.box(cell, box)
        urls = self.context.urls
        caller = Caller(principal, lambda n, collection: urls.resource(cell, box, n, collection))
        method = METHODS[args["op"]]

        def done(out):
            value, status, kind = out
            self._log(principal, cell, box, names, method, status, kind)
            return value

        def failed(failure):
            failure.trap(_Failed)
            error, kind = failure.value.args
            self._log(principal, cell, box, names, method, error.status, kind)
            raise HostError(error.status, error.message)

        return self.pools.store(_attempt, work, api, caller, names, args) \
            .addCallbacks(done, failed)

    def _log(self, principal, cell, box, names, method, status, kind):
        c = self.context
        try:
            line = eventlog.format_line(
                time.time(), status, c.key, eventlog.subject_of(principal, c.urls.cell),
                eventlog.event_type(kind, method, status), eventlog.object_of(box, names))
            self.events.write(cell, line)
        except Exception:
            from twisted.logger import Logger

            Logger().failure("writing the event log of a _p call failed")

    # each of these runs in the store's pool: (value, method, status, kind)

    def _dav_getString(self, api, caller, names, args):
        _, data = api.read(caller, names, limit=self.context.read_limit)
        return data, 200, "file"

    def _dav_put(self, api, caller, names, args):
        data = args["data"]
        if len(data) > self.config.max_file_size:
            raise DavError("PR413-DV-0001")
        conds = NONE if args["etag"] == "*" else Preconditions(if_match=(args["etag"],))
        done = api.put(caller, names, data, args["contentType"], conds)
        return None, 201 if done.created else 204, "file"

    def _dav_del(self, api, caller, names, args):
        conds = NONE if args["etag"] == "*" else Preconditions(if_match=(args["etag"],))
        kind = _kind_of(api, names)
        api.delete(caller, names, False, conds)
        return None, 204, kind

    def _dav_mkCol(self, api, caller, names, args):
        api.mkcol(caller, names)
        return None, 201, "collection"

    def _dav_getFileList(self, api, caller, names, args):
        info, members = api.listing(caller, names)
        return [m.name for m in members if m.kind == "file"], 207, info.kind

    def _dav_getColList(self, api, caller, names, args):
        info, members = api.listing(caller, names)
        return [m.name for m in members if m.kind != "file"], 207, info.kind

    def _dav_setProp(self, api, caller, names, args):
        key = args["key"]
        if not PROP_KEY.match(key):
            raise HostError(400, "Parameter Invalid")
        value = ('<p:%s xmlns:p="%s">%s</p:%s>' % (key, PNS, escape(args["value"]), key)).encode()
        check_limits(1, [((PNS, key), value)], self.config)
        done = api.proppatch(caller, names, [("set", (PNS, key), value)])
        return None, 207, done.info.kind

    def _dav_getProp(self, api, caller, names, args):
        if not PROP_KEY.match(args["key"]):
            raise HostError(400, "Parameter Invalid")
        info = api.properties(caller, names)
        value = info.props.get((PNS, args["key"]))
        if value is not None:
            value = "".join(etree.fromstring(value, _PLAIN_XML).itertext())
        return value, 207, info.kind


class _Failed(Exception):
    """A box operation refused: (its DavError, the kind of its target)."""


def _attempt(work, api, caller, names, args):
    try:
        return work(api, caller, names, args)
    except DavError as error:
        kind = "collection" if args["op"] in ("dav.mkCol", "dav.getFileList",
                                              "dav.getColList") else _kind_of(api, names)
        raise _Failed(error, kind)


def _kind_of(api, names):
    """The kind of what ``names`` is now (for the event log), "file" when nothing."""
    if not all(is_valid_name(n, api.config.rfc4918) for n in names):
        return "file"
    try:
        loc = api.locate(names)
    except Exception:
        return "file"
    return loc.info.kind if loc.info is not None and not loc.foreign else "file"
