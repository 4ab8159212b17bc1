#!/usr/bin/env python3
"""Service scripts: what a call costs, over HTTP against the real plugin.

    python benchmarks/engine.py                        # the HTTP run (a few minutes)
    python benchmarks/engine.py --duration 5 --runs 3 --script-workers 2
    python benchmarks/engine.py --phases               # a call's parts inside a worker, in process
    python benchmarks/engine.py --pool                 # the ScriptPool alone, no HTTP

One run, one server: this checkout's ``twistd -n personium-dav`` (as
benchmarks/run.py starts it: durable, pinned to --server-cpus; its script
workers inherit the pinning), loaded by wrk pinned to --loadgen-cpus:

* ``get``: GET of a 5-byte box file holding ``hello``: the baseline of the run;
* ``hello``: GET of the README's service, whose script answers ``hello``;
* ``read``: a service that reads a box file with ``_p`` and ``require``s a
  100 KB library;

each at 1 and 8 connections, ``--runs`` times interleaved (the median
quoted), with the CPU each call costs the server process and its workers
(``utime + stime`` from ``/proc`` around each run, per answer). Then:

* cold start: the first call on a fresh server (its pool starts with it:
  spawn, ready, run), on ``--cold`` fresh servers;
* runaway: ``hello`` calls at a steady ``--rate`` per second for
  ``--window`` seconds, each timed from the moment it was due (what clients
  arriving at a steady pace see, queueing included), without and then with a
  ``while(true)`` call in flight all along (each runs into
  ``--script-timeout``, its worker is killed and replaced, the next starts).

Writes benchmarks/results/engine-<stamp>.md and raw/engine-<stamp>.json.
Nothing is asserted; no test runs this.
"""
import argparse
import asyncio
import datetime as _dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
sys.path.insert(0, REPO)
import load  # noqa: E402
import run  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
HELLO = ('function(request){ return {status: 200, headers: {"Content-Type":"text/html"}, '
         'body: ["hello"]}; }')  # the README's
READ = ('function(request){ var lib = require("big"); '
        'var text = _p.localbox().getString("bench-data/hello.txt"); '
        'return {status: 200, headers: {"Content-Type": "text/plain"}, body: [text + lib.f(0)]}; }')
SPIN = "function(request){ while (true) {} }"
SERVICE_MKCOL = (b'<?xml version="1.0" encoding="utf-8"?>'
                 b'<D:mkcol xmlns:D="DAV:" xmlns:p="urn:x-personium:xmlns"><D:set><D:prop>'
                 b'<D:resourcetype><D:collection/><p:service/></D:resourcetype>'
                 b'</D:prop></D:set></D:mkcol>')
ROUTES = (b'<?xml version="1.0" encoding="utf-8"?>'
          b'<D:propertyupdate xmlns:D="DAV:" xmlns:p="urn:x-personium:xmlns"><D:set><D:prop>'
          b'<p:service language="JavaScript"><p:path name="hello" src="hello.js"/>'
          b'<p:path name="read" src="read.js"/><p:path name="spin" src="spin.js"/>'
          b'</p:service></D:prop></D:set></D:propertyupdate>')
SCENARIOS = {"get": "bench-data/hello.txt", "hello": "bench-svc/hello", "read": "bench-svc/read"}


def library(size=100 * 1024):
    """About ``size`` bytes of plausible JS: many small functions."""
    parts, n = ["exports.f = function(x){ return x === 0 ? '' : String(x * 2); };\n"], 0
    while sum(map(len, parts)) < size:
        parts.append("function helper%d(a, b) { var s = 0; for (var i = 0; i < a; i++) { s += i * b; }"
                     " return s + %d; }\nexports.h%d = helper%d;\n" % (n, n, n, n))
        n += 1
    return "".join(parts)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


# ---------------------------------------------------------------- the server
def cpu_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid):
    """PIDs whose parent is ``pid`` (the script workers of a server)."""
    out = []
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % p) as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(p))
        except (OSError, ValueError, IndexError):
            pass
    return out


def cpu_split(pid):
    """(CPU seconds of the server process, of its live workers)."""
    workers = 0.0
    for child in children(pid):
        try:
            workers += cpu_of(child)
        except OSError:
            pass
    return cpu_of(pid), workers


def start(a, work, name):
    return run.start_mine(a, work, name, extra=[
        "--script-workers", str(a.script_workers), "--script-timeout", str(a.script_timeout)])


def deploy(srv, check=True):
    """The fixtures: the file of the GET, and the services (each called
    once, unless not ``check``)."""
    c = load.Client(srv.url, srv.auth)
    base = c.base_path

    def ok(answer, *statuses):
        if answer[0] not in statuses:
            raise SystemExit("fixture answered %r" % (answer,))

    ok(c.req("MKCOL", base + "bench-data/"), 201)
    ok(c.req("PUT", base + "bench-data/hello.txt", b"hello", {"Content-Type": "text/html"}), 201)
    ok(c.req("MKCOL", base + "bench-svc", SERVICE_MKCOL, {"Content-Type": "application/xml"}), 201)
    for name, text in (("hello.js", HELLO), ("read.js", READ), ("spin.js", SPIN),
                       ("big.js", library())):
        ok(c.req("PUT", base + "bench-svc/__src/" + name, text.encode(),
                 {"Content-Type": "text/javascript"}), 201)
    ok(c.req("PROPPATCH", base + "bench-svc", ROUTES, {"Content-Type": "application/xml"}), 207)
    for scenario, path in SCENARIOS.items() if check else ():
        status, body = c.req("GET", base + path)
        if (status, body) != (200, b"hello"):
            raise SystemExit("%s answered %r" % (scenario, (status, body[:200])))
    return c


def settle(a, srv, seconds=30):
    """Wait until the server has all its script workers again: wrk's end
    cuts the calls in flight, and a cut call still running (or waiting for a
    _p answer) after its 1 s grace costs its worker, then a cold start."""
    time.sleep(1.5)
    end = time.monotonic() + seconds
    while len(children(srv.pid)) < a.script_workers and time.monotonic() < end:
        time.sleep(0.05)
    time.sleep(1.0)
    place_workers(a, srv)


def place_workers(a, srv):
    """--worker-cpus: move the script workers off the server's CPUs (a
    replacement spawned later inherits the server's again until the next
    settle)."""
    if a.worker_cpus:
        cpus = {int(c) for c in a.worker_cpus.split(",")}
        for child in children(srv.pid):
            try:
                os.sched_setaffinity(child, cpus)
            except OSError:
                pass


def wrk(a, srv, client, scenario, conns):
    args = argparse.Namespace(loadgen_cpus=a.loadgen_cpus, timeout=30, max_requests=200000)
    settle(a, srv)
    workers = set(children(srv.pid))
    before = cpu_split(srv.pid)
    r = load.run_wrk(args, {"client": client}, client.base_path + SCENARIOS[scenario], "GET",
                     "-", "-", "static", conns, a.duration)
    after = cpu_split(srv.pid)
    if set(children(srv.pid)) != workers:  # a worker was replaced: its CPU is unknown
        after = (after[0], float("nan"))
    n = max(r["responses"], 1)
    return {"scenario": scenario, "conns": conns, "rps": r["rps_active"],
            "p50_ms": r["latency_us"]["p"]["50"] / 1000, "p99_ms": r["latency_us"]["p"]["99"] / 1000,
            "server_us": (after[0] - before[0]) / n * 1e6,
            "workers_us": (after[1] - before[1]) / n * 1e6,
            "bad": r["bad"], "responses": r["responses"]}


# ---------------------------------------------------------------- steady arrivals
async def _exchange(reader, writer, data):
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(head.split(b" ", 2)[1])


async def steady(port, path, auth, rate, seconds, runaway_path=None, again=True):
    """Open-loop calls of ``path`` at ``rate`` a second: [(latency from
    when it was due, status)]; with ``runaway_path``, a call of it from the
    start (and, ``again``, a new one as soon as each is answered: one in
    flight all along). Also the runaway's answers."""
    loop = asyncio.get_running_loop()
    request = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\n\r\n"
               % (path, auth)).encode()
    idle, out, runaways = [], [], []
    start = loop.time() + 0.2
    end = start + seconds

    async def one(due):
        await asyncio.sleep(max(0.0, due - loop.time()))
        try:
            conn = idle.pop() if idle else await asyncio.open_connection("127.0.0.1", port)
            status = await _exchange(*conn, request)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            out.append((loop.time() - due, 0))  # counted as not 200
            return
        out.append((loop.time() - due, status))
        idle.append(conn)

    async def spin():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        data = request.replace(path.encode(), runaway_path.encode(), 1)
        while loop.time() < end:
            runaways.append(await _exchange(reader, writer, data))
            if not again:
                break
        writer.close()

    tasks = [asyncio.ensure_future(one(start + i / rate)) for i in range(int(rate * seconds))]
    if runaway_path:
        tasks.append(asyncio.ensure_future(spin()))
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    return out, runaways


def runaway(a, srv, client):
    """Others' latency while one runaway runs into its limit (``--rounds``
    times, a window of the time limit each), while runaways follow each
    other all along (``--window`` s), and without any (both lengths)."""
    port = int(srv.url.split(":")[2].split("/")[0])
    hello = client.base_path + SCENARIOS["hello"]
    spin = client.base_path + "bench-svc/spin"
    os.sched_setaffinity(0, [int(c) for c in a.loadgen_cpus.split(",")])
    rows = {}
    plans = (("without", None, True, a.rounds, a.script_timeout),
             ("one", spin, False, a.rounds, a.script_timeout),
             ("without, long", None, True, 1, a.window),
             ("all along", spin, True, 1, a.window))
    for label, path, again, rounds, seconds in plans:
        calls, spins = [], []
        for _ in range(rounds):
            settle(a, srv)
            got, answered = asyncio.run(steady(port, hello, srv.auth, a.rate, seconds, path, again))
            calls += got
            spins += answered
        lat = [t for t, _ in calls]
        rows[label] = {"calls": len(calls), "bad": sum(s != 200 for _, s in calls),
                       "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000,
                       "max_ms": max(lat) * 1000, "runaways": spins}
        run.log("runaway", label, {k: v for k, v in rows[label].items() if k != "runaways"})
    os.sched_setaffinity(0, range(os.cpu_count()))
    return rows


def cold_starts(a, work):
    """The first call of a fresh server, whose pool starts with that call."""
    times = []
    for i in range(a.cold):
        srv = start(a, work, "cold%d" % i)
        try:
            c = deploy(srv, check=False)
            t0 = time.perf_counter()
            status, body = c.req("GET", c.base_path + SCENARIOS["hello"])
            times.append(time.perf_counter() - t0)
            if status != 200:
                raise SystemExit("cold call answered %d %r" % (status, body[:200]))
        finally:
            srv.stop()
    return times


# ---------------------------------------------------------------- a call's parts
def phases(n=500):
    """Inside a worker, in process: the parts of a hello-world call (median µs)."""
    import quickjs

    from personium_dav.engine import worker

    with open(worker.PRELUDE, encoding="utf-8") as f:
        prelude = f.read()
    with open(worker.PRELUDE_P, encoding="utf-8") as f:
        prelude_p = f.read()
    request = {"method": "GET", "host": "127.0.0.1", "port": "8080", "scheme": "http",
               "scriptName": "http://127.0.0.1:8080/c/b/s/hello", "pathInfo": "/c/b/s/hello",
               "queryString": "", "headers": {"host": "127.0.0.1:8080"},
               "requestUri": "http://127.0.0.1:8080/c/b/s/hello"}

    def context():
        ctx = quickjs.Context()
        ctx.set_memory_limit(64 << 20)
        ctx.set_max_stack_size(worker.STACK)
        ctx.add_callable("__host", lambda op, args: '{"e":null,"v":null}')
        ctx.set("__p_source", prelude_p)
        return ctx

    def timed(f, setup=None):
        xs = []
        for _ in range(n + 1):
            arg = setup() if setup else None
            t0 = time.perf_counter()
            f(arg)
            xs.append(time.perf_counter() - t0)
        return statistics.median(xs[1:]) * 1e6

    def prepared():
        ctx = context()
        return ctx, ctx.eval(prelude)

    def script(source):
        arg = json.dumps({"source": source, "request": request})
        return lambda p: (p[1]("run", arg), p[1]("body", ""))

    parts = {}
    parts["a fresh context (limits, the callback)"] = timed(lambda _: context())
    parts["the prelude (compiled and run; made before the call)"] = timed(
        lambda ctx: ctx.eval(prelude), context)
    parts["prelude_p.js, when a script first reads _p"] = timed(
        lambda ctx: ctx.eval("(" + prelude_p + ")"), context)
    parts["the hello script: evaluated, called, its answer checked"] = timed(
        script(HELLO), prepared)
    parts["a script touching _p (its compilation included)"] = timed(
        script('function(r){ return {status: 200, headers: {}, body: [typeof _p.as]}; }'), prepared)
    holder = []
    parts["dropping a used context"] = timed(lambda _: holder.clear(),
                                              lambda: holder.append(prepared()))
    return parts


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--runs", type=int, default=3, help="runs per cell, interleaved")
    ap.add_argument("--conns", default="1,8")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--script-workers", type=int, default=2)
    ap.add_argument("--script-timeout", type=float, default=2.0)
    ap.add_argument("--server-cpus", default="0")
    ap.add_argument("--loadgen-cpus", default="1")
    ap.add_argument("--worker-cpus", default="",
                    help="CPUs of the script workers (default: the server's, which they inherit)")
    ap.add_argument("--cold", type=int, default=3, help="fresh servers for the cold start")
    ap.add_argument("--rate", type=float, default=100.0, help="calls a second (runaway)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="runaways measured one at a time (each a window of the time limit)")
    ap.add_argument("--window", type=float, default=10.0,
                    help="seconds of runaways following each other")
    ap.add_argument("--no-runaway", action="store_true")
    ap.add_argument("--checkout", default="",
                    help="serve this source tree instead of this one (an A/B of two commits; "
                    "e.g. one unpacked by git archive)")
    ap.add_argument("--tag", default="")
    ap.add_argument("--phases", action="store_true", help="only the parts of a call, in process")
    ap.add_argument("--pool", action="store_true", help="only the pool, in process (no HTTP)")
    a = ap.parse_args()
    if a.phases:
        for name, us in phases().items():
            print("%-55s %8.0f µs" % (name, us))
        return
    if a.pool:
        import engine_pool

        return engine_pool.main_of(a)
    if a.checkout:
        run.REPO = os.path.abspath(a.checkout)
        out_checkout = run.REPO
    else:
        out_checkout = REPO
    if not shutil.which("wrk") or not shutil.which("taskset"):
        raise SystemExit("needs wrk (apt-get install wrk) and taskset")
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    os.makedirs(run.RUN_DIR, exist_ok=True)
    work = tempfile.mkdtemp(prefix="engine-%s-" % stamp, dir=run.RUN_DIR)
    out = {"stamp": stamp, "argv": " ".join(sys.argv[1:]), "load": [], "checkout": out_checkout,
           "machine": load.machine_facts()}
    srv = None
    try:
        srv = start(a, work, "mine")
        client = deploy(srv)
        time.sleep(2.5)  # files settled: the steady state of the caches (store/layout.py)
        for scenario in a.scenarios.split(","):  # warm up
            load.run_wrk(argparse.Namespace(loadgen_cpus=a.loadgen_cpus, timeout=30,
                                            max_requests=2000),
                         {"client": client}, client.base_path + SCENARIOS[scenario], "GET",
                         "-", "-", "static", 1, 1)
        for r in range(a.runs):
            for conns in [int(c) for c in a.conns.split(",")]:
                for scenario in a.scenarios.split(","):
                    row = wrk(a, srv, client, scenario, conns)
                    row["run"] = r + 1
                    out["load"].append(row)
                    run.log(scenario, conns, "%.0f req/s, p50 %.2f ms" % (row["rps"], row["p50_ms"]))
        if not a.no_runaway:
            out["runaway"] = runaway(a, srv, client)
        srv.stop()
        srv = None
        if a.cold:
            out["cold"] = cold_starts(a, work)
        if not a.checkout:
            out["phases"] = phases()
    finally:
        if srv is not None:
            srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    tag = "-" + a.tag if a.tag else ""
    os.makedirs(os.path.join(BENCH, "results", "raw"), exist_ok=True)
    raw = os.path.join(BENCH, "results", "raw", "engine-%s%s.json" % (stamp, tag))
    with open(raw, "w") as f:
        json.dump(out, f, indent=1)
    md = report(out, a)
    path = os.path.join(BENCH, "results", "engine-%s%s.md" % (stamp, tag))
    with open(path, "w") as f:
        f.write(md)
    print(md)
    run.log("wrote", os.path.relpath(raw, REPO), os.path.relpath(path, REPO))


def report(out, a):
    L = ["# Service scripts over HTTP, %s" % out["stamp"], "",
         "Command: `python benchmarks/engine.py %s`; %d script workers, time limit %s s; "
         "server on CPU %s, its workers on CPU %s, wrk on CPU %s; %d s per run, the median of %d runs."
         % (out["argv"], a.script_workers, a.script_timeout, a.server_cpus,
            a.worker_cpus or a.server_cpus, a.loadgen_cpus, a.duration, a.runs), "",
         "| scenario | conns | req/s | ÷ GET | p50 ms | p99 ms | server µs CPU/call | workers µs CPU/call |",
         "|---|---|---|---|---|---|---|---|"]
    cells = {}
    for row in out["load"]:
        cells.setdefault((row["scenario"], row["conns"]), []).append(row)

    def med(rows, key):
        values = [r[key] for r in rows if r[key] == r[key]]  # not NaN
        return statistics.median(values) if values else float("nan")

    for (scenario, conns), rows in sorted(cells.items(), key=lambda k: (k[0][1], k[0][0] != "get", k[0][0])):
        base = cells.get(("get", conns))
        ratio = med(rows, "rps") / med(base, "rps") if base else 0
        L.append("| %s | %d | %.0f | %.2f× | %.2f | %.2f | %.0f | %.0f |" % (
            scenario, conns, med(rows, "rps"), ratio, med(rows, "p50_ms"), med(rows, "p99_ms"),
            med(rows, "server_us"), med(rows, "workers_us")))
    bad = sum(r["bad"] for r in out["load"])
    L += ["", "Non-2xx answers or socket errors: %d." % bad, ""]
    if out.get("runaway"):
        r = out["runaway"]
        L += ["Runaway: hello at %s calls/s, each timed from when it was due; %d windows of "
              "the %s s time limit, each while one `while(true)` call runs into that limit "
              "(started with the window), against the same windows without it; then %s s "
              "while runaways follow each other (a new one as soon as the last is killed), "
              "against %s s without:" % (a.rate, a.rounds, a.script_timeout, a.window, a.window), "",
              "| | calls | p50 ms | p99 ms | max ms | not 200 |", "|---|---|---|---|---|---|"]
        for label, text in (("without", "without"), ("one", "while one runaway runs into its limit"),
                            ("without, long", "without (long window)"),
                            ("all along", "runaways all along")):
            row = r[label]
            L.append("| %s | %d | %.2f | %.2f | %.1f | %d |" % (
                text, row["calls"], row["p50_ms"], row["p99_ms"], row["max_ms"], row["bad"]))
        L += ["", "p99 while one runaway runs ÷ without: %.2f×; runaways all along ÷ without: %.2f× "
              "(runaways answered %s)." % (
                  r["one"]["p99_ms"] / r["without"]["p99_ms"],
                  r["all along"]["p99_ms"] / r["without, long"]["p99_ms"],
                  sorted(set(r["one"]["runaways"] + r["all along"]["runaways"]))), ""]
    if out.get("cold"):
        L += ["Cold start (the first call of a fresh server: pool start, worker spawn to ready, the call): "
              + ", ".join("%.0f ms" % (t * 1000) for t in out["cold"])
              + " (median %.0f ms)." % (statistics.median(out["cold"]) * 1000), ""]
    if out.get("phases"):
        L += ["A hello-world call's parts inside a worker (in process, median):", "",
              "| part | µs |", "|---|---|"]
        L += ["| %s | %.0f |" % (k, v) for k, v in out["phases"].items()]
        L.append("")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
