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


class ITokenChecker(Interface):
    """Who is asking: turns a request's credentials into a ``Principal``.

    The default (``personium_dav.auth.checker.CredentialChecker``) reads
    ``Authorization: Bearer``/``Basic`` and the ``p_cookie`` cookie with the
    ``p_cookie_peer`` query parameter. An embedding application replaces it
    to use its own identity provider.
    """

    def authenticate(request, cell):
        """The ``Principal`` (or a Deferred firing one) for ``request`` on
        ``cell``; the anonymous principal when it carries no credentials.
        Raise (or fail with) ``DavError`` PR401-AU-* for bad credentials."""


class IPrivilegePolicy(Interface):
    """May a principal use a privilege (docs/behaviour.md §9) on a resource?"""

    def allowed(principal, privilege, target):
        """True when ``principal`` holds ``privilege`` (a name such as
        ``"read"``, ``"bind"``, ``"exec"``) on ``target``: an object with
        ``cell``, ``box``, ``names`` (the segments below the box) and ``acls``
        (the parsed ACLs from the box down to the resource)."""
