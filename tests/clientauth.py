"""What the real-client tests (cadaver, webdav4, webdavclient3) share: the
server they talk to, the credentials they use, and plain HTTP to check what
the server really holds afterwards.

Authentication is decided in ONE place, ``prepareAuth``: it runs before the
server starts and returns ``None`` (an open server, as long as this build has
no authentication) or a ``Credentials`` (an account's name and password, sent
as Basic, as WebDAV clients do). Every test takes its ``auth`` from there:

* cadaver gets it through ``netrc(auth)`` written to its ``$HOME/.netrc``;
* webdav4 through ``auth.pair()`` (httpx ``auth=(user, password)``);
* webdavclient3 through ``webdav3Options`` (``webdav_login``/``webdav_password``);
* the checking requests through ``authHeaders(auth)``.
"""
import base64
import http.client
import os
import shutil
import subprocess
import sys

from twisted.internet import defer, threads
from twisted.trial import unittest

from tests.realserver import RealServer

CELL, BOX = "cell1", "box1"
BOX_PATH = f"/{CELL}/{BOX}/"


class Credentials:
    def __init__(self, user, password):
        self.user, self.password = user, password

    def pair(self):
        return (self.user, self.password)


def _cli_has(group):
    """Does ``python -m personium_dav GROUP --help`` exist in this build?"""
    result = subprocess.run([sys.executable, "-m", "personium_dav", group, "--help"],
                            capture_output=True, timeout=60)
    return result.returncode == 0


def prepareAuth(testcase, data_dir):
    """Make the data root ready for an authenticated client; its Credentials,
    or None while the server has no authentication (requests are anonymous).

    When SPEC §9 authentication lands this creates an account with a role
    (``python -m personium_dav account add CELL NAME --role ROLE --data DIR``,
    password on stdin) and grants the role ``all`` on the box; the tests do
    not change, only this function does.
    """
    return None


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
    auth = yield defer.maybeDeferred(prepareAuth, testcase, data_dir)
    server = yield RealServer(testcase, data_dir, *extra_args).start()
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
    """Skip without ``name`` on PATH, unless CI is set: then fail loudly."""
    if shutil.which(name):
        return
    if os.environ.get("CI"):
        raise AssertionError(f"{name} is not installed, and CI is set")
    raise unittest.SkipTest(f"{name} is not installed")
