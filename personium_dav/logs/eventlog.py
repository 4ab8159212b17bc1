"""The per-cell event log, in the Personium event-log CSV shape.

One line per request, in ``DATA/{cell}/:log/events.log`` (on a shared mount
``events-{node}.log``, one per host: docs/scale-out.md):

    2024-05-01T12:00:00.123Z,[INFO ],"REQUESTKEY","false","","http://h/cell1/#me","davfile.create","personium-localcell:/box1/col/a.txt","201"

that is ``time, level, "requestKey", "external", "schema", "subject",
"type", "object", "info"``; ``info`` is the response status. Files are
rotated by size (``events.log.1``, ``.2``, ...; ``logfiles.AppendLog``). A
line never holds a credential: the subject is an account URL, the object a
resource path, and every field is quoted with CR, LF and other control
characters replaced.
"""
import datetime
import functools
import os
import re

from .logfiles import AppendLog, Background

DIRECTORY = ":log"
NAME = "events.log"
# every control character, and every character that any reader may take for
# the end of a line: NEL, the Unicode line and paragraph separators
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _quote(value):
    value = "" if value is None else str(value)
    if not value.isprintable():  # (cheaper than the regular expression, and usual)
        value = _CONTROL.sub(" ", value)
    return '"%s"' % value.replace('"', '""') if '"' in value else '"%s"' % value


def level_of(status):
    if status >= 500:
        return "[ERROR]"
    if status >= 400:
        return "[WARN ]"
    return "[INFO ]"


@functools.lru_cache(maxsize=64)
def _second(seconds):
    t = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.")


def timestamp(seconds):
    millis = int(seconds * 1000)
    return _second(millis // 1000) + "%03dZ" % (millis % 1000)


def format_line(seconds, status, request_key, subject, event_type, obj,
                external=False, schema=""):
    return ",".join([
        timestamp(seconds), level_of(status), _quote(request_key),
        '"true"' if external else '"false"', _quote(schema), _quote(subject),
        _quote(event_type), _quote(obj), '"%d"' % status,
    ])


ACTIONS = {"GET": "get", "HEAD": "get", "PROPFIND": "propfind", "PROPPATCH": "proppatch",
           "DELETE": "delete", "MKCOL": "create", "MOVE": "move", "COPY": "copy",
           "ACL": "acl", "OPTIONS": "options", "POST": "post", "LOCK": "lock",
           "UNLOCK": "unlock"}
KINDS = {"file": "davfile", "collection": "davcol", "box": "box",
         "service": "servicecol", "src": "servicesrc"}


def event_type(kind, method, status):
    """``davfile.create``, ``servicecol.proppatch``, ... for a request;
    ``service.exec`` for a call of a service script (kind ``exec``)."""
    if kind == "exec":
        return "service.exec"
    prefix = KINDS.get(kind, kind or "dav")
    if method == "PUT":
        action = "create" if status == 201 else "update"
    else:
        action = ACTIONS.get(method, method.lower())
    return "%s.%s" % (prefix, action)


def subject_of(principal, cell_url):
    """Who acted: "" when anonymous, "owner", else the account's URL,
    ``{CellURL}#{account}`` (``cell_url(cell)`` makes a cell's URL)."""
    if principal is None or principal.anonymous:
        return ""
    if principal.owner:
        return "owner"
    return cell_url(principal.cell) + "#" + principal.subject


def object_of(box, names):
    if box is None:
        return ""
    return "personium-localcell:/" + "/".join([box, *names])


class EventLog:
    """The event logs of every cell under a data root (files kept open)."""

    def __init__(self, data_root, rotate_length=10 * 1024 * 1024, max_rotated=10,
                 queued=False, node=None):
        self.root = os.path.abspath(data_root)
        # on a shared mount each host writes a file of its own: appends from
        # several hosts to one file overwrite each other there
        self.name = NAME if node is None else "events-%s.log" % node
        self.rotate_length = rotate_length
        self.max_rotated = max_rotated
        self._files = {}
        # queued (a shared mount): lines are written by a thread of their own
        self._background = Background("personium-dav event log") if queued else None

    def path(self, cell):
        return os.path.join(self.root, cell, DIRECTORY, self.name)

    def _file(self, cell):
        """The open log of ``cell``; None when there is no such cell (checked
        when it is opened, not on every line)."""
        log = self._files.get(cell)
        if log is None:
            if not os.path.isdir(os.path.join(self.root, cell)):
                return None
            directory = os.path.join(self.root, cell, DIRECTORY)
            os.makedirs(directory, mode=0o700, exist_ok=True)
            log = AppendLog(os.path.join(directory, self.name), self.rotate_length,
                            self.max_rotated)
            self._files[cell] = log
        return log

    def write(self, cell, line):
        if self._background is not None:
            if cell:
                self._background.call(self._write, cell, line)
            return
        self._write(cell, line)

    def _write(self, cell, line):
        log = self._file(cell) if cell else None
        if log is not None:
            log.write(line + "\n")  # one write(2), O_APPEND: safe with --workers

    def close(self):
        if self._background is not None:
            self._background.close()
        for log in self._files.values():
            log.close()
        self._files.clear()
