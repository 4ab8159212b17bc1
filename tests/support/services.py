"""Shared by tests/test_services_*.py: the real plugin serving service
collections, one server per test class, and a blocking HTTP client.

``ServiceServer.setUpClass`` provisions a data root (accounts and roles
written with the account store, as the command line would), starts
``twistd -n personium-dav`` on it with a short ``--script-timeout``, and
deploys the class's ``SERVICES`` over HTTP as a user would: an extended
MKCOL, a PUT into ``__src`` per source, a PROPPATCH of ``p:service``. Tests
send requests with ``http.client``: the server is another process, so a
blocking client is fine and needs no reactor.
"""
import atexit
import csv
import http.client
import json
import os
import tempfile
import threading
import time
from base64 import b64encode
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

from twisted.trial import unittest

from personium_dav.auth.accounts import AccountStore
from personium_dav.auth.privileges import Ace, acl_body
from personium_dav.auth.tokens import OwnerGeneration, TokenService, load_secret
from personium_dav.store import provision

from .dav import SERVICE_MKCOL
from .realserver import RealServer

BOX = "/cell1/box1/"
OWNER = object()  # Client.request: the owner's token (the default)


class Answer:
    def __init__(self, response, body):
        self.status = response.status
        self.headers = response.headers
        self.body = body

    def header(self, name):
        return self.headers.get(name)

    def headers_all(self, name):
        return self.headers.get_all(name) or []

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:300])


def basic(user, password):
    return "Basic " + b64encode(("%s:%s" % (user, password)).encode()).decode()


class Client:
    """Blocking requests to one server; every request carries ``auth``
    (an Authorization value) unless given its own (None: anonymous)."""

    def __init__(self, url, auth=None):
        self.url = url
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.auth = auth

    def connection(self, timeout=60):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=b"", headers=None, auth=OWNER, timeout=60):
        headers = dict(headers or {})
        auth = self.auth if auth is OWNER else auth
        if auth is not None and "Authorization" not in headers:
            headers["Authorization"] = auth
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            return Answer(response, response.read())
        finally:
            conn.close()

    def ok(self, answer, *statuses):
        if answer.status not in (statuses or (200,)):
            raise AssertionError("%r, expected %r" % (answer, statuses or (200,)))
        return answer


def routes_xml(routes, subject=None):
    """A PROPPATCH body setting ``p:service`` with ``routes`` [(name, src)]."""
    attrs = ' language="JavaScript"' + (" subject=%s" % quoteattr(subject) if subject else "")
    paths = "".join("<p:path name=%s src=%s/>" % (quoteattr(n), quoteattr(s)) for n, s in routes)
    return ('<?xml version="1.0" encoding="utf-8"?>'
            '<D:propertyupdate xmlns:D="DAV:" xmlns:p="urn:x-personium:xmlns"><D:set><D:prop>'
            "<p:service%s>%s</p:service></D:prop></D:set></D:propertyupdate>"
            % (attrs, paths)).encode("utf-8")


_current = [None]  # the ServiceServer class whose server is running now


def _stop_current():
    cls, _current[0] = _current[0], None
    if cls is not None:
        cls.server.stop_blocking()
        cls.finish()


atexit.register(_stop_current)


class ServiceServer(unittest.TestCase):
    """One real server per test class, with service collections deployed.

    The server starts at the first test of the class and stops when a test
    of another class begins (trial runs a class's tests one after the
    other), or when the test process exits.

    ``SERVICES``: {collection path below the box: (subject or None,
    [(route, src)], {src: source text})}; a routes list of None leaves the
    collection without ``p:service``."""

    script_workers = 2
    script_timeout = 2
    SERVICES = {}
    ACCOUNTS = {}  # cell -> {name: (password, [roles])}
    timeout = 120  # seconds per test

    @classmethod
    def server_args(cls):
        return ("--script-workers", str(cls.script_workers),
                "--script-timeout", str(cls.script_timeout))

    def setUp(self):
        cls = type(self)
        if _current[0] is not cls:
            _stop_current()
            cls.start_shared()
            _current[0] = cls

    @classmethod
    def start_shared(cls):
        cls.dir = tempfile.mkdtemp(prefix=cls.__name__ + "-", dir=os.getcwd())
        cls.data = os.path.join(cls.dir, "data")
        provision.create_box(cls.data, "cell1", "box1")
        cls.prepare()
        tokens = TokenService(load_secret(cls.data), owner_generation=OwnerGeneration(cls.data))
        cls.server = RealServer(None, cls.data, *cls.server_args(),
                                log_path=os.path.join(cls.dir, "server.log"))
        cls.server.start_blocking()
        cls.url = cls.server.url
        cls.owner = Client(cls.url, "Bearer " + tokens.owner_token(ttl=86400))
        try:
            for path, (subject, routes, sources) in cls.SERVICES.items():
                cls.deploy(path, subject, routes, sources)
            cls.scene()
        except BaseException:
            cls.server.stop_blocking()
            raise

    @classmethod
    def prepare(cls):
        """Before the server starts: accounts and roles (``ACCOUNTS``)."""
        store = AccountStore(cls.data, durable=False)
        for cell, accounts in cls.ACCOUNTS.items():
            provision.create_box(cls.data, cell, "box1")
            for name, (password, roles) in accounts.items():
                for role in roles:
                    store.add_role(cell, role)
                store.add_account(cell, name, password, roles)

    @classmethod
    def finish(cls):
        """After the server stopped: release what ``prepare`` started."""

    @classmethod
    def scene(cls):
        """After the services are deployed: anything else the class needs."""

    @classmethod
    def deploy(cls, path, subject, routes, sources):
        owner = cls.owner
        owner.ok(owner.request("MKCOL", BOX + path, SERVICE_MKCOL,
                               {"Content-Type": "application/xml"}), 201)
        for src, text in sources.items():
            cls.put_source(path, src, text)
        if routes is not None:
            owner.ok(owner.request("PROPPATCH", BOX + path, routes_xml(routes, subject),
                                   {"Content-Type": "application/xml"}), 207)

    @classmethod
    def put_source(cls, path, src, text):
        cls.owner.ok(cls.owner.request("PUT", BOX + path + "/__src/" + src, text,
                                       {"Content-Type": "text/javascript"}), 201, 204)

    @classmethod
    def grant(cls, path, *aces, cell_url=None):
        """An ACL over HTTP: ``aces`` are (role or None for D:all, privileges)."""
        cell_url = cell_url or cls.url + "/cell1/"
        body = acl_body([Ace(role, frozenset(privs)) for role, privs in aces], cell_url)
        cls.owner.ok(cls.owner.request("ACL", path, body, {"Content-Type": "application/xml"}),
                     200)

    # -- helpers for the tests ------------------------------------------------

    def call(self, path, method="GET", body=b"", headers=None, auth=OWNER, timeout=60):
        return self.owner.request(method, BOX + path, body, headers, auth, timeout)

    def assertAnswer(self, answer, status, body, content_type="text/html"):
        self.assertEqual((answer.status, answer.text), (status, body), answer)
        if content_type is not None:
            self.assertEqual(answer.header("content-type"), content_type)

    def assertTable(self, rows, method="GET"):
        """rows: (path, status, body): all sent, every mismatch reported at once."""
        wrong = []
        for path, status, body in rows:
            got = self.call(path, method)
            if (got.status, got.text) != (status, body):
                wrong.append("%s -> %r, expected %r" % (path, (got.status, got.text),
                                                         (status, body)))
        if wrong:
            self.fail("\n".join(wrong))

    def events(self, cell="cell1"):
        """The event log's lines as lists of fields."""
        path = os.path.join(self.data, cell, ":log", "events.log")
        with open(path, encoding="utf-8") as f:
            return list(csv.reader(f))

    def events_of(self, key, cell="cell1"):
        """(type, object, status, subject) of the lines of one request key."""
        return [(e[6], e[7], e[8], e[5]) for e in self.events(cell) if e[2] == key]

    def temporaries(self):
        """What is left in the data root's ``:tmp`` but the (empty or not)
        folder of the server's script bodies, and what is in that folder."""
        tmp = os.path.join(self.data, ":tmp")
        left = []
        for name in os.listdir(tmp):
            if name.endswith(".scripts"):
                left += [name + "/" + n for n in os.listdir(os.path.join(tmp, name))]
            else:
                left.append(name)
        return left

    @staticmethod
    def wait_until(predicate, timeout=30):
        """Poll ``predicate()`` until it is true or ``timeout`` s pass."""
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.05)

    def worker_pids(self):
        """The script workers of the server process."""
        return self.children_of(self.server.pid, b"personium_dav.engine.worker")

    @staticmethod
    def children_of(parent, marker):
        """PIDs whose parent is ``parent`` and whose command line holds ``marker``."""
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmdline = f.read()
            except (OSError, IndexError, ValueError):
                continue
            if ppid == parent and marker in cmdline:
                found.append(int(pid))
        return found

    def in_threads(self, *calls):
        """Run ``calls`` (functions of no argument) at once; their results."""
        results = [None] * len(calls)

        def run(i, f):
            try:
                results[i] = f()
            except Exception as e:  # reported by the caller's assertions
                results[i] = e

        threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(calls)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results


def text_script(expression, status=200, ctype="text/plain"):
    """A script answering the string of a JS ``expression``."""
    return ('function(request){ return {status: %d, headers: {"Content-Type": "%s"}, '
            'body: [String(%s)]}; }' % (status, ctype, expression))


