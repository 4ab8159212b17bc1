"""What a pool asks of its host: the ``_p`` calls of a script.

``ScriptPool.run(job, host)`` takes any object with ``call(op, args)``
returning a value or a Deferred of one. A refusal raises (or fails with)
``HostError(code, message)``: the script gets ``_p.PersoniumException`` with
that ``code`` (the HTTP status) and ``message``. Anything else that goes
wrong is logged and the script gets code 500, ``Server Error``.

Every call names who acts, in ``args["as"]``:
``{"as": "client"}`` (the caller's own token), ``{"as": "serviceSubject"}``
(the ``subject`` account of ``p:service``), or ``{"as": "password", "cellUrl",
"userId", "password"}``; and where: ``cell`` (None: the cell running the
script, else the name or URL the script gave), ``box`` (None: the box
running the script, else a name), ``path`` (``/``-joined names below the
box, never empty segments, ``.`` or ``..``; ``""`` is the box itself).

=================  ============================================  =====================
op                 args (besides as / cell / box / path)         value
=================  ============================================  =====================
require            {name} only (identifier-like)                 the source of
                                                                 ``__src/<name>.js``
                                                                 (str, or UTF-8 bytes);
                                                                 HostError(404) if none
cell               as, cell                                      {name, url}
cell.getToken      as, cell                                      {access_token,
                                                                 expires_in, refresh_token,
                                                                 refresh_token_expires_in,
                                                                 token_type}
box                as, cell, box                                 {name, schema}
dav.getString      charset                                       the file's bytes (the
                                                                 worker decodes them) or
                                                                 str
dav.put            contentType, charset, etag ("*" if none),      anything (ignored by
                   data (bytes, already encoded)                  the script)
dav.del            etag ("*" if none)                            None
dav.mkCol          (path is the new collection)                  None
dav.getFileList    (path is the collection, "" = box)            list of str
dav.getColList     (path is the collection)                      list of str
dav.setProp        key, value                                    None
dav.getProp        key                                           str, or None when
                                                                 unset
=================  ============================================  =====================

``http`` (HttpClient) never reaches the host: the pool makes it itself
(``outbound.py``). The server's host is ``boxhost.BoxHost``: the box API and
the accounts, as the principal the script acts as.
"""


class HostError(Exception):
    """A ``_p`` call the host refuses: the script gets
    ``_p.PersoniumException`` with ``code`` (the HTTP status) and ``message``."""

    def __init__(self, code, message):
        super().__init__(code, message)
        self.code = int(code)
        self.message = str(message)
