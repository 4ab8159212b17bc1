"""The event log over HTTP (docs/behaviour.md §9): one Personium CSV line per request, per
cell, with the request key; and no log line ever holds a token or a password
(event log, access log, twisted's log)."""
import base64
import io
import os
from urllib.parse import urlencode

from twisted.internet import defer
from twisted.logger import globalLogPublisher, textFileLogObserver
from twisted.web.http import datetimeToLogString

from personium_dav.logs import eventlog
from personium_dav.web.envelope import access_log_formatter

from .support.helpers import BOX, DavTestCase
from .support.steps import SERVICE_MKCOL, proppatch_body


class EventLogTests(DavTestCase):
    def lines(self):
        path = os.path.join(self.data, "cell1", eventlog.DIRECTORY, eventlog.NAME)
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()

    @defer.inlineCallbacks
    def test_one_line_per_request(self):
        yield self.request("MKCOL", BOX + "svc", SERVICE_MKCOL,
                           {"Content-Type": "application/xml", "X-Personium-RequestKey": "k1"})
        yield self.request("PUT", BOX + "svc/__src/a.js", b"x",
                           {"Content-Type": "text/javascript", "X-Personium-RequestKey": "k2"})
        yield self.request("PUT", BOX + "svc/__src/a.js", b"y",
                           {"Content-Type": "text/javascript", "X-Personium-RequestKey": "k3"})
        yield self.request("PROPPATCH", BOX + "svc", proppatch_body("<z:a>1</z:a>"),
                           {"X-Personium-RequestKey": "k4"})
        yield self.request("GET", BOX, headers={"X-Personium-RequestKey": "k5"}, anonymous=True)
        yield self.request("MKCOL", BOX + "plain", headers={"X-Personium-RequestKey": "k6"})
        lines = self.lines()
        self.assertEqual(len(lines), 6, lines)
        fields = [line.split(",") for line in lines]
        self.assertEqual([f[2] for f in fields], ['"k1"', '"k2"', '"k3"', '"k4"', '"k5"', '"k6"'])
        self.assertEqual([f[6] for f in fields], ['"servicecol.create"', '"davfile.create"',
                                                  '"davfile.update"', '"servicecol.proppatch"',
                                                  '"box.get"', '"davcol.create"'])
        self.assertEqual(fields[1][7], '"personium-localcell:/box1/svc/__src/a.js"')
        self.assertEqual([f[8] for f in fields],
                         ['"201"', '"201"', '"204"', '"207"', '"401"', '"201"'])
        self.assertEqual(fields[0][1], "[INFO ]")
        self.assertEqual(fields[4][1], "[WARN ]")
        self.assertEqual(fields[0][5], '"owner"')
        self.assertEqual(fields[4][5], '""')


class NoSecretsInLogsTests(DavTestCase):
    @defer.inlineCallbacks
    def test_no_token_or_password(self):
        captured = io.StringIO()
        observer = textFileLogObserver(captured)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        access = []
        site_formatter = access_log_formatter

        accounts = self.server.auth.accounts
        accounts.add_account("cell1", "me", "Pa55-secret-word")
        secrets = ["Pa55-secret-word", self.ownerToken]

        def remember(answer):
            return answer

        answer = yield self.request("POST", "/cell1/__token", urlencode(
            {"grant_type": "password", "username": "me", "password": "Pa55-secret-word",
             "p_cookie": "true"}).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"}, anonymous=True)
        grant = answer.json()
        secrets += [grant["access_token"], grant["refresh_token"], grant["p_cookie_peer"]]
        basic = base64.b64encode(b"me:Pa55-secret-word").decode()
        secrets.append(basic)
        for headers in ({"Authorization": "Basic " + basic},
                        {"Authorization": "Basic " + base64.b64encode(b"me:wrong-Pa55").decode()},
                        {"Authorization": "Bearer " + grant["access_token"]},
                        {"Authorization": "Bearer " + self.ownerToken + "x"}):
            yield self.request("PROPFIND", BOX, b"", dict(headers, Depth="0"))
        uri = BOX + "?p_cookie_peer=" + grant["p_cookie_peer"]
        yield self.request("GET", uri, anonymous=True)
        # the access log line of such a request, as makeSite's Site writes it
        from twisted.web.test.requesthelper import DummyRequest

        request = DummyRequest([b""])
        request.uri, request.clientproto, request.code, request.sentLength = (
            uri.encode(), b"HTTP/1.1", 200, 0)
        access.append(site_formatter(datetimeToLogString(), request))
        secrets.append("wrong-Pa55")

        logs = [captured.getvalue(), "\n".join(access)]
        directory = os.path.join(self.data, "cell1", eventlog.DIRECTORY)
        for name in os.listdir(directory):
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                logs.append(f.read())
        self.assertTrue(logs[2].count("\n") >= 6, logs[2])
        for text in logs:
            for secret in secrets:
                self.assertNotIn(secret, text)
