"""Shorthands for WebDAV requests and answers shared by the test modules."""
from twisted.internet import defer

from .helpers import NS

XML = {"Content-Type": "application/xml; charset=utf-8"}
XML_TYPE = "application/xml; charset=utf-8"
PNS = "urn:x-personium:xmlns"

ALLPROP = b'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
PROPNAME = b'<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'
SERVICE_MKCOL = (b'<?xml version="1.0" encoding="utf-8"?>'
                 b'<D:mkcol xmlns:D="DAV:" xmlns:p="urn:x-personium:xmlns"><D:set><D:prop>'
                 b'<D:resourcetype><D:collection/><p:service/></D:resourcetype>'
                 b'</D:prop></D:set></D:mkcol>')

# what allprop returns; D:supportedlock only by name (docs/conformance.md)
LIVE_COMMON = ["{DAV:}creationdate", "{DAV:}getlastmodified", "{DAV:}getetag",
               "{DAV:}resourcetype", "{DAV:}lockdiscovery"]
LIVE_FILE = LIVE_COMMON + ["{DAV:}getcontentlength", "{DAV:}getcontenttype"]
BY_NAME = ["{DAV:}supportedlock"]


def prop_request(*inner):
    return ('<D:propfind xmlns:D="DAV:"><D:prop>%s</D:prop></D:propfind>'
            % "".join(inner)).encode("utf-8")


def proppatch_body(*inner, remove=()):
    body = '<D:propertyupdate xmlns:D="DAV:">'
    if inner:
        body += "<D:set><D:prop>%s</D:prop></D:set>" % "".join(inner)
    if remove:
        body += "<D:remove><D:prop>%s</D:prop></D:remove>" % "".join(remove)
    return (body + "</D:propertyupdate>").encode("utf-8")


def responses(root):
    """href -> {status code: [property elements]} of a multistatus."""
    out = {}
    for resp in root.findall("D:response", NS):
        href = resp.findtext("D:href", namespaces=NS)
        assert href not in out, "href %s listed twice" % href
        stats = {}
        for ps in resp.findall("D:propstat", NS):
            status = int(ps.findtext("D:status", namespaces=NS).split()[1])
            assert status not in stats, "two propstats with %d" % status
            stats[status] = list(ps.find("D:prop", NS))
        out[href] = stats
    return out


def tags(elements):
    return [el.tag for el in elements]


def by_tag(elements):
    return {el.tag: el for el in elements}


class DavMixin:
    """Request shorthands shared by the PROPFIND and PROPPATCH tests."""

    def propfind(self, path, depth="0", body=b"", headers=None):
        hdrs = dict(headers or {})
        if depth is not None:
            hdrs["Depth"] = depth
        if body:
            hdrs.setdefault("Content-Type", XML["Content-Type"])
        return self.request("PROPFIND", path, body, hdrs)

    def proppatch(self, path, body, headers=None):
        hdrs = dict(XML)
        hdrs.update(headers or {})
        return self.request("PROPPATCH", path, body, hdrs)

    @defer.inlineCallbacks
    def mkcol(self, path, service=False):
        if service:
            answer = yield self.request("MKCOL", path, SERVICE_MKCOL, XML)
        else:
            answer = yield self.request("MKCOL", path)
        self.assertEqual(answer.code, 201, answer.body)
        return answer

    @defer.inlineCallbacks
    def put(self, path, body=b"hello", content_type="text/plain"):
        answer = yield self.request("PUT", path, body, {"Content-Type": content_type})
        self.assertIn(answer.code, (201, 204), answer.body)
        return answer

    @defer.inlineCallbacks
    def props_of(self, path, *names):
        """The 200 propstat of ``path`` (Depth 0): tag -> element."""
        body = prop_request(*names) if names else b""
        answer = yield self.propfind(path, "0", body)
        self.assertEqual(answer.code, 207, answer.body)
        (stats,) = responses(answer.xml()).values()
        return by_tag(stats.get(200, []))
