"""The sidecars: their own guarantees (round trips, the file, versions,
the cache and when it is trusted, file ids), and lost-update freedom of
read-modify-write under ``Tree.locked`` across threads and processes."""
import errno
import multiprocessing
import os
import threading

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from personium_dav.dav.xmlutil import freeze, parse
from personium_dav.store import layout
from personium_dav.store import props as props_module
from personium_dav.store.props import COMPACT_AT, RECORD, CorruptSidecar, Entry, Sidecars, find
from personium_dav.store.tree import Tree

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


def props_of(state, name="", fid=""):
    entry = find(state, name, fid)
    return entry.props if entry is not None else None


class SidecarCase(SynchronousTestCase):
    def setUp(self):
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.sidecars = Sidecars()
        self.path = os.path.join(self.directory, layout.SIDECAR)

    def read(self):
        return self.sidecars.read(self.directory)

    def reread(self):
        """The same file seen afresh, as another process would."""
        return Sidecars().read(self.directory)

    def both(self):
        return (self.read(), self.reread())

    def begin(self):
        return self.sidecars.begin(self.directory)

    def commit(self, member, key, v, fid=""):
        txn = self.begin()
        txn.set(member, fid, key, v)
        txn.touch(member, fid, 1)
        return txn.commit()

    def write_raw(self, data):
        with open(self.path, "wb") as f:
            f.write(data)


class SidecarTests(SidecarCase):
    def test_empty(self):
        for state in self.both():
            self.assertEqual(dict(state), {})

    def test_set_commit_visible(self):
        txn = self.begin()
        txn.set("", "", A, V1)
        txn.set("f.txt", "id1", B, VB)
        self.assertEqual(props_of(txn.state), {A: V1})
        txn.commit()
        for state in self.both():
            self.assertEqual(set(state), {"", "f.txt"})
            self.assertEqual(props_of(state), {A: V1})
            self.assertEqual(props_of(state, "f.txt", "id1"), {B: VB})
            self.assertIsNone(find(state, "f.txt", ""))  # another file's entry

    def test_set_replaces_and_keeps_order(self):
        txn = self.begin()
        txn.set("", "", A, V1)
        txn.set("", "", B, VB)
        txn.commit()
        txn = self.begin()
        txn.set("", "", A, V2)
        txn.commit()
        for state in self.both():
            self.assertEqual(list(props_of(state).items()), [(A, V2), (B, VB)])

    def test_remove(self):
        txn = self.begin()
        txn.set("", "", A, V1)
        txn.set("", "", B, VB)
        txn.commit()
        txn = self.begin()
        txn.remove("", "", A)
        txn.remove("", "", C)  # absent: not an error
        txn.remove("nobody", "x", A)
        txn.commit()
        for state in self.both():
            self.assertEqual(props_of(state), {B: VB})

    def test_document_order_within_a_transaction(self):
        txn = self.begin()
        txn.set("", "", A, V1)
        txn.remove("", "", A)
        txn.set("", "", B, VB)
        txn.remove("", "", B)
        txn.set("", "", B, VB)
        txn.commit()
        self.assertEqual(props_of(self.reread()), {B: VB})

    def test_touch(self):
        txn = self.begin()
        txn.touch("f.txt", "i", 1000)
        txn.commit()
        first = find(self.reread(), "f.txt", "i")
        self.assertEqual((first.version, first.modified), (1, 1000))
        txn = self.begin()
        txn.set("f.txt", "i", A, V1)
        txn.touch("f.txt", "i", 2000)
        txn.commit()
        second = find(self.reread(), "f.txt", "i")
        self.assertEqual((second.version, second.modified), (2, 2000))
        self.assertEqual(second.props, {A: V1})

    def test_keep(self):
        """Two files' entries under one name (one replacing the other), and
        dropping all but one, or all."""
        txn = self.begin()
        txn.set("f.txt", "old", A, V1)
        txn.set("f.txt", "new", A, V2)
        txn.set("g.txt", "g", B, VB)
        txn.commit()
        for state in self.both():
            self.assertEqual(props_of(state, "f.txt", "old"), {A: V1})
            self.assertEqual(props_of(state, "f.txt", "new"), {A: V2})
        txn = self.begin()
        txn.keep("f.txt", ("new",))
        txn.keep("g.txt")
        txn.keep("never.txt")
        txn.commit()
        for state in self.both():
            self.assertEqual(set(state), {"f.txt"})
            self.assertEqual([e.fid for e in state["f.txt"]], ["new"])

    def test_put(self):
        entry = Entry(props={A: V1, B: VB}, version=7, modified=1234, created=1000,
                      kind="service")
        txn = self.begin()
        txn.put("", "", entry)
        txn.put("m.js", "i", Entry(props=dict(TRICKY[:1]), version=3, modified=99))
        txn.commit()
        state = self.reread()
        self.assertEqual(find(state, ""), entry)
        self.assertEqual(find(state, "m.js", "i"),
                         Entry(props=dict(TRICKY[:1]), version=3, modified=99, fid="i"))

    def test_staged_changes_invisible_before_commit(self):
        txn = self.begin()
        txn.set("", "", A, V1)
        txn.commit()
        snapshot = self.read()
        txn = self.begin()
        txn.set("", "", A, V2)
        txn.set("new", "n", B, VB)
        txn.keep("")
        self.assertEqual(props_of(self.read()), {A: V1})
        self.assertNotIn("new", self.read())
        self.assertEqual(props_of(self.reread()), {A: V1})
        self.assertEqual(props_of(snapshot), {A: V1})  # published entries never mutate
        txn.commit()
        self.assertEqual(set(self.read()), {"new"})
        self.assertEqual(props_of(snapshot), {A: V1})

    def test_values_round_trip_byte_exactly(self):
        txn = self.begin()
        for key, v in TRICKY:
            txn.set("", "", key, v)
            txn.set("a&b'\U0001F600.txt", "i", key, v)
        txn.commit()
        for state in self.both():
            self.assertEqual(list(props_of(state).items()), TRICKY)
            self.assertEqual(list(props_of(state, "a&b'\U0001F600.txt", "i").items()), TRICKY)

    def test_member_names(self):
        names = ["日本語.txt", "a&b.js", "q'uote", "\U0001F600", "x" * 256]
        txn = self.begin()
        for name in names:
            txn.set(name, "i", A, V1)
        txn.commit()
        self.assertEqual(set(self.reread()), set(names))

    def test_no_file_until_first_commit(self):
        self.read()
        txn = self.begin()
        txn.set("", "", A, V1)
        self.assertFalse(os.path.exists(self.path))

    def test_file_layout(self):
        self.commit("", A, V1)
        self.commit("f.txt", B, VB, fid="xyz")
        self.sidecars._rewrite(self.directory, self.read())  # one base document
        root = etree.parse(self.path).getroot()
        self.assertEqual(root.tag, "{urn:x-personium-dav:sidecar}sidecar")
        self.assertRegex(root.get("version"), r"^3\.\d+$")
        self.assertEqual([c.tag.split("}")[1] for c in root], ["self", "member"])
        self.assertEqual(root[1].get("name"), "f.txt")
        self.assertEqual(root[1].get("id"), "xyz")
        self.assertEqual(root[1].get("version"), "1")
        self.assertEqual(freeze(root[0][0]), V1)

    def test_version_1_still_read(self):
        """A sidecar written before file ids: its members match files without one."""
        with open(self.path, "wb") as f:
            f.write(b'<?xml version="1.0" encoding="utf-8"?>\n'
                    b'<s:sidecar xmlns:s="urn:x-personium-dav:sidecar" version="1.0">'
                    b'<s:member name="f.txt" version="2" modified="5">'
                    + V1 + b"</s:member></s:sidecar>")
        self.assertEqual(props_of(self.reread(), "f.txt", ""), {A: V1})

    def test_temporary_file_does_not_remain(self):
        for i in range(3):
            self.commit("", A, V1 if i % 2 else V2)
            self.assertEqual(sorted(os.listdir(self.directory)), [layout.SIDECAR])

    def test_non_durable_commit_also_atomic(self):
        self.sidecars = Sidecars(durable=False)
        self.commit("", A, V1)
        self.assertEqual(os.listdir(self.directory), [layout.SIDECAR])
        self.assertEqual(props_of(self.reread()), {A: V1})

    def test_unknown_major_version_refused(self):
        self.commit("", A, V1)
        data = open(self.path, "rb").read()
        self.assertIn(b'version="3.0"', data)
        self.write_raw(data.replace(b'version="3.0"', b'version="4.0"', 1))
        self.assertRaises(CorruptSidecar, self.reread)
        self.write_raw(data.replace(b' version="3.0"', b"", 1))
        self.assertRaises(CorruptSidecar, self.reread)

    def test_newer_minor_version_read(self):
        self.commit("", A, V1)
        data = open(self.path, "rb").read()
        self.write_raw(data.replace(b'version="3.0"', b'version="3.9"', 1))
        self.assertEqual(props_of(self.reread()), {A: V1})

    def test_not_a_sidecar_refused(self):
        for data in (b"<half", b"<other/>", b"", b'<s:sidecar xmlns:s="urn:wrong" version="1.0"/>'):
            self.write_raw(data)
            self.assertRaises(CorruptSidecar, self.reread)

    def test_cache_revalidates_after_another_process_commits(self):
        self.commit("", A, V1)
        self.assertEqual(props_of(self.read()), {A: V1})  # cached now
        # Another process: its commit cannot touch this process's cache.
        # The new value has the same size, so only the stat key tells.
        self.assertEqual(len(V1), len(value('<x:a xmlns:x="urn:t">ONE</x:a>')))
        run_in_child(_child_commit, self.directory, "ONE")
        self.assertEqual(props_of(self.read()), {A: value('<x:a xmlns:x="urn:t">ONE</x:a>')})

    def test_cache_key_holds_ctime(self):
        """Bytes rewritten in place with size and mtime kept: the ctime tells."""
        self.patch(layout, "SETTLE_NS", 0)
        self.commit("", A, V1)
        self.assertEqual(props_of(self.read()), {A: V1})
        self.assertTrue(self.sidecars._cache[self.path][3])  # settled: the key is trusted
        st = os.stat(self.path)
        data = open(self.path, "rb").read()
        with open(self.path, "r+b") as f:
            f.write(data.replace(b">one<", b">two<"))
        os.utime(self.path, ns=(st.st_atime_ns, st.st_mtime_ns))
        self.assertEqual(os.stat(self.path).st_size, st.st_size)
        self.assertEqual(props_of(self.read()), {A: V2})

    def test_unsettled_stat_key_not_trusted(self):
        """A stat key younger than SETTLE_NS can repeat after a replacement
        (reused inode, coarse ctime): such a hit is checked against the bytes."""
        self.commit("", A, V1)
        key, state, data, settled = self.sidecars._cache[self.path]
        self.assertFalse(settled)  # just written
        stale = {"": (Entry(props={A: V2}),)}
        self.sidecars._cache[self.path] = (key, stale, b"older bytes", False)
        self.assertEqual(props_of(self.read()), {A: V1})
        self.sidecars._cache[self.path] = (key, stale, b"older bytes", True)
        self.assertIs(self.read(), stale)  # a settled key is trusted

    def test_inline_read_misses_instead_of_parsing(self):
        """On the reactor thread a small sidecar is parsed at once, a large
        one never (``Miss``: the caller reads it in a thread); once cached,
        its bytes are only compared."""
        from personium_dav.store import props

        self.commit("", A, V1)
        self.assertEqual(props_of(Sidecars().read(self.directory, True)), {A: V1})
        big = value('<x:a xmlns:x="urn:t">%s</x:a>' % ("v" * props.INLINE_PARSE))
        self.commit("", A, big)
        self.assertRaises(props.Miss, Sidecars().read, self.directory, True)
        self.assertEqual(props_of(self.sidecars.read(self.directory, True)), {A: big})

    def test_cache_is_bounded(self):
        """Least recently read sidecars go first once the bytes pass the budget."""
        sidecars = Sidecars(durable=False, budget=3000)
        directories = []
        for i in range(6):
            d = os.path.join(self.directory, "d%d" % i)
            os.mkdir(d)
            txn = sidecars.begin(d)
            txn.set("", "", A, value('<x:a xmlns:x="urn:t">%s</x:a>' % ("v" * 500)))
            txn.commit()
            directories.append(d)
        self.assertLessEqual(sidecars._size, 3000)
        self.assertLess(len(sidecars._cache), 6)
        self.assertIn(os.path.join(directories[-1], layout.SIDECAR), sidecars._cache)

    def test_parses_after_many_commits(self):
        expected = {}
        for i in range(150):
            member = "" if i % 3 == 0 else "m%d.txt" % (i % 7)
            fid = "" if member == "" else "i"
            key = (T, "k%d" % (i % 11))
            v = value('<x:k%d xmlns:x="urn:t" n="%d">%s</x:k%d>'
                      % (i % 11, i, "\U0001F600" * (i % 5), i % 11))
            txn = self.begin()
            if i % 13 == 12 and member in expected:
                txn.keep(member)
                expected.pop(member)
            else:
                txn.set(member, fid, key, v)
                txn.touch(member, fid, i)
                expected.setdefault(member, {})[key] = v
            txn.commit()
        data = open(self.path, "rb").read()
        base = data.split(RECORD)[0]
        etree.fromstring(base)  # a well-formed base, records after it
        self.assertLessEqual(len(data) - len(base), max(COMPACT_AT, len(base)))
        state = self.reread()
        self.assertEqual({m: e[0].props for m, e in state.items()}, expected)
        self.assertEqual(sorted(os.listdir(self.directory)), [layout.SIDECAR])


class ChangeRecordTests(SidecarCase):
    """Format 3: a commit appends a record of what it changed; torn
    records are not part of the state; records give way to a new base."""

    def data(self):
        with open(self.path, "rb") as f:
            return f.read()

    def test_commit_appends_in_place(self):
        self.commit("", A, V1)
        first, ino = self.data(), os.stat(self.path).st_ino
        self.assertNotIn(RECORD, first)
        self.commit("f.txt", B, VB, fid="i")
        second = self.data()
        self.assertEqual(os.stat(self.path).st_ino, ino)  # no rename
        self.assertTrue(second.startswith(first + RECORD))
        self.assertEqual(second.count(RECORD), 1)
        self.assertIn(b'<s:drop name="f.txt"/>', second[len(first):])
        self.assertNotIn(b"one", second[len(first):])  # only what changed
        for state in (self.read(), self.reread()):
            self.assertEqual(props_of(state), {A: V1})
            self.assertEqual(props_of(state, "f.txt", "i"), {B: VB})

    def test_removal_is_a_record(self):
        self.commit("f.txt", B, VB, fid="i")
        self.commit("", A, V1)
        txn = self.begin()
        txn.keep("f.txt")
        txn.commit()
        self.assertEqual(self.data().count(RECORD), 2)
        self.assertEqual(set(self.reread()), {""})

    def test_torn_record_is_not_state_and_is_written_over(self):
        """What a crash during an append leaves: the state before it."""
        self.commit("", A, V1)
        self.commit("", A, V2)
        whole = self.data()
        cut = whole.rindex(RECORD)
        for torn, seen in ((whole[:cut + 5], V1), (whole[:cut + 30], V1), (whole[:-1], V1),
                           (whole[:-1] + b"X", V1), (whole + b"\0" * 40, V2)):
            self.write_raw(torn)
            self.assertEqual(props_of(self.reread()), {A: seen}, torn[cut:])
        self.write_raw(whole[:cut + 30])
        self.commit("f.txt", B, VB, fid="i")  # from a fresh read of the torn file
        for state in (self.read(), self.reread()):
            self.assertEqual(props_of(state), {A: V1})
            self.assertEqual(props_of(state, "f.txt", "i"), {B: VB})

    def test_a_reader_parses_only_what_was_appended(self):
        """Another process's commit: the entries of names it did not change
        are the very objects read before."""
        self.commit("f.txt", B, VB, fid="i")
        self.commit("", A, V1)
        before = self.read()
        run_in_child(_child_commit, self.directory, "ONE")
        after = self.read()
        self.assertIs(after["f.txt"], before["f.txt"])
        self.assertEqual(props_of(after), {A: value('<x:a xmlns:x="urn:t">ONE</x:a>')})

    def test_records_give_way_to_a_new_base(self):
        self.commit("", A, V1)
        base = len(self.data())
        seen_compaction = False
        for i in range(400):
            self.commit("m%d" % (i % 9), B, value('<x:b xmlns:x="urn:t">%d</x:b>' % i), fid="i")
            data = self.data()
            if RECORD not in data:
                seen_compaction = True
            self.assertLessEqual(len(data) - len(data.split(RECORD)[0]),
                                 max(COMPACT_AT, len(data.split(RECORD)[0])))
        self.assertTrue(seen_compaction)
        self.assertGreater(COMPACT_AT, base)
        state = self.reread()
        self.assertEqual(props_of(state, "m0", "i"), {B: value('<x:b xmlns:x="urn:t">396</x:b>')})
        self.assertEqual(sorted(os.listdir(self.directory)), [layout.SIDECAR])

    def test_a_version_2_0_sidecar_is_upgraded_by_its_first_commit(self):
        """The upgrade: a sidecar of the format before is read as it is; the
        first commit writes it anew as 3.0, with nothing lost, and the next
        ones append."""
        old = (b'<?xml version="1.0" encoding="utf-8"?>\n'
               b'<s:sidecar xmlns:s="urn:x-personium-dav:sidecar" version="2.0">\n'
               b'<s:self kind="collection" version="1" created="5" modified="5">' + V1
               + b'</s:self>\n<s:member name="f.txt" id="i" version="2" modified="5">' + VB
               + b"</s:member>\n</s:sidecar>\n")
        self.write_raw(old)
        self.assertEqual(props_of(self.reread(), "f.txt", "i"), {B: VB})
        self.commit("", A, V2)
        upgraded = self.data()
        self.assertNotIn(RECORD, upgraded)
        self.assertIn(b'version="3.0"', upgraded)
        vc = value('<x:c xmlns:x="urn:t">3</x:c>')
        self.commit("", C, vc)
        self.assertTrue(self.data().startswith(upgraded + RECORD))
        state = self.reread()
        self.assertEqual(props_of(state), {A: V2, C: vc})
        self.assertEqual(props_of(state, "f.txt", "i"), {B: VB})
        self.assertEqual(find(state, "", "").kind, "collection")

    def test_full_disk_during_an_append(self):
        """Half a record written, then ENOSPC: the file is cut back, the
        error raised, the state before it read by everyone."""
        self.commit("", A, V1)
        before = self.data()
        real = os.pwrite

        def half(fd, data, offset):
            if len(data) > 10:
                real(fd, data[:len(data) // 2], offset)
            raise OSError(errno.ENOSPC, "full")

        self.patch(props_module.os, "pwrite", half)
        txn = self.begin()
        txn.set("", "", A, V2)
        self.assertRaises(OSError, txn.commit)
        self.assertEqual(self.data(), before)
        self.assertEqual(props_of(self.read()), {A: V1})
        self.assertEqual(props_of(self.reread()), {A: V1})

    def test_relaxed_and_durable_append_alike(self):
        synced = []
        real = os.fsync
        self.patch(props_module.os, "fsync", lambda fd: (synced.append(fd), real(fd)))
        self.commit("", A, V1)
        self.commit("", A, V2)  # a record: one fsync, of the sidecar
        self.assertEqual(len(synced), 3)  # the base, its directory, the record
        self.sidecars = Sidecars(durable=False)
        self.commit("", B, VB)
        self.assertEqual(len(synced), 3)
        self.assertEqual(props_of(self.reread()), {A: V2, B: VB})


def run_in_child(target, *args):
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=target, args=args)
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0, "child failed: %r" % proc.exitcode


def _child_commit(directory, text):
    txn = Sidecars().begin(directory)
    txn.set("", "", A, value('<x:a xmlns:x="urn:t">%s</x:a>' % text))
    txn.commit()


COUNTER = ("urn:c", "n")


def _increment(tree, directory, worker, rounds):
    """Read-modify-write under the directory's lock: one property of this
    worker per round, and a counter every worker increments."""
    for i in range(rounds):
        with tree.locked(directory):
            txn = tree.sidecars.begin(directory)
            entry = txn.entry("")
            current = entry.props.get(COUNTER) if entry else None
            n = int(etree.fromstring(current).text) if current else 0
            txn.set("", "", COUNTER, value('<c:n xmlns:c="urn:c">%d</c:n>' % (n + 1)))
            txn.set("", "", (T, "w%d-%d" % (worker, i)), value('<x:w%d-%d xmlns:x="urn:t"/>'
                                                              % (worker, i)))
            txn.touch("", "", i)
            txn.commit()


def _process_worker(root, directory, worker, rounds):
    _increment(Tree(root), directory, worker, rounds)


class LockedReadModifyWriteTests(SynchronousTestCase):
    WORKERS, ROUNDS = 4, 25

    def setUp(self):
        self.root = os.path.abspath(self.mktemp())
        self.directory = os.path.join(self.root, "col")
        os.makedirs(self.directory)

    def check(self):
        entry = find(Sidecars().read(self.directory), "")
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
