"""Portal and gateway together over HTTPS, through the real store: what the portal does decides what the
gateway accepts. (The gateway's own checks are in test_gateway.py, against a fake store.)"""

import json
import subprocess
import sys

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

import as4_test_client

MPC = "urn:fdc:dk.skat.mft.DMS/import2/response"
SOAP = {"Content-Type": "application/soap+xml; charset=utf-8"}


class Signer:
    """Certificate and key of a PKI entity, for signing AS4 messages."""

    def __init__(self, entity):
        with open(entity["cert"], "rb") as handle:
            self.cert = x509.load_pem_x509_certificate(handle.read())
        with open(entity["key"], "rb") as handle:
            self.key = serialization.load_pem_private_key(handle.read(), password=None)
        self.tls = (entity["cert"], entity["key"])


def _send(box, gateway_user, password, signer, tls=None, **kwargs):
    envelope = as4_test_client.build(gateway_user, password, signer.cert, signer.key, **kwargs)
    return requests.post("%s/exchange/%s" % (box.info["gateway_url"], gateway_user),
                         data=as4_test_client.to_bytes(envelope), headers=SOAP, cert=tls,
                         verify=box.info["ca_bundle"], timeout=30)


def _error(answer):
    assert answer.status_code == 500, answer.text
    return as4_test_client.parse_error(answer.content)


def _ready(box, name="foces-01"):
    """Registered with AS4 through the portal; returns (credentials, signer)."""
    browser = box.client(name).activate()
    browser.register_and_wait()
    browser.put("/api/certificate/interfaces", {"interfaces": ["AS4"]})
    return browser.get("/api/certificate/gateway-credentials").json(), Signer(box.pki["entities"][name])


@pytest.fixture()
def box(sandbox):
    return sandbox(registration_delay=1)


def test_a_gateway_that_cannot_start_stops_the_sandbox(tmp_path, pki):
    """No sandbox without its gateway: the portal alone would let gateway tests pass by not running."""
    broken = json.loads(json.dumps(pki))
    (tmp_path / "garbage-key.pem").write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    broken["server"]["gateway_signing"]["key"] = str(tmp_path / "garbage-key.pem")
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "pki.json").write_text(json.dumps(broken))
    state = tmp_path / "state"
    try:
        result = subprocess.run([sys.executable, "-m", "dms_sandbox", "serve", "--state", str(state), "--pki",
                                 str(tmp_path / "pki"), "--detach", "--ttl", "60"],
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode != 0 and "before it was ready" in result.stderr, result.stdout + result.stderr
        assert "the AS4 gateway cannot start" in (state / "sandbox.log").read_text()
        assert not (state / "sandbox.json").exists()
    finally:
        subprocess.run([sys.executable, "-m", "dms_sandbox", "stop", "--state", str(state)], capture_output=True,
                       timeout=60, check=False)


def test_gateway_follows_the_portal_registration(sandbox):
    # Held (registration_stuck) while the pending answer is checked, so a slow machine cannot race it.
    box = sandbox("--registration-stuck", registration_delay=0.5)
    browser = box.client("foces-01").activate()
    signer = Signer(box.pki["entities"]["foces-01"])
    user = browser.user_id  # the UI form: what the gateway user will be
    assert _send(box, user, "anything", signer).status_code == 404  # never requested: unknown to the gateway

    assert browser.post("/api/certificate/registration", {}).status_code == 202
    code, _, detail = _error(_send(box, user, "anything", signer))
    assert code == "EBMS:0101" and "not complete" in detail  # pending: every logon is rejected

    box.set_faults(portal={"registration_stuck": False})
    browser.wait_registered()
    credentials = browser.get("/api/certificate/gateway-credentials").json()
    assert credentials["gateway_user"] == user
    assert _send(box, user, credentials["gateway_password"], signer).status_code == 404  # no AS4 yet
    browser.put("/api/certificate/interfaces", {"interfaces": ["AS4"]})
    assert _send(box, user, credentials["gateway_password"], signer).status_code == 200
    browser.put("/api/certificate/interfaces", {"interfaces": ["FTPS"]})
    assert _send(box, user, credentials["gateway_password"], signer).status_code == 404
    counters = box.counters()["gateway"]
    assert counters["accepted"] == 1 and counters["rejected"] == {"EBMS:0101": 1}


def test_signature_by_another_registered_certificate_is_refused(box):
    credentials, _ = _ready(box, "foces-01")
    _ready(box, "foces-02")
    mallory = Signer(box.pki["entities"]["foces-02"])
    code, _, detail = _error(_send(box, credentials["gateway_user"], credentials["gateway_password"], mallory))
    assert code == "EBMS:0101" and "not registered for user" in detail


def test_pull_takes_a_message_queued_with_the_admin_api(box):
    credentials, signer = _ready(box)
    user, password = credentials["gateway_user"], credentials["gateway_password"]
    empty = _send(box, user, password, signer, kind="pull", mpc=MPC)
    assert empty.status_code == 200 and as4_test_client.parse_error(empty.content)[0] == "EBMS:0006"
    box.admin("POST", "/mpc", {"gateway_user": user, "mpc": MPC,
                               "message": "<Notification xmlns='urn:test'>hello</Notification>"})
    assert box.counters()["gateway"]["waiting"] == {user: {MPC: 1}}
    pulled = _send(box, user, password, signer, kind="pull", mpc=MPC)
    assert pulled.status_code == 200
    soap, attachments = as4_test_client.split_answer(pulled.headers["Content-Type"], pulled.content)
    assert etree.fromstring(soap).find(".//{%s}UserMessage" % as4_test_client.NS["eb"]) is not None
    assert attachments[0][2] == b"<Notification xmlns='urn:test'>hello</Notification>"
    gateway = box.counters()["gateway"]
    assert gateway["waiting"] == {} and gateway["dequeued"] == 1


def test_replayed_message_is_refused_through_the_store(box):
    credentials, signer = _ready(box)
    envelope = as4_test_client.build(credentials["gateway_user"], credentials["gateway_password"], signer.cert,
                                     signer.key)
    url = "%s/exchange/%s" % (box.info["gateway_url"], credentials["gateway_user"])
    body = as4_test_client.to_bytes(envelope)
    first = requests.post(url, data=body, headers=SOAP, verify=box.info["ca_bundle"], timeout=30)
    second = requests.post(url, data=body, headers=SOAP, verify=box.info["ca_bundle"], timeout=30)
    assert first.status_code == 200
    assert _error(second)[0] == "EBMS:0101"


def test_required_client_certificate(sandbox):
    box = sandbox("--require-client-cert-gateway", registration_delay=1)
    credentials, signer = _ready(box)
    user, password = credentials["gateway_user"], credentials["gateway_password"]
    assert _send(box, user, password, signer).status_code == 403
    assert _send(box, user, password, signer, tls=signer.tls).status_code == 200
    other = box.pki["entities"]["foces-02"]
    assert _send(box, user, password, signer, tls=(other["cert"], other["key"])).status_code == 403
    unknown = box.pki["broken"]["unknown_ca"]
    with pytest.raises(requests.exceptions.ConnectionError):
        _send(box, user, password, signer, tls=(unknown["cert"], unknown["key"]))
