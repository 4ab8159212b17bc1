"""Principals, the privilege tree of docs/behaviour.md §9, ACLs and their evaluation.

    all ⊃ { read ⊃ read-properties ; read-acl ;
            write ⊃ { bind, unbind, write-content, write-properties } ;
            write-acl ; exec }

An ACL (RFC 3744 subset, as the Personium reference's "Configure access
control") is a list of ``Ace``: a principal (a role of the cell, or ``None``
for ``D:all``, everyone including anonymous callers) and the privileges
granted to it. It is stored as a dead property of the resource under
``ACL_KEY`` in a canonical form and inherited by every descendant: a
privilege is held on a resource when the ACL of the resource or of any
ancestor up to the box grants it, or a privilege containing it.
"""
import posixpath
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin, urlsplit

from lxml import etree
from zope.interface import implementer

from ..dav.errors import DavError
from ..interfaces import IPrivilegePolicy
from ..dav.xmlutil import DAV, PNS, XML_HEAD, children, has_text, parse, split

ACL_KEY = (DAV, "acl")
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"

TREE = {
    "all": ("read", "read-acl", "write", "write-acl", "exec"),
    "read": ("read-properties",),
    "write": ("bind", "unbind", "write-content", "write-properties"),
}
# qualified name of each privilege element
QNAMES = {
    "all": (DAV, "all"), "read": (DAV, "read"), "write": (DAV, "write"),
    "bind": (DAV, "bind"), "unbind": (DAV, "unbind"),
    "write-content": (DAV, "write-content"), "write-properties": (DAV, "write-properties"),
    "read-properties": (DAV, "read-properties"), "read-acl": (DAV, "read-acl"),
    "write-acl": (DAV, "write-acl"), "exec": (PNS, "exec"),
}
BY_QNAME = {v: k for k, v in QNAMES.items()}
PRIVILEGES = frozenset(QNAMES)


def contained(privilege):
    """Every privilege that ``privilege`` grants (itself included)."""
    out = {privilege}
    for child in TREE.get(privilege, ()):
        out |= contained(child)
    return out


_CLOSURE = {p: frozenset(contained(p)) for p in PRIVILEGES}


def covers(granted, needed):
    """True when any privilege in ``granted`` contains ``needed``."""
    return any(needed in _CLOSURE.get(g, ()) for g in granted)


@dataclass(frozen=True)
class Principal:
    """Who is asking. ``subject`` None and not ``owner``: anonymous."""

    cell: str = None  # the cell whose account it is (None for the owner)
    subject: str = None
    roles: frozenset = frozenset()
    owner: bool = False
    via: str = ""  # bearer, basic, cookie, or "" when anonymous

    @property
    def anonymous(self):
        return self.subject is None and not self.owner

    def roles_in(self, cell):
        return self.roles if self.cell == cell else frozenset()


ANONYMOUS = Principal()


@dataclass(frozen=True)
class Ace:
    role: str = None  # None: D:all
    privileges: frozenset = frozenset()


@dataclass
class Target:
    """What a privilege is checked on (see ``IPrivilegePolicy.allowed``)."""

    cell: str
    box: str
    names: list
    acls: list = field(default_factory=list)  # [[Ace]] from the box down


@implementer(IPrivilegePolicy)
class AclPolicy:
    """The default policy: the owner may do anything; everyone else what
    the ACLs of the resource and its ancestors grant to ``D:all`` or to one
    of their roles in that cell."""

    def allowed(self, principal, privilege, target):
        if principal.owner:
            return True
        roles = principal.roles_in(target.cell)
        for acl in target.acls:
            for ace in acl:
                if (ace.role is None or ace.role in roles) and covers(ace.privileges, privilege):
                    return True
        return False

    def any_privilege(self, principal, target):
        """Does ``principal`` hold any privilege at all on ``target``? (one
        pass, instead of asking ``allowed`` privilege by privilege)"""
        if principal.owner:
            return True
        roles = principal.roles_in(target.cell)
        return any(ace.privileges and (ace.role is None or ace.role in roles)
                   for acl in target.acls for ace in acl)


# -- parsing an ACL request body ---------------------------------------------

def _content_error():
    return DavError("PR400-DV-0002")


def _invalid(cause):
    return DavError("PR400-DV-0006", cause)


def _base(el, default):
    """The xml:base in scope of ``el``, resolved from the outermost one."""
    bases = []
    while el is not None:
        value = el.get(XML_BASE)
        if value is not None:
            bases.append(value)
        el = el.getparent()
    base = default
    for value in reversed(bases):
        base = urljoin(base, value)
    return base


def role_of(href_el, request_url, cell_path, box):
    """The role an ``href`` names: resolved against xml:base (else the request
    URL), its path must be ``{cell_path}__role/{__ or box}/{role}``. Host and
    scheme are not compared (the same server answers to several names)."""
    href = (href_el.text or "").strip()
    if not href:
        raise _invalid("empty principal href")
    resolved = urljoin(_base(href_el, request_url), href)
    path = posixpath.normpath(unquote(urlsplit(resolved).path))
    prefix = cell_path.rstrip("/") + "/__role/"
    if not path.startswith(prefix):
        raise _invalid("principal is not a role of this cell [%s]" % href)
    rest = path[len(prefix):].split("/")
    if len(rest) != 2 or rest[0] not in ("__", box) or not rest[1]:
        raise _invalid("principal is not a role of this cell [%s]" % href)
    return rest[1]


def parse_acl(body, request_url, cell_path, box, role_exists):
    """The ``[Ace]`` of an ACL request body.

    Raises 400 PR400-DV-0002 for a body that is not a well-formed ``D:acl`` of
    ``D:ace`` entries, 400 PR400-DV-0006 for an unknown privilege, principal
    or role (``role_exists(name)`` says which roles the cell has)."""
    if body is None:
        raise _content_error()
    try:
        root = parse(body)
    except DavError:
        raise _content_error()
    if root.tag != "{DAV:}acl" or has_text(root):
        raise _content_error()
    aces = []
    for ace in children(root):
        if ace.tag != "{DAV:}ace":
            raise _content_error()
        parts = {}
        for part in children(ace):
            tag = split(part.tag)
            if tag in ((DAV, "deny"), (DAV, "invert")):
                raise _invalid("%s is not supported" % tag[1])
            if tag not in ((DAV, "principal"), (DAV, "grant")) or tag in parts:
                if tag[0] == DAV and tag[1] in ("protected", "inherited"):
                    raise _invalid("%s is not supported" % tag[1])
                raise _content_error()
            parts[tag] = part
        principal_el = parts.get((DAV, "principal"))
        grant = parts.get((DAV, "grant"))
        if principal_el is None or grant is None:
            raise _content_error()
        who = children(principal_el)
        if len(who) != 1:
            raise _content_error()
        if who[0].tag == "{DAV:}all":
            role = None
        elif who[0].tag == "{DAV:}href":
            role = role_of(who[0], request_url, cell_path, box)
            if not role_exists(role):
                raise _invalid("no role [%s] in this cell" % role)
        else:
            raise _invalid("unsupported principal [%s]" % split(who[0].tag)[1])
        privileges = set()
        holders = children(grant)
        if not holders:
            raise _content_error()
        for holder in holders:
            if holder.tag != "{DAV:}privilege":
                raise _content_error()
            inner = children(holder)
            if len(inner) != 1:
                raise _content_error()
            name = BY_QNAME.get(split(inner[0].tag))
            if name is None:
                raise _invalid("unknown privilege [%s]" % split(inner[0].tag)[1])
            privileges.add(name)
        aces.append(Ace(role, frozenset(privileges)))
    return aces


# -- the stored form ------------------------------------------------------------

def _privilege_xml(name):
    ns, local = QNAMES[name]
    prefix = "D" if ns == DAV else "p"
    return "<D:privilege><%s:%s/></D:privilege>" % (prefix, local)


def serialize_acl(aces, base=None):
    """The canonical ``D:acl`` element (bytes): role hrefs are bare names,
    relative to ``base`` (``{CellURL}__role/__/``) when it is given."""
    from xml.sax.saxutils import escape, quoteattr

    out = ['<D:acl xmlns:D="DAV:" xmlns:p="%s"' % PNS]
    if base is not None:
        out.append(" xml:base=%s" % quoteattr(base))
    out.append(">")
    for ace in aces:
        who = "<D:all/>" if ace.role is None else "<D:href>%s</D:href>" % escape(ace.role)
        grants = "".join(_privilege_xml(p) for p in sorted(ace.privileges))
        out.append("<D:ace><D:principal>%s</D:principal><D:grant>%s</D:grant></D:ace>"
                   % (who, grants))
    out.append("</D:acl>")
    return "".join(out).encode("utf-8")


_STORED = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def load_acl(value):
    """The ``[Ace]`` of a stored (canonical) ACL; unknown parts are skipped."""
    if not value:
        return []
    try:
        root = etree.fromstring(value, _STORED)
    except etree.XMLSyntaxError:
        return []
    aces = []
    for ace in root.iter("{DAV:}ace"):
        principal = ace.find("{DAV:}principal")
        if principal is None:
            continue
        if principal.find("{DAV:}all") is not None:
            role = None
        else:
            href = principal.find("{DAV:}href")
            if href is None or not (href.text or "").strip():
                continue
            role = href.text.strip()
        privileges = set()
        for holder in ace.iterfind("{DAV:}grant/{DAV:}privilege"):
            for el in children(holder):
                name = BY_QNAME.get(split(el.tag))
                if name:
                    privileges.add(name)
        aces.append(Ace(role, frozenset(privileges)))
    return aces


def display_acl(value, cell_url):
    """The stored ACL as PROPFIND shows it: with ``xml:base`` on the roles."""
    return serialize_acl(load_acl(value), cell_url.rstrip("/") + "/__role/__/")


def acl_body(aces, cell_url):
    """A whole ACL request body (for tests and clients)."""
    return XML_HEAD + serialize_acl(aces, cell_url.rstrip("/") + "/__role/__/")


# -- the ACLs along a path ------------------------------------------------------

import functools


@functools.lru_cache(maxsize=4096)
def _cached(value):
    return tuple(load_acl(value))


def acls_of(chain):
    """The ACLs held in a chain of dead-property dicts (``Location.chain``)."""
    return [list(_cached(props[ACL_KEY])) if ACL_KEY in props else [] for props in chain]
