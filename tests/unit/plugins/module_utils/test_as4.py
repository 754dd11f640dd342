# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_as4: the request is checked against the reference client's layout and with code independent of
the signer (lxml C14N + cryptography, and xmlsec1); answers come from a fake gateway that signs with
signxml or by hand (see _as4_fakes)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import sys
import uuid

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier

from ansible_collections.dkcustoms.dms.plugins.module_utils import _as4

sys.path.insert(0, os.path.dirname(__file__))
import _as4_fakes as fakes  # noqa: E402  pylint: disable=wrong-import-position

NS = fakes.NS
PASSWORD = "Gw-Secret-Password-123"
USER = "CVR_12345678_UI_4b56e2c8-1f0a-4b1e-9a0e-5f2d8e3c1a7b"
CVR = "12345678"
ROLE = "{%s}role" % NS["S12"]


@pytest.fixture(scope="module")
def pki():
    oces_ca = fakes.make_ca("Test OCES CA")
    gateway_ca = fakes.make_ca("Test Gateway CA")
    return {
        "client": fakes.issue(oces_ca, "foces-01 (systemcertifikat)", dns=(), ips=(), cvr=CVR),
        "gateway_ca": gateway_ca,
        "gateway": fakes.issue(gateway_ca, "SKAT OIO Gateway Test", dns=(), ips=()),
        "gateway_sibling": fakes.issue(gateway_ca, "Another Service Of The Same CA", dns=(), ips=()),
        "impostor": fakes.issue(fakes.make_ca("Impostor CA"), "SKAT OIO Gateway Test", dns=(), ips=()),
        "self_signed": fakes.issue(None, "SKAT OIO Gateway Test", dns=(), ips=(), self_signed=True),
    }


def _query(service="DMS.Import"):
    date_from, date_to, zone = _as4.notification_window(5)
    return _as4.NotificationQuery(CVR, date_from, date_to, service=service, zone=zone)


def _request(pki, kind="notification", key_reference="issuer_serial", **kwargs):
    client = pki["client"]
    if kind == "notification":
        kwargs.setdefault("notification", _query())
    return _as4.build_request(kind, USER, PASSWORD, client.cert, client.key, key_reference=key_reference, **kwargs)


def _by_id(doc, ident):
    return doc.xpath("//*[@wsu:Id=$i]", namespaces=NS, i=ident)[0]


def _token(doc):
    return doc.find("S12:Header/wsse:Security[@S12:role='ebms']/wsse:UsernameToken", NS)


def test_password_digest_is_the_username_token_profile_formula():
    nonce, created = b"0123456789abcdef", "2026-11-28T12:00:00.000Z"
    expected = base64.b64encode(hashlib.sha1(nonce + created.encode() + b"pw").digest()).decode()
    assert _as4.password_digest(nonce, created, "pw") == expected


# --- the request: the reference client's layout -------------------------------------------------

def test_security_headers_are_laid_out_as_the_reference_client_writes_them(pki):
    """SecurityService.java: the UsernameToken alone in a header for actor "ebms", the signature in
    the default header, signing the token across headers by its wsu:Id (WSS4J prepends each header)."""
    doc = etree.fromstring(_request(pki).to_bytes())
    header = doc.find("S12:Header", NS)
    assert [etree.QName(child).localname for child in header] == ["Security", "Security", "Messaging"]
    default, ebms = header.findall("wsse:Security", NS)
    assert default.get(ROLE) is None and ebms.get(ROLE) == "ebms"
    for security in (default, ebms):
        assert security.get("{%s}mustUnderstand" % NS["S12"]) == "true"
    assert [etree.QName(child).localname for child in ebms] == ["UsernameToken"]
    assert [etree.QName(child).localname for child in default] == ["Signature"]
    token_id = ebms.find("wsse:UsernameToken", NS).get(fakes.WSU_ID)
    uris = [ref.get("URI") for ref in default.findall("ds:Signature/ds:SignedInfo/ds:Reference", NS)]
    assert uris == ["#" + doc.find("S12:Body", NS).get(fakes.WSU_ID),
                    "#" + header.find("eb:Messaging", NS).get(fakes.WSU_ID), "#" + token_id]


def test_notification_query_is_the_reference_clients(pki):
    """ExampleClient.RetrieveNotificationExample: DMS.Import / Notification, no payload, lang,
    submitterId, dateFrom, dateTo; As4DtoCreator: PartyId and Service type="string", ConversationId
    "placeholder", a bare UUID as MessageId, an empty PayloadInfo."""
    query = _query()
    message = _request(pki, notification=query)
    user = etree.fromstring(message.to_bytes()).find("S12:Header/eb:Messaging/eb:UserMessage", NS)
    assert uuid.UUID(user.findtext("eb:MessageInfo/eb:MessageId", namespaces=NS)) and "@" not in message.message_id
    for side, party, role in (("From", USER + "_AS4", "initiator"), ("To", "SKAT-MFT-AS4", "responder")):
        party_id = user.find("eb:PartyInfo/eb:%s/eb:PartyId" % side, NS)
        assert (party_id.text, party_id.get("type")) == (party, "string")
        assert user.findtext("eb:PartyInfo/eb:%s/eb:Role" % side, namespaces=NS).endswith("/200704/" + role)
    service = user.find("eb:CollaborationInfo/eb:Service", NS)
    assert (service.text, service.get("type")) == ("DMS.Import", "string")
    assert user.findtext("eb:CollaborationInfo/eb:Action", namespaces=NS) == "Notification"
    assert user.findtext("eb:CollaborationInfo/eb:ConversationId", namespaces=NS) == "placeholder"
    properties = {p.get("name"): p.text for p in user.findall("eb:MessageProperties/eb:Property", NS)}
    assert properties == {"lang": "EN", "submitterId": CVR, "dateFrom": query.date_from, "dateTo": query.date_to}
    assert list(user.find("eb:PayloadInfo", NS)) == []
    assert etree.fromstring(message.to_bytes()).find("S12:Body", NS).getchildren() == []


def test_notification_window_is_written_as_the_reference_client_writes_dates():
    """'2022-03-22T12:30:00.000': local time, milliseconds, no zone; the window ends now."""
    date_from, date_to, zone = _as4.notification_window(7)
    for value in (date_from, date_to):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", value), value
    assert zone in ("Europe/Copenhagen", "UTC")
    parse = _as4.datetime.datetime.fromisoformat
    assert (parse(date_to) - parse(date_from)).total_seconds() == 7 * 60
    with pytest.raises(_as4.As4Error):
        _as4.notification_window(0)


@pytest.mark.parametrize("service", _as4.NOTIFICATION_SERVICES)
def test_notification_services(pki, service):
    doc = etree.fromstring(_request(pki, notification=_query(service)).to_bytes())
    assert doc.findtext(".//eb:CollaborationInfo/eb:Service", namespaces=NS) == service


def test_ping_is_the_ebms3_test_service(pki):
    doc = etree.fromstring(_request(pki, kind="ping").to_bytes())
    service = doc.find(".//eb:CollaborationInfo/eb:Service", NS)
    assert service.text == _as4.TEST_SERVICE and service.get("type") is None  # a URI: no type
    assert doc.findtext(".//eb:CollaborationInfo/eb:Action", namespaces=NS) == _as4.TEST_ACTION
    assert doc.find(".//eb:MessageProperties", NS) is None
    ids = doc.xpath("//@wsu:Id", namespaces=NS)
    assert len(ids) == len(set(ids)) == 3


def test_username_token_has_digest_nonce_created_and_never_the_password(pki):
    message = _request(pki)
    data = message.to_bytes()
    assert PASSWORD.encode() not in data
    token = _token(etree.fromstring(data))
    nonce = base64.b64decode(token.findtext("wsse:Nonce", namespaces=NS))
    created = token.findtext("wsu:Created", namespaces=NS)
    password = token.find("wsse:Password", NS)
    assert password.get("Type").endswith("#PasswordDigest")
    assert token.find("wsse:Nonce", NS).get("EncodingType").endswith("#Base64Binary")
    assert created.endswith("Z") and len(nonce) == 16
    assert password.text == _as4.password_digest(nonce, created, PASSWORD)
    assert token.findtext("wsse:Username", namespaces=NS) == USER


@pytest.mark.parametrize("key_reference", _as4.KEY_REFERENCES)
def test_signature_checked_without_signxml(pki, key_reference):
    """Digests and SignatureValue recomputed with lxml exclusive C14N + cryptography."""
    message = _request(pki, key_reference=key_reference)
    doc = etree.fromstring(message.to_bytes())
    signature = doc.find("S12:Header/wsse:Security/ds:Signature", NS)
    signed_info = signature.find("ds:SignedInfo", NS)
    assert signed_info.find("ds:CanonicalizationMethod", NS).get("Algorithm") == fakes.EXC_C14N
    assert signed_info.find("ds:SignatureMethod", NS).get("Algorithm") == fakes.RSA_SHA256
    wanted = [doc.find("S12:Body", NS), doc.find("S12:Header/eb:Messaging", NS), _token(doc)]
    references = signed_info.findall("ds:Reference", NS)
    assert [ref.get("URI") for ref in references] == ["#" + el.get(fakes.WSU_ID) for el in wanted]
    for ref, element in zip(references, wanted):
        assert ref.find("ds:DigestMethod", NS).get("Algorithm") == fakes.SHA256
        assert [t.get("Algorithm") for t in ref.findall("ds:Transforms/ds:Transform", NS)] == [fakes.EXC_C14N]
        digest = hashlib.sha256(etree.tostring(element, method="c14n", exclusive=True)).digest()
        assert ref.findtext("ds:DigestValue", namespaces=NS) == base64.b64encode(digest).decode()
    value = base64.b64decode(signature.findtext("ds:SignatureValue", namespaces=NS))
    pki["client"].cert.public_key().verify(value, etree.tostring(signed_info, method="c14n", exclusive=True),
                                           padding.PKCS1v15(), hashes.SHA256())
    assert message.references == [(r.get("URI"), r.findtext("ds:DigestValue", namespaces=NS)) for r in references]


@pytest.mark.parametrize("kind", _as4.PROBES)
def test_request_verifies_with_xmlsec1(pki, kind, tmp_path):
    """libxmlsec1 shares no code with signxml; it must accept what we send."""
    message = _request(pki, kind=kind, **({"mpc": "urn:x"} if kind == "pull" else {}))
    result = fakes.xmlsec1_verify(message.to_bytes(), pki["client"].cert_pem(), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "SignedInfo References (ok/all): 3/3" in result.stderr


def test_xmlsec1_refuses_a_request_changed_after_signing(pki, tmp_path):
    """The control case: the xmlsec1 check can fail."""
    data = _request(pki).to_bytes().replace(b">DMS.Import<", b">DMS.Export2<")
    result = fakes.xmlsec1_verify(data, pki["client"].cert_pem(), tmp_path)
    assert result.returncode != 0 and "3/3" not in result.stderr


def test_key_info_issuer_serial(pki):
    doc = etree.fromstring(_request(pki).to_bytes())
    serial = doc.find(".//ds:KeyInfo/wsse:SecurityTokenReference/ds:X509Data/ds:X509IssuerSerial", NS)
    assert serial.findtext("ds:X509IssuerName", namespaces=NS) == "CN=Test OCES CA,O=Test CAs,C=DK"
    assert serial.findtext("ds:X509SerialNumber", namespaces=NS) == str(pki["client"].cert.serial_number)
    assert doc.find(".//wsse:BinarySecurityToken", NS) is None


def test_key_info_binary_security_token(pki):
    doc = etree.fromstring(_request(pki, key_reference="binary_security_token").to_bytes())
    uri = doc.find(".//ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference", NS).get("URI")
    token = _by_id(doc, uri[1:])
    assert token.tag == fakes.q("wsse", "BinarySecurityToken") and token.getparent().get(ROLE) is None
    assert base64.b64decode(token.text) == pki["client"].cert.public_bytes(serialization.Encoding.DER)


def test_signxml_verifies_the_request(pki):
    data = _request(pki).to_bytes()
    config = SignatureConfiguration(expect_references=3, location="./{%s}Header/{%s}Security/" % (NS["S12"], NS["wsse"]))
    results = XMLVerifier().verify(data, x509_cert=pki["client"].cert, expect_config=config)
    assert len(results) == 3


def test_pull_request_defaults_to_the_reference_clients_mpc(pki):
    message = _request(pki, kind="pull")
    doc = etree.fromstring(message.to_bytes())
    pull = doc.find("S12:Header/eb:Messaging/eb:SignalMessage/eb:PullRequest", NS)
    assert pull.get("mpc") == "urn:fdc:dk.skat.mft.DMS/import2/response" == _as4.DEFAULT_MPC
    assert doc.find(".//eb:UserMessage", NS) is None
    assert message.kind == "pull"


def test_unknown_probe_service_and_key_reference(pki):
    with pytest.raises(_as4.As4Error):
        _request(pki, kind="peek")
    with pytest.raises(_as4.As4Error):
        _request(pki, key_reference="thumbprint")
    with pytest.raises(_as4.As4Error):
        _request(pki, notification=_as4.NotificationQuery(CVR, "a", "b", service="DMS.Shared2"))


# --- answers: trust ----------------------------------------------------------------------------

def _policy(pki, signers="gateway", **kwargs):
    certificates = {"gateway": [pki["gateway"].cert], "ca": [pki["gateway_ca"].cert], None: []}[signers]
    return _as4.SignerPolicy(certificates, **kwargs)


def _classify(pki, message, body, status=200, signers="gateway", content_type="application/soap+xml", **kwargs):
    return _as4.classify_answer(status, content_type, body, message, _policy(pki, signers, **kwargs))


def test_valid_receipt(pki):
    message = _request(pki, kind="ping")
    answer = _classify(pki, message, fakes.receipt(message.to_bytes(), pki["gateway"]))
    assert (answer.kind, answer.valid, answer.problems) == ("receipt", True, [])
    assert answer.answer_signature == "verified"
    assert answer.ref_to_message_id == message.message_id
    assert answer.signer == "CN=SKAT OIO Gateway Test"


def test_receipt_signer_may_be_the_issuing_ca(pki):
    message = _request(pki, kind="ping")
    answer = _classify(pki, message, fakes.receipt(message.to_bytes(), pki["gateway"]), signers="ca")
    assert answer.valid and answer.answer_signature == "verified"


@pytest.mark.parametrize("signed_by", ["signxml", "hand"])
def test_issuer_serial_answer_is_verified_with_the_signer_certificate(pki, signed_by):
    """Holodeck names its signing certificate by issuer and serial; Java writes the issuer with
    spaces after the commas (the hand signer does), so the names are compared, not the strings."""
    message = _request(pki, kind="ping")
    body = fakes.receipt(message.to_bytes(), pki["gateway"], key_reference="issuer_serial", signed_by=signed_by)
    assert b"CN=Test Gateway CA, O=Test CAs, C=DK" in body
    answer = _classify(pki, message, body)
    assert (answer.answer_signature, answer.problems) == ("verified", [])


def test_issuer_serial_answer_cannot_be_checked_against_a_ca_alone(pki):
    message = _request(pki, kind="ping")
    body = fakes.receipt(message.to_bytes(), pki["gateway"], key_reference="issuer_serial")
    answer = _classify(pki, message, body, signers="ca")
    assert answer.answer_signature == "invalid"
    assert "give the gateway's signing certificate itself" in answer.problems[0]
    unchecked = _classify(pki, message, body, signers=None)
    assert (unchecked.answer_signature, unchecked.problems) == ("not_checked", [])
    assert "could not be checked" in unchecked.warnings[0]


@pytest.mark.parametrize("key_reference", ["bst", "issuer_serial"])
def test_receipt_signed_without_signxml_is_accepted(pki, key_reference, tmp_path):
    """Issue 14 #2: a receipt signed by code that shares nothing with signxml (lxml C14N +
    cryptography, another prefix, Java-style names) verifies - and xmlsec1 agrees it is valid."""
    message = _request(pki, kind="ping")
    body = fakes.receipt(message.to_bytes(), pki["gateway"], key_reference=key_reference, signed_by="hand")
    assert b"<dsig:Signature" in body
    checked = fakes.xmlsec1_verify(body, pki["gateway"].cert_pem(), tmp_path)
    assert checked.returncode == 0, checked.stderr
    answer = _classify(pki, message, body)
    assert (answer.kind, answer.answer_signature, answer.problems) == ("receipt", "verified", [])


def test_answer_without_receipt_signer_is_not_checked_never_verified(pki):
    """Issue 10 #5: without receipt_signer, a receipt signed by a self-made certificate is not
    'verified'; it passes with answer_signature not_checked and a warning that its origin is unproven."""
    message = _request(pki, kind="ping")
    body = fakes.receipt(message.to_bytes(), pki["self_signed"])
    answer = _classify(pki, message, body, signers=None)
    assert (answer.kind, answer.valid, answer.answer_signature) == ("receipt", True, "not_checked")
    assert "origin is unproven" in answer.warnings[0]
    trusted = _classify(pki, message, body, signers="gateway")
    assert trusted.answer_signature == "invalid"
    assert "neither receipt_signer nor issued by it" in trusted.problems[0]


def test_self_signed_answer_is_not_verified_by_a_ca(pki):
    message = _request(pki, kind="ping")
    answer = _classify(pki, message, fakes.receipt(message.to_bytes(), pki["self_signed"]), signers="ca")
    assert answer.answer_signature == "invalid" and not answer.valid


def _pin(pki, kind):
    """The option a pin of KIND sets, for the test gateway's signing certificate."""
    if kind == "subject":
        return {"subject": _as4.parse_name("CN=SKAT OIO Gateway Test")}
    digest = pki["gateway"].cert.fingerprint(hashes.SHA256())
    return {"fingerprint": _as4.parse_fingerprint(":".join("%02X" % b for b in digest))}


@pytest.mark.parametrize("kind, refusal", [("subject", "not by receipt_signer_subject"),
                                           ("fingerprint", "receipt_signer_fingerprint")])
def test_a_ca_as_receipt_signer_can_be_pinned(pki, kind, refusal):
    """Issue 10 #9: the CA issued another certificate too; a subject or fingerprint pin refuses it."""
    message = _request(pki, kind="ping")
    sibling = fakes.receipt(message.to_bytes(), pki["gateway_sibling"])
    assert _classify(pki, message, sibling, signers="ca").answer_signature == "verified"  # the CA alone
    refused = _classify(pki, message, sibling, signers="ca", **_pin(pki, kind))
    assert refused.answer_signature == "invalid" and refusal in refused.problems[0]
    accepted = _classify(pki, message, fakes.receipt(message.to_bytes(), pki["gateway"]), signers="ca",
                         **_pin(pki, kind))
    assert accepted.answer_signature == "verified"


def test_pinned_fingerprint_is_trusted_and_a_different_signer_refused(pki):
    message = _request(pki, kind="ping")
    pinned = pki["gateway"].cert.fingerprint(hashes.SHA256())
    answer = _classify(pki, message, fakes.receipt(message.to_bytes(), pki["gateway"]), signers=None, pinned=pinned)
    assert answer.answer_signature == "verified"
    changed = _classify(pki, message, fakes.receipt(message.to_bytes(), pki["impostor"]), signers=None, pinned=pinned)
    assert changed.answer_signature == "invalid" and "pinned" in changed.problems[0]


def test_comment_inside_a_signed_text_does_not_shorten_it(pki):
    """Issue 10 #8: the gateway signed RefToMessageId '<ours>EXTRA'; a comment slipped in after
    '<ours>' leaves the signature valid (C14N drops comments) but must not make it read as '<ours>'."""
    message = _request(pki, kind="ping")
    body = fakes.receipt(message.to_bytes(), pki["gateway"], ref_text=message.message_id + "EXTRA")
    sneaky = body.replace(("%sEXTRA<" % message.message_id).encode(),
                          ("%s<!-- -->EXTRA<" % message.message_id).encode())
    assert sneaky != body
    answer = _classify(pki, message, sneaky)
    assert answer.answer_signature == "verified"  # the comment did not break the signature ...
    assert answer.ref_to_message_id == message.message_id + "EXTRA"  # ... nor shorten the value
    assert not answer.valid and "not the one sent" in answer.problems[0]


def test_values_are_read_from_what_the_signature_covers(pki):
    """A copy of the signed eb:Messaging hidden elsewhere and a forged one in its place: the forged
    one is not covered, and nothing is read from it."""
    message = _request(pki, kind="ping")
    doc = etree.fromstring(fakes.receipt(message.to_bytes(), pki["gateway"], ref="someone-else"))
    messaging = doc.find("S12:Header/eb:Messaging", NS)
    hidden = etree.SubElement(doc.find("S12:Header/wsse:Security", NS), "{urn:evil}Wrapper")
    hidden.append(etree.fromstring(etree.tostring(messaging)))
    messaging.set(fakes.WSU_ID, "forged")
    messaging.find(".//eb:RefToMessageId", NS).text = message.message_id
    answer = _classify(pki, message, etree.tostring(doc))
    assert answer.answer_signature == "invalid"
    assert any("does not cover its Body and eb:Messaging" in p for p in answer.problems)


def test_tampered_receipt(pki):
    message = _request(pki, kind="ping")
    answer = _classify(pki, message, fakes.receipt(message.to_bytes(), pki["gateway"], tamper=True))
    assert answer.kind == "receipt" and answer.answer_signature == "invalid"
    assert "does not verify" in answer.problems[0]


def test_receipt_from_an_impostor(pki):
    message = _request(pki, kind="ping")
    answer = _classify(pki, message, fakes.receipt(message.to_bytes(), pki["impostor"]))
    assert not answer.valid and "neither receipt_signer nor issued by it" in answer.problems[0]


def test_receipt_for_another_message(pki):
    message = _request(pki, kind="ping")
    answer = _classify(pki, message, fakes.receipt(message.to_bytes(), pki["gateway"], ref="other@x"))
    assert answer.answer_signature == "verified"
    assert not answer.valid and "not the one sent" in answer.problems[0]


def test_receipt_with_other_digests(pki):
    message = _request(pki, kind="ping")
    answer = _classify(pki, message, fakes.receipt(message.to_bytes(), pki["gateway"], drop_reference=True))
    assert not answer.valid and "NonRepudiationInformation" in answer.problems[0]


def test_unsigned_receipt(pki):
    message = _request(pki, kind="ping")
    body = fakes.receipt(message.to_bytes(), pki["gateway"], sign=False)
    answer = _classify(pki, message, body)
    assert answer.answer_signature == "invalid" and "not signed" in answer.problems[0]
    unchecked = _classify(pki, message, body, signers=None)
    assert (unchecked.answer_signature, unchecked.valid) == ("not_checked", True)


def test_error_signal(pki):
    message = _request(pki)
    body = fakes.error_signal(message.to_bytes(), "EBMS:0101", "FailedAuthentication", "UsernameToken: bad digest")
    answer = _classify(pki, message, body, status=500)
    assert answer.kind == "error" and answer.answer_signature == "not_checked"
    assert answer.ebms_error == {
        "code": "EBMS:0101", "severity": "failure", "short_description": "FailedAuthentication",
        "category": "Processing", "ref_to_message_in_error": message.message_id,
        "description": "FailedAuthentication: UsernameToken: bad digest", "detail": "UsernameToken: bad digest"}


def test_empty_pull_is_a_signed_warning(pki):
    message = _request(pki, kind="pull", mpc="urn:x")
    body = fakes.error_signal(message.to_bytes(), "EBMS:0006", "EmptyMessagePartitionChannel", "empty",
                              severity="warning", signer=pki["gateway"], fault=False)
    answer = _classify(pki, message, body)
    assert (answer.kind, answer.valid, answer.answer_signature) == ("empty_pull", True, "verified")
    body = fakes.error_signal(message.to_bytes(), "EBMS:0006", "EmptyMessagePartitionChannel", "empty",
                              severity="warning", signer=pki["impostor"], fault=False)
    assert not _classify(pki, message, body).valid


def test_empty_pull_code_on_a_notification_is_an_error(pki):
    message = _request(pki)
    body = fakes.error_signal(message.to_bytes(), "EBMS:0006", "EmptyMessagePartitionChannel", "x", fault=False)
    assert _classify(pki, message, body).kind == "error"


def test_plain_soap_fault(pki):
    body = (b'<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope"><S12:Body><S12:Fault>'
            b'<S12:Code><S12:Value>S12:Receiver</S12:Value></S12:Code><S12:Reason><S12:Text>boom</S12:Text>'
            b'</S12:Reason></S12:Fault></S12:Body></S12:Envelope>')
    answer = _classify(pki, _request(pki), body, status=500)
    assert answer.kind == "soap_fault" and "boom" in answer.detail and answer.security_fault is None


@pytest.mark.parametrize("code", ["FailedAuthentication", "FailedCheck", "InvalidSecurity"])
def test_ws_security_fault_code_is_read_from_the_subcode(pki, code):
    answer = _classify(pki, _request(pki), fakes.security_fault(code, "refused"), status=500)
    assert (answer.kind, answer.security_fault) == ("soap_fault", code)


@pytest.mark.parametrize("body, words", [
    (b"<!DOCTYPE html><html><body><p>Please log on</p></body></html>", "not a SOAP 1.2 envelope"),
    (b"<html><body>unclosed", "not XML"),
    (b"", "empty body"),
    (b'<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope"><S12:Body/></S12:Envelope>',
     "without eb:Messaging"),
])
def test_not_as4(pki, body, words):
    answer = _classify(pki, _request(pki), body)
    assert answer.kind == "not_as4" and words in answer.detail


def test_external_entities_are_not_resolved(pki, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    body = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file://%s">]><x>&e;</x>' % secret).encode()
    answer = _classify(pki, _request(pki), body)
    assert answer.kind == "not_as4" and "TOP-SECRET-CONTENT" not in answer.detail


# --- answers: SOAP with attachments ------------------------------------------------------------

NOTIFICATIONS = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Notifications xmlns="urn:test:notifications">'
                 b'<Notification id="1">' + b"x" * 400 + b'</Notification></Notifications>\n')
STATUS = (b'<st:StatusResponse xmlns:st="urn:dk:skat:mft:DMS.declaration.status:1"><st:Code>OK</st:Code>'
          b'<st:Message>Declaration received</st:Message></st:StatusResponse>')


@pytest.mark.parametrize("signed_by", ["signxml", "hand"])
def test_multipart_response_to_the_notification_query(pki, signed_by):
    message = _request(pki)
    content_type, body = fakes.response(message.to_bytes(), pki["gateway"], signed_by=signed_by,
                                        attachments=[("notifications@gw", "application/xml", NOTIFICATIONS),
                                                     ("status@gw", "application/xml", STATUS)])
    answer = _classify(pki, message, body, content_type=content_type)
    assert (answer.kind, answer.answer_signature, answer.problems) == ("response", "verified", [])
    assert answer.ref_to_message_id == message.message_id
    assert (answer.service, answer.action) == ("DMS.Import", "Notification")
    first, second = answer.as_dict()["attachments"]
    assert (first["content_id"], first["content_type"]) == ("notifications@gw", "application/xml")
    assert first["size"] == len(NOTIFICATIONS)
    assert first["preview"].startswith('<?xml version="1.0"') and len(first["preview"]) <= 203
    assert second["status"] == {"code": "OK", "message": "Declaration received"}
    # signxml cannot sign cid: references, so only the hand-signed answer covers its attachments.
    assert [first["signed"], second["signed"]] == ([True, True] if signed_by == "hand" else [False, False])
    if signed_by == "signxml":
        assert any("not covered by the answer's signature" in w for w in answer.warnings)


@pytest.mark.parametrize("content_type, data", [
    ("application/xml", b'<a  b="1"><!-- c --><d/></a>'),
    ("text/plain", b"line one\nline two\n"),
    ("application/octet-stream", b"\x00\xff\r\n\x10binary"),
])
def test_attachments_signed_with_the_swa_content_transform(pki, content_type, data):
    message = _request(pki)
    ctype, body = fakes.response(message.to_bytes(), pki["gateway"], signed_by="hand",
                                 attachments=[("a1@gw", content_type, data)])
    answer = _classify(pki, message, body, content_type=ctype)
    assert (answer.answer_signature, answer.problems) == ("verified", [])
    assert answer.attachments[0].data == data and answer.attachments[0].signed is True
    altered = body.replace(data, data[:-1] + b"!")
    assert altered != body
    broken = _classify(pki, message, altered, content_type=ctype)
    assert broken.answer_signature == "invalid" and "does not verify" in broken.problems[0]


def test_multipart_without_start_takes_the_first_part(pki):
    message = _request(pki, kind="ping")
    soap = fakes.receipt(message.to_bytes(), pki["gateway"])
    content_type, body = fakes.multipart(soap, [("x@gw", "text/plain", b"hello")], start=False)
    answer = _classify(pki, message, body, content_type=content_type)
    assert answer.kind == "receipt" and answer.attachments[0].data == b"hello"


def test_multipart_whose_start_part_is_missing_is_not_as4(pki):
    message = _request(pki)
    content_type, body = fakes.multipart(b"<x/>", [])
    content_type = content_type.replace('start="<', 'start="<missing-')
    answer = _classify(pki, message, body, content_type=content_type)
    assert answer.kind == "not_as4" and "start part" in answer.detail


def test_multipart_without_boundary_is_not_as4(pki):
    answer = _classify(pki, _request(pki), b"--x\r\n\r\n<a/>\r\n--x--", content_type="multipart/related")
    assert answer.kind == "not_as4" and "cannot be read" in answer.detail


def test_pulled_multipart_message_reports_its_original_message(pki):
    """As4ClientInstance.tryGetReftoOriginalID: the first property is the original message's id."""
    message = _request(pki, kind="pull")
    content_type, body = fakes.response(message.to_bytes(), pki["gateway"], kind="pulled",
                                        properties=[("originalMessageId", "decl-42"), ("lang", "EN")],
                                        attachments=[("p1@gw", "application/xml", STATUS)])
    answer = _classify(pki, message, body, content_type=content_type)
    assert (answer.kind, answer.valid) == ("user_message", True)
    assert answer.pulled_message_id == answer.message_id and answer.original_message_id == "decl-42"
    assert answer.as_dict()["properties"] == {"originalMessageId": "decl-42", "lang": "EN"}
    assert answer.as_dict()["attachments"][0]["status"]["code"] == "OK"


def test_response_to_another_message_is_a_problem(pki):
    message = _request(pki)
    content_type, body = fakes.response(message.to_bytes(), pki["gateway"], ref="someone-else")
    answer = _classify(pki, message, body, content_type=content_type)
    assert answer.kind == "response" and "not the one sent" in answer.problems[0]


def test_parse_name_reads_java_and_openssl_forms():
    expected = _as4.parse_name("CN=Den Danske Stat OCES udstedende-CA 1,OU=Test - cti,O=Den Danske Stat,C=DK")
    for text in ("CN=Den Danske Stat OCES udstedende-CA 1, OU=Test - cti, O=Den Danske Stat, C=DK",
                 "C=DK,O=Den Danske Stat,OU=Test - cti,CN=Den Danske Stat OCES udstedende-CA 1"):
        assert _as4._same_name(_as4.parse_name(text), expected)  # pylint: disable=protected-access
    assert _as4.parse_name("not a name") is None


def test_parse_fingerprint():
    raw = bytes(range(32))
    assert _as4.parse_fingerprint(raw.hex()) == raw
    assert _as4.parse_fingerprint("SHA256:" + ":".join("%02X" % b for b in raw)) == raw
    with pytest.raises(ValueError):
        _as4.parse_fingerprint("abcd")
