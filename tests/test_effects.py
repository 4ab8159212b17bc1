"""A write is authorized for its effect, decided under its lock: COPY and
MOVE over an existing resource, a PUT or LOCK that finds a file where the
URL named nothing, destinations inside or above the source, and races
between writes, each over HTTP (docs/security.md, "Privileges of effects";
docs/reliability.md, "Races")."""
import os
import threading

from twisted.internet import defer

from personium_dav.auth.privileges import Ace, Principal, serialize_acl
from personium_dav.config import Config
from personium_dav.store.box import Caller

from .support.helpers import BOX
from .support.locking import lockinfo
from .support.steps import DavSteps, proppatch_body

OWNER = Caller(Principal(owner=True))
NOTE = proppatch_body('<z:note>mine</z:note>')


class EffectsTestCase(DavSteps):
    """cell1 with role ``r`` held by account ``me``; ``r`` may only ``bind``
    in ``inbox/`` and do anything in ``uphome/``."""

    @defer.inlineCallbacks
    def setUp(self):
        DavSteps.setUp(self)
        accounts = self.server.auth.accounts
        accounts.add_role("cell1", "r")
        accounts.add_account("cell1", "me", "pw-me", ["r"])
        self.me = {"Authorization": "Bearer " + self.server.auth.tokens.issue("cell1", "me")}
        for name in ("inbox", "uphome"):
            yield self.mkcol(BOX + name)
        yield self.put(BOX + "inbox/report.txt", b"the owner's report")
        yield self.request("PROPPATCH", BOX + "inbox/report.txt", NOTE)
        self.box = self.server.store.box("cell1", "box1")
        self.acl(["inbox"], "bind")
        self.acl(["uphome"], "all")
        yield self.put(BOX + "uphome/x.txt", b"the caller's bytes")

    def acl(self, names, *privileges):
        self.box.set_acl(OWNER, names, serialize_acl([Ace("r", frozenset(privileges))]))

    def as_me(self, method, path, body=b"", headers=None):
        return self.request(method, path, body, dict(headers or {}, **self.me))

    def transfer(self, method, source, target, headers=None):
        return self.as_me(method, BOX + source, headers=dict(
            headers or {}, Destination="http://localhost" + BOX + target))

    @defer.inlineCallbacks
    def body_of(self, path):
        answer = yield self.request("GET", path)
        self.assertEqual(answer.code, 200, answer.body)
        return answer.body

    @defer.inlineCallbacks
    def note_of(self, path):
        answer = yield self.request("PROPFIND", path, b"", {"Depth": "0"})
        return b"mine</" in answer.body


class OverwritingNeedsMoreThanBind(EffectsTestCase):
    @defer.inlineCallbacks
    def test_bind_only_cannot_put_or_delete_there(self):
        answer = yield self.as_me("PUT", BOX + "inbox/report.txt", b"mine")
        self.assertError(answer, 403, "PR403-AU-0002")
        answer = yield self.as_me("DELETE", BOX + "inbox/report.txt")
        self.assertError(answer, 403, "PR403-AU-0002")
        answer = yield self.as_me("PUT", BOX + "inbox/new.txt", b"mine")
        self.assertEqual(answer.code, 201, answer.body)  # bind is what a create needs

    @defer.inlineCallbacks
    def test_copy_over_an_existing_file(self):
        for headers in ({}, {"Overwrite": "T"}):
            answer = yield self.transfer("COPY", "uphome/x.txt", "inbox/report.txt", headers)
            self.assertError(answer, 403, "PR403-AU-0002")
        self.assertEqual((yield self.body_of(BOX + "inbox/report.txt")), b"the owner's report")
        self.assertTrue((yield self.note_of(BOX + "inbox/report.txt")))
        answer = yield self.transfer("COPY", "uphome/x.txt", "inbox/copy.txt")
        self.assertEqual(answer.code, 201, answer.body)

    @defer.inlineCallbacks
    def test_move_over_an_existing_file(self):
        self.acl(["inbox", "report.txt"], "read")  # an ACL of its own, that must stay
        answer = yield self.transfer("MOVE", "uphome/x.txt", "inbox/report.txt")
        self.assertError(answer, 403, "PR403-AU-0002")
        self.assertEqual((yield self.body_of(BOX + "inbox/report.txt")), b"the owner's report")
        self.assertTrue((yield self.note_of(BOX + "inbox/report.txt")))
        self.assertIn(("DAV:", "acl"), self.box.locate(["inbox", "report.txt"]).info.props)
        self.assertEqual((yield self.body_of(BOX + "uphome/x.txt")), b"the caller's bytes")

    @defer.inlineCallbacks
    def test_with_the_privileges_of_the_effect(self):
        """COPY over needs write-content and write-properties on the target;
        MOVE over needs unbind on its collection."""
        self.acl(["inbox"], "bind", "write-content", "write-properties")
        answer = yield self.transfer("COPY", "uphome/x.txt", "inbox/report.txt")
        self.assertEqual(answer.code, 204, answer.body)
        self.assertEqual((yield self.body_of(BOX + "inbox/report.txt")), b"the caller's bytes")
        answer = yield self.transfer("MOVE", "uphome/x.txt", "inbox/report.txt")
        self.assertError(answer, 403, "PR403-AU-0002")
        self.acl(["inbox"], "bind", "unbind")
        answer = yield self.transfer("MOVE", "uphome/x.txt", "inbox/report.txt")
        self.assertEqual(answer.code, 204, answer.body)


class CollectionsUnderRfc4918(EffectsTestCase):
    config = Config(durable=False, collection_semantics="rfc4918")

    @defer.inlineCallbacks
    def test_copy_of_an_empty_collection_over_a_full_one(self):
        yield self.mkcol(BOX + "inbox/full")
        yield self.put(BOX + "inbox/full/kept.txt", b"kept")
        yield self.mkcol(BOX + "uphome/empty")
        for method in ("COPY", "MOVE"):
            answer = yield self.transfer(method, "uphome/empty", "inbox/full")
            self.assertError(answer, 403, "PR403-AU-0002")
        self.assertEqual((yield self.body_of(BOX + "inbox/full/kept.txt")), b"kept")
        self.assertEqual(os.listdir(os.path.join(self.data, ":trash")), [])


class TheEffectIsDecidedUnderTheLock(EffectsTestCase):
    """The URL named nothing when the request arrived; a file appears
    before the write takes its lock: the write needs what an overwrite
    needs. The store's threads are held so the file can appear meanwhile."""

    @defer.inlineCallbacks
    def raced(self, method, body, headers=None):
        release = threading.Event()
        busy = [self.server.pools.store(release.wait, 30) for _ in range(16)]
        pending = self.as_me(method, BOX + "inbox/late.txt", body, headers)
        for _ in range(20):  # the request has reached the store's queue
            yield self.request("OPTIONS", BOX)
        self.box.put(OWNER, ["inbox", "late.txt"], b"the owner's bytes")
        release.set()
        yield defer.gatherResults(busy)
        answer = yield pending
        return answer

    @defer.inlineCallbacks
    def test_put(self):
        answer = yield self.raced("PUT", b"mine")
        self.assertError(answer, 403, "PR403-AU-0002")
        self.assertEqual((yield self.body_of(BOX + "inbox/late.txt")), b"the owner's bytes")

    @defer.inlineCallbacks
    def test_lock(self):
        answer = yield self.raced("LOCK", lockinfo(), {"Content-Type": "application/xml"})
        self.assertError(answer, 403, "PR403-AU-0002")
        self.assertEqual(self.server.store.locks.read("cell1", "box1"), [])


class AncestorsAndDescendants(DavSteps):
    """A Destination inside the source or above it is refused before
    anything moves, whatever the semantics and Overwrite."""

    @defer.inlineCallbacks
    def test_refused(self):
        yield self.mkcol(BOX + "proj")
        yield self.mkcol(BOX + "proj/sub")
        yield self.put(BOX + "proj/sub/deep.txt", b"deep")
        yield self.put(BOX + "proj/top.txt", b"top")
        cases = [("proj/sub", "proj"), ("proj/sub", ""), ("proj", "proj/sub/new"),
                 ("proj/top.txt", "proj"), ("proj/sub/deep.txt", "proj/sub")]
        for method in ("MOVE", "COPY"):
            for source, target in cases:
                for overwrite in ({}, {"Overwrite": "T"}):
                    answer = yield self.request(method, BOX + source, headers=dict(
                        overwrite, Destination="http://localhost" + BOX + target))
                    self.assertError(answer, 400, "PR400-DV-0009")
        self.assertEqual((yield self.hrefs(BOX + "proj/sub")),
                         [BOX + "proj/sub/", BOX + "proj/sub/deep.txt"])
        self.assertEqual(os.listdir(os.path.join(self.data, ":trash")), [])
        # and through the box API (what a script calls), the same answers
        box = self.server.store.box("cell1", "box1")
        for source, target in cases:
            error = self.assertRaises(Exception, box.move, OWNER, source.split("/"),
                                      [n for n in target.split("/") if n])
            self.assertEqual(getattr(error, "code", None), "PR400-DV-0009", (source, target))


class AncestorsUnderRfc4918(AncestorsAndDescendants):
    config = Config(durable=False, collection_semantics="rfc4918")


class Races(DavSteps):
    """Writes racing each other answer what one order of them would have
    answered: never 500."""

    ROUNDS = 20

    @defer.inlineCallbacks
    def test_swapping_moves(self):
        for i in range(self.ROUNDS):
            yield self.put(BOX + "a.txt", b"a")
            yield self.put(BOX + "b.txt", b"b")
            answers = yield defer.gatherResults([
                self.request("MOVE", BOX + "a.txt", headers={
                    "Destination": "http://localhost" + BOX + "b.txt"}),
                self.request("MOVE", BOX + "b.txt", headers={
                    "Destination": "http://localhost" + BOX + "a.txt"})])
            codes = sorted(a.code for a in answers)
            self.assertIn(codes, ([201, 204], [204, 404]), [a.body for a in answers])
            left = []
            for name in ("a.txt", "b.txt"):
                if (yield self.request("HEAD", BOX + name)).code == 200:
                    left.append(name)
            self.assertEqual(len(left), 1, (i, codes))
            yield self.request("DELETE", BOX + left[0])

    @defer.inlineCallbacks
    def test_writes_into_a_collection_moved_or_deleted(self):
        for i in range(self.ROUNDS):
            yield self.mkcol(BOX + "col")
            yield self.put(BOX + "col/f.txt", b"f")
            move = self.request("MOVE", BOX + "col", headers={
                "Destination": "http://localhost" + BOX + "moved"})
            put = self.request("PUT", BOX + "col/new.txt", b"new")
            mkcol = self.request("MKCOL", BOX + "col/sub")
            patch = self.request("PROPPATCH", BOX + "col/f.txt", NOTE)
            answers = yield defer.gatherResults([move, put, mkcol, patch])
            self.assertEqual(answers[0].code, 201, answers[0].body)
            for answer, good in zip(answers[1:], ((201, 409), (201, 409), (207, 404))):
                self.assertIn(answer.code, good, answer.body)
            if answers[1].code == 201:  # it happened before the MOVE: it moved with it
                self.assertEqual((yield self.request("GET", BOX + "moved/new.txt")).code, 200)
            delete = self.request("DELETE", BOX + "moved",
                                  headers={"X-Personium-Recursive": "true"})
            put = self.request("PUT", BOX + "moved/late.txt", b"late")
            answers = yield defer.gatherResults([delete, put])
            self.assertEqual(answers[0].code, 204, answers[0].body)
            self.assertIn(answers[1].code, (201, 409), answers[1].body)
            self.assertEqual((yield self.request("HEAD", BOX + "moved/late.txt")).code, 404)

    @defer.inlineCallbacks
    def test_reads_of_what_is_being_deleted(self):
        for i in range(self.ROUNDS):
            yield self.mkcol(BOX + "col")
            yield self.put(BOX + "col/f.txt", b"f" * 100_000)
            answers = yield defer.gatherResults([
                self.request("DELETE", BOX + "col", headers={"X-Personium-Recursive": "true"}),
                self.request("GET", BOX + "col/f.txt"),
                self.request("PROPFIND", BOX + "col", headers={"Depth": "1"}),
                self.request("GET", BOX + "col")])
            self.assertEqual(answers[0].code, 204)
            for answer, good in zip(answers[1:], ((200, 404), (207, 404), (200, 404))):
                self.assertIn(answer.code, good, answer.body[:300])
