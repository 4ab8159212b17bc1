"""The server's settings, shared by the plugin, the embedding API and the store."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    """What an operator can tune; the defaults are SPEC's."""

    max_xml_body: int = 1024 * 1024  # bytes of a PROPPATCH/PROPFIND/MKCOL body
    max_file_size: int = 16 * 1024 ** 3  # bytes of one PUT body
    max_members: int = 100_000  # members of one collection
    max_depth: int = 50  # collection depth below a box
    max_props_per_request: int = 1000  # dead properties set/removed by one request
    max_prop_value: int = 256 * 1024  # bytes of one stored property value
    collection_semantics: str = "personium"  # or "rfc4918"
    durable: bool = True  # fsync before acknowledging a write
    lockout_attempts: int = 5  # wrong passwords in a row that lock an account
    lockout_seconds: float = 300.0  # how long a locked account stays locked
    token_ttl: int = 3600  # seconds an access token (and the p_cookie) lives
    refresh_ttl: int = 86400  # seconds a refresh token lives
    event_log_size: int = 10 * 1024 * 1024  # bytes of an event log before rotation
    event_log_files: int = 10  # rotated event logs kept per cell
    max_lock_timeout: int = 86400  # seconds a LOCK is granted at most (and without Timeout)
    login_rate: int = 30  # failed logins a minute per client address
    trusted_proxies: tuple = ()  # proxies whose X-Forwarded-For names the client
    hash_threads: int = 2  # threads checking passwords (argon2 holds 64 MiB each)

    @property
    def rfc4918(self):
        return self.collection_semantics == "rfc4918"
