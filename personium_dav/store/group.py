"""Group commit: concurrent changes to one collection's sidecar share one
write and one pair of fsyncs.

Each change is a function ``change(txn)`` run on a worker thread. Changes to
the same directory queue up; one thread (the leader) takes the directory's
lock, opens one transaction, applies every queued change in arrival order,
commits once (write, fsync, rename, fsync of the directory, as a single
change would), releases the lock and only then lets each caller return. No
change is acknowledged before the commit that holds it is on disk, and a
change that raises (a 404 found under the lock, say) is undone from the
transaction without touching the others. While a leader commits, new
arrivals queue for the next batch; the leader hands that batch to one of
them, so no caller waits for more than the batch after its own.
"""
import threading


class _Job:
    __slots__ = ("change", "member", "done", "lead", "result", "error")

    def __init__(self, change, member):
        self.change, self.member = change, member
        self.done = threading.Event()
        self.lead = False
        self.result = self.error = None


class GroupCommit:
    """The batches of one tree's sidecars."""

    def __init__(self, tree):
        self.tree = tree
        self._lock = threading.Lock()
        self._queues = {}  # directory -> [_Job] waiting for the next batch
        self._busy = set()  # directories with a batch being committed

    def commit(self, directory, member, change):
        """Apply ``change(txn)`` (it touches only ``member``'s entries) to the
        sidecar of ``directory`` in a shared commit; its return value (called,
        still under the lock, when it is a function), or its exception, once
        the commit holding it is durable."""
        job = _Job(change, member)
        with self._lock:
            self._queues.setdefault(directory, []).append(job)
            job.lead = directory not in self._busy
            if job.lead:
                self._busy.add(directory)
        if not job.lead:
            job.done.wait()
        if job.lead:  # set on arrival, or handed over by the previous leader
            self._run_batch(directory)
        if job.error is not None:
            raise job.error
        return job.result

    def _run_batch(self, directory):
        with self._lock:
            batch = self._queues.pop(directory, [])
        try:
            with self.tree.locked(directory):
                txn = self.tree.sidecars.begin(directory)
                applied = []
                for job in batch:
                    saved = txn.state.get(job.member)
                    try:
                        job.result = job.change(txn)
                        applied.append(job)
                    except BaseException as e:  # undo this one change only
                        if saved is None:
                            txn.state.pop(job.member, None)
                        else:
                            txn.state[job.member] = saved
                        job.error = e
                if applied:
                    try:
                        txn.commit()
                        for job in applied:  # read under the lock what the commit made
                            if callable(job.result):
                                job.result = job.result()
                    except BaseException as e:
                        for job in applied:
                            job.error, job.result = e, None
        except BaseException as e:  # the lock or the read failed: all of them fail
            for job in batch:
                if job.error is None:
                    job.error, job.result = e, None
        finally:
            with self._lock:
                waiting = self._queues.get(directory)
                if waiting:
                    waiting[0].lead = True  # the next batch is theirs to commit
                    waiting[0].done.set()
                else:
                    self._busy.discard(directory)
            for job in batch:
                job.done.set()
