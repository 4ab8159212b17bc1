"""Crash safety, for real (issue 4, item 3).

The real server (``twistd -n personium-dav``, durable: the default) takes a
storm of PUT, PROPPATCH, MKCOL, MOVE and DELETE from several concurrent
clients over HTTP, and is SIGKILLed at a random moment, again and again. After
each restart on the same data root:

* every write the server acknowledged is there, with the ETag it answered;
* a write whose answer never came (killed in flight) is either wholly done or
  wholly not done -- never half (a MOVE is at one end, not both, not neither);
* every sidecar on disk parses;
* no file is torn: every body carries the SHA-256 of the rest of itself;
* no temporary or lock file is visible: PROPFIND Depth 1 lists exactly the
  names the clients are entitled to expect.

Each client works on names of its own (plus properties of its own on a shared
collection), so the expected state is exact. The seed is in the failure
message: PERSONIUM_CRASH_SEED=N reruns one storm, PERSONIUM_CRASH_CYCLES=N
changes how many kills.
"""
import os
import random
import time

from twisted.internet import defer
from twisted.trial import unittest

from personium_dav.store import provision
from .support import hardening
from .support.realserver import RealServer
from .support.storm import BOX, CLIENTS, SHARED, Storm, StormChecks

class CrashTests(StormChecks, unittest.TestCase):

    timeout = 240
    CYCLES = int(os.environ.get("PERSONIUM_CRASH_CYCLES", "20"))

    @defer.inlineCallbacks
    def test_sigkill_storm(self):
        self.seed = int(os.environ.get("PERSONIUM_CRASH_SEED", random.randrange(10 ** 9)))
        rng = random.Random(self.seed)
        data = os.path.abspath(self.mktemp())
        provision.create_box(data, "cell1", "box1")
        storm = Storm(self.seed)
        server = yield RealServer(self, data).start()
        http = hardening.HTTP(server.url, data)
        for col in SHARED:
            reply = yield http("MKCOL", BOX + col)
            self.assertEqual(reply.code, 201, reply.body)
        kills = 0
        restart = verify = 0.0
        started = time.monotonic()
        for cycle in range(self.CYCLES):
            stopped = []
            clients = [storm.client(c, http, stopped) for c in range(CLIENTS)]
            yield hardening.sleep(rng.uniform(0.3, 1.0))
            server.kill()
            kills += 1
            stopped.append(True)
            done = yield defer.DeferredList(clients, consumeErrors=True)
            for ok, result in done:
                if not ok:
                    result.raiseException()
            yield server.wait(5)
            t0 = time.monotonic()
            server = yield RealServer(self, data).start()
            http = hardening.HTTP(server.url, data)
            t1 = time.monotonic()
            yield self.verify(storm, http, data, cycle)
            restart += t1 - t0
            verify += time.monotonic() - t1
        self.assertGreaterEqual(kills, 20 if self.CYCLES >= 20 else self.CYCLES)
        self.assertGreater(storm.acked, 10 * self.CYCLES,
                           "too few acknowledged writes to prove anything")
        print("crash storm: seed %d, %d kills, %d acknowledged writes, %d files, %.1fs"
              " (restarts %.1fs, checks %.1fs)"
              % (self.seed, kills, storm.acked, len(storm.files), time.monotonic() - started,
                 restart, verify))
