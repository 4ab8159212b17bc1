#!/usr/bin/env python3
"""Resident memory of the server during a 1 GiB PUT (issue 4, item 5).

    python benchmarks/bigput.py                 # 1 GiB, durable, Content-Length
    python benchmarks/bigput.py --chunked       # the same body, chunked
    python benchmarks/bigput.py --size 256M --relaxed

Starts ``twistd -n personium-dav`` from this checkout on a throwaway data root
on a free loopback port, takes an owner token from the operator command line,
PUTs SIZE bytes streamed from a generator (the client never holds the body
either), samples the server's VmRSS from /proc/PID/status every 20 ms, checks
the stored size, and prints idle and peak RSS and the throughput. The issue's
target is a peak under 100 MiB. Nothing is asserted; no test runs this.
"""
import argparse
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
BLOCK = 1024 * 1024


def size_arg(text):
    units = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}
    text = text.strip().upper().rstrip("IB")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(p for p in (SOURCE, e.get("PYTHONPATH")) if p)
    return e


def twistd():
    candidate = os.path.join(os.path.dirname(sys.executable), "twistd")
    return [candidate] if os.access(candidate, os.X_OK) else [sys.executable, "-m", "twisted"]


def body(size):
    block = os.urandom(BLOCK)
    sent = 0
    while sent < size:
        n = min(BLOCK, size - sent)
        yield block[:n]
        sent += n


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=size_arg, default=1024 ** 3, help="body size (1G, 256M...)")
    parser.add_argument("--chunked", action="store_true", help="send it chunked")
    parser.add_argument("--relaxed", action="store_true", help="run the server with --relaxed")
    parser.add_argument("--data", help="data root (default: a temporary directory)")
    args = parser.parse_args()

    data = args.data or tempfile.mkdtemp(prefix="bigput-")
    port = free_port()
    subprocess.run([sys.executable, "-m", "personium_dav", "box", "create", "cell1", "box1",
                    "--data", data], check=True, capture_output=True, env=env())
    token = None
    done = subprocess.run([sys.executable, "-m", "personium_dav", "token", "--data", data,
                           "--owner"], capture_output=True, text=True, env=env())
    if done.returncode == 0 and done.stdout.strip():
        token = done.stdout.strip().splitlines()[-1]
    command = twistd() + ["-n", "--pidfile=", "personium-dav", "--data", data,
                          "--listen", "tcp:%d:interface=127.0.0.1" % port,
                          "--max-file-size", str(max(args.size, 1))]
    if args.relaxed:
        command.append("--relaxed")
    log = tempfile.TemporaryFile()  # the server's log, kept only while it runs
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env())
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit("server did not start")
                time.sleep(0.05)
        time.sleep(0.5)
        idle = rss_kib(server.pid)
        peak = [idle]
        running = [True]

        def sample():
            while running[0]:
                try:
                    peak[0] = max(peak[0], rss_kib(server.pid))
                except OSError:
                    return
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        headers = {"Content-Type": "application/octet-stream"}
        if token:
            headers["Authorization"] = "Bearer " + token
        if not args.chunked:
            headers["Content-Length"] = str(args.size)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        start = time.monotonic()
        conn.request("PUT", "/cell1/box1/big.bin", body=body(args.size), headers=headers,
                     encode_chunked=args.chunked)
        response = conn.getresponse()
        response.read()
        elapsed = time.monotonic() - start
        running[0] = False
        sampler.join()
        stored = os.path.getsize(os.path.join(data, "cell1", "box1", "big.bin")) \
            if response.status in (201, 204) else None
        mib = args.size / 1024 ** 2
        print("PUT %d bytes (%s, %s): %d %s" % (
            args.size, "chunked" if args.chunked else "Content-Length",
            "relaxed" if args.relaxed else "durable", response.status, response.reason))
        print("stored size:   %s" % stored)
        print("idle RSS:      %.1f MiB" % (idle / 1024))
        print("peak RSS:      %.1f MiB (target: under 100 MiB)" % (peak[0] / 1024))
        print("time:          %.1f s (%.0f MiB/s)" % (elapsed, mib / elapsed))
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        if not args.data:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
