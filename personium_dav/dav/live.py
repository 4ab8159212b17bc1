"""Live properties as data: name, who has it, and how it is read.

Every DAV: property the server computes is protected: a PROPPATCH of one is
403 ``cannot-modify-protected-property``, even where the resource lacks it.
``D:lockdiscovery`` is what PROPFIND put in ``Info.discovery`` (the locks
covering the resource), ``D:supportedlock`` the same for every resource (all
kinds take LOCK); the latter is returned by name, not in a plain allprop
(``BY_NAME_ONLY``, docs/conformance.md), as are the quota properties of a
collection (RFC 4331: what PROPFIND put in ``Info.space``).
"""
import datetime
import functools
from email.utils import formatdate
from xml.sax.saxutils import escape

from .xmlutil import DAV, PNS, empty_element, text_element

SUPPORTEDLOCK = (
    "<D:supportedlock>"
    "<D:lockentry><D:lockscope><D:exclusive/></D:lockscope>"
    "<D:locktype><D:write/></D:locktype></D:lockentry>"
    "<D:lockentry><D:lockscope><D:shared/></D:lockscope>"
    "<D:locktype><D:write/></D:locktype></D:lockentry>"
    "</D:supportedlock>")


# Dates are formatted once per second (a listing's members mostly share a few).
@functools.lru_cache(maxsize=4096)
def _iso_seconds(seconds):
    t = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.")


def _iso(millis):
    return _iso_seconds(millis // 1000) + "%03dZ" % (millis % 1000)


@functools.lru_cache(maxsize=4096)
def _http_date_seconds(seconds):
    return formatdate(seconds, usegmt=True)


def http_date(millis):
    return _http_date_seconds(millis // 1000)


def _resourcetype(info):
    if info.kind == "file":
        return "<D:resourcetype/>"
    if info.kind == "service":
        return '<D:resourcetype><D:collection/><p:service xmlns:p="%s"/></D:resourcetype>' % PNS
    return "<D:resourcetype><D:collection/></D:resourcetype>"


# (namespace, local) -> function(info) -> serialised element, or None when the
# resource does not have it.
LIVE = {
    (DAV, "creationdate"): lambda i: text_element(DAV, "creationdate", _iso(i.created)),
    (DAV, "getlastmodified"): lambda i: text_element(DAV, "getlastmodified", http_date(i.modified)),
    (DAV, "getetag"): lambda i: text_element(DAV, "getetag", i.etag),
    (DAV, "resourcetype"): _resourcetype,
    (DAV, "getcontentlength"): lambda i: (
        text_element(DAV, "getcontentlength", str(i.size)) if i.kind == "file" else None),
    (DAV, "getcontenttype"): lambda i: (
        text_element(DAV, "getcontenttype", i.content_type) if i.kind == "file" else None),
    (DAV, "lockdiscovery"): lambda i: i.discovery or "<D:lockdiscovery/>",
    (DAV, "supportedlock"): lambda i: SUPPORTEDLOCK,
    (DAV, "quota-available-bytes"): lambda i: (
        text_element(DAV, "quota-available-bytes", str(i.space[1])) if i.space else None),
    (DAV, "quota-used-bytes"): lambda i: (
        text_element(DAV, "quota-used-bytes", str(i.space[0])) if i.space else None),
}
QUOTA = frozenset({(DAV, "quota-available-bytes"), (DAV, "quota-used-bytes")})
# supportedlock: 238 bytes a response: a Depth 1 allprop listing of 1,000
# files stays under Windows' 1,000,000-byte limit (docs/conformance.md);
# the quota properties: RFC 4331 §3 (costly to compute, not in allprop)
BY_NAME_ONLY = frozenset({(DAV, "supportedlock")}) | QUOTA

PROTECTED = set(LIVE) | {(DAV, "acl")}  # set by the ACL method only (methods/acl.py)


def all_live(info):
    """Every live property the resource has, serialised, by plain formatting:
    the same text as joining ``live_values`` (allprop's common case)."""
    out = ("<D:creationdate>%s</D:creationdate><D:getlastmodified>%s</D:getlastmodified>"
           "<D:getetag>%s</D:getetag>" % (_iso(info.created), http_date(info.modified),
                                         info.etag))  # an ETag is digits, '-' and '"'
    if info.kind != "file":
        return out + _resourcetype(info) + (info.discovery or "<D:lockdiscovery/>")
    return out + ("<D:resourcetype/><D:getcontentlength>%d</D:getcontentlength>"
                  "<D:getcontenttype>%s</D:getcontenttype>%s" % (
                      info.size, escape(info.content_type), info.discovery or "<D:lockdiscovery/>"))


def live_values(info, allprop=False):
    """(key, serialised element) of every live property the resource has
    (for ``allprop``, those a plain allprop returns)."""
    out = []
    for key, read in LIVE.items():
        if allprop and key in BY_NAME_ONLY:
            continue
        value = read(info)
        if value is not None:
            out.append((key, value))
    return out


def live_value(info, key):
    read = LIVE.get(key)
    return read(info) if read else None


def name_only(key):
    return empty_element(*key)
