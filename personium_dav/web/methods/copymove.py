"""COPY and MOVE inside a box, with the service-collection and __src rules
(SPEC §4), the Overwrite header and the locks (methods/locking.py): a MOVE
leaves the source's locks behind (they are dropped), a COPY copies none, and
an overwritten destination loses the locks rooted below it (those resources
are deleted) but keeps one rooted at it (RFC 4918 §7.6)."""
import os
from urllib.parse import unquote_to_bytes, urlsplit

from ...dav.errors import DavError
from ...store import layout
from ...store.tree import SRC
from ...dav.names import is_valid_name
from ..reply import Reply
from .common import check_conditions, conditions, header, in_thread, room_for_one
from .locking import Guard


def _destination(ctx, request):
    """The decoded segments below the box that the Destination names."""
    value = header(request, "destination")
    if not value:
        raise DavError("PR400-DV-0010", "Destination")
    path = urlsplit(value).path
    invalid = DavError("PR400-DV-0009", "Destination", value)
    if not path.startswith(ctx.prefix + "/"):
        raise invalid
    raw = path[len(ctx.prefix) + 1:].split("/")
    if raw and raw[-1] == "":
        raw.pop()
    try:
        names = [unquote_to_bytes(s).decode("utf-8") for s in raw]
    except UnicodeDecodeError:
        raise DavError("PR403-DV-0004", value)
    if names[:2] != [ctx.cell, ctx.box] or len(names) < 3:
        raise invalid
    for name in names[2:]:
        if not is_valid_name(name):
            raise DavError("PR403-DV-0004", name)
    return value, names[2:]


def _overwrite(request):
    value = header(request, "overwrite")
    if value is None or value.strip().upper() == "T":
        return True
    if value.strip().upper() == "F":
        return False
    raise DavError("PR400-DV-0009", "Overwrite", value)


def _depth(request, allowed):
    value = header(request, "depth")
    if value is None:
        return "infinity"
    if value.strip().lower() not in allowed:
        raise DavError("PR400-DV-0009", "Depth", value)
    return value.strip().lower()


def _check_target(ctx, src, dst, value, names, overwrite):
    """The rules that need nothing but where both ends are."""
    info = src.info
    if names == ctx.names:
        raise DavError("PR403-DV-0005", value)
    if info.is_collection and names[:len(ctx.names)] == ctx.names:
        raise DavError("PR400-DV-0009", "Destination", value)
    if dst.foreign:  # a planted symlink on the way: never written through
        raise DavError("PR403-DV-0004", names[-1])
    if dst.service_exec:
        raise DavError("PR400-DV-0016")
    if dst.parent_dir is None:
        raise DavError("PR409-DV-0001", ctx.url(names[:-1]))
    if dst.info is not None and dst.info.kind == "src":
        raise DavError("PR400-DV-0017")  # before the rule for the service parent
    if src.parent_kind == "src" and dst.parent_kind != "src":
        raise DavError("PR400-DV-0016")
    if dst.parent_kind == "service":
        raise DavError("PR400-DV-0016")
    if dst.parent_kind == "src" and info.is_collection:
        raise DavError("PR400-DV-0018")
    if info.is_collection and len(names) > ctx.config.max_depth:
        raise DavError("PR400-DV-0008")
    if dst.info is not None:
        if not overwrite:
            raise DavError("PR412-DV-0002")
        if dst.info.is_collection and not ctx.config.rfc4918:
            raise DavError("PR400-DV-0012")


def _transfer(resource, request, move):
    ctx = resource.ctx
    tree, src = ctx.tree, ctx.loc
    value, names = _destination(ctx, request)
    overwrite = _overwrite(request)
    depth = _depth(request, ("infinity",) if move else ("0", "infinity"))
    if_match, if_none_match = conditions(request)
    box_dir = tree.box_dir(ctx.cell, ctx.box)
    guard = Guard(ctx, request)
    removes = [(names, True)] + ([(ctx.names, False)] if move else [])

    def work():
        dst = tree.locate(box_dir, names)
        _check_target(ctx, src, dst, value, names, overwrite)
        if (src.info.is_collection and (move or depth == "infinity")
                and len(names) + _height(tree, src.path) > ctx.config.max_depth):
            raise DavError("PR400-DV-0008")
        dirs = (src.parent_dir, dst.parent_dir)
        with guard.hold(removes=removes), tree.locked(*dirs):
            src.info = tree.info(src.path, src.name)
            if src.info is None:
                raise DavError("PR404-DV-0001", ctx.url(ctx.names, False))
            check_conditions(if_match, if_none_match, src.info)
            dst.info = tree.info(dst.path, dst.name)
            _check_target(ctx, src, dst, value, names, overwrite)
            protected = [(names[:-1], False)]
            if dst.info is not None:
                protected.append((names, True))
            if move:
                protected += [(ctx.names[:-1], False), (ctx.names, True)]
            guard.check(src.info, protected)
            created = dst.info is None
            grows = created and not (move and dst.parent_dir == src.parent_dir)
            if grows:
                members = room_for_one(tree, dst.parent_dir, ctx.config)
            trash = None
            if not created and (dst.info.is_collection or src.info.is_collection):
                trash = tree.discard(dst)
                dst.info = None
            if move:
                tree.relocate(src, dst)
                guard.release(ctx.names)
            else:
                tree.duplicate(src, dst, depth == "infinity")
            if grows:
                tree.counted(dst.parent_dir, members + 1)
            if not created:
                guard.release(names, strict=True)
        tree.purge(trash)
        info = tree.info(dst.path, dst.name)
        return Reply(201 if created else 204, headers={"ETag": info.etag.encode()})

    return in_thread(work)


def _height(tree, path):
    """Levels of collections below ``path`` (a service collection's __src not counted)."""
    best = 0
    with os.scandir(path) as it:
        for de in it:
            if not de.is_dir(follow_symlinks=False):
                continue
            if layout.is_bookkeeping(de.name) and not de.name.startswith(layout.HASHED):
                continue
            if de.name == SRC and tree.collection_entry(de.path).kind == "src":
                continue
            best = max(best, 1 + _height(tree, de.path))
    return best


def render_move(resource, request):
    return _transfer(resource, request, move=True)


def render_copy(resource, request):
    return _transfer(resource, request, move=False)
