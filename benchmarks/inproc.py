#!/usr/bin/env python3
"""The request path in process: how much of a request is this server's own
Python, and how much is twisted.web's.

    python benchmarks/inproc.py                     # get, propfind_d0, options; and the bare Site
    python benchmarks/inproc.py --profile get       # cProfile of one scenario, by cumulative time

Each request is fed to a real HTTP channel (the Site's own protocol) over an
in-memory transport, keep-alive, one after the other: no sockets, no
reactor turns, no other process. What is left is the Python that parses the
request, runs the resource and writes the answer, and the syscalls the
server makes itself (stat, log writes). ``bare`` is benchmarks/ceiling.py's
fixed-reply resource on a plain ``Site`` (its access log into memory); the
difference between the two is what this server adds to the framework.
Figures are CPU microseconds per request (``time.process_time``), the median
of ``--rounds`` rounds.
"""
import argparse
import cProfile
import io
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH))  # this checkout's personium_dav
sys.path.insert(0, BENCH)

from twisted.internet.testing import StringTransport  # noqa: E402
from twisted.web.server import Site  # noqa: E402

import ceiling  # noqa: E402
from personium_dav.store import provision  # noqa: E402
from personium_dav.auth.tokens import TokenService, load_secret  # noqa: E402
from personium_dav.config import Config  # noqa: E402
from personium_dav.web.site import makeSite  # noqa: E402

SCENARIOS = {
    "get": b"GET /cell1/box1/c/f.txt HTTP/1.1\r\n",
    "propfind_d0": b"PROPFIND /cell1/box1/c/ HTTP/1.1\r\nDepth: 0\r\nContent-Length: 0\r\n",
    "options": b"OPTIONS /cell1/box1/c/ HTTP/1.1\r\n",
}


def channel(site):
    protocol = site.buildProtocol(("127.0.0.1", 40000))
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


def driver(site, request):
    """``run(n)``: send ``request`` n times on one connection, checking each
    answer is a 2xx."""
    protocol, transport = channel(site)

    def run(n):
        for _ in range(n):
            protocol.dataReceived(request)
            if transport.value()[9:10] != b"2":
                raise SystemExit("unexpected answer: %r" % transport.value()[:300])
            transport.clear()

    return run


def mine(work):
    root = os.path.join(work, "data")
    provision.create_box(root, "cell1", "box1")
    os.makedirs(os.path.join(root, "cell1", "box1", "c"))
    with open(os.path.join(root, "cell1", "box1", "c", "f.txt"), "wb") as f:
        f.write(ceiling.BODY)
    time.sleep(2.2)  # past layout.SETTLE_NS: the steady state, as in use
    token = TokenService(load_secret(root)).owner_token()
    site = makeSite(root, Config(durable=False), access_log=os.path.join(work, "access.log"))
    return site, b"Host: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n" % token.encode()


def bare():
    site = Site(ceiling.Fixed(), timeout=60)
    site._logFile = io.StringIO()  # twistd would send the lines to its log
    return site


def measure(run, n, rounds):
    run(200)  # warm caches
    times = []
    for _ in range(rounds):
        start = time.process_time()
        run(n)
        times.append((time.process_time() - start) / n * 1e6)
    return statistics.median(times), max(times) - min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", choices=sorted(SCENARIOS), help="cProfile one scenario")
    ap.add_argument("--top", type=int, default=40, help="functions shown by --profile")
    ap.add_argument("--sort", default="cumulative", choices=("cumulative", "tottime"),
                    help="order of --profile's functions")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="inproc-")
    try:
        site, tail = mine(work)
        if a.profile:
            run = driver(site, SCENARIOS[a.profile] + tail)
            run(200)
            profiler = cProfile.Profile()
            profiler.runcall(run, a.requests)
            pstats.Stats(profiler).sort_stats(a.sort).print_stats(a.top)
            return
        bare_run = driver(bare(), SCENARIOS["get"] + tail)
        base, spread = measure(bare_run, a.requests, a.rounds)
        print("| scenario | personium-dav µs CPU/req | bare twisted.web µs CPU/req | added by personium-dav |")
        print("|---|---|---|---|")
        for name, line in SCENARIOS.items():
            cpu, sp = measure(driver(site, line + tail), a.requests, a.rounds)
            print("| %s | %.1f ±%.1f | %.1f ±%.1f | %.1f |" % (name, cpu, sp / 2, base, spread / 2,
                                                             cpu - base))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
