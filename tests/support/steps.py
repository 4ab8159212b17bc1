"""Request bodies and small steps that the HTTP test modules share."""
import re
from urllib.parse import unquote

from twisted.internet import defer

from .helpers import BOX, NS, DavTestCase

PNS = NS["p"]
ETAG = re.compile(r'^"(\d+)-(\d+)"$')


def mkcol_body(resourcetype="<D:collection/>", extra=""):
    """An extended-MKCOL (RFC 5689) body asking for ``resourcetype``."""
    return ('<?xml version="1.0" encoding="utf-8"?>'
            '<D:mkcol xmlns:D="DAV:" xmlns:p="urn:x-personium:xmlns"><D:set><D:prop>'
            "<D:resourcetype>%s</D:resourcetype>%s"
            "</D:prop></D:set></D:mkcol>" % (resourcetype, extra)).encode("utf-8")


SERVICE_MKCOL = mkcol_body("<D:collection/><p:service/>")


def proppatch_body(inner):
    return ('<D:propertyupdate xmlns:D="DAV:" xmlns:p="urn:x-personium:xmlns" xmlns:z="urn:z">'
            "<D:set><D:prop>%s</D:prop></D:set></D:propertyupdate>" % inner).encode("utf-8")


def version(etag):
    """The version number of a strong ``"{version}-{millis}"`` ETag."""
    m = ETAG.match(etag or "")
    assert m, "not a strong version ETag: %r" % (etag,)
    return int(m.group(1))


def allowed(answer):
    return {m.strip() for m in answer.header("allow").split(",")}


class DavSteps(DavTestCase):
    """DavTestCase with the steps most tests take to set a scene."""

    def ok(self, answer, *statuses):
        self.assertIn(answer.code, statuses or (200,), answer.body)
        return answer

    @defer.inlineCallbacks
    def mkcol(self, path, body=b"", headers=None):
        answer = yield self.request("MKCOL", path, body, headers)
        return self.ok(answer, 201)

    def service(self, path):
        return self.mkcol(path, SERVICE_MKCOL, {"Content-Type": "application/xml"})

    @defer.inlineCallbacks
    def put(self, path, body=b"data", content_type="text/plain", headers=None, status=(201, 204)):
        hdrs = dict(headers or {})
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        answer = yield self.request("PUT", path, body, hdrs)
        self.assertIn(answer.code, status, answer.body)
        return answer

    @defer.inlineCallbacks
    def propfind(self, path, depth="0", body=b""):
        answer = yield self.request("PROPFIND", path, body, {"Depth": depth})
        self.assertEqual(answer.code, 207, answer.body)
        self.assertEqual(answer.header("content-type"), "application/xml; charset=utf-8")
        return answer.xml()

    @defer.inlineCallbacks
    def hrefs(self, path, depth="1"):
        """The hrefs of a PROPFIND, in document order."""
        root = yield self.propfind(path, depth)
        return [h.text for h in root.iterfind("D:response/D:href", NS)]

    @defer.inlineCallbacks
    def resourcetype(self, path):
        """The resourcetype children of one resource as {(ns, local)}."""
        root = yield self.propfind(path)
        (rt,) = root.iterfind("D:response/D:propstat/D:prop/D:resourcetype", NS)
        return {(c.tag[1:].split("}")[0], c.tag.split("}")[1]) for c in rt}

    @defer.inlineCallbacks
    def exists(self, path):
        answer = yield self.request("PROPFIND", path, headers={"Depth": "0"})
        self.assertIn(answer.code, (207, 404), answer.body)
        return answer.code == 207

    @defer.inlineCallbacks
    def body_of(self, path):
        answer = yield self.request("GET", path)
        self.assertEqual(answer.code, 200, answer.body)
        return answer.body

    def dest(self, path):
        """An absolute Destination header for a path below the mount."""
        return self.url(path)

    def move(self, src, dst, headers=None, method="MOVE"):
        hdrs = {"Destination": self.dest(dst)}
        hdrs.update(headers or {})
        return self.request(method, src, headers=hdrs)

    def copy(self, src, dst, headers=None):
        return self.move(src, dst, headers, "COPY")


def decoded(href):
    return unquote(href)


__all__ = ["BOX", "NS", "PNS", "DavSteps", "SERVICE_MKCOL", "allowed", "decoded",
           "mkcol_body", "proppatch_body", "version"]
