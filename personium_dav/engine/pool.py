"""The pool of script workers the server owns, and the calls it runs on them.

``ScriptPool.run(job, host)`` returns a Deferred that always fires with a
``result.Result`` ready to render (or fails with CancelledError if the caller
cancelled it). Calls wait in a FIFO queue while every worker is busy; each
worker runs one call at a time.

Limits and what they cost (``docs/services.md`` has the operator's view):

* Time: the deadline of a call starts when its job is handed to a worker
  (time spent in the queue does not count; a call waits there at most
  ``queue_timeout`` seconds, by default ``timeout`` plus 10 s for a
  replacement worker to start, then answers PR500-SC-0001). At the deadline the
  worker is SIGKILLed and the call answers 503 ``Script TimeOut``; a
  replacement is spawned at once.
* A worker that dies while running a call (a crash, the address-space fence,
  a kill from outside) costs that call: 503 ``Script TimeOut``, the answer
  of an exhausted limit, since that is the likely cause. Never another call.
* A worker that dies before it said ``ready`` is a start failure: respawns
  back off exponentially (0.1 s doubling to 10 s); after three failures in a
  row with no worker alive, queued calls answer PR500-SC-0001 instead of
  waiting for nothing.
* Cancelling the returned Deferred (a client that went away) dequeues a
  waiting call; a running one is abandoned: its pending ``_p`` call is
  cancelled (the script gets an error from it), its answer will be dropped,
  and its worker is killed (then
  replaced, as after a time-out) unless it finishes within
  ``ABANDON_GRACE`` seconds. Killing at once would make every dropped
  connection cost a cold start, however short its call.
* CPU: a call still running after ``DEMOTE_AFTER`` seconds has its worker's
  priority lowered to nice 19 for the rest of it, so a runaway script takes
  only the CPU that the server and the short calls leave. When the call
  ends the priority is restored; where the server may not raise a
  priority again (no CAP_SYS_NICE), the worker retires instead (it exits
  and a fresh one is spawned).
* A spare: the server's pool keeps ``spare`` workers (``SPARE``, one)
  started beyond ``workers``, while at most ``workers`` calls run at once.
  A worker killed at its limit is replaced at once by one already ready, so
  runaway scripts following each other never leave the other calls
  waiting for a cold start (~0.2 s each). It is started ``SPARE_AFTER``
  seconds after a first worker is ready (not to slow the first calls: a
  start takes ~0.1 s of CPU), and a call goes to the worker that finished
  last, so the spare stays idle under a steady load.
* Memory: ``memory_mib`` is QuickJS's own limit (the script may catch the
  error; uncaught it answers 503); ``RLIMIT_AS`` of the worker is the second
  fence, ``as_limit(memory_mib)`` below.

Workers are spawned with ``reactor.spawnProcess``: ``python -I`` (no
``PYTHON*`` variable, no user site), an EMPTY environment (no secret of the
server's reaches them), ``/`` as the working directory, no stdin, stdout
folded into stderr and stderr logged line by line. Frames travel on two
extra pipes (the child's fds 3 and 4), so a stray print cannot corrupt them.
"""
import collections
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Dict, Optional

from twisted.internet import defer, error
from twisted.internet.protocol import ProcessProtocol, Protocol
from twisted.logger import Logger

from . import framing, result
from .host import HostError
from .outbound import Outbound

log = Logger()

CHILD_IN, CHILD_OUT = 3, 4  # the child's fds: frames from the parent, frames to it
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOOT = ("import sys; sys.path.insert(0, %r); "
        "from personium_dav.engine.worker import main; sys.exit(main(sys.argv[1:]))" % ROOT)
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 10.0
GIVE_UP_AFTER = 3  # start failures in a row with no worker alive
STOP_GRACE = 2.0
START_ALLOWANCE = 10.0  # seconds a queued call may wait beyond the time limit
SPARE = 1  # workers the server keeps ready beyond --script-workers (see above)
SPARE_AFTER = 1.0  # seconds after a worker is ready that the spare is started
ABANDON_GRACE = 1.0  # seconds a cancelled call may go on running before its worker is killed
DEMOTE_AFTER = 1.0  # seconds a call runs at the server's priority; then nice 19 (see above)
LOW_PRIORITY = 19
BODY_FILE = re.compile(r"script-[A-Za-z0-9_]+\.body\Z")
MIB = 1024 * 1024
# What a worker's address space needs besides the JS heap (measured: see
# as_limit), and how many copies of the heap's worth of data the Python side
# may hold while it moves a script's strings across the boundary.
AS_BASE_MIB = 256
AS_HEAP_FACTOR = 3


def as_limit(memory_mib):
    """RLIMIT_AS of a worker, bytes: ``256 + 3 * memory_mib`` MiB.

    Measured (Python 3.11, quickjs-ng 0.17, x86-64): a worker peaks at about
    200 MiB of address space while it starts (the interpreter, the module,
    glibc's arena and thread-stack reservations: two threads), idles at 130
    MiB, and a script that fills a 256 MiB heap peaks at 390 MiB, about 0.8
    MiB per MiB of heap. The factor 3 leaves room for the JSON text and the
    Python copies of a large string on its way to the parent (a 16 MiB body
    is, for a moment, a JS string, its JSON, a str and bytes)."""
    return (AS_BASE_MIB + AS_HEAP_FACTOR * memory_mib) * MIB


@dataclass
class Job:
    """One script to run, and the request it answers.

    ``source``: the script's text; ``name``: its ``__src`` name (for logs);
    ``method``: GET/POST/PUT/DELETE; ``base_url``: the server's base URL
    (``https://host:port/``), whose scheme, host and port the script sees;
    ``url``: the absolute request URL with its query; ``path_info``: the path
    the script sees as ``pathInfo``; ``headers``: the client's headers plus
    the ``x-personium-*`` ones the caller adds (name -> value, or a list of
    pairs: last wins, names lower-cased); the pool adds ``x-baseurl`` and
    ``x-request-uri``. The body: ``body`` bytes, or ``body_path`` a file the
    caller owns (under the tmp folder) for a large one.
    """

    source: str
    name: str
    method: str
    base_url: str
    url: str
    path_info: str
    headers: object = field(default_factory=dict)
    body: bytes = b""
    body_path: Optional[str] = None

    def request(self):
        """The JSGI request fields the worker turns into the request object."""
        from urllib.parse import urlsplit

        base = urlsplit(self.base_url)
        port = base.port or (443 if base.scheme == "https" else 80)
        pairs = self.headers.items() if isinstance(self.headers, dict) else self.headers
        headers: Dict[str, str] = {}
        for name, value in pairs:
            headers[str(name).lower()] = str(value)
        headers["x-baseurl"] = self.base_url
        headers["x-request-uri"] = self.url
        script, _, query = self.url.partition("?")
        return {"method": self.method, "host": base.hostname or "", "port": str(port),
                "scheme": base.scheme, "scriptName": script, "pathInfo": self.path_info,
                "queryString": query, "headers": headers, "requestUri": self.url}


class _Call:
    """A run() in flight: queued, then on a worker, then done."""

    def __init__(self, job, host):
        self.job, self.host = job, host
        self.deferred = None
        self.worker = None
        self.done = False
        self.wait = None  # DelayedCall: how long it may queue
        self.deadline = None  # DelayedCall: how long it may run
        self.demote = None  # DelayedCall: when its worker's priority is lowered
        self.abandoned = False  # cancelled by its caller while running
        self.pending = None  # Deferred of the _p call it waits for
        self.started = None


PIPE_AT_ONCE = 64 * 1024  # a frame up to this size is written at once (a pipe's usual capacity)


class _Pipe:
    """The transport the framer writes through: the child's fd 3.

    A frame is written at once, as far as the pipe takes it, and only the
    rest is left to the transport (which writes at the reactor's next turn,
    after registering for writability): the worker reads each frame whole
    before it answers, so nothing of an earlier frame is ever still waiting
    when the pool writes the next one."""

    def __init__(self, worker):
        self.worker = worker

    def write(self, data):
        transport = self.worker.transport
        written = 0
        if len(data) <= PIPE_AT_ONCE:  # (a larger one would be copied again for its rest)
            try:
                written = os.write(transport.pipes[CHILD_IN].fileno(), data)
            except (BlockingIOError, KeyError):
                pass
            except OSError:
                return  # the worker is gone: processEnded follows
        if written < len(data):
            transport.writeToChild(CHILD_IN, data[written:])  # (data itself when nothing was written)

    def writeSequence(self, seq):
        self.write(b"".join(seq))

    def loseConnection(self):
        self.worker.kill()


class _Framer(Protocol):
    """Int32StringReceiver's framing (a 4-byte big-endian length, then the
    frame), read into one growing buffer: Int32StringReceiver joins its whole
    buffer again at every chunk, which is quadratic for the multi-megabyte
    frames a ``_p`` call can carry."""

    def __init__(self, worker):
        self.worker = worker
        self.buffer = bytearray()

    def sendString(self, payload):
        self.transport.write(framing.LENGTH.pack(len(payload)) + payload)

    def dataReceived(self, data):
        self.buffer += data
        size = framing.LENGTH.size
        while len(self.buffer) >= size and self.worker.alive and not self.worker.dying:
            (n,) = framing.LENGTH.unpack_from(self.buffer)
            if n > framing.MAX_FRAME:
                log.warn("script worker {pid}: frame too large", pid=self.worker.pid)
                self.worker.kill()
                return
            if len(self.buffer) < size + n:
                return
            payload = bytes(self.buffer[size:size + n])
            del self.buffer[:size + n]
            try:
                msg, blob = framing.decode(payload)
            except framing.FrameError as e:
                log.warn("script worker {pid}: bad frame ({e})", pid=self.worker.pid, e=e)
                self.worker.kill()
                return
            self.worker.pool._message(self.worker, msg, blob)


class _Worker(ProcessProtocol):
    """One worker process as the pool sees it."""

    def __init__(self, pool):
        self.pool = pool
        self.framer = _Framer(self)
        self.ready = False
        self.call = None
        self.alive = True
        self.dying = False  # killed, not yet reaped: never given a job
        self.pid = None
        self.spawned = None
        self.cold_start = None  # seconds from spawn to ready
        self.demoted = False  # running at LOW_PRIORITY
        self.ended = defer.Deferred()
        self._err = b""

    def connectionMade(self):
        self.pid = self.transport.pid
        self.framer.makeConnection(_Pipe(self))

    def childDataReceived(self, fd, data):
        if fd == CHILD_OUT:
            self.framer.dataReceived(data)
        else:
            self._err += data
            *lines, self._err = self._err.split(b"\n")
            if len(self._err) > 8192:
                lines.append(self._err)
                self._err = b""
            for line in lines:
                log.info("script worker {pid}: {line}", pid=self.pid,
                         line=line.decode("utf-8", "replace"))

    def kill(self):
        self.dying = True
        try:
            self.transport.signalProcess("KILL")
        except (error.ProcessExitedAlready, OSError, AttributeError):
            pass

    def processEnded(self, reason):
        self.alive = False
        self.pool._ended(self, reason)
        self.ended.callback(None)


class ScriptPool:
    """Worker processes running service scripts, one call at a time each.

    ``workers``: how many (0: execution off, every call answers
    PR500-SC-0001); ``timeout``: seconds a call may run; ``memory_mib``: the
    JS heap limit; ``tmp_dir``: where large bodies travel as files (the data
    root's ``:tmp``); ``http_allow``: ``HOST[:PORT]`` strings HttpClient may
    reach (none by default); ``queue_timeout``: seconds a call may wait for
    a worker (default ``timeout`` + ``START_ALLOWANCE``); ``spare``: workers
    kept ready beyond ``workers`` (the server's: ``SPARE``); ``python``: the
    interpreter for workers.
    """

    def __init__(self, workers, timeout, memory_mib, tmp_dir, reactor=None,
                 http_allow=(), queue_timeout=None, spare=0, python=None):
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.size = int(workers)
        self.spare = int(spare) if self.size > 0 else 0
        self.timeout = float(timeout)
        self.queue_timeout = (self.timeout + START_ALLOWANCE if queue_timeout is None
                              else float(queue_timeout))
        self.memory = int(memory_mib) * MIB
        self.as_limit = as_limit(int(memory_mib))
        self.tmp = os.path.abspath(tmp_dir)
        self.python = python or sys.executable
        self.priority = os.getpriority(os.PRIO_PROCESS, 0)  # the workers' (inherited)
        self.outbound = Outbound(http_allow, reactor)
        self._workers = set()
        self._idle = collections.deque()
        self._queue = collections.deque()
        self._respawns = set()
        self._failures = 0
        self._running = False

    # -- life cycle --------------------------------------------------------------
    def start(self):
        """Spawn the workers (they take a fraction of a second to be ready;
        calls made meanwhile queue)."""
        if self._running:
            return
        self._running = True
        self._failures = 0
        for _ in range(self.size):
            self._spawn()  # the spare comes SPARE_AFTER the first is ready (below)

    def stop(self):
        """Stop every worker; a Deferred that fires once all have exited.
        Queued and running calls answer PR500-SC-0001."""
        self._running = False
        for dc in list(self._respawns):
            if dc.active():
                dc.cancel()
        self._respawns.clear()
        while self._queue:
            self._finish(self._queue.popleft(), result.engine_unreachable())
        ends = []
        for w in list(self._workers):
            ends.append(w.ended)
            if w.call is not None:
                self._finish(w.call, result.engine_unreachable())
                w.kill()
            else:
                try:
                    w.transport.closeChildFD(CHILD_IN)
                except Exception:
                    w.kill()
        if not ends:
            return defer.succeed(None)
        killer = self.reactor.callLater(STOP_GRACE, self._kill_all)
        d = defer.DeferredList(ends)

        def done(_):
            if killer.active():
                killer.cancel()

        d.addCallback(done)
        return d

    def _kill_all(self):
        for w in list(self._workers):
            w.kill()

    def stats(self):
        """Numbers for tests and benchmarks."""
        return {"workers": len(self._workers), "ready": sum(w.ready for w in self._workers),
                "idle": len(self._idle), "queued": len(self._queue),
                "cold_starts": [w.cold_start for w in self._workers if w.cold_start is not None]}

    def worker_pids(self, ready=False):
        """PIDs of the workers (with ``ready``: of those that can take a call)."""
        return [w.pid for w in self._workers
                if w.pid and (not ready or (w.ready and not w.dying))]

    def _spawn(self):
        if not self._running:
            return
        w = _Worker(self)
        w.spawned = self.reactor.seconds()
        args = [self.python, "-I", "-c", BOOT, "--in", str(CHILD_IN), "--out", str(CHILD_OUT),
                "--memory", str(self.memory), "--as-limit", str(self.as_limit), "--tmp", self.tmp]
        self._workers.add(w)
        try:
            self.reactor.spawnProcess(w, self.python, args, env={}, path="/",
                                      childFDs={2: "r", CHILD_IN: "w", CHILD_OUT: "r"})
        except OSError as e:
            log.error("cannot start a script worker: {e}", e=e)
            self._workers.discard(w)
            self._failures += 1
            self._schedule_spawn()

    def _schedule_spawn(self):
        if not self._running:
            return
        delay = 0 if not self._failures else min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self._failures - 1))
        if self._failures >= GIVE_UP_AFTER and not any(w.ready for w in self._workers):
            while self._queue:
                self._finish(self._queue.popleft(), result.engine_unreachable())
        dc = self.reactor.callLater(delay, self._respawn)
        self._respawns.add(dc)

    def _respawn(self):
        self._respawns = {dc for dc in self._respawns if dc.active()}
        if self._missing() > 0:
            self._spawn()

    def _missing(self):
        """Workers to start to have ``size + spare`` (those starting, or due
        to start after a back-off, count)."""
        due = sum(1 for dc in self._respawns if dc.active())
        return self.size + self.spare - len(self._workers) - due

    def _ended(self, w, reason):
        self._workers.discard(w)
        try:
            self._idle.remove(w)
        except ValueError:
            pass
        call, w.call = w.call, None
        if call is not None and not call.done:
            log.warn("script worker {pid} died running {name}: {why}", pid=w.pid,
                     name=call.job.name, why=reason.getErrorMessage())
            self._finish(call, result.timeout())
        if not w.ready:
            self._failures += 1
            if self._running:
                log.warn("script worker {pid} died at start: {why}", pid=w.pid,
                         why=reason.getErrorMessage())
        self._schedule_spawn()
        self._dispatch()

    # -- calls ---------------------------------------------------------------------
    def run(self, job, host):
        """Run ``job``; ``host.call(op, args)`` answers its ``_p`` calls.
        -> Deferred[Result]; cancel it to abandon the call."""
        call = _Call(job, host)
        call.deferred = defer.Deferred(lambda d: self._cancel(call))
        if not self._running or self.size <= 0:
            self._finish(call, result.engine_unreachable())
            return call.deferred
        if self._failures >= GIVE_UP_AFTER and not any(w.ready for w in self._workers):
            self._finish(call, result.engine_unreachable())
            return call.deferred
        call.wait = self.reactor.callLater(self.queue_timeout, self._waited_too_long, call)
        self._queue.append(call)
        self._dispatch()
        return call.deferred

    def _waited_too_long(self, call):
        call.wait = None
        try:
            self._queue.remove(call)
        except ValueError:
            return
        log.warn("script {name}: no worker free within {t} s", name=call.job.name, t=self.queue_timeout)
        self._finish(call, result.engine_unreachable())

    def _busy(self):
        """Calls on a worker now (a killed worker's no longer counts)."""
        return sum(1 for w in self._workers if w.call is not None and not w.dying)

    def _dispatch(self):
        while self._queue and self._idle and self._busy() < self.size:
            w = self._idle.pop()  # the last to finish: the spare stays in reserve
            if not w.alive or w.dying or w.call is not None:
                continue
            call = self._queue.popleft()
            if call.wait is not None and call.wait.active():
                call.wait.cancel()
            call.wait = None
            self._start(w, call)

    def _start(self, w, call):
        job = call.job
        w.call, call.worker = call, w
        call.started = self.reactor.seconds()
        call.deadline = self.reactor.callLater(self.timeout, self._expire, call)
        if DEMOTE_AFTER < self.timeout:
            call.demote = self.reactor.callLater(DEMOTE_AFTER, self._demote, call)
        msg = {"t": "job", "source": job.source, "name": job.name, "request": job.request()}
        blob = b""
        if job.body_path:
            msg["body_path"] = os.path.abspath(job.body_path)
        else:
            blob = bytes(job.body or b"")
        w.framer.sendString(framing.encode(msg, blob))

    def _expire(self, call):
        call.deadline = None
        w = call.worker
        log.warn("script {name}: time limit ({t} s) passed", name=call.job.name, t=self.timeout)
        self._finish(call, result.timeout())
        if w is not None:
            self._kill(w)

    def _kill(self, w):
        """Kill a worker running a call; its place goes to a ready worker
        (the spare) at once."""
        w.kill()
        self._dispatch()

    def _demote(self, call):
        """A long call: its worker yields the CPU to everything else."""
        call.demote = None
        w = call.worker
        if w is None or w.call is not call or w.dying:
            return
        try:
            os.setpriority(os.PRIO_PROCESS, w.pid, LOW_PRIORITY)
            w.demoted = True
        except OSError:
            pass

    def _restore(self, w):
        """After a demoted call: the worker's priority back, or False when
        that is not allowed (then it must retire)."""
        try:
            os.setpriority(os.PRIO_PROCESS, w.pid, self.priority)
        except OSError:
            return False
        w.demoted = False
        return True

    def _retire(self, w):
        """Let an idle worker exit (a fresh one is spawned when it has)."""
        w.dying = True
        try:
            w.transport.closeChildFD(CHILD_IN)
        except Exception:
            w.kill()

    def _finish(self, call, res):
        """Fire the call's Deferred once, with ``res``; clean its timers."""
        for dc in (call.wait, call.deadline, call.demote):
            if dc is not None and dc.active():
                dc.cancel()
        call.wait = call.deadline = call.demote = None
        if call.done:
            res.discard()
            return
        call.done = True
        pending, call.pending = call.pending, None
        if pending is not None:
            pending.cancel()
        call.deferred.callback(res)

    def _cancel(self, call):
        if call.done:
            return
        call.done = True
        for dc in (call.wait, call.deadline, call.demote):
            if dc is not None and dc.active():
                dc.cancel()
        call.demote = None
        try:
            self._queue.remove(call)
        except ValueError:
            pass
        w = call.worker
        if w is not None and w.call is call:
            call.abandoned = True
        pending, call.pending = call.pending, None
        if pending is not None:
            pending.cancel()  # its errback answers the worker (an abandoned call)
        if w is not None and w.call is call:
            left = call.started + self.timeout - self.reactor.seconds()
            call.deadline = self.reactor.callLater(max(0.0, min(ABANDON_GRACE, left)),
                                                   self._abandoned, call)
        # not firing the Deferred: Deferred.cancel fails it with CancelledError

    def _abandoned(self, call):
        """A cancelled call still running after its grace: kill its worker."""
        call.deadline = None
        w = call.worker
        if w is not None and w.call is call:
            log.info("script {name}: abandoned by its client, stopped", name=call.job.name)
            self._kill(w)

    # -- messages from workers -------------------------------------------------------
    def _message(self, w, msg, blob):
        kind = msg["t"]
        if kind == "ready" and not w.ready:
            w.ready = True
            w.cold_start = self.reactor.seconds() - w.spawned
            self._failures = 0
            if self._running and self._missing() > 0:  # the spare, a while after the first is ready
                self._respawns.add(self.reactor.callLater(SPARE_AFTER, self._respawn))
            self._idle.append(w)
            self._dispatch()
        elif kind == "call" and w.call is not None:
            self._host_call(w, w.call, msg.get("op"), msg.get("args"), blob)
        elif kind == "result" and w.call is not None:
            call, w.call = w.call, None
            if w.demoted and not w.dying and not self._restore(w):
                self._retire(w)
            if not w.dying:
                self._idle.append(w)
            self._finish(call, self._result(msg, blob))
            self._dispatch()
        elif kind == "result" and msg.get("body_file"):
            self._result(msg, blob).discard()  # the answer of an abandoned call
        else:
            log.warn("script worker {pid}: unexpected {kind!r} message", pid=w.pid, kind=kind)
            w.kill()

    def _result(self, msg, blob):
        status, headers = msg.get("status"), msg.get("headers")
        if not isinstance(status, int) or not isinstance(headers, list):
            return result.server_error()
        res = result.Result(status, [(str(k), str(v)) for k, v in headers], blob)
        name = msg.get("body_file")
        if name:
            if not isinstance(name, str) or not BODY_FILE.match(name):
                return result.server_error()
            res.body, res.body_path = b"", os.path.join(self.tmp, name)
        return res

    def _host_call(self, w, call, op, args, blob):
        """Answer one ``_p`` call of the script running on ``w``."""
        if call.done:
            return
        if not isinstance(op, str) or not isinstance(args, dict):
            w.kill()
            return
        if op == "http":
            d = self.outbound.request(args, blob)
        else:
            if op == "dav.put":
                args["data"] = blob
            d = defer.maybeDeferred(call.host.call, op, args)
        call.pending = d

        def reply(msg, rblob=b""):
            if call.done or w.call is not call:
                return
            w.framer.sendString(framing.encode(msg, rblob))

        def ok(value):
            call.pending = None
            if op == "http":
                meta, body = value
                reply({"t": "reply", "e": None, "v": meta, "blob": True}, body)
            elif isinstance(value, (bytes, bytearray)):
                reply({"t": "reply", "e": None, "v": None, "blob": True}, bytes(value))
            else:
                try:
                    reply({"t": "reply", "e": None, "v": value})
                except (TypeError, ValueError):
                    log.error("_p {op}: the host answered a value JSON cannot carry", op=op)
                    reply({"t": "reply", "e": {"kind": "p", "code": 500, "message": "Server Error"}})

        def failed(f):
            call.pending = None
            if f.check(defer.CancelledError) and call.done:
                if call.abandoned and w.call is call and not w.dying:
                    # the script may end on its own within its grace
                    w.framer.sendString(framing.encode({"t": "reply", "e": {
                        "kind": "p", "code": 503, "message": "The call was abandoned."}}))
                return None
            if f.check(HostError):
                e = f.value
                if op == "require":
                    e = {"kind": "require", "code": e.code,
                         "message": "404 Not Found" if e.code == 404 else e.message}
                else:
                    e = {"kind": "p", "code": e.code, "message": e.message}
            else:
                log.failure("_p {op} failed", f, op=op)
                e = {"kind": "p", "code": 500, "message": "Server Error"}
            reply({"t": "reply", "e": e})
            return None

        d.addCallbacks(ok, failed)
        d.addErrback(lambda f: log.failure("answering _p {op}", f, op=op))
