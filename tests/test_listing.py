"""The per-process listing cache (store/listing.py, Info.rendered): a
PROPFIND Depth 1 never shows a member as it was before a change, whoever
made the change, and the filesystem facts the cache trusts hold on this
kernel and filesystem."""
import json
import multiprocessing
import os
import time
from dataclasses import replace

from treq.testing import StubTreq
from twisted.internet import defer, reactor, task
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from personium_dav.auth.privileges import Ace, acl_body
from personium_dav.web.methods import propfind as propfind_method
from personium_dav.web.site import makeResource
from personium_dav.store import layout
from personium_dav.store.props import Sidecars
from personium_dav.store.tree import Tree, now_ms

from .support.helpers import BOX, NS, DavTestCase
from .support.dav import by_tag, prop_request, proppatch_body, responses

CELL_URL = "http://localhost/cell1/"
ACL_PROP = prop_request("<D:acl/>", "<D:getetag/>")
T = "urn:t"


def note(text):
    """A dead property as PROPPATCH stores it (element bytes)."""
    return ('<x:note xmlns:x="urn:t">%s</x:note>' % text).encode("utf-8")


def _child_set(directory, member, text):
    """Another server process's PROPPATCH: a sidecar commit under the lock."""
    tree = Tree(os.path.dirname(directory), durable=False)
    fid = layout.read_meta(os.path.join(directory, member)).get("i", "") if member else ""
    with tree.locked(directory):
        txn = tree.sidecars.begin(directory)
        txn.set(member, fid, (T, "note"), note(text))
        txn.touch(member, fid, now_ms())
        txn.commit()


def in_child(target, *args):
    proc = multiprocessing.get_context("fork").Process(target=target, args=args)
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0, "child failed: %r" % proc.exitcode


def tick():
    """Let the clock pass a timestamp tick (a few ms): what SETTLE_NS waits
    for in production, shortened here so the cache is used at once."""
    return task.deferLater(reactor, 0.05, lambda: None)


D = "{DAV:}"


class FilesystemFactsTests(SynchronousTestCase):
    """What store/listing.py and the sidecar cache rely on, checked here."""

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.path = os.path.join(self.dir, "f")
        with open(self.path, "wb") as f:
            f.write(b"abc")

    def stat(self, path):
        time.sleep(0.02)  # a change comes at least a tick after the key was taken
        st = os.lstat(path)
        return st.st_ino, st.st_ctime_ns, st.st_size

    def test_setxattr_bumps_ctime(self):
        before = self.stat(self.path)
        layout.write_meta(self.path, {"v": 2})
        after = self.stat(self.path)
        self.assertEqual(before[0], after[0])
        self.assertGreater(after[1], before[1])

    def test_bytes_written_in_place_bump_ctime_even_with_mtime_restored(self):
        before = self.stat(self.path)
        st = os.lstat(self.path)
        with open(self.path, "r+b") as f:
            f.write(b"xyz")
        os.utime(self.path, ns=(st.st_atime_ns, st.st_mtime_ns))
        after = self.stat(self.path)
        self.assertEqual((before[0], before[2]), (after[0], after[2]))
        self.assertGreater(after[1], before[1])

    def test_rename_over_a_member_changes_it_and_its_directory(self):
        member, directory = self.stat(self.path), self.stat(self.dir)
        tmp = os.path.join(self.dir, "tmp")
        with open(tmp, "wb") as f:
            f.write(b"def")
        os.replace(tmp, self.path)
        self.assertNotEqual(self.stat(self.path), member)
        self.assertGreater(self.stat(self.dir)[1], directory[1])

    def test_append_bumps_ctime_and_size(self):
        """A sidecar commit appends a record to the file in place: its own
        stat key moves (the directory's need not; store/listing.py checks a
        subcollection by its sidecar)."""
        before = self.stat(self.path)
        with open(self.path, "ab") as f:
            f.write(b"\0record")
        after = self.stat(self.path)
        self.assertEqual(before[0], after[0])
        self.assertGreater(after[1], before[1])
        self.assertGreater(after[2], before[2])

    def test_replaced_files_reuse_inode_numbers(self):
        """Why a fresh stat is not trusted (layout.SETTLE_NS): the inode just
        freed is handed out again. Informative: not every filesystem does it."""
        seen = []
        for i in range(6):
            tmp = os.path.join(self.dir, "t%d" % i)
            with open(tmp, "wb") as f:
                f.write(b"abc")
            os.replace(tmp, self.path)
            seen.append(os.lstat(self.path).st_ino)
        if len(set(seen)) == len(seen):
            self.skipTest("no inode reuse on this filesystem")
        self.assertLess(len(set(seen)), len(seen))

    def test_settled(self):
        st = os.lstat(self.path)
        self.assertFalse(layout.settled(st, time.time_ns()))
        self.assertTrue(layout.settled(st, time.time_ns() + layout.SETTLE_NS + 10**6))


class ListingCacheTests(DavTestCase):
    """Depth 1 after every kind of change. The settle time is shortened to
    nothing so that every member is remembered at once (the cache is really
    in use: see test_unchanged_members_read_nothing); a change made behind the
    server's back waits a tick first, as SETTLE_NS makes sure in production."""

    def setUp(self):
        DavTestCase.setUp(self)
        self.patch(layout, "SETTLE_NS", 0)
        self.box = os.path.join(self.data, "cell1", "box1")

    def disk(self, *names):
        return os.path.join(self.box, *names)

    @defer.inlineCallbacks
    def ok(self, method, path, body=b"", headers=None, codes=(200, 201, 204, 207)):
        answer = yield self.request(method, path, body, headers)
        self.assertIn(answer.code, codes, answer.body)
        return answer

    @defer.inlineCallbacks
    def listed(self, path, body=b"", headers=None):
        """href -> {status: {tag: element}} of a Depth 1 PROPFIND."""
        hdrs = {"Depth": "1", "Content-Type": "application/xml"}
        hdrs.update(headers or {})
        answer = yield self.ok("PROPFIND", path, body, hdrs, (207,))
        return {href: {code: by_tag(els) for code, els in stats.items()}
                for href, stats in responses(answer.xml()).items()}

    def put(self, path, body, content_type="text/plain"):
        return self.ok("PUT", path, body, {"Content-Type": content_type})

    def proppatch(self, path, inner):
        return self.ok("PROPPATCH", path, proppatch_body(inner),
                       {"Content-Type": "application/xml"}, (207,))

    @defer.inlineCallbacks
    def member(self, collection, name, body=b""):
        """The 200 properties of one member in a Depth 1 of ``collection``."""
        found = yield self.listed(collection, body)
        return found[collection + name][200]

    @defer.inlineCallbacks
    def fresh(self, path):
        """What a Depth 0 says (never cached) of a resource: {tag: element}."""
        answer = yield self.ok("PROPFIND", path, b"", {"Depth": "0"}, (207,))
        (stats,) = responses(answer.xml()).values()
        return by_tag(stats[200])

    @defer.inlineCallbacks
    def assertListedAsDepth0(self, collection):
        """Every member of a Depth 1 reads as its own Depth 0 does."""
        found = yield self.listed(collection)
        for href, stats in found.items():
            own = yield self.fresh(href)
            self.assertEqual({t: e.text for t, e in stats[200].items()},
                             {t: e.text for t, e in own.items()}, href)

    # -- the cache is in use -------------------------------------------------

    @defer.inlineCallbacks
    def test_unchanged_members_read_nothing(self):
        yield self.ok("MKCOL", BOX + "c")
        for i in range(5):
            yield self.put(BOX + "c/f%d.txt" % i, b"x" * i)
        yield self.ok("MKCOL", BOX + "c/sub")
        first = yield self.listed(BOX + "c")
        calls = []
        real_meta, real_info, real_response = layout.read_meta, Tree.info, propfind_method.response
        self.patch(layout, "read_meta", lambda *a: calls.append("meta") or real_meta(*a))
        self.patch(Tree, "info", lambda *a, **kw: calls.append("info") or real_info(*a, **kw))
        self.patch(propfind_method, "response",
                   lambda *a: calls.append("render") or real_response(*a))
        again = yield self.listed(BOX + "c")
        self.assertEqual({h: {c: {t: e.text for t, e in p.items()} for c, p in s.items()}
                          for h, s in again.items()},
                         {h: {c: {t: e.text for t, e in p.items()} for c, p in s.items()}
                          for h, s in first.items()})
        # only the collection itself is read and rendered (locate, Depth 0
        # part); the subcollection is checked by its sidecar's stat key
        self.assertEqual(calls.count("render"), 1)
        self.assertEqual(calls.count("meta"), 0)
        self.assertEqual([c for c in calls if c == "info"], ["info", "info"])

    @defer.inlineCallbacks
    def test_locks_shown_then_gone(self):
        """A lock changes no member's stat key: the listing must still show
        its D:lockdiscovery, and drop it again after UNLOCK."""
        from .support.locking import lockinfo

        yield self.ok("MKCOL", BOX + "c")
        yield self.put(BOX + "c/f.txt", b"f")
        before = yield self.member(BOX + "c/", "f.txt")
        self.assertEqual(len(before[D + "lockdiscovery"]), 0)
        locked = yield self.ok("LOCK", BOX + "c/f.txt", lockinfo(), {"Depth": "0"})
        token = locked.header("lock-token")
        during = yield self.member(BOX + "c/", "f.txt")
        self.assertEqual(len(during[D + "lockdiscovery"]), 1)
        yield self.ok("UNLOCK", BOX + "c/f.txt", b"", {"Lock-Token": token}, (204,))
        after = yield self.member(BOX + "c/", "f.txt")
        self.assertEqual(len(after[D + "lockdiscovery"]), 0)

    def test_replace_starts_without_the_rendering(self):
        info = Tree(self.data).info(self.box, "")
        info.rendered = ("key", b"bytes")
        self.assertIsNone(replace(info, props={}).rendered)

    # -- changes through this server ----------------------------------------

    @defer.inlineCallbacks
    def test_put_over_a_file(self):
        yield self.ok("MKCOL", BOX + "c")
        yield self.put(BOX + "c/a.txt", b"one")
        before = yield self.member(BOX + "c/", "a.txt")
        self.assertEqual(before["{DAV:}getcontentlength"].text, "3")
        put = yield self.put(BOX + "c/a.txt", b"three", "text/x-other")
        after = yield self.member(BOX + "c/", "a.txt")
        self.assertEqual(after["{DAV:}getetag"].text, put.header("etag"))
        self.assertEqual(after["{DAV:}getcontentlength"].text, "5")
        self.assertEqual(after["{DAV:}getcontenttype"].text, "text/x-other")
        # same size, twice between two listings (the inode numbers alternate)
        yield self.put(BOX + "c/a.txt", b"bbbbb")
        put = yield self.put(BOX + "c/a.txt", b"ccccc")
        after = yield self.member(BOX + "c/", "a.txt")
        self.assertEqual(after["{DAV:}getetag"].text, put.header("etag"))
        self.assertTrue(after["{DAV:}getetag"].text.startswith('"4-'))
        yield self.assertListedAsDepth0(BOX + "c/")

    @defer.inlineCallbacks
    def test_proppatch_on_a_member(self):
        yield self.ok("MKCOL", BOX + "c")
        yield self.put(BOX + "c/a.txt", b"one")
        yield self.put(BOX + "c/b.txt", b"two")
        yield self.proppatch(BOX + "c/a.txt", note("first").decode())
        before = yield self.member(BOX + "c/", "a.txt")
        self.assertEqual(before["{urn:t}note"].text, "first")
        patched = yield self.proppatch(BOX + "c/a.txt", note("second").decode())
        after = yield self.member(BOX + "c/", "a.txt")
        self.assertEqual(after["{urn:t}note"].text, "second")
        self.assertEqual(after["{DAV:}getetag"].text, patched.header("etag"))
        self.assertNotEqual(after["{DAV:}getetag"].text, before["{DAV:}getetag"].text)
        body = ('<D:propertyupdate xmlns:D="DAV:"><D:remove><D:prop>%s</D:prop></D:remove>'
                "</D:propertyupdate>" % note(""))
        yield self.ok("PROPPATCH", BOX + "c/a.txt", body.encode(),
                      {"Content-Type": "application/xml"}, (207,))
        after = yield self.member(BOX + "c/", "a.txt")
        self.assertNotIn("{urn:t}note", after)
        yield self.assertListedAsDepth0(BOX + "c/")

    @defer.inlineCallbacks
    def test_move_and_delete_members(self):
        yield self.ok("MKCOL", BOX + "c")
        yield self.ok("MKCOL", BOX + "d")
        for name in ("a.txt", "b.txt", "c.txt"):
            yield self.put(BOX + "c/" + name, name.encode())
        yield self.proppatch(BOX + "c/a.txt", note("of a").decode())
        yield self.listed(BOX + "c")
        yield self.listed(BOX + "d")
        yield self.ok("MOVE", BOX + "c/a.txt", headers={"Destination": self.url(BOX + "c/z.txt")})
        yield self.ok("DELETE", BOX + "c/b.txt")
        yield self.ok("MOVE", BOX + "c/c.txt", headers={"Destination": self.url(BOX + "d/c.txt")})
        found = yield self.listed(BOX + "c")
        self.assertEqual(sorted(found), [BOX + "c/", BOX + "c/z.txt"])
        self.assertEqual(found[BOX + "c/z.txt"][200]["{urn:t}note"].text, "of a")
        found = yield self.listed(BOX + "d")
        self.assertEqual(sorted(found), [BOX + "d/", BOX + "d/c.txt"])
        # and back under an old name: a new member, not the one remembered
        yield self.put(BOX + "c/a.txt", b"new")
        found = yield self.listed(BOX + "c")
        self.assertNotIn("{urn:t}note", found[BOX + "c/a.txt"][200])
        yield self.assertListedAsDepth0(BOX + "c/")

    @defer.inlineCallbacks
    def test_subcollection_property_change(self):
        yield self.ok("MKCOL", BOX + "c")
        yield self.ok("MKCOL", BOX + "c/sub")
        yield self.proppatch(BOX + "c/sub", note("first").decode())
        before = yield self.member(BOX + "c/", "sub/")
        patched = yield self.proppatch(BOX + "c/sub", note("second").decode())
        after = yield self.member(BOX + "c/", "sub/")
        self.assertEqual(after["{urn:t}note"].text, "second")
        self.assertEqual(after["{DAV:}getetag"].text, patched.header("etag"))
        self.assertNotEqual(after["{DAV:}getetag"].text, before["{DAV:}getetag"].text)
        # replaced by a service collection of the same name
        yield self.ok("DELETE", BOX + "c/sub")
        mkcol = (b'<D:mkcol xmlns:D="DAV:" xmlns:p="urn:x-personium:xmlns"><D:set><D:prop>'
                 b"<D:resourcetype><D:collection/><p:service/></D:resourcetype>"
                 b"</D:prop></D:set></D:mkcol>")
        yield self.ok("MKCOL", BOX + "c/sub", mkcol, {"Content-Type": "application/xml"})
        after = yield self.member(BOX + "c/", "sub/")
        self.assertEqual([e.tag for e in after["{DAV:}resourcetype"]],
                         ["{DAV:}collection", "{urn:x-personium:xmlns}service"])
        self.assertNotIn("{urn:t}note", after)
        yield self.assertListedAsDepth0(BOX + "c/")

    @defer.inlineCallbacks
    def test_long_names(self):
        name = "長" * 100  # 300 bytes of UTF-8: stored under a hashed name
        yield self.ok("MKCOL", BOX + "c")
        yield self.put(BOX + "c/" + name, b"one")
        first = yield self.listed(BOX + "c")
        yield self.proppatch(BOX + "c/" + name, note("long").decode())
        again = yield self.listed(BOX + "c")
        self.assertEqual(sorted(first), sorted(again))
        (href,) = [h for h in again if h != BOX + "c/"]
        self.assertEqual(again[href][200]["{urn:t}note"].text, "long")
        self.assertTrue(any(n.startswith(layout.HASHED) for n in os.listdir(self.disk("c"))))

    # -- changes by another server -----------------------------------------

    @defer.inlineCallbacks
    def test_second_server_instance_on_the_same_root(self):
        yield self.ok("MKCOL", BOX + "c")
        yield self.put(BOX + "c/a.txt", b"one")
        yield self.ok("MKCOL", BOX + "c/sub")
        yield self.listed(BOX + "c")
        other = makeResource(self.data, self.config)
        token = other.server.auth.tokens.owner_token(ttl=3600)
        mine, self.stub = self.stub, StubTreq(other)
        try:
            auth = {"Authorization": "Bearer " + token}
            put = yield self.ok("PUT", BOX + "c/a.txt", b"other", dict(auth, **{
                "Content-Type": "text/plain"}))
            yield self.ok("PROPPATCH", BOX + "c/sub", proppatch_body(note("theirs").decode()),
                          dict(auth, **{"Content-Type": "application/xml"}), (207,))
        finally:
            self.stub = mine
        found = yield self.listed(BOX + "c")
        self.assertEqual(found[BOX + "c/a.txt"][200]["{DAV:}getetag"].text, put.header("etag"))
        self.assertEqual(found[BOX + "c/sub/"][200]["{urn:t}note"].text, "theirs")

    @defer.inlineCallbacks
    def test_another_process_replaces_a_file(self):
        """As another process's PUT does: a new file, user.pdav set, renamed
        over the member; same size."""
        yield self.ok("MKCOL", BOX + "c")
        yield self.put(BOX + "c/a.txt", b"one")
        yield self.listed(BOX + "c")
        yield tick()
        tmp = self.disk("c", "tmp-by-hand")
        with open(tmp, "wb") as f:
            f.write(b"two")
        layout.write_meta(tmp, {"v": 7, "c": 1000, "m": 2000, "t": "text/x-theirs"})
        os.replace(tmp, self.disk("c", "a.txt"))
        after = yield self.member(BOX + "c/", "a.txt")
        self.assertEqual(after["{DAV:}getetag"].text, '"7-2000"')
        self.assertEqual(after["{DAV:}getcontenttype"].text, "text/x-theirs")

    @defer.inlineCallbacks
    def test_another_process_changes_a_file_in_place(self):
        yield self.ok("MKCOL", BOX + "c")
        yield self.put(BOX + "c/a.txt", b"one")
        yield self.listed(BOX + "c")
        yield tick()
        path = self.disk("c", "a.txt")
        meta = json.loads(os.getxattr(path, layout.XATTR))
        layout.write_meta(path, dict(meta, v=9))  # same inode, same size
        after = yield self.member(BOX + "c/", "a.txt")
        self.assertTrue(after["{DAV:}getetag"].text.startswith('"9-'))
        yield tick()
        with open(path, "ab") as f:
            f.write(b" more")
        after = yield self.member(BOX + "c/", "a.txt")
        self.assertEqual(after["{DAV:}getcontentlength"].text, "8")

    @defer.inlineCallbacks
    def test_another_process_commits_a_sidecar(self):
        yield self.ok("MKCOL", BOX + "c")
        yield self.put(BOX + "c/a.txt", b"one")
        yield self.ok("MKCOL", BOX + "c/sub")
        yield self.proppatch(BOX + "c/a.txt", note("mine").decode())
        yield self.proppatch(BOX + "c/sub", note("mine").decode())
        before = yield self.listed(BOX + "c")
        yield tick()
        in_child(_child_set, self.disk("c"), "a.txt", "them")  # same size as "mine"
        in_child(_child_set, self.disk("c", "sub"), "", "them")
        after = yield self.listed(BOX + "c")
        for href in (BOX + "c/a.txt", BOX + "c/sub/"):
            self.assertEqual(after[href][200]["{urn:t}note"].text, "them")
            self.assertNotEqual(after[href][200]["{DAV:}getetag"].text,
                                before[href][200]["{DAV:}getetag"].text)
        yield self.assertListedAsDepth0(BOX + "c/")

    # -- what a rendering depends on ----------------------------------------

    @defer.inlineCallbacks
    def test_request_kinds_do_not_mix(self):
        yield self.ok("MKCOL", BOX + "c")
        yield self.put(BOX + "c/a.txt", b"one")
        yield self.proppatch(BOX + "c/a.txt", note("n").decode())
        propname = b'<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'
        include = (b'<D:propfind xmlns:D="DAV:"><D:allprop/><D:include><D:nope/></D:include>'
                   b"</D:propfind>")
        etag_only = prop_request("<D:getetag/>")
        for _ in range(2):
            for body in (b"", propname, etag_only, include):
                found = yield self.listed(BOX + "c", body)
                props_ = found[BOX + "c/a.txt"]
                if body == etag_only:
                    self.assertEqual(sorted(props_[200]), ["{DAV:}getetag"])
                elif body == propname:
                    self.assertIsNone(props_[200]["{urn:t}note"].text)
                    self.assertIn("{DAV:}getcontentlength", props_[200])
                else:
                    self.assertEqual(props_[200]["{urn:t}note"].text, "n")
                    self.assertEqual(sorted(props_.get(404, {})),
                                     ["{DAV:}nope"] if body == include else [])

    @defer.inlineCallbacks
    def test_hrefs_follow_the_mount(self):
        yield self.ok("MKCOL", BOX + "c")
        yield self.put(BOX + "c/%C3%BC.txt", b"one")
        plain = yield self.listed(BOX + "c")
        self.assertIn(BOX + "c/%C3%BC.txt", plain)
        root = Resource()
        root.putChild(b"dav", makeResource(self.data, self.config))
        mine, self.stub = self.stub, StubTreq(root)
        try:
            answer = yield self.request("PROPFIND", "/dav" + BOX + "c", headers={"Depth": "1"})
        finally:
            self.stub = mine
        self.assertEqual(sorted(responses(answer.xml())),
                         ["/dav" + BOX + "c/", "/dav" + BOX + "c/%C3%BC.txt"])
        again = yield self.listed(BOX + "c")
        self.assertEqual(sorted(again), sorted(plain))

    @defer.inlineCallbacks
    def test_acl_shown_by_caller(self):
        accounts = self.server.auth.accounts
        accounts.add_role("cell1", "r")
        accounts.add_account("cell1", "me", "pw-me", ["r"])
        me = {"Authorization": "Bearer " + self.server.auth.tokens.issue("cell1", "me", ["r"])}
        yield self.ok("MKCOL", BOX + "c")
        yield self.put(BOX + "c/a.txt", b"one")
        yield self.put(BOX + "c/b.txt", b"two")
        yield self.ok("ACL", BOX + "c", acl_body([Ace("r", frozenset({"read"}))], CELL_URL))
        yield self.ok("ACL", BOX + "c/a.txt",
                      acl_body([Ace(None, frozenset({"read"}))], CELL_URL))

        def aces(found, name):
            acl = found[BOX + "c/" + name].get(200, {}).get("{DAV:}acl")
            return None if acl is None else len(acl.findall("D:ace", NS))

        for _ in range(2):
            owner = yield self.listed(BOX + "c", ACL_PROP)
            self.assertEqual(aces(owner, "a.txt"), 1)
            self.assertIsNone(aces(owner, "b.txt"))
            theirs = yield self.listed(BOX + "c", ACL_PROP, me)
            self.assertIsNone(aces(theirs, "a.txt"))
            self.assertIn("{DAV:}acl", theirs[BOX + "c/a.txt"][404])
            plain = yield self.listed(BOX + "c", b"", me)
            self.assertNotIn("{DAV:}acl", plain[BOX + "c/a.txt"].get(200, {}))
        yield self.ok("ACL", BOX + "c/a.txt", acl_body(
            [Ace(None, frozenset({"read"})), Ace("r", frozenset({"read-acl"}))], CELL_URL))
        theirs = yield self.listed(BOX + "c", ACL_PROP, me)
        self.assertEqual(aces(theirs, "a.txt"), 2)
        owner = yield self.listed(BOX + "c", ACL_PROP)
        self.assertEqual(aces(owner, "a.txt"), 2)


class FreshMembersTests(DavTestCase):
    """With the real settle time: a member changed in the last two seconds
    is not remembered, so a repeated stat key cannot serve it stale."""

    def setUp(self):
        DavTestCase.setUp(self)

    @defer.inlineCallbacks
    def test_fresh_members_read_in_full(self):
        yield self.request("MKCOL", BOX + "c")
        for i in range(3):
            yield self.request("PUT", BOX + "c/f%d.txt" % i, b"x")
        calls = []
        real = layout.read_meta
        self.patch(layout, "read_meta", lambda *a: calls.append(a) or real(*a))
        for _ in range(2):
            answer = yield self.request("PROPFIND", BOX + "c", headers={"Depth": "1"})
            self.assertEqual(answer.code, 207)
        self.assertEqual(len(calls), 6)
        directory = os.path.join(self.data, "cell1", "box1", "c")
        dirs = self.server.store.tree.listings._dirs
        self.assertEqual([r for r in dirs[directory].records if r is not None], [])


class CapacityTests(SynchronousTestCase):
    def setUp(self):
        self.patch(layout, "SETTLE_NS", 0)
        self.root = os.path.abspath(self.mktemp())
        self.tree = Tree(self.root, durable=False)
        self.tree.listings.capacity = 5
        self.listings = self.tree.listings

    def collection(self, name, members):
        directory = os.path.join(self.root, name)
        os.makedirs(directory)
        for i in range(members):
            with open(os.path.join(directory, "m%d" % i), "wb"):
                pass
        return directory

    def test_least_recently_listed_dropped_first(self):
        a, b, c = (self.collection(n, 2) for n in "abc")
        for directory in (a, b, a, c):
            self.assertEqual(len(self.tree.members(directory)), 2)
        self.assertEqual(list(self.listings._dirs), [a, c])
        self.assertLessEqual(self.listings._size, self.listings.capacity)

    def test_larger_than_capacity_not_remembered(self):
        big = self.collection("big", 6)
        self.assertEqual([i.name for i in self.tree.members(big)],
                         ["m%d" % i for i in range(6)])
        self.assertEqual(list(self.listings._dirs), [])

    def test_same_listing_while_nothing_changes(self):
        a = self.collection("a", 3)
        first = self.tree.members(a)
        self.assertIs(self.tree.members(a), first)
        time.sleep(0.02)
        os.unlink(os.path.join(a, "m1"))
        second = self.tree.members(a)
        self.assertEqual([i.name for i in second], ["m0", "m2"])
        self.assertIs(second[0], first[0])  # unchanged members: the same Info


class FileInfoCacheTests(ListingCacheTests.__bases__[0]):
    """The per-file Info that GET, HEAD and Depth 0 reuse (store/tree.py
    ``_files``): never stale after a change by anyone."""

    setUp = ListingCacheTests.setUp
    disk = ListingCacheTests.disk
    ok = ListingCacheTests.ok
    put = ListingCacheTests.put
    proppatch = ListingCacheTests.proppatch
    fresh = ListingCacheTests.fresh

    @defer.inlineCallbacks
    def etag(self, path):
        answer = yield self.ok("GET", path)
        return answer.header("etag")

    @defer.inlineCallbacks
    def test_reused_while_unchanged(self):
        yield self.put(BOX + "a.txt", b"one")
        first = yield self.etag(BOX + "a.txt")
        calls = []
        real = layout.read_meta
        self.patch(layout, "read_meta", lambda *a: calls.append(a) or real(*a))
        again = yield self.etag(BOX + "a.txt")
        self.assertEqual(again, first)
        self.assertEqual(calls, [])

    @defer.inlineCallbacks
    def test_changes_by_this_server(self):
        yield self.put(BOX + "a.txt", b"one")
        first = yield self.etag(BOX + "a.txt")
        put = yield self.put(BOX + "a.txt", b"two")
        self.assertEqual((yield self.etag(BOX + "a.txt")), put.header("etag"))
        self.assertNotEqual(put.header("etag"), first)
        patched = yield self.proppatch(BOX + "a.txt", note("n").decode())
        self.assertEqual((yield self.etag(BOX + "a.txt")), patched.header("etag"))
        self.assertEqual((yield self.fresh(BOX + "a.txt"))["{urn:t}note"].text, "n")

    @defer.inlineCallbacks
    def test_changes_by_another_process(self):
        yield self.put(BOX + "a.txt", b"one")
        yield self.etag(BOX + "a.txt")
        yield tick()
        tmp = self.disk("tmp-by-hand")
        with open(tmp, "wb") as f:
            f.write(b"two")  # same size
        layout.write_meta(tmp, {"v": 7, "c": 1000, "m": 2000, "t": "text/x-theirs"})
        os.replace(tmp, self.disk("a.txt"))
        self.assertEqual((yield self.etag(BOX + "a.txt")), '"7-2000"')
        yield tick()
        layout.write_meta(self.disk("a.txt"), {"v": 8, "c": 1000, "m": 2000, "t": "text/x"})
        self.assertEqual((yield self.etag(BOX + "a.txt")), '"8-2000"')
        yield tick()
        in_child(_child_set, self.box, "a.txt", "them")
        self.assertEqual((yield self.fresh(BOX + "a.txt"))["{urn:t}note"].text, "them")
        self.assertNotEqual((yield self.etag(BOX + "a.txt")), '"8-2000"')

    @defer.inlineCallbacks
    def test_depth0_answer_reused_until_a_change(self):
        yield self.ok("MKCOL", BOX + "c")
        yield self.fresh(BOX + "c/")
        calls = []
        real = propfind_method.response
        self.patch(propfind_method, "response", lambda *a: calls.append(a) or real(*a))
        yield self.fresh(BOX + "c/")
        self.assertEqual(calls, [])
        yield self.proppatch(BOX + "c/", note("changed").decode())
        self.assertEqual((yield self.fresh(BOX + "c/"))["{urn:t}note"].text, "changed")
        self.assertEqual(len(calls), 1)
