"""OPTIONS: the methods a resource takes, and WebDAV class 1 (no locking)."""
from ..reply import Reply


def render(resource, request):
    return Reply(200, headers={"Allow": resource.allow(), "DAV": b"1", "MS-Author-Via": b"DAV"})
