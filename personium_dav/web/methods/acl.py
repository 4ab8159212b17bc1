"""ACL (RFC 3744 subset, as the Personium reference): replace the access
control list of a collection or file.

The body is a ``D:acl`` of ``D:ace`` entries, each a ``D:principal`` (a
``D:href`` naming a role of the cell, resolved against ``xml:base``, or
``D:all``) and a ``D:grant`` of ``D:privilege`` elements. It is stored,
canonical, as the dead property ``D:acl`` of the resource (replaced whole;
an empty ``D:acl`` removes it) and inherited by every descendant. PROPPATCH
cannot touch it (a protected property); PROPFIND shows it only to callers
holding ``read-acl`` (web/methods/propfind.py).
"""
from ...auth.privileges import ACL_KEY, parse_acl, serialize_acl
from ...dav.errors import DavError
from ...dav.properties import check_limits
from ..reply import Reply
from .common import preconditions, read_body, store


def render(resource, request):
    ctx = resource.ctx
    body = read_body(request, ctx.server.config.max_xml_body)
    accounts = ctx.server.auth.accounts
    url = ctx.url(ctx.names, ctx.loc.info.is_collection)
    conds = preconditions(request, ctx)

    def work():  # the roles are read from the cell's accounts file: a thread
        aces = parse_acl(body if body.strip() else None, url, ctx.cell_path(), ctx.box,
                         lambda role: accounts.has_role(ctx.cell, role))
        value = serialize_acl(aces) if aces else None
        # an ACL is a property (D:acl): the same caps as any other
        config = ctx.server.config
        if len(aces) > config.max_props_per_request:
            raise DavError("PR400-DV-0006", "more than %d ACEs in one ACL"
                           % config.max_props_per_request)
        check_limits(0, [(ACL_KEY, value)], config)
        return ctx.api.set_acl(ctx.caller(), ctx.names, value, conds)

    return store(ctx, work).addCallback(lambda done: Reply(200))
