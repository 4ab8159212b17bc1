"""Intent records: a replacing MOVE or COPY that a crash interrupts is
finished or rolled back by the next recovery, never left with neither the
old resource nor the new one.

Replacing a collection (or a file by a collection, or a collection by a
file) cannot be one ``rename(2)``: the target is moved aside into
``:trash`` first, then the new resource takes its name. Before the first
step the operation writes ``DATA/:journal/{owner}.{uuid}.json``:

    {"cell": ..., "box": ..., "dir": "<the target's parent, from the root>",
     "target": "<its disk name>", "aside": "<its name in :trash>"}

(fsynced, with the journal directory), and deletes it once the new
resource is in place. Recovery of a record whose owner is dead, under the
box's lock table and the directory's lock (the order every write takes):
the aside copy exists and the target too -> the replacement happened, the
aside copy is deleted; the aside copy exists and the target does not -> it
goes back. Then the record is deleted. Whatever else a dead owner left in
``:tmp`` and ``:trash`` is garbage: a body never installed, a collection
never built whole, a deletion that had happened (its rename was the commit).
"""
import json
import os
import shutil
import uuid

from . import layout, owners


class Journal:
    def __init__(self, root, owner, durable=True):
        self.root = root
        self.owner = owner
        self.durable = durable
        self.directory = os.path.join(root, layout.JOURNAL)
        os.makedirs(self.directory, exist_ok=True)

    def aside_path(self):
        """A fresh name in ``:trash`` owned by this process."""
        return os.path.join(self.root, layout.TRASH, "%s.%s" % (self.owner.id, uuid.uuid4().hex))

    def record(self, cell, box, directory, target, aside):
        """Write the intent (durably, before anything moves); its path."""
        path = os.path.join(self.directory, "%s.%s.json" % (self.owner.id, uuid.uuid4().hex))
        intent = {"cell": cell, "box": box, "dir": os.path.relpath(directory, self.root),
                  "target": target, "aside": os.path.basename(aside)}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(intent, f)
            if self.durable:
                f.flush()
                os.fsync(f.fileno())
        if self.durable:
            layout.fsync_dir(self.directory)
        return path

    def done(self, record):
        """The new resource is in place: the intent is void."""
        os.unlink(record)

    # -- recovery --------------------------------------------------------------

    def recover(self, lock_box, lock_dir):
        """Settle every record, temporary file and trash entry of a dead
        owner. ``lock_box(cell, box)`` and ``lock_dir(path)`` are the context
        managers a write takes (store/box.py), taken here in the same order.
        Returns how many records were settled."""
        settled = 0
        for name in _listdir(self.directory):
            owner = owners.owner_of(name)
            if owner is None or owner == self.owner.id or owners.alive(self.root, owner):
                continue
            path = os.path.join(self.directory, name)
            try:
                with open(path, encoding="utf-8") as f:
                    intent = json.load(f)
            except FileNotFoundError:
                continue  # another process settled it
            except ValueError:
                intent = None  # torn before its fsync: nothing had moved yet
            if intent is not None:
                with lock_box(intent["cell"], intent["box"]):
                    directory = os.path.join(self.root, intent["dir"])
                    with lock_dir(directory):
                        if not os.path.exists(path):
                            continue
                        _settle(directory, intent["target"],
                                os.path.join(self.root, layout.TRASH, intent["aside"]))
            _unlink(path)
            settled += 1
        for folder in (layout.TMP, layout.TRASH):
            self._sweep(os.path.join(self.root, folder))
        owners.forget_dead(self.root, keep=(self.owner.id,))
        return settled

    def _sweep(self, folder):
        referenced = self._referenced_asides()
        for name in _listdir(folder):
            owner = owners.owner_of(name)
            if owner is None or owner == self.owner.id or name in referenced:
                continue
            if not owners.alive(self.root, owner):
                remove(os.path.join(folder, name))

    def _referenced_asides(self):
        """Trash names that a (live owner's) record may still bring back."""
        out = set()
        for name in _listdir(self.directory):
            try:
                with open(os.path.join(self.directory, name), encoding="utf-8") as f:
                    out.add(json.load(f)["aside"])
            except (OSError, ValueError, KeyError, TypeError):
                pass
        return out


def _settle(directory, target, aside):
    if not os.path.lexists(aside):
        return  # never moved aside, or already settled
    if not os.path.isdir(directory):
        remove(aside)  # the collection it belonged to was deleted since
        return
    if os.path.lexists(os.path.join(directory, target)):
        remove(aside)  # the new resource had taken the name
    else:
        os.rename(aside, os.path.join(directory, target))  # back to the old one
        layout.fsync_dir(directory)


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove(path):
    """Delete a file or a whole directory, never following a symlink."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
