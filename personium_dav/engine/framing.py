"""The messages between the server and a script worker, and their framing.

A frame is a 4-byte big-endian length then that many bytes, the format of
``twisted.protocols.basic.Int32StringReceiver`` (the parent reads it with a
linear-time variant, ``pool._Framer``; the worker, which has no reactor, does
blocking reads and writes of it here). A frame holds one message: a 4-byte length
of a UTF-8 JSON object, the object, then an optional binary ``blob`` (a body,
a file's bytes) that JSON could not carry without inflating it.

Messages (``t`` is the type):

* worker -> parent: ``ready``; ``call`` {op, args} (a ``_p`` call waiting for
  its ``reply``); ``result`` {status, headers, body_file?} + body blob.
* parent -> worker: ``job`` {source, name, request, body_path?} + body blob;
  ``reply`` {v} or {e: {kind, code, message}} (+ blob for a binary value).
"""
import json
import os
import struct

LENGTH = struct.Struct("!I")  # Int32StringReceiver's prefix
# The largest frame either side accepts. Bodies larger than INLINE_BODY travel
# as files under the tmp folder instead, so only a _p call's own data (a file
# read with getString, a put's data) comes near this.
MAX_FRAME = 256 * 1024 * 1024
INLINE_BODY = 1024 * 1024


class FrameError(Exception):
    """A frame that is not a valid message (the peer is broken or hostile)."""


def encode(msg, blob=b""):
    """One message as a frame payload (without the outer length prefix)."""
    head = json.dumps(msg, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8", "surrogatepass")
    return LENGTH.pack(len(head)) + head + blob


def decode(payload):
    """A frame payload -> (message dict, blob bytes)."""
    if len(payload) < LENGTH.size:
        raise FrameError("short frame")
    (n,) = LENGTH.unpack_from(payload)
    if LENGTH.size + n > len(payload):
        raise FrameError("bad message length")
    try:
        msg = json.loads(payload[LENGTH.size:LENGTH.size + n].decode("utf-8", "surrogatepass"))
    except ValueError:
        raise FrameError("message is not JSON")
    if not isinstance(msg, dict) or not isinstance(msg.get("t"), str):
        raise FrameError("message without a type")
    return msg, bytes(payload[LENGTH.size + n:])


# --- the worker's blocking side -------------------------------------------

def _read_exact(fd, n):
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(fd):
    """Block until one whole frame arrives on ``fd``; EOFError when closed."""
    (n,) = LENGTH.unpack(_read_exact(fd, LENGTH.size))
    if n > MAX_FRAME:
        raise FrameError("frame too large")
    return decode(_read_exact(fd, n))


def write_frame(fd, payload):
    """Write one frame to ``fd`` whole (blocking)."""
    if len(payload) > MAX_FRAME:
        raise FrameError("frame too large")
    data = memoryview(LENGTH.pack(len(payload)) + payload)
    while data:
        written = os.write(fd, data)
        data = data[written:]
