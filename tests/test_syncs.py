"""Shared directory fsyncs (store/syncs.py): every caller returns only after
an fsync that started after it registered; concurrent callers share them."""
import os
import threading
import time

from twisted.trial.unittest import SynchronousTestCase

from personium_dav.store import syncs


class SharedSyncs(SynchronousTestCase):
    def test_concurrent_callers_share_and_none_returns_early(self):
        directory = self.mktemp()
        os.mkdir(directory)
        log = []  # ("start"|"end", time) of every real fsync
        real = os.fsync

        def slow_fsync(fd):
            log.append(("start", time.monotonic()))
            time.sleep(0.05)
            real(fd)
            log.append(("end", time.monotonic()))

        self.patch(syncs.os, "fsync", slow_fsync)
        shared = syncs.DirectorySyncs()
        returned = {}

        def writer(i):
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                registered = time.monotonic()
                shared.sync(fd)
                returned[i] = (registered, time.monotonic())
            finally:
                os.close(fd)

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        starts = [t for kind, t in log if kind == "start"]
        ends = [t for kind, t in log if kind == "end"]
        self.assertEqual(len(returned), 8)
        self.assertLess(len(starts), 8)  # shared
        for registered, back in returned.values():
            # an fsync that started after it registered ended before it returned
            self.assertTrue(any(s >= registered and e <= back for s, e in zip(starts, ends)))
        self.assertEqual(shared._dirs, {})  # nothing kept once nobody waits
