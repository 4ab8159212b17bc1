"""Start the real ``twistd -n personium-dav`` on a loopback port, for end-to-end tests.

The server runs in a subprocess with the same ``personium_dav`` the tests import
(its directory is put first on PYTHONPATH), so a source checkout is tested
as it is; the plugin itself must be installed (``pip install .``) for twistd
to find it. No pidfile is written, so several servers can run at once.

    url = yield startServer(self, self.mktemp())          # "http://127.0.0.1:PORT"
    server = yield RealServer(self, data_dir).start()     # when pid/kill is needed
"""
import os
import signal
import socket
import subprocess
import sys
import time

from twisted.internet import defer, reactor, task

import personium_dav

STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
POLL = 0.05


def twistdCommand():
    """The venv's twistd when it sits next to this interpreter, else ``-m twisted``."""
    twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
    if os.access(twistd, os.X_OK):
        return [twistd]
    return [sys.executable, "-m", "twisted"]


def freePort():
    """A port that was free a moment ago (the kernel picked it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def terminate(process, grace=10):
    """SIGTERM, then SIGKILL after ``grace`` seconds; reaped either way."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


class RealServer:
    """One server subprocess; ``process``/``pid`` let crash tests SIGKILL it."""

    def __init__(self, testcase, data_dir, *extra_args, port=None, log_path=None):
        self.testcase = testcase  # None: started and stopped with the blocking calls
        self.data_dir = os.path.abspath(data_dir)
        self.port = port or freePort()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args = extra_args
        self.log_path = os.path.abspath(log_path or testcase.mktemp() + ".log")
        self.process = None

    @property
    def pid(self):
        return self.process.pid

    def command(self):
        return twistdCommand() + [
            "-n", "--pidfile=", "personium-dav",
            "--data", self.data_dir,
            "--listen", f"tcp:{self.port}:interface=127.0.0.1",
            *self.extra_args,
        ]

    def _spawn(self):
        env = dict(os.environ)
        source = os.path.dirname(os.path.dirname(os.path.abspath(personium_dav.__file__)))
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (source, env.get("PYTHONPATH")) if p)
        with open(self.log_path, "wb") as logfile:
            self.process = subprocess.Popen(
                self.command(), stdout=logfile, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env)

    def start_blocking(self):
        """``start`` without the reactor (for a server shared by a test
        class, started in ``setUpClass``); ``stop_blocking`` ends it."""
        self._spawn()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _accepts(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop_blocking()
                raise RuntimeError(f"server did not start:\n{self.log()}")
            time.sleep(POLL)
        return self

    def stop_blocking(self):
        if self.process is None:
            return
        self.kill(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.process.wait()

    def log(self):
        """What the server wrote so far (for failure messages)."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    @defer.inlineCallbacks
    def start(self):
        """Spawn, register the cleanup, wait until the port accepts; fires self."""
        self._spawn()
        self.testcase.addCleanup(self.stop)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _accepts(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"server not listening after {STARTUP_TIMEOUT}s:\n{self.log()}")
            yield _sleep(POLL)
        return self

    @defer.inlineCallbacks
    def wait(self, timeout):
        """Wait up to timeout seconds for the process to exit; True if it did."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                return False
            yield _sleep(POLL)
        return True

    def kill(self, sig=signal.SIGKILL):
        """Send a signal (default SIGKILL, as a crash would) if still running."""
        if self.process.poll() is None:
            self.process.send_signal(sig)

    @defer.inlineCallbacks
    def stop(self):
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; always reaps the process."""
        if self.process is None:
            return
        self.kill(signal.SIGTERM)
        if not (yield self.wait(STOP_TIMEOUT)):
            self.kill(signal.SIGKILL)
            yield self.wait(STOP_TIMEOUT)
        self.process.wait()


def startServer(testcase, data_dir, *extra_args):
    """Start a server on DATA_DIR; a Deferred firing its base URL (no trailing slash)."""
    server = RealServer(testcase, data_dir, *extra_args)
    return server.start().addCallback(lambda s: s.url)


def cliEnv():
    """The environment for ``python -m personium_dav`` on the source under test."""
    env = dict(os.environ)
    source = os.path.dirname(os.path.dirname(os.path.abspath(personium_dav.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    return env


def ownerToken(data_dir):
    """An owner token for a data root, from the operator command line
    (``python -m personium_dav token --data DIR --owner``), as a user would."""
    out = subprocess.run(
        [sys.executable, "-m", "personium_dav", "token", "--data", os.path.abspath(data_dir),
         "--owner", "--ttl", "86400"],
        capture_output=True, text=True, timeout=60, env=cliEnv(), stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        raise RuntimeError("token command failed: " + out.stderr)
    return out.stdout.strip().splitlines()[-1]


def ownerHeaders(data_dir):
    return {"Authorization": "Bearer " + ownerToken(data_dir)}


def addAccount(data_dir, cell, name, password, roles=()):
    """``account add`` (and ``role add`` for each role) through the command line."""
    base = [sys.executable, "-m", "personium_dav"]
    data = ["--data", os.path.abspath(data_dir)]
    for role in roles:
        subprocess.run(base + ["role", "add", cell, role] + data, check=True,
                       capture_output=True, timeout=60, env=cliEnv())
    command = base + ["account", "add", cell, name] + data
    if roles:
        command += ["--role", *roles]
    subprocess.run(command, input=password + "\n", text=True, check=True,
                   capture_output=True, timeout=60, env=cliEnv())


def grantOnBox(data_dir, cell, box, role, privileges=("all",)):
    """Put an ACL granting ``role`` the privileges on a box, through the
    store (the server need not run; over HTTP it is the ACL method)."""
    from personium_dav.auth.privileges import ACL_KEY, Ace, serialize_acl
    from personium_dav.store.tree import Tree

    tree = Tree(os.path.abspath(data_dir))
    directory = tree.box_dir(cell, box)
    with tree.locked(directory):
        txn = tree.sidecars.begin(directory)
        txn.set("", "", ACL_KEY, serialize_acl([Ace(role, frozenset(privileges))]))
        txn.commit()


def provisionUser(data_dir, user="davuser", password="dav-Secret-1", role="editor",
                  cell="cell1", box="box1"):
    """A box, an account holding a role, and an ACL granting the role ``all``
    on the box: what a WebDAV client with Basic credentials needs."""
    subprocess.run([sys.executable, "-m", "personium_dav", "box", "create", cell, box,
                    "--data", os.path.abspath(data_dir)], check=True, capture_output=True,
                   timeout=60, env=cliEnv())
    addAccount(data_dir, cell, user, password, [role])
    grantOnBox(data_dir, cell, box, role)
    return user, password
