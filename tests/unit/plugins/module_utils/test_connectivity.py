# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_connectivity against real sockets on 127.0.0.1: TLS servers with made-up certificates and a fake
AS4 gateway (scripted answers built from the request it received)."""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.dkcustoms.dms.plugins.module_utils import _connectivity

sys.path.insert(0, os.path.dirname(__file__))
import _as4_fakes as fakes  # noqa: E402  pylint: disable=wrong-import-position

PASSWORD = "Gw-Secret-Password-987"
USER = "CVR_12345678_UI_4b56e2c8-1f0a-4b1e-9a0e-5f2d8e3c1a7b"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certs")
    server_ca = fakes.make_ca("Server CA")
    client_ca = fakes.make_ca("Client CA")
    gateway_ca = fakes.make_ca("Gateway CA")
    items = {
        "server_ca": server_ca,
        "server": fakes.issue(server_ca, "localhost"),
        "wrong_host": fakes.issue(server_ca, "wrong", dns=("wrong-host.invalid",), ips=()),
        "expired": fakes.issue(server_ca, "localhost", days=(-30, -2)),
        "expiring": fakes.issue(server_ca, "localhost", days=(-30, 10)),
        "unknown": fakes.issue(fakes.make_ca("Unknown CA"), "localhost"),
        "client_ca": client_ca,
        "client": fakes.issue(client_ca, "foces-01", dns=(), ips=()),
        "other_client_ca": fakes.make_ca("Other client CA"),
        "gateway": fakes.issue(gateway_ca, "SKAT OIO Gateway Test", dns=(), ips=()),
    }
    paths = {name: item.write(directory, name) for name, item in items.items()}
    return {"items": items, "paths": paths}


class _Gateway(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body, content_type="application/soap+xml; charset=utf-8"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # pylint: disable=invalid-name
        status = getattr(self.server, "get_status", 405)
        self._send(status, b"use POST" if status == 405 else b"client certificate refused", "text/plain")

    def do_POST(self):  # pylint: disable=invalid-name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append(body)
        script = self.server.script.pop(0) if len(self.server.script) > 1 else self.server.script[0]
        status, answer = script(body)
        self._send(status, answer, "text/html" if answer.startswith(b"<!DOCTYPE html") else
                   "application/soap+xml; charset=utf-8")


def _serve(pki, cert="server", client_ca=None, script=None):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*pki["paths"][cert])
    if client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=pki["paths"][client_ca][0])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.requests = []
    server.script = script or [lambda body: (200, fakes.receipt(body, pki["items"]["gateway"]))]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def gateway(pki):
    servers = []

    def start(**kwargs):
        server = _serve(pki, **kwargs)
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _settings(pki, server=None, port=None, host="localhost", **kwargs):
    items = pki["items"]
    port = port or server.server_address[1]
    values = dict(url="https://%s:%d" % (host, port), gateway_user=USER, gateway_password=PASSWORD,
                  certificate=items["client"].cert, private_key=items["client"].key,
                  ca_path=pki["paths"]["server_ca"][0], timeout=5, receipt_signers=[items["gateway"].cert])
    values.update(kwargs)
    return _connectivity.Settings(**values)


def _statuses(report):
    return [layer["status"] for layer in report["layers"]]


def _failed(report):
    return [layer for layer in report["layers"] if layer["status"] == "fail"][0]


def test_success_every_layer(pki, gateway):
    server = gateway()
    report = _connectivity.run_checks(_settings(pki, server))
    assert report["ok"] and report["result"] == "SUCCESS" and report["failed_layer"] is None
    assert [layer["name"] for layer in report["layers"]] == list(_connectivity.LAYERS)
    assert _statuses(report) == ["pass"] * 6
    assert all(layer["hint"] is None and isinstance(layer["duration_ms"], int) for layer in report["layers"])
    assert report["answer"]["kind"] == "receipt"
    assert len(server.requests) == 1
    assert PASSWORD not in json.dumps(report)


def test_dns_failure(pki, monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(_connectivity.socket, "getaddrinfo", fail)
    report = _connectivity.run_checks(_settings(pki, port=6384, host="gateway.invalid"))
    assert (report["result"], report["failed_layer"]) == ("DNS_ERROR", "dns")
    assert _statuses(report) == ["fail"] + ["skipped"] * 5
    assert "getent hosts gateway.invalid" in _failed(report)["hint"]


def test_closed_port(pki):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    report = _connectivity.run_checks(_settings(pki, port=port, host="127.0.0.1"))
    assert (report["result"], report["failed_layer"]) == ("CONNECT_ERROR", "tcp")
    assert "refused" in _failed(report)["detail"] and "port" in _failed(report)["hint"]


@pytest.mark.parametrize("cert, words", [
    ("unknown", "is not trusted by ca_path"),
    ("wrong_host", "wrong-host.invalid"),
    ("expired", "not valid now"),
])
def test_tls_failures(pki, gateway, cert, words):
    server = gateway(cert=cert)
    report = _connectivity.run_checks(_settings(pki, server))
    assert (report["result"], report["failed_layer"]) == ("TLS_ERROR", "tls")
    assert words in _failed(report)["detail"]
    assert _statuses(report) == ["pass", "pass", "fail", "skipped", "skipped", "skipped"]
    assert server.requests == []


def test_certificate_expiring_soon_warns(pki, gateway):
    report = _connectivity.run_checks(_settings(pki, gateway(cert="expiring"), layers=["tls"]))
    assert report["ok"] and "expires in" in report["warnings"][0]
    assert _statuses(report) == ["pass", "pass", "pass", "skipped", "skipped", "skipped"]


def test_client_certificate_required_none_sent(pki, gateway):
    report = _connectivity.run_checks(_settings(pki, gateway(client_ca="other_client_ca")))
    assert (report["result"], report["failed_layer"]) == ("CLIENT_CERT_REJECTED", "client_certificate")
    assert "tls_client_certificate: true" in _failed(report)["hint"]


def test_client_certificate_from_a_ca_the_server_does_not_trust(pki, gateway):
    report = _connectivity.run_checks(_settings(pki, gateway(client_ca="other_client_ca"),
                                                tls_client_certificate=True))
    assert (report["result"], report["failed_layer"]) == ("CLIENT_CERT_REJECTED", "client_certificate")
    assert "does not trust the CA" in _failed(report)["detail"]


def test_client_certificate_accepted_in_tls(pki, gateway):
    server = gateway(client_ca="client_ca")
    report = _connectivity.run_checks(_settings(pki, server, tls_client_certificate=True))
    assert report["result"] == "SUCCESS"
    assert "presented and accepted" in report["layers"][3]["detail"]


def test_gateway_refusing_the_tls_client_certificate_by_http_403(pki, gateway):
    server = gateway(script=[lambda body: (403, b"client certificate refused")])
    server.get_status = 403
    for presented in (False, True):
        report = _connectivity.run_checks(_settings(pki, server, tls_client_certificate=presented))
        assert (report["result"], report["failed_layer"]) == ("CLIENT_CERT_REJECTED", "client_certificate")
        assert "HTTP 403" in _failed(report)["detail"]
    assert server.requests == []


def _error(code, short, detail, status=500):
    return lambda body: (status, fakes.error_signal(body, code, short, detail))


@pytest.mark.parametrize("script, result, layer, words", [
    (lambda body: (404, b"no such user"), "AUTH_FAILED", "authentication", "HTTP 404"),
    (_error("EBMS:0101", "FailedAuthentication", "UsernameToken: password digest does not match"),
     "AUTH_FAILED", "authentication", "password digest"),
    (_error("EBMS:0101", "FailedAuthentication", "certificate not registered for user: x"),
     "CLIENT_CERT_REJECTED", "client_certificate", "not registered"),
    (_error("EBMS:0010", "ProcessingModeMismatch", "To PartyId unknown"), "AS4_ERROR", "as4", "EBMS:0010"),
    (lambda body: (200, b"<!DOCTYPE html><html><body>proxy</body></html>"), "NO_SIGNAL", "as4", "not an AS4"),
])
def test_gateway_answers(pki, gateway, script, result, layer, words):
    report = _connectivity.run_checks(_settings(pki, gateway(script=[script])))
    assert (report["result"], report["failed_layer"]) == (result, layer)
    failed = _failed(report)
    assert words in failed["detail"] and len(failed["hint"]) > 40
    index = list(_connectivity.LAYERS).index(layer)
    assert _statuses(report)[:index] == ["pass"] * index
    assert _statuses(report)[index + 1:] == ["skipped"] * (5 - index)


def test_invalid_receipts(pki, gateway):
    gateway_cert = pki["items"]["gateway"]
    for script in (lambda body: (200, fakes.receipt(body, gateway_cert, tamper=True)),
                   lambda body: (200, fakes.receipt(body, gateway_cert, ref="another@x"))):
        report = _connectivity.run_checks(_settings(pki, gateway(script=[script])))
        assert (report["result"], report["failed_layer"]) == ("INVALID_SIGNAL", "as4")


def test_transient_failure_is_retried_with_a_new_message(pki, gateway):
    server = gateway(script=[lambda body: (503, b"busy"),
                             lambda body: (200, fakes.receipt(body, pki["items"]["gateway"]))])
    report = _connectivity.run_checks(_settings(pki, server, retries=1))
    assert report["result"] == "SUCCESS"
    first, second = (fakes.request_info(body)[0] for body in server.requests)
    assert first != second and report["message_id"] == second


def test_layers_stop_early(pki, gateway):
    server = gateway()
    report = _connectivity.run_checks(_settings(pki, server, layers=["dns", "tcp"]))
    assert report["ok"] and _statuses(report) == ["pass", "pass"] + ["skipped"] * 4
    assert server.requests == [] and report["message_id"] is None


def test_url_must_be_https(pki):
    with pytest.raises(ValueError):
        _connectivity.run_checks(_settings(pki, port=80, host="localhost", url="http://localhost:80"))


@pytest.mark.parametrize("detail,signer", [
    ("certificate not registered for user: the signature's X509IssuerSerial names another certificate", True),
    ("signature does not verify", True),
    ("UsernameToken: registration of the certificate is not complete; the gateway rejects every logon", False),
    ("UsernameToken: password digest does not match the gateway password", False),
])
def test_only_signature_refusals_count_against_the_client_certificate(detail, signer):
    # pylint: disable-next=protected-access
    assert _connectivity._is_signer_refusal({"code": "EBMS:0101", "detail": detail}) is signer
