"""logfiles.AppendLog: the event log and the access log, written by one or
several server processes, rotated by size; and where the plugin's access
log goes (a file in the data root by default, twistd's log with ``-``)."""
import errno
import multiprocessing
import os
import threading

import treq
from twisted.internet import defer, reactor
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.trial import unittest

from personium_dav.logs import logfiles
from personium_dav.store import provision
from personium_dav.web.site import makeSite
from .support.helpers import options_on_one_connection
from .support.realserver import RealServer


def _writer(path, tag, count, rotate):
    log = logfiles.AppendLog(path, rotate_length=rotate, max_rotated=50)
    for i in range(count):
        log.write("%s %05d %s\n" % (tag, i, "x" * 40))
    log.close()


class AppendLogTests(unittest.TestCase):
    def setUp(self):
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.path = os.path.join(self.dir, "events.log")

    def lines(self):
        out = []
        for name in sorted(os.listdir(self.dir)):
            with open(os.path.join(self.dir, name)) as f:
                out += f.read().splitlines()
        return out

    def test_appends_and_keeps_mode(self):
        log = logfiles.AppendLog(self.path)
        log.write("one\n")
        log.write(b"two\n")
        log.close()
        log = logfiles.AppendLog(self.path)  # reopened: appended, not overwritten
        log.write("three\n")
        log.close()
        self.assertEqual(self.lines(), ["one", "two", "three"])
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)

    def test_rotation_keeps_at_most_max_rotated(self):
        log = logfiles.AppendLog(self.path, rotate_length=100, max_rotated=3)
        for i in range(40):
            log.write("line %02d %s\n" % (i, "y" * 20))
        log.close()
        names = sorted(os.listdir(self.dir))
        self.assertEqual(names, ["events.log", "events.log.1", "events.log.2", "events.log.3"])
        for name in names:
            self.assertLessEqual(os.path.getsize(os.path.join(self.dir, name)), 100 + 30)
        with open(self.path + ".1") as f:
            older = f.read().split()
        with open(self.path) as f:
            newest = f.read().split()
        self.assertLess(int(older[1]), int(newest[1]))  # .1 is the newest rotated file

    def test_processes_lose_no_line(self):
        """Two processes at once, rotating as they go: every line of each is
        in one of the files, whole (O_APPEND: nobody writes over another)."""
        context = multiprocessing.get_context("fork")
        procs = [context.Process(target=_writer, args=(self.path, tag, 2000, 20000))
                 for tag in ("A", "B")]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            self.assertEqual(p.exitcode, 0)
        lines = self.lines()
        self.assertEqual(len(lines), 4000)
        for tag in ("A", "B"):
            mine = sorted(int(line.split()[1]) for line in lines if line.startswith(tag + " "))
            self.assertEqual(mine, list(range(2000)))
        self.assertGreater(len(os.listdir(self.dir)), 2)  # it did rotate

    def test_rotating_at_once_loses_no_line(self):
        """Writers that cross the limit together: the one that waited for
        the lock while another rotated finds the new file, nobody fails
        (the waiter once found no file at all: FileNotFoundError)."""
        self.patch(logfiles, "RECHECK", 0)  # every write checks the file
        errors = []

        def write(tag):
            log = logfiles.AppendLog(self.path, rotate_length=2000, max_rotated=1000)
            try:
                for i in range(1500):
                    log.write("%s %05d %s\n" % (tag, i, "x" * 40))
            except Exception as e:  # noqa: BLE001 -- reported below
                errors.append(e)
            finally:
                log.close()

        writers = [threading.Thread(target=write, args=(tag,)) for tag in "ABCD"]
        for t in writers:
            t.start()
        for t in writers:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(self.lines()), 6000)

    def test_another_process_rotated(self):
        """A file renamed away by another process is noticed: the next lines
        go to the new file."""
        self.patch(logfiles, "RECHECK", 0)
        log = logfiles.AppendLog(self.path, rotate_length=10 ** 6)
        log.write("before\n")
        os.rename(self.path, self.path + ".1")  # what the other process did
        log.write("after\n")
        log.close()
        with open(self.path) as f:
            self.assertEqual(f.read(), "after\n")


class UnwritableAccessLogTests(unittest.TestCase):
    def test_answer_and_connection_survive(self):
        """A full disk under the access log loses the line, not the kept-alive
        connection whose answer was already sent."""
        data = os.path.abspath(self.mktemp())
        provision.create_box(data, "cell1", "box1")
        site = makeSite(data, access_log=os.path.join(data, ":log", "access.log"))

        def full(text):
            raise OSError(errno.ENOSPC, "No space left on device")

        site.doStart()  # opens the access log
        self.addCleanup(site.doStop)
        self.patch(site.accessLog, "write", full)
        transport = StringTransport()
        channel = options_on_one_connection(site, transport, 2)
        self.assertEqual(transport.value().count(b"HTTP/1.1 401 "), 2)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 2)
        channel.connectionLost(Failure(ConnectionDone()))


class PluginAccessLogTests(unittest.TestCase):
    def setUp(self):
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(pool.closeCachedConnections)
        self.http = treq.client.HTTPClient(Agent(reactor, pool=pool))

    @defer.inlineCallbacks
    def request_with_key(self, server, key):
        response = yield self.http.request("OPTIONS", server.url + "/cell1/box1/",
                                           headers={"X-Personium-RequestKey": key})
        yield response.content()
        self.assertEqual(response.code, 401)  # anonymous: the box grants nothing

    @defer.inlineCallbacks
    def test_default_is_a_file_in_the_data_root(self):
        data = os.path.abspath(self.mktemp())
        server = yield RealServer(self, data).start()
        yield self.request_with_key(server, "accesskey_1")
        yield server.stop()
        with open(os.path.join(data, ":log", "access.log")) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn('"OPTIONS /cell1/box1/ HTTP/1.1" 401', lines[0])
        self.assertTrue(lines[0].endswith('"accesskey_1"'), lines[0])
        self.assertNotIn("accesskey_1", server.log())

    @defer.inlineCallbacks
    def test_dash_is_twistds_log(self):
        data = os.path.abspath(self.mktemp())
        server = yield RealServer(self, data, "--access-log", "-").start()
        yield self.request_with_key(server, "accesskey_2")
        yield server.stop()
        self.assertIn('"accesskey_2"', server.log())
        self.assertFalse(os.path.exists(os.path.join(data, ":log", "access.log")))
