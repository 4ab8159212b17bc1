#!/usr/bin/env python3
"""Server CPU time per request: the figure that load on the other core
cannot blur.

    python benchmarks/cpu.py                       # mine (relaxed) and ceiling, every scenario
    python benchmarks/cpu.py --servers mine,durable --requests 3000 --rounds 3
    python benchmarks/cpu.py --profile get         # py-spy of one scenario, summarised

Requests/second on a two-core machine moves with whatever else runs; the CPU
seconds the server process spends per request (``utime + stime`` from
``/proc/PID/stat``, one connection, requests sent back to back by a
standard-library client on the other core) moves much less. Each (server,
scenario) is measured ``--rounds`` times, interleaved, and the median quoted
with the ratio to the bare twisted.web ceiling of the same run. Servers are
started as benchmarks/run.py starts them (pinned to --server-cpus).

``mine`` is ``--relaxed`` by default here (fsync waits are not CPU);
``durable`` adds the durable server.
"""
import argparse
import collections
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import load  # noqa: E402
import run  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
LINE = re.compile(r":\d+\)$")  # py-spy's frame "function (file:line)", counted by function
MODULE = re.compile(r"\((.*)\)$")
PARTS = (  # (module prefix, part of a request), the first that matches
    ("twisted/internet", "the reactor, the socket, the hand-over to threads"),
    ("twisted/python", "the reactor, the socket, the hand-over to threads"),  # its dispatch, send()
    ("threading.py", "the reactor, the socket, the hand-over to threads"),
    ("twisted/", "twisted.web (HTTP parsing, the request, headers)"),
    ("personium_dav/store", "the store (box API, sidecars, locks, files)"),
    ("personium_dav/logs", "the access and event log writes"),
    ("personium_dav/web/methods", "the method (XML, conditions, answer body)"),
    ("personium_dav/dav", "the method (XML, conditions, answer body)"),
    ("personium_dav/", "the envelope, resolution, authorization, reply"),
    ("", "the standard library, other"))
SCENARIOS = ("get", "propfind_d0", "propfind_d1", "proppatch", "put_overwrite", "put_new",
             "options")


def cpu_seconds(pid, part=None):
    """utime + stime of a process and all its threads, in seconds (or just
    one of them: part 0 user, 1 system)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    times = int(fields[11]), int(fields[12])
    return (times[part] if part is not None else sum(times)) / TICK


class Raw:
    """A keep-alive connection sending prebuilt requests and reading the
    answers (Content-Length or chunked)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def exchange(self, data):
        self.sock.sendall(data)
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length, chunked = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        self.buf = rest
        if not chunked:
            self._skip(length)
            return status
        while True:  # chunk-size CRLF data CRLF ... 0 CRLF CRLF
            while b"\r\n" not in self.buf:
                self._more()
            size, _, self.buf = self.buf.partition(b"\r\n")
            size = int(size.split(b";")[0], 16)
            self._skip(size + 2)
            if size == 0:
                return status

    def _skip(self, length):
        while len(self.buf) < length:
            self._more()
        self.buf = self.buf[length:]

    def _more(self):
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionError("closed")
        self.buf += chunk


def request_bytes(method, path, auth, headers=(), body=b""):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1"]
    if auth:
        lines.append("Authorization: " + auth)
    lines += ["%s: %s" % h for h in headers]
    if body or method in ("PUT", "PROPPATCH", "PROPFIND"):
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def fixtures(srv, members):
    """Make the scratch collections; (path builder per scenario, expected status)."""
    if srv.kind == "ceiling":
        return {}
    c = load.Client(srv.url, srv.auth)
    base = c.base_path + "cpu-%d/" % int(time.time() * 1000)
    load.mkcol(c, base)
    load.mkcol(c, base + "col/")
    load.mkcol(c, base + "new/")
    c.put(base + "f.bin")
    load.seed_members(c, base + "d1/", members)
    return {"base": base}


def scenario(name, srv, fx, counter):
    """(request bytes, expected statuses) for one request of a scenario."""
    auth = srv.auth
    base = fx.get("base", "/")
    xml = (("Content-Type", "application/xml"),)
    allprop = load.PROPFIND_BODIES["allprop"].encode()
    if name == "get":
        return request_bytes("GET", base + "f.bin", auth), (200,)
    if name == "options":
        return request_bytes("OPTIONS", base + "f.bin", auth), (200,)
    if name == "propfind_d0":
        return request_bytes("PROPFIND", base + "col/", auth, xml + (("Depth", "0"),),
                             allprop), (207, 200)
    if name == "propfind_d1":
        return request_bytes("PROPFIND", base + "d1/", auth, xml + (("Depth", "1"),),
                             allprop), (207, 200)
    if name == "proppatch":
        body = load.PROPPATCH_BODY.replace("@N@", str(counter)).encode()
        return request_bytes("PROPPATCH", base + "col/", auth, xml, body), (207, 200)
    ctype = (("Content-Type", "application/octet-stream"),)
    if name == "put_overwrite":
        return request_bytes("PUT", base + "f.bin", auth, ctype, load.PAYLOAD), (204, 200)
    if name == "put_new":
        return request_bytes("PUT", base + "new/n-%d.bin" % counter, auth, ctype,
                             load.PAYLOAD), (201, 200)
    raise SystemExit("unknown scenario " + name)


def measure(srv, name, fx, n, warm=50):
    conn = Raw(int(srv.url.split(":")[2].split("/")[0]))
    count = getattr(srv, "counter", 0)
    for i in range(warm):
        data, ok = scenario(name, srv, fx, count + i)
        status = conn.exchange(data)
        if status not in ok:
            raise SystemExit("%s %s answered %d" % (srv.name, name, status))
    count += warm
    t0, c0 = time.perf_counter(), cpu_seconds(srv.pid)
    for i in range(n):
        conn.exchange(scenario(name, srv, fx, count + i)[0])
    c1, t1 = cpu_seconds(srv.pid), time.perf_counter()
    srv.counter = count + n
    conn.sock.close()
    return (c1 - c0) / n * 1e6, n / (t1 - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default="mine,ceiling",
                    help="from mine (relaxed), durable, ceiling")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--requests", type=int, default=2000, help="per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--members", type=int, default=1000, help="files in the Depth 1 collection")
    ap.add_argument("--server-cpus", default="0")
    ap.add_argument("--profile", default="", help="a scenario to run under py-spy, its stacks summarised")
    a = ap.parse_args()
    os.makedirs(run.RUN_DIR, exist_ok=True)
    work = tempfile.mkdtemp(prefix="cpu-", dir=run.RUN_DIR)
    servers = []
    try:
        for name in a.servers.split(","):
            if name == "ceiling":
                servers.append(run.start_ceiling(a, work))
            else:
                servers.append(run.start_mine(a, work, name, relaxed=(name == "mine")))
        fxs = {s.name: fixtures(s, a.members) for s in servers}
        # a member written in the last two seconds is read in full by every
        # listing (layout.SETTLE_NS): measure the steady state, as in use
        time.sleep(2.5)
        if a.profile:
            return profile(servers[0], a.profile, fxs[servers[0].name], a.requests)
        names = [s for s in a.scenarios.split(",") if s]
        results = {}
        for r in range(a.rounds):
            for name in names:
                for s in servers:
                    if s.kind == "ceiling" and name in ("propfind_d1", "put_new"):
                        continue
                    n = max(a.requests // 20, 50) if name == "propfind_d1" else a.requests
                    results.setdefault((s.name, name), []).append(measure(s, name, fxs[s.name], n))
            run.log("round", r + 1, "done")
        print()
        print("| scenario | " + " | ".join("%s µs CPU/req (req/s)" % s.name for s in servers)
              + " | mine ÷ ceiling (CPU) |")
        print("|---" * (len(servers) + 2) + "|")
        for name in names:
            cells, cpu = [], {}
            for s in servers:
                got = results.get((s.name, name))
                if not got:
                    cells.append("—")
                    continue
                cpu[s.name] = statistics.median(g[0] for g in got)
                spread = (max(g[0] for g in got) - min(g[0] for g in got)) / cpu[s.name]
                cells.append("%.0f ±%.0f%% (%.0f)" % (cpu[s.name], spread * 50,
                                                       statistics.median(g[1] for g in got)))
            ratio = ("%.2f×" % (cpu["mine"] / cpu["ceiling"])
                     if "mine" in cpu and "ceiling" in cpu else "—")
            print("| %s | %s | %s |" % (name, " | ".join(cells), ratio))
    finally:
        for s in servers:
            s.stop()
        subprocess.run(["rm", "-rf", work])


def profile(srv, name, fx, n):
    spy = subprocess.Popen([shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "-p", str(srv.pid), "-r", "1000", "--gil", "--nonblocking", "-f", "raw",
                            "-o", os.path.join(run.RUN_DIR, "profile-%s.txt" % name)])
    time.sleep(1)
    measure(srv, name, fx, n * 5)
    spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    spy.wait()
    path = os.path.join(run.RUN_DIR, "profile-%s.txt" % name)
    print("raw stacks in", path)
    summarise(path)


def summarise(path, top=20):
    """Print the shares of py-spy's samples: by the part of a request and
    the module on top of the stack, inclusive per function of this server,
    and by the function on top of the stack (its own time)."""
    parts, modules, inclusive, own = (collections.Counter() for _ in range(4))
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            frames = [LINE.sub(")", frame) for frame in stack.split(";")]
            module = MODULE.search(frames[-1])
            module = module.group(1) if module else "(no Python frame)"
            parts[next(name for prefix, name in PARTS if module.startswith(prefix))] += n
            modules[module] += n
            inclusive.update({frame: n for frame in set(frames) if "personium_dav/" in frame})
            own[frames[-1]] += n
    total = sum(own.values())
    if not total:
        print("no samples")
        return
    for title, table in (("own time by part", parts), ("own time by module", modules),
                         ("inclusive, this server's functions", inclusive),
                         ("own time, the top of the stack", own)):
        print("\n| %s | share |\n|---|---|" % title)
        for name, n in table.most_common(top):
            print("| `%s` | %.1f %% |" % (name, 100.0 * n / total))
    print("\n%d samples" % total)

if __name__ == "__main__":
    main()
