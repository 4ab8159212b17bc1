"""The zope.interface contracts of the server; no implementation imports."""
from zope.interface import Attribute, Interface


class IPropertyStore(Interface):
    """The dead properties of one collection and of its non-collection members.

    Members are keyed by name; the collection itself is the member ``""``.
    Callers that write hold the collection's lock (``Tree.locked``) from
    ``begin()`` to ``commit()``/``abort()``, so a read-modify-write is atomic
    across threads and processes.
    """

    def read():
        """The current state: a dict of member name -> ``Entry``."""

    def begin():
        """Start an ``IPropertyTransaction`` on the current state."""


class IPropertyTransaction(Interface):
    """Staged changes to one store, applied in order, all or nothing."""

    state = Attribute("the member entries as staged so far (name -> Entry)")

    def set(member, key, value):
        """Stage a dead property: key is (namespace, local), value the element bytes."""

    def remove(member, key):
        """Stage the removal of a dead property (absent is not an error)."""

    def touch(member, millis):
        """Stage a new version of a member: version + 1, modified = millis."""

    def drop(member):
        """Stage forgetting a member and all its properties."""

    def adopt(member, entry):
        """Stage a member entry brought from another store (MOVE, COPY)."""

    def commit():
        """Make every staged change durable at once; returns the new state."""

    def abort():
        """Forget every staged change."""
