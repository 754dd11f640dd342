# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_as4: the request is checked with code independent of the signer (lxml C14N + cryptography), the
answer classification against receipts/signals a fake gateway signs with signxml."""

from __future__ import annotations

import base64
import hashlib
import os
import sys

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


@pytest.fixture(scope="module")
def pki():
    oces_ca = fakes.make_ca("Test OCES CA")
    gateway_ca = fakes.make_ca("Test Gateway CA")
    return {
        "client": fakes.issue(oces_ca, "foces-01 (systemcertifikat)", dns=(), ips=()),
        "gateway_ca": gateway_ca,
        "gateway": fakes.issue(gateway_ca, "SKAT OIO Gateway Test", dns=(), ips=()),
        "impostor": fakes.issue(fakes.make_ca("Impostor CA"), "SKAT OIO Gateway Test", dns=(), ips=()),
    }


def _request(pki, kind="ping", key_reference="issuer_serial", **kwargs):
    client = pki["client"]
    return _as4.build_request(kind, USER, PASSWORD, client.cert, client.key, key_reference=key_reference, **kwargs)


def _by_id(doc, ident):
    return doc.xpath("//*[@wsu:Id=$i]", namespaces=NS, i=ident)[0]


def test_password_digest_is_the_username_token_profile_formula():
    nonce, created = b"0123456789abcdef", "2026-11-28T12:00:00.000Z"
    expected = base64.b64encode(hashlib.sha1(nonce + created.encode() + b"pw").digest()).decode()
    assert _as4.password_digest(nonce, created, "pw") == expected


def test_ping_header_values(pki):
    message = _request(pki)
    doc = etree.fromstring(message.to_bytes())
    messaging = doc.find("S12:Header/eb:Messaging", NS)
    assert messaging.get(q_attr("S12", "mustUnderstand")) == "true"
    user_message = messaging.find("eb:UserMessage", NS)
    assert user_message.findtext("eb:MessageInfo/eb:MessageId", namespaces=NS) == message.message_id
    party_from = user_message.find("eb:PartyInfo/eb:From/eb:PartyId", NS)
    assert (party_from.text, party_from.get("type")) == (USER + "_AS4", "string")
    assert user_message.findtext("eb:PartyInfo/eb:From/eb:Role", namespaces=NS).endswith("/200704/initiator")
    assert user_message.findtext("eb:PartyInfo/eb:To/eb:PartyId", namespaces=NS) == "SKAT-MFT-AS4"
    assert user_message.findtext("eb:PartyInfo/eb:To/eb:Role", namespaces=NS).endswith("/200704/responder")
    assert user_message.findtext("eb:CollaborationInfo/eb:Service", namespaces=NS) == _as4.TEST_SERVICE
    assert user_message.findtext("eb:CollaborationInfo/eb:Action", namespaces=NS) == _as4.TEST_ACTION
    assert doc.find("S12:Header/wsse:Security", NS).get(q_attr("S12", "mustUnderstand")) == "true"
    ids = doc.xpath("//@wsu:Id", namespaces=NS)
    assert len(ids) == len(set(ids)) == 3


def q_attr(prefix, name):
    return "{%s}%s" % (NS[prefix], name)


def test_username_token_has_digest_nonce_created_and_never_the_password(pki):
    message = _request(pki)
    data = message.to_bytes()
    assert PASSWORD.encode() not in data
    token = etree.fromstring(data).find("S12:Header/wsse:Security/wsse:UsernameToken", NS)
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
    assert signed_info.find("ds:CanonicalizationMethod", NS).get("Algorithm") == "http://www.w3.org/2001/10/xml-exc-c14n#"
    assert signed_info.find("ds:SignatureMethod", NS).get("Algorithm") == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    wanted = [doc.find("S12:Body", NS), doc.find("S12:Header/eb:Messaging", NS),
              doc.find("S12:Header/wsse:Security/wsse:UsernameToken", NS)]
    references = signed_info.findall("ds:Reference", NS)
    assert [ref.get("URI") for ref in references] == ["#" + el.get(fakes.WSU_ID) for el in wanted]
    for ref, element in zip(references, wanted):
        assert ref.find("ds:DigestMethod", NS).get("Algorithm") == "http://www.w3.org/2001/04/xmlenc#sha256"
        assert [t.get("Algorithm") for t in ref.findall("ds:Transforms/ds:Transform", NS)] == [
            "http://www.w3.org/2001/10/xml-exc-c14n#"]
        digest = hashlib.sha256(etree.tostring(element, method="c14n", exclusive=True)).digest()
        assert ref.findtext("ds:DigestValue", namespaces=NS) == base64.b64encode(digest).decode()
    value = base64.b64decode(signature.findtext("ds:SignatureValue", namespaces=NS))
    pki["client"].cert.public_key().verify(value, etree.tostring(signed_info, method="c14n", exclusive=True),
                                           padding.PKCS1v15(), hashes.SHA256())
    assert message.references == [(r.get("URI"), r.findtext("ds:DigestValue", namespaces=NS)) for r in references]


def test_key_info_issuer_serial(pki):
    doc = etree.fromstring(_request(pki).to_bytes())
    serial = doc.find(".//ds:KeyInfo/wsse:SecurityTokenReference/ds:X509Data/ds:X509IssuerSerial", NS)
    assert serial.findtext("ds:X509IssuerName", namespaces=NS) == "CN=Test OCES CA"
    assert serial.findtext("ds:X509SerialNumber", namespaces=NS) == str(pki["client"].cert.serial_number)
    assert doc.find(".//wsse:BinarySecurityToken", NS) is None


def test_key_info_binary_security_token(pki):
    doc = etree.fromstring(_request(pki, key_reference="binary_security_token").to_bytes())
    uri = doc.find(".//ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference", NS).get("URI")
    token = _by_id(doc, uri[1:])
    assert token.tag == fakes.q("wsse", "BinarySecurityToken")
    assert base64.b64decode(token.text) == pki["client"].cert.public_bytes(serialization.Encoding.DER)


def test_signxml_verifies_the_request(pki):
    data = _request(pki).to_bytes()
    config = SignatureConfiguration(expect_references=3, location="./{%s}Header/{%s}Security/" % (NS["S12"], NS["wsse"]))
    results = XMLVerifier().verify(data, x509_cert=pki["client"].cert, expect_config=config)
    assert len(results) == 3


def test_pull_request(pki):
    message = _request(pki, kind="pull", mpc="urn:test:mpc")
    doc = etree.fromstring(message.to_bytes())
    assert doc.find("S12:Header/eb:Messaging/eb:SignalMessage/eb:PullRequest", NS).get("mpc") == "urn:test:mpc"
    assert doc.find(".//eb:UserMessage", NS) is None
    assert message.kind == "pull"


def test_unknown_probe_and_key_reference(pki):
    with pytest.raises(_as4.As4Error):
        _request(pki, kind="peek")
    with pytest.raises(_as4.As4Error):
        _request(pki, key_reference="thumbprint")


# --- answers ---------------------------------------------------------------------------------

def _classify(pki, message, body, status=200, signers="gateway"):
    trusted = {"gateway": [pki["gateway"].cert], "ca": [pki["gateway_ca"].cert], None: []}[signers]
    return _as4.classify_answer(status, "application/soap+xml", body, message, trusted)


def test_valid_receipt(pki):
    message = _request(pki)
    answer = _classify(pki, message, fakes.receipt(message.to_bytes(), pki["gateway"]))
    assert (answer.kind, answer.valid, answer.problems) == ("receipt", True, [])
    assert answer.ref_to_message_id == message.message_id
    assert answer.signer == "CN=SKAT OIO Gateway Test"


def test_receipt_signer_may_be_the_issuing_ca(pki):
    message = _request(pki)
    answer = _classify(pki, message, fakes.receipt(message.to_bytes(), pki["gateway"]), signers="ca")
    assert answer.valid


def test_receipt_without_receipt_signer_is_checked_but_warned(pki):
    message = _request(pki)
    answer = _classify(pki, message, fakes.receipt(message.to_bytes(), pki["gateway"]), signers=None)
    assert answer.valid and "receipt_signer" in answer.warnings[0]


def test_tampered_receipt(pki):
    message = _request(pki)
    answer = _classify(pki, message, fakes.receipt(message.to_bytes(), pki["gateway"], tamper=True))
    assert answer.kind == "receipt" and not answer.valid
    assert "does not verify" in answer.problems[0]


def test_receipt_from_an_impostor(pki):
    message = _request(pki)
    answer = _classify(pki, message, fakes.receipt(message.to_bytes(), pki["impostor"]))
    assert not answer.valid and "neither receipt_signer nor issued by it" in answer.problems[0]


def test_receipt_for_another_message(pki):
    message = _request(pki)
    answer = _classify(pki, message, fakes.receipt(message.to_bytes(), pki["gateway"], ref="other@x"))
    assert not answer.valid and "not the one sent" in answer.problems[0]


def test_receipt_with_other_digests(pki):
    message = _request(pki)
    answer = _classify(pki, message, fakes.receipt(message.to_bytes(), pki["gateway"], drop_reference=True))
    assert not answer.valid and "NonRepudiationInformation" in answer.problems[0]


def test_unsigned_receipt(pki):
    message = _request(pki)
    answer = _classify(pki, message, fakes.receipt(message.to_bytes(), pki["gateway"], sign=False))
    assert not answer.valid and "not signed" in answer.problems[0]


def test_error_signal(pki):
    message = _request(pki)
    body = fakes.error_signal(message.to_bytes(), "EBMS:0101", "FailedAuthentication", "UsernameToken: bad digest")
    answer = _classify(pki, message, body, status=500)
    assert answer.kind == "error"
    assert answer.ebms_error == {
        "code": "EBMS:0101", "severity": "failure", "short_description": "FailedAuthentication",
        "category": "Processing", "ref_to_message_in_error": message.message_id,
        "description": "FailedAuthentication: UsernameToken: bad digest", "detail": "UsernameToken: bad digest"}


def test_empty_pull_is_a_signed_warning(pki):
    message = _request(pki, kind="pull", mpc="urn:x")
    body = fakes.error_signal(message.to_bytes(), "EBMS:0006", "EmptyMessagePartitionChannel", "empty",
                              severity="warning", signer=pki["gateway"], fault=False)
    answer = _classify(pki, message, body)
    assert (answer.kind, answer.valid) == ("empty_pull", True)
    body = fakes.error_signal(message.to_bytes(), "EBMS:0006", "EmptyMessagePartitionChannel", "empty",
                              severity="warning", signer=pki["impostor"], fault=False)
    assert not _classify(pki, message, body).valid


def test_empty_pull_code_on_a_ping_is_an_error(pki):
    message = _request(pki)
    body = fakes.error_signal(message.to_bytes(), "EBMS:0006", "EmptyMessagePartitionChannel", "x", fault=False)
    assert _classify(pki, message, body).kind == "error"


def test_plain_soap_fault(pki):
    body = (b'<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope"><S12:Body><S12:Fault>'
            b'<S12:Code><S12:Value>S12:Receiver</S12:Value></S12:Code><S12:Reason><S12:Text>boom</S12:Text>'
            b'</S12:Reason></S12:Fault></S12:Body></S12:Envelope>')
    answer = _classify(pki, _request(pki), body, status=500)
    assert answer.kind == "soap_fault" and "boom" in answer.detail


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
