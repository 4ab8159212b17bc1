"""The pool's own behaviour: queueing, a worker killed from outside,
cancellation, start failures and back-off, stop()."""
import os
import signal

from twisted.internet import defer, reactor, task

from personium_dav.engine import pool as poolmod
from .support.enginehelp import FakeHost, PoolCase, SlowHost, fn, job

HELLO = fn("'hello'")
RUNAWAY = "function(r){ while (true) {} }"
SLOW_P = ("function(r){ return {status: 200, headers: {}, body: [_p.localbox().getString('f.txt')]}; }")


def sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


@defer.inlineCallbacks
def until(predicate, limit=10.0):
    end = reactor.seconds() + limit
    while not predicate():
        if reactor.seconds() > end:
            raise AssertionError("condition not met in %s s" % limit)
        yield sleep(0.02)


class Queueing(PoolCase):
    workers = 2

    @defer.inlineCallbacks
    def test_many_calls_few_workers(self):
        yield until(lambda: self.pool.stats()["idle"] == 2)
        calls = [self.answers(fn("'n%d'" % i)) for i in range(24)]
        self.assertGreater(self.pool.stats()["queued"], 0)
        got = yield defer.gatherResults(calls)
        self.assertEqual(got, [(200, "n%d" % i) for i in range(24)])
        self.assertEqual(self.pool.stats()["queued"], 0)
        self.assertEqual(self.pool.stats()["idle"], 2)


class Failures(PoolCase):
    script_timeout = 5.0

    @defer.inlineCallbacks
    def test_worker_killed_from_outside_mid_call(self):
        yield self.answers(HELLO)
        (pid,) = self.pool.worker_pids()
        d = self.answers(RUNAWAY)
        yield sleep(0.3)
        start = reactor.seconds()
        os.kill(pid, signal.SIGKILL)
        status, body = yield d
        self.assertEqual((status, body), (503, "Script TimeOut"))
        self.assertLess(reactor.seconds() - start, 2)
        status, body = yield self.answers(HELLO)
        self.assertEqual(status, 200)
        self.assertNotIn(pid, self.pool.worker_pids())

    @defer.inlineCallbacks
    def test_idle_worker_killed_is_replaced(self):
        yield self.answers(HELLO)
        (pid,) = self.pool.worker_pids()
        os.kill(pid, signal.SIGKILL)
        yield until(lambda: self.pool.worker_pids() and pid not in self.pool.worker_pids())
        status, _ = yield self.answers(HELLO)
        self.assertEqual(status, 200)

    @defer.inlineCallbacks
    def test_cancel_running_call_kills_its_worker(self):
        yield self.answers(HELLO)
        (pid,) = self.pool.worker_pids()
        d = self.run_js(RUNAWAY)
        yield sleep(0.2)
        d.cancel()
        yield self.assertFailure(d, defer.CancelledError)
        yield until(lambda: pid not in self.pool.worker_pids())
        status, _ = yield self.answers(HELLO)
        self.assertEqual(status, 200)

    @defer.inlineCallbacks
    def test_cancel_of_a_call_about_to_finish_keeps_its_worker(self):
        """A dropped connection must not cost a cold start: the abandoned
        call may finish (its answer dropped) and the worker serves on."""
        yield self.answers(HELLO)
        (pid,) = self.pool.worker_pids()
        d = self.run_js("function(r){ var end = Date.now() + 300; while (Date.now() < end) {}"
                        " return {status: 200, headers: {}, body: ['late']}; }")
        yield sleep(0.1)
        d.cancel()
        yield self.assertFailure(d, defer.CancelledError)
        self.assertEqual((yield self.answers(HELLO)), (200, "hello"))
        self.assertEqual(self.pool.worker_pids(), [pid])
        self.assertEqual(self.listdir_tmp(), [])

    @defer.inlineCallbacks
    def test_a_long_call_yields_the_cpu(self):
        """Past DEMOTE_AFTER a call's worker runs at nice 19; its priority
        comes back after the call (or, where it may not, the worker retires)."""
        yield self.answers(HELLO)
        (pid,) = self.pool.worker_pids()
        base = os.getpriority(os.PRIO_PROCESS, pid)
        d = self.answers("function(r){ var end = Date.now() + %d; while (Date.now() < end) {}"
                         " return {status: 200, headers: {}, body: ['long']}; }"
                         % int((poolmod.DEMOTE_AFTER + 0.6) * 1000))
        yield until(lambda: os.getpriority(os.PRIO_PROCESS, pid) == poolmod.LOW_PRIORITY)
        self.assertEqual((yield d), (200, "long"))
        if os.getpriority(os.PRIO_PROCESS, pid) == base:  # allowed to raise it again
            self.assertEqual(self.pool.worker_pids(), [pid])
        self.assertEqual((yield self.answers(HELLO)), (200, "hello"))
        # where the priority cannot be raised again, the worker retires
        self.patch(self.pool, "_restore", lambda w: False)
        yield self.answers(HELLO)
        (pid,) = self.pool.worker_pids()
        d = self.answers("function(r){ var end = Date.now() + %d; while (Date.now() < end) {}"
                         " return {status: 200, headers: {}, body: ['long']}; }"
                         % int((poolmod.DEMOTE_AFTER + 0.3) * 1000))
        self.assertEqual((yield d), (200, "long"))
        yield until(lambda: self.pool.worker_pids() and pid not in self.pool.worker_pids())
        self.assertEqual((yield self.answers(HELLO)), (200, "hello"))

    @defer.inlineCallbacks
    def test_cancel_cancels_the_pending_p_call(self):
        """... and the script gets an error from it, so it can end within its
        grace: the worker serves on."""
        host = SlowHost(60.0)  # never answers before the cancel, however loaded
        yield self.answers(HELLO)
        (pid,) = self.pool.worker_pids()
        d = self.run_js(SLOW_P, host)
        yield until(lambda: host.calls)
        d.cancel()
        yield self.assertFailure(d, defer.CancelledError)
        self.assertEqual(host.cancelled, 1)
        self.assertEqual((yield self.answers(HELLO)), (200, "hello"))
        self.assertEqual(self.pool.worker_pids(), [pid])

    @defer.inlineCallbacks
    def test_cancel_queued_call(self):
        yield self.answers(HELLO)
        host = SlowHost(0.5)
        host.files["f.txt"] = ("text/plain", b"slow")
        busy = self.answers(SLOW_P, host)
        queued = self.run_js(HELLO)
        self.assertEqual(self.pool.stats()["queued"], 1)
        queued.cancel()
        yield self.assertFailure(queued, defer.CancelledError)
        self.assertEqual(self.pool.stats()["queued"], 0)
        self.assertEqual((yield busy), (200, "slow"))

    @defer.inlineCallbacks
    def test_time_spent_in_p_calls_counts(self):
        host = SlowHost(10.0)
        start = reactor.seconds()
        status, body = yield self.answers(SLOW_P, host)
        self.assertEqual((status, body), (503, "Script TimeOut"))
        self.assertLess(reactor.seconds() - start, 8)
        self.assertEqual(host.cancelled, 1)

    @defer.inlineCallbacks
    def test_stop_with_a_running_call(self):
        d = self.answers(RUNAWAY)
        yield sleep(0.2)
        yield self.pool.stop()
        status, body = yield d
        self.assertEqual(status, 500)
        self.assertIn("PR500-SC-0001", body)
        self.assertEqual(self.pool.worker_pids(), [])


class QueueLimit(PoolCase):
    script_timeout = 1.0

    def make_pool(self, **kw):
        return super().make_pool(queue_timeout=1.0, **kw)

    @defer.inlineCallbacks
    def test_a_call_waits_at_most_the_timeout(self):
        yield self.answers(HELLO)
        host = SlowHost(0.6)
        host.files["f.txt"] = ("text/plain", b"x")
        first = self.answers(SLOW_P, host)
        second = self.answers(SLOW_P, host)  # queued 0.6 s, runs 0.6 s: only the run counts
        third = self.answers(HELLO)  # would wait 1.2 s in the queue
        results = yield defer.gatherResults([first, second, third])
        self.assertEqual(results[:2], [(200, "x"), (200, "x")])
        self.assertEqual(results[2][0], 500)
        self.assertIn("PR500-SC-0001", results[2][1])


class StartFailures(PoolCase):
    @defer.inlineCallbacks
    def test_backoff_and_engine_unreachable(self):
        spawned = []
        bad = self.make_pool(python="/bin/false")
        real = reactor.spawnProcess

        def counting(*a, **kw):
            spawned.append(1)
            return real(*a, **kw)

        self.patch(reactor, "spawnProcess", counting)
        bad.start()
        yield sleep(1.5)
        res = yield bad.run(job(HELLO), FakeHost())
        self.assertEqual(res.status, 500)
        self.assertIn(b"PR500-SC-0001", res.body)
        self.assertLessEqual(len(spawned), 6)  # 0.1, 0.2, 0.4, 0.8 s apart
        yield bad.stop()


class Bodies(PoolCase):
    @defer.inlineCallbacks
    def test_large_request_body_from_a_file(self):
        path = os.path.join(self.tmp, "upload")
        with open(path, "wb") as f:
            f.write(b"y" * (2 * 1024 * 1024 + 3))
        status, body = yield self.answers(fn("request.input.readAll().length"), method="POST", body_path=path)
        self.assertEqual((status, body), (200, str(2 * 1024 * 1024 + 3)))
        self.assertTrue(os.path.exists(path))  # the caller's file

    @defer.inlineCallbacks
    def test_echo_stream_of_a_large_body(self):
        path = os.path.join(self.tmp, "upload")
        with open(path, "wb") as f:
            f.write(b"z" * (3 * 1024 * 1024))
        res = yield self.run_js("function(r){ return {status: 200, headers: {}, body: [r.input.stream()]}; }",
                                method="POST", body_path=path)
        self.assertTrue(res.body_path)
        self.assertEqual(os.path.getsize(res.body_path), 3 * 1024 * 1024)
        res.discard()

    def test_as_limit_formula(self):
        self.assertEqual(poolmod.as_limit(64), (256 + 3 * 64) * 1024 * 1024)

    @defer.inlineCallbacks
    def test_large_p_call_data_both_ways(self):
        host = FakeHost()
        host.files["big.txt"] = ("text/plain", b"r" * (12 * 1024 * 1024))
        src = ("function(r){ var b = _p.localbox(); b.put('out.txt', 'text/plain', 'w'.repeat(12 * 1024 * 1024));"
               " return {status: 200, headers: {}, body: [String(b.getString('big.txt').length)]}; }")
        status, body = yield self.answers(src, host)
        self.assertEqual((status, body), (200, str(12 * 1024 * 1024)))
        self.assertEqual(host.files["out.txt"][1], b"w" * (12 * 1024 * 1024))


class Spare(PoolCase):
    """A worker kept ready beyond ``workers``: never more than ``workers``
    calls at once, and a worker killed at its limit is replaced by the
    spare at once, not after a cold start."""

    workers = 1
    script_timeout = 2.0

    def make_pool(self, **kw):
        return super().make_pool(spare=1, **kw)

    @defer.inlineCallbacks
    def test_the_spare_takes_over_from_a_killed_worker(self):
        yield until(lambda: len(self.pool.worker_pids(ready=True)) == 2)
        before = set(self.pool.worker_pids())
        spinning = self.answers(RUNAWAY)
        yield sleep(0.3)
        ready_when_answered = []

        def answered(result):
            ready_when_answered.extend(self.pool.worker_pids(ready=True))
            return result

        hello = self.answers(HELLO).addCallback(answered)
        yield sleep(0.2)
        self.assertEqual(self.pool.stats()["queued"], 1)  # one call at a time: workers=1
        self.assertEqual(len(self.pool.worker_pids()), 2)
        got = yield spinning
        self.assertEqual(got, (503, "Script TimeOut"))
        got = yield hello
        self.assertEqual(got, (200, "hello"))
        # answered by the spare while the killed worker's replacement still starts
        self.assertEqual(len(ready_when_answered), 1)
        self.assertLessEqual(set(ready_when_answered), before)
        yield until(lambda: len(self.pool.worker_pids(ready=True)) == 2)
        self.assertEqual(len(set(self.pool.worker_pids()) - before), 1)

    @defer.inlineCallbacks
    def test_no_spare_when_execution_is_off(self):
        pool = self.make_pool(workers=0)
        pool.start()
        self.addCleanup(pool.stop)
        self.assertEqual(pool.worker_pids(), [])
        res = yield pool.run(job(HELLO), FakeHost())
        self.assertEqual(res.status, 500)
