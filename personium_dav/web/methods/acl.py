"""ACL (RFC 3744 subset, as the Personium reference): replace the access
control list of a collection or file, and show it in PROPFIND.

The body is a ``D:acl`` of ``D:ace`` entries, each a ``D:principal`` (a
``D:href`` naming a role of the cell, resolved against ``xml:base``, or
``D:all``) and a ``D:grant`` of ``D:privilege`` elements. It is stored,
canonical, as the dead property ``D:acl`` of the resource (replaced whole;
an empty ``D:acl`` removes it) and inherited by every descendant. PROPPATCH
cannot touch it (a protected property); PROPFIND shows it only to callers
holding ``read-acl``.
"""
from dataclasses import replace
from urllib.parse import unquote

from ...auth.privileges import (ACL_KEY, Target, acls_along, covers, display_acl, load_acl,
                               parse_acl, serialize_acl)
from ...dav.errors import DavError
from ..reply import Reply
from .common import in_thread, read_body


def cell_path(ctx):
    """The decoded path of the cell: ``{mount prefix}/{cell}/``."""
    return unquote(ctx.prefix) + "/" + ctx.cell + "/"


def cell_url(ctx):
    request = ctx.request
    scheme = "https" if request.isSecure() else "http"
    host = (request.getHeader(b"host") or b"localhost").decode("latin-1")
    return "%s://%s%s/%s/" % (scheme, host, ctx.prefix, ctx.cell)


def render(resource, request):
    ctx = resource.ctx
    loc, tree = ctx.loc, ctx.tree
    auth = ctx.server.auth
    body = read_body(request, ctx.config.max_xml_body)
    aces = parse_acl(body if body.strip() else None, ctx.url(ctx.names, loc.info.is_collection),
                     cell_path(ctx), ctx.box,
                     lambda role: auth.accounts.has_role(ctx.cell, role))
    if loc.info.is_collection:
        directory, member = loc.path, ""
    else:
        directory, member = loc.parent_dir, loc.name
    value = serialize_acl(aces)

    def work():
        with tree.locked(directory):
            if tree.info(loc.path, loc.name) is None:
                raise DavError("PR404-DV-0001", ctx.url(ctx.names, False))
            txn = tree.props(directory).begin()
            if aces:
                txn.set(member, ACL_KEY, value)
            else:
                txn.remove(member, ACL_KEY)
            txn.commit()
        return Reply(200)

    return in_thread(work)


def asked(kind, keys):
    """Is ``D:acl`` asked for? By name (``D:prop``, ``D:allprop`` with
    ``D:include``) or ``D:propname``: as RFC 3744 properties, it is not part
    of a plain ``allprop`` (RFC 4918 §9.1), which keeps generic clients'
    listings free of principal hrefs."""
    return kind == "propname" or ACL_KEY in (keys or ())


def viewer(resource, request, principal, wanted=True):
    """``view(info, own)`` -> the Info as ``principal`` may see it in a
    PROPFIND: ``D:acl`` shown (with ``xml:base``) only when ``wanted`` and
    with read-acl on the resource."""
    ctx = resource.ctx
    if not wanted:
        def hide(info, own=True):
            if ACL_KEY not in info.props:
                return info
            return replace(info, props={k: v for k, v in info.props.items() if k != ACL_KEY})

        return hide
    auth = ctx.server.auth
    box_dir = ctx.tree.box_dir(ctx.cell, ctx.box)
    chain = acls_along(ctx.tree, box_dir, ctx.names)
    base = cell_url(ctx)

    def may_read(acls, names):
        target = Target(ctx.cell, ctx.box, names, acls)
        return auth.policy.allowed(principal, "read-acl", target)

    own_ok = may_read(chain, ctx.names)

    def view(info, own=True):
        value = info.props.get(ACL_KEY)
        if value is None:
            return info
        props = dict(info.props)
        if own:
            ok = own_ok
        else:
            ok = may_read(chain + [load_acl(value)], ctx.names + [info.name])
        if ok:
            props[ACL_KEY] = display_acl(value, base)
        else:
            del props[ACL_KEY]
        return replace(info, props=props)

    return view


__all__ = ["render", "viewer", "covers"]
