"""Concurrent writers (issue 4, item 4): 8 clients PROPPATCH distinct
properties of one collection and PUT distinct files into it at the same time
-- against one server process, and against two server processes sharing one
data root -- and every update is there afterwards (no lost update: each
PROPPATCH rewrites the whole sidecar under the collection's flock)."""
import os

from lxml import etree
from twisted.internet import defer
from twisted.trial import unittest

from personium_dav.store import provision
from .support import hardening
from .support.realserver import RealServer

BOX = "/cell1/box1/"
NS = "urn:x-concurrent"
CLIENTS = 8
ROUNDS = 6


def proppatch(name, value):
    return ('<D:propertyupdate xmlns:D="DAV:" xmlns:Z="%s"><D:set><D:prop><Z:%s>%s</Z:%s>'
            "</D:prop></D:set></D:propertyupdate>" % (NS, name, value, name)).encode()


class ConcurrentWriterTests(unittest.TestCase):

    timeout = 120

    @defer.inlineCallbacks
    def storm(self, servers, data):
        https = [hardening.HTTP(s.url, data) for s in servers]
        reply = yield https[0]("MKCOL", BOX + "shared")
        self.assertEqual(reply.code, 201)

        @defer.inlineCallbacks
        def client(c):
            etags = {}
            for i in range(ROUNDS):
                http = https[(c + i) % len(https)]
                reply = yield http("PROPPATCH", BOX + "shared", proppatch("c%dr%d" % (c, i), "v%d-%d" % (c, i)))
                self.assertEqual(reply.code, 207, reply.body)
                body = b"client %d round %d\n" % (c, i) * (1 + 500 * (i % 3))
                reply = yield http("PUT", BOX + "shared/c%dr%d.txt" % (c, i), body,
                                   {"Content-Type": "text/plain"})
                self.assertEqual(reply.code, 201, reply.body)
                etags["c%dr%d.txt" % (c, i)] = (reply.header(b"etag").decode(), body)
                # and a property of the client's own file, in the same sidecar
                reply = yield http("PROPPATCH", BOX + "shared/c%dr%d.txt" % (c, i),
                                   proppatch("own", "f%d-%d" % (c, i)))
                self.assertEqual(reply.code, 207, reply.body)
                etags["c%dr%d.txt" % (c, i)] = (reply.header(b"etag").decode(), body)
            return etags

        results = yield defer.gatherResults([client(c) for c in range(CLIENTS)], consumeErrors=True)
        expected = {}
        for r in results:
            expected.update(r)
        for http in https:  # every server process sees every update
            reply = yield http("PROPFIND", BOX + "shared", None, {"Depth": "1"})
            self.assertEqual(reply.code, 207)
            root = etree.fromstring(reply.body)
            responses = list(root.iterfind("{DAV:}response"))
            own = {el.tag.split("}")[1]: el.text for el in responses[0].iter("{%s}*" % NS)}
            self.assertEqual(own, {"c%dr%d" % (c, i): "v%d-%d" % (c, i)
                                   for c in range(CLIENTS) for i in range(ROUNDS)})
            files = {}
            for response in responses[1:]:
                name = response.findtext("{DAV:}href").rsplit("/", 1)[-1]
                files[name] = (response.findtext(".//{DAV:}getetag"),
                               response.findtext(".//{%s}own" % NS))
            self.assertEqual(files, {name: (etag, "f" + name[1:-4].replace("r", "-"))
                                     for name, (etag, _) in expected.items()})
            for name, (etag, body) in sorted(expected.items())[::7]:
                reply = yield http("GET", BOX + "shared/" + name)
                self.assertEqual((reply.body, reply.header(b"etag").decode()), (body, etag))
        tmp = os.listdir(os.path.join(data, ":tmp"))
        self.assertEqual(tmp, [])

    @defer.inlineCallbacks
    def test_one_process(self):
        data = os.path.abspath(self.mktemp())
        provision.create_box(data, "cell1", "box1")
        server = yield RealServer(self, data).start()
        yield self.storm([server], data)

    @defer.inlineCallbacks
    def test_two_processes_one_data_root(self):
        data = os.path.abspath(self.mktemp())
        provision.create_box(data, "cell1", "box1")
        first, second = yield defer.gatherResults(
            [RealServer(self, data).start(), RealServer(self, data).start()])
        yield self.storm([first, second], data)
