"""The AS4 gateway over real HTTPS, after a real portal registration (fixtures: tests/sandbox/conftest.py).

Certificates are registered through the portal API as the guide's manual procedure does; messages come
from as4_test_client.py; answers are verified with signxml and with xmlsec1 against
`gateway_certificate` of sandbox.json.
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


def verified(answer, box, tmp_path=None):
    """(envelope, attachments) once the answer's signature verifies against the sandbox's gateway
    certificate - with signxml, and with xmlsec1 when ``tmp_path`` is given."""
    with open(box.info["gateway_certificate"], encoding="ascii") as handle:
        gateway_cert = handle.read()
    soap, attachments = client.split_answer(answer.headers["Content-Type"], answer.content)
    root = etree.fromstring(soap)
    XMLVerifier().verify(root, x509_cert=gateway_cert, expect_config=SignatureConfiguration(expect_references=2))
    if tmp_path is not None:
        checked = client.xmlsec1_verify(soap, box.info["gateway_certificate"], tmp_path)
        assert checked.returncode == 0 and "2/2" in checked.stderr, checked.stderr
    return root, attachments


def ebms_error(answer, code, detail_part):
    assert answer.status_code == (200 if code == "EBMS:0006" else 500), answer.text
    got = client.parse_error(answer.content)
    assert got is not None and got[0] == code and detail_part in got[2], got
    return got


@pytest.fixture()
def onboarded(sandbox):
    box = sandbox()
    return box, Member(box, "foces-01")


def test_registered_notification_query_gets_a_verified_answer_and_bad_messages_get_telling_errors(onboarded, pki,
                                                                                                  tmp_path):
    box, alice = onboarded
    placed = box.admin("POST", "/notifications", {"cvr": alice.entry["cvr"], "message": "declaration 42 accepted"})
    assert placed.status_code == 200, placed.text
    request = message(alice)
    answer = send(box, request, alice.gateway_user)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("multipart/related;")
    root, attachments = verified(answer, box, tmp_path)
    assert root.findtext(".//eb:UserMessage/eb:MessageInfo/eb:RefToMessageId", namespaces=NS) == \
        request.findtext(".//eb:MessageId", namespaces=NS)
    assert b"declaration 42 accepted" in attachments[0][2] and b'count="1"' in attachments[0][2]

    # The same bytes again: the nonce was used.
    ebms_error(send(box, request, alice.gateway_user), "EBMS:0101", "already used")
    ebms_error(send(box, message(alice, sign=False), alice.gateway_user), "EBMS:0103", "not signed")
    ebms_error(send(box, message(alice, token_header="default"), alice.gateway_user), "EBMS:0103",
               'reads it only from the wsse:Security header with S12:role="ebms"')

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
    ebms_error(send(box, message(alice, kind="user", service="DMS.Import2", service_type="string",
                                 action="Declaration.Submit"), alice.gateway_user), "EBMS:0010", "DMS.Import2")
    ebms_error(send(box, message(alice, kind="ping"), alice.gateway_user), "EBMS:0010",
               "test service is not configured")
    unknown = send(box, message(alice), "CVR_00000000_UI_00000000-0000-0000-0000-000000000000")
    assert unknown.status_code == 404

    gateway = box.counters()["gateway"]
    assert gateway["accepted"] == 1
    assert gateway["rejected"] == {"EBMS:0101": 5, "EBMS:0103": 2, "EBMS:0010": 2}


def test_test_service_and_answer_key_reference_are_selectable(sandbox, tmp_path):
    box = sandbox("--serve-test-service", "--answer-key-reference", "binary_security_token")
    assert box.info["serve_test_service"] and box.info["answer_key_reference"] == "binary_security_token"
    alice = Member(box, "foces-07")
    request = message(alice, kind="ping")
    answer = send(box, request, alice.gateway_user)
    assert answer.status_code == 200, answer.text
    receipt, _ = verified(answer, box, tmp_path)
    parts = receipt.findall(".//eb:Receipt/ebbp:NonRepudiationInformation/ebbp:MessagePartNRInformation", NS)
    assert {p.find("ds:Reference", NS).get("URI"): p.findtext("ds:Reference/ds:DigestValue", namespaces=NS)
            for p in parts} == client.signed_reference_digests(request)
    assert receipt.find(".//ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference", NS) is not None
    assert receipt.find(".//wsse:BinarySecurityToken", NS) is not None


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


def test_pull_takes_the_waiting_message_then_reports_an_empty_mpc(onboarded, tmp_path):
    box, alice = onboarded
    placed = box.admin("POST", "/mpc", {"gateway_user": alice.gateway_user, "mpc": MPC, "original_message_id": "decl-9",
                                        "message": "<Answer xmlns='urn:test'>42</Answer>"})
    assert placed.status_code == 200, placed.text
    answer = send(box, message(alice, kind="pull", mpc=MPC), alice.gateway_user)
    assert answer.status_code == 200, answer.text
    root, attachments = verified(answer, box, tmp_path)
    assert attachments[0][2] == b"<Answer xmlns='urn:test'>42</Answer>"
    user_message = root.find(".//eb:UserMessage", NS)
    assert user_message.get("mpc") == MPC
    assert user_message.findtext("eb:MessageProperties/eb:Property[@name='originalMessageId']", namespaces=NS) == "decl-9"
    empty = send(box, message(alice, kind="pull", mpc=MPC), alice.gateway_user)
    ebms_error(empty, "EBMS:0006", MPC)
    verified(empty, box, tmp_path)
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
