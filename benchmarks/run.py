#!/usr/bin/env python3
"""Benchmark personium-dav side by side with its peers, from the repo alone.

    python benchmarks/run.py                        # mine, relaxed, ceiling (+ peers found)
    python benchmarks/run.py --servers mine,relaxed,ceiling,apache,wsgidav \\
        --install-peers --duration 5 --runs 2
    python benchmarks/run.py --servers mine other=http://127.0.0.1:9000/dav/
    python benchmarks/run.py --report results/raw/run-A.json results/raw/run-B.json

It starts the servers itself, each pinned to --server-cpus (default CPU 0),
on free loopback ports, with throwaway data under benchmarks/run/:

  mine      this checkout: ``twistd -n personium-dav --data TMP --listen
            tcp:PORT:interface=127.0.0.1`` (durable: fsync before every ack)
  relaxed   the same with ``--relaxed``
  ceiling   benchmarks/ceiling.py: bare twisted.web, fixed 1 KiB reply
  apache    Apache httpd + mod_dav_fs (benchmarks/peers/apache/)
  wsgidav   WsgiDAV on cheroot, dead properties in a shelve (benchmarks/peers/wsgidav/)
  w1, w2    (not by default) durable, ``--workers 1`` / ``--workers 2``, on
            --workers-cpus (default both cores, which wrk shares): the
            1-vs-2 worker figure

plus any ``NAME=URL`` given (an existing writable collection). It then runs
benchmarks/load.py (wrk, one thread, pinned to --loadgen-cpus) over all of
them interleaved, measures the memory of a fresh ``mine`` server (idle, after
a PROPFIND Depth 1 over 10,000 members, during a 1 GiB PUT), stops every
server it started, and writes results/run-<stamp>.md (tables, ratios, the
issue's targets met or not) and results/raw/run-<stamp>.json.

--install-peers installs what is missing: wrk and apache2 with apt-get (as
root), WsgiDAV + cheroot + lxml with pip into benchmarks/.venv, then runs
as asked.
"""
import argparse
import datetime as _dt
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
RUN_DIR = os.path.join(BENCH, "run")
sys.path.insert(0, BENCH)
import load  # noqa: E402  (benchmarks/load.py)

BUILTIN = ("mine", "relaxed", "ceiling", "apache", "wsgidav", "w1", "w2")
MIB = 1024 * 1024


def log(*x):
    print(time.strftime("%H:%M:%S"), *x, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, seconds=30):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


# ---------------------------------------------------------------- auth
def owner_auth(data_dir, env):
    """The Authorization header value this server needs, or None.

    The one place that knows about authentication: when the checkout has a
    ``python -m personium_dav token`` command, ask it for an owner token of
    the data root and send it as a Bearer token; a checkout without it serves
    without authentication.
    """
    cmd = [sys.executable, "-m", "personium_dav", "token", "--data", data_dir, "--owner"]
    p = subprocess.run(cmd + ["--ttl", "86400"], capture_output=True, text=True, env=env,
                       cwd=REPO)  # a day: longer than any run
    if p.returncode != 0 and "--ttl" in p.stderr:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if p.returncode != 0:
        if "invalid choice" in p.stderr or "token" not in p.stderr + p.stdout:
            return None  # no token command: no authentication layer
        raise SystemExit(f"{' '.join(cmd)} failed: {p.stderr.strip()}")
    lines = [x.strip() for x in p.stdout.splitlines() if x.strip()]
    if not lines:
        return None
    token = lines[-1]
    return token if token.lower().startswith("bearer ") else "Bearer " + token


# ---------------------------------------------------------------- servers
class Server:
    """One server process this script started (stopped by its own PID only)."""

    def __init__(self, name, url, proc, logfile, auth=None, kind=""):
        self.name, self.url, self.proc, self.logfile = name, url, proc, logfile
        self.auth, self.kind = auth, kind

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                log(self.name, f"pid {self.pid} ignored TERM, sending KILL")
                self.proc.kill()
                self.proc.wait(5)
        log(self.name, f"stopped pid {self.pid}")


def repo_env():
    """Environment that makes twistd serve this checkout (its personium_dav
    package and its twisted/plugins dropin) rather than an installed copy."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def twistd_cmd():
    here = os.path.join(os.path.dirname(sys.executable), "twistd")
    if os.path.exists(here):
        return [here]
    if shutil.which("twistd"):
        return [shutil.which("twistd")]
    return [sys.executable, "-c", "import sys; from twisted.scripts.twistd import run; "
            "sys.argv[0] = 'twistd'; run()"]


def popen(cmd, logpath, env=None, cwd=None):
    os.makedirs(RUN_DIR, exist_ok=True)  # the tools that borrow this one start here too
    out = open(logpath, "wb")
    try:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=cwd or RUN_DIR, start_new_session=True)
    finally:
        out.close()


def start_mine(a, work, name, relaxed=False, workers=1, cpus=None, extra=()):
    data = os.path.join(work, name + "-data")
    os.makedirs(data)
    env = repo_env()
    # provision first, so that a token command can see the box
    subprocess.run([sys.executable, "-m", "personium_dav", "box", "create", "cell1", "box1",
                    "--data", data], check=True, capture_output=True, env=env, cwd=REPO)
    auth = owner_auth(data, env)
    port = free_port()
    cmd = ["taskset", "-c", cpus or a.server_cpus] + twistd_cmd() + [
        "-n", "--pidfile=", "personium-dav", "--data", data,
        "--listen", f"tcp:{port}:interface=127.0.0.1"] + (["--relaxed"] if relaxed else [])
    if workers > 1:
        cmd += ["--workers", str(workers)]
    cmd += list(extra)
    logpath = os.path.join(work, name + ".log")
    proc = popen(cmd, logpath, env)
    srv = Server(name, f"http://127.0.0.1:{port}/cell1/box1/", proc, logpath, auth,
                 ("relaxed" if relaxed else "durable")
                 + (f", {workers} worker(s) on CPUs {cpus}" if cpus else ""))
    if not wait_port(port, proc):
        srv.stop()
        raise SystemExit(f"{name} did not come up; see {logpath}")
    c = load.Client(srv.url, auth)
    st, _ = c.req("PROPFIND", c.base_path, None, {"Depth": "0"})
    if st in (401, 403) and auth is None:
        srv.stop()
        raise SystemExit(f"{name}: answers {st} and the checkout has no token command")
    if st == 401:  # a token made before the server's first start: ask again
        srv.auth = owner_auth(data, env)
        st, _ = load.Client(srv.url, srv.auth).req("PROPFIND", c.base_path, None, {"Depth": "0"})
    if st != 207:
        srv.stop()
        raise SystemExit(f"{name}: PROPFIND on the box answers {st}")
    log(name, f"pid {srv.pid} {srv.url} ({srv.kind}{', auth' if srv.auth else ''})")
    return srv


def start_ceiling(a, work):
    port = free_port()
    env = dict(os.environ, CEILING_PORT=str(port))
    cmd = ["taskset", "-c", a.server_cpus] + twistd_cmd() + [
        "-n", "--pidfile=", "-y", os.path.join(BENCH, "ceiling.py")]
    logpath = os.path.join(work, "ceiling.log")
    proc = popen(cmd, logpath, env)
    srv = Server("ceiling", f"http://127.0.0.1:{port}/", proc, logpath, kind="ceiling")
    if not wait_port(port, proc):
        srv.stop()
        raise SystemExit(f"ceiling did not come up; see {logpath}")
    log("ceiling", f"pid {srv.pid} {srv.url}")
    return srv


def render(template, out, **subs):
    with open(template) as f:
        text = f.read()
    for k, v in subs.items():
        text = text.replace("@%s@" % k, v)
    with open(out, "w") as f:
        f.write(text)


def start_apache(a, work):
    exe = "/usr/sbin/apache2"
    run = os.path.join(work, "apache")
    data = os.path.join(run, "data")
    os.makedirs(os.path.join(run, "lock"))
    os.makedirs(os.path.join(data, "dav"))
    if os.geteuid() == 0:  # it drops to www-data: give it its files
        subprocess.run(["chown", "-R", "www-data:www-data", os.path.join(run, "lock"), data],
                       check=True)
    port = free_port()
    conf = os.path.join(run, "httpd.conf")
    render(os.path.join(BENCH, "peers", "apache", "httpd.conf.in"), conf,
           RUN=run, DATA=data, PORT=str(port), BENCH=BENCH)
    subprocess.run([exe, "-t", "-f", conf], check=True, capture_output=True)
    logpath = os.path.join(run, "stdout.log")
    proc = popen(["taskset", "-c", a.server_cpus, exe, "-f", conf, "-D", "FOREGROUND"], logpath)
    srv = Server("apache", f"http://127.0.0.1:{port}/dav/", proc, logpath, kind="peer")
    if not wait_port(port, proc):
        srv.stop()
        raise SystemExit(f"apache did not come up; see {run}/error.log")
    log("apache", f"pid {srv.pid} {srv.url}")
    return srv


def wsgidav_python(a):
    for py in [a.wsgidav_python, os.path.join(BENCH, ".venv", "bin", "python"), sys.executable]:
        if py and os.path.exists(py) and subprocess.run(
                [py, "-c", "import wsgidav, cheroot"], capture_output=True).returncode == 0:
            return py
    return None


def start_wsgidav(a, work):
    py = wsgidav_python(a)
    run = os.path.join(work, "wsgidav")
    data = os.path.join(run, "data")
    os.makedirs(os.path.join(data, "dav"))
    port = free_port()
    conf = os.path.join(run, "wsgidav.yaml")
    render(os.path.join(BENCH, "peers", "wsgidav", "wsgidav.yaml.in"), conf,
           RUN=run, DATA=data, PORT=str(port), BENCH=BENCH)
    logpath = os.path.join(run, "server.log")
    # -q -q: the CLI's default verbosity logs every request; bring it to 1.
    cmd = ["taskset", "-c", a.server_cpus, py, "-c",
           "import sys; from wsgidav.server.server_cli import run; sys.argv[0] = 'wsgidav'; run()",
           "--config", conf, "-q", "-q"]
    proc = popen(cmd, logpath, cwd=run)
    srv = Server("wsgidav", f"http://127.0.0.1:{port}/dav/", proc, logpath, kind="peer")
    if not wait_port(port, proc):
        srv.stop()
        raise SystemExit(f"wsgidav did not come up; see {logpath}")
    log("wsgidav", f"pid {srv.pid} {srv.url}")
    return srv


def install_peers(a, wanted):
    apt = [p for p, ok in (("wrk", shutil.which("wrk")),
                           ("apache2", os.path.exists("/usr/sbin/apache2") or "apache" not in wanted))
           if not ok]
    if apt:
        if os.geteuid() != 0:
            raise SystemExit(f"--install-peers: need root for apt-get install {' '.join(apt)}")
        log("apt-get install", *apt)
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-q"] + apt, check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if "wsgidav" in wanted and wsgidav_python(a) is None:
        venv = os.path.join(BENCH, ".venv")
        log("creating", venv, "with wsgidav cheroot lxml")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q",
                        "wsgidav", "cheroot", "lxml"], check=True)


# ---------------------------------------------------------------- memory
def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024  # kB -> bytes
    return out


def reset_peak(pid):
    """Reset VmHWM to the current RSS (Linux: 5 > clear_refs); False if refused."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Sampler(threading.Thread):
    """Max VmRSS of a process, sampled every 20 ms until stopped."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.halt = pid, 0, threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                self.peak = max(self.peak, proc_status(self.pid)["VmRSS"])
            except (OSError, KeyError):
                return
            self.halt.wait(0.02)

    def stop(self):
        self.halt.set()
        self.join()
        return self.peak


def big_put(url, path, size, auth):
    """PUT ``size`` bytes (a repeated 1 MiB pattern, streamed); (status, seconds)."""
    u = load.urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    chunk = bytes(range(256)) * 4096
    headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
    if auth:
        headers["Authorization"] = auth
    t0 = time.monotonic()
    conn.putrequest("PUT", path)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    left = size
    while left:
        n = min(left, len(chunk))
        conn.send(chunk[:n])
        left -= n
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status, time.monotonic() - t0


def measure_memory(a, work):
    """RSS of a fresh durable server: idle, around a 10,000-member PROPFIND
    Depth 1, and during a 1 GiB PUT."""
    srv = start_mine(a, work, "mem")
    out = {"server": srv.kind, "members": a.memory_members, "put_bytes": a.bigput_mib * MIB}
    try:
        c = load.Client(srv.url, srv.auth)
        time.sleep(1.0)
        out["idle"] = proc_status(srv.pid)
        col = c.base_path + "mem-members/"
        t0 = time.monotonic()
        load.seed_members(c, col, a.memory_members)
        out["seed_s"] = round(time.monotonic() - t0, 1)
        out["after_seed"] = proc_status(srv.pid)
        out["peak_reset"] = reset_peak(srv.pid)
        before = proc_status(srv.pid)
        body = load.PROPFIND_BODIES["allprop"]
        sizes = []
        for _ in range(3):
            st, data = c.req("PROPFIND", col, body, {"Depth": "1"})
            n = len(load.multistatus(data)) if st == 207 else 0
            if n != a.memory_members + 1:
                raise SystemExit(f"memory: PROPFIND Depth 1 -> {st}, {n} responses")
            sizes.append(len(data))
        after = proc_status(srv.pid)
        out["propfind"] = {"before": before, "after": after, "bytes": sizes[0],
                           "rss_delta": after["VmRSS"] - before["VmRSS"],
                           "peak_delta": after["VmHWM"] - before["VmRSS"]}
        log("memory", f"PROPFIND Depth 1 over {a.memory_members}: RSS "
            f"{before['VmRSS'] / MIB:.1f} -> {after['VmRSS'] / MIB:.1f} MiB, "
            f"peak {after['VmHWM'] / MIB:.1f} MiB")
        if a.bigput_mib:
            reset_peak(srv.pid)
            before = proc_status(srv.pid)
            bigput = os.path.join(BENCH, "bigput.py")
            sampler = Sampler(srv.pid)
            sampler.start()
            st, secs = big_put(srv.url, c.base_path + "big.bin", a.bigput_mib * MIB, srv.auth)
            peak = sampler.stop()
            after = proc_status(srv.pid)
            if st not in (200, 201, 204):
                raise SystemExit(f"memory: {a.bigput_mib} MiB PUT -> {st}")
            out["bigput"] = {"before": before, "after": after, "status": st,
                             "seconds": round(secs, 1), "sampled_peak": peak,
                             "peak_delta": max(peak, after["VmHWM"]) - before["VmRSS"],
                             "bigput_py_present": os.path.exists(bigput)}
            log("memory", f"{a.bigput_mib} MiB PUT ({st}, {secs:.1f} s): RSS "
                f"{before['VmRSS'] / MIB:.1f} MiB before, peak "
                f"{max(peak, after['VmHWM']) / MIB:.1f} MiB")
            c.req("DELETE", c.base_path + "big.bin")
    finally:
        srv.stop()
    return out


# ---------------------------------------------------------------- report
def merge(raws):
    """One run dict from several (the tables of split invocations)."""
    if len(raws) == 1:
        return raws[0]
    base = json.loads(json.dumps(raws[0]))
    load_raw = base["load"]
    for r in raws[1:]:
        lr = r.get("load")
        if lr:
            if load_raw is None:
                base["load"] = load_raw = lr
                continue
            load_raw["results"] += lr["results"]
            known = {t["name"]: t for t in load_raw["targets"]}
            for t in lr["targets"]:
                if t["name"] in known:
                    k = known[t["name"]]
                    ran = {x["scenario"] for x in lr["results"] if x["target"] == t["name"]}
                    k["na"] = {s: v for s, v in k["na"].items() if s not in ran}
                    k["na"].update(t["na"])
                    k["propfind_d1_bytes"].update(t.get("propfind_d1_bytes", {}))
                else:
                    load_raw["targets"].append(t)
            load_raw["argv"] += " ; " + lr["argv"]
        if r.get("memory"):
            base["memory"] = r["memory"]
        base["argv"] += " ; " + r["argv"]
        base["stamp"] += "+" + r["stamp"]
    return base


def ratio(x, y):
    return f"{x / y:.2f}×" if x and y else "-"


def targets_check(summ, names, mem):
    """[(target text, measured, verdict)] for the issue's targets."""
    def rps(s, c, n):
        v = summ.get((s, c, n))
        return v["rps"] if v else None

    rows = []

    def add(text, measured, ok):
        rows.append((text, measured, "n/a" if ok is None else ("met" if ok else "**not met**")))

    def at_least(text, s, conns, mine, other, factor):
        vals = [(c, rps(s, c, mine), rps(s, c, other)) for c in conns]
        if any(a is None or b is None for _, a, b in vals):
            add(text, "not measured", None)
            return
        add(text, "; ".join(f"c={c}: {load.fmt_rps(a)} vs {load.fmt_rps(b)} ({a / b:.2f}×)"
                            for c, a, b in vals),
            all(a >= factor * b for _, a, b in vals))

    if "mine" in names and "apache" in names:
        at_least("durable PROPPATCH ≥ Apache at 1 and 8", "proppatch", (1, 8), "mine", "apache", 1)
        at_least("durable PUT (new) ≥ Apache at 8", "put_new", (8,), "mine", "apache", 1)
    p10, p1000 = rps("proppatch_props10", 1, "mine"), rps("proppatch_props1000", 1, "mine")
    add("durable PROPPATCH cost flat: 1,000 props vs 10 within 1.5×",
        f"{load.fmt_rps(p10)} vs {load.fmt_rps(p1000)} req/s ({p10 / p1000:.2f}×)"
        if p10 and p1000 else "not measured",
        (p10 / p1000 <= 1.5) if p10 and p1000 else None)
    if "wsgidav" in names:
        for who, scen in (("relaxed", load.MAIN), ("mine", ("get", "propfind_d0", "propfind_d1"))):
            for s in scen:
                at_least(f"{'relaxed' if who == 'relaxed' else 'durable'} {s} ≥ 2× WsgiDAV",
                         s, (1, 8), who, "wsgidav", 2)
    if "apache" in names:
        for m in (1000, 10000):
            at_least(f"PROPFIND Depth 1 over {m:,} ≥ 3× Apache", f"propfind_d1_m{m}", (1,),
                     "mine", "apache", 3)
    lv = [(m, rps(f"propfind_d1_m{m}", 1, "mine")) for m in (100, 1000, 10000)]
    if all(v for _, v in lv):
        per = [1e6 / (v * m) for m, v in lv]
        add("PROPFIND Depth 1 cost linear in members (µs per member at 100/1,000/10,000)",
            " / ".join(f"{p:.1f}" for p in per), max(per[1:]) <= 1.5 * min(per[1:]))
    if "ceiling" in names:
        at_least("durable GET within 80% of the ceiling", "get", (1, 8), "mine", "ceiling", 0.8)
        at_least("durable PROPFIND Depth 0 within 80% of the ceiling", "propfind_d0", (1, 8),
                 "mine", "ceiling", 0.8)
    if mem:
        idle = mem["idle"]["VmRSS"]
        add("idle RSS < 60 MiB", f"{idle / MIB:.1f} MiB", idle < 60 * MIB)
        pf = mem.get("propfind")
        if pf:
            d = max(pf["rss_delta"], pf["peak_delta"])
            add(f"PROPFIND Depth 1 over {mem['members']:,} adds < 30 MiB",
                f"+{d / MIB:.1f} MiB (peak)", d < 30 * MIB)
        bp = mem.get("bigput")
        if bp:
            add(f"{mem['put_bytes'] // MIB} MiB PUT adds < 30 MiB",
                f"+{bp['peak_delta'] / MIB:.1f} MiB (peak)", bp["peak_delta"] < 30 * MIB)
    pairs = [(s, c, rps(s, c, "w1"), rps(s, c, "w2")) for s, c in sorted({k[:2] for k in summ})]
    pairs = [(s, c, x, y) for s, c, x, y in pairs if x and y]
    if pairs:
        add("--workers N: 2 workers vs 1 (durable, same CPUs)",
            "; ".join(f"{s} c={c}: {y / x:.2f}×" for s, c, x, y in pairs),
            True)  # implemented and measured; the figure is the report
    else:
        add("--workers N (1 vs 2 workers)", "not measured here (--servers ...,w1,w2)", None)
    return rows


def render_report(run):
    L = [f"# personium-dav benchmark {run['stamp']}", "",
         f"Command: `{run['argv']}`", ""]
    for s in run.get("servers", []):
        L.append(f"- {s['name']}: {s['kind']}, {s['url']}" + (" (Bearer token)" if s.get("auth") else ""))
    L.append("")
    lr = run.get("load")
    summ, names = {}, []
    if lr:
        summ = load.summarize(lr["results"])
        names = [t["name"] for t in lr["targets"]]
        L += [load.render_md(lr).replace("# WebDAV load probe", "## Load probe", 1), ""]
        peers = [n for n in ("apache", "wsgidav", "ceiling") if n in names]
        ours = [n for n in ("mine", "relaxed") if n in names]
        workers = int("w1" in names and "w2" in names)
        if ours and peers:
            L += ["## Ratios (requests/s of ours ÷ theirs, medians of the same run)", "",
                  "| scenario | conns | " + " | ".join(f"{o} ÷ {p}" for o in ours for p in peers)
                  + (" | mine ÷ relaxed" if len(ours) == 2 else "")
                  + (" | w2 ÷ w1" if workers else "") + " |",
                  "|---|---|" + "---|" * (len(ours) * len(peers) + (len(ours) == 2) + workers)]
            keys = sorted({(k[0], k[1]) for k in summ},
                          key=lambda k: (load.MAIN.index(k[0]) if k[0] in load.MAIN else 99,
                                         k[0].rstrip("0123456789"),
                                         int(re.sub(r"\D", "", k[0]) or 0), k[1]))
            for s, c in keys:
                def r(n):
                    v = summ.get((s, c, n))
                    return v["rps"] if v else None
                cells = [ratio(r(o), r(p)) for o in ours for p in peers]
                if len(ours) == 2:
                    cells.append(ratio(r("mine"), r("relaxed")))
                if workers:
                    cells.append(ratio(r("w2"), r("w1")))
                L.append(f"| {s} | {c} | " + " | ".join(cells) + " |")
            L.append("")
    mem = run.get("memory")
    if mem:
        L += ["## Memory (a fresh durable server, VmRSS/VmHWM from /proc/PID/status)", "",
              "| when | RSS MiB | peak (VmHWM) MiB |", "|---|---|---|",
              f"| idle (after start and one PROPFIND) | {mem['idle']['VmRSS'] / MIB:.1f} | "
              f"{mem['idle']['VmHWM'] / MIB:.1f} |",
              f"| after seeding {mem['members']:,} files | {mem['after_seed']['VmRSS'] / MIB:.1f} | "
              f"{mem['after_seed']['VmHWM'] / MIB:.1f} |"]
        pf = mem.get("propfind")
        if pf:
            L.append(f"| after 3× PROPFIND Depth 1 over {mem['members']:,} "
                     f"({pf['bytes']:,} bytes each) | {pf['after']['VmRSS'] / MIB:.1f} | "
                     f"{pf['after']['VmHWM'] / MIB:.1f} |")
        bp = mem.get("bigput")
        if bp:
            L.append(f"| during a {mem['put_bytes'] // MIB} MiB PUT ({bp['seconds']} s, "
                     f"{bp['status']}) | {bp['before']['VmRSS'] / MIB:.1f} before | "
                     f"{max(bp['sampled_peak'], bp['after']['VmHWM']) / MIB:.1f} |")
        L += ["", "Peaks are reset before each phase (`5 > /proc/PID/clear_refs`)"
              + ("" if mem.get("peak_reset") else " — refused here, so VmHWM is since start")
              + ".", ""]
    if lr or mem:
        L += ["## The issue's targets", "", "| target | measured | verdict |", "|---|---|---|"]
        L += [f"| {t} | {m} | {v} |" for t, m, v in targets_check(summ, names, mem)]
        L.append("")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("servers_extra", nargs="*", metavar="NAME=URL",
                    help="more servers to compare, each an existing writable collection")
    ap.add_argument("--servers", default="mine,relaxed,ceiling,apache,wsgidav",
                    help="comma list from " + ",".join(BUILTIN) + " (default: the first "
                    "five; apache and wsgidav are skipped with a warning when not installed)")
    ap.add_argument("--install-peers", action="store_true",
                    help="install wrk/apache2 (apt-get) and wsgidav (pip, benchmarks/.venv)")
    ap.add_argument("--wsgidav-python", default="", help="a python with wsgidav and cheroot")
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    ap.add_argument("--runs", type=int, default=2, help="runs per cell (default 2)")
    ap.add_argument("--conns", default="1,8")
    ap.add_argument("--scenarios", default=",".join(load.MAIN))
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--props-levels", default="10,100,1000")
    ap.add_argument("--members-levels", default="100,1000,10000")
    ap.add_argument("--server-cpus", default="0")
    ap.add_argument("--workers-cpus", default="0,1",
                    help="CPUs of the w1/w2 servers (durable, --workers 1 and 2; "
                    "default 0,1: both cores, shared with wrk)")
    ap.add_argument("--loadgen-cpus", default="1")
    ap.add_argument("--settle", type=float, default=3.0,
                    help="seconds of quiet after fixtures (default 3)")
    ap.add_argument("--pause", type=float, default=0.5, help="seconds between wrk runs")
    ap.add_argument("--no-load", action="store_true", help="skip the load probe")
    ap.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    ap.add_argument("--memory-members", type=int, default=10000)
    ap.add_argument("--bigput-mib", type=int, default=1024, help="0 skips the big PUT")
    ap.add_argument("--keep-data", action="store_true", help="leave benchmarks/run/<stamp>/")
    ap.add_argument("--tag", default="")
    ap.add_argument("--report", nargs="+", metavar="RUN.json",
                    help="only render (and merge) earlier results/raw/run-*.json")
    a = ap.parse_args()

    if a.report:
        raws = []
        for p in a.report:
            with open(p) as f:
                raws.append(json.load(f))
        print(render_report(merge(raws)))
        return

    wanted = [s for s in a.servers.split(",") if s]
    for s in wanted:
        if s not in BUILTIN:
            raise SystemExit(f"unknown server {s!r}; know {', '.join(BUILTIN)} (or give NAME=URL)")
    if a.install_peers:
        install_peers(a, wanted)
    if not shutil.which("wrk") or not shutil.which("taskset"):
        raise SystemExit("needs wrk (apt-get install wrk, or --install-peers) and taskset")
    if "apache" in wanted and not os.path.exists("/usr/sbin/apache2"):
        log("apache2 not installed (--install-peers installs it): skipped")
        wanted.remove("apache")
    if "wsgidav" in wanted and wsgidav_python(a) is None:
        log("wsgidav not installed (--install-peers installs it): skipped")
        wanted.remove("wsgidav")

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    os.makedirs(RUN_DIR, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f"{stamp}-", dir=RUN_DIR)
    os.chmod(work, 0o755)  # apache runs as www-data
    argv = "python benchmarks/run.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    run = {"stamp": stamp, "argv": argv, "servers": [], "load": None, "memory": None}
    servers = []

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        if not a.no_load:
            starters = {"mine": lambda: start_mine(a, work, "mine"),
                        "relaxed": lambda: start_mine(a, work, "relaxed", relaxed=True),
                        "ceiling": lambda: start_ceiling(a, work),
                        "apache": lambda: start_apache(a, work),
                        "wsgidav": lambda: start_wsgidav(a, work),
                        "w1": lambda: start_mine(a, work, "w1", cpus=a.workers_cpus),
                        "w2": lambda: start_mine(a, work, "w2", workers=2,
                                                 cpus=a.workers_cpus)}
            for s in wanted:
                servers.append(starters[s]())
            targets = [f"{s.name}={s.url}" for s in servers] + list(a.servers_extra)
            for s in servers:
                run["servers"].append({"name": s.name, "kind": s.kind, "url": s.url,
                                       "auth": bool(s.auth)})
                key = "BENCH_AUTH_" + re.sub(r"\W", "_", s.name).upper()
                if s.auth:
                    os.environ[key] = s.auth
                else:
                    os.environ.pop(key, None)
            for t in a.servers_extra:
                run["servers"].append({"name": t.partition("=")[0], "kind": "external",
                                       "url": t.partition("=")[2]})
            largs = ["--duration", str(a.duration), "--runs", str(a.runs), "--conns", a.conns,
                     "--scenarios", a.scenarios, "--props-levels", a.props_levels,
                     "--members-levels", a.members_levels, "--loadgen-cpus", a.loadgen_cpus,
                     "--settle", str(a.settle), "--pause", str(a.pause),
                     "--tag", a.tag or "run"]
            if a.no_scaling:
                largs.append("--no-scaling")
            if "ceiling" in wanted:
                largs += ["--ceiling", "ceiling"]
            run["load"], _, _ = load.main(largs + targets)
            os.sched_setaffinity(0, range(os.cpu_count()))
            for s in servers:
                s.stop()
            servers = []
        if not a.no_memory and "mine" in wanted:
            run["memory"] = measure_memory(a, work)
    finally:
        for s in servers:
            s.stop()
        if not a.keep_data:
            shutil.rmtree(work, ignore_errors=True)

    tag = f"-{a.tag}" if a.tag else ""
    os.makedirs(os.path.join(BENCH, "results", "raw"), exist_ok=True)
    jpath = os.path.join(BENCH, "results", "raw", f"run-{stamp}{tag}.json")
    with open(jpath, "w") as f:
        json.dump(run, f, indent=1)
    md = render_report(run)
    mpath = os.path.join(BENCH, "results", f"run-{stamp}{tag}.md")
    with open(mpath, "w") as f:
        f.write(md)
    print(md)
    log("wrote", os.path.relpath(jpath, REPO), os.path.relpath(mpath, REPO))


if __name__ == "__main__":
    main()
