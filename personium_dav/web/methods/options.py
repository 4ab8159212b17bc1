"""OPTIONS: the methods a resource takes, and its WebDAV class: 1, and 2
where it takes LOCK."""
from ..reply import Reply


def render(resource, request):
    dav = b"1, 2" if "LOCK" in resource.methods else b"1"
    return Reply(200, headers={"Allow": resource.allow(), "DAV": dav, "MS-Author-Via": b"DAV"})
