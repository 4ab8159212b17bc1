"""Who may learn whether a name exists (docs/behaviour.md §9): inside a box, a
caller who holds no privilege on the parent gets the same answer whether
the name exists or not, whatever the method; a CORS preflight still works;
a caller with some privilege there learns what that privilege answers."""
from twisted.internet import defer

from personium_dav.auth.privileges import Ace, Principal, serialize_acl
from personium_dav.store.box import Caller

from .support.helpers import BOX
from .support.steps import DavSteps

OWNER = Caller(Principal(owner=True))
METHODS = ("OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "PROPFIND", "PROPPATCH",
           "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "ACL", "REPORT", "FOO")


class Oracle(DavSteps):
    @defer.inlineCallbacks
    def setUp(self):
        yield DavSteps.setUp(self)
        yield self.mkcol(BOX + "private")
        yield self.put(BOX + "private/secret.txt", b"s")
        yield self.mkcol(BOX + "private/sub")
        yield self.service(BOX + "private/svc")
        accounts = self.server.auth.accounts
        accounts.add_role("cell1", "r")
        accounts.add_account("cell1", "stranger", "pw")
        accounts.add_account("cell1", "binder", "pw", ["r"])
        self.stranger = self.token("stranger")
        self.binder = self.token("binder")
        box = self.server.store.box("cell1", "box1")
        box.set_acl(OWNER, ["private"], serialize_acl([Ace("r", frozenset({"bind"}))]))

    def token(self, name):
        return {"Authorization": "Bearer " + self.server.auth.tokens.issue("cell1", name)}

    def ask(self, method, path, who):
        headers = {"Depth": "0", "Destination": "http://localhost" + BOX + "elsewhere",
                   "Lock-Token": "<urn:x>"}
        if who is None:
            return self.request(method, path, b"", headers, anonymous=True)
        return self.request(method, path, b"", dict(headers, **who))

    @staticmethod
    def shape(answer):
        """What an answer tells: status, body, and headers but the request key."""
        headers = {k: v for k, v in answer.headers.getAllRawHeaders()
                   if k.lower() not in (b"x-personium-requestkey", b"date")}
        return answer.code, answer.body, sorted(headers.items())

    @defer.inlineCallbacks
    def test_same_answer_whether_it_exists_or_not(self):
        existing = ["private/secret.txt", "private/sub", "private/svc", "private/svc/__src",
                    "private/svc/run"]
        for who, status in ((None, 401), (self.stranger, 403)):
            for method in METHODS:
                absent = yield self.ask(method, BOX + "private/nothing.txt", who)
                self.assertEqual(absent.code, status, (method, absent.body))
                for name in existing:
                    answer = yield self.ask(method, BOX + name, who)
                    self.assertEqual(self.shape(answer), self.shape(absent), (method, name))

    @defer.inlineCallbacks
    def test_a_preflight_still_works(self):
        for name in ("private/secret.txt", "private/nothing.txt"):
            answer = yield self.request("OPTIONS", BOX + name, headers={
                "Origin": "https://app.example", "Access-Control-Request-Method": "PUT"},
                anonymous=True)
            self.assertEqual(answer.code, 200)
            self.assertEqual(answer.header("access-control-allow-origin"), "https://app.example")

    @defer.inlineCallbacks
    def test_a_privilege_tells_what_it_answers(self):
        answer = yield self.ask("PUT", BOX + "private/new.txt", self.binder)
        self.assertEqual(answer.code, 201, answer.body)
        answer = yield self.ask("PUT", BOX + "private/secret.txt", self.binder)
        self.assertError(answer, 403, "PR403-AU-0002")  # it exists, and is not theirs
        answer = yield self.ask("GET", BOX + "private/nothing.txt", self.binder)
        self.assertError(answer, 403, "PR403-AU-0002")

    @defer.inlineCallbacks
    def test_a_resource_that_grants_itself(self):
        """A file whose own ACL opens it is served even to a caller with no
        privilege on its collection: it chose to be known."""
        box = self.server.store.box("cell1", "box1")
        box.set_acl(OWNER, ["private", "secret.txt"],
                    serialize_acl([Ace(None, frozenset({"read"}))]))
        answer = yield self.ask("GET", BOX + "private/secret.txt", None)
        self.assertEqual((answer.code, answer.body), (200, b"s"))
        answer = yield self.ask("GET", BOX + "private/nothing.txt", None)
        self.assertError(answer, 401, "PR401-AU-0001")
