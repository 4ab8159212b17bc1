"""The server's settings, declared once: each field of ``Config`` carries its
default, its help text and how its command-line option is read, and the
twistd options (ops/tap.py), the embedding API (``makeResource(...,
config=Config(...))``) and every part of the server take them from here.
docs/options.md lists them.
"""
import os
from dataclasses import dataclass, field, fields


def positive_int(value):
    """A limit of 0 or less would refuse everything: reject it at start."""
    number = int(value)
    if number < 1:
        raise ValueError(f"{value!r} is not a positive integer")
    return number


positive_int.coerceDoc = "Must be a positive integer."


def whole(value):
    number = int(value)
    if number < 0:
        raise ValueError(f"{value!r} is negative")
    return number


whole.coerceDoc = "Must be 0 or more."


def positive_float(value):
    number = float(value)
    if not number > 0:
        raise ValueError(f"{value!r} is not a positive number")
    return number


positive_float.coerceDoc = "Must be a positive number of seconds."


def comma_list(value):
    """``A,B,...`` as a tuple of the non-empty items."""
    if isinstance(value, tuple):
        return value
    return tuple(v.strip() for v in value.split(",") if v.strip())


def one_of(*choices):
    def coerce(value):
        if value not in choices:
            raise ValueError(f"{value!r} is none of {', '.join(choices)}")
        return value

    coerce.coerceDoc = "One of: " + ", ".join(choices) + "."
    return coerce


def setting(default, help, coerce=None, flag=None, option=None):
    """A field with its option: ``--the-field-name`` (or ``option``), read
    with ``coerce``; a boolean is the flag ``flag`` (which sets it to the
    opposite of its default)."""
    return field(default=default, metadata={"help": help, "coerce": coerce, "flag": flag,
                                            "option": option})


@dataclass(frozen=True)
class Config:
    """What an operator can tune."""

    max_xml_body: int = setting(1024 * 1024, "Largest XML request body in bytes.", positive_int)
    max_file_size: int = setting(16 * 1024 ** 3, "Largest PUT body in bytes.", positive_int)
    max_members: int = setting(100_000, "Most members of one collection.", positive_int)
    max_depth: int = setting(50, "Deepest collection nesting below a box.", positive_int)
    max_props_per_request: int = setting(
        1000, "Most dead properties one PROPPATCH or MKCOL sets or removes.", positive_int)
    max_prop_value: int = setting(256 * 1024, "Largest value of one dead property in bytes.",
                                  positive_int)
    max_propfind_names: int = setting(
        1000, "Most property names one PROPFIND may ask for.", positive_int)
    collection_semantics: str = setting(
        "personium", "DELETE/MOVE/COPY of collections: 'personium' or 'rfc4918'.",
        one_of("personium", "rfc4918"))
    durable: bool = setting(
        True, "Do not fsync before acknowledging a write (faster, not crash-safe).",
        flag="relaxed")
    lockout_attempts: int = setting(5, "Wrong passwords in a row that lock an account.",
                                    positive_int)
    lockout_seconds: float = setting(300.0, "Seconds a locked account stays locked.",
                                     positive_float)
    token_ttl: int = setting(3600, "Seconds an access token (and the p_cookie) lives.",
                             positive_int)
    refresh_ttl: int = setting(86400, "Seconds a refresh token lives.", positive_int)
    event_log_size: int = setting(10 * 1024 * 1024,
                                  "Bytes of a cell's event log before it is rotated.",
                                  positive_int)
    event_log_files: int = setting(10, "Rotated event logs kept per cell.", positive_int)
    max_lock_timeout: int = setting(
        86400, "Most seconds a WebDAV lock is granted for (also when no Timeout is asked).",
        positive_int)
    login_rate: int = setting(30, "Failed logins a minute allowed per client address.",
                              positive_int)
    trusted_proxies: tuple = setting(
        (), "Comma-separated addresses (or networks) of proxies whose X-Forwarded-For "
        "names the client (default: none).", comma_list, option="trusted-proxy")
    hash_threads: int = setting(2, "Threads checking passwords (argon2 holds 64 MiB each).",
                                positive_int)
    idle_timeout: float = setting(60.0, "Seconds before an idle connection is closed.",
                                  positive_float)
    header_timeout: float = setting(
        20.0, "Seconds from the first byte of a request to the end of its header block.",
        positive_float)
    min_body_rate: int = setting(
        1024, "Bytes a second a request body must keep coming at (after a grace of "
        "--header-timeout).", positive_int)
    max_connections_per_address: int = setting(
        64, "Open connections one client address may hold (a trusted proxy has no cap).",
        positive_int)
    public_url: str = setting(
        "", "The server's public URL (scheme://host[:port]) when a proxy in front of it "
        "does not pass the client's Host: COPY and MOVE Destinations may name it.")

    shared_mount_consistent: bool = setting(
        False, "State that the data root's shared mount shows every host's changes at once "
        "(no cache of names or attributes), where the server cannot check it itself.",
        flag="shared-mount-consistent")
    node_name: str = setting(
        "", "This server's host among those sharing the data root (default: the host "
        "name); on a shared mount it names the host's own log files.", str)
    store_timeout: float = setting(
        30.0, "Seconds a store operation may take before its request answers 503 "
        "(a file system that does not answer).", positive_float)
    script_workers: int = setting(
        os.cpu_count() or 1, "Worker processes running service scripts (default: the number "
        "of cores); 0 turns service execution off.", whole)
    script_timeout: float = setting(50.0, "Seconds one service script call may run.",
                                    positive_float)
    script_memory: int = setting(64, "MiB of JavaScript heap of one service script call.",
                                 positive_int)
    script_http_allow: tuple = setting(
        (), "Comma-separated HOST[:PORT] that service scripts' HttpClient may reach "
        "(default: none).", comma_list)

    @property
    def rfc4918(self):
        return self.collection_semantics == "rfc4918"


def option_name(f):
    return f.metadata["flag"] or f.metadata["option"] or f.name.replace("_", "-")


def options():
    """The fields of ``Config`` that have a command-line option."""
    return [f for f in fields(Config) if "help" in f.metadata]


def node_of(config):
    """The name of this host among those sharing a data root, safe in a file name."""
    import re
    import socket

    name = config.node_name or socket.gethostname() or "node"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64]
