"""FUSE mounts of a box for the tests of tools that use one (davfs2, rclone
mount): mounted with a configuration of the test's own (files in its
temporary folder, nothing in /etc or $HOME), and always unmounted in the
test's cleanup (``umount``, then ``umount -l`` as a last resort), so that a
failed test never leaves a mount behind.

    mount = DavfsMount(testcase, url, auth, workdir); mount.start()  # blocking
    mount.stop(); mount.start()  # unmount (uploads flushed) and mount again
"""
import grp
import os
import shutil
import stat
import subprocess
import time

from twisted.trial import unittest

from .realserver import terminate

UNMOUNT_TIMEOUT = 600  # umount.davfs waits until every upload is done
MOUNT_TIMEOUT = 60


def requireMounts():
    """Skip unless FUSE mounts can be made here (root and /dev/fuse), unless
    the environment variable CI is set: then fail loudly."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    if not os.path.exists("/dev/fuse"):
        missing.append("/dev/fuse")
    if not missing:
        return
    if os.environ.get("CI"):
        raise AssertionError("FUSE mounts need %s, and CI is set" % " and ".join(missing))
    raise unittest.SkipTest("FUSE mounts need %s" % " and ".join(missing))


def run(command, cwd=None, env=None, timeout=600, check=True, input=None):
    """A command's CompletedProcess (text); a failure shows its output."""
    result = subprocess.run(command, cwd=cwd, env=env, timeout=timeout, input=input,
                            capture_output=True, text=True, errors="replace")
    if check and result.returncode != 0:
        raise AssertionError("%s exited %d:\n%s\n%s" % (
            " ".join(command), result.returncode, result.stdout[-4000:], result.stderr[-4000:]))
    return result


def _escaped(value):
    """A value for davfs2.conf or its secrets file (backslash before the
    characters its syntax gives a meaning)."""
    return "".join("\\" + c if c in ' \t#\\"' else c for c in value)


class DavfsMount:
    """davfs2 (``mount -t davfs``) on ``workdir/mnt``, its configuration,
    secrets and cache in ``workdir``."""

    # davfs2 1.6 speaks the FUSE protocol itself; on Linux 6.16 and later
    # its directory reads fail with EINVAL unless its buffer is 64 KiB or
    # more (docs/conformance.md, davfs2)
    SETTINGS = {"use_locks": "1", "ask_auth": "0", "buf_size": "64", "delay_upload": "0"}

    def __init__(self, testcase, url, auth, workdir, **settings):
        self.testcase = testcase
        self.url = url
        self.auth = auth
        self.workdir = workdir
        self.point = os.path.join(workdir, "mnt")
        self.settings = dict(self.SETTINGS, **settings)
        self.mounted = False
        self.pid = None
        self.caches = 0
        os.makedirs(self.point, exist_ok=True)
        _searchable(workdir)  # the davfs2 user walks to its cache in here
        testcase.addCleanup(self.cleanup)

    def start(self, fresh_cache=True):
        """Mount (blocking); ``fresh_cache``: an empty cache, so every read
        asks the server."""
        if fresh_cache or not self.caches:
            self.caches += 1
        cache = os.path.join(self.workdir, "cache%d" % self.caches)
        os.makedirs(cache, exist_ok=True)
        # davfs2 runs as its own user: the cache is root's, group davfs2, 0775
        os.chown(cache, 0, grp.getgrnam("davfs2").gr_gid)
        os.chmod(cache, 0o775)
        secrets = os.path.join(self.workdir, "davfs2.secrets")
        with open(os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            if self.auth is not None:
                f.write("%s %s %s\n" % (_escaped(self.url), _escaped(self.auth.user),
                                        _escaped(self.auth.password)))
        os.chmod(secrets, 0o600)
        conf = os.path.join(self.workdir, "davfs2.conf")
        with open(conf, "w") as f:
            f.write("secrets %s\ncache_dir %s\n" % (_escaped(secrets), _escaped(cache)))
            for key, value in self.settings.items():
                f.write("%s %s\n" % (key, value))
        run(["mount", "-t", "davfs", self.url, self.point, "-o", "conf=" + conf],
            timeout=MOUNT_TIMEOUT, input="")
        self.mounted = True
        try:
            with open(self._pid_file()) as f:
                self.pid = int(f.read().strip())
        except (OSError, ValueError):
            self.pid = None
        if not os.path.ismount(self.point):
            raise AssertionError("mount -t davfs returned, but %s is no mount" % self.point)

    def _pid_file(self):
        return "/var/run/mount.davfs/%s.pid" % self.point.strip("/").replace("/", "-")

    def stop(self):
        """Unmount; umount.davfs returns once every upload is done."""
        if not self.mounted:
            return
        run(["umount", self.point], timeout=UNMOUNT_TIMEOUT)
        self.mounted = False
        self._wait_gone()

    def _wait_gone(self):
        """The daemon has exited (the next mount of this point would fail
        while it runs)."""
        deadline = time.monotonic() + 60
        while self.pid is not None and _alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.1)

    def cleanup(self):
        """Never leave a mount behind: umount, else umount -l, and end the
        daemon this mount started."""
        if not (self.mounted or os.path.ismount(self.point)):
            return None
        try:
            run(["umount", self.point], timeout=UNMOUNT_TIMEOUT)
        except Exception:
            run(["umount", "-l", self.point], check=False, timeout=60)
            if self.pid is not None and _alive(self.pid):
                os.kill(self.pid, 15)
        self.mounted = False
        self._wait_gone()
        return None


class ProcessMount:
    """A FUSE mount served by a foreground process (``rclone mount``):
    started with ``command``, ready once the point is a mount; stopped with
    ``fusermount -u`` (``umount -l`` as a last resort) and the process ended."""

    def __init__(self, testcase, command, point, env=None, log=None):
        self.testcase = testcase
        self.command = command
        self.point = point
        self.env = env
        self.log = log
        self.process = None
        os.makedirs(point, exist_ok=True)
        testcase.addCleanup(self.stop)

    def start(self):
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(self.command, env=self.env, stdout=out,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not os.path.ismount(self.point):
            if self.process.poll() is not None:
                raise AssertionError("%s exited %d" % (self.command[0], self.process.returncode))
            if time.monotonic() > deadline:
                raise AssertionError("%s not mounted after %ds" % (self.point, MOUNT_TIMEOUT))
            time.sleep(0.1)

    def stop(self):
        if self.process is None:
            return None
        if os.path.ismount(self.point):
            unmount = shutil.which("fusermount3") or shutil.which("fusermount") or "umount"
            result = run([unmount, "-u", self.point] if "fusermount" in unmount
                         else [unmount, self.point], check=False, timeout=120)
            if result.returncode != 0:
                run(["umount", "-l", self.point], check=False, timeout=60)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            terminate(self.process)
        self.process = None
        return None


def _searchable(path):
    """Let other users pass through ``path`` and its ancestors (search, not
    read: trial's temporary folders are 0700)."""
    path = os.path.abspath(path)
    while True:
        st = os.stat(path)
        if not st.st_mode & stat.S_IXOTH and st.st_uid == os.geteuid():
            os.chmod(path, stat.S_IMODE(st.st_mode) | stat.S_IXGRP | stat.S_IXOTH)
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
