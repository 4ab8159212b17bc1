"""Crashes at every step of a replacing MOVE or COPY: the target is the old
resource or the new one, each with its own properties, never neither; what
a crash left is settled by the next start (intent records, owners), and
only when its owner is dead (docs/reliability.md, "Crash safety").

Each case runs the operation in a forked process that ``_exit``s just
before its N-th step that changes the disk (a rename, an unlink, an fsync,
an extended attribute...), for N = 1, 2, ... until the operation completes
without reaching N; after each crash a fresh store (as a restarted server)
recovers and the state is checked.
"""
import os
import shutil

from twisted.trial.unittest import SynchronousTestCase

from personium_dav.auth.privileges import AclPolicy, Principal
from personium_dav.config import Config
from personium_dav.dav.xmlutil import freeze, parse
from personium_dav.store import layout, owners
from personium_dav.store.box import Caller, Store
from personium_dav.store.provision import create_box

OWNER = Caller(Principal(owner=True))
STEPS = ("rename", "replace", "unlink", "rmdir", "mkdir", "fsync", "setxattr")


def note(text):
    return freeze(parse(('<D:prop xmlns:D="DAV:"><x:note xmlns:x="urn:t">%s</x:note></D:prop>'
                         % text).encode())[0])


NOTE = ("urn:t", "note")


def crash_before(step):
    """Make the N-th change of the disk kill the process before it happens."""
    count = [0]
    for name in STEPS:
        real = getattr(os, name)

        def wrapped(*args, _real=real, **kwargs):
            count[0] += 1
            if count[0] == step:
                os._exit(137)
            return _real(*args, **kwargs)

        setattr(os, name, wrapped)


def run_crashing(root, config, step, operation):
    """Fork; in the child, open a store on ``root`` and run ``operation(box)``
    with a crash before the step ``step``. True when it completed."""
    pid = os.fork()
    if pid == 0:
        try:
            store = Store(root, config, AclPolicy())
            box = store.box("cell1", "box1")
            crash_before(step)
            operation(box)
        except BaseException:
            os._exit(3)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 137), "the operation failed (%d) before its crash" % code
    return code == 0


class ReplacingWrites(SynchronousTestCase):
    config = Config(collection_semantics="rfc4918")

    def setUp(self):
        self.template = os.path.abspath(self.mktemp())
        create_box(self.template, "cell1", "box1")
        store = Store(self.template, self.config, AclPolicy())
        self.setup(store.box("cell1", "box1"))
        store.close()

    def file(self, box, names, body, text):
        box.put(OWNER, names, body)
        box.proppatch(OWNER, names, [("set", NOTE, note(text))])

    def setup(self, box):
        self.file(box, ["src.txt"], b"new bytes", "new props")
        self.file(box, ["dst.txt"], b"old bytes", "old props")
        for name, word in (("srccol", "new"), ("dstcol", "old")):
            box.mkcol(OWNER, [name])
            box.proppatch(OWNER, [name], [("set", NOTE, note(word + " col"))])
            self.file(box, [name, "inner.txt"], word.encode(), word + " inner")

    def state(self, root, names):
        """(kind, bytes or member names, note) at ``names`` after a restart, or None."""
        store = Store(root, self.config, AclPolicy())
        store.recover()
        self.assertEqual(store.recover(), 0)  # settled once: nothing more
        try:
            loc = store.box("cell1", "box1").locate(names)
            info = loc.info
            if info is None:
                return None
            text = info.props.get(NOTE)
            text = None if text is None else text.split(b">")[1].split(b"<")[0].decode()
            if info.kind == "file":
                with open(info.path, "rb") as f:
                    return "file", f.read(), text
            members = sorted(m.name for m in store.box("cell1", "box1").members(info))
            inner = [self.state_of_member(store, names + [m]) for m in members]
            return "collection", tuple(zip(members, inner)), text
        finally:
            store.close()

    @staticmethod
    def state_of_member(store, names):
        info = store.box("cell1", "box1").locate(names).info
        with open(info.path, "rb") as f:
            return f.read(), info.props.get(NOTE, b"").split(b">")[1].split(b"<")[0].decode()

    def crash_everywhere(self, source, target, move):
        """Old-or-new at the target (and the source consistent with it) after
        a crash at every step; the leftovers gone once settled."""
        before = {n: self.state(self.template, [n]) for n in (source, target)}
        step, done = 1, False
        while not done:
            root = os.path.abspath(self.mktemp())
            shutil.copytree(self.template, root, symlinks=True)
            for name in os.listdir(os.path.join(root, layout.OWNERS)):
                os.unlink(os.path.join(root, layout.OWNERS, name))

            def operation(box):
                (box.move if move else box.copy)(OWNER, [source], [target])

            done = run_crashing(root, self.config, step, operation)
            after_target = self.state(root, [target])
            after_source = self.state(root, [source])
            if after_target == before[target]:  # the old one: nothing happened
                self.assertEqual(after_source, before[source], step)
            else:
                self.assertEqual(after_target, before[source], step)  # the new one, whole
                self.assertEqual(after_source, None if move else before[source], step)
            for folder in (layout.TMP, layout.TRASH, layout.JOURNAL):
                self.assertEqual(os.listdir(os.path.join(root, folder)), [], (step, folder))
            step += 1
        self.assertGreater(step, 4)  # it had steps to crash in

    def test_move_file_over_file(self):
        self.crash_everywhere("src.txt", "dst.txt", move=True)

    def test_copy_file_over_file(self):
        self.crash_everywhere("src.txt", "dst.txt", move=False)

    def test_move_collection_over_collection(self):
        self.crash_everywhere("srccol", "dstcol", move=True)

    def test_copy_collection_over_collection(self):
        self.crash_everywhere("srccol", "dstcol", move=False)

    def test_move_file_over_collection(self):
        self.crash_everywhere("src.txt", "dstcol", move=True)

    def test_move_collection_over_file(self):
        self.crash_everywhere("srccol", "dst.txt", move=True)


class OnlyTheDeadAreRecovered(SynchronousTestCase):
    def test_a_live_owners_work_is_left_alone(self):
        root = os.path.abspath(self.mktemp())
        create_box(root, "cell1", "box1")
        config = Config(durable=False)
        alive = Store(root, config, AclPolicy())
        other = Store(root, config, AclPolicy())
        self.addCleanup(alive.close)
        self.addCleanup(other.close)
        mine = alive.tree.tmp_path()
        open(mine, "wb").close()
        aside = alive.journal.aside_path()
        os.mkdir(aside)
        record = alive.journal.record("cell1", "box1", alive.tree.box_dir("cell1", "box1"),
                                      "gone", aside)
        other.recover()  # another live process's sweep
        self.assertTrue(os.path.exists(mine))
        self.assertTrue(os.path.exists(aside))
        self.assertTrue(os.path.exists(record))
        self.assertTrue(owners.alive(root, alive.owner.id))
        alive.owner.close()  # as if that process had died
        other.recover()
        self.assertFalse(os.path.exists(mine))
        self.assertFalse(os.path.exists(record))
        restored = os.path.join(alive.tree.box_dir("cell1", "box1"), "gone")
        self.assertTrue(os.path.isdir(restored))  # the target was missing: it came back

    def test_an_aside_whose_collection_was_deleted_since(self):
        root = os.path.abspath(self.mktemp())
        create_box(root, "cell1", "box1")
        config = Config(durable=False)
        dead = Store(root, config, AclPolicy())
        other = Store(root, config, AclPolicy())
        self.addCleanup(other.close)
        aside = dead.journal.aside_path()
        os.mkdir(aside)
        record = dead.journal.record("cell1", "box1",
                                     os.path.join(dead.tree.box_dir("cell1", "box1"), "gone"),
                                     "target", aside)
        dead.close()
        other.recover()
        self.assertFalse(os.path.exists(aside))
        self.assertFalse(os.path.exists(record))
