"""The AS4 gateway over real HTTPS, after a real portal registration (fixtures: tests/sandbox/conftest.py).

Certificates are registered through the portal API as the guide's manual procedure does; messages come
from as4_test_client.py; receipts are verified with signxml against `gateway_certificate` of sandbox.json.
"""

import datetime

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier

import as4_test_client as client

NS = client.NS
MPC = "urn:fdc:dk.skat.mft.DMS/import2/response"


class Member:
    """A PKI entity onboarded on one sandbox: certificate, key, gateway user and password."""

    def __init__(self, box, name, interfaces=("AS4",)):
        entry = box.entity(name)
        with open(entry["cert"], "rb") as handle:
            self.cert = x509.load_pem_x509_certificate(handle.read())
        with open(entry["key"], "rb") as handle:
            self.key = serialization.load_pem_private_key(handle.read(), password=None)
        self.entry, self.box = entry, box
        self.portal = box.client(name).activate()
        self.portal.register_and_wait()
        if interfaces:
            answer = self.portal.put("/api/certificate/interfaces", {"interfaces": list(interfaces)})
            assert answer.status_code == 200, answer.text
        credentials = self.portal.get("/api/certificate/gateway-credentials").json()
        self.gateway_user, self.password = credentials["gateway_user"], credentials["gateway_password"]


def message(member, signer=None, password=None, **kwargs):
    signer = signer or member
    return client.build(member.gateway_user, member.password if password is None else password,
                        signer.cert, signer.key, **kwargs)


def send(box, envelope, user, cert_entry=None):
    session = requests.Session()
    session.trust_env = False
    session.verify = box.info["ca_bundle"]
    if cert_entry:
        session.cert = (cert_entry["cert"], cert_entry["key"])
    body = envelope if isinstance(envelope, bytes) else client.to_bytes(envelope)
    return session.post(f"{box.info['gateway_url']}/exchange/{user}", data=body, timeout=30,
                        headers={"Content-Type": "application/soap+xml; charset=utf-8"})


def verified(answer, box):
    """The answer's envelope once its signature verifies against the sandbox's gateway certificate."""
    with open(box.info["gateway_certificate"], encoding="ascii") as handle:
        gateway_cert = handle.read()
    root = etree.fromstring(answer.content)
    XMLVerifier().verify(root, x509_cert=gateway_cert, expect_config=SignatureConfiguration(expect_references=2))
    return root


def ebms_error(answer, code, detail_part):
    assert answer.status_code == (200 if code == "EBMS:0006" else 500), answer.text
    got = client.parse_error(answer.content)
    assert got is not None and got[0] == code and detail_part in got[2], got
    return got


@pytest.fixture()
def onboarded(sandbox):
    box = sandbox()
    return box, Member(box, "foces-01")


def test_registered_ping_gets_a_verified_receipt_and_bad_messages_get_telling_errors(onboarded, pki):
    box, alice = onboarded
    request = message(alice)
    answer = send(box, request, alice.gateway_user)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/soap+xml")
    receipt = verified(answer, box)
    parts = receipt.findall(".//eb:Receipt/ebbp:NonRepudiationInformation/ebbp:MessagePartNRInformation", NS)
    assert {p.find("ds:Reference", NS).get("URI"): p.findtext("ds:Reference/ds:DigestValue", namespaces=NS)
            for p in parts} == client.signed_reference_digests(request)

    # The same bytes again: the nonce was used.
    ebms_error(send(box, request, alice.gateway_user), "EBMS:0101", "already used")
    ebms_error(send(box, message(alice, sign=False), alice.gateway_user), "EBMS:0103", "not signed")

    def tamper(envelope):
        envelope.find(".//eb:ConversationId", NS).text = "changed"
    ebms_error(send(box, message(alice, tamper=tamper), alice.gateway_user), "EBMS:0101",
               "signature does not verify")
    stranger = pki["entities"]["foces-02"]
    with open(stranger["key"], "rb") as handle:
        stranger_key = serialization.load_pem_private_key(handle.read(), password=None)
    with open(stranger["cert"], "rb") as handle:
        stranger_cert = x509.load_pem_x509_certificate(handle.read())
    forged = client.build(alice.gateway_user, alice.password, stranger_cert, stranger_key, key_reference="bst")
    ebms_error(send(box, forged, alice.gateway_user), "EBMS:0101", "certificate not registered for user")
    ebms_error(send(box, message(alice, password="wrong-password"), alice.gateway_user), "EBMS:0101",
               "password digest does not match")
    stale = client.xsd_datetime(client.utc_now() - datetime.timedelta(minutes=10))
    ebms_error(send(box, message(alice, created=stale), alice.gateway_user), "EBMS:0101", "wsu:Created")
    ebms_error(send(box, message(alice, service="DMS.Import2", action="Declaration.Submit"), alice.gateway_user),
               "EBMS:0010", "DMS.Import2")
    unknown = send(box, message(alice), "CVR_00000000_UI_00000000-0000-0000-0000-000000000000")
    assert unknown.status_code == 404

    gateway = box.counters()["gateway"]
    assert gateway["accepted"] == 1
    assert gateway["rejected"] == {"EBMS:0101": 5, "EBMS:0103": 1, "EBMS:0010": 1}


def test_pending_registration_is_rejected_and_as4_must_be_chosen(sandbox):
    box = sandbox(registration_delay=600)
    pending = box.client("foces-03").activate()
    assert pending.post("/api/certificate/registration", {}).status_code == 202
    # The gateway user is not readable yet; the gateway knows it (UI form: the portal user id).
    user = pending.user_id
    entry = box.entity("foces-03")
    with open(entry["cert"], "rb") as handle:
        cert = x509.load_pem_x509_certificate(handle.read())
    with open(entry["key"], "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), password=None)
    answer = send(box, client.build(user, "a-guess", cert, key), user)
    ebms_error(answer, "EBMS:0101", "registration of the certificate is not complete")

    box2 = sandbox()
    member = Member(box2, "foces-04", interfaces=())
    assert send(box2, message(member), member.gateway_user).status_code == 404  # AS4 not chosen yet
    member.portal.put("/api/certificate/interfaces", {"interfaces": ["AS4"]})
    assert send(box2, message(member), member.gateway_user).status_code == 200


def test_pull_takes_the_waiting_message_then_reports_an_empty_mpc(onboarded):
    box, alice = onboarded
    placed = box.admin("POST", "/mpc", {"gateway_user": alice.gateway_user, "mpc": MPC,
                                        "message": "<Answer xmlns='urn:test'>42</Answer>"})
    assert placed.status_code == 200, placed.text
    answer = send(box, message(alice, kind="pull", mpc=MPC), alice.gateway_user)
    assert answer.status_code == 200, answer.text
    root = verified(answer, box)
    assert root.findtext("S12:Body/{urn:test}Answer", namespaces=NS) == "42"
    assert root.find(".//eb:UserMessage", NS).get("mpc") == MPC
    empty = send(box, message(alice, kind="pull", mpc=MPC), alice.gateway_user)
    ebms_error(empty, "EBMS:0006", MPC)
    verified(empty, box)
    gateway = box.counters()["gateway"]
    assert gateway["dequeued"] == 1 and gateway["waiting"].get(alice.gateway_user, {}).get(MPC, 0) == 0


def test_client_certificate_checked_when_presented_and_required_by_flag(sandbox, pki):
    box = sandbox("--require-client-cert-gateway")
    alice = Member(box, "foces-05")
    missing = send(box, message(alice), alice.gateway_user)
    assert missing.status_code == 403 and "requires a TLS client certificate" in missing.text
    other = send(box, message(alice), alice.gateway_user, cert_entry=pki["entities"]["foces-06"])
    assert other.status_code == 403 and "not to gateway user" in other.text
    own = send(box, message(alice), alice.gateway_user, cert_entry=alice.entry)
    assert own.status_code == 200, own.text


def test_ur_form_gateway_user_as_the_portal_issues_it(sandbox):
    """The guide's screenshot shows CVR_…_UR_…: the client uses the gateway user the portal reports."""
    box = sandbox("--gateway-user-form", "UR")
    member = Member(box, "foces-01")
    assert "_UR_" in member.gateway_user
    answer = send(box, message(member), member.gateway_user, cert_entry=member.entry)
    assert answer.status_code == 200, answer.text
    verified(answer, box)
    computed = send(box, message(member), member.portal.user_id)  # the UI form was never issued here
    assert computed.status_code == 404
