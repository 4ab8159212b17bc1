"""Personium errors: one exception type carrying a code, and its JSON form.

The HTTP status is the three digits after ``PR``; the texts are those of docs/behaviour.md §8
(and this server's own codes, marked below). An error that RFC 4918 gives a
precondition element (423 ``lock-token-submitted``, ``no-conflicting-lock``,
409 ``lock-token-matches-request-uri``) is answered as a ``D:error`` XML body
holding that element, then the Personium code and message as ``p:code`` and
``p:message`` (RFC 4918 §16 lets ``D:error`` carry more elements).
"""
import json
from xml.sax.saxutils import escape

MESSAGES = {
    "PR400-DV-0001": "XML parse error.",
    "PR400-DV-0002": "XML content error.",
    "PR400-DV-0003": "Invalid depth header value:[{0}].",
    "PR400-DV-0006": "XML validate error. Cause:[{0}].",
    "PR400-DV-0007": "Cannot add any more child resources.",
    "PR400-DV-0008": "Hierarchy of the collection is too deep.",
    "PR400-DV-0009": "Request header {0} value is invalid [{1}].",
    "PR400-DV-0010": "Header {0} is required.",
    "PR400-DV-0011": "Prohibited to move service source collection.",
    "PR400-DV-0012": "Prohibited to overwrite collection resource.",
    "PR400-DV-0016": "Prohibited to move resource to service collection.",
    "PR400-DV-0017": "Prohibited to overwrite service source collection.",
    "PR400-DV-0018": "Prohibited to create collection under service source collection.",
    "PR400-EV-0002": "Request header is invalid [X-Personium-RequestKey].",
    "PR401-AU-0001": "Authorization required.",
    "PR401-AU-0002": "Access token expired.",
    "PR401-AU-0003": "Invalid authentication scheme.",
    "PR401-AU-0006": "Token parse error.",
    "PR401-AU-0009": "Authentication failed.",
    "PR403-AU-0002": "Necessary privilege is lacking.",
    "PR403-DV-0001": "Infinite depth is not supported.",
    "PR403-DV-0003": "Cannot delete collection if it has any child resources.",
    "PR403-DV-0004": "Resource name is invalid [{0}].",
    "PR403-DV-0005": "Destination header value [{0}] equals request URL.",
    "PR404-DV-0001": "Resource not found. [{0}].",
    "PR404-DV-0002": "Box not found at [{0}].",
    "PR404-DV-0003": "Cell not found.",
    "PR404-MC-0001": "URI is not recognized.",
    "PR405-DV-0001": "Method not allowed. MKCOL can only be executed on a deleted/non-existent resource.",
    "PR405-MC-0001": "Method not allowed.",
    "PR409-DV-0001": "intermediate collection [{0}] should be created first.",
    "PR409-DV-0002": "Lock token does not match a lock on the request URL.",  # this server's
    "PR412-DV-0001": "ETag does not match.",
    "PR412-DV-0002": 'Overwrite header is "F" and the destination URL is already mapped to a resource.',
    "PR412-DV-0003": "If header condition is not met.",  # this server's
    "PR413-DV-0001": "Request body is too large.",
    "PR413-DV-0002": "File is too large to be read whole.",  # this server's (a script's read)
    "PR415-MC-0001": "Unsupported media type.",
    "PR416-DV-0001": "Requested range not satisfiable.",
    "PR423-DV-0001": "Resource is locked.",  # this server's (lock token not submitted)
    "PR423-DV-0002": "Resource is locked by a conflicting lock.",  # this server's (LOCK)
    "PR500-SV-0000": "Unknown error.",
    "PR501-MC-0001": "Method not implemented.",
    "PR501-MC-0002": "Not implemented. [{0}].",
    "PR502-DV-0001": "Destination is not on this server [{0}].",  # this server's
    "PR503-SV-0005": "Operation is prohibited as one or more disks are almost full.",
    "PR503-SV-0006": "Data store is unavailable. Retry later.",  # this server's
    "PR503-SV-0007": "Data store did not answer in time. Retry later.",  # this server's
    "PR503-SV-0008": "Too many connections from one address.",  # this server's
    "PR503-SV-0009": "Too many password checks under way. Retry later.",  # this server's
    "PR507-DV-0001": "The quota of the box would be exceeded.",  # this server's (box quota)
}


class DavError(Exception):
    """A request that ends in a Personium error response."""

    def __init__(self, code, *args, headers=None, condition=None, locks=()):
        super().__init__(code, *args)
        self.code = code
        self.status = int(code[2:5])
        self.message = MESSAGES[code].format(*args)
        self.headers = headers or {}
        self.condition = condition  # the local name of an RFC 4918 precondition, or None
        self.locks = tuple(locks)  # the locks the precondition names (their roots' hrefs)

    @property
    def content_type(self):
        return b"application/xml; charset=utf-8" if self.condition else b"application/json"

    def body(self, href=None):
        """The answer's body; ``href(names, collection)`` writes the href of a
        lock root named by the precondition (``/`` + the names without one)."""
        if self.condition:
            href = href or (lambda names, collection: "/" + "/".join(names))
            roots = dict.fromkeys((lk.root, lk.collection) for lk in self.locks)
            inner = "".join("<D:href>%s</D:href>" % escape(href(list(root), collection))
                            for root, collection in roots)
            condition = ("<D:%s>%s</D:%s>" % (self.condition, inner, self.condition) if inner
                         else "<D:%s/>" % self.condition)
            return ('<?xml version="1.0" encoding="utf-8"?>\n'
                    '<D:error xmlns:D="DAV:" xmlns:p="urn:x-personium:xmlns">%s'
                    '<p:code>%s</p:code><p:message xml:lang="en">%s</p:message></D:error>'
                    % (condition, self.code, escape(self.message))).encode("utf-8")
        return json.dumps(
            {"code": self.code, "message": {"lang": "en", "value": self.message}},
            ensure_ascii=False,
        ).encode("utf-8")
