# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_http against a tiny local HTTPS server (real TLS on 127.0.0.1, scripted answers)."""

from __future__ import annotations

import glob
import json
import os
import socket
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.dkcustoms.dms.plugins.module_utils import _http, _oces
from ansible_collections.dkcustoms.dms.plugins.module_utils._opt_connection import RetryPolicy, parse_retry_after


def _bundle(entity, passphrase):
    with open(entity["p12"], "rb") as handle:
        return _oces.load_bundle(handle.read(), passphrase=passphrase)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def _answer(self):
        server = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        peer = self.connection.getpeercert()
        server.log.append({"method": self.command, "path": self.path, "body": body,
                           "client_subject": dict(x[0] for x in peer["subject"]) if peer else None})
        script = server.script.pop(0) if server.script else (200, {}, {"ok": True})
        status, headers, payload = script
        if status == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if status == "sleep":
            time.sleep(payload)
            status, headers, payload = 200, {}, {"ok": True}
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


class _Server:
    def __init__(self, cert, key, client_ca=None, require_client_cert=False):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        if client_ca:
            context.load_verify_locations(client_ca)
            context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.script = []
        self.httpd.log = []
        self.url = "https://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(pki):
    srv = _Server(pki["server"]["cert"], pki["server"]["key"], client_ca=pki["ca_bundle"])
    yield srv
    srv.close()


@pytest.fixture
def strict_server(pki):
    srv = _Server(pki["server"]["cert"], pki["server"]["key"], client_ca=pki["ca_bundle"],
                  require_client_cert=True)
    yield srv
    srv.close()


@pytest.fixture
def sleeps():
    return []


def _session(pki, sleeps, ca_path="server", validate_certs=True, client_cert=None, timeout=5, **retry):
    """A session as _opt_connection builds it; ``retry``: the RetryPolicy's arguments."""
    ca_path = pki["server"]["ca_bundle"] if ca_path == "server" else ca_path
    context = _http.create_ssl_context(ca_path=ca_path, validate_certs=validate_certs, client_cert=client_cert)
    return _http.create_session(context, timeout, policy=RetryPolicy(sleep=sleeps.append, **retry))


def _leftover_key_files():
    return glob.glob(os.path.join(tempfile.gettempdir(), "dms-client-*"))


def test_presents_client_certificate_without_leaving_key_on_disk(pki, server, sleeps):
    entity = pki["entities"]["foces-01"]
    client_cert = _http.client_cert_from_bundle(_bundle(entity, pki["passphrase"]))
    before = set(_leftover_key_files())
    session = _session(pki, sleeps, client_cert=client_cert)
    assert set(_leftover_key_files()) == before
    response = session.get(server.url + "/api/whoami")
    assert response.status_code == 200
    subject = server.httpd.log[0]["client_subject"]
    assert subject["serialNumber"] == "UI:DK-O:G:%s" % entity["uuid"]
    assert session.stats == {"attempts": 1, "retries": 0}


def test_untrusted_server_certificate_fails_with_fix(pki, server, sleeps):
    session = _session(pki, sleeps, ca_path=pki["ca_bundle"])  # the OCES CAs, not the TLS CA
    with pytest.raises(_http.TLSVerificationError) as err:
        session.get(server.url + "/x")
    assert "ca_path" in str(err.value)
    assert "certificate_verify_failed" in str(err.value).lower()
    assert session.stats["attempts"] == 1  # never retried
    assert server.httpd.log == []


def test_wrong_host_name_fails_verification(pki, sleeps):
    srv = _Server(pki["server"]["wrong_host"]["cert"], pki["server"]["wrong_host"]["key"])
    try:
        with pytest.raises(_http.TLSVerificationError):
            _session(pki, sleeps).get(srv.url + "/x")
    finally:
        srv.close()


def test_validate_certs_false_skips_verification(pki, server, sleeps):
    session = _session(pki, sleeps, ca_path=None, validate_certs=False)
    assert session.get(server.url + "/x").status_code == 200


def test_system_trust_store_does_not_trust_test_ca(pki, server, sleeps):
    session = _session(pki, sleeps, ca_path=None)
    with pytest.raises(_http.TLSVerificationError):
        session.get(server.url + "/x")


def test_missing_ca_path_is_named(pki, sleeps):
    with pytest.raises(_http.TLSVerificationError) as err:
        _session(pki, sleeps, ca_path="/nonexistent/ca.pem")
    assert "/nonexistent/ca.pem" in str(err.value)


def test_503_then_success_is_retried_with_backoff(pki, server, sleeps):
    server.httpd.script = [(503, {}, {"error": "unavailable"}), (503, {}, {}), (200, {}, {"a": 1})]
    session = _session(pki, sleeps, retries=5, backoff_base=0.5, backoff_max=10)
    response = session.post(server.url + "/api/certificate/registration", json={})
    assert response.json() == {"a": 1}
    assert session.stats == {"attempts": 3, "retries": 2}
    assert len(server.httpd.log) == 3
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0
    assert [e.reason for e in session.retry_events] == ["HTTP 503", "HTTP 503"]


def test_429_honours_retry_after_with_cap(pki, server, sleeps):
    server.httpd.script = [(429, {"Retry-After": "3"}, {}), (429, {"Retry-After": "600"}, {}),
                           (200, {}, {})]
    session = _session(pki, sleeps, retry_after_max=20)
    assert session.get(server.url + "/x").status_code == 200
    assert sleeps == [3.0, 20]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 423])
def test_other_4xx_are_not_retried(pki, server, sleeps, status):
    server.httpd.script = [(status, {}, {"error": "nope", "detail": "Nope."})]
    session = _session(pki, sleeps)
    response = session.post(server.url + "/api/session", json={"password": "s3cret-password"})
    assert response.status_code == status
    assert session.stats["attempts"] == 1 and sleeps == []
    error = _http.error_from_response(response, "Log on")
    assert error.status == status and error.error_code == "nope"
    assert "s3cret-password" not in str(error)
    assert "HTTP %d nope: Nope." % status in str(error)


def test_retries_are_bounded(pki, server, sleeps):
    server.httpd.script = [(503, {"Retry-After": "1"}, {"error": "maintenance"})] * 10
    session = _session(pki, sleeps, retries=2)
    with pytest.raises(_http.HTTPStatusError) as err:
        session.get(server.url + "/api/certificate")
    assert err.value.status == 503 and err.value.error_code == "maintenance"
    assert "after 3 attempts" in str(err.value) and "retries" in str(err.value)
    assert len(server.httpd.log) == 3 and sleeps == [1.0, 1.0]


def test_dropped_connection_is_retried(pki, server, sleeps):
    server.httpd.script = [("drop", {}, None), (200, {}, {"ok": 1})]
    session = _session(pki, sleeps)
    assert session.get(server.url + "/x").json() == {"ok": 1}
    assert session.stats["retries"] == 1


def test_connection_dropped_every_time_is_named(pki, server, sleeps):
    server.httpd.script = [("drop", {}, None)] * 3
    session = _session(pki, sleeps, retries=2)
    with pytest.raises(_http.UnreachableError) as err:
        session.post(server.url + "/api/session", json={"password": "s3cret-password"})
    assert "dropped the connection without answering" in str(err.value)
    assert "after 3 attempts" in str(err.value) and "s3cret-password" not in str(err.value)
    assert len(server.httpd.log) == 3


def test_logon_dropped_after_sending_is_not_sent_again(pki, server, sleeps):
    # The portal may have counted the failed logon before dropping: a resend could lock the account.
    server.httpd.script = [("drop", {}, None), (200, {}, {"token": "t"})]
    session = _session(pki, sleeps, retries=5)
    with pytest.raises(_http.UnreachableError):
        session.post(server.url + "/api/session", json={"password": "s3cret-password"}, replay_safe=False)
    assert len(server.httpd.log) == 1 and session.stats["retries"] == 0


@pytest.mark.parametrize("status,attempts", [(502, 1), (500, 1), (503, 2), (429, 2)])
def test_logon_is_resent_only_when_not_processed(pki, server, sleeps, status, attempts):
    server.httpd.script = [(status, {"Retry-After": "1"}, {}), (200, {}, {"token": "t"})]
    session = _session(pki, sleeps, retries=5)
    response = session.post(server.url + "/api/session", json={"password": "s3cret-password"},
                            replay_safe=False)
    assert len(server.httpd.log) == attempts
    assert response.status_code == (status if attempts == 1 else 200)


def test_logon_to_a_closed_port_is_retried_once(pki, sleeps):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    session = _session(pki, sleeps, retries=2)
    with pytest.raises(_http.UnreachableError):
        session.post("https://127.0.0.1:%d/api/session" % port, json={}, replay_safe=False)
    assert session.stats["retries"] == 1  # a logon is sent again at most once


def test_unreachable_is_classified_after_retries(pki, sleeps):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    session = _session(pki, sleeps, retries=2)
    with pytest.raises(_http.UnreachableError) as err:
        session.get("https://127.0.0.1:%d/x" % port)
    assert "127.0.0.1:%d is unreachable" % port in str(err.value)
    assert "after 3 attempts" in str(err.value)


def test_read_timeout_is_not_retried(pki, server, sleeps):
    server.httpd.script = [("sleep", {}, 2)]
    session = _session(pki, sleeps, timeout=0.5)
    with pytest.raises(_http.RequestTimeoutError) as err:
        session.get(server.url + "/x")
    assert "0.5 seconds" in str(err.value) and "timeout" in str(err.value)
    assert session.stats["attempts"] == 1


def test_certificate_from_unknown_ca_is_refused(pki, strict_server, sleeps):
    broken = pki["broken"]["unknown_ca"]
    with open(broken["p12"], "rb") as handle:
        bundle = _oces.load_bundle(handle.read(), passphrase=pki["passphrase"])
    session = _session(pki, sleeps, client_cert=_http.client_cert_from_bundle(bundle), retries=1)
    # TLS 1.3: the refusal may arrive as an alert or as a closed connection.
    with pytest.raises((_http.TLSHandshakeError, _http.UnreachableError)) as err:
        session.get(strict_server.url + "/x")
    assert "PRIVATE KEY" not in str(err.value)
    assert strict_server.httpd.log == []


def test_no_client_certificate_when_required_is_refused(pki, strict_server, sleeps):
    session = _session(pki, sleeps, retries=0)
    with pytest.raises(_http.HttpError):
        session.get(strict_server.url + "/x")
    assert strict_server.httpd.log == []


def test_mismatched_key_is_refused_locally(pki, sleeps):
    entity = pki["entities"]["foces-01"]
    other = pki["broken"]["unknown_ca"]
    bundle = _bundle(entity, pki["passphrase"])
    other_bundle = _bundle(other, pki["passphrase"])
    with pytest.raises(_http.ClientCertificateError) as err:
        _session(pki, sleeps, client_cert=(_http.client_cert_from_bundle(bundle).chain_pem,
                                           other_bundle.private_key))
    assert "private key" in str(err.value)
    assert not _leftover_key_files()


def test_parse_retry_after():
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
    http_date = "Sun, 06 Nov 1994 08:49:37 GMT"
    assert parse_retry_after(http_date, now=784111767.0) == 10.0
