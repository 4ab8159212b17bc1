"""The twistd plugin's options and service: ``twistd -n personium-dav ...``.

The site and provisioning modules are imported inside makeService so that
``twistd --help`` and option parsing stay cheap.
"""
import gc
import os
import sys

from twisted.application import service, strports
from twisted.logger import Logger
from twisted.python import usage

from personium_dav import config
from personium_dav.store.provision import DEFAULT_BOX, DEFAULT_CELL

DEFAULT_LISTEN = "tcp:8080:interface=127.0.0.1"
# How long a pool thread that computes (a large listing) may keep the GIL
# once the reactor thread wants it back. The reactor gives the GIL up at
# every system call, a dozen per request, and each time may wait this long
# to have it again: CPython's 5 ms made a GET wait tens of ms behind a
# listing (docs/performance.md, "The GETs during a large listing").
SWITCH_INTERVAL = 0.0005

log = Logger()


class Options(usage.Options):
    """Command line of the personium-dav plugin (documented in docs/options.md)."""

    synopsis = "[options]"
    longdesc = (
        "Serve Personium boxes over WebDAV. A data root that is not "
        f"provisioned yet gets cell {DEFAULT_CELL} with box {DEFAULT_BOX}."
    )

    # every setting of Config, then what belongs to the process
    optParameters = [
        [config.option_name(f), None, f.default, f.metadata["help"], f.metadata["coerce"]]
        for f in config.options() if f.metadata["flag"] is None
    ] + [
        ["data", None, "./personium-data", "Data root directory (created if missing)."],
        ["access-log", None, "",
         "File of the access log (default DATA/:log/access.log, rotated like the "
         "event log); '-' sends it to twistd's log."],
        ["workers", None, 1,
         "Server processes sharing the listening TCP sockets and the data root.",
         config.positive_int],
    ]
    optFlags = [[config.option_name(f), None, f.metadata["help"]]
                for f in config.options() if f.metadata["flag"] is not None]

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
            from personium_dav.auth.logins import parse_networks

            parse_networks(self["trusted-proxy"])
        except ValueError as error:
            raise usage.UsageError(f"--trusted-proxy: {error}")
        try:
            from personium_dav.engine.outbound import parse_allow

            parse_allow(self["script-http-allow"])
        except ValueError as error:
            raise usage.UsageError(f"--script-http-allow: {error}")

    def config(self):
        """The Config these options describe."""
        values = {}
        for f in config.options():
            name = config.option_name(f)
            if f.metadata["flag"]:  # given: the opposite of its default
                values[f.name] = (not f.default) if self[name] else f.default
            else:
                values[f.name] = self[name]
        return config.Config(**values)


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
                # docs/behaviour.md §9: secure by default, so the first start shows how in
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


def tune_interpreter(reactor):
    """What a long-running server wants of CPython: the GIL back within
    ``SWITCH_INTERVAL`` when the reactor asks, and what start-up made
    (modules, classes, the framework: never garbage) left out of every full
    garbage collection, which holds the GIL while it walks the heap."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    reactor.callWhenRunning(_freeze)


def _freeze():
    gc.collect()
    gc.freeze()


def makeService(options):
    """One strports listener per --listen, all serving one Site."""
    from personium_dav.web.site import makeSite

    from personium_dav.store.mounts import UnsafeMount, check

    from twisted.internet import reactor

    tune_interpreter(reactor)
    dataRoot = os.path.abspath(options["data"])
    settings = options.config()
    try:
        shared = check(dataRoot, settings.shared_mount_consistent).shared
        # on a shared mount each host has its own access log (docs/scale-out.md)
        default = ACCESS_LOG if not shared else os.path.join(
            ":log", "access-%s.log" % config.node_of(settings))
        access = options["access-log"] or os.path.join(dataRoot, default)
        site = makeSite(dataRoot, settings,
                        access_log=None if access == "-" else os.path.abspath(access))
    except UnsafeMount as refusal:  # a message, not a traceback (docs/scale-out.md)
        raise SystemExit("personium-dav: refusing to start: %s" % refusal)
    server = site.resource.server
    log.info("personium-dav: data root on {how} ({fstype} at {point})",
             how=server.store.mount.how, fstype=server.store.mount.mount.fstype,
             point=server.store.mount.mount.point)
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
        server = site.resource.server
        workers.WorkerPool(options["workers"], listeners, getattr(options, "argv", []),
                           recover=lambda: server.pools.store(server.store.recover),
                           ).setServiceParent(top)
    else:
        for description in options["listen"]:
            strports.service(description, site).setServiceParent(top)
    return top
