"""``_p`` over real HTTP against the real plugin: a script acts as the
caller, as the service's subject, or as an account by password, through the
same box operations, privilege policy and event log as an HTTP request by
that principal; the denials change nothing. Then tokens, cells and boxes,
queryParse and HttpClient."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

from personium_dav.auth.accounts import AccountStore

from .support.services import BOX, OWNER, ServiceServer, basic

# one script doing what its query asks: as=client|serviceSubject|password
# (cellUrl, user, pw), op=..., with cell, box, col, path, data, etag, key, value
P = r"""function(r){
    var q = _p.util.queryParse(r.queryString), out;
    function answer(o){ return {status: 200, headers: {"Content-Type": "application/json"}, body: [JSON.stringify(o)]}; }
    try {
        var acc = q.as === "password" ? _p.as({cellUrl: q.cellUrl, userId: q.user, password: q.pw}) : _p.as(q.as);
        var cell = acc.cell(q.cell);
        if (q.op === "cell") return answer({ok: {name: cell.name, url: cell.getUrl()}});
        if (q.op === "token") return answer({ok: cell.getToken()});
        if (q.op === "localbox") return answer({ok: _p.localbox().name});
        var box = cell.box(q.box), target = q.col ? box.col(q.col) : box;
        switch (q.op) {
            case "box": out = {name: box.name, schema: box.schema, path: target.getPath()}; break;
            case "getString": out = target.getString(q.path); break;
            case "put": target.put(q.path, "text/plain", q.data, q.etag); out = "put"; break;
            case "putObject": target.put({path: q.path, contentType: "text/plain", data: q.data, etag: q.etag}); out = "put"; break;
            case "del": target.del(q.path, q.etag); out = "deleted"; break;
            case "mkCol": target.mkCol(q.path); out = "made"; break;
            case "files": out = target.getFileList(); break;
            case "cols": out = target.getColList(); break;
            case "setProp": target.setProp(q.key, q.value); out = "set"; break;
            case "getProp": out = target.getProp(q.key); break;
            default: throw new Error("unknown op " + q.op);
        }
        return answer({ok: out === undefined ? null : out});
    } catch (e) {
        return answer({error: {name: e.name, code: e.code, message: e.message,
                               isP: e instanceof _p.PersoniumException}});
    }
}"""
QUERY = r"""function(r){
    return {status: 200, headers: {"Content-Type": "application/json"},
            body: [JSON.stringify(_p.util.queryParse(r.queryString))]};
}"""
HTTP = r"""function(r){
    var q = _p.util.queryParse(r.queryString), c = new _p.extension.HttpClient(), res;
    try {
        res = q.method === "post" ? c.post(q.url, {"X-Test": "posted"}, "text/plain", "sent body")
                                  : c.get(q.url, {"X-Test": "got"});
        return {status: 200, headers: {"Content-Type": "application/json"},
                body: [JSON.stringify({status: res.status, typeofStatus: typeof res.status,
                                       headers: JSON.parse(res.headers), body: res.body})]};
    } catch (e) {
        return {status: 200, headers: {"Content-Type": "application/json"},
                body: [JSON.stringify({error: {name: e.name, code: e.code, message: e.message}})]};
    }
}"""
SOURCES = {"p.js": P, "query.js": QUERY, "http.js": HTTP}
ROUTES = [("p", "p.js"), ("query", "query.js"), ("http", "http.js")]
ALICE, BOB, ENGINE, NOBODY = (("alice", "alice-Pass-1"), ("bob", "bob-Pass-1"),
                              ("engine", "engine-Pass-1"), ("nobody", "nobody-Pass-1"))
CAROL = ("carol", "carol-Pass-1")


class Echo(BaseHTTPRequestHandler):
    """The outside world a script's HttpClient reaches."""

    def do_GET(self):
        self.reply(b"hello from outside")

    def do_POST(self):
        self.reply(self.rfile.read(int(self.headers["Content-Length"])))

    def reply(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("X-Seen", self.headers.get("X-Test", ""))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Acting(ServiceServer):
    script_timeout = 15  # a password check (argon2) counts in a call's time
    SERVICES = {"psvc": ("engine", ROUTES, SOURCES), "nosub": (None, ROUTES, SOURCES),
                "ghost": ("ghost", ROUTES, SOURCES)}
    ACCOUNTS = {"cell1": {"alice": (ALICE[1], ["readers"]), "bob": (BOB[1], ["writers"]),
                          "engine": (ENGINE[1], ["engines"]), "nobody": (NOBODY[1], [])},
                "cell2": {"carol": (CAROL[1], ["c2"])}}

    @classmethod
    def prepare(cls):
        super().prepare()
        cls.outside = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
        threading.Thread(target=cls.outside.serve_forever, daemon=True).start()

    @classmethod
    def finish(cls):
        cls.outside.shutdown()
        cls.outside.server_close()

    @classmethod
    def server_args(cls):
        return super().server_args() + (
            "--script-http-allow", "127.0.0.1:%d" % cls.outside.server_address[1])

    @classmethod
    def scene(cls):
        owner = cls.owner
        owner.ok(owner.request("MKCOL", BOX + "data"), 201)
        owner.ok(owner.request("PUT", BOX + "data/f.txt", b"hello data",
                               {"Content-Type": "text/plain"}), 201)
        owner.ok(owner.request("PUT", BOX + "private.txt", b"secret",
                               {"Content-Type": "text/plain"}), 201)
        cls.grant(BOX, ("readers", ("read",)), ("engines", ("all",)))
        cls.grant(BOX + "data", ("writers", ("all",)))
        for svc in ("psvc", "nosub", "ghost"):  # anyone may call the services
            cls.grant(BOX + svc, (None, ("exec",)))
        cls.grant("/cell2/box1/", ("c2", ("all",)), cell_url=cls.url + "/cell2/")

    # -- helpers ------------------------------------------------------------

    def p(self, svc="psvc", auth=None, rkey=None, **query):
        """Call p.js with ``query`` (anonymous unless ``auth``), with the
        request key ``rkey``; its JSON ({ok: ...} or {error: ...})."""
        qs = "&".join("%s=%s" % (k, quote(str(v), safe="")) for k, v in query.items())
        headers = {"X-Personium-RequestKey": rkey} if rkey else {}
        got = self.call(svc + "/p?" + qs, auth=auth, headers=headers)
        self.assertEqual(got.status, 200, got)
        return got.json()

    def as_client(self, who, **query):
        return self.p(auth=basic(*who) if who else None, **dict(query, **{"as": "client"}))

    def error(self, out, code):
        self.assertIn("error", out, out)
        self.assertEqual((out["error"]["name"], out["error"]["code"], out["error"]["isP"]),
                         ("_p.PersoniumException", code, True), out)

    def owner_get(self, path):
        return self.owner.request("GET", BOX + path)

    def subject_url(self, name, cell="cell1"):
        return "%s/%s/#%s" % (self.url, cell, name)

    # -- as the caller --------------------------------------------------------

    def test_as_client_reads_as_the_caller_may(self):
        self.assertEqual(self.p(auth=OWNER, **{"as": "client", "op": "getString",
                                               "path": "data/f.txt"}), {"ok": "hello data"})
        self.assertEqual(self.as_client(ALICE, op="getString", path="data/f.txt"),
                         {"ok": "hello data"})
        self.error(self.as_client(None, op="getString", path="data/f.txt"), 401)
        self.error(self.as_client(NOBODY, op="getString", path="data/f.txt"), 403)
        self.error(self.as_client(ALICE, op="getString", path="data/none.txt"), 404)
        self.assertIn("f.txt", self.as_client(ALICE, op="files", col="data")["ok"])
        self.error(self.as_client(NOBODY, op="files", col="data"), 403)

    def test_as_client_writes_as_the_caller_may(self):
        # alice may read, not write: refused, nothing written
        self.error(self.as_client(ALICE, op="put", path="data/a.txt", data="x"), 403)
        self.assertEqual(self.owner_get("data/a.txt").status, 404)
        self.error(self.as_client(NOBODY, op="mkCol", path="data/sub"), 403)
        self.error(self.as_client(None, op="del", path="data/f.txt"), 401)
        self.assertEqual(self.owner_get("data/f.txt").body, b"hello data")
        # bob may write in data, and nowhere else
        out = self.as_client(BOB, op="put", path="data/a.txt", data="by bob", rkey="bob-put-1")
        self.assertEqual(out, {"ok": "put"})
        got = self.owner_get("data/a.txt")
        self.assertEqual((got.body, got.header("content-type")), (b"by bob", "text/plain"))
        self.assertEqual(self.events_of("bob-put-1"), [
            ("davfile.create", "personium-localcell:/box1/data/a.txt", "201", self.subject_url("bob")),
            ("service.exec", "personium-localcell:/box1/psvc/p", "200", self.subject_url("bob"))])
        self.error(self.as_client(BOB, op="put", path="private.txt", data="x"), 403)
        self.assertEqual(self.owner_get("private.txt").body, b"secret")
        # If-Match from the etag: a wrong one is 412 and changes nothing
        self.error(self.as_client(BOB, op="put", path="data/a.txt", data="y", etag='"1-1"'), 412)
        etag = got.header("etag")
        out = self.as_client(BOB, op="putObject", path="data/a.txt", data="again", etag=etag,
                             rkey="bob-put-2")
        self.assertEqual(out, {"ok": "put"})
        self.assertEqual(self.owner_get("data/a.txt").body, b"again")
        self.assertEqual(self.events_of("bob-put-2")[0][:3],
                         ("davfile.update", "personium-localcell:/box1/data/a.txt", "204"))
        self.assertEqual(self.as_client(BOB, op="mkCol", path="data/sub", rkey="bob-mkcol"),
                         {"ok": "made"})
        self.assertEqual(self.events_of("bob-mkcol")[0][:3],
                         ("davcol.create", "personium-localcell:/box1/data/sub", "201"))
        self.assertIn("sub", self.as_client(BOB, op="cols", col="data")["ok"])
        files = self.as_client(BOB, op="files", col="data")["ok"]
        self.assertEqual((files, "sub" in files), (sorted(files), False))
        self.assertTrue({"a.txt", "f.txt"} <= set(files), files)
        self.error(self.as_client(ALICE, op="del", path="data/a.txt"), 403)
        self.assertEqual(self.as_client(BOB, op="del", path="data/a.txt", rkey="bob-del"),
                         {"ok": "deleted"})
        self.assertEqual(self.owner_get("data/a.txt").status, 404)
        self.assertEqual(self.events_of("bob-del")[0][:3],
                         ("davfile.delete", "personium-localcell:/box1/data/a.txt", "204"))

    def test_properties(self):
        self.error(self.as_client(ALICE, op="setProp", col="data", key="color", value="red"), 403)
        self.assertEqual(self.as_client(BOB, op="setProp", col="data", key="color", value="<red>"),
                         {"ok": "set"})
        got = self.owner.request("PROPFIND", BOX + "data", headers={"Depth": "0"})
        self.assertIn(b'<p:color xmlns:p="urn:x-personium:xmlns">&lt;red&gt;</p:color>', got.body)
        self.assertEqual(self.as_client(ALICE, op="getProp", col="data", key="color"),
                         {"ok": "<red>"})
        self.assertEqual(self.as_client(ALICE, op="getProp", col="data", key="unset"), {"ok": None})
        self.error(self.as_client(NOBODY, op="getProp", col="data", key="color"), 403)
        self.error(self.as_client(BOB, op="setProp", col="data", key="not a name", value="x"), 400)

    # -- as the service's subject ---------------------------------------------

    def test_as_service_subject(self):
        # an anonymous caller may not write; the subject (all on the box) may
        self.error(self.as_client(None, op="put", path="by-subject.txt", data="x"), 401)
        out = self.p(rkey="subject-put", **{"as": "serviceSubject", "op": "put",
                                           "path": "by-subject.txt", "data": "subject"})
        self.assertEqual(out, {"ok": "put"})
        self.assertEqual(self.owner_get("by-subject.txt").body, b"subject")
        self.assertEqual(self.events_of("subject-put")[0],
                         ("davfile.create", "personium-localcell:/box1/by-subject.txt", "201",
                          self.subject_url("engine")))
        # with the roles it holds now: without them, refused, nothing changed
        store = AccountStore(self.data, durable=False)
        store.add_account("cell1", "engine", ENGINE[1], [])
        try:
            self.error(self.p(**{"as": "serviceSubject", "op": "put", "path": "by-subject.txt",
                                 "data": "changed"}), 403)
        finally:
            store.add_account("cell1", "engine", ENGINE[1], ["engines"])
        self.assertEqual(self.owner_get("by-subject.txt").body, b"subject")
        # no subject in p:service; a subject that is no account
        out = self.p(svc="nosub", **{"as": "serviceSubject", "op": "getString", "path": "data/f.txt"})
        self.error(out, 400)
        self.assertIn("subject", out["error"]["message"])
        self.error(self.p(svc="ghost", **{"as": "serviceSubject", "op": "getString",
                                          "path": "data/f.txt"}), 401)

    # -- as an account, by password -------------------------------------------

    def by_password(self, who, home="cell1", **query):
        return self.p(**dict(query, **{"as": "password", "cellUrl": self.url + "/%s/" % home,
                                       "user": who[0], "pw": who[1]}))

    def test_as_an_account_by_password(self):
        self.assertEqual(self.by_password(ALICE, op="getString", path="data/f.txt"),
                         {"ok": "hello data"})
        self.error(self.by_password(ALICE, op="put", path="data/b.txt", data="x"), 403)
        self.error(self.by_password((BOB[0], "wrong"), op="put", path="data/b.txt", data="x"), 401)
        self.error(self.by_password(("nosuch", "x"), op="getString", path="data/f.txt"), 401)
        self.assertEqual(self.owner_get("data/b.txt").status, 404)
        self.assertEqual(self.by_password(BOB, op="put", path="data/b.txt", data="pw"),
                         {"ok": "put"})
        self.assertEqual(self.owner_get("data/b.txt").body, b"pw")
        # an account of another cell: its own cell's box, where its role has all
        out = self.by_password(CAROL, "cell2", op="put", path="c.txt", data="carol",
                               rkey="carol-put")
        self.assertEqual(out, {"ok": "put"})
        self.assertEqual(self.owner.request("GET", "/cell2/box1/c.txt").body, b"carol")
        self.assertEqual(self.events_of("carol-put", "cell2")[0],
                         ("davfile.create", "personium-localcell:/box1/c.txt", "201",
                          self.subject_url("carol", "cell2")))
        # and no role in cell1
        self.error(self.by_password(CAROL, "cell2", cell=self.url + "/cell1/", op="getString",
                                    path="data/f.txt"), 403)

    # -- tokens, cells, boxes ---------------------------------------------------

    def test_get_token_issues_real_tokens(self):
        out = self.by_password(ALICE, op="token")["ok"]
        self.assertEqual((out["token_type"], out["expires_in"], out["refresh_token_expires_in"]),
                         ("Bearer", 3600, 86400))
        got = self.owner.request("GET", BOX + "data/f.txt",
                                 auth="Bearer " + out["access_token"])
        self.assertEqual((got.status, got.body), (200, b"hello data"))
        got = self.owner.request("PUT", BOX + "data/f.txt", b"no",
                                 auth="Bearer " + out["access_token"])
        self.assertEqual(got.status, 403)
        got = self.owner.request("POST", "/cell1/__token",
                                 "grant_type=refresh_token&refresh_token=" + out["refresh_token"],
                                 {"Content-Type": "application/x-www-form-urlencoded"}, auth=None)
        self.assertEqual(got.status, 200, got)
        subject = self.p(**{"as": "serviceSubject", "op": "token"})["ok"]
        got = self.owner.request("GET", BOX + "private.txt",
                                 auth="Bearer " + subject["access_token"])
        self.assertEqual(got.body, b"secret")
        self.error(self.as_client(None, op="token"), 401)

    def test_cells_and_boxes(self):
        self.assertEqual(self.as_client(ALICE, op="cell"),
                         {"ok": {"name": "cell1", "url": self.url + "/cell1/"}})
        self.assertEqual(self.as_client(ALICE, op="cell", cell="cell2")["ok"]["name"], "cell2")
        self.error(self.as_client(ALICE, op="cell", cell="nosuchcell"), 404)
        self.assertEqual(self.as_client(ALICE, op="localbox"), {"ok": "box1"})
        self.assertEqual(self.as_client(ALICE, op="box", col="data"),
                         {"ok": {"name": "box1", "schema": "", "path": "/data"}})
        self.error(self.as_client(ALICE, op="box", box="nosuchbox"), 404)
        self.error(self.as_client(ALICE, op="getString", path="../private.txt"), 400)

    # -- utilities ------------------------------------------------------------

    def test_query_parse(self):
        got = self.call("psvc/query?a=1&b=x%20y&a=2&c=&d&e=%E3%81%82+b")
        self.assertEqual(got.json(), {"a": ["1", "2"], "b": "x y", "c": "", "d": "",
                                      "e": "\u3042 b"})

    def test_http_client_reaches_allowed_hosts_only(self):
        port = self.outside.server_address[1]
        got = self.call("psvc/http?url=" + quote("http://127.0.0.1:%d/x" % port, safe=""))
        out = got.json()
        self.assertEqual((out["status"], out["typeofStatus"], out["body"]),
                         ("200", "string", "hello from outside"))
        self.assertEqual(out["headers"]["X-Seen"], "got")
        got = self.call("psvc/http?method=post&url=" + quote("http://127.0.0.1:%d/" % port, safe=""))
        self.assertEqual(got.json()["body"], "sent body")
        for url in ("http://127.0.0.1:%d/x" % self.server.port, "http://localhost:%d/" % port,
                    "file:///etc/passwd"):
            out = self.call("psvc/http?url=" + quote(url, safe="")).json()
            self.assertEqual((out["error"]["name"], out["error"]["code"]),
                             ("_p.PersoniumException", 403), (url, out))
