"""``_p.extension.HttpClient``'s requests, made by the server, not the worker.

A worker has no network of its own: every HttpClient call arrives here as a
``_p`` call and is made with ``twisted.web.client.Agent``, only to the hosts
the operator allows (``--script-http-allow HOST[:PORT],...``; none by
default). ``HOST`` alone allows that host on the scheme's default port (80
for http, 443 for https); ``HOST:PORT`` that port only; IPv6 literals go in
brackets. Names are compared as written (case-insensitive), before any DNS
lookup; redirects are not followed; an https peer's certificate is checked
as a browser would; a response body larger than ``max_body`` is refused.
"""
import json
from io import BytesIO
from urllib.parse import urlsplit

from twisted.internet import defer, protocol
from twisted.web.client import Agent, FileBodyProducer, ResponseDone, PotentialDataLoss
from twisted.web.http_headers import Headers

from .host import HostError

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_BODY = 32 * 1024 * 1024


def parse_allow(items):
    """``HOST[:PORT]`` strings -> set of (host, port or None)."""
    allowed = set()
    for item in items or ():
        item = item.strip()
        if not item:
            continue
        parts = urlsplit("//" + item)
        if (not parts.hostname or parts.path or parts.query or parts.fragment
                or parts.username is not None or parts.netloc.endswith(":")):
            raise ValueError("not HOST[:PORT]: %r" % item)
        allowed.add((parts.hostname.lower(), parts.port))
    return allowed


class _Collect(protocol.Protocol):
    def __init__(self, limit, finished):
        self.limit, self.finished, self.chunks, self.size = limit, finished, [], 0

    def dataReceived(self, data):
        self.size += len(data)
        if self.size > self.limit:
            self.transport.stopProducing()
            return
        self.chunks.append(data)

    def connectionLost(self, reason):
        if self.finished.called:
            return
        if self.size > self.limit:
            self.finished.errback(_error(502, "Response body is too large."))
        elif reason.check(ResponseDone, PotentialDataLoss):
            self.finished.callback(b"".join(self.chunks))
        else:
            self.finished.errback(reason)


def _error(code, message):
    return HostError(code, message)


class Outbound:
    """Makes HttpClient requests for scripts, within the allow list."""

    def __init__(self, allow, reactor, max_body=MAX_BODY):
        self.allowed = parse_allow(allow)
        self.reactor = reactor
        self.max_body = max_body
        self._agent = None

    def permits(self, url):
        """True when the allow list lets a script reach ``url``."""
        try:
            parts = urlsplit(url)
            port = parts.port or DEFAULT_PORTS.get(parts.scheme)
        except ValueError:
            return False
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            return False
        host = parts.hostname.lower()
        return (host, port) in self.allowed or (
            port == DEFAULT_PORTS[parts.scheme] and (host, None) in self.allowed)

    def request(self, args, blob):
        """-> Deferred[(meta, body bytes)]; meta = {status (str), headers
        (JSON text, one value per name, last wins), charset}; fails with
        HostError."""
        url = args["url"]
        if not self.permits(url):
            return defer.fail(_error(403, "Host not allowed [%s]." % (urlsplit(url).netloc,)))
        headers = Headers()
        for name, value in args["headers"].items():
            headers.addRawHeader(name.encode("latin-1", "replace"), value.encode("utf-8"))
        body = None
        if "contentType" in args:
            headers.setRawHeaders(b"content-type", [args["contentType"].encode("utf-8")])
            body = FileBodyProducer(BytesIO(blob)) if blob else None
        if self._agent is None:
            self._agent = Agent(self.reactor)
        d = self._agent.request(args["method"].encode("ascii"), url.encode("utf-8"), headers, body)
        d.addCallback(self._read)
        d.addErrback(self._failed)
        return d

    def _read(self, response):
        finished = defer.Deferred()
        response.deliverBody(_Collect(self.max_body, finished))
        found = {}
        for name, values in response.headers.getAllRawHeaders():
            found[name.decode("latin-1")] = values[-1].decode("latin-1")
        charset = None
        for name, value in found.items():
            if name.lower() == "content-type":
                for param in value.split(";")[1:]:
                    k, _, v = param.strip().partition("=")
                    if k.lower() == "charset":
                        charset = v.strip('"')
        meta = {"status": str(response.code), "headers": json.dumps(found, ensure_ascii=False),
                "charset": charset}
        finished.addCallback(lambda body: (meta, body))
        return finished

    @staticmethod
    def _failed(f):
        if f.check(HostError, defer.CancelledError):
            return f
        return defer.fail(_error(500, "An error occurred. Cause: [%s]" % f.type.__name__))
