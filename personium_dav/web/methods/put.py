"""PUT: the body goes to a temporary file, then is renamed over the target
under the collection's lock, after the conditions (If-Match, If-None-Match,
If and the locks: methods/locking.py) are checked there."""
import mimetypes
import os

from ...dav.errors import DavError
from ..reply import Reply
from ..request import take_body
from .common import check_conditions, conditions, header, in_thread, room_for_one
from .locking import Guard


def render(resource, request):
    ctx = resource.ctx
    loc, tree, config = ctx.loc, ctx.tree, ctx.config
    content_type = header(request, "content-type")
    if not content_type:
        if loc.parent_kind == "src":
            raise DavError("PR400-DV-0010", "Content-Type")
        content_type = mimetypes.guess_type(loc.name)[0] or "application/octet-stream"
    length = header(request, "content-length")
    if length and length.strip().isdigit() and int(length) > config.max_file_size:
        raise DavError("PR413-DV-0001")
    if_match, if_none_match = conditions(request)
    guard = Guard(ctx, request)
    streamed = take_body(request, tree)  # already on disk (request.DavRequest)

    def work():
        if streamed is not None:
            tmp = tree.settle(*streamed)
        else:
            tmp = tree.receive(request.content)
        try:
            with guard.hold(), tree.locked(loc.parent_dir):
                current = tree.info(loc.path, loc.name)
                if current is not None and current.kind != "file":
                    raise DavError("PR405-MC-0001", headers={"Allow": resource.allow()})
                check_conditions(if_match, if_none_match, current)
                # a new file changes its collection's members; a file over
                # one, that file
                guard.check(current, [(ctx.names if current else ctx.names[:-1], False)])
                if current is None:
                    members = room_for_one(tree, loc.parent_dir, config)
                # the directory is fsynced below, outside the lock, so that
                # concurrent PUTs into one collection share journal commits
                info = tree.install_file(tmp, loc, content_type, current, sync=False)
                if current is None:
                    tree.counted(loc.parent_dir, members + 1)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        tree._sync(loc.parent_dir)  # durable (when not --relaxed) before the answer
        return Reply(201 if current is None else 204, headers={"ETag": info.etag.encode()})

    return in_thread(work)
