"""The gateway's answers: receipts, pulled messages and ebMS error signals (docs/gateway.md, "Success").

Receipts, EBMS:0006 warnings and pulled user messages are signed with the gateway certificate by
signxml's ``XMLSigner`` (detached, exclusive C14N, RSA-SHA256, SHA-256; key in a BinarySecurityToken).
Error signals for rejected requests are not signed, as real gateways answer them.
"""

from __future__ import annotations

import base64
import copy
import datetime
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import XMLSigner
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureConstructionMethod, SignatureMethod

from .as4verify import (BASE64_BINARY, DEFAULT_MPC, EBMS_ERRORS, GATEWAY_PARTY, INITIATOR_ROLE, NS,
                        RESPONDER_ROLE, WSU_ID, X509V3)

S12 = "{%s}" % NS["S12"]
EB = "{%s}" % NS["eb"]
WSSE = "{%s}" % NS["wsse"]
DS = "{%s}" % NS["ds"]
EBBP = "{%s}" % NS["ebbp"]
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
SANDBOX_NS = "urn:dkcustoms:dms-sandbox"
CONTENT_TYPE = "application/soap+xml; charset=utf-8"
RESPONSE_NSMAP = {k: NS[k] for k in ("S12", "eb", "wsse", "wsu", "ds", "ebbp")}


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_message_id():
    return f"{uuid.uuid4()}@dms-sandbox.gateway"


def _envelope():
    """S12:Envelope with Header/eb:Messaging (wsu:Id, mustUnderstand) and an empty Body (wsu:Id)."""
    envelope = etree.Element(S12 + "Envelope", nsmap=RESPONSE_NSMAP)
    header = etree.SubElement(envelope, S12 + "Header")
    messaging = etree.SubElement(header, EB + "Messaging")
    messaging.set(S12 + "mustUnderstand", "true")
    messaging.set(WSU_ID, f"messaging-{uuid.uuid4()}")
    body = etree.SubElement(envelope, S12 + "Body")
    body.set(WSU_ID, f"body-{uuid.uuid4()}")
    return envelope, messaging, body


def _message_info(parent, ref_to_message_id=None):
    info = etree.SubElement(parent, EB + "MessageInfo")
    etree.SubElement(info, EB + "Timestamp").text = _now()
    etree.SubElement(info, EB + "MessageId").text = new_message_id()
    if ref_to_message_id:
        etree.SubElement(info, EB + "RefToMessageId").text = ref_to_message_id
    return info


class ResponseSigner:
    """Signs response envelopes with the gateway's key (Body + eb:Messaging, BinarySecurityToken)."""

    def __init__(self, cert_pem, key_pem):
        self.cert = x509.load_pem_x509_certificate(cert_pem)
        self.key = serialization.load_pem_private_key(key_pem, password=None)
        self._cert_b64 = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode("ascii")

    def sign(self, envelope):
        header = envelope.find("S12:Header", NS)
        security = etree.SubElement(header, WSSE + "Security")
        security.set(S12 + "mustUnderstand", "true")
        bst_id = f"gateway-cert-{uuid.uuid4()}"
        bst = etree.SubElement(security, WSSE + "BinarySecurityToken",
                               EncodingType=BASE64_BINARY, ValueType=X509V3)
        bst.set(WSU_ID, bst_id)
        bst.text = self._cert_b64
        key_info = etree.Element(DS + "KeyInfo", nsmap={"ds": NS["ds"]})
        str_ref = etree.SubElement(key_info, WSSE + "SecurityTokenReference", nsmap={"wsse": NS["wsse"]})
        etree.SubElement(str_ref, WSSE + "Reference", URI="#" + bst_id, ValueType=X509V3)
        uris = ["#" + envelope.find("S12:Body", NS).get(WSU_ID),
                "#" + header.find("eb:Messaging", NS).get(WSU_ID)]
        signer = XMLSigner(method=SignatureConstructionMethod.detached,
                           signature_algorithm=SignatureMethod.RSA_SHA256,
                           digest_algorithm=DigestAlgorithm.SHA256,
                           c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
        signature = signer.sign(envelope, key=self.key, reference_uri=uris, key_info=key_info)
        security.append(signature)
        return envelope


def serialize(envelope):
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def receipt(request_message_id, signed_references):
    """eb:Receipt with ebbp:NonRepudiationInformation: one MessagePartNRInformation per signed reference."""
    envelope, messaging, _ = _envelope()
    signal = etree.SubElement(messaging, EB + "SignalMessage")
    _message_info(signal, request_message_id)
    receipt_el = etree.SubElement(signal, EB + "Receipt")
    nri = etree.SubElement(receipt_el, EBBP + "NonRepudiationInformation")
    for reference in signed_references:
        part = etree.SubElement(nri, EBBP + "MessagePartNRInformation")
        part.append(copy.deepcopy(reference))
    return envelope


def error_signal(code, detail, ref_to_message_id=None, with_fault=True):
    """ebMS error signal; with ``with_fault`` wrapped as a SOAP 1.2 Fault (the HTTP 500 answer)."""
    short, category, severity = EBMS_ERRORS[code]
    envelope, messaging, body = _envelope()
    signal = etree.SubElement(messaging, EB + "SignalMessage")
    _message_info(signal, ref_to_message_id)
    error = etree.SubElement(signal, EB + "Error", errorCode=code, severity=severity,
                             shortDescription=short, category=category, origin="ebMS")
    if ref_to_message_id:
        error.set("refToMessageInError", ref_to_message_id)
    description = etree.SubElement(error, EB + "Description")
    description.set(XML_LANG, "en")
    description.text = f"{short}: {detail}"
    etree.SubElement(error, EB + "ErrorDetail").text = detail
    if with_fault:
        fault = etree.SubElement(body, S12 + "Fault")
        fault_code = etree.SubElement(fault, S12 + "Code")
        etree.SubElement(fault_code, S12 + "Value").text = "S12:Sender"
        reason = etree.SubElement(fault, S12 + "Reason")
        text = etree.SubElement(reason, S12 + "Text")
        text.set(XML_LANG, "en")
        text.text = f"{code} {short}: {detail}"
    return envelope


def internal_error(detail):
    envelope = error_signal("EBMS:0004", detail)
    envelope.find("S12:Body/S12:Fault/S12:Code/S12:Value", NS).text = "S12:Receiver"
    return envelope


def pulled_user_message(stored, gateway_user, mpc):
    """The envelope answering a pull that found ``stored`` (bytes placed on the MPC).

    A stored SOAP 1.2 envelope with an eb:UserMessage is returned as it is (given wsu:Ids so it can be
    signed); anything else is a payload: XML goes into the SOAP Body, other bytes Base64 in
    ``sbx:BinaryPayload``, under a UserMessage from SKAT-MFT-AS4 to ``<gateway user>_AS4``.
    """
    parsed = _parse_xml(stored)
    if parsed is not None and parsed.tag == S12 + "Envelope" \
            and parsed.find("S12:Header/eb:Messaging/eb:UserMessage", NS) is not None:
        for path, prefix in (("S12:Body", "body"), ("S12:Header/eb:Messaging", "messaging")):
            element = parsed.find(path, NS)
            if element is not None and not element.get(WSU_ID):
                element.set(WSU_ID, f"{prefix}-{uuid.uuid4()}")
        for old in parsed.findall("S12:Header/wsse:Security", NS):
            old.getparent().remove(old)
        return parsed
    envelope, messaging, body = _envelope()
    user_message = etree.SubElement(messaging, EB + "UserMessage", mpc=mpc or DEFAULT_MPC)
    _message_info(user_message)
    party_info = etree.SubElement(user_message, EB + "PartyInfo")
    for side, party, role in (("From", GATEWAY_PARTY, RESPONDER_ROLE),
                              ("To", f"{gateway_user}_AS4", INITIATOR_ROLE)):
        element = etree.SubElement(party_info, EB + side)
        etree.SubElement(element, EB + "PartyId", type="string").text = party
        etree.SubElement(element, EB + "Role").text = role
    collaboration = etree.SubElement(user_message, EB + "CollaborationInfo")
    etree.SubElement(collaboration, EB + "Service").text = "DMS.Import2"
    etree.SubElement(collaboration, EB + "Action").text = "Notification"
    etree.SubElement(collaboration, EB + "ConversationId").text = "placeholder"
    payload_info = etree.SubElement(user_message, EB + "PayloadInfo")
    etree.SubElement(payload_info, EB + "PartInfo")  # no href: the payload is the SOAP Body
    if parsed is not None:
        body.append(parsed)
    else:
        binary = etree.SubElement(body, "{%s}BinaryPayload" % SANDBOX_NS, nsmap={"sbx": SANDBOX_NS})
        binary.text = base64.b64encode(stored).decode("ascii")
    return envelope


def _parse_xml(data):
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        return etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError):
        return None
