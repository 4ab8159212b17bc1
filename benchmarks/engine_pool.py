"""The service-script engine on its own: calls through a ScriptPool, no HTTP
(``python benchmarks/engine.py --pool``).

Measures, in one run:

* a hello-world call: p50 latency and calls/s, one at a time and 8 at once;
* the cold start of a worker (spawn to ``ready``);
* a script that requires a 100 KB library (compiled on every call: there is
  no bytecode cache);
* what a runaway script costs the others: p50/p99 of hello-world calls made
  one after another while a ``while(true){}`` runs into the time limit on
  another worker, against the same without it.

The host is an in-memory stub. Nothing is asserted; no test runs this.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import defer, task  # noqa: E402

from personium_dav.engine import HostError, Job, ScriptPool  # noqa: E402

HELLO = 'function(r){ return {status: 200, headers: {"Content-Type": "text/plain"}, body: ["hello"]}; }'
WITH_LIB = ('function(r){ var lib = require("big"); '
            'return {status: 200, headers: {}, body: [String(lib.f(2))]}; }')
RUNAWAY = "function(r){ while (true) {} }"


def library(size=100 * 1024):
    """About ``size`` bytes of plausible JS: many small functions."""
    parts, n = ["exports.f = function(x){ return x * 2; };\n"], 0
    while sum(map(len, parts)) < size:
        parts.append("function helper%d(a, b) { var s = 0; for (var i = 0; i < a; i++) { s += i * b; }"
                     " return s + %d; }\nexports.h%d = helper%d;\n" % (n, n, n, n))
        n += 1
    return "".join(parts)


class Host:
    def __init__(self):
        self.lib = library()

    def call(self, op, args):
        if op == "require" and args["name"] == "big":
            return self.lib
        raise HostError(404, "not found")


def job(source):
    return Job(source=source, name="bench.js", method="GET", base_url="http://localhost:8080/",
               url="http://localhost:8080/cell1/box1/svc/x", path_info="/cell1/box1/svc/x",
               headers={"host": "localhost:8080"})


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def ms(seconds):
    return "%.2f ms" % (seconds * 1000)


@defer.inlineCallbacks
def timed(pool, host, source):
    start = time.perf_counter()
    res = yield pool.run(job(source), host)
    assert res.status == 200, (res.status, res.body)
    return time.perf_counter() - start


@defer.inlineCallbacks
def sequential(pool, host, source, n):
    times = []
    for _ in range(n):
        times.append((yield timed(pool, host, source)))
    return times


@defer.inlineCallbacks
def concurrent(pool, host, source, n, width):
    times, left = [], [n]

    @defer.inlineCallbacks
    def lane():
        while left[0] > 0:
            left[0] -= 1
            times.append((yield timed(pool, host, source)))

    start = time.perf_counter()
    yield defer.gatherResults([lane() for _ in range(width)])
    return times, time.perf_counter() - start


@defer.inlineCallbacks
def main(reactor, args):
    tmp = tempfile.mkdtemp(prefix="engine-bench-")
    host = Host()
    pool = ScriptPool(args.workers, args.timeout, args.memory, tmp, reactor)
    t0 = time.perf_counter()
    pool.start()
    while pool.stats()["ready"] < args.workers:
        yield task.deferLater(reactor, 0.005, lambda: None)
    all_ready = time.perf_counter() - t0
    cold = pool.stats()["cold_starts"]
    print("workers: %d, time limit %s s, memory %d MiB" % (args.workers, args.timeout, args.memory))
    print("cold start of a worker: %s (each: %s); all %d ready after %s"
          % (ms(sum(cold) / len(cold)), ", ".join(ms(c) for c in cold), args.workers, ms(all_ready)))

    yield sequential(pool, host, HELLO, 50)  # warm up
    start = time.perf_counter()
    times = yield sequential(pool, host, HELLO, args.calls)
    took = time.perf_counter() - start
    print("hello, 1 at a time: p50 %s, p99 %s, %.0f calls/s"
          % (ms(pct(times, 50)), ms(pct(times, 99)), len(times) / took))
    times, took = yield concurrent(pool, host, HELLO, args.calls, 8)
    print("hello, 8 at once:   p50 %s, p99 %s, %.0f calls/s"
          % (ms(pct(times, 50)), ms(pct(times, 99)), len(times) / took))

    times = yield sequential(pool, host, WITH_LIB, max(50, args.calls // 10))
    print("require of a %d KB library: p50 %s, p99 %s"
          % (len(host.lib) // 1024, ms(pct(times, 50)), ms(pct(times, 99))))

    base = yield sequential(pool, host, HELLO, 300)
    runaway = pool.run(job(RUNAWAY), host)
    start = time.perf_counter()
    during = []
    while not runaway.called:
        during.append((yield timed(pool, host, HELLO)))
    limit = time.perf_counter() - start
    res = yield runaway
    after_kill = yield timed(pool, host, HELLO)
    print("others while a runaway ran into its limit (%s, answered %d): %d calls, p50 %s, p99 %s;"
          " without it: p50 %s, p99 %s; first call after the kill %s"
          % (ms(limit), res.status, len(during), ms(pct(during, 50)), ms(pct(during, 99)),
             ms(pct(base, 50)), ms(pct(base, 99)), ms(after_kill)))
    yield pool.stop()
    shutil.rmtree(tmp, True)


def main_of(a):
    """Run it with engine.py's options (--script-workers, --script-timeout)."""
    args = argparse.Namespace(workers=a.script_workers, timeout=a.script_timeout, memory=64,
                              calls=1000)
    task.react(main, [args])
