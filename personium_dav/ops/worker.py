"""A worker process of ``--workers``: ``python -m personium_dav.ops.worker
<the plugin options>``, serving the listening sockets it inherited
(ops/workers.py)."""
import os
import sys


def main(argv=None):
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from personium_dav.ops import tap, workers

    workers.die_with_parent()
    parent = os.getppid()
    options = tap.Options()
    options.parseOptions(sys.argv[1:] if argv is None else argv)
    top = tap.makeService(options)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    if os.getppid() != parent:  # the first worker is gone already
        return 1
    top.privilegedStartService()
    top.startService()
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
