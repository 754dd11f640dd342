# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_connectivity against real sockets on 127.0.0.1: TLS servers with made-up certificates and a fake
AS4 gateway (scripted answers built from the request it received)."""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lxml import etree

from ansible_collections.dkcustoms.dms.plugins.module_utils import _as4, _connectivity, _gateway_probe, _oces
from ansible_collections.dkcustoms.dms.plugins.module_utils._errors import DmsError
from ansible_collections.dkcustoms.dms.plugins.module_utils._gateway_probe import Probe
from ansible_collections.dkcustoms.dms.plugins.module_utils._opt_connection import Connection

sys.path.insert(0, os.path.dirname(__file__))
import _as4_fakes as fakes  # noqa: E402  pylint: disable=wrong-import-position

PASSWORD = "Gw-Secret-Password-987"
USER = "CVR_12345678_UI_4b56e2c8-1f0a-4b1e-9a0e-5f2d8e3c1a7b"
CVR = "12345678"
NS = fakes.NS
NOTIFICATIONS = b'<Notifications xmlns="urn:test"><Notification>declaration 42 accepted</Notification></Notifications>'


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
        "client": fakes.issue(client_ca, "foces-01", dns=(), ips=(), cvr=CVR),
        "no_cvr": fakes.issue(client_ca, "not an OCES certificate", dns=(), ips=()),
        "other_client_ca": fakes.make_ca("Other client CA"),
        "gateway": fakes.issue(gateway_ca, "SKAT OIO Gateway Test", dns=(), ips=()),
        "new_gateway": fakes.issue(gateway_ca, "SKAT OIO Gateway Test", dns=(), ips=()),
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
        outcome = script(body)
        status, answer = outcome[0], outcome[-1]
        content_type = outcome[1] if len(outcome) == 3 else (
            "text/html" if answer.startswith(b"<!DOCTYPE html") else "application/soap+xml; charset=utf-8")
        self._send(status, answer, content_type)


def notification_answer(pki, signer="gateway", key_reference="bst"):
    """The fake gateway's answer to the notification query: a signed multipart/related user message."""
    def answer(body):
        content_type, data = fakes.response(body, pki["items"][signer], key_reference=key_reference,
                                            attachments=[("notifications@fake", "application/xml", NOTIFICATIONS)])
        return 200, content_type, data
    return answer


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
    server.script = script or [notification_answer(pki)]
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


_CONNECTION = ("ca_path", "validate_certs", "timeout", "retries")


def _settings(pki, server=None, port=None, host="localhost", certificate=None, private_key=None, **kwargs):
    """(certificate bundle, connection, probe): run_checks' arguments, as gateway_connectivity builds them."""
    items = pki["items"]
    port = port or server.server_address[1]
    bundle = _oces.Bundle(certificate or items["client"].cert, private_key or items["client"].key, [])
    connection = dict(environment="test", ca_path=pki["paths"]["server_ca"][0], validate_certs=True, timeout=5,
                      retries=2)
    connection.update((key, kwargs.pop(key)) for key in _CONNECTION if key in kwargs)
    values = dict(url="https://%s:%d" % (host, port), gateway_user=USER, gateway_password=PASSWORD,
                  signer_policy=_as4.SignerPolicy([items["gateway"].cert]))
    if "probe" in kwargs:
        kwargs["kind"] = kwargs.pop("probe")
    values.update(kwargs)
    return bundle, Connection.from_params(connection), Probe(**values)


def _statuses(report):
    return [layer["status"] for layer in report["layers"]]


def _failed(report):
    return [layer for layer in report["layers"] if layer["status"] == "fail"][0]


def test_success_every_layer(pki, gateway):
    server = gateway()
    report = _connectivity.run_checks(*_settings(pki, server))
    assert report["ok"] and report["result"] == "SUCCESS" and report["failed_layer"] is None
    assert [layer["name"] for layer in report["layers"]] == list(_gateway_probe.LAYERS)
    assert _statuses(report) == ["pass"] * 6
    assert all(layer["hint"] is None and isinstance(layer["duration_ms"], int) for layer in report["layers"])
    assert report["answer"]["kind"] == "response" and report["answer_signature"] == "verified"
    attachment = report["answer"]["attachments"][0]
    assert (attachment["content_type"], attachment["size"]) == ("application/xml", len(NOTIFICATIONS))
    assert "declaration 42 accepted" in attachment["preview"]
    as4 = report["layers"][-1]["detail"]
    assert "DMS.Import Notification for submitterId %s" % CVR in as4 and "1 attachment (application/xml" in as4
    assert "answer signature verified" in as4
    assert report["notification"]["submitter_id"] == CVR and report["pin"] is None
    assert len(server.requests) == 1
    assert PASSWORD not in json.dumps(report)


def test_captured_default_probe_request_is_the_reference_layout_and_xmlsec1_accepts_it(pki, gateway, tmp_path):
    """Issue 9 acceptance: one ebms-role header holding only the UsernameToken, one default header
    holding the signature whose references include the token's wsu:Id; xmlsec1 verifies it; the user
    message is DMS.Import (type string) / Notification with submitterId = the certificate's CVR and both
    dates."""
    server = gateway()
    report = _connectivity.run_checks(*_settings(pki, server))
    assert report["ok"], report
    captured = server.requests[0]
    doc = etree.fromstring(captured)
    ebms = doc.findall("S12:Header/wsse:Security[@S12:role='ebms']", NS)
    default = [h for h in doc.findall("S12:Header/wsse:Security", NS) if h.get("{%s}role" % NS["S12"]) is None]
    assert len(ebms) == 1 and len(default) == 1
    assert [etree.QName(child).localname for child in ebms[0]] == ["UsernameToken"]
    token_id = ebms[0][0].get(fakes.WSU_ID)
    uris = [r.get("URI") for r in default[0].findall("ds:Signature/ds:SignedInfo/ds:Reference", NS)]
    assert "#" + token_id in uris and len(uris) == 3
    checked = fakes.xmlsec1_verify(captured, pki["items"]["client"].cert_pem(), tmp_path)
    assert checked.returncode == 0 and "3/3" in checked.stderr, checked.stderr
    service = doc.find(".//eb:UserMessage/eb:CollaborationInfo/eb:Service", NS)
    assert (service.text, service.get("type")) == ("DMS.Import", "string")
    assert doc.findtext(".//eb:UserMessage/eb:CollaborationInfo/eb:Action", namespaces=NS) == "Notification"
    properties = {p.get("name"): p.text for p in doc.findall(".//eb:MessageProperties/eb:Property", NS)}
    assert properties["submitterId"] == CVR
    for name in ("dateFrom", "dateTo"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", properties[name])


def test_certificate_without_a_cvr_is_refused_before_anything_is_sent(pki, gateway):
    server = gateway()
    items = pki["items"]
    with pytest.raises(DmsError, match="carries no CVR"):
        _connectivity.run_checks(*_settings(pki, server, certificate=items["no_cvr"].cert,
                                            private_key=items["no_cvr"].key))
    assert server.requests == []
    report = _connectivity.run_checks(*_settings(pki, server, probe="ping", certificate=items["no_cvr"].cert,
                                                 private_key=items["no_cvr"].key,
                                                 signer_policy=_as4.SignerPolicy()))
    assert report["layers"][-2]["status"] == "pass"  # the ping needs no CVR


def test_answer_without_a_trusted_signer_passes_with_a_warning(pki, gateway):
    """Issue 10 #5: no receipt_signer - the success stands, never called verified."""
    report = _connectivity.run_checks(*_settings(pki, gateway(), signer_policy=_as4.SignerPolicy()))
    assert report["result"] == "SUCCESS" and report["answer_signature"] == "not_checked"
    assert any("origin is unproven" in warning for warning in report["warnings"])
    assert "answer signature not checked" in report["layers"][-1]["detail"]


def test_pin_is_offered_after_a_success_over_verified_tls_only(pki, gateway):
    server = gateway()
    report = _connectivity.run_checks(*_settings(pki, server, signer_policy=_as4.SignerPolicy(), pin_file="/x"))
    fingerprint = pki["items"]["gateway"].cert.fingerprint(_as4.hashes.SHA256()).hex()
    assert report["pin"] == {"url": "https://localhost:%d" % server.server_address[1],
                             "fingerprint_sha256": fingerprint, "subject": "CN=SKAT OIO Gateway Test"}
    unverified = _connectivity.run_checks(*_settings(pki, server, signer_policy=_as4.SignerPolicy(), pin_file="/x",
                                                     validate_certs=False))
    assert unverified["pin"] is None and any("not pinned" in w for w in unverified["warnings"])


def test_pinned_signer_refuses_a_changed_gateway_certificate(pki, gateway):
    pinned = pki["items"]["gateway"].cert.fingerprint(_as4.hashes.SHA256())
    policy = _as4.SignerPolicy(pinned=pinned)
    same = _connectivity.run_checks(*_settings(pki, gateway(), signer_policy=policy, pin_file="/etc/pins"))
    assert same["result"] == "SUCCESS" and same["answer_signature"] == "verified" and same["pin"] is None
    changed = _connectivity.run_checks(*_settings(pki, gateway(script=[notification_answer(pki, "new_gateway")]),
                                                  signer_policy=policy, pin_file="/etc/pins"))
    assert (changed["result"], changed["failed_layer"], changed["answer_signature"]) == (
        "INVALID_SIGNAL", "as4", "invalid")
    failed = _failed(changed)
    assert "not by the certificate pinned for this gateway" in failed["detail"]
    assert "remove the line for https://localhost" in failed["hint"] and "/etc/pins" in failed["hint"]


def test_pin_file_text():
    text = _gateway_probe.add_pin(None, "https://gw.example:6384/", "AB" * 32, "CN=Gateway,\nO=x")
    assert text.startswith("# Gateway answer signers") and "\n# CN=Gateway, O=x\n" in text
    assert _gateway_probe.parse_pins(text) == {"https://gw.example:6384": bytes.fromhex("ab" * 32)}
    more = _gateway_probe.add_pin(text, "https://other:1", "cd" * 32, "CN=Other")
    assert set(_gateway_probe.parse_pins(more)) == {"https://gw.example:6384", "https://other:1"}
    with pytest.raises(_gateway_probe.PinFileError, match="line 2"):
        _gateway_probe.parse_pins("# ok\nhttps://x sha1:abcd\n")


def test_dns_failure(pki, monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(_connectivity.socket, "getaddrinfo", fail)
    report = _connectivity.run_checks(*_settings(pki, port=6384, host="gateway.invalid"))
    assert (report["result"], report["failed_layer"]) == ("DNS_ERROR", "dns")
    assert _statuses(report) == ["fail"] + ["skipped"] * 5
    assert "getent hosts gateway.invalid" in _failed(report)["hint"]


def test_closed_port(pki):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    report = _connectivity.run_checks(*_settings(pki, port=port, host="127.0.0.1"))
    assert (report["result"], report["failed_layer"]) == ("CONNECT_ERROR", "tcp")
    assert "refused" in _failed(report)["detail"] and "port" in _failed(report)["hint"]


@pytest.mark.parametrize("cert, words", [
    ("unknown", "is not trusted by ca_path"),
    ("wrong_host", "wrong-host.invalid"),
    ("expired", "not valid now"),
])
def test_tls_failures(pki, gateway, cert, words):
    server = gateway(cert=cert)
    report = _connectivity.run_checks(*_settings(pki, server))
    assert (report["result"], report["failed_layer"]) == ("TLS_ERROR", "tls")
    assert words in _failed(report)["detail"]
    assert _statuses(report) == ["pass", "pass", "fail", "skipped", "skipped", "skipped"]
    assert server.requests == []


def test_certificate_expiring_soon_warns(pki, gateway):
    report = _connectivity.run_checks(*_settings(pki, gateway(cert="expiring"), layers=["tls"]))
    assert report["ok"] and "expires in" in report["warnings"][0]
    assert _statuses(report) == ["pass", "pass", "pass", "skipped", "skipped", "skipped"]


def test_client_certificate_required_none_sent(pki, gateway):
    report = _connectivity.run_checks(*_settings(pki, gateway(client_ca="other_client_ca")))
    assert (report["result"], report["failed_layer"]) == ("CLIENT_CERT_REJECTED", "client_certificate")
    assert "tls_client_certificate: true" in _failed(report)["hint"]


def test_client_certificate_from_a_ca_the_server_does_not_trust(pki, gateway):
    report = _connectivity.run_checks(*_settings(pki, gateway(client_ca="other_client_ca"),
                                                 tls_client_certificate=True))
    assert (report["result"], report["failed_layer"]) == ("CLIENT_CERT_REJECTED", "client_certificate")
    assert "does not trust the CA" in _failed(report)["detail"]


def test_client_certificate_accepted_in_tls(pki, gateway):
    server = gateway(client_ca="client_ca")
    report = _connectivity.run_checks(*_settings(pki, server, tls_client_certificate=True))
    assert report["result"] == "SUCCESS"
    assert "presented and accepted" in report["layers"][3]["detail"]


def test_gateway_refusing_the_message_by_http_403(pki, gateway):
    server = gateway(script=[lambda body: (403, b"client certificate refused")])
    server.get_status = 403
    for presented in (False, True):
        report = _connectivity.run_checks(*_settings(pki, server, tls_client_certificate=presented))
        assert (report["result"], report["failed_layer"]) == ("CLIENT_CERT_REJECTED", "client_certificate")
        failed = _failed(report)
        assert "message was refused with HTTP 403" in failed["detail"]
        assert "tls_client_certificate" in failed["hint"] and "allow-list" in failed["hint"]
    assert len(server.requests) == 2  # the message decides, not the GET


def test_http_403_to_the_get_probe_alone_is_not_a_certificate_refusal(pki, gateway):
    """A gateway (or a proxy) may refuse GET for reasons of its own; the message then succeeds."""
    server = gateway()
    server.get_status = 403
    report = _connectivity.run_checks(*_settings(pki, server))
    assert report["result"] == "SUCCESS", _failed(report)
    assert "GET probe was answered HTTP 403" in report["layers"][3]["detail"]
    unsent = _connectivity.run_checks(*_settings(pki, server, layers=["client_certificate"]))
    assert unsent["layers"][3]["status"] == "pass" and "not judged further" in unsent["layers"][3]["detail"]
    assert len(server.requests) == 1


def _error(code, short, detail, status=500):
    return lambda body: (status, fakes.error_signal(body, code, short, detail))


@pytest.mark.parametrize("script, result, layer, words", [
    (lambda body: (404, b"no such user"), "AUTH_FAILED", "authentication", "HTTP 404"),
    (lambda body: (401, b"unauthorized"), "AUTH_FAILED", "authentication", "HTTP 401"),
    (_error("EBMS:0101", "FailedAuthentication", "UsernameToken: password digest does not match"),
     "AUTH_FAILED", "authentication", "password digest"),
    (_error("EBMS:0101", "FailedAuthentication", "The security token could not be authenticated or authorized"),
     "AUTH_FAILED", "authentication", "security token could not be authenticated"),
    (lambda body: (500, fakes.security_fault("FailedAuthentication", "The security token could not be "
                                                                     "authenticated or authorized")),
     "AUTH_FAILED", "authentication", "WS-Security fault FailedAuthentication"),
    (_error("EBMS:0103", "PolicyNoncompliance", "no UsernameToken where expected"),
     "AUTH_FAILED", "authentication", "security header refused"),
    (_error("EBMS:0101", "FailedAuthentication", "certificate not registered for user: x"),
     "CLIENT_CERT_REJECTED", "client_certificate", "not registered"),
    (_error("EBMS:0101", "FailedAuthentication", "The signature or decryption was invalid"),
     "CLIENT_CERT_REJECTED", "client_certificate", "signature or decryption was invalid"),
    (lambda body: (500, fakes.security_fault("FailedCheck", "The signature or decryption was invalid")),
     "CLIENT_CERT_REJECTED", "client_certificate", "FailedCheck"),
    (_error("EBMS:0010", "ProcessingModeMismatch", "To PartyId unknown"), "AS4_ERROR", "as4", "EBMS:0010"),
    (lambda body: (200, b"<!DOCTYPE html><html><body>proxy</body></html>"), "NO_SIGNAL", "as4", "not an AS4"),
])
def test_gateway_answers(pki, gateway, script, result, layer, words):
    report = _connectivity.run_checks(*_settings(pki, gateway(script=[script])))
    assert (report["result"], report["failed_layer"]) == (result, layer)
    failed = _failed(report)
    assert words in failed["detail"] and len(failed["hint"]) > 40
    index = list(_gateway_probe.LAYERS).index(layer)
    assert _statuses(report)[:index] == ["pass"] * index
    assert _statuses(report)[index + 1:] == ["skipped"] * (5 - index)


@pytest.mark.parametrize("detail", [
    "UsernameToken: registration of the certificate is not complete; the gateway rejects every logon",
    "UsernameToken: password digest does not match the gateway password",
    "The security token could not be authenticated or authorized",
    "Authentication failed",
])
def test_authentication_hint_does_not_depend_on_the_gateways_wording(pki, gateway, detail):
    """One hint names every cause (password, registration still running, clock), whatever the words."""
    report = _connectivity.run_checks(*_settings(pki, gateway(script=[_error("EBMS:0101", "FailedAuthentication",
                                                                             detail)])))
    assert report["failed_layer"] == "authentication"
    hint = _failed(report)["hint"]
    assert hint == _connectivity._AUTH_HINT  # pylint: disable=protected-access
    for cause in ("gateway_password", "registration", "clock"):
        assert cause in hint


def test_token_in_the_wrong_header_fails_at_authentication_with_a_hint_naming_the_header(pki, gateway):
    script = _error("EBMS:0103", "PolicyNoncompliance", "whatever the gateway says about it")
    report = _connectivity.run_checks(*_settings(pki, gateway(script=[script])))
    assert (report["result"], report["failed_layer"]) == ("AUTH_FAILED", "authentication")
    assert 'wsse:Security header with S12:role="ebms"' in _failed(report)["hint"]


def test_invalid_receipts_name_the_check_that_refused_them(pki, gateway):
    """Issue 14 #13: not only the result code - which check rejected the answer."""
    gateway_cert = pki["items"]["gateway"]
    cases = (
        (lambda body: (200, fakes.receipt(body, gateway_cert, tamper=True)), "invalid",
         "signature does not verify"),
        (lambda body: (200, fakes.receipt(body, gateway_cert, ref="another@x")), "verified",
         "refers to message another@x, not the one sent"),
        (lambda body: (200, fakes.receipt(body, gateway_cert, drop_reference=True)), "verified",
         "NonRepudiationInformation digests do not match"),
        (lambda body: (200, fakes.receipt(body, pki["items"]["new_gateway"])), "invalid",
         "neither receipt_signer nor issued by it"),
    )
    for script, signature, words in cases:
        report = _connectivity.run_checks(*_settings(pki, gateway(script=[script]), probe="ping"))
        assert (report["result"], report["failed_layer"]) == ("INVALID_SIGNAL", "as4")
        assert report["answer_signature"] == signature, words
        assert any(words in problem for problem in report["answer"]["problems"]), report["answer"]["problems"]
        assert words in _failed(report)["detail"]


def test_transient_failure_is_retried_with_a_new_message(pki, gateway):
    server = gateway(script=[lambda body: (503, b"busy"), notification_answer(pki)])
    report = _connectivity.run_checks(*_settings(pki, server, retries=1))
    assert report["result"] == "SUCCESS"
    first, second = (fakes.request_info(body)[0] for body in server.requests)
    assert first != second and report["message_id"] == second


def test_layers_stop_early(pki, gateway):
    server = gateway()
    report = _connectivity.run_checks(*_settings(pki, server, layers=["dns", "tcp"]))
    assert report["ok"] and _statuses(report) == ["pass", "pass"] + ["skipped"] * 4
    assert server.requests == [] and report["message_id"] is None


def test_url_must_be_https(pki):
    with pytest.raises(DmsError, match="https://"):
        _connectivity.run_checks(*_settings(pki, port=80, host="localhost", url="http://localhost:80"))


@pytest.mark.parametrize("detail,signer", [
    ("certificate not registered for user: the signature's X509IssuerSerial names another certificate", True),
    ("signature does not verify", True),
    ("UsernameToken: registration of the certificate is not complete; the gateway rejects every logon", False),
    ("UsernameToken: password digest does not match the gateway password", False),
])
def test_only_signature_refusals_count_against_the_client_certificate(detail, signer):
    # pylint: disable-next=protected-access
    assert _connectivity._is_signer_refusal({"code": "EBMS:0101", "detail": detail}) is signer
