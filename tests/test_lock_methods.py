"""LOCK and UNLOCK (RFC 4918 §9.10, §9.11): new locks, refresh, unlock, the
live properties they show, who may take and remove them, OPTIONS and CORS."""
import os

from lxml import etree
from twisted.internet import defer
from twisted.trial import unittest

from personium_dav.auth.privileges import Ace, acl_body
from personium_dav.config import Config
from personium_dav.store import locks as store

from .support.helpers import BOX
from .support.steps import SERVICE_MKCOL, proppatch_body

from .support.locking import (D, PCODE, CELL_URL, PROPNAME_LOCKS, lockinfo, with_token, LockTestCase)


class LockTests(LockTestCase):
    @defer.inlineCallbacks
    def test_lock_answer(self):
        answer = yield self.lock("a.txt", headers={"Timeout": "Second-600"})
        self.assertEqual(answer.header("content-type"), "application/xml; charset=utf-8")
        doc = answer.xml()
        self.assertEqual(doc.tag, D + "prop")
        [active] = doc.findall("%slockdiscovery/%sactivelock" % (D, D))
        self.assertIsNotNone(active.find("%slocktype/%swrite" % (D, D)))
        self.assertIsNotNone(active.find("%slockscope/%sexclusive" % (D, D)))
        self.assertEqual(active.findtext(D + "depth"), "infinity")  # the default
        self.assertEqual(active.findtext(D + "timeout"), "Second-600")
        self.assertEqual(active.findtext("%slocktoken/%shref" % (D, D)), answer.token)
        self.assertEqual(active.findtext("%slockroot/%shref" % (D, D)), BOX + "a.txt")
        # the owner comes back as it was sent: children, attributes, text
        owner = active.find(D + "owner")
        self.assertEqual(owner.findtext(D + "href"), "mailto:me@example.org")
        self.assertEqual(owner.find("{urn:x}who").attrib, {"a": "1"})
        self.assertEqual(owner.find("{urn:x}who").text, "Me & co")
        self.assertEqual(owner.find("{urn:x}who").tail, " tail")
        self.assertTrue(answer.token.startswith("urn:uuid:"))

    @defer.inlineCallbacks
    def test_owner_is_optional_and_prefixes_are_normalised(self):
        answer = yield self.lock("a.txt", owner="")
        self.assertIsNone(answer.xml().find(".//%sowner" % D))
        yield self.request("UNLOCK", BOX + "a.txt", headers={"Lock-Token": "<%s>" % answer.token})
        body = (b'<lockinfo xmlns="DAV:"><lockscope><shared/></lockscope><locktype><write/>'
                b'</locktype><owner>litmus test suite</owner></lockinfo>')
        answer = yield self.request("LOCK", BOX + "a.txt", body)
        self.assertEqual(answer.code, 200, answer.body)
        self.assertIn(b"<D:owner xmlns:D=\"DAV:\">litmus test suite</D:owner>", answer.body)
        self.assertNotIn(b'xmlns="DAV:"', answer.body)

    @defer.inlineCallbacks
    def test_timeouts(self):
        maximum = self.config.max_lock_timeout
        cases = {"Second-100": "Second-100", "Infinite": "Second-%d" % maximum,
                 "Second-99999999999": "Second-%d" % maximum, None: "Second-%d" % maximum,
                 "Extension-9, Second-30": "Second-30", "Infinite, Second-5": "Second-%d" % maximum,
                 "Second-0": "Second-1", "Second-" + "9" * 5000: "Second-%d" % maximum,
                 "garbage": "Second-%d" % maximum, "Second-²": "Second-%d" % maximum}
        for i, (value, granted) in enumerate(cases.items()):
            path = "t%d.txt" % i
            answer = yield self.lock(path, headers={} if value is None else {"Timeout": value},
                                     status=201)
            self.assertEqual(answer.xml().findtext(".//%stimeout" % D), granted, value)

    @defer.inlineCallbacks
    def test_depth(self):
        answer = yield self.lock("col", depth="0")
        self.assertEqual(answer.xml().findtext(".//%sdepth" % D), "0")
        answer = yield self.lock("a.txt", depth="Infinity")
        self.assertEqual(answer.xml().findtext(".//%sdepth" % D), "infinity")
        answer = yield self.lock("col/m.txt", depth="1", status=400)
        self.assertError(answer, 400, "PR400-DV-0009")

    @defer.inlineCallbacks
    def test_bad_bodies(self):
        bodies = {
            b"<not-xml": "PR400-DV-0001",
            b'<!DOCTYPE x [<!ENTITY e "x">]><D:lockinfo xmlns:D="DAV:"/>': "PR400-DV-0001",
            b'<D:propfind xmlns:D="DAV:"/>': "PR400-DV-0002",
            b'<D:lockinfo xmlns:D="DAV:"><D:locktype><D:write/></D:locktype></D:lockinfo>':
                "PR400-DV-0002",
            b'<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope></D:lockinfo>':
                "PR400-DV-0002",
            lockinfo(locktype="<D:read/>"): "PR400-DV-0002",
            lockinfo(scope="both"): "PR400-DV-0002",
            b'<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/><D:shared/></D:lockscope>'
            b"<D:locktype><D:write/></D:locktype></D:lockinfo>": "PR400-DV-0002",
        }
        for body, code in bodies.items():
            answer = yield self.request("LOCK", BOX + "a.txt", body)
            self.assertError(answer, 400, code)
        self.assertEqual((yield self.discovered("a.txt")), {BOX + "a.txt": []})

    @defer.inlineCallbacks
    def test_unknown_elements_ignored(self):
        body = (b'<D:lockinfo xmlns:D="DAV:" xmlns:x="urn:x"><x:extra/><D:lockscope><D:shared/>'
                b"</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>")
        answer = yield self.request("LOCK", BOX + "a.txt", body)
        self.assertEqual(answer.code, 200, answer.body)

    @defer.inlineCallbacks
    def test_box_and_service_collections_take_locks(self):
        made = yield self.request("MKCOL", BOX + "svc", SERVICE_MKCOL,
                                  {"Content-Type": "application/xml"})
        self.assertEqual(made.code, 201)
        answer = yield self.lock("svc/__src", depth="0")
        put = yield self.request("PUT", BOX + "svc/__src/a.js", b"x",
                                 {"Content-Type": "text/javascript"})
        self.assertLocked(put, BOX + "svc/__src/")
        put = yield self.request("PUT", BOX + "svc/__src/a.js", b"x",
                                 dict(with_token(answer.token, BOX + "svc/__src/"),
                                      **{"Content-Type": "text/javascript"}))
        self.assertEqual(put.code, 201, put.body)
        # depth infinity would reach the exclusive lock of __src
        yield self.lock("svc", status=423)
        answer = yield self.lock("svc", depth="0")
        patch = yield self.request("PROPPATCH", BOX + "svc", proppatch_body("<z:a>1</z:a>"))
        self.assertLocked(patch, BOX + "svc/")
        answer = yield self.lock("", depth="0")  # the box itself
        self.assertEqual(answer.xml().findtext(".//%slockroot/%shref" % (D, D)), BOX)
        self.assertLocked((yield self.request("MKCOL", BOX + "new")), BOX)


class LiveProperties(LockTestCase):
    @defer.inlineCallbacks
    def test_lockdiscovery_and_supportedlock(self):
        answer = yield self.request("PROPFIND", BOX + "a.txt", PROPNAME_LOCKS, {"Depth": "0"})
        self.assertEqual(answer.code, 207)
        prop = answer.xml().find(".//%spropstat/%sprop" % (D, D))
        self.assertEqual(len(prop.find(D + "lockdiscovery")), 0)
        entries = prop.findall("%ssupportedlock/%slockentry" % (D, D))
        self.assertEqual(sorted(etree.QName(e.find(D + "lockscope")[0]).localname
                                for e in entries), ["exclusive", "shared"])
        for entry in entries:
            self.assertIsNotNone(entry.find("%slocktype/%swrite" % (D, D)))
        lock = yield self.lock("col")
        found = yield self.discovered("col", "1")
        self.assertEqual(sorted(found), [BOX + "col/", BOX + "col/m.txt"])
        for href, active in found.items():
            self.assertEqual([a.findtext("%slocktoken/%shref" % (D, D)) for a in active],
                             [lock.token], href)
            self.assertEqual(active[0].findtext("%slockroot/%shref" % (D, D)), BOX + "col/")
        self.assertEqual((yield self.discovered("a.txt")), {BOX + "a.txt": []})
        # allprop: lockdiscovery, not supportedlock (docs/conformance.md); by include, both
        for body, supported in ((b"", False), (b'<D:propfind xmlns:D="DAV:"><D:allprop/>'
                                               b"<D:include><D:supportedlock/></D:include>"
                                               b"</D:propfind>", True)):
            answer = yield self.request("PROPFIND", BOX + "col/m.txt", body, {"Depth": "0"})
            doc = answer.xml()
            self.assertEqual(doc.findtext(".//%sactivelock/%slocktoken/%shref" % (D, D, D)),
                             lock.token)
            self.assertEqual(doc.find(".//%ssupportedlock" % D) is not None, supported)
        answer = yield self.request("PROPFIND", BOX + "col/m.txt",
                                    b'<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>',
                                    {"Depth": "0"})
        names = {el.tag for el in answer.xml().find(".//%sprop" % D)}
        self.assertLessEqual({D + "lockdiscovery", D + "supportedlock"}, names)
        self.assertNotIn(lock.token.encode(), answer.body)

    @defer.inlineCallbacks
    def test_protected(self):
        yield self.lock("a.txt")
        for name in ("lockdiscovery", "supportedlock"):
            body = ('<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:%s/></D:prop></D:set>'
                    "</D:propertyupdate>" % name).encode()
            for path in ("col", "col/m.txt"):
                answer = yield self.request("PROPPATCH", BOX + path, body)
                self.assertEqual(answer.code, 207, answer.body)
                self.assertIsNotNone(answer.xml().find(
                    ".//%serror/%scannot-modify-protected-property" % (D, D)))


class SharedAndExclusive(LockTestCase):
    @defer.inlineCallbacks
    def test_conflicts(self):
        first = yield self.lock("a.txt", "shared")
        second = yield self.lock("a.txt", "shared")
        self.assertNotEqual(first.token, second.token)
        answer = yield self.lock("a.txt", "exclusive", status=423)
        self.assertEqual(answer.xml().findtext(PCODE), "PR423-DV-0002")
        found = yield self.discovered("a.txt")
        self.assertEqual(sorted(a.findtext("%slocktoken/%shref" % (D, D))
                                for a in found[BOX + "a.txt"]),
                         sorted([first.token, second.token]))
        # either holder may write (one token per locked resource)
        for lock in (first, second):
            self.assertEqual((yield self.status("PUT", "a.txt", b"x", with_token(lock.token))),
                             204)
        self.assertLocked((yield self.request("PUT", BOX + "a.txt", b"x")), BOX + "a.txt")
        # an exclusive lock excludes a shared one
        yield self.lock("col/m.txt", "exclusive")
        yield self.lock("col/m.txt", "shared", status=423)

    @defer.inlineCallbacks
    def test_depth_infinity_against_members(self):
        yield self.lock("col/m.txt", "exclusive")
        answer = yield self.lock("col", "exclusive", status=423)  # infinity reaches m.txt
        self.assertEqual(answer.xml().findtext(".//%shref" % D), BOX + "col/m.txt")
        yield self.lock("col", "exclusive", depth="0")  # depth 0 does not
        yield self.lock("col", "shared", depth="infinity", status=423)


class RefreshTests(LockTestCase):
    @defer.inlineCallbacks
    def test_refresh_and_expiry(self):
        lock = yield self.lock("a.txt", headers={"Timeout": "Second-100"})
        self.clock.now += 90
        answer = yield self.request("LOCK", BOX + "a.txt", headers=dict(
            with_token(lock.token), Timeout="Second-100"))
        self.assertEqual(answer.code, 200, answer.body)
        self.assertIsNone(answer.header("lock-token"))
        active = answer.xml().find(".//%sactivelock" % D)
        self.assertEqual(active.findtext(D + "timeout"), "Second-100")
        self.assertEqual(active.findtext("%slocktoken/%shref" % (D, D)), lock.token)
        self.assertIsNotNone(active.find(D + "owner"))  # kept
        self.clock.now += 99
        self.assertLocked((yield self.request("PUT", BOX + "a.txt", b"x")), BOX + "a.txt")
        [active] = (yield self.discovered("a.txt"))[BOX + "a.txt"]
        self.assertEqual(active.findtext(D + "timeout"), "Second-1")
        self.clock.now += 1  # expired: no lock, no token needed
        self.assertEqual((yield self.discovered("a.txt")), {BOX + "a.txt": []})
        self.assertEqual((yield self.status("PUT", "a.txt", b"x")), 204)
        answer = yield self.request("LOCK", BOX + "a.txt", headers=with_token(lock.token))
        self.assertError(answer, 412, "PR412-DV-0003")
        # the next change of the table prunes it from the disk
        yield self.lock("col/m.txt")
        with open(os.path.join(self.data, "cell1", "box1", store.TABLE), "rb") as f:
            self.assertNotIn(lock.token.encode(), f.read())

    @defer.inlineCallbacks
    def test_refresh_keeps_the_granted_timeout_without_a_header(self):
        lock = yield self.lock("a.txt", headers={"Timeout": "Second-50"})
        self.clock.now += 40
        answer = yield self.request("LOCK", BOX + "a.txt", headers=with_token(lock.token))
        self.assertEqual(answer.xml().findtext(".//%stimeout" % D), "Second-50")

    @defer.inlineCallbacks
    def test_indirect_refresh_through_a_member(self):
        lock = yield self.lock("col", headers={"Timeout": "Second-60"})
        answer = yield self.request("LOCK", BOX + "col/m.txt", headers=dict(
            with_token(lock.token), Timeout="Second-3000"))
        self.assertEqual(answer.code, 200, answer.body)
        active = answer.xml().find(".//%sactivelock" % D)
        self.assertEqual(active.findtext("%slockroot/%shref" % (D, D)), BOX + "col/")
        self.assertEqual(active.findtext(D + "timeout"), "Second-3000")

    @defer.inlineCallbacks
    def test_refresh_refusals(self):
        lock = yield self.lock("a.txt")
        answer = yield self.request("LOCK", BOX + "a.txt")
        self.assertError(answer, 400, "PR400-DV-0010", "Header If is required.")
        answer = yield self.request("LOCK", BOX + "a.txt", headers={"If": '(["1-1"])'})
        self.assertError(answer, 400, "PR400-DV-0010")
        answer = yield self.request("LOCK", BOX + "a.txt", headers=with_token("urn:uuid:nope"))
        self.assertError(answer, 412, "PR412-DV-0003")
        # a lock on another resource does not refresh from here
        answer = yield self.request("LOCK", BOX + "col/m.txt", headers=with_token(lock.token))
        self.assertError(answer, 412, "PR412-DV-0003")


class UnlockTests(LockTestCase):
    def unlock(self, path, token, headers=None):
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Lock-Token"] = token
        return self.request("UNLOCK", BOX + path, headers=hdrs)

    @defer.inlineCallbacks
    def test_unlock(self):
        lock = yield self.lock("a.txt")
        answer = yield self.unlock("a.txt", "<%s>" % lock.token)
        self.assertEqual((answer.code, answer.body), (204, b""))
        self.assertEqual((yield self.status("PUT", "a.txt", b"x")), 204)
        answer = yield self.unlock("a.txt", "<%s>" % lock.token)
        self.assertEqual(answer.code, 409)
        doc = answer.xml()
        self.assertIsNotNone(doc.find(D + "lock-token-matches-request-uri"))
        self.assertEqual(doc.findtext(PCODE), "PR409-DV-0002")

    @defer.inlineCallbacks
    def test_through_a_member_of_a_depth_infinity_lock(self):
        lock = yield self.lock("col")
        answer = yield self.unlock("col/m.txt", "<%s>" % lock.token)
        self.assertEqual(answer.code, 204, answer.body)
        self.assertEqual(self.server.store.locks.read("cell1", "box1"), [])

    @defer.inlineCallbacks
    def test_refusals(self):
        lock = yield self.lock("a.txt")
        answer = yield self.unlock("a.txt", None)
        self.assertError(answer, 400, "PR400-DV-0010", "Header Lock-Token is required.")
        for bad in ("<a b>", "<>", "<<x>>", "  "):
            answer = yield self.unlock("a.txt", bad)
            self.assertEqual(answer.code, 400, bad)
        answer = yield self.unlock("a.txt", "<opaquelocktoken:foobar>")
        self.assertEqual(answer.code, 409)
        answer = yield self.unlock("col/m.txt", "<%s>" % lock.token)  # not in its scope
        self.assertEqual(answer.code, 409)
        answer = yield self.unlock("a.txt", lock.token)  # without <>: accepted
        self.assertEqual(answer.code, 204)

    @defer.inlineCallbacks
    def test_who_may_unlock(self):
        accounts = self.server.auth.accounts
        accounts.add_role("cell1", "editor")
        accounts.add_role("cell1", "admin")
        accounts.add_account("cell1", "me", "pw-me", ["editor"])
        accounts.add_account("cell1", "boss", "pw-boss", ["admin"])
        yield self.request("ACL", BOX, acl_body([
            Ace("editor", frozenset({"read", "write"})),
            Ace("admin", frozenset({"read", "write", "write-acl"}))], CELL_URL))

        def as_(name, roles):
            return {"Authorization": "Bearer " + self.server.auth.tokens.issue(
                "cell1", name, roles)}

        me, boss = as_("me", ["editor"]), as_("boss", ["admin"])
        lock = yield self.lock("a.txt")  # the owner's
        answer = yield self.unlock("a.txt", "<%s>" % lock.token, me)
        self.assertError(answer, 403, "PR403-AU-0002")
        answer = yield self.unlock("a.txt", "<%s>" % lock.token, boss)  # write-acl
        self.assertEqual(answer.code, 204, answer.body)
        mine = yield self.lock("a.txt", headers=me)
        answer = yield self.unlock("a.txt", "<%s>" % mine.token, me)
        self.assertEqual(answer.code, 204, answer.body)
        mine = yield self.lock("a.txt", headers=me)
        answer = yield self.request("UNLOCK", BOX + "a.txt", anonymous=True,
                                    headers={"Lock-Token": "<%s>" % mine.token})
        self.assertError(answer, 401, "PR401-AU-0001")
        self.assertEqual(len(self.server.store.locks.read("cell1", "box1")), 1)


class LockPrivileges(LockTestCase):
    """LOCK of a resource needs write-content on it (RFC 3744: DAV:write
    covers LOCK), of an unmapped URL bind on its collection; UNLOCK
    write-content."""

    @defer.inlineCallbacks
    def test_privileges(self):
        accounts = self.server.auth.accounts
        for role in ("reader", "binder", "writer"):
            accounts.add_role("cell1", role)
            accounts.add_account("cell1", role, "pw", [role])
        yield self.request("ACL", BOX, acl_body([
            Ace("reader", frozenset({"read"})), Ace("binder", frozenset({"read", "bind"})),
            Ace("writer", frozenset({"read", "write-content"}))], CELL_URL))

        def as_(role):
            return {"Authorization": "Bearer " + self.server.auth.tokens.issue(
                "cell1", role, [role])}

        cases = [("reader", "a.txt", 403), ("binder", "a.txt", 403), ("writer", "a.txt", 200),
                 ("reader", "new.txt", 403), ("writer", "new.txt", 403),
                 ("binder", "new.txt", 201)]
        for role, path, status in cases:
            answer = yield self.request("LOCK", BOX + path, lockinfo("shared"), as_(role))
            self.assertEqual(answer.code, status, (role, path, answer.body))
        answer = yield self.request("LOCK", BOX + "a.txt", lockinfo("shared"), anonymous=True)
        self.assertError(answer, 401, "PR401-AU-0001")


class OptionsCorsAndLog(LockTestCase):
    @defer.inlineCallbacks
    def test_options(self):
        for path in ("", "a.txt", "col/", "new.txt"):
            answer = yield self.request("OPTIONS", BOX + path)
            self.assertEqual(answer.header("dav"), "1, 2", path)
            self.assertIn("LOCK", answer.header("allow"))

    @defer.inlineCallbacks
    def test_cors(self):
        answer = yield self.request("OPTIONS", BOX + "a.txt", anonymous=True, headers={
            "Origin": "http://app.example", "Access-Control-Request-Method": "LOCK"})
        self.assertEqual(answer.code, 200)
        methods = [m.strip() for m in answer.header("access-control-allow-methods").split(",")]
        self.assertLessEqual({"LOCK", "UNLOCK"}, set(methods))
        allowed = [h.strip().lower() for h in
                   answer.header("access-control-allow-headers").split(",")]
        self.assertLessEqual({"if", "lock-token", "timeout"}, set(allowed))
        answer = yield self.lock("a.txt", headers={"Origin": "http://app.example"})
        exposed = [h.strip() for h in answer.header("access-control-expose-headers").split(",")]
        self.assertIn("Lock-Token", exposed)

    @defer.inlineCallbacks
    def test_event_log(self):
        from personium_dav.logs import eventlog

        lock = yield self.lock("a.txt", headers={"X-Personium-RequestKey": "lk"})
        yield self.lock("col", headers={"X-Personium-RequestKey": "lc"})
        yield self.lock("made.txt", status=201, headers={"X-Personium-RequestKey": "ln"})
        yield self.request("UNLOCK", BOX + "a.txt", headers={
            "Lock-Token": "<%s>" % lock.token, "X-Personium-RequestKey": "ul"})
        with open(os.path.join(self.data, "cell1", eventlog.DIRECTORY, eventlog.NAME)) as f:
            lines = [line.split(",") for line in f.read().splitlines()]
        found = {fields[2].strip('"'): (fields[6].strip('"'), fields[8].strip('"'))
                 for fields in lines}
        self.assertEqual(found["lk"], ("davfile.lock", "200"))
        self.assertEqual(found["lc"], ("davcol.lock", "200"))
        self.assertEqual(found["ln"], ("davfile.lock", "201"))
        self.assertEqual(found["ul"], ("davfile.unlock", "204"))


class TimeoutOption(unittest.TestCase):
    def test_max_lock_timeout(self):
        from twisted.python import usage

        from personium_dav.ops.tap import Options

        options = Options()
        options.parseOptions(["--max-lock-timeout", "600"])
        self.assertEqual(options.config().max_lock_timeout, 600)
        defaults = Options()
        defaults.parseOptions([])
        self.assertEqual(defaults.config().max_lock_timeout, Config().max_lock_timeout)
        for bad in ("0", "-5", "x"):
            with self.assertRaises(usage.UsageError):
                Options().parseOptions(["--max-lock-timeout", bad])


