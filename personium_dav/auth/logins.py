"""Password logins (Basic and the token endpoint's password grant).

``Logins.check`` decides one login:

1. The client address (``client_address``: the TCP peer, or, when the peer
   is a trusted proxy, the right-most address of ``X-Forwarded-For`` that
   is not itself a trusted proxy) may have at most ``login_rate`` failed
   logins a minute (``RateLimiter``). An attempt counts from its start and
   stops counting when it succeeds, so attempts sent together cannot pass
   the limit. Over it, the login fails at once, without argon2.
2. A password verified before (``AccountStore.remembered``) is accepted on
   the reactor thread, without argon2.
3. Anything else runs ``AccountStore.check`` (which reserves the attempt
   under the accounts lock, then runs argon2) in the ``Logins``' own thread
   pool: a few threads (argon2 holds 64 MiB while it runs), apart from
   twisted's default pool, so that any number of password checks waiting
   never delays the store's operations, which run in the default pool.
   At most ``QUEUED`` checks per thread wait or run there; past that a
   login is answered 503 ``PR503-SV-0009`` at once (with ``Retry-After``),
   so a flood of new passwords cannot queue memory and delay without bound.

The pool is started when first needed and stopped by ``close()`` (or at
reactor shutdown).
"""
import collections
import ipaddress
import time

from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from ..dav.errors import DavError
from .accounts import AuthFailure

WINDOW = 60.0  # seconds: the rate limit counts failures per minute
QUEUED = 16  # password checks per hashing thread, running or waiting


class RateLimiter:
    """At most ``limit`` failed logins per ``WINDOW`` seconds per address.

    ``reserve`` counts an attempt when it starts (None when the address is
    over the limit); ``release`` uncounts it when it succeeded. Used on the
    reactor thread only."""

    MAX_ADDRESSES = 100_000  # past this many, expired entries are swept out

    def __init__(self, limit, clock=time.monotonic):
        self.limit = limit
        self.clock = clock
        self._seen = {}  # address -> deque of the start times of counted attempts

    def _expire(self, times, now):
        while times and times[0] <= now - WINDOW:
            times.popleft()

    def reserve(self, address):
        now = self.clock()
        times = self._seen.get(address)
        if times is None:
            if len(self._seen) >= self.MAX_ADDRESSES:
                self._sweep(now)
            times = self._seen[address] = collections.deque()
        self._expire(times, now)
        if len(times) >= self.limit:
            return None
        times.append(now)
        return now

    def release(self, address, stamp):
        times = self._seen.get(address)
        if times is None:
            return
        try:
            times.remove(stamp)
        except ValueError:
            pass
        if not times:
            del self._seen[address]

    def _sweep(self, now):
        for address in list(self._seen):
            times = self._seen[address]
            self._expire(times, now)
            if not times:
                del self._seen[address]


def parse_networks(values):
    """Trusted proxies: addresses or networks (``10.0.0.0/8``); ValueError
    for anything else."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def _address(text):
    """An ip_address from text (an IPv4-mapped IPv6 address as IPv4), or None."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[::1]:8080"
        text = text[1:text.index("]")]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        host, colon, port = text.rpartition(":")  # "192.0.2.1:8080"
        if not colon or not port.isdigit() or ":" in host:
            return None
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address


def is_trusted(address, trusted):
    return any(address.version == net.version and address in net for net in trusted)


FORWARDED_FOR = b"x-forwarded-for"


def _forwarded_overridden(request):
    """True when an ``X-Override`` replaced ``X-Forwarded-For``: the
    envelope has applied it already, so the header no longer is the one
    the proxy sent."""
    for raw in request.requestHeaders.getRawHeaders(b"x-override") or ():
        name, colon, _ = raw.partition(b":")
        if colon and name.strip().lower() == FORWARDED_FOR:
            return True
    return False


def client_address(request, trusted=()):
    """The address whose failed logins are counted (a string).

    The TCP peer; when the peer is a trusted proxy, the right-most address
    of ``X-Forwarded-For`` that is not a trusted proxy (the left part of
    that header is whatever the client wrote). Without a usable header (or
    when a client replaced it with ``X-Override``), the peer."""
    peer = request.getClientAddress()
    host = getattr(peer, "host", None)
    if host is None:  # a UNIX socket: every client is the same local peer
        return "unix"
    address = _address(host)
    if address is None:
        return host
    if not trusted or not is_trusted(address, trusted) or _forwarded_overridden(request):
        return str(address)
    values = request.requestHeaders.getRawHeaders(FORWARDED_FOR) or ()
    entries = ",".join(v.decode("latin-1") for v in values).split(",")
    for entry in reversed(entries):
        entry = entry.strip()
        if not entry:
            continue
        forwarded = _address(entry)
        if forwarded is None:
            return entry[:64]  # not an address: what the proxy wrote, as it wrote it
        if not is_trusted(forwarded, trusted):
            return str(forwarded)
    return str(address)


class Logins:
    """Password checks of one data root: the rate limit and the hashing pool."""

    def __init__(self, accounts, threads=2, login_rate=30, trusted_proxies=(),
                 clock=time.monotonic):
        self.accounts = accounts
        self.threads = threads
        self.limiter = RateLimiter(login_rate, clock)
        self.trusted = parse_networks(trusted_proxies)
        self._pool = None
        self._trigger = None
        self._checking = 0  # checks in the pool, running or waiting

    @property
    def pool(self):
        """The hashing thread pool, started when first needed."""
        if self._pool is None:
            from twisted.internet import reactor

            pool = ThreadPool(minthreads=0, maxthreads=self.threads,
                              name="personium-dav-passwords")
            pool.start()
            self._pool = pool
            self._trigger = reactor.addSystemEventTrigger("during", "shutdown",
                                                          self._shutdown)
        return self._pool

    def _shutdown(self):
        self._trigger = None
        self.close()

    def close(self):
        """Stop the pool (waiting for the checks it is running); a later
        check starts a new one."""
        pool, self._pool = self._pool, None
        if self._trigger is not None:
            from twisted.internet import reactor

            reactor.removeSystemEventTrigger(self._trigger)
            self._trigger = None
        if pool is not None:
            pool.stop()

    def address(self, request):
        return client_address(request, self.trusted)

    def check(self, request, cell, name, password):
        """A Deferred of the ``Login``, or failing with ``AuthFailure``."""
        address = self.address(request)
        stamp = self.limiter.reserve(address)
        if stamp is None:
            return defer.fail(AuthFailure("rate"))
        try:
            login = self.accounts.remembered(cell, name, password)
        except Exception:
            self.limiter.release(address, stamp)
            return defer.fail()
        if login is not None:
            self.limiter.release(address, stamp)
            return defer.succeed(login)
        if self._checking >= self.threads * QUEUED:
            self.limiter.release(address, stamp)
            return defer.fail(DavError("PR503-SV-0009", headers={"Retry-After": "5"}))
        from twisted.internet import reactor

        self._checking += 1
        d = deferToThreadPool(reactor, self.pool, self.accounts.check, cell, name, password)

        def checked(result):
            self._checking -= 1
            return result

        d.addBoth(checked)

        def passed(login):
            self.limiter.release(address, stamp)
            return login

        def failed(failure):
            if not failure.check(AuthFailure):  # not a failed login: an error of ours
                self.limiter.release(address, stamp)
            return failure

        return d.addCallbacks(passed, failed)
