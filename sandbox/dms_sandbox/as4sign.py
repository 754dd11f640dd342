"""The gateway's answers: receipts, Notification answers, pulled messages and ebMS error signals
(docs/gateway.md, "Answers").

Receipts, Notification answers, EBMS:0006 warnings and pulled user messages are signed with the gateway
certificate by signxml's ``XMLSigner`` (detached, exclusive C14N, RSA-SHA256, SHA-256) over Body and
``eb:Messaging``; the key is named by IssuerSerial (as Holodeck B2B does, the default) or carried in a
BinarySecurityToken (``ResponseSigner(key_reference=...)``).  Attachments are not signed (**model**:
whether the DMS gateway signs them is not public; signxml cannot sign ``cid:`` references).  Error
signals for rejected requests are not signed, as real gateways answer them.

Answers with attachments are SOAP with Attachments (``multipart/related``, ``multipart()``).  The parts
are framed here rather than by the ``email`` package, whose generator rewrites line ends inside binary
parts.
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

KEY_REFERENCES = ("issuer_serial", "binary_security_token")
NOTIFICATIONS_NS = "urn:dkcustoms:dms-sandbox:notifications"
PULLED_SERVICE = "DMS.Import2"
PULLED_ACTION = "Notification"
ORIGINAL_MESSAGE_PROPERTY = "originalMessageId"

S12 = "{%s}" % NS["S12"]
EB = "{%s}" % NS["eb"]
WSSE = "{%s}" % NS["wsse"]
DS = "{%s}" % NS["ds"]
EBBP = "{%s}" % NS["ebbp"]
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
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
    """Signs answer envelopes with the gateway's key over Body + eb:Messaging, naming the key by
    IssuerSerial (as Holodeck does) or by a BinarySecurityToken."""

    def __init__(self, cert_pem, key_pem, key_reference="issuer_serial"):
        if key_reference not in KEY_REFERENCES:
            raise ValueError("answer key reference must be one of %s" % ", ".join(KEY_REFERENCES))
        self.cert = x509.load_pem_x509_certificate(cert_pem)
        self.key = serialization.load_pem_private_key(key_pem, password=None)
        self.key_reference = key_reference
        self._cert_b64 = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode("ascii")

    def _key_info(self, security):
        key_info = etree.Element(DS + "KeyInfo", nsmap={"ds": NS["ds"]})
        str_ref = etree.SubElement(key_info, WSSE + "SecurityTokenReference", nsmap={"wsse": NS["wsse"]})
        if self.key_reference == "binary_security_token":
            bst_id = f"gateway-cert-{uuid.uuid4()}"
            bst = etree.SubElement(security, WSSE + "BinarySecurityToken", EncodingType=BASE64_BINARY, ValueType=X509V3)
            bst.set(WSU_ID, bst_id)
            bst.text = self._cert_b64
            etree.SubElement(str_ref, WSSE + "Reference", URI="#" + bst_id, ValueType=X509V3)
        else:
            issuer_serial = etree.SubElement(etree.SubElement(str_ref, DS + "X509Data"), DS + "X509IssuerSerial")
            etree.SubElement(issuer_serial, DS + "X509IssuerName").text = self.cert.issuer.rfc4514_string()
            etree.SubElement(issuer_serial, DS + "X509SerialNumber").text = str(self.cert.serial_number)
        return key_info

    def sign(self, envelope):
        header = envelope.find("S12:Header", NS)
        security = etree.Element(WSSE + "Security")
        header.insert(0, security)
        security.set(S12 + "mustUnderstand", "true")
        key_info = self._key_info(security)
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


def _user_message(messaging, service, action, gateway_user, ref_to_message_id=None, mpc=None, properties=None,
                  attachments=()):
    """A UserMessage from the gateway to ``<gateway user>_AS4`` whose payloads are ``attachments``."""
    user_message = etree.SubElement(messaging, EB + "UserMessage")
    if mpc:
        user_message.set("mpc", mpc)
    _message_info(user_message, ref_to_message_id)
    party_info = etree.SubElement(user_message, EB + "PartyInfo")
    for side, party, role in (("From", GATEWAY_PARTY, RESPONDER_ROLE),
                              ("To", f"{gateway_user}_AS4", INITIATOR_ROLE)):
        element = etree.SubElement(party_info, EB + side)
        etree.SubElement(element, EB + "PartyId", type="string").text = party
        etree.SubElement(element, EB + "Role").text = role
    collaboration = etree.SubElement(user_message, EB + "CollaborationInfo")
    etree.SubElement(collaboration, EB + "Service", type="string").text = service
    etree.SubElement(collaboration, EB + "Action").text = action
    etree.SubElement(collaboration, EB + "ConversationId").text = "placeholder"
    if properties:
        holder = etree.SubElement(user_message, EB + "MessageProperties")
        for name, value in properties.items():
            etree.SubElement(holder, EB + "Property", name=name).text = value
    payload_info = etree.SubElement(user_message, EB + "PayloadInfo")
    for content_id, content_type, _data in attachments:
        part = etree.SubElement(payload_info, EB + "PartInfo", href=f"cid:{content_id}")
        part_properties = etree.SubElement(part, EB + "PartProperties")
        etree.SubElement(part_properties, EB + "Property", name="MimeType").text = content_type
    return user_message


def notifications_document(notifications, submitter_id, service, date_from, date_to):
    """The first attachment of a Notification answer (**model**: the real document's schema is not
    public): ``<Notifications>`` with one ``<Notification>`` per stored notification of the window."""
    root = etree.Element("{%s}Notifications" % NOTIFICATIONS_NS, nsmap={None: NOTIFICATIONS_NS})
    for name, value in (("count", str(len(notifications))), ("submitterId", submitter_id), ("service", service),
                        ("dateFrom", date_from), ("dateTo", date_to)):
        root.set(name, value)
    for notification in notifications:
        item = etree.SubElement(root, "{%s}Notification" % NOTIFICATIONS_NS, id=str(notification["id"]),
                                createdAt=notification["created_at"])
        if notification.get("service"):
            item.set("service", notification["service"])
        item.text = notification["document"]
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8") + b"\n"


def notification_answer(request_message_id, gateway_user, service, document):
    """(envelope, attachments) answering a Notification query: a UserMessage that refers to the query
    (RefToMessageId) with the notifications document as its first attachment (**model**)."""
    envelope, messaging, _ = _envelope()
    attachments = [(f"notifications-{uuid.uuid4()}@dms-sandbox.gateway", "application/xml", document)]
    _user_message(messaging, service, "Notification", gateway_user, ref_to_message_id=request_message_id,
                  attachments=attachments)
    return envelope, attachments


def pulled_user_message(stored, gateway_user, mpc, original_message_id):
    """(envelope, attachments) answering a pull that found ``stored`` (the bytes placed on the MPC): a
    UserMessage on ``mpc`` with the payload as its attachment and the id of the message it answers as
    its first property, where the reference client reads it (**model**: the property's name)."""
    envelope, messaging, _ = _envelope()
    content_type = "application/xml" if _parse_xml(stored) is not None else "application/octet-stream"
    attachments = [(f"payload-{uuid.uuid4()}@dms-sandbox.gateway", content_type, stored)]
    _user_message(messaging, PULLED_SERVICE, PULLED_ACTION, gateway_user, mpc=mpc or DEFAULT_MPC,
                  properties={ORIGINAL_MESSAGE_PROPERTY: original_message_id}, attachments=attachments)
    return envelope, attachments


def multipart(soap, attachments):
    """(Content-Type, body) of SOAP with Attachments: the SOAP part first, named by ``start``."""
    boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
    root_id = f"root.{uuid.uuid4().hex}@dms-sandbox.gateway"
    chunks = []
    for content_id, content_type, data in [(root_id, "application/soap+xml; charset=UTF-8", soap)] + list(attachments):
        chunks.append(f"--{boundary}\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: binary\r\n"
                      f"Content-ID: <{content_id}>\r\n\r\n".encode("ascii") + data + b"\r\n")
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode("ascii")
    content_type = (f'multipart/related; type="application/soap+xml"; boundary="{boundary}"; '
                    f'start="<{root_id}>"; start-info="application/soap+xml"')
    return content_type, body


def _parse_xml(data):
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        return etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError):
        return None
