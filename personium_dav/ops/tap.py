"""The twistd plugin's options and service: ``twistd -n personium-dav ...``.

The site and provisioning modules are imported inside makeService so that
``twistd --help`` and option parsing stay cheap.
"""
import os

from twisted.application import service, strports
from twisted.logger import Logger
from twisted.python import usage

from personium_dav.config import Config
from personium_dav.store.provision import DEFAULT_BOX, DEFAULT_CELL

DEFAULT_LISTEN = "tcp:8080:interface=127.0.0.1"
SEMANTICS = ("personium", "rfc4918")

log = Logger()


def _positiveInt(value):
    """A limit of 0 or less would refuse everything: reject it at start."""
    number = int(value)
    if number < 1:
        raise ValueError(f"{value!r} is not a positive integer")
    return number


_positiveInt.coerceDoc = "Must be a positive integer."


def _positiveFloat(value):
    number = float(value)
    if not number > 0:
        raise ValueError(f"{value!r} is not a positive number")
    return number


_positiveFloat.coerceDoc = "Must be a positive number of seconds."


class Options(usage.Options):
    """Command line of the personium-dav plugin (documented in docs/options.md)."""

    synopsis = "[options]"
    longdesc = (
        "Serve Personium boxes over WebDAV. A data root that is not "
        f"provisioned yet gets cell {DEFAULT_CELL} with box {DEFAULT_BOX}."
    )

    _defaults = Config()
    optParameters = [
        ["data", None, "./personium-data", "Data root directory (created if missing)."],
        ["max-xml-body", None, _defaults.max_xml_body,
         "Largest XML request body in bytes.", _positiveInt],
        ["max-file-size", None, _defaults.max_file_size,
         "Largest PUT body in bytes.", _positiveInt],
        ["max-members", None, _defaults.max_members,
         "Most members of one collection.", _positiveInt],
        ["max-depth", None, _defaults.max_depth,
         "Deepest collection nesting below a box.", _positiveInt],
        ["max-props-per-request", None, _defaults.max_props_per_request,
         "Most dead properties one PROPPATCH or MKCOL sets or removes.", _positiveInt],
        ["max-prop-value", None, _defaults.max_prop_value,
         "Largest value of one dead property in bytes.", _positiveInt],
        ["collection-semantics", None, _defaults.collection_semantics,
         "DELETE/MOVE/COPY of collections: 'personium' or 'rfc4918'."],
        ["lockout-attempts", None, _defaults.lockout_attempts,
         "Wrong passwords in a row that lock an account.", _positiveInt],
        ["lockout-seconds", None, _defaults.lockout_seconds,
         "Seconds a locked account stays locked.", _positiveFloat],
        ["token-ttl", None, _defaults.token_ttl,
         "Seconds an access token (and the p_cookie) lives.", _positiveInt],
        ["refresh-ttl", None, _defaults.refresh_ttl,
         "Seconds a refresh token lives.", _positiveInt],
        ["event-log-size", None, _defaults.event_log_size,
         "Bytes of a cell's event log before it is rotated.", _positiveInt],
        ["event-log-files", None, _defaults.event_log_files,
         "Rotated event logs kept per cell.", _positiveInt],
        ["max-lock-timeout", None, _defaults.max_lock_timeout,
         "Most seconds a WebDAV lock is granted for (also when no Timeout is asked).",
         _positiveInt],
        ["access-log", None, "",
         "File of the access log (default DATA/:log/access.log, rotated like the "
         "event log); '-' sends it to twistd's log."],
        ["idle-timeout", None, 60.0,
         "Seconds before an idle connection is closed.", _positiveFloat],
        ["login-rate", None, _defaults.login_rate,
         "Failed logins a minute allowed per client address.", _positiveInt],
        ["trusted-proxy", None, "",
         "Comma-separated addresses (or networks) of proxies whose X-Forwarded-For "
         "names the client (default: none)."],
        ["hash-threads", None, _defaults.hash_threads,
         "Threads checking passwords (argon2 holds 64 MiB each).", _positiveInt],
    ]
    optFlags = [
        ["relaxed", None,
         "Do not fsync before acknowledging a write (faster, not crash-safe)."],
    ]
    optParameters = optParameters + [
        ["workers", None, 1,
         "Server processes sharing the listening TCP sockets and the data root.",
         _positiveInt],
    ]

    def parseOptions(self, options=None):
        # kept for --workers: the other workers are started with the same options
        import sys

        self.argv = list(sys.argv[1:] if options is None else options)
        super().parseOptions(options)

    def __init__(self):
        super().__init__()
        self["listen"] = []

    def opt_listen(self, description):
        """Listen on this strports endpoint (repeatable; default tcp:8080:interface=127.0.0.1)."""
        self["listen"].append(description)

    def postOptions(self):
        if not self["listen"]:
            self["listen"] = [DEFAULT_LISTEN]
        if self["workers"] > 1:
            for description in self["listen"]:
                if _splitDescription(description)[0].lower() not in ("tcp", "tcp6"):
                    raise usage.UsageError(
                        f"--workers shares TCP listeners only, not {description!r}")
        try:
            self["trusted-proxy"] = _trustedProxies(self["trusted-proxy"])
        except ValueError as error:
            raise usage.UsageError(f"--trusted-proxy: {error}")
        if self["collection-semantics"] not in SEMANTICS:
            raise usage.UsageError(
                "--collection-semantics must be one of "
                + ", ".join(SEMANTICS)
                + f", not {self['collection-semantics']!r}"
            )

    def config(self):
        """The Config these options describe."""
        return Config(
            max_xml_body=self["max-xml-body"],
            max_file_size=self["max-file-size"],
            max_members=self["max-members"],
            max_depth=self["max-depth"],
            max_props_per_request=self["max-props-per-request"],
            max_prop_value=self["max-prop-value"],
            collection_semantics=self["collection-semantics"],
            durable=not self["relaxed"],
            lockout_attempts=self["lockout-attempts"],
            lockout_seconds=self["lockout-seconds"],
            token_ttl=self["token-ttl"],
            refresh_ttl=self["refresh-ttl"],
            event_log_size=self["event-log-size"],
            event_log_files=self["event-log-files"],
            max_lock_timeout=self["max-lock-timeout"],
            login_rate=self["login-rate"],
            trusted_proxies=_trustedProxies(self["trusted-proxy"]),
            hash_threads=self["hash-threads"],
        )


def _trustedProxies(value):
    """``ADDR[,ADDR...]`` (addresses or networks) as a tuple of strings;
    ValueError for anything that is neither."""
    if isinstance(value, tuple):
        return value
    from personium_dav.auth.logins import parse_networks

    items = tuple(v.strip() for v in value.split(",") if v.strip())
    parse_networks(items)
    return items


def _splitDescription(description):
    """Split a strports description at unescaped colons (``\\:`` escapes)."""
    fields, current, chars = [], "", iter(description)
    for char in chars:
        if char == "\\":
            current += next(chars, "")
        elif char == ":":
            fields.append(current)
            current = ""
        else:
            current += char
    fields.append(current)
    return fields


def baseURL(description):
    """The http(s) URL a tcp/tcp6/ssl description serves, or None for others."""
    kind, *fields = _splitDescription(description)
    kind = kind.lower()
    if kind not in ("tcp", "tcp6", "ssl") or not fields:
        return None
    positional = [f for f in fields if "=" not in f]
    named = dict(f.split("=", 1) for f in fields if "=" in f)
    port = named.get("port", positional[0] if positional else None)
    host = named.get("interface", "")
    if host in ("", "0.0.0.0", "::"):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    scheme = "https" if kind == "ssl" else "http"
    return f"{scheme}://{host}:{port}/"


class PersoniumService(service.MultiService):
    """Provisions the default box before the listeners bind, then logs URLs.

    twistd binds ports in privilegedStartService, so provisioning happens
    there: no client can connect before the default box exists.
    """

    def __init__(self, dataRoot, descriptions):
        super().__init__()
        self.dataRoot = dataRoot
        self.descriptions = descriptions
        self.created = None

    def provision(self):
        from personium_dav.store import provision

        if self.created is None:
            self.created = False
            if not provision.is_provisioned(self.dataRoot):
                self.created = provision.create_box(
                    self.dataRoot, DEFAULT_CELL, DEFAULT_BOX)

    def privilegedStartService(self):
        self.provision()
        super().privilegedStartService()

    def startService(self):
        self.provision()
        log.info("personium-dav: data root {root}", root=self.dataRoot)
        for description in self.descriptions:
            url = baseURL(description)
            if url is None:
                log.info("personium-dav: listening on {d}", d=description)
            elif self.created:
                log.info("personium-dav: box {url}{c}/{b}/",
                         url=url, c=DEFAULT_CELL, b=DEFAULT_BOX)
                # SPEC §9: secure by default, so the first start shows how in
                self._curlLine(url)
            else:
                log.info("personium-dav: serving {url}", url=url)
        super().startService()

    def _curlLine(self, url):
        """Print (stdout, not the log) a ready-to-paste curl line with an owner
        token: the log file keeps no credential (docs/security.md)."""
        import sys

        from personium_dav.auth.tokens import OwnerGeneration, TokenService, load_secret

        token = TokenService(load_secret(self.dataRoot),
                             owner_generation=OwnerGeneration(self.dataRoot)).owner_token()
        print(f"personium-dav: try (owner token, valid 1 hour): curl -si -X PROPFIND "
              f"-H 'Depth: 1' -H 'Authorization: Bearer {token}' {url}{DEFAULT_CELL}/{DEFAULT_BOX}/",
              file=sys.__stdout__, flush=True)


ACCESS_LOG = os.path.join(":log", "access.log")  # in the data root, out of every URL's reach


def makeService(options):
    """One strports listener per --listen, all serving one Site."""
    from personium_dav.web.site import makeSite

    dataRoot = os.path.abspath(options["data"])
    access = options["access-log"] or os.path.join(dataRoot, ACCESS_LOG)
    site = makeSite(dataRoot, options.config(), timeout=options["idle-timeout"],
                    access_log=None if access == "-" else os.path.abspath(access))
    top = PersoniumService(dataRoot, options["listen"])
    from personium_dav.ops import workers

    adopted = workers.inherited()  # in a worker started by --workers
    if adopted is not None:
        for fd, family in adopted:
            workers.Adopted(fd, family, site).setServiceParent(top)
    elif options.get("workers", 1) > 1:
        listeners = [workers.Listener(d, site) for d in options["listen"]]
        for listener in listeners:
            listener.setServiceParent(top)
        workers.WorkerPool(options["workers"], listeners,
                           getattr(options, "argv", [])).setServiceParent(top)
    else:
        for description in options["listen"]:
            strports.service(description, site).setServiceParent(top)
    return top
