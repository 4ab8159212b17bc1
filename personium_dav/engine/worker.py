"""A script worker process: runs one service script at a time, no reactor.

Started by ``pool.ScriptPool`` as ``python -I -c ... --in FD --out FD ...``
with the environment cleared, ``/`` as its cwd, no stdin, stdout folded into
stderr (which goes to the server log), and its address space capped. It reads
``job`` frames on one pipe and writes ``result`` frames on another
(``framing``); while a script runs, each ``_p`` call is a ``call`` frame
written to the parent and the worker blocks on the ``reply``: a script is
synchronous, and a blocking loop with no reactor is what lets the callback
wait for the parent without deadlocking.

Every job gets a fresh ``quickjs.Context`` (memory and stack limits set)
in which ``prelude.js`` has been evaluated, then evaluates the source as
``fn_jsgi = <source>`` in sloppy mode, calls it with the JSGI request and
checks the answer in the order the contract gives. Nothing survives between
jobs but the worker itself: a context serves one job and is dropped. The
next job's context is made (and its prelude compiled, most of a small
call's cost) while the worker waits, after it has answered. The parent owns
the wall-clock limit: it kills this process when a call runs out of time
(the binding refuses Python callbacks under its own CPU time limit).
"""
import argparse
import codecs
import json
import os
import re
import resource
import sys
import tempfile
import traceback

from . import framing

MAX_RESPONSE = 1024 ** 3  # bytes of one response body
STACK = 1024 * 1024  # bytes of JS stack (QuickJS's own guard, under the 8 MiB C stack)
PRELUDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prelude.js")
PRELUDE_P = os.path.join(os.path.dirname(os.path.abspath(__file__)), "prelude_p.js")
# Java charset names that Python does not know by that name
CHARSET_ALIASES = {"windows-31j": "cp932", "ms932": "cp932", "x-sjis": "shift_jis",
                   "x-euc-jp": "euc_jp", "utf8": "utf-8"}
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
MEDIA_TYPE = re.compile(
    r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+"
    r"(?P<params>(?:[ \t]*;[ \t]*(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+="
    r"(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+|\"(?:[^\"\\\r\n]|\\.)*\"))?)*)[ \t]*\Z")
PARAM = re.compile(r";[ \t]*([!#$%&'*+.^_`|~0-9A-Za-z-]+)=([!#$%&'*+.^_`|~0-9A-Za-z-]+|\"(?:[^\"\\\r\n]|\\.)*\")")
MODULE_NAME = re.compile(r"[A-Za-z0-9_$][A-Za-z0-9_$.-]*\Z")  # as prelude.js checks
BAD_VALUE = re.compile(r"[\r\n\x00]")
SEGMENT_BAD = {"", ".", ".."}
ACCESSORS = {"client", "serviceSubject", "password"}
REMOTE = {"require", "cell", "cell.getToken", "box", "dav.getString", "dav.put", "dav.del",
          "dav.mkCol", "dav.getFileList", "dav.getColList", "dav.setProp", "dav.getProp", "http"}
HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def log(text):
    try:
        sys.stderr.write("script worker %d: %s\n" % (os.getpid(), text))
        sys.stderr.flush()
    except Exception:
        pass


def codec(name):
    """The Python codec for a charset name, or None when unknown."""
    if not isinstance(name, str) or not name:
        return None
    name = CHARSET_ALIASES.get(name.lower(), name)
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):
        return None


class Failure(Exception):
    """A ``_p`` call that fails: the script gets an exception of ``kind``."""

    def __init__(self, kind, code, message):
        super().__init__(message)
        self.reply = {"kind": kind, "code": code, "message": message}


def invalid():
    return Failure("p", 400, "Parameter Invalid")


class Job:
    """One script run: its request body, its streams, its ``_p`` calls."""

    def __init__(self, conn, msg, blob):
        self.conn = conn
        self.source = msg["source"]
        self.request = msg["request"]
        self.body = blob if not msg.get("body_path") else None
        self.body_path = msg.get("body_path")
        self.pos = 0
        self.streams = {}  # id -> bytes, or a path for the request body file

    # -- the request body ------------------------------------------------------
    def _size(self):
        if self.body is not None:
            return len(self.body)
        try:
            return os.path.getsize(self.body_path)
        except OSError:
            return 0

    def _read(self, start, n):
        if self.body is not None:
            return self.body[start:start + n]
        with open(self.body_path, "rb") as f:
            f.seek(start)
            return f.read(n)

    def _text(self, data, charset):
        name = codec(charset)
        if name is None:
            raise Failure("error", 400, "Unsupported charset [%s]" % charset)
        return data.decode(name, "replace")

    def read_all(self, charset):
        left = self._size() - self.pos
        if left > self.conn.memory:
            raise Failure("error", 413, "Request body is too large for the script's memory.")
        data = self._read(self.pos, max(left, 0))
        self.pos += len(data)
        return self._text(data, charset)

    def read_line(self, charset):
        size = self._size()
        if self.pos >= size:
            return None
        chunks, start = [], self.pos
        while start < size:
            chunk = self._read(start, 65536)
            cut = chunk.find(b"\n")
            if cut >= 0:
                chunks.append(chunk[:cut + 1])
                break
            chunks.append(chunk)
            start += len(chunk)
            if start - self.pos > self.conn.memory:
                raise Failure("error", 413, "Request body line is too long for the script's memory.")
        line = b"".join(chunks)
        self.pos += len(line)
        if line.endswith(b"\n"):
            line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        return self._text(line, charset)

    def new_stream(self, data):
        sid = len(self.streams) + 1
        self.streams[sid] = data
        return sid

    def stream_bytes(self, sid):
        data = self.streams.get(sid) if isinstance(sid, int) else None
        if data is None:
            raise invalid()
        if isinstance(data, str):  # the request body file
            if os.path.getsize(data) > self.conn.memory:
                raise Failure("p", 413, "Request body is too large.")
            with open(data, "rb") as f:
                return f.read()
        return data

    # -- the callback ----------------------------------------------------------
    def host(self, op, args_json):
        """``__host(op, argsJSON)``: never raises (a raise would escape the
        script as an uncatchable SystemError); failures are JSON replies."""
        try:
            value = self._dispatch(op, json.loads(args_json))
            reply = {"e": None, "v": value}
        except Failure as f:
            reply = {"e": f.reply, "v": None}
        except MemoryError:
            reply = {"e": {"kind": "error", "code": 503, "message": "out of memory"}, "v": None}
        except Exception:
            log("_p call %r failed:\n%s" % (op, traceback.format_exc()))
            reply = {"e": {"kind": "p", "code": 500, "message": "Server Error"}, "v": None}
        text = json.dumps(reply, ensure_ascii=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: let JSON escape them
            text = json.dumps(reply)
        return text

    def _dispatch(self, op, args):
        if not isinstance(op, str) or not isinstance(args, dict):
            raise invalid()
        if op == "input.readAll":
            return self.read_all(args.get("charset"))
        if op == "input.readLine":
            return self.read_line(args.get("charset"))
        if op == "input.stream":
            return self.new_stream(self.body if self.body is not None else self.body_path)
        if op == "util.decodeQuery":
            return self._decode_query(args)
        if op not in REMOTE:
            raise invalid()
        return self._remote(op, args)

    def _decode_query(self, args):
        from urllib.parse import unquote_plus

        name = codec(args.get("charset"))
        if name is None:
            raise Failure("p", 400, "Unsupported charset [%s]" % args.get("charset"))
        key, value = args.get("key"), args.get("value")
        if not isinstance(key, str) or not isinstance(value, str):
            raise invalid()
        return [unquote_plus(key, encoding=name, errors="replace"),
                unquote_plus(value, encoding=name, errors="replace")]

    def _remote(self, op, args):
        blob = b""
        if op == "require":
            name = args.get("name")
            if not isinstance(name, str) or not MODULE_NAME.match(name) or ".." in name:
                raise Failure("require", 404, "404 Not Found")
            args = {"name": args["name"]}
        elif op == "http":
            args, blob = self._http_args(args)
        else:
            args, blob = self._box_args(op, args)
        reply, rblob = self.conn.call(op, args, blob)
        if reply.get("e") is not None:
            e = reply["e"]
            raise Failure(e.get("kind", "p"), e.get("code", 500), str(e.get("message", "")))
        value = reply.get("v")
        if op == "dav.getString":
            return self._text(rblob, args["charset"]) if reply.get("blob") else value
        if op == "http":
            if not isinstance(value, dict):
                raise Failure("p", 500, "Server Error")
            if args["asStream"]:
                return {"status": value.get("status"), "headers": value.get("headers"),
                        "stream": self.new_stream(rblob)}
            charset = codec(value.get("charset")) or "utf-8"
            return {"status": value.get("status"), "headers": value.get("headers"),
                    "body": rblob.decode(charset, "replace")}
        if reply.get("blob"):  # bytes from the host (a source file read as bytes)
            return rblob.decode("utf-8", "replace")
        return value

    def _accessor(self, acc):
        if not isinstance(acc, dict) or acc.get("as") not in ACCESSORS:
            raise invalid()
        if acc["as"] != "password":
            return {"as": acc["as"]}
        out = {"as": "password"}
        for k in ("cellUrl", "userId", "password"):
            if not isinstance(acc.get(k), str):
                raise invalid()
            out[k] = acc[k]
        return out

    def _box_args(self, op, args):
        out = {"as": self._accessor(args.get("as"))}
        cell = args.get("cell")
        if cell is not None and not isinstance(cell, str):
            raise invalid()
        out["cell"] = cell
        if op in ("cell", "cell.getToken"):
            return out, b""
        box = args.get("box")
        if box is not None and not isinstance(box, str):
            raise invalid()
        out["box"] = box
        if op == "box":
            return out, b""
        path = args.get("path")
        if not isinstance(path, str) or (path and any(s in SEGMENT_BAD for s in path.split("/"))):
            raise invalid()
        if not path and op not in ("dav.getFileList", "dav.getColList", "dav.setProp", "dav.getProp"):
            raise invalid()
        out["path"] = path
        blob = b""
        if op == "dav.getString":
            if codec(args.get("charset")) is None:
                raise Failure("p", 400, "Unsupported charset [%s]" % args.get("charset"))
            out["charset"] = args["charset"]
        elif op == "dav.put":
            for k in ("contentType", "charset", "etag"):
                if not isinstance(args.get(k), str):
                    raise invalid()
                out[k] = args[k]
            if "dataStream" in args:
                blob = self.stream_bytes(args["dataStream"])
            elif isinstance(args.get("data"), str):
                name = codec(args["charset"])
                if name is None:
                    raise Failure("p", 400, "Unsupported charset [%s]" % args["charset"])
                blob = args["data"].encode(name, "replace")
            else:
                raise invalid()
        elif op == "dav.del":
            if not isinstance(args.get("etag"), str):
                raise invalid()
            out["etag"] = args["etag"]
        elif op in ("dav.setProp", "dav.getProp"):
            for k in ("key", "value") if op == "dav.setProp" else ("key",):
                if not isinstance(args.get(k), str):
                    raise invalid()
                out[k] = args[k]
        return out, blob

    def _http_args(self, args):
        method, url, headers = args.get("method"), args.get("url"), args.get("headers")
        if method not in HTTP_METHODS or not isinstance(url, str) or not isinstance(headers, dict):
            raise invalid()
        if not url:
            raise Failure("p", 400, "URL parameter is not set.")
        for k, v in headers.items():
            if not TOKEN.match(k) or not isinstance(v, str) or BAD_VALUE.search(v):
                raise invalid()
        out = {"method": method, "url": url, "headers": headers, "asStream": args.get("asStream") is True}
        blob = b""
        if "contentType" in args:
            ctype = args.get("contentType")
            if not isinstance(ctype, str) or not ctype or BAD_VALUE.search(ctype):
                raise Failure("p", 400, "contentType parameter is not set.")
            out["contentType"] = ctype
            if "bodyStream" in args:
                blob = self.stream_bytes(args["bodyStream"])
            elif isinstance(args.get("body"), str):
                blob = args["body"].encode("utf-8", "replace")
            else:
                raise invalid()
        return out, blob

    # -- the run ---------------------------------------------------------------
    def run(self, quickjs, prepared=None):
        """-> (result message, body blob). ``prepared``: a fresh ``Prepared``
        (made now when None)."""
        try:
            if prepared is None:
                prepared = Prepared(quickjs, self.conn)
            prepared.job = self
            runner = prepared.runner
            out = self._step(runner, "run", json.dumps({"source": self.source, "request": self.request}))
            if out.get("k") != "head":
                return self._failed(out)
            status, headers = out.get("status"), out.get("headers")
            error = check_head(status, headers)
            if error:
                return answer(500, "Server Error : " + error)
            charset, error = response_charset(headers)
            if error:
                return answer(500, "Server Error : " + error)
            out = self._step(runner, "body", "")
            if out.get("k") != "body":
                return self._failed(out)
            parts = out.get("parts")
            if not isinstance(parts, list):
                return answer(500, "Server Error")
            return self._result(int(status), headers, charset, parts)
        except quickjs.StackOverflow:
            return answer(503, "Script TimeOut")
        except quickjs.JSException as e:
            if "out of memory" in str(e):
                return answer(503, "Script TimeOut")
            log("script engine failure: %s" % str(e).split("\n", 1)[0])
            return answer(500, "Server Error")

    @staticmethod
    def _step(runner, action, arg):
        text = runner(action, arg)
        out = json.loads(text) if isinstance(text, str) else None
        if not isinstance(out, dict):
            return {"k": "nomsg"}
        return out

    @staticmethod
    def _failed(out):
        kind = out.get("k")
        if kind == "fatal":
            return answer(503, "Script TimeOut")
        if kind == "error" and isinstance(out.get("m"), str):
            return answer(500, "Server Error : " + out["m"])
        return answer(500, "Server Error")

    def _result(self, status, headers, charset, parts):
        chunks = []
        for part in parts:
            if isinstance(part, str):
                chunks.append(part.encode(charset, "replace"))
            elif isinstance(part, int) and not isinstance(part, bool) and part in self.streams:
                data = self.streams[part]
                chunks.append(("file", data) if isinstance(data, str) else data)
            else:
                return answer(500, "Server Error : response body illegal type.")
        kept = [[k, v] for k, v in headers if k.lower() != "transfer-encoding"]
        msg = {"t": "result", "status": status, "headers": kept}
        size = sum(os.path.getsize(c[1]) if isinstance(c, tuple) else len(c) for c in chunks)
        if size > MAX_RESPONSE:  # [stream] * 10000 would fill the disk
            return answer(500, "Server Error : response body too large.")
        if size <= framing.INLINE_BODY:
            return msg, b"".join(self._chunk_bytes(c) for c in chunks)
        fd, path = tempfile.mkstemp(prefix="script-", suffix=".body", dir=self.conn.tmp)
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                if isinstance(c, tuple):
                    with open(c[1], "rb") as src:
                        while True:
                            block = src.read(1 << 20)
                            if not block:
                                break
                            f.write(block)
                else:
                    f.write(c)
        msg["body_file"] = os.path.basename(path)
        return msg, b""

    @staticmethod
    def _chunk_bytes(c):
        if isinstance(c, tuple):
            with open(c[1], "rb") as f:
                return f.read()
        return c


class Prepared:
    """A fresh context with its limits and the prelude, for ONE job: made
    while the worker waits for that job, dropped after it is answered."""

    def __init__(self, quickjs, conn):
        self.slot = _Slot()  # the callback's way to the job (no cycle back to the context)
        ctx = quickjs.Context()
        ctx.set_memory_limit(conn.memory)
        ctx.set_max_stack_size(STACK)
        ctx.add_callable("__host", self.slot.host)
        ctx.set("__p_source", conn.prelude_p)
        self.runner = ctx.eval(conn.prelude)
        self.ctx = ctx

    @property
    def job(self):
        return self.slot.job

    @job.setter
    def job(self, job):
        self.slot.job = job


class _Slot:
    __slots__ = ("job",)

    def __init__(self):
        self.job = None

    def host(self, op, args_json):
        if self.job is None:  # (the prelude calls nothing while it is evaluated)
            return '{"e": {"kind": "p", "code": 500, "message": "Server Error"}, "v": null}'
        return self.job.host(op, args_json)


def prepare(quickjs, conn):
    """The next job's ``Prepared``, or None when it cannot be made now (the
    job then makes its own, and answers what that fails with)."""
    try:
        return Prepared(quickjs, conn)
    except Exception as e:
        log("cannot prepare a context: %s" % str(e).split("\n", 1)[0])
        return None


def answer(status, text):
    """An error answer as a result message (text/html, the contract's texts)."""
    return ({"t": "result", "status": status, "headers": [["Content-Type", "text/html"]]},
            text.encode("utf-8"))


def check_head(status, headers):
    """The checks of what the script returned that Python repeats (the JS
    side ran them with captured intrinsics; this side trusts nothing) and the
    ones only it makes: header names must be HTTP tokens, values free of CR,
    LF and NUL. -> the error message, or None."""
    if isinstance(status, bool) or not isinstance(status, (int, float)):
        return "response status illegal type."
    if not (isinstance(status, int) and 200 <= status <= 999):
        return "response status illegal type. status: %s" % status
    if not isinstance(headers, list):
        return "not headers"
    for pair in headers:
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)) \
                or pair[0].isdigit() or not TOKEN.match(pair[0]):
            return "header key format error"
        if not isinstance(pair[1], str) or BAD_VALUE.search(pair[1]):
            return "header value format error"
    return None


def response_charset(headers):
    """Check 7: the Content-Type's media type and charset -> (codec, error)."""
    ctype = None
    for name, value in headers:
        if name.lower() == "content-type":
            ctype = value
    if ctype is None:
        return "utf-8", None
    m = MEDIA_TYPE.match(ctype.strip())
    if m is None:
        return None, "Response header parsing media type."
    charset = "utf-8"
    for pname, pvalue in PARAM.findall(m.group("params")):
        if pname.lower() == "charset":
            charset = pvalue[1:-1] if pvalue.startswith('"') else pvalue
    name = codec(charset)
    if name is None:
        return None, "response charset illegal type."
    return name, None


class Connection:
    """The worker's side of the pipes, and its limits."""

    def __init__(self, fd_in, fd_out, memory, tmp, prelude, prelude_p=""):
        self.fd_in, self.fd_out = fd_in, fd_out
        self.memory, self.tmp, self.prelude, self.prelude_p = memory, tmp, prelude, prelude_p

    def send(self, msg, blob=b""):
        framing.write_frame(self.fd_out, framing.encode(msg, blob))

    def call(self, op, args, blob):
        """A ``_p`` call: ask the parent, block for its reply."""
        payload = framing.encode({"t": "call", "op": op, "args": args}, blob)
        if len(payload) > framing.MAX_FRAME:
            raise Failure("p", 413, "Request body is too large.")
        try:
            framing.write_frame(self.fd_out, payload)
            msg, rblob = framing.read_frame(self.fd_in)
        except (EOFError, OSError, framing.FrameError) as e:
            lost(e)
        if msg.get("t") != "reply":
            lost(msg.get("t"))
        return msg, rblob


def lost(why):
    """The parent is gone or broke the protocol: nothing to answer to. Exit
    at once (from inside a script's callback no exception could unwind)."""
    log("lost the parent: %s" % (why,))
    os._exit(3)


def setup(as_limit):
    """Cap the address space, put /dev/null on stdin and stderr on stdout."""
    if as_limit:
        resource.setrlimit(resource.RLIMIT_AS, (as_limit, as_limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    null = os.open(os.devnull, os.O_RDONLY)
    if null != 0:
        os.dup2(null, 0)
        os.close(null)
    os.dup2(2, 1)


def main(argv=None):
    p = argparse.ArgumentParser(prog="personium_dav.engine.worker")
    p.add_argument("--in", dest="fd_in", type=int, required=True)
    p.add_argument("--out", dest="fd_out", type=int, required=True)
    p.add_argument("--memory", type=int, required=True, help="bytes of JS heap")
    p.add_argument("--as-limit", type=int, default=0, help="RLIMIT_AS in bytes (0: none)")
    p.add_argument("--tmp", required=True)
    a = p.parse_args(argv)
    setup(a.as_limit)
    import quickjs

    with open(PRELUDE, encoding="utf-8") as f:
        prelude = f.read()
    with open(PRELUDE_P, encoding="utf-8") as f:
        prelude_p = f.read()
    conn = Connection(a.fd_in, a.fd_out, a.memory, a.tmp, prelude, prelude_p)
    prepared = prepare(quickjs, conn)
    conn.send({"t": "ready"})
    while True:
        try:
            msg, blob = framing.read_frame(conn.fd_in)
        except EOFError:
            return 0
        if msg.get("t") != "job":
            log("unexpected message %r" % msg.get("t"))
            return 2
        try:
            result, body = Job(conn, msg, blob).run(quickjs, prepared)
        except (SystemExit, EOFError, framing.FrameError, OSError) as e:
            log("lost the parent during a job: %s" % type(e).__name__)
            return 3
        except MemoryError:
            result, body = answer(503, "Script TimeOut")
        except Exception:
            log("job failed:\n%s" % traceback.format_exc())
            result, body = answer(500, "Server Error")
        conn.send(result, body)
        # the call's context goes only now, after its answer; then the next one
        prepared = None
        prepared = prepare(quickjs, conn)


if __name__ == "__main__":
    sys.exit(main())
