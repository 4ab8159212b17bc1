"""What the real-client tests (cadaver, webdav4, webdavclient3) share: the
server they talk to, the credentials they use, and plain HTTP to check what
the server really holds afterwards.

Authentication is decided in ONE place, ``prepareAuth`` (before the server
starts) with ``grantAuth`` (after): they return ``None`` in a build without
accounts (an open server) or a ``Credentials``: an account's name and
password, sent as Basic, as WebDAV clients do, whose role the box's ACL
grants ``D:all``. Every test takes its ``auth`` from ``startClientServer``:

* cadaver gets it through ``netrc(auth)`` written to its ``$HOME/.netrc``;
* webdav4 through ``auth.pair()`` (httpx ``auth=(user, password)``);
* webdavclient3 through ``webdav3Options`` (``webdav_login``/``webdav_password``);
* the checking requests through ``authHeaders(auth)``.
"""
import atexit
import base64
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile

from twisted.internet import defer, threads
from twisted.trial import unittest

import personium_dav
from .realserver import RealServer

CELL, BOX = "cell1", "box1"
BOX_PATH = f"/{CELL}/{BOX}/"


class Credentials:
    owner = None  # the data root's owner token (only grantAuth uses it)

    def __init__(self, user, password):
        self.user, self.password = user, password

    def pair(self):
        return (self.user, self.password)


_cli_cache = {}


def _env():
    env = dict(os.environ)
    source = os.path.dirname(os.path.dirname(os.path.abspath(personium_dav.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    return env


def _cli(*args, stdin=None):
    """``python -m personium_dav ARGS``: its stdout; fails the test on an error."""
    result = subprocess.run([sys.executable, "-m", "personium_dav", *args], input=stdin,
                            capture_output=True, text=True, timeout=60, env=_env())
    if result.returncode:
        raise AssertionError("personium_dav %s: %s" % (" ".join(args), result.stderr))
    return result.stdout


def _cli_has(group):
    """Does ``python -m personium_dav GROUP --help`` exist in this build?"""
    if group not in _cli_cache:
        result = subprocess.run([sys.executable, "-m", "personium_dav", group, "--help"],
                                capture_output=True, timeout=60, env=_env())
        _cli_cache[group] = result.returncode == 0
    return _cli_cache[group]


ROLE, USER, PASSWORD = "webdav-client", "client", "Cl1ent-pa55_word"
_template = {}  # the provisioned data root every test copies, made once per run


def _make_template(parent):
    """A data root with the box, a role and an account holding it, made by
    the operator's command line (the password on stdin) as an administrator
    would; and the owner token for it (its secret is copied with it)."""
    data_dir = os.path.join(parent, "template")
    _cli("box", "create", CELL, BOX, "--data", data_dir)
    _cli("role", "add", CELL, ROLE, "--data", data_dir)
    _cli("account", "add", CELL, USER, "--role", ROLE, "--data", data_dir,
         stdin=PASSWORD + "\n")
    owner = _cli("token", "--data", data_dir, "--owner", "--ttl", "86400").strip()
    return data_dir, owner


def prepareAuth(testcase, data_dir):
    """Make ``data_dir`` ready for an authenticated client, before the server
    starts; its Credentials, or None in a build without accounts (docs/behaviour.md §9).

    The account is made once per test run (four command-line calls) and its
    data root copied for each test; ``grantAuth`` then gives the role
    ``D:all`` on the box through ``ACL``, once the server runs.
    """
    if not _cli_has("account"):
        return None
    if not _template:
        parent = tempfile.mkdtemp(prefix="personium-dav-clients-")
        atexit.register(shutil.rmtree, parent, True)
        _template["data"], _template["owner"] = _make_template(parent)
    os.rmdir(data_dir)
    shutil.copytree(_template["data"], data_dir)
    auth = Credentials(USER, PASSWORD)
    auth.owner = _template["owner"]
    return auth


@defer.inlineCallbacks
def grantAuth(server, auth):
    """Grant the account's role every privilege on the box (ACL, sent with
    the data root's owner token)."""
    if auth is None:
        return
    body = ('<D:acl xmlns:D="DAV:" xml:base="%s/%s/__role/__/"><D:ace><D:principal>'
            "<D:href>%s</D:href></D:principal><D:grant><D:privilege><D:all/></D:privilege>"
            "</D:grant></D:ace></D:acl>" % (server.url, CELL, ROLE)).encode()
    code, _, answer = yield fetch(server, None, "ACL", BOX_PATH, body,
                                  {"Authorization": "Bearer " + auth.owner,
                                   "Content-Type": "application/xml"})
    if code != 200:
        raise AssertionError("ACL for the client role: %d %r" % (code, answer))


def authHeaders(auth):
    if auth is None:
        return {}
    token = base64.b64encode(f"{auth.user}:{auth.password}".encode()).decode("ascii")
    return {"Authorization": "Basic " + token}


def netrc(auth):
    """The ~/.netrc text cadaver reads credentials from (empty when open)."""
    if auth is None:
        return ""
    return f"machine 127.0.0.1\nlogin {auth.user}\npassword {auth.password}\n"


def webdav3Options(base, auth):
    """webdavclient3's options: host and root apart (it strips the root from
    hrefs only when it is given as ``webdav_root``; see docs/conformance.md)."""
    options = {"webdav_hostname": base, "webdav_root": BOX_PATH, "webdav_timeout": 30}
    if auth is not None:
        options.update(webdav_login=auth.user, webdav_password=auth.password)
    return options


@defer.inlineCallbacks
def startClientServer(testcase, *extra_args):
    """A real server on a fresh data root, ready for clients: (server, auth)."""
    data_dir = os.path.abspath(testcase.mktemp())
    os.makedirs(data_dir)
    auth = yield threads.deferToThread(prepareAuth, testcase, data_dir)
    server = yield RealServer(testcase, data_dir, *extra_args).start()
    yield grantAuth(server, auth)
    return server, auth


def fetch(server, auth, method, path, body=None, headers=None):
    """One plain request (in a thread): (status, {lower-case headers}, body)."""

    def call():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            hdrs = dict(authHeaders(auth))
            hdrs.update(headers or {})
            conn.request(method, path, body=body, headers=hdrs)
            response = conn.getresponse()
            return (response.status, {k.lower(): v for k, v in response.getheaders()},
                    response.read())
        finally:
            conn.close()

    return threads.deferToThread(call)


def requireTool(name):
    """Skip without ``name`` on PATH (or in /usr/sbin, /sbin: mount helpers
    live there), unless CI is set: then fail loudly."""
    if shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin"):
        return
    if os.environ.get("CI"):
        raise AssertionError(f"{name} is not installed, and CI is set")
    raise unittest.SkipTest(f"{name} is not installed")


_ACCESS = re.compile(r'"([A-Z]+) (\S+) HTTP/[0-9.]+" (\d{3}) ')


def accessLog(server):
    """[(method, path, status)] of the server's access log so far
    (``DATA/:log/access.log``: each line is written when its answer is):
    what a client really sent."""
    try:
        with open(os.path.join(server.data_dir, ":log", "access.log"), encoding="utf-8",
                  errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    found = []
    for line in lines:
        m = _ACCESS.search(line)
        if m:
            found.append((m.group(1), m.group(2), int(m.group(3))))
    return found


def setQuota(server, size):
    """``python -m personium_dav box quota CELL BOX SIZE`` on the server's
    data root, as an operator would while it runs; what it printed."""
    return _cli("box", "quota", CELL, BOX, size, "--data", server.data_dir)
