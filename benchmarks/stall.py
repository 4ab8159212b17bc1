#!/usr/bin/env python3
"""Does anything stall the reactor? GET latency of a 1 KiB file under load.

    python benchmarks/stall.py [--members 20000] [--rate 200] [--seconds 20]

Starts this checkout's server (``twistd -n personium-dav``, durable) on a
free loopback port, pinned to CPU 0, and makes a collection ``big/`` of
``--members`` files whose sidecar holds one dead property per file (about
3 MB at 20,000). Then it measures GET of a 1 KiB file twice, for
``--seconds`` each:

* alone;
* while another process rewrites ``big/``'s sidecar in a loop (the box API
  on the same data root: what a second server process's PROPPATCHes do,
  each one making every other process parse 3 MB again) and a client lists
  ``big/`` with PROPFIND Depth 1 in a loop (``--listing-only``: the
  listing loop alone).

The GETs arrive at a steady pace (``--rate`` a second, open loop): each has
a time it was due, and its latency is counted from then, not from when a
connection was free to send it. So a stall of the server is seen by every
request it delayed (the requests that would have arrived meanwhile), not
hidden by them (coordinated omission). It prints p50, p99 and max of both,
and the ratio of the p99s; the targets are a p99 under 50 ms under load and
within 10× the p99 alone.
"""
import argparse
import http.client
import multiprocessing
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, REPO)
sys.path.insert(0, BENCH)
import run  # noqa: E402  (benchmarks/run.py: starting servers, the owner's token)


def fill(root, members):
    """``big/`` with ``members`` files, each with a dead property, written
    straight through the box API (faster than HTTP; the same result)."""
    from personium_dav.auth.privileges import Principal
    from personium_dav.config import Config
    from personium_dav.store.box import Caller, Store
    from personium_dav.auth.privileges import AclPolicy

    store = Store(root, Config(durable=False), AclPolicy())
    box = store.box("cell1", "box1")
    owner = Caller(Principal(owner=True))
    box.mkcol(owner, ["big"])
    box.put(owner, ["small.txt"], b"x" * 1024)
    directory = os.path.join(store.tree.box_dir("cell1", "box1"), "big")
    txn = store.tree.sidecars.begin(directory)
    from personium_dav.store import layout

    for i in range(members):
        name = "f%05d.txt" % i
        path = os.path.join(directory, name)
        with open(path, "wb") as f:
            f.write(b"y")
        fid = layout.new_fid()
        layout.write_meta(path, {"v": 1, "c": 1, "m": 1, "t": "text/plain", "i": fid})
        txn.set(name, fid, ("urn:x", "note"),
                b'<x:note xmlns:x="urn:x">member %d of the big collection</x:note>' % i)
    txn.commit()
    store.close()


def rewriter(root, stop):
    """Another process's commits to ``big/``'s sidecar, back to back."""
    from personium_dav.config import Config
    from personium_dav.store.box import Store
    from personium_dav.auth.privileges import AclPolicy

    store = Store(root, Config(durable=False), AclPolicy())
    directory = os.path.join(store.tree.box_dir("cell1", "box1"), "big")
    n = 0
    while not stop.is_set():
        with store.tree.locked(directory):
            txn = store.tree.sidecars.begin(directory)
            txn.touch("", "", n)
            txn.commit()
        n += 1
    store.close()


def lister(port, auth, stop, listings):
    """PROPFIND Depth 1 of ``big/`` back to back; a process of its own, so
    that reading megabytes of answers never holds the GIL of the GET clients."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    while not stop.is_set():
        conn.request("PROPFIND", "/cell1/box1/big/", headers=dict(auth, Depth="1"))
        response = conn.getresponse()
        response.read()
        with listings.get_lock():
            listings.value += 1


def measure(port, auth, rate, seconds, workers=16):
    """Latencies (ms) of GETs due at a steady pace, counted from when due."""
    due = queue.Queue()
    latencies, errors = [], []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            when = due.get()
            if when is None:
                return
            now = time.monotonic()
            if when > now:
                time.sleep(when - now)
            try:
                conn.request("GET", "/cell1/box1/small.txt", headers=auth)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    errors.append(response.status)
            except OSError as e:
                errors.append(str(e))
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            latencies.append((time.monotonic() - when) * 1000)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    start = time.monotonic() + 0.5
    total = int(rate * seconds)
    for i in range(total):
        due.put(start + i / rate)
    for _ in threads:
        due.put(None)
    for t in threads:
        t.join()
    return sorted(latencies), errors


def summary(latencies):
    def at(q):
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return {"n": len(latencies), "p50": at(0.5), "p99": at(0.99), "max": latencies[-1]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=20000)
    parser.add_argument("--rate", type=float, default=200.0, help="GETs a second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--listing-only", action="store_true",
                        help="no second process rewriting the sidecar: only the Depth 1 loop")
    parser.add_argument("--profile", metavar="FILE",
                        help="py-spy the server under load (the GIL holder, by thread)")
    a = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix="stall-")
    data = os.path.join(work, "data")
    subprocess.run([sys.executable, "-m", "personium_dav", "box", "create", "cell1", "box1",
                    "--data", data], check=True, env=run.repo_env(), capture_output=True)
    run.log("filling big/ with %d members" % a.members)
    fill(data, a.members)
    port = run.free_port()
    env = run.repo_env()
    cmd = ["taskset", "-c", a.server_cpus] + run.twistd_cmd() + [
        "-n", "--pidfile=", "personium-dav", "--data", data,
        "--listen", "tcp:%d:interface=127.0.0.1" % port]
    proc = run.popen(cmd, os.path.join(work, "server.log"), env=env)
    try:
        run.wait_port(port, proc)
        auth = {"Authorization": run.owner_auth(data, env)}
        run.log("GET alone")
        alone, errors_alone = measure(port, auth, a.rate, a.seconds)
        stop = multiprocessing.Event()
        writer = None if a.listing_only else multiprocessing.Process(
            target=rewriter, args=(data, stop))
        listings = multiprocessing.Value("i", 0)
        listing = multiprocessing.Process(target=lister, args=(port, auth, stop, listings))
        if writer is not None:
            writer.start()
        listing.start()
        run.log("GET while big/ is listed" + ("" if writer is None else " and rewritten"))
        spy = None
        if a.profile:
            spy = subprocess.Popen(
                [os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "--gil",
                 "--threads", "--format", "raw", "-o", a.profile, "--duration",
                 str(int(a.seconds)), "--rate", "1000", "--pid", str(proc.pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        loaded, errors_loaded = measure(port, auth, a.rate, a.seconds)
        if spy is not None:
            spy.wait(60)
        stop.set()
        if writer is not None:
            writer.join(60)
        listing.join(120)
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    s_alone, s_loaded = summary(alone), summary(loaded)
    print("\nGET of 1 KiB at %g/s, %d members in big/ (latency from when each was due, ms)"
          % (a.rate, a.members))
    print("| | n | p50 | p99 | max | errors |\n|---|---|---|---|---|---|")
    during = "big/ listed" if a.listing_only else "big/ rewritten + listed"
    for name, s, e in (("alone", s_alone, errors_alone), (during, s_loaded, errors_loaded)):
        print("| %s | %d | %.1f | %.1f | %.1f | %d |" % (name, s["n"], s["p50"], s["p99"],
                                                        s["max"], len(e)))
    print("\nlistings of big/ during the load: %d" % listings.value)
    ratio = s_loaded["p99"] / s_alone["p99"] if s_alone["p99"] else float("inf")
    print("p99 under load %.1f ms (target < 50): %s; %.1f× the p99 alone (target ≤ 10×): %s"
          % (s_loaded["p99"], "met" if s_loaded["p99"] < 50 else "NOT met",
             ratio, "met" if ratio <= 10 else "NOT met"))


if __name__ == "__main__":
    main()
