"""What several methods share: bodies, headers, conditions, running off the reactor."""
import errno

from twisted.internet import threads

from ...dav.errors import DavError


def header(request, name):
    value = request.getHeader(name.encode("ascii"))
    return None if value is None else value.decode("latin-1")


def read_body(request, limit):
    """The request body, refused with 413 past ``limit`` bytes."""
    length = header(request, "content-length")
    if length is not None and length.strip().isdigit() and int(length) > limit:
        raise DavError("PR413-DV-0001")
    content = request.content
    content.seek(0)
    body = content.read(limit + 1)
    if len(body) > limit:
        raise DavError("PR413-DV-0001")
    return body


def xml_body(request, config):
    """The request body when it holds anything but white space, else None."""
    body = read_body(request, config.max_xml_body)
    return body if body.strip() else None


def _tags(value):
    return [t.strip() for t in value.split(",") if t.strip()]


def _bare(tag):
    return tag[2:] if tag.startswith("W/") else tag


def matches(value, info):
    """Does an If-Match/If-None-Match value match the resource (None: absent)?"""
    if info is None:
        return False
    tags = _tags(value)
    return "*" in tags or any(_bare(t) == info.etag for t in tags)


def check_conditions(if_match, if_none_match, info):
    """412 unless If-Match matches (when sent) and If-None-Match does not."""
    if if_match is not None and not matches(if_match, info):
        raise DavError("PR412-DV-0001")
    if if_none_match is not None and matches(if_none_match, info):
        raise DavError("PR412-DV-0001")


def room_for_one(tree, directory, config):
    """The member count of ``directory`` (its lock held by the caller); 400
    PR400-DV-0007 when one more would pass ``--max-members``. A caller that
    then adds the member records ``tree.counted(directory, count + 1)``."""
    members = tree.count_members(directory)
    if members >= config.max_members:
        raise DavError("PR400-DV-0007")
    return members


def conditions(request):
    return header(request, "if-match"), header(request, "if-none-match")


def in_thread(work, *args):
    """Run blocking store work in the thread pool; a full disk is 503."""
    d = threads.deferToThread(work, *args)
    d.addErrback(_disk_errors)
    return d


def _disk_errors(failure):
    error = failure.check(OSError) and failure.value
    if error and error.errno in (errno.ENOSPC, errno.EDQUOT):
        raise DavError("PR503-SV-0005")
    return failure
