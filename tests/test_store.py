"""The dead-property stores: one conformance mixin run against every
``IPropertyStore``, the sidecar's own guarantees, and lost-update freedom
of read-modify-write under ``Tree.locked`` across threads and processes."""
import multiprocessing
import os
import threading

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from personium_dav.interfaces import IPropertyStore, IPropertyTransaction
from personium_dav.store import layout, props
from personium_dav.store.props import (CorruptSidecar, Entry, MemoryPropertyStore,
                                       SidecarPropertyStore)
from personium_dav.store.tree import Tree
from personium_dav.dav.xmlutil import freeze, parse

T = "urn:t"
A, B, C = (T, "a"), (T, "b"), (T, "c")


def value(xml):
    """Element bytes as PROPPATCH hands them to a store (via ``freeze``)."""
    root = parse(('<D:prop xmlns:D="DAV:">%s</D:prop>' % xml).encode("utf-8"))
    return freeze(root[0])


V1 = value('<x:a xmlns:x="urn:t">one</x:a>')
V2 = value('<x:a xmlns:x="urn:t">two</x:a>')
VB = value('<x:b xmlns:x="urn:t"/>')
TRICKY = [  # (key, value): the key is always the value's own name
    ((T, "c0"), value(
        '<x:c0 xmlns:x="urn:t" xmlns:y="urn:y" plain="&quot;&lt;&amp;&#10;&#9;" y:k="\U0001F600">'
        'head<y:i y:z="1">\U0001F600 \U00020BB7</y:i> mid <!-- c --><n xmlns="">t</n>tail</x:c0>')),
    ((T, "c1"), value('<x:c1 xmlns:x="urn:t" xml:lang="ja">題名</x:c1>')),
    (("", "c2"), value('<c2 xmlns="">no namespace</c2>')),
    ((T, "c3"), value('<c3 xmlns="urn:t">default &#13; ns</c3>')),
    ((T, "c4"), value('<x:c4 xmlns:x="urn:t" xmlns:q="urn:q">q:name</x:c4>')),
    ((T, "c5"), value('<x:c5 xmlns:x="urn:t"/>')),
    (("DAV:", "c6"), value('<D:c6 xmlns:D="DAV:">dav</D:c6>')),
]


class StoreConformanceMixin:
    """What every IPropertyStore does. Subclasses define ``make_store()`` and
    ``reopen(store)`` (the same data seen afresh, as another reader would)."""

    def test_interfaces(self):
        store = self.make_store()
        self.assertTrue(verifyObject(IPropertyStore, store))
        txn = store.begin()
        self.assertTrue(verifyObject(IPropertyTransaction, txn))
        txn.abort()

    def test_empty(self):
        store = self.make_store()
        self.assertEqual(dict(store.read()), {})
        self.assertEqual(dict(self.reopen(store).read()), {})

    def test_set_commit_visible(self):
        store = self.make_store()
        txn = store.begin()
        txn.set("", A, V1)
        txn.set("f.txt", B, VB)
        self.assertEqual(txn.state[""].props, {A: V1})
        txn.commit()
        for s in (store, self.reopen(store)):
            state = s.read()
            self.assertEqual(set(state), {"", "f.txt"})
            self.assertEqual(state[""].props, {A: V1})
            self.assertEqual(state["f.txt"].props, {B: VB})

    def test_set_replaces_and_keeps_order(self):
        store = self.make_store()
        txn = store.begin()
        txn.set("", A, V1)
        txn.set("", B, VB)
        txn.commit()
        txn = store.begin()
        txn.set("", A, V2)
        txn.commit()
        for s in (store, self.reopen(store)):
            self.assertEqual(list(s.read()[""].props.items()), [(A, V2), (B, VB)])

    def test_remove(self):
        store = self.make_store()
        txn = store.begin()
        txn.set("", A, V1)
        txn.set("", B, VB)
        txn.commit()
        txn = store.begin()
        txn.remove("", A)
        txn.remove("", C)  # absent: not an error
        txn.remove("nobody", A)
        txn.commit()
        for s in (store, self.reopen(store)):
            self.assertEqual(s.read()[""].props, {B: VB})

    def test_document_order_within_a_transaction(self):
        store = self.make_store()
        txn = store.begin()
        txn.set("", A, V1)
        txn.remove("", A)
        txn.set("", B, VB)
        txn.remove("", B)
        txn.set("", B, VB)
        txn.commit()
        self.assertEqual(self.reopen(store).read()[""].props, {B: VB})

    def test_touch(self):
        store = self.make_store()
        txn = store.begin()
        txn.touch("f.txt", 1000)
        txn.commit()
        first = self.reopen(store).read()["f.txt"]
        self.assertEqual((first.version, first.modified), (1, 1000))
        txn = store.begin()
        txn.set("f.txt", A, V1)
        txn.touch("f.txt", 2000)
        txn.commit()
        second = self.reopen(store).read()["f.txt"]
        self.assertEqual((second.version, second.modified), (2, 2000))
        self.assertEqual(second.props, {A: V1})

    def test_drop(self):
        store = self.make_store()
        txn = store.begin()
        txn.set("f.txt", A, V1)
        txn.set("g.txt", B, VB)
        txn.commit()
        txn = store.begin()
        txn.drop("f.txt")
        txn.drop("never.txt")
        txn.commit()
        for s in (store, self.reopen(store)):
            self.assertEqual(set(s.read()), {"g.txt"})

    def test_adopt(self):
        store = self.make_store()
        entry = Entry(props={A: V1, B: VB}, version=7, modified=1234, created=1000,
                      kind="service")
        txn = store.begin()
        txn.adopt("", entry)
        txn.adopt("m.js", Entry(props=dict(TRICKY[:1]), version=3, modified=99))
        txn.commit()
        state = self.reopen(store).read()
        self.assertEqual(state[""], entry)
        self.assertEqual(state["m.js"], Entry(props=dict(TRICKY[:1]), version=3, modified=99))

    def test_abort_leaves_state_unchanged(self):
        store = self.make_store()
        txn = store.begin()
        txn.set("", A, V1)
        txn.commit()
        before = dict(store.read())
        txn = store.begin()
        txn.set("", A, V2)
        txn.set("", B, VB)
        txn.drop("")
        txn.touch("x", 5)
        txn.abort()
        for s in (store, self.reopen(store)):
            self.assertEqual(dict(s.read()), before)
            self.assertEqual(s.read()[""].props, {A: V1})

    def test_staged_changes_invisible_before_commit(self):
        store = self.make_store()
        txn = store.begin()
        txn.set("", A, V1)
        txn.commit()
        snapshot = store.read()
        txn = store.begin()
        txn.set("", A, V2)
        txn.set("new", B, VB)
        txn.drop("")
        self.assertEqual(store.read()[""].props, {A: V1})
        self.assertNotIn("new", store.read())
        self.assertEqual(self.reopen(store).read()[""].props, {A: V1})
        self.assertEqual(snapshot[""].props, {A: V1})  # published entries never mutate
        txn.commit()
        self.assertEqual(set(store.read()), {"new"})
        self.assertEqual(snapshot[""].props, {A: V1})

    def test_values_round_trip_byte_exactly(self):
        store = self.make_store()
        txn = store.begin()
        for key, v in TRICKY:
            txn.set("", key, v)
            txn.set("a&b'\U0001F600.txt", key, v)
        txn.commit()
        for s in (store, self.reopen(store)):
            state = s.read()
            for member in ("", "a&b'\U0001F600.txt"):
                self.assertEqual(list(state[member].props.items()), TRICKY)

    def test_member_names(self):
        store = self.make_store()
        names = ["日本語.txt", "a&b.js", "q'uote", "\U0001F600", "x" * 256]
        txn = store.begin()
        for name in names:
            txn.set(name, A, V1)
        txn.commit()
        self.assertEqual(set(self.reopen(store).read()), set(names))


class MemoryStoreTests(StoreConformanceMixin, SynchronousTestCase):
    def make_store(self):
        return MemoryPropertyStore()

    def reopen(self, store):
        return store


class SidecarStoreTests(StoreConformanceMixin, SynchronousTestCase):
    def make_store(self):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        return SidecarPropertyStore(directory)

    def reopen(self, store):
        """A new store object with the shared cache emptied: read from disk."""
        props._cache.pop(store.path, None)
        return SidecarPropertyStore(store.directory)

    def commit(self, store, member, key, v):
        txn = store.begin()
        txn.set(member, key, v)
        txn.touch(member, 1)
        return txn.commit()

    def test_no_file_until_first_commit(self):
        store = self.make_store()
        store.read()
        txn = store.begin()
        txn.set("", A, V1)
        txn.abort()
        self.assertFalse(os.path.exists(store.path))

    def test_file_layout(self):
        store = self.make_store()
        self.commit(store, "", A, V1)
        self.commit(store, "f.txt", B, VB)
        self.assertEqual(os.path.basename(store.path), layout.SIDECAR)
        root = etree.parse(store.path).getroot()
        self.assertEqual(root.tag, "{urn:x-personium-dav:sidecar}sidecar")
        self.assertRegex(root.get("version"), r"^1\.\d+$")
        self.assertEqual([c.tag.split("}")[1] for c in root], ["self", "member"])
        self.assertEqual(root[1].get("name"), "f.txt")
        self.assertEqual(root[1].get("version"), "1")
        self.assertEqual(freeze(root[0][0]), V1)

    def test_temporary_file_does_not_remain(self):
        store = self.make_store()
        for i in range(3):
            self.commit(store, "", A, V1 if i % 2 else V2)
            self.assertEqual(sorted(os.listdir(store.directory)), [layout.SIDECAR])

    def test_non_durable_commit_also_atomic(self):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        store = SidecarPropertyStore(directory, durable=False)
        self.commit(store, "", A, V1)
        self.assertEqual(os.listdir(directory), [layout.SIDECAR])
        self.assertEqual(self.reopen(store).read()[""].props, {A: V1})

    def write_raw(self, store, data):
        with open(store.path, "wb") as f:
            f.write(data)
        props._cache.pop(store.path, None)

    def test_unknown_major_version_refused(self):
        store = self.make_store()
        self.commit(store, "", A, V1)
        data = open(store.path, "rb").read()
        self.assertIn(b'version="1.0"', data)
        self.write_raw(store, data.replace(b'version="1.0"', b'version="2.0"', 1))
        self.assertRaises(CorruptSidecar, SidecarPropertyStore(store.directory).read)
        self.write_raw(store, data.replace(b' version="1.0"', b"", 1))
        self.assertRaises(CorruptSidecar, SidecarPropertyStore(store.directory).read)

    def test_newer_minor_version_read(self):
        store = self.make_store()
        self.commit(store, "", A, V1)
        data = open(store.path, "rb").read()
        self.write_raw(store, data.replace(b'version="1.0"', b'version="1.9"', 1))
        self.assertEqual(SidecarPropertyStore(store.directory).read()[""].props, {A: V1})

    def test_not_a_sidecar_refused(self):
        store = self.make_store()
        for data in (b"<half", b"<other/>", b"", b'<s:sidecar xmlns:s="urn:wrong" version="1.0"/>'):
            self.write_raw(store, data)
            self.assertRaises(CorruptSidecar, SidecarPropertyStore(store.directory).read)

    def test_cache_revalidates_after_another_process_commits(self):
        store = self.make_store()
        self.commit(store, "", A, V1)
        self.assertEqual(store.read()[""].props, {A: V1})  # cached now
        # Another process: its commit cannot touch this process's cache.
        # The new value has the same size, so only the stat key tells.
        self.assertEqual(len(V1), len(value('<x:a xmlns:x="urn:t">ONE</x:a>')))
        run_in_child(_child_commit, store.directory, "ONE")
        self.assertEqual(store.read()[""].props, {A: value('<x:a xmlns:x="urn:t">ONE</x:a>')})
        self.assertEqual(SidecarPropertyStore(store.directory).read()[""].props,
                         {A: value('<x:a xmlns:x="urn:t">ONE</x:a>')})

    def test_cache_key_holds_ctime(self):
        """Bytes rewritten in place with size and mtime kept: the ctime tells."""
        self.patch(layout, "SETTLE_NS", 0)
        store = self.make_store()
        self.commit(store, "", A, V1)
        self.assertEqual(store.read()[""].props, {A: V1})
        self.assertTrue(props._cache[store.path][3])  # settled: the stat key is trusted
        st = os.stat(store.path)
        data = open(store.path, "rb").read()
        with open(store.path, "r+b") as f:
            f.write(data.replace(b">one<", b">two<"))
        os.utime(store.path, ns=(st.st_atime_ns, st.st_mtime_ns))
        self.assertEqual(os.stat(store.path).st_size, st.st_size)
        self.assertEqual(store.read()[""].props, {A: V2})

    def test_unsettled_stat_key_not_trusted(self):
        """A stat key younger than SETTLE_NS can repeat after a replacement
        (reused inode, coarse ctime): such a hit is checked against the bytes."""
        store = self.make_store()
        self.commit(store, "", A, V1)
        key, state, data, settled = props._cache[store.path]
        self.assertFalse(settled)  # just written
        stale = {"": Entry(props={A: V2})}
        props._cache[store.path] = (key, stale, b"older bytes", False)
        self.assertEqual(store.read()[""].props, {A: V1})
        props._cache[store.path] = (key, stale, b"older bytes", True)
        self.assertIs(store.read(), stale)  # a settled key is trusted

    def test_cache_shared_by_store_objects(self):
        store = self.make_store()
        other = SidecarPropertyStore(store.directory)
        self.commit(other, "", A, V1)
        self.assertEqual(store.read()[""].props, {A: V1})
        self.assertIs(store.read(), other.read())

    def test_parses_after_many_commits(self):
        store = self.make_store()
        expected = {}
        for i in range(150):
            member = "" if i % 3 == 0 else "m%d.txt" % (i % 7)
            key = (T, "k%d" % (i % 11))
            v = value('<x:k%d xmlns:x="urn:t" n="%d">%s</x:k%d>'
                      % (i % 11, i, "\U0001F600" * (i % 5), i % 11))
            txn = store.begin()
            if i % 13 == 12 and member in expected:
                txn.drop(member)
                expected.pop(member)
            else:
                txn.set(member, key, v)
                txn.touch(member, i)
                expected.setdefault(member, {})[key] = v
            txn.commit()
        root = etree.parse(store.path).getroot()  # well-formed
        self.assertEqual(len(root), len(expected))
        state = self.reopen(store).read()
        self.assertEqual({m: e.props for m, e in state.items()}, expected)
        self.assertEqual(sorted(os.listdir(store.directory)), [layout.SIDECAR])


def run_in_child(target, *args):
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=target, args=args)
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0, "child failed: %r" % proc.exitcode


def _child_commit(directory, text):
    store = SidecarPropertyStore(directory)
    txn = store.begin()
    txn.set("", A, value('<x:a xmlns:x="urn:t">%s</x:a>' % text))
    txn.commit()


COUNTER = ("urn:c", "n")


def _increment(tree, directory, worker, rounds):
    """Read-modify-write under the directory's lock: one property of this
    worker per round, and a counter every worker increments."""
    for i in range(rounds):
        with tree.locked(directory):
            store = tree.props(directory)
            txn = store.begin()
            entry = txn.state.get("")
            current = entry.props.get(COUNTER) if entry else None
            n = int(etree.fromstring(current).text) if current else 0
            txn.set("", COUNTER, value('<c:n xmlns:c="urn:c">%d</c:n>' % (n + 1)))
            txn.set("", (T, "w%d-%d" % (worker, i)), value('<x:w%d-%d xmlns:x="urn:t"/>'
                                                          % (worker, i)))
            txn.touch("", i)
            txn.commit()


def _process_worker(root, directory, worker, rounds):
    props._cache.clear()
    _increment(Tree(root), directory, worker, rounds)


class LockedReadModifyWriteTests(SynchronousTestCase):
    WORKERS, ROUNDS = 4, 25

    def setUp(self):
        self.root = os.path.abspath(self.mktemp())
        self.directory = os.path.join(self.root, "col")
        os.makedirs(self.directory)

    def check(self):
        props._cache.pop(os.path.join(self.directory, layout.SIDECAR), None)
        entry = SidecarPropertyStore(self.directory).read()[""]
        total = self.WORKERS * self.ROUNDS
        names = {k for k in entry.props if k != COUNTER}
        self.assertEqual(names, {(T, "w%d-%d" % (w, i)) for w in range(self.WORKERS)
                                 for i in range(self.ROUNDS)})
        self.assertEqual(int(etree.fromstring(entry.props[COUNTER]).text), total)
        self.assertEqual(entry.version, total)
        self.assertIn(layout.LOCK, os.listdir(self.directory))

    def test_threads(self):
        tree = Tree(self.root, durable=False)
        errors = []

        def run(worker):
            try:
                _increment(tree, self.directory, worker, self.ROUNDS)
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=run, args=(w,)) for w in range(self.WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.check()

    def test_processes(self):
        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=_process_worker,
                             args=(self.root, self.directory, w, self.ROUNDS))
                 for w in range(self.WORKERS)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        self.assertEqual([p.exitcode for p in procs], [0] * self.WORKERS)
        self.check()


class XattrProbeTests(SynchronousTestCase):
    def test_processes_starting_together(self):
        """Servers started at once on one root (``--workers``, a test's two
        processes) each probe extended attributes without removing another's
        probe, and leave none behind."""
        root = self.mktemp()
        os.makedirs(root)
        failures = []

        def probe():
            try:
                for _ in range(100):
                    layout.check_xattrs(root)
            except Exception as e:  # noqa: BLE001 -- reported below
                failures.append(e)

        threads = [threading.Thread(target=probe) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(failures, [])
        self.assertEqual(os.listdir(root), [])


class MemberCountTests(SynchronousTestCase):
    """``Tree.count_members``: recorded in the collection's lock file with
    the directory's stat key, reused while the key holds, scanned otherwise."""

    def setUp(self):
        self.tree = Tree(os.path.abspath(self.mktemp()), durable=False)
        self.tree.make_dirs()
        self.dir = os.path.join(self.tree.root, "c")
        os.makedirs(self.dir)
        for name in ("a", "b", ":props.xml", ":h" + "0" * 64):
            with open(os.path.join(self.dir, name), "wb"):
                pass

    def count(self):
        with self.tree.locked(self.dir):
            return self.tree.count_members(self.dir)

    def test_counts_members_not_bookkeeping(self):
        self.assertEqual(self.count(), 3)  # a, b and the hashed name

    def test_recorded_count_reused_while_the_directory_is_unchanged(self):
        self.count()
        key = layout.read_count(self.dir)[1]
        layout.write_count(self.dir, 99, key)  # a record for this very state
        self.assertEqual(self.count(), 99)

    def test_any_change_of_the_directory_counts_again(self):
        self.assertEqual(self.count(), 3)
        # right after the key was taken (no sleep): the key still moves
        for change, expected in ((lambda: open(os.path.join(self.dir, "c"), "wb").close(), 4),
                                 (lambda: os.unlink(os.path.join(self.dir, "a")), 3),
                                 (lambda: os.mkdir(os.path.join(self.dir, "d")), 4),
                                 (lambda: os.rename(os.path.join(self.dir, "d"),
                                                    os.path.join(self.dir, "e")), 4)):
            change()
            self.assertEqual(self.count(), expected)

    def test_counted_records_a_writers_addition(self):
        with self.tree.locked(self.dir):
            members = self.tree.count_members(self.dir)
            open(os.path.join(self.dir, "new"), "wb").close()
            self.tree.counted(self.dir, members + 1)
        self.assertEqual(layout.read_count(self.dir)[0], 4)
        self.assertEqual(self.count(), 4)

    def test_damaged_record_ignored(self):
        for junk in (b"", b"x y z", b"1 2 3", b"\xff" * 200):
            with open(os.path.join(self.dir, layout.LOCK), "wb") as f:
                f.write(junk)
            self.assertEqual(self.count(), 3)
