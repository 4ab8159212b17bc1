"""Service-script execution: routes, a pool of QuickJS worker processes, and
the answers a call can give. The HTTP resource that uses it lives elsewhere.

The names below are imported when first used: a worker process imports
``personium_dav.engine.worker`` alone, and must not pay for Twisted (the
pool's) at every cold start.
"""
import importlib

_WHERE = {"HostError": ".host", "Job": ".pool", "ScriptPool": ".pool", "SPARE": ".pool",
          "Result": ".result"}

__all__ = ["HostError", "Job", "Result", "SPARE", "ScriptPool"]


def __getattr__(name):
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(where, __name__), name)
