"""A storm of concurrent writes with an exact expected state, and the checks
that every acknowledged write is there afterwards (tests/test_crash.py kills
one server under it; tests/test_scaleout.py runs it on several hosts).

Each client works on names of its own (plus properties of its own on the
shared collections ``d0`` and ``d1``, and files of its own in them), so the
expected state is exact. An operation whose answer never came (the server
died, or a proxy or the store answered 502/503/504) is *pending*: the check
after it accepts it wholly done or wholly not done, never half.
"""
import hashlib
import os
import random

from lxml import etree
from twisted.internet import defer

from personium_dav.store import layout, props

BOX = "/cell1/box1/"
NS = "urn:x-crash"
CLIENTS = 4
SHARED = ("d0", "d1")
UNKNOWN = "?"
LOCKDISCOVERY = (b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:">'
                 b'<D:prop><D:lockdiscovery/></D:prop></D:propfind>')
LOCKINFO = (b'<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
            b'<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>'
            b'<D:owner>storm</D:owner></D:lockinfo>')


def make_body(rng):
    size = rng.choice((0, 10, 1000, 30000, 200000 if rng.random() < 0.3 else 5000))
    payload = rng.randbytes(size)
    return hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload


def check_body(data):
    """The digest of an intact self-checking body, else None (torn)."""
    digest, sep, payload = data.partition(b"\n")
    if not sep or hashlib.sha256(payload).hexdigest().encode() != digest:
        return None
    return digest.decode()


def prop_body(values, remove=()):
    sets = "".join("<Z:%s>%s</Z:%s>" % (k, v, k) for k, v in values.items())
    rems = "".join("<Z:%s/>" % k for k in remove)
    body = '<D:propertyupdate xmlns:D="DAV:" xmlns:Z="%s">' % NS
    if sets:
        body += "<D:set><D:prop>%s</D:prop></D:set>" % sets
    if rems:
        body += "<D:remove><D:prop>%s</D:prop></D:remove>" % rems
    return (body + "</D:propertyupdate>").encode()


class Storm:
    """The expected state, and one client's random operations on it.

    ``files``: path -> {"etag", "digest", "props"}; ``cols``: own collections;
    ``colprops``: (collection, name) -> value. ``pending``: the operations
    whose answer never came, as (keys, before, after)."""

    KINDS = ("put", "put", "put", "proppatch", "colprop", "mkcol", "move", "delete")
    # and COPY and LOCK (LOCK, a PROPPATCH submitting its token, UNLOCK)
    ALL_KINDS = KINDS + ("copy", "lock")

    def __init__(self, seed, kinds=KINDS, unknown=()):
        self.rng = random.Random(seed)
        self.kinds = kinds
        # statuses that leave the outcome unknown (a proxy's 502, a store's
        # 503): the operation stays pending and the client stops
        self.unknown = unknown
        # paths a LOCK was sent for and whose UNLOCK was not answered 204: a
        # lock may be left there (granted, its answer lost), token unknown
        self.held = set()
        self.statuses = {}  # status -> how many answers had it
        self.files = {}
        self.cols = set(SHARED)
        self.colprops = {}
        self.pending = []
        self.touched = set()
        self.counter = 0
        self.acked = 0

    def fresh(self, client):
        self.counter += 1
        return "k%d-%d" % (client, self.counter)

    def own_files(self, client):
        return sorted(p for p in self.files if p.rsplit("/", 1)[-1].startswith("k%d-" % client))

    def own_cols(self, client):
        return sorted(c for c in self.cols if c.startswith("k%d-" % client))

    def snapshot(self, keys):
        out = {}
        for key in keys:
            if key[0] == "file":
                state = self.files.get(key[1])
                out[key] = None if state is None else dict(state, props=dict(state["props"]))
            elif key[0] == "col":
                out[key] = key[1] in self.cols or None
            else:
                out[key] = self.colprops.get(key[1:])
        return out

    def apply(self, state):
        for key, value in state.items():
            if key[0] == "file":
                if value is None:
                    self.files.pop(key[1], None)
                else:
                    self.files[key[1]] = value
            elif key[0] == "col":
                if value:
                    self.cols.add(key[1])
                else:
                    self.cols.discard(key[1])
            else:
                if value is None:
                    self.colprops.pop(key[1:], None)
                else:
                    self.colprops[key[1:]] = value

    @defer.inlineCallbacks
    def client(self, client, http, stopped):
        """Random operations until ``stopped``; the first failed one (the
        server died) is recorded as pending and ends the client."""
        rng = self.rng
        while not stopped:
            files, cols = self.own_files(client), self.own_cols(client)
            kind = rng.choice(self.kinds)
            if kind in ("proppatch", "move", "delete", "copy", "lock") and not files:
                kind = "put"
            if kind == "put":
                if files and rng.random() < 0.4:
                    path = rng.choice(files)
                else:
                    path = rng.choice(list(SHARED) + cols) + "/" + self.fresh(client)
                body = make_body(rng)
                before = self.snapshot([("file", path)])
                old = before[("file", path)]
                after = {("file", path): {"etag": UNKNOWN, "digest": check_body(body),
                                          "props": dict(old["props"]) if old else {}}}
                request = ("PUT", BOX + path, body, {"Content-Type": "application/x-crash"})
                expect = (201, 204)
            elif kind == "proppatch":
                path = rng.choice(files)
                before = self.snapshot([("file", path)])
                state = before[("file", path)]
                values = {"p%d" % rng.randrange(4): "v%d" % rng.randrange(10 ** 6)
                          for _ in range(rng.randrange(1, 4))}
                remove = [k for k in state["props"] if k not in values and rng.random() < 0.3]
                new_props = dict(state["props"], **values)
                for k in remove:
                    new_props.pop(k)
                after = {("file", path): dict(state, etag=UNKNOWN, props=new_props)}
                request = ("PROPPATCH", BOX + path, prop_body(values, remove), {})
                expect = (207,)
            elif kind == "colprop":
                col = rng.choice(SHARED)
                name = "k%dp%d" % (client, rng.randrange(3))
                key = ("colprop", col, name)
                before = self.snapshot([key])
                value = "v%d" % rng.randrange(10 ** 6)
                after = {key: value}
                request = ("PROPPATCH", BOX + col, prop_body({name: value}), {})
                expect = (207,)
            elif kind == "mkcol":
                path = self.fresh(client)
                before = self.snapshot([("col", path)])
                after = {("col", path): True}
                request = ("MKCOL", BOX + path, None, {})
                expect = (201,)
            elif kind == "move":
                path = rng.choice(files)
                dest = rng.choice(list(SHARED) + cols) + "/" + self.fresh(client)
                keys = [("file", path), ("file", dest)]
                before = self.snapshot(keys)
                after = {("file", path): None,
                         ("file", dest): dict(before[("file", path)], etag=UNKNOWN)}
                request = ("MOVE", BOX + path, None,
                           {"Destination": http.base + BOX + dest, "Overwrite": "F"})
                expect = (201,)
            elif kind == "copy":
                path = rng.choice(files)
                dest = rng.choice(list(SHARED) + cols) + "/" + self.fresh(client)
                keys = [("file", path), ("file", dest)]
                before = self.snapshot(keys)
                after = {("file", dest): dict(before[("file", path)], etag=UNKNOWN)}
                request = ("COPY", BOX + path, None,
                           {"Destination": http.base + BOX + dest, "Overwrite": "F"})
                expect = (201,)
            elif kind == "lock":
                path = rng.choice(files)
                before = self.snapshot([("file", path)])
                value = "v%d" % rng.randrange(10 ** 6)
                state = before[("file", path)]
                after = {("file", path): dict(state, etag=UNKNOWN,
                                              props=dict(state["props"], locked=value))}
                self.pending.append((before, after))
                try:
                    reply = yield self.locked_proppatch(http, path, value)
                except Exception:
                    return
                if reply is None:
                    return  # an unknown outcome: pending
                self.pending.remove((before, after))
                self.acknowledged(after, reply.header(b"etag"), ("LOCK", path))
                continue
            else:
                path = rng.choice(files)
                before = self.snapshot([("file", path)])
                after = {("file", path): None}
                request = ("DELETE", BOX + path, None, {})
                expect = (204,)
            self.pending.append((before, after))
            try:
                reply = yield http(*request)
            except Exception:
                return  # the server is gone: the operation stays pending
            self.statuses[reply.code] = self.statuses.get(reply.code, 0) + 1
            if reply.code in self.unknown:
                return  # outcome unknown: pending
            self.pending.remove((before, after))
            if reply.code not in expect:
                raise AssertionError("%s %s answered %d %r" % (
                    request[0], request[1], reply.code, reply.body[:300]))
            self.acknowledged(after, reply.header(b"etag"), request)

    @defer.inlineCallbacks
    def locked_proppatch(self, http, path, value):
        """LOCK ``path``, PROPPATCH it submitting the token, UNLOCK: the
        PROPPATCH's reply, or None when an answer left the outcome unknown."""
        self.held.add(path)
        reply = yield http("LOCK", BOX + path, LOCKINFO, {"Timeout": "Second-600", "Depth": "0"})
        self.statuses[reply.code] = self.statuses.get(reply.code, 0) + 1
        if reply.code in self.unknown:
            return None
        if reply.code != 200:
            raise AssertionError("LOCK %s answered %d %r" % (path, reply.code, reply.body[:300]))
        token = reply.header(b"lock-token").decode().strip("<>")
        patched = yield http("PROPPATCH", BOX + path, prop_body({"locked": value}),
                             {"If": "(<%s>)" % token})
        self.statuses[patched.code] = self.statuses.get(patched.code, 0) + 1
        if patched.code in self.unknown:
            return None
        if patched.code != 207:
            raise AssertionError("PROPPATCH %s under its lock answered %d %r"
                                 % (path, patched.code, patched.body[:300]))
        reply = yield http("UNLOCK", BOX + path, None, {"Lock-Token": "<%s>" % token})
        self.statuses[reply.code] = self.statuses.get(reply.code, 0) + 1
        if reply.code in self.unknown:
            return None  # the lock may still be there: the check releases it
        if reply.code != 204:
            raise AssertionError("UNLOCK %s answered %d" % (path, reply.code))
        self.held.discard(path)
        return patched

    def acknowledged(self, after, etag, request):
        """An operation answered as expected: the state it leaves."""
        for key, value in after.items():
            if isinstance(value, dict) and value.get("etag") == UNKNOWN:
                if etag is None:
                    raise AssertionError("%s %s answered no ETag" % tuple(request[:2]))
                value["etag"] = etag.decode()
        self.apply(after)
        self.touched.update(k[1] for k in after if k[0] == "file")
        self.acked += 1


class StormChecks:
    """What a test running a ``Storm`` checks (a mixin of a TestCase)."""

    @defer.inlineCallbacks
    def read_file(self, http, path):
        reply = yield http("GET", BOX + path)
        if reply.code == 404:
            return None
        self.assertEqual(reply.code, 200, (path, reply.body[:200]))
        digest = check_body(reply.body)
        self.assertIsNotNone(digest, "torn file %s" % path)
        found = yield http("PROPFIND", BOX + path, None, {"Depth": "0"})
        self.assertEqual(found.code, 207, found.body)
        root = etree.fromstring(found.body)
        values = {el.tag.split("}", 1)[1]: el.text or "" for el in root.iter("{%s}*" % NS)}
        return {"etag": reply.header(b"etag").decode(), "digest": digest, "props": values}

    @defer.inlineCallbacks
    def read_colprops(self, http, col):
        found = yield http("PROPFIND", BOX + col, None, {"Depth": "0"})
        self.assertEqual(found.code, 207, found.body)
        root = etree.fromstring(found.body)
        return {el.tag.split("}", 1)[1]: el.text or "" for el in root.iter("{%s}*" % NS)}

    @defer.inlineCallbacks
    def read_key(self, http, key):
        if key[0] == "file":
            value = yield self.read_file(http, key[1])
            return value
        if key[0] == "col":
            reply = yield http("PROPFIND", BOX + key[1], None, {"Depth": "0"})
            self.assertIn(reply.code, (207, 404))
            return True if reply.code == 207 else None
        values = yield self.read_colprops(http, key[1])
        return values.get(key[2])

    @staticmethod
    def same(expected, actual):
        if isinstance(expected, dict) and isinstance(actual, dict):
            return all(expected[k] == actual[k] for k in ("digest", "props")) and (
                expected["etag"] in (UNKNOWN, actual["etag"]))
        return expected == actual

    @defer.inlineCallbacks
    def verify(self, storm, http, data, cycle):
        where = "cycle %s, seed %d" % (cycle, self.seed)
        # locks an interrupted LOCK/PROPPATCH/UNLOCK left: released (gone
        # already is fine)
        for path in sorted(storm.held):
            found = yield http("PROPFIND", BOX + path, LOCKDISCOVERY, {"Depth": "0"})
            if found.code == 404:
                continue
            self.assertEqual(found.code, 207, (where, path, found.body[:300]))
            for href in etree.fromstring(found.body).iter("{DAV:}locktoken"):
                token = href.findtext("{DAV:}href").strip()
                reply = yield http("UNLOCK", BOX + path, None, {"Lock-Token": "<%s>" % token})
                self.assertIn(reply.code, (204, 409), (where, path, reply.body[:300]))
        storm.held = set()
        # operations killed in flight: wholly done or wholly not done
        for before, after in storm.pending:
            actual = {}
            for key in before:
                actual[key] = yield self.read_key(http, key)
            storm.touched.update(k[1] for k in before if k[0] == "file")
            if all(self.same(before[k], actual[k]) for k in before):
                storm.apply(before)  # not done (an unknown ETag cannot be before)
            elif all(self.same(after[k], actual[k]) for k in after):
                storm.apply(actual)
            else:
                self.fail("%s: half-done operation: before %r after %r actual %r"
                          % (where, before, after, actual))
        storm.pending = []
        # the bytes of every file written since the last check
        for path in sorted(storm.touched):
            if path in storm.files:
                actual = yield self.read_file(http, path)
                self.assertEqual(actual, storm.files[path], "%s: %s" % (where, path))
        storm.touched = set()
        for col in SHARED:
            values = yield self.read_colprops(http, col)
            expected = {name: v for (c, name), v in storm.colprops.items() if c == col}
            self.assertEqual(values, expected, "%s: properties of %s" % (where, col))
        # every listing shows exactly the expected names (no temporary, lock
        # or sidecar file), and every file in it the acknowledged ETag and
        # properties
        for col in [""] + sorted(storm.cols):
            reply = yield http("PROPFIND", BOX + col, None, {"Depth": "1"})
            self.assertEqual(reply.code, 207, (where, col, reply.body[:300]))
            root = etree.fromstring(reply.body)
            listed = {}
            for response in list(root.iterfind("{DAV:}response"))[1:]:
                href = response.findtext("{DAV:}href")
                self.assertNotIn(":", href, "%s: bookkeeping name listed" % where)
                name = href.rstrip("/").rsplit("/", 1)[-1]
                listed[name] = {
                    "etag": response.findtext(".//{DAV:}getetag"),
                    "props": {el.tag.split("}", 1)[1]: el.text or ""
                              for el in response.iter("{%s}*" % NS)}}
            if col == "":
                self.assertEqual(sorted(listed), sorted(storm.cols), where)
                continue
            expected = {p.rsplit("/", 1)[-1]: {"etag": v["etag"], "props": v["props"]}
                        for p, v in storm.files.items() if p.rsplit("/", 1)[0] == col}
            self.assertEqual(listed, expected, "%s: listing of /%s" % (where, col))
        # on disk: every sidecar parses, every file is whole
        box = os.path.join(data, "cell1", "box1")
        for directory, dirs, files in os.walk(box):
            for name in files:
                path = os.path.join(directory, name)
                if name == layout.SIDECAR:
                    with open(path, "rb") as f:
                        props.decode(f.read())
                elif not name.startswith(":"):
                    with open(path, "rb") as f:
                        self.assertIsNotNone(check_body(f.read()), "%s: torn %s" % (where, path))

