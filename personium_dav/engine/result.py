"""What a service call answers, ready to render, and the fixed error answers.

Every outcome of running a script, success or failure, is a ``Result``: the
HTTP resource renders it as it is (status, headers in order, then the body),
so the exact texts below are produced in one place.
"""
import json
import os
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

HTML = "text/html"


@dataclass
class Result:
    """A response to send.

    ``headers``: (name, value) pairs in the script's order, as str; names as
    the script wrote them. Exactly one of ``body`` (bytes) and ``body_path``
    is meaningful: a large body arrives as a file under the pool's tmp
    folder, whose path is ``body_path``; the caller sends it and then deletes
    it (``discard()`` does that for a caller that drops the answer).
    """

    status: int
    headers: List[Tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    body_path: Optional[str] = None

    def discard(self):
        """Delete ``body_path`` if any (idempotent)."""
        if self.body_path:
            try:
                os.unlink(self.body_path)
            except OSError:
                pass
            self.body_path = None


def _text(status, text):
    return Result(status, [("Content-Type", HTML)], text.encode("utf-8"))


def service_property_invalid():
    """No ``p:service`` on the collection."""
    return _text(404, "404 Not Found (Service property invalid) ")


def not_found():
    """No route matches, or its source file is absent."""
    return _text(404, "404 Not Found")


def server_error(message=None):
    """A script failed: ``Server Error : message``, or bare ``Server Error``."""
    if message is None:
        return _text(500, "Server Error")
    return _text(500, "Server Error : " + message)


def timeout():
    """Time limit passed, stack or memory exhausted (uncaught), worker lost."""
    return _text(503, "Script TimeOut")


def engine_unreachable():
    """No worker could run the script: Personium JSON PR500-SC-0001 (the same
    shape as ``errors.DavError.body``)."""
    body = {"code": "PR500-SC-0001",
            "message": {"lang": "en", "value": "Engine connection error."}}
    return Result(500, [("Content-Type", "application/json")],
                  json.dumps(body).encode("utf-8"))
