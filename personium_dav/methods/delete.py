"""DELETE: a file, or a collection (whole only when asked, or under rfc4918)."""
from ..errors import DavError
from ..reply import Reply
from .common import check_conditions, conditions, header, in_thread

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

    def work():
        with tree.locked(loc.parent_dir):
            loc.info = tree.info(loc.path, loc.name)
            if loc.info is None:
                raise DavError("PR404-DV-0001", ctx.url(ctx.names, False))
            check_conditions(if_match, if_none_match, loc.info)
            if loc.info.is_collection and not recursive and tree.has_members(loc.info):
                raise DavError("PR403-DV-0003")
            trash = tree.discard(loc)
        tree.purge(trash)
        return Reply(204)

    return in_thread(work)
