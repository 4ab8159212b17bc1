"""ACL and privileges over HTTP (docs/behaviour.md §9): the reference's access-control
matrix for service sources, PROPPATCH on a service collection, the ACL
method's errors, inheritance, replacement and who sees D:acl."""
import base64

from twisted.internet import defer

from personium_dav.auth.privileges import Ace, acl_body

from .support.helpers import BOX, NS
from .support.steps import DavSteps, proppatch_body

CELL_URL = "http://localhost/cell1/"
SVC = BOX + "svc"
SRC = SVC + "/__src"
JS = {"Content-Type": "text/javascript"}


def ace_xml(principal, *privileges):
    grants = "".join("<D:privilege>%s</D:privilege>" % p for p in privileges)
    return "<D:ace><D:principal>%s</D:principal><D:grant>%s</D:grant></D:ace>" % (
        principal, grants)


def raw_acl(*aces, base=CELL_URL + "__role/__/"):
    return ('<?xml version="1.0" encoding="utf-8"?><D:acl xmlns:D="DAV:" '
            'xmlns:p="urn:x-personium:xmlns" xml:base="%s">%s</D:acl>'
            % (base, "".join(aces))).encode("utf-8")


class AclTestCase(DavSteps):
    """cell1 with role ``r`` held by account ``me`` (password ``pw-me``)."""

    @defer.inlineCallbacks
    def setUp(self):
        DavSteps.setUp(self)
        accounts = self.server.auth.accounts
        accounts.add_role("cell1", "r")
        accounts.add_role("cell1", "other")
        accounts.add_account("cell1", "me", "pw-me", ["r"])
        self.me = {"Authorization": "Bearer " + self.server.auth.tokens.issue("cell1", "me", ["r"])}
        yield self.service(SVC)

    def grant(self, path, *aces):
        """Replace the ACL of ``path`` (as the owner); ``aces`` are Ace."""
        return self.request("ACL", path, acl_body(list(aces), CELL_URL))

    def as_me(self, method, path, body=b"", headers=None):
        return self.request(method, path, body, dict(headers or {}, **self.me))


class ServiceSourceMatrixTests(AclTestCase):
    """The Personium reference's matrix, privilege granted on the service
    collection to the caller's role."""

    @defer.inlineCallbacks
    def scene(self, *privileges):
        yield self.put(SRC + "/old.js", b"old", "text/javascript")
        if privileges:
            answer = yield self.grant(SVC, Ace("r", frozenset(privileges)))
            self.assertEqual(answer.code, 200, answer.body)

    @defer.inlineCallbacks
    def attempt(self):
        """(create, update, get, delete) statuses as ``me``."""
        create = yield self.as_me("PUT", SRC + "/new.js", b"new", JS)
        update = yield self.as_me("PUT", SRC + "/old.js", b"upd", JS)
        got = yield self.as_me("GET", SRC + "/old.js")
        deleted = yield self.as_me("DELETE", SRC + "/old.js")
        return create, update, got, deleted

    @defer.inlineCallbacks
    def test_no_privilege(self):
        yield self.scene()
        for answer in (yield self.attempt()):
            self.assertError(answer, 403, "PR403-AU-0002", "Necessary privilege is lacking.")

    @defer.inlineCallbacks
    def test_bind(self):
        yield self.scene("bind")
        create, update, got, deleted = yield self.attempt()
        self.assertEqual(create.code, 201)
        for answer in (update, got, deleted):
            self.assertError(answer, 403, "PR403-AU-0002")

    @defer.inlineCallbacks
    def test_write(self):
        yield self.scene("write")
        create, update, got, deleted = yield self.attempt()
        self.assertEqual((create.code, update.code, deleted.code), (201, 204, 204))
        self.assertError(got, 403, "PR403-AU-0002")

    @defer.inlineCallbacks
    def test_read(self):
        yield self.scene("read")
        create, update, got, deleted = yield self.attempt()
        self.assertEqual((got.code, got.body), (200, b"old"))
        for answer in (create, update, deleted):
            self.assertError(answer, 403, "PR403-AU-0002")

    @defer.inlineCallbacks
    def test_unbind(self):
        yield self.scene("unbind")
        create, update, got, deleted = yield self.attempt()
        self.assertEqual(deleted.code, 204)
        for answer in (create, update, got):
            self.assertError(answer, 403, "PR403-AU-0002")

    @defer.inlineCallbacks
    def test_all_on_the_box_is_inherited(self):
        yield self.put(SRC + "/old.js", b"old", "text/javascript")
        yield self.grant(BOX, Ace("r", frozenset({"all"})))
        create, update, got, deleted = yield self.attempt()
        self.assertEqual([a.code for a in (create, update, got, deleted)], [201, 204, 200, 204])


class PropPatchServiceTests(AclTestCase):
    BODY = proppatch_body('<p:service language="JavaScript"><p:path name="a" src="a.js"/>'
                          '</p:service>')

    @defer.inlineCallbacks
    def test_needs_write_properties(self):
        self.assertError((yield self.as_me("PROPPATCH", SVC, self.BODY)), 403, "PR403-AU-0002")
        yield self.grant(SVC, Ace("r", frozenset({"write-properties"})))
        self.assertEqual((yield self.as_me("PROPPATCH", SVC, self.BODY)).code, 207)

    @defer.inlineCallbacks
    def test_on_the_parent_is_enough(self):
        yield self.grant(BOX, Ace("r", frozenset({"write-properties"})))
        self.assertEqual((yield self.as_me("PROPPATCH", SVC, self.BODY)).code, 207)

    @defer.inlineCallbacks
    def test_other_privileges_are_not(self):
        yield self.grant(SVC, Ace("r", frozenset({"read", "bind", "unbind", "write-content"})))
        self.assertError((yield self.as_me("PROPPATCH", SVC, self.BODY)), 403, "PR403-AU-0002")


class AclMethodTests(AclTestCase):
    @defer.inlineCallbacks
    def test_errors(self):
        for body in (b"", b"<D:acl xmlns:D='DAV:'", b"<D:prop xmlns:D='DAV:'/>",
                     raw_acl("<D:ace><D:grant><D:privilege><D:read/></D:privilege></D:grant></D:ace>")):
            self.assertError((yield self.request("ACL", SVC, body)), 400, "PR400-DV-0002",
                             "XML content error.")
        for body in (raw_acl(ace_xml("<D:all/>", "<D:fly/>")),
                     raw_acl(ace_xml("<D:href>ghost</D:href>", "<D:read/>")),
                     raw_acl(ace_xml("<D:href>r</D:href>", "<D:read/>"),
                             base="http://localhost/cell2/__role/__/")):
            self.assertError((yield self.request("ACL", SVC, body)), 400, "PR400-DV-0006")

    @defer.inlineCallbacks
    def test_needs_write_acl(self):
        body = raw_acl(ace_xml("<D:href>r</D:href>", "<D:all/>"))
        self.assertError((yield self.as_me("ACL", SVC, body)), 403, "PR403-AU-0002")
        yield self.grant(BOX, Ace("r", frozenset({"write"})))
        self.assertError((yield self.as_me("ACL", SVC, body)), 403, "PR403-AU-0002")
        yield self.grant(BOX, Ace("r", frozenset({"write-acl"})))
        self.assertEqual((yield self.as_me("ACL", SVC, body)).code, 200)

    @defer.inlineCallbacks
    def test_replaced_whole(self):
        yield self.put(BOX + "f.txt", b"x")
        yield self.grant(BOX + "f.txt", Ace("r", frozenset({"read"})))
        self.assertEqual((yield self.as_me("GET", BOX + "f.txt")).code, 200)
        yield self.grant(BOX + "f.txt", Ace("other", frozenset({"read"})))
        self.assertError((yield self.as_me("GET", BOX + "f.txt")), 403, "PR403-AU-0002")

    @defer.inlineCallbacks
    def test_all_principal_and_anonymous(self):
        yield self.put(BOX + "pub.txt", b"public")
        answer = yield self.request("GET", BOX + "pub.txt", anonymous=True)
        self.assertError(answer, 401, "PR401-AU-0001")
        yield self.request("ACL", BOX + "pub.txt", raw_acl(ace_xml("<D:all/>", "<D:read/>")))
        answer = yield self.request("GET", BOX + "pub.txt", anonymous=True)
        self.assertEqual((answer.code, answer.body), (200, b"public"))
        answer = yield self.request("PUT", BOX + "pub.txt", b"defaced", anonymous=True)
        self.assertError(answer, 401, "PR401-AU-0001")

    @defer.inlineCallbacks
    def test_protected_against_proppatch(self):
        answer = yield self.request("PROPPATCH", SVC, proppatch_body(
            '<D:acl><D:ace><D:principal><D:all/></D:principal><D:grant><D:privilege><D:all/>'
            '</D:privilege></D:grant></D:ace></D:acl>'))
        self.assertEqual(answer.code, 207)
        self.assertIn(b"cannot-modify-protected-property", answer.body)
        self.assertError((yield self.request("GET", BOX, anonymous=True)), 401, "PR401-AU-0001")

    @defer.inlineCallbacks
    def test_shown_only_with_read_acl(self):
        yield self.grant(SVC, Ace("r", frozenset({"read"})), Ace(None, frozenset({"exec"})))
        ask = b'<D:propfind xmlns:D="DAV:"><D:prop><D:acl/><D:resourcetype/></D:prop></D:propfind>'
        owner = (yield self.request("PROPFIND", SVC, ask, {"Depth": "0"})).xml()
        acl = owner.find(".//D:acl", NS)
        self.assertEqual(acl.get("{http://www.w3.org/XML/1998/namespace}base"),
                         CELL_URL + "__role/__/")
        self.assertEqual([h.text for h in acl.iterfind(".//D:href", NS)], ["r"])
        self.assertIsNotNone(acl.find(".//D:principal/D:all", NS))
        mine = yield self.as_me("PROPFIND", SVC, ask, {"Depth": "0"})
        self.assertEqual(mine.code, 207)
        self.assertIsNone(mine.xml().find(".//D:propstat/D:prop/D:acl/D:ace", NS))
        yield self.grant(BOX, Ace("r", frozenset({"read-acl"})))
        mine = yield self.as_me("PROPFIND", SVC, ask, {"Depth": "0"})
        self.assertIsNotNone(mine.xml().find(".//D:acl/D:ace", NS))
        # not part of a plain allprop (RFC 4918 §9.1)
        plain = yield self.request("PROPFIND", SVC, b"", {"Depth": "0"})
        self.assertIsNone(plain.xml().find(".//D:acl", NS))

    @defer.inlineCallbacks
    def test_basic_works_like_a_token(self):
        yield self.grant(BOX, Ace("r", frozenset({"all"})))
        basic = {"Authorization": "Basic " + base64.b64encode(b"me:pw-me").decode()}
        self.assertEqual((yield self.request("MKCOL", BOX + "c", headers=basic)).code, 201)

    @defer.inlineCallbacks
    def test_move_and_copy(self):
        yield self.mkcol(BOX + "a")
        yield self.mkcol(BOX + "b")
        yield self.put(BOX + "a/f.txt", b"x")
        dest = {"Destination": "http://localhost" + BOX + "b/f.txt"}
        yield self.grant(BOX + "a", Ace("r", frozenset({"unbind", "read"})))
        self.assertError((yield self.as_me("MOVE", BOX + "a/f.txt", headers=dest)),
                         403, "PR403-AU-0002")
        self.assertError((yield self.as_me("COPY", BOX + "a/f.txt", headers=dest)),
                         403, "PR403-AU-0002")
        yield self.grant(BOX + "b", Ace("r", frozenset({"bind"})))
        self.assertEqual((yield self.as_me("COPY", BOX + "a/f.txt", headers=dest)).code, 201)
        dest = {"Destination": "http://localhost" + BOX + "b/g.txt"}
        self.assertEqual((yield self.as_me("MOVE", BOX + "a/f.txt", headers=dest)).code, 201)

    @defer.inlineCallbacks
    def test_service_execution_needs_exec(self):
        answer = yield self.as_me("GET", SVC + "/hello")
        self.assertError(answer, 403, "PR403-AU-0002")
        yield self.grant(SVC, Ace("r", frozenset({"exec"})))
        answer = yield self.as_me("GET", SVC + "/hello")  # runs: no p:service
        self.assertEqual((answer.code, answer.body),
                         (404, b"404 Not Found (Service property invalid) "))

    @defer.inlineCallbacks
    def test_options_needs_some_privilege(self):
        """OPTIONS needs no privilege of its own, but tells only a caller
        who may learn that the name exists (some privilege on its parent)."""
        answer = yield self.request("OPTIONS", SVC, anonymous=True)
        self.assertError(answer, 401, "PR401-AU-0001")
        yield self.grant(BOX, Ace(None, frozenset({"read-properties"})))
        answer = yield self.request("OPTIONS", SVC, anonymous=True)
        self.assertEqual(answer.code, 200)
        self.assertIn("ACL", answer.header("allow"))
