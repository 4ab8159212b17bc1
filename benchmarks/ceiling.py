"""The framework's ceiling: a bare twisted.web Site whose one leaf resource
answers every request (any method, any path) with the same fixed 1 KiB body.

Run as a twistd application file, so it has exactly the set-up of the real
server (twistd, its log observer, Site's per-request access log):

    CEILING_PORT=8090 taskset -c 0 twistd -n --pidfile= -y benchmarks/ceiling.py

benchmarks/run.py starts it that way, pinned to the server CPU.
"""
import os

from twisted.application import service, strports
from twisted.web.resource import Resource
from twisted.web.server import Site

BODY = bytes((i * 7 + 13) % 256 for i in range(1024))  # load.py's 1 KiB payload


class Fixed(Resource):
    isLeaf = True

    def render(self, request):
        request.setHeader(b"content-type", b"application/octet-stream")
        return BODY


port = os.environ.get("CEILING_PORT", "8090")
application = service.Application("ceiling")
strports.service("tcp:%s:interface=127.0.0.1" % port, Site(Fixed(), timeout=60)
                 ).setServiceParent(application)
