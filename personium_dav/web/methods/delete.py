"""DELETE: a file, or a collection (whole only when asked, or under rfc4918),
and the locks rooted at it or below it."""
from ...dav.errors import DavError
from ..reply import Reply
from .common import check_conditions, conditions, header, in_thread
from .locking import Guard

RECURSIVE = "X-Personium-Recursive"


def recursive_flag(request):
    value = header(request, RECURSIVE)
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise DavError("PR400-DV-0009", RECURSIVE, value)


def render(resource, request):
    ctx = resource.ctx
    loc, tree = ctx.loc, ctx.tree
    recursive = recursive_flag(request) or ctx.config.rfc4918
    if_match, if_none_match = conditions(request)
    guard = Guard(ctx, request)

    def work():
        with guard.hold(removes=[(ctx.names, False)]), tree.locked(loc.parent_dir):
            loc.info = tree.info(loc.path, loc.name)
            if loc.info is None:
                raise DavError("PR404-DV-0001", ctx.url(ctx.names, False))
            check_conditions(if_match, if_none_match, loc.info)
            guard.check(loc.info, [(ctx.names[:-1], False), (ctx.names, True)])
            if loc.info.is_collection and not recursive and tree.has_members(loc.info):
                raise DavError("PR403-DV-0003")
            trash = tree.discard(loc)
            guard.release(ctx.names)
        tree.purge(trash)
        return Reply(204)

    return in_thread(work)
