#!/usr/bin/env python3
"""Side-by-side WebDAV load probe (adapted from a load probe of WebDAV peers,
for benchmarks/run.py: a fixed-reply "ceiling" target, parallel seeding, and a
main() callable with an argv list): wrk (C, one thread, pinned) does the load,
this script (standard library only) makes the fixtures, checks each scenario
once for correctness before loading it, runs wrk, and tabulates medians.

    python3 load.py apache=http://127.0.0.1:8081/dav/ wsgidav=http://127.0.0.1:8082/dav/ \\
                    mine=http://127.0.0.1:8080/

Each URL is an existing, writable collection on a loopback address. Under it
the script makes a scratch collection bench-<stamp>/ and deletes it at the end
(--keep to leave it). Scenarios (main table, at each --conns):

  put_new        PUT 1 KiB to a distinct new name per request   (expects 201)
  put_overwrite  PUT 1 KiB over one existing file                (2xx)
  proppatch      PROPPATCH <B:bench xmlns:B="urn:x-webdav-bench:">value-N</B:bench>
                 (one dead property, value changes per request) on a collection
                 that has no other dead properties                 (207 + 200 propstat)
  propfind_d0    PROPFIND Depth 0 allprop on an empty collection   (207)
  propfind_d1    PROPFIND Depth 1 allprop on a collection of 1,000 1-KiB files
  get            GET of a 1 KiB file                               (200)

Scaling probe (--scaling, at --scaling-conns, default 1 connection):
  proppatch_props<N>   the same PROPPATCH on a collection already holding N
                       dead properties (N in --props-levels, default 10,100,1000)
  propfind_d1_m<N>     PROPFIND Depth 1 on a collection of N files
                       (N in --members-levels, default 100,1000,10000)

Every (scenario, target) is run --runs times; runs are interleaved across
targets (run 1 of A, B, C, then run 2 ...) so slow drift hits all alike, and
the tables quote the median over runs (with 2 runs: their mean) plus the
spread (max-min)/median. Bounded: each wrk run stops after --duration seconds
or --max-requests responses, whichever first; the process pins itself and wrk
to --loadgen-cpus (default CPU 1) so the server can have CPU 0 to itself
(the peers/start-*.sh scripts pin servers to CPU 0).

A target named in --ceiling answers every request with a fixed body (the bare
twisted.web ceiling, benchmarks/ceiling.py): it gets no fixtures and no checks
beyond one 2xx answer, and only put_new, put_overwrite, proppatch,
propfind_d0 and get are run against it (the same requests as for the others).

Outputs results/raw/load-<stamp>.json (every run) and results/load-<stamp>.md
(tables, the command line, machine facts). Needs `wrk` (Debian package) and
`taskset` (util-linux).
"""
import argparse
import datetime as _dt
import http.client
import ipaddress
import json
import os
import platform
import re
import resource
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET

BENCH = os.path.dirname(os.path.abspath(__file__))
LUA = "wrk/dav.lua"  # wrk runs with cwd=BENCH, so commands stay relative
DAV = "{DAV:}"
BNS = "urn:x-webdav-bench:"        # namespace of the measured dead property
SNS = "urn:x-webdav-bench-seed:"   # namespace of the seeded dead properties
MAIN = ["put_new", "put_overwrite", "proppatch", "propfind_d0", "propfind_d1", "get"]

PROPPATCH_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<D:propertyupdate xmlns:D="DAV:" xmlns:B="' + BNS + '">'
    '<D:set><D:prop><B:bench>value-@N@</B:bench></D:prop></D:set>'
    '</D:propertyupdate>\n')
PROPFIND_BODIES = {
    "allprop": '<?xml version="1.0" encoding="utf-8"?>\n'
               '<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>\n',
    "named": '<?xml version="1.0" encoding="utf-8"?>\n'
             '<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/>'
             '<D:getcontentlength/><D:getlastmodified/><D:getetag/>'
             '<D:displayname/></D:prop></D:propfind>\n',
}
PAYLOAD = bytes((i * 7 + 13) % 256 for i in range(1024))  # 1 KiB


class Unsupported(Exception):
    """The server does not do what the scenario needs; scenario is n/a."""


# ---------------------------------------------------------------- HTTP client
class Client:
    """Minimal keep-alive HTTP/1.1 client for fixtures and checks."""

    def __init__(self, base, auth=None):
        self.auth = auth  # an Authorization header value, or None
        u = urllib.parse.urlsplit(base)
        if u.scheme != "http":
            raise SystemExit(f"only http:// URLs: {base}")
        self.host, self.port = u.hostname, u.port or 80
        self.base_path = u.path if u.path.endswith("/") else u.path + "/"
        self.conn = None

    def req(self, method, path, body=None, headers=None, retry=True):
        h = {"Connection": "keep-alive"}
        if self.auth:
            h["Authorization"] = self.auth
        h.update(headers or {})
        if body is not None and not isinstance(body, bytes):
            body = body.encode()
        if body is not None:
            h.setdefault("Content-Type", "application/xml; charset=\"utf-8\"")
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            self.conn.request(method, path, body=body, headers=h)
            r = self.conn.getresponse()
            data = r.read()
            if r.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            return r.status, data
        except (http.client.HTTPException, OSError):
            if self.conn:
                self.conn.close()
            self.conn = None
            if retry:
                return self.req(method, path, body, headers, retry=False)
            raise

    def put(self, path, data=PAYLOAD):
        return self.req("PUT", path, data, {"Content-Type": "application/octet-stream"})


def multistatus(data):
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise Unsupported(f"unparseable multistatus: {e}")
    if root.tag != DAV + "multistatus":
        raise Unsupported(f"root element {root.tag}, not DAV:multistatus")
    return root.findall(DAV + "response")


def prop_statuses(resp_el):
    """{prop tag: (http status code, element)} for one DAV:response."""
    out = {}
    for ps in resp_el.findall(DAV + "propstat"):
        st = ps.findtext(DAV + "status") or ""
        m = re.search(r"\s(\d{3})\b", st)
        code = int(m.group(1)) if m else 0
        prop = ps.find(DAV + "prop")
        for p in (prop if prop is not None else []):
            out[p.tag] = (code, p)
    return out


# ---------------------------------------------------------------- fixtures
def proppatch_body(props):
    inner = "".join(f"<S:{k}>{v}</S:{k}>" for k, v in props)
    return ('<?xml version="1.0" encoding="utf-8"?>\n<D:propertyupdate xmlns:D="DAV:" '
            f'xmlns:S="{SNS}"><D:set><D:prop>{inner}</D:prop></D:set></D:propertyupdate>\n')


def mkcol(c, path):
    st, data = c.req("MKCOL", path)
    if st != 201:
        raise Unsupported(f"MKCOL {path} -> {st}")


def seed_members(c, path, n, workers=8):
    """MKCOL path, then PUT n 1-KiB files into it over `workers` connections."""
    import concurrent.futures
    mkcol(c, path)

    def part(k):
        w = Client("http://%s:%d%s" % (c.host, c.port, c.base_path), c.auth)
        for i in range(k, n, workers):
            st, _ = w.put(f"{path}f-{i:05d}.bin")
            if st not in (200, 201, 204):
                raise Unsupported(f"PUT {path}f-{i:05d}.bin -> {st}")
        if w.conn:
            w.conn.close()

    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        for f in [ex.submit(part, k) for k in range(workers)]:
            f.result()


def seed_props(c, path, n, batch=100):
    mkcol(c, path)
    for start in range(0, n, batch):
        props = [(f"p{i:05d}", f"seed value {i}") for i in range(start, min(n, start + batch))]
        st, data = c.req("PROPPATCH", path, proppatch_body(props))
        if st != 207:
            raise Unsupported(f"PROPPATCH {path} -> {st}")
        bad = [t for t, (code, _) in prop_statuses(multistatus(data)[0]).items() if code != 200]
        if bad:
            raise Unsupported(f"PROPPATCH {path}: {len(bad)} props not set")
    # count what the server reports back (allprop: WsgiDAV 4.4 answers
    # <D:propname/> with no propstat at all, it looks for <D:name/>)
    st, data = c.req("PROPFIND", path, PROPFIND_BODIES["allprop"], {"Depth": "0"})
    if st != 207:
        raise Unsupported(f"PROPFIND allprop {path} -> {st}")
    got = sum(1 for t in prop_statuses(multistatus(data)[0]) if t.startswith("{" + SNS))
    if got != n:
        raise Unsupported(f"{path}: server reports {got} seeded dead props, wanted {n}")


# ---------------------------------------------------------------- checks
def check_proppatch(c, path, value):
    body = PROPPATCH_BODY.replace("@N@", value)
    st, data = c.req("PROPPATCH", path, body)
    if st != 207:
        raise Unsupported(f"PROPPATCH -> {st}")
    ps = prop_statuses(multistatus(data)[0])
    code = ps.get("{" + BNS + "}bench", (None,))[0]
    if code != 200:
        raise Unsupported(f"PROPPATCH propstat {code}")
    check_prop_value(c, path, f"value-{value}")


def check_prop_value(c, path, want):
    st, data = c.req("PROPFIND", path, '<?xml version="1.0"?><D:propfind xmlns:D="DAV:" '
                     f'xmlns:B="{BNS}"><D:prop><B:bench/></D:prop></D:propfind>', {"Depth": "0"})
    if st != 207:
        raise Unsupported(f"PROPFIND after PROPPATCH -> {st}")
    code, el = prop_statuses(multistatus(data)[0]).get("{" + BNS + "}bench", (None, None))
    got = el.text if el is not None else None
    if code != 200 or (want is not None and got != want):
        raise Unsupported(f"dead property not stored: status {code}, value {got!r}")
    return got


def check_propfind(c, path, depth, nmembers, body):
    st, data = c.req("PROPFIND", path, body, {"Depth": depth})
    if st != 207:
        raise Unsupported(f"PROPFIND Depth {depth} -> {st}")
    n = len(multistatus(data))
    want = 1 + (nmembers if depth == "1" else 0)
    if n != want:
        raise Unsupported(f"PROPFIND Depth {depth}: {n} responses, wanted {want}")
    return len(data)


# ---------------------------------------------------------------- machine
def cpu_times():
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                p = line.split()
                v = list(map(int, p[1:9]))
                out[p[0]] = (sum(v), v[3] + v[4], v[4])  # total, idle+iowait, iowait
    return out


def busy_pct(a, b):
    """{cpuN: busy %} plus {cpuN_iowait: %} between two cpu_times() samples."""
    res = {}
    for k in b:
        tot = b[k][0] - a[k][0]
        idle = b[k][1] - a[k][1]
        res[k] = round(100.0 * (tot - idle) / tot, 1) if tot > 0 else 0.0
        res[k + "_iowait"] = round(100.0 * (b[k][2] - a[k][2]) / tot, 1) if tot > 0 else 0.0
    return res


def machine_facts():
    facts = {"nproc": os.cpu_count(), "kernel": platform.release(),
             "python": platform.python_version(), "loadavg_start": os.getloadavg()}
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            facts["cpu"] = m.group(1).strip() if m else "?"
    except OSError:
        facts["cpu"] = "?"
    try:
        facts["wrk"] = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0].strip()
    except OSError:
        facts["wrk"] = "?"
    try:
        with open("/proc/meminfo") as f:
            facts["mem_total_kb"] = int(f.readline().split()[1])
    except OSError:
        pass
    return facts


def check_loopback(url):
    host = urllib.parse.urlsplit(url).hostname
    if not host:
        raise SystemExit(f"bad URL {url}")
    for info in socket.getaddrinfo(host, None):
        if not ipaddress.ip_address(info[4][0]).is_loopback:
            raise SystemExit(f"refusing non-loopback target {url} ({info[4][0]})")


# ---------------------------------------------------------------- wrk
def run_wrk(a, target, path, method, depth, bodyfile, mode, conns, duration):
    url = f"http://{target['client'].host}:{target['client'].port}/"
    cmd = ["taskset", "-c", a.loadgen_cpus, "wrk", "-t1", f"-c{conns}", f"-d{duration}s",
           "--timeout", f"{a.timeout}s", "-s", LUA, url, "--",
           method, path, depth, bodyfile, mode, str(a.max_requests), target["client"].auth or "-"]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c0, t0 = cpu_times(), time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=BENCH,
                       timeout=duration + a.timeout + 60)
    wall = time.monotonic() - t0
    busy = busy_pct(c0, cpu_times())
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = re.search(r"^WRKJSON (.*)$", p.stdout, re.M)
    if p.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed ({p.returncode}): {p.stdout[-500:]} {p.stderr[-500:]}")
    r = json.loads(m.group(1))
    gen_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    ok = sum(v for k, v in r["statuses"].items() if k.startswith("2"))
    e = r["errors"]
    r.update({
        "cmd": " ".join(shlex.quote(x) for x in cmd),
        "wall_s": round(wall, 3),
        "loadgen_cpu_pct": round(100.0 * gen_cpu / max(r["active_s"], 1e-9), 1),
        "cpu_busy_pct": busy,
        "ok": ok,
        "bad": r["responses"] - ok + e["connect"] + e["read"] + e["write"] + e["timeout"],
        "capped": a.max_requests > 0 and r["responses"] >= a.max_requests,
    })
    return r


# ---------------------------------------------------------------- main
CEILING_SCENARIOS = ("put_new", "put_overwrite", "proppatch", "propfind_d0", "get")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="+", metavar="NAME=URL")
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    ap.add_argument("--conns", default="8", help="connections, comma list (default 8)")
    ap.add_argument("--runs", type=int, default=2, help="repeats per cell (default 2)")
    ap.add_argument("--scenarios", default=",".join(MAIN))
    ap.add_argument("--no-scaling", dest="scaling", action="store_false")
    ap.add_argument("--scaling-conns", type=int, default=1)
    ap.add_argument("--props-levels", default="10,100,1000")
    ap.add_argument("--members-levels", default="100,1000,10000")
    ap.add_argument("--propfind", choices=sorted(PROPFIND_BODIES), default="allprop")
    ap.add_argument("--max-requests", type=int, default=200000,
                    help="cap on responses per wrk run (default 200000)")
    ap.add_argument("--timeout", type=int, default=30, help="wrk per-request timeout, s")
    ap.add_argument("--loadgen-cpus", default="1", help="taskset list for wrk and this script")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between wrk runs")
    ap.add_argument("--settle", type=float, default=10.0,
                    help="seconds to wait after sync once fixtures are made (default 10)")
    ap.add_argument("--keep", action="store_true", help="leave the scratch collections")
    ap.add_argument("--tag", default="", help="label added to output file names")
    ap.add_argument("--ceiling", default="",
                    help="comma list of target names that answer every request with "
                         "a fixed body (no fixtures, no checks beyond a 2xx)")
    a = ap.parse_args(argv)
    ceilings = {x for x in a.ceiling.split(",") if x}

    if not shutil.which("wrk") or not shutil.which("taskset"):
        raise SystemExit("needs wrk and taskset on PATH")
    cpus = set()
    for part in a.loadgen_cpus.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    os.sched_setaffinity(0, cpus)

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    conns_list = [int(x) for x in a.conns.split(",")]
    scen = [s for s in a.scenarios.split(",") if s]
    for s in scen:
        if s not in MAIN:
            raise SystemExit(f"unknown scenario {s}; know {MAIN}")
    props_levels = [int(x) for x in a.props_levels.split(",") if x] if a.scaling else []
    members_levels = [int(x) for x in a.members_levels.split(",") if x] if a.scaling else []
    if "propfind_d1" in scen and 1000 not in members_levels:
        members_levels.append(1000)

    targets = []
    for t in a.targets:
        name, _, url = t.partition("=")
        if not url or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise SystemExit(f"bad target {t!r}: want NAME=URL")
        check_loopback(url)
        auth = os.environ.get("BENCH_AUTH_" + re.sub(r"\W", "_", name).upper())  # e.g. BENCH_AUTH_MINE="Bearer ..."
        targets.append({"name": name, "url": url, "client": Client(url, auth),
                        "ceiling": name in ceilings})

    os.makedirs(os.path.join(BENCH, "run"), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="load-", dir=os.path.join(BENCH, "run"))
    rel = os.path.relpath(tmp, BENCH)  # request bodies, named relative to BENCH
    files = {"payload": f"{rel}/1k.bin", "proppatch": f"{rel}/pp.xml",
             "propfind": f"{rel}/pf.xml"}
    with open(os.path.join(BENCH, files["payload"]), "wb") as f:
        f.write(PAYLOAD)
    with open(os.path.join(BENCH, files["proppatch"]), "w") as f:
        f.write(PROPPATCH_BODY)
    pf_body = PROPFIND_BODIES[a.propfind]
    with open(os.path.join(BENCH, files["propfind"]), "w") as f:
        f.write(pf_body)

    facts = machine_facts()
    log = lambda *x: print(time.strftime("%H:%M:%S"), *x, flush=True)
    log("machine", json.dumps(facts))

    # ---- fixtures + one correctness check per scenario
    for t in targets:
        c = t["client"]
        if t["ceiling"]:
            t["root"] = c.base_path
            t["na"] = {k: "fixed reply (ceiling)" for k in
                       [s for s in scen if s not in CEILING_SCENARIOS]
                       + [f"proppatch_props{n}" for n in props_levels]
                       + [f"propfind_d1_m{n}" for n in members_levels]}
            st, _ = c.req("GET", c.base_path)
            if st // 100 != 2:
                raise SystemExit(f"{t['name']}: ceiling answers GET with {st}")
            continue
        root = f"{c.base_path}bench-{stamp}/"
        t["root"] = root
        t["na"] = {}
        t0 = time.monotonic()
        try:
            mkcol(c, root)
        except Unsupported as e:
            raise SystemExit(f"{t['name']}: cannot create scratch collection: {e}")

        def fx(key, fn):
            try:
                fn()
            except Unsupported as e:
                t["na"][key] = str(e)
                log(t["name"], key, "n/a:", e)

        def f_get():
            st, _ = c.put(root + "get.bin")
            if st not in (200, 201, 204):
                raise Unsupported(f"PUT -> {st}")
            st, data = c.req("GET", root + "get.bin")
            if st != 200 or data != PAYLOAD:
                raise Unsupported(f"GET -> {st}, {len(data)} bytes")

        def f_put_overwrite():
            c.put(root + "ow.bin")
            st, _ = c.put(root + "ow.bin")
            if st not in (200, 201, 204):
                raise Unsupported(f"PUT overwrite -> {st}")

        def f_put_new():
            mkcol(c, root + "put-check/")
            st, _ = c.put(root + "put-check/new.bin")
            if st != 201:
                raise Unsupported(f"PUT new -> {st}, expected 201")

        def f_proppatch():
            mkcol(c, root + "pp/")
            check_proppatch(c, root + "pp/", "0")

        def f_d0():
            mkcol(c, root + "d0/")
            check_propfind(c, root + "d0/", "0", 0, pf_body)

        if "get" in scen:
            fx("get", f_get)
        if "put_overwrite" in scen:
            fx("put_overwrite", f_put_overwrite)
        if "put_new" in scen:
            fx("put_new", f_put_new)
        if "proppatch" in scen:
            fx("proppatch", f_proppatch)
        if "propfind_d0" in scen:
            fx("propfind_d0", f_d0)
        for n in props_levels:
            def f_props(n=n):
                seed_props(c, f"{root}p{n}/", n)
                check_proppatch(c, f"{root}p{n}/", "0")
            fx(f"proppatch_props{n}", f_props)
        t["pf_bytes"] = {}
        for n in sorted(set(members_levels)):
            def f_members(n=n):
                seed_members(c, f"{root}m{n}/", n)
                t["pf_bytes"][n] = check_propfind(c, f"{root}m{n}/", "1", n, pf_body)
            fx(f"propfind_d1_m{n}", f_members)
        if "propfind_d1" in scen and "propfind_d1_m1000" in t["na"]:
            t["na"]["propfind_d1"] = t["na"]["propfind_d1_m1000"]
        log(t["name"], f"fixtures ready in {time.monotonic() - t0:.1f}s",
            "n/a:", sorted(t["na"]) or "none")

    # Let the disk quiesce after seeding (writeback of ~11k new files).
    os.sync()
    time.sleep(a.settle)

    # ---- the plan: (group, scenario, conns) cells, each run --runs times
    plan = []
    for s in scen:
        for cn in conns_list:
            plan.append(("main", s, cn))
    for n in props_levels:
        plan.append(("scaling", f"proppatch_props{n}", a.scaling_conns))
    for n in members_levels:
        plan.append(("scaling", f"propfind_d1_m{n}", a.scaling_conns))

    def spec(t, s, run, cn):
        root = t["root"]
        if s == "get":
            return ("GET", root + "get.bin", "-", "-", "static")
        if s == "put_overwrite":
            return ("PUT", root + "ow.bin", "-", files["payload"], "static")
        if s == "put_new":
            col = f"{root}put-r{run}-c{cn}/"
            if not t["ceiling"]:
                mkcol(t["client"], col)
            return ("PUT", col + "f-%d-%d.bin", "-", files["payload"], "unique")
        if s == "proppatch":
            return ("PROPPATCH", root + "pp/", "-", files["proppatch"], "vary")
        if s.startswith("proppatch_props"):
            return ("PROPPATCH", f"{root}p{s[len('proppatch_props'):]}/", "-",
                    files["proppatch"], "vary")
        if s == "propfind_d0":
            return ("PROPFIND", root + "d0/", "0", files["propfind"], "static")
        if s == "propfind_d1":
            return ("PROPFIND", root + "m1000/", "1", files["propfind"], "static")
        if s.startswith("propfind_d1_m"):
            return ("PROPFIND", f"{root}m{s[len('propfind_d1_m'):]}/", "1",
                    files["propfind"], "static")
        raise KeyError(s)

    results = []
    for run in range(1, a.runs + 1):
        for group, s, cn in plan:
            for t in targets:
                if s in t["na"]:
                    continue
                sp = spec(t, s, run, cn)
                os.sync()  # no dirty pages from fixtures/deletes leak into the run
                time.sleep(a.pause)
                r = run_wrk(a, t, sp[1], sp[0], sp[2], sp[3], sp[4], cn, a.duration)
                r.update({"target": t["name"], "scenario": s, "group": group,
                          "conns": cn, "run": run})
                # post-check: the dead property really changed under load
                if sp[0] == "PROPPATCH" and not t["ceiling"]:
                    try:
                        got = check_prop_value(t["client"], sp[1], None)
                        r["post_check"] = f"ok, value {got}"
                    except Unsupported as e:
                        r["post_check"] = f"FAILED: {e}"
                results.append(r)
                log(f"run{run} {t['name']:<10} {s:<20} c={cn:<3} "
                    f"rps={r['rps_active']:9.1f} p50={r['latency_us']['p']['50'] / 1000:8.2f}ms "
                    f"p99={r['latency_us']['p']['99'] / 1000:8.2f}ms n={r['responses']} "
                    f"bad={r['bad']} gen={r['loadgen_cpu_pct']}% busy={r['cpu_busy_pct']}"
                    + (" CAPPED" if r["capped"] else "") + (f" post={r.get('post_check')}" if "post_check" in r else ""))
                # put_new collections are deleted only at the very end: deleting
                # tens of thousands of files (ext4, mounted with discard) slows
                # file creation for many seconds afterwards and would bleed
                # into the next cell.

    facts["loadavg_end"] = os.getloadavg()
    if not a.keep:
        for t in targets:
            if t["ceiling"]:
                continue
            try:
                # Personium semantics refuse a non-empty collection without it
                st, _ = t["client"].req("DELETE", t["root"],
                                        headers={"X-Personium-Recursive": "true"})
                log(t["name"], "DELETE scratch ->", st)
            except OSError as e:
                log(t["name"], "DELETE scratch failed:", e)
    shutil.rmtree(tmp, ignore_errors=True)

    # ---- write outputs
    tag = f"-{a.tag}" if a.tag else ""
    os.makedirs(os.path.join(BENCH, "results", "raw"), exist_ok=True)
    argv = "python3 load.py " + " ".join(shlex.quote(x) for x in
                                         (sys.argv[1:] if argv is None else argv))
    raw = {"stamp": stamp, "argv": argv, "machine": facts,
           "propfind_body": a.propfind, "duration_s": a.duration,
           "targets": [{"name": t["name"], "url": t["url"], "na": t["na"],
                        "ceiling": t["ceiling"],
                        "propfind_d1_bytes": t.get("pf_bytes", {})} for t in targets],
           "results": results}
    jpath = os.path.join(BENCH, "results", "raw", f"load-{stamp}{tag}.json")
    with open(jpath, "w") as f:
        json.dump(raw, f, indent=1)
    md = render_md(raw)
    mpath = os.path.join(BENCH, "results", f"load-{stamp}{tag}.md")
    with open(mpath, "w") as f:
        f.write(md)
    if argv is None:
        print(md)
    log("wrote", os.path.relpath(jpath, BENCH), os.path.relpath(mpath, BENCH))
    return raw, jpath, mpath


def fmt_ms(us):
    ms = us / 1000.0
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def fmt_rps(x):
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def summarize(results):
    """{(scenario, conns, target): dict of medians and spreads}."""
    cells = {}
    for r in results:
        cells.setdefault((r["scenario"], r["conns"], r["target"]), []).append(r)
    out = {}
    for k, rs in cells.items():
        rps = [r["rps_active"] for r in rs]
        med = statistics.median(rps)
        out[k] = {
            "runs": len(rs),
            "rps": med,
            "rps_all": rps,
            "spread_pct": 100.0 * (max(rps) - min(rps)) / med if med else 0.0,
            "p50": statistics.median(r["latency_us"]["p"]["50"] for r in rs),
            "p99": statistics.median(r["latency_us"]["p"]["99"] for r in rs),
            "n": sum(r["responses"] for r in rs),
            "bad": sum(r["bad"] for r in rs),
            "gen_cpu": max(r["loadgen_cpu_pct"] for r in rs),
            "capped": any(r["capped"] for r in rs),
            "post": "; ".join(sorted({r["post_check"] for r in rs if "post_check" in r})),
        }
    return out


def render_md(raw):
    res = raw["results"]
    summ = summarize(res)
    names = [t["name"] for t in raw["targets"]]
    m = raw["machine"]
    L = [f"# WebDAV load probe {raw['stamp']}", "",
         f"Command (from the bench folder): `{raw['argv']}`", "",
         f"Machine: {m.get('cpu')}, nproc {m['nproc']}, kernel {m['kernel']}, "
         f"loadavg at start {tuple(round(x, 2) for x in m['loadavg_start'])}, at end "
         f"{tuple(round(x, 2) for x in m.get('loadavg_end', (0, 0, 0)))}; {m['wrk']}; "
         f"PROPFIND body: {raw['propfind_body']}; {raw['duration_s']} s per run.", "",
         "Cells: requests/s (median over runs) / p50 ms / p99 ms. "
         "n/a: the server failed the scenario's correctness check (reason below).", ""]
    for group, title in (("main", "Main scenarios"), ("scaling", "Scaling probe")):
        keys = sorted({(r["scenario"], r["conns"]) for r in res if r["group"] == group},
                      key=lambda k: (MAIN.index(k[0]) if k[0] in MAIN else 99,
                                     k[0].rstrip("0123456789"),
                                     int(re.sub(r"\D", "", k[0]) or 0), k[1]))
        if not keys:
            continue
        L += [f"## {title}", "", "| scenario | conns | " + " | ".join(names) + " |",
              "|---|---|" + "---|" * len(names)]
        for s, cn in keys:
            cells = []
            for nme in names:
                v = summ.get((s, cn, nme))
                if not v:
                    t = next(t for t in raw["targets"] if t["name"] == nme)
                    cells.append("n/a" if s in t["na"] else "-")
                    continue
                c = f"{fmt_rps(v['rps'])} / {fmt_ms(v['p50'])} / {fmt_ms(v['p99'])}"
                if v["bad"]:
                    c += f" ({v['bad']} bad)"
                cells.append(c)
            L.append(f"| {s} | {cn} | " + " | ".join(cells) + " |")
        L.append("")
    L += ["## Per cell detail", "",
          "| scenario | conns | target | runs | rps each run | spread % | responses | "
          "non-2xx+sock err | wrk CPU % (max) | capped | post-check |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (s, cn, nme), v in sorted(summ.items(), key=lambda kv: (kv[0][0], kv[0][1], names.index(kv[0][2]))):
        L.append(f"| {s} | {cn} | {nme} | {v['runs']} | "
                 f"{', '.join(fmt_rps(x) for x in v['rps_all'])} | {v['spread_pct']:.1f} | "
                 f"{v['n']} | {v['bad']} | {v['gen_cpu']} | {'yes' if v['capped'] else ''} | "
                 f"{v['post']} |")
    L += ["", "Server/loadgen CPU busy % per run (cpuN from /proc/stat) is in the raw JSON "
          "(`cpu_busy_pct`).", ""]
    na = [(t["name"], k, v) for t in raw["targets"] for k, v in sorted(t["na"].items())]
    if na:
        L += ["## n/a reasons", ""] + [f"- {n} {k}: {v}" for n, k, v in na] + [""]
    sizes = [(t["name"], t["propfind_d1_bytes"]) for t in raw["targets"] if t["propfind_d1_bytes"]]
    if sizes:
        L += ["## PROPFIND Depth 1 response sizes (bytes)", ""]
        L += [f"- {n}: " + ", ".join(f"{k} members: {v}" for k, v in sorted(b.items(), key=lambda kv: int(kv[0])))
              for n, b in sizes] + [""]
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
