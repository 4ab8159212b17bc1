"""Service-script execution: routes, a pool of QuickJS worker processes, and
the answers a call can give. The HTTP resource that uses it lives elsewhere."""
from .host import HostError
from .pool import Job, ScriptPool
from .result import Result

__all__ = ["HostError", "Job", "Result", "ScriptPool"]
