"""What locks do to every other write (RFC 4918 §7): tokens to submit, locks
that follow MOVE, COPY and DELETE, and LOCK of an unmapped URL."""
import os

from twisted.internet import defer

from personium_dav.auth.privileges import Ace, acl_body
from personium_dav.config import Config

from .support.helpers import BOX
from .support.steps import SERVICE_MKCOL, proppatch_body

from .support.locking import (D, PCODE, CELL_URL, lockinfo, with_token, LockTestCase)


class WritesOnLockedResources(LockTestCase):
    """RFC 4918 §7.5: every write needs the lock token in If (else 423 with
    D:lock-token-submitted); reads and COPY from a locked resource do not."""

    @defer.inlineCallbacks
    def test_a_locked_file(self):
        lock = yield self.lock("a.txt")
        href = BOX + "a.txt"
        attempts = [
            ("PUT", "a.txt", b"new", {}),
            ("PROPPATCH", "a.txt", proppatch_body("<z:a>1</z:a>"), {}),
            ("DELETE", "a.txt", b"", {}),
            ("MOVE", "a.txt", b"", {"Destination": BOX + "moved.txt"}),
            ("COPY", "col/m.txt", b"", {"Destination": BOX + "a.txt"}),  # onto it
            ("MOVE", "col/m.txt", b"", {"Destination": BOX + "a.txt"}),
            ("LOCK", "a.txt", lockinfo("shared"), {}),
        ]
        for method, path, body, headers in attempts:
            answer = yield self.request(method, BOX + path, body, headers)
            if method == "LOCK":
                self.assertEqual(answer.code, 423, answer.body)
                self.assertEqual(answer.xml().findtext(PCODE), "PR423-DV-0002")
                self.assertEqual(answer.xml().findtext(
                    "%sno-conflicting-lock/%shref" % (D, D)), href)
            else:
                self.assertLocked(answer, href)
        # nothing changed
        self.assertEqual((yield self.request("GET", BOX + "a.txt")).body, b"a")
        self.assertEqual((yield self.status("PROPFIND", "col/m.txt", headers={"Depth": "0"})), 207)
        # reads, and COPY from it, need no token
        self.assertEqual((yield self.status("GET", "a.txt")), 200)
        self.assertEqual((yield self.status("PROPFIND", "a.txt", headers={"Depth": "0"})), 207)
        self.assertEqual((yield self.status("COPY", "a.txt", headers={
            "Destination": BOX + "copy.txt"})), 201)
        self.assertEqual((yield self.discovered("copy.txt")), {BOX + "copy.txt": []})
        # with the token they all work
        token = with_token(lock.token)
        self.assertEqual((yield self.status("PUT", "a.txt", b"new", token)), 204)
        self.assertEqual((yield self.status("PROPPATCH", "a.txt", proppatch_body(
            "<z:a>1</z:a>"), token)), 207)
        # an untagged list is about the request URL (the source here): the
        # destination's token is submitted tagged with it
        self.assertEqual((yield self.status("COPY", "col/m.txt", headers=dict(
            token, Destination=BOX + "a.txt"))), 412)
        self.assertEqual((yield self.status("COPY", "col/m.txt", headers=dict(
            with_token(lock.token, BOX + "a.txt"), Destination=BOX + "a.txt"))), 204)
        self.assertEqual((yield self.request("GET", BOX + "a.txt")).body, b"m")

    @defer.inlineCallbacks
    def test_a_tagged_token_also_counts(self):
        lock = yield self.lock("a.txt")
        for tag in (BOX + "a.txt", "http://elsewhere.example" + BOX + "a.txt"):
            answer = yield self.request("PUT", BOX + "a.txt", b"x", with_token(lock.token, tag))
            self.assertEqual(answer.code, 204, answer.body)

    @defer.inlineCallbacks
    def test_a_depth_0_collection_lock(self):
        """It guards the membership, not the members' content."""
        lock = yield self.lock("col", depth="0")
        href = BOX + "col/"
        self.assertLocked((yield self.request("PUT", BOX + "col/new.txt", b"x")), href)
        self.assertLocked((yield self.request("MKCOL", BOX + "col/sub")), href)
        self.assertLocked((yield self.request("DELETE", BOX + "col/m.txt")), href)
        self.assertLocked((yield self.request("MOVE", BOX + "a.txt", headers={
            "Destination": BOX + "col/a.txt"})), href)
        self.assertLocked((yield self.request("LOCK", BOX + "col/new.txt", lockinfo())), href)
        self.assertEqual((yield self.status("PUT", "col/m.txt", b"changed")), 204)
        self.assertEqual((yield self.status("PROPPATCH", "col/m.txt", proppatch_body(
            "<z:a>1</z:a>"))), 207)
        self.assertEqual((yield self.status("PUT", "col/new.txt", b"x",
                                            with_token(lock.token, BOX + "col/"))), 201)
        # RFC 4918 §10.4.4: an untagged list is about the request URL, which
        # a depth-0 lock on its collection does not cover
        self.assertEqual((yield self.status("MKCOL", "col/sub", headers=with_token(
            lock.token))), 412)
        self.assertEqual((yield self.status("MKCOL", "col/sub", headers=with_token(
            lock.token, BOX + "col"))), 201)

    @defer.inlineCallbacks
    def test_a_depth_infinity_lock_covers_members_made_later(self):
        lock = yield self.lock("col")
        tagged = with_token(lock.token, self.url(BOX + "col/"))
        self.assertEqual((yield self.status("MKCOL", "col/later", headers=tagged)), 201)
        self.assertEqual((yield self.status("PUT", "col/later/deep.txt", b"x", tagged)), 201)
        href = BOX + "col/"
        self.assertLocked((yield self.request("PUT", BOX + "col/later/deep.txt", b"y")), href)
        self.assertLocked((yield self.request("PROPPATCH", BOX + "col/later/deep.txt",
                                              proppatch_body("<z:a>1</z:a>"))), href)
        self.assertLocked((yield self.request("DELETE", BOX + "col/later")), href)
        found = yield self.discovered("col/later/deep.txt")
        [active] = found[BOX + "col/later/deep.txt"]
        self.assertEqual(active.findtext("%slockroot/%shref" % (D, D)), href)
        # no new lock inside an exclusive one, even for its holder
        answer = yield self.request("LOCK", BOX + "col/m.txt", lockinfo(), tagged)
        self.assertEqual(answer.code, 423)
        self.assertEqual(answer.xml().findtext(PCODE), "PR423-DV-0002")

    @defer.inlineCallbacks
    def test_delete_of_a_tree_with_a_locked_member(self):
        member = yield self.lock("col/m.txt")
        answer = yield self.request("DELETE", BOX + "col", headers={"X-Personium-Recursive": "true"})
        self.assertLocked(answer, BOX + "col/m.txt")
        answer = yield self.request("MOVE", BOX + "col", headers={"Destination": BOX + "c2"})
        self.assertLocked(answer, BOX + "col/m.txt")
        answer = yield self.request("DELETE", BOX + "col", headers=dict(
            with_token(member.token, BOX + "col/m.txt"), **{"X-Personium-Recursive": "true"}))
        self.assertEqual(answer.code, 204, answer.body)
        self.assertEqual(self.server.store.locks.read("cell1", "box1"), [])

    @defer.inlineCallbacks
    def test_the_token_of_another_principal_does_not_count(self):
        accounts = self.server.auth.accounts
        accounts.add_role("cell1", "editor")
        accounts.add_account("cell1", "me", "pw-me", ["editor"])
        yield self.request("ACL", BOX, acl_body([Ace("editor", frozenset({"all"}))], CELL_URL))
        me = {"Authorization": "Bearer " + self.server.auth.tokens.issue("cell1", "me",
                                                                           ["editor"])}
        lock = yield self.lock("a.txt")  # the owner's lock
        answer = yield self.request("PUT", BOX + "a.txt", b"x", dict(with_token(lock.token), **me))
        self.assertLocked(answer, BOX + "a.txt")
        mine = yield self.lock("col/m.txt", headers=me)
        answer = yield self.request("PUT", BOX + "col/m.txt", b"x", with_token(mine.token))
        self.assertLocked(answer, BOX + "col/m.txt")
        answer = yield self.request("PUT", BOX + "col/m.txt", b"x", dict(with_token(mine.token),
                                                                          **me))
        self.assertEqual(answer.code, 204, answer.body)


class LocksFollowTheTree(LockTestCase):
    """DELETE and MOVE take a resource's locks away; COPY copies none; a
    MOVE destination is not locked by the source's lock."""

    @defer.inlineCallbacks
    def test_delete(self):
        lock = yield self.lock("a.txt")
        self.assertEqual((yield self.status("DELETE", "a.txt", headers=with_token(lock.token))),
                         204)
        self.assertEqual(self.server.store.locks.read("cell1", "box1"), [])
        self.assertEqual((yield self.status("PUT", "a.txt", b"again")), 201)
        self.assertEqual((yield self.discovered("a.txt")), {BOX + "a.txt": []})

    @defer.inlineCallbacks
    def test_move(self):
        lock = yield self.lock("a.txt")
        answer = yield self.request("MOVE", BOX + "a.txt", headers=dict(
            with_token(lock.token), Destination=BOX + "b.txt"))
        self.assertEqual(answer.code, 201, answer.body)
        self.assertEqual((yield self.discovered("b.txt")), {BOX + "b.txt": []})
        self.assertEqual((yield self.status("PUT", "b.txt", b"x")), 204)
        self.assertEqual((yield self.status("PUT", "a.txt", b"x")), 201)
        self.assertEqual(self.server.store.locks.read("cell1", "box1"), [])

    @defer.inlineCallbacks
    def test_move_of_a_collection_with_locked_members(self):
        member = yield self.lock("col/m.txt")
        col = yield self.lock("col", depth="0")
        headers = {"If": "<%s> (<%s>) <%s> (<%s>)" % (BOX + "col/m.txt", member.token,
                                                      BOX + "col/", col.token),
                   "Destination": BOX + "moved"}
        answer = yield self.request("MOVE", BOX + "col", headers=headers)
        self.assertEqual(answer.code, 201, answer.body)
        self.assertEqual(self.server.store.locks.read("cell1", "box1"), [])
        self.assertEqual((yield self.status("PUT", "moved/m.txt", b"x")), 204)

    @defer.inlineCallbacks
    def test_moved_into_a_locked_collection(self):
        col = yield self.lock("col")
        answer = yield self.request("MOVE", BOX + "a.txt", headers={"Destination": BOX + "col/a"})
        self.assertLocked(answer, BOX + "col/")
        answer = yield self.request("MOVE", BOX + "a.txt", headers=dict(
            with_token(col.token, BOX + "col/"), Destination=BOX + "col/a"))
        self.assertEqual(answer.code, 201, answer.body)
        self.assertLocked((yield self.request("PUT", BOX + "col/a", b"x")), BOX + "col/")

    @defer.inlineCallbacks
    def test_overwrite_keeps_the_destination_lock(self):
        lock = yield self.lock("a.txt")
        answer = yield self.request("MOVE", BOX + "col/m.txt", headers=dict(
            with_token(lock.token, BOX + "a.txt"), Destination=BOX + "a.txt"))
        self.assertEqual(answer.code, 204, answer.body)
        self.assertEqual((yield self.request("GET", BOX + "a.txt")).body, b"m")
        self.assertLocked((yield self.request("PUT", BOX + "a.txt", b"x")), BOX + "a.txt")

    @defer.inlineCallbacks
    def test_copy_copies_no_lock(self):
        yield self.lock("col")
        answer = yield self.request("COPY", BOX + "col", headers={"Destination": BOX + "c2"})
        self.assertEqual(answer.code, 201, answer.body)
        found = yield self.discovered("c2", "1")
        self.assertEqual(found, {BOX + "c2/": [], BOX + "c2/m.txt": []})
        self.assertEqual((yield self.status("PUT", "c2/m.txt", b"x")), 204)


class UnmappedLock(LockTestCase):
    """RFC 4918 §7.3: LOCK of an unmapped URL makes an empty, locked file."""

    @defer.inlineCallbacks
    def test_empty_locked_file(self):
        answer = yield self.lock("new.js", status=201)
        self.assertRegex(answer.header("etag"), r'^"1-\d+"$')
        got = yield self.request("GET", BOX + "new.js")
        self.assertEqual((got.code, got.body), (200, b""))
        self.assertIn(got.header("content-type"), ("text/javascript", "application/javascript"))
        self.assertLocked((yield self.request("PUT", BOX + "new.js", b"x")), BOX + "new.js")
        answer = yield self.request("PUT", BOX + "new.js", b"x", with_token(answer.token))
        self.assertEqual(answer.code, 204)
        yield self.lock("noext", status=201)
        got = yield self.request("GET", BOX + "noext")
        self.assertEqual(got.header("content-type"), "application/octet-stream")

    @defer.inlineCallbacks
    def test_where_it_cannot(self):
        yield self.request("MKCOL", BOX + "svc", SERVICE_MKCOL, {"Content-Type": "application/xml"})
        answer = yield self.request("LOCK", BOX + "svc/__src/new.js", lockinfo())
        self.assertError(answer, 405, "PR405-MC-0001")
        self.assertEqual(answer.header("allow"), "OPTIONS, PUT")
        answer = yield self.request("LOCK", BOX + "svc/run", lockinfo())
        self.assertError(answer, 405, "PR405-MC-0001")
        self.assertEqual(answer.header("allow"), "OPTIONS, GET, HEAD, POST, PUT, DELETE")
        answer = yield self.request("LOCK", BOX + "missing/new.txt", lockinfo())
        self.assertError(answer, 409, "PR409-DV-0001")
        answer = yield self.request("LOCK", BOX + "bad:name", lockinfo())
        self.assertError(answer, 403, "PR403-DV-0004")
        answer = yield self.request("UNLOCK", BOX + "nothing", headers={"Lock-Token": "<urn:x>"})
        self.assertError(answer, 404, "PR404-DV-0001")
        self.assertEqual(sorted(os.listdir(os.path.join(self.data, "cell1", "box1",
                                                        "svc", "__src"))), [":props.xml"])

    @defer.inlineCallbacks
    def test_members_limit(self):
        self.server.config = Config(durable=False, max_members=2)
        answer = yield self.request("LOCK", BOX + "third.txt", lockinfo())
        self.assertError(answer, 400, "PR400-DV-0007")


class Rfc4918Semantics(LocksFollowTheTree, UnmappedLock):
    config = Config(durable=False, collection_semantics="rfc4918")

    @defer.inlineCallbacks
    def test_delete_of_a_locked_tree(self):
        yield self.lock("col/m.txt")
        self.assertLocked((yield self.request("DELETE", BOX + "col")), BOX + "col/m.txt")


