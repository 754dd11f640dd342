# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build, sign and classify ebMS3 / AS4 messages for the gateway.  Knows no Ansible.

What is sent and checked is the wire contract in ``docs/gateway.md``, which follows SKAT's reference
client (skat/simple-as4-client) point by point:

* a SOAP 1.2 envelope whose header holds, in the order WSS4J writes them, the default
  ``wsse:Security`` header (the signature), a ``wsse:Security`` header with ``S12:role="ebms"``
  holding only the UsernameToken (PasswordDigest, Nonce, Created), and ``eb:Messaging``;
* ``eb:Messaging`` with a user message (``build_notification``: the read-only Notification query of
  the reference client; ``build_ping``: the ebMS3 test service) or an ``eb:PullRequest``
  (``build_pull``);
* an XML signature in the default header: RSA-SHA256, exclusive C14N, SHA-256, key reference
  IssuerSerial (or a BinarySecurityToken) over Body, ``eb:Messaging`` and the UsernameToken, which it
  references by ``wsu:Id`` across the two headers (``sign``).  Probes carry no attachment, so there is
  none to sign.

Signing and verifying are done by signxml (``XMLSigner`` in detached mode with several references and
a custom ``KeyInfo``; ``XMLVerifier`` for answers).  Written by hand here is only what no library
does: the envelope, the UsernameToken digest, the SwA attachment-content rule for ``cid:`` references
and the ebMS-level checks of an answer.

``classify_answer`` turns an HTTP answer (SOAP, or SOAP with attachments in ``multipart/related``,
split by the standard library's ``email`` parser) into an ``Answer``: a receipt, a user message that
answers ours, an empty-pull warning, a pulled user message, an ebMS error signal, a SOAP fault or
something that is not AS4 at all.  Its ``answer_signature`` says what the signature proved:
``verified`` (by a certificate the caller trusts: ``SignerPolicy``), ``not_checked`` (nothing to
check it against) or ``invalid``.  Every value of a signed answer is read from what the signature
covers (signxml's verify result), never from the unverified tree; comments are dropped at parse.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import email.parser
import email.policy
import hashlib
import os
import re
import uuid
from collections import namedtuple

try:  # a missing library is reported by the module (_deps.require), never by a traceback
    from lxml import etree
    from signxml import (CanonicalizationMethod, DigestAlgorithm, SignatureConfiguration,
                         SignatureConstructionMethod, SignatureMethod, XMLSigner, XMLVerifier)
    from signxml.exceptions import InvalidInput, InvalidSignature
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
except ImportError:  # pragma: no cover
    pass

from ansible_collections.dkcustoms.dms.plugins.module_utils import _http
from ansible_collections.dkcustoms.dms.plugins.module_utils._errors import DmsError

try:  # Python 3.9+; without it (or without tz data) the notification window is written in UTC
    from zoneinfo import ZoneInfo
except ImportError:  # pragma: no cover
    ZoneInfo = None

NS = {
    "S12": "http://www.w3.org/2003/05/soap-envelope",
    "eb": "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "ebbp": "http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0",
}
EBMS_BASE = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704"
TEST_SERVICE = EBMS_BASE + "/service"
TEST_ACTION = EBMS_BASE + "/test"
INITIATOR_ROLE = EBMS_BASE + "/initiator"
RESPONDER_ROLE = EBMS_BASE + "/responder"
EBMS_DEFAULT_MPC = EBMS_BASE + "/defaultMPC"
# As4ClientInstance.defaultMPC of the reference client.
DEFAULT_MPC = "urn:fdc:dk.skat.mft.DMS/import2/response"
DEFAULT_TO_PARTY = "SKAT-MFT-AS4"
DEFAULT_PARTY_TYPE = "string"
SERVICE_TYPE = "string"
CONVERSATION_ID = "placeholder"
EBMS_ROLE = "ebms"
PROBES = ("notification", "ping", "pull")
NOTIFICATION_SERVICES = ("DMS.Import", "DMS.Import2", "DMS.Export2")
NOTIFICATION_ACTION = "Notification"
NOTIFICATION_LANG = "EN"
NOTIFICATION_TIME_ZONE = "Europe/Copenhagen"
PASSWORD_DIGEST = ("http://docs.oasis-open.org/wss/2004/01/"
                   "oasis-200401-wss-username-token-profile-1.0#PasswordDigest")
BASE64_BINARY = ("http://docs.oasis-open.org/wss/2004/01/"
                 "oasis-200401-wss-soap-message-security-1.0#Base64Binary")
X509_TOKEN_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0"
X509V3 = X509_TOKEN_PROFILE + "#X509v3"
X509_SKI = X509_TOKEN_PROFILE + "#X509SubjectKeyIdentifier"
THUMBPRINT_SHA1 = "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1"
SWA_CONTENT_TRANSFORM = ("http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1"
                         "#Attachment-Content-Signature-Transform")
STATUS_NS = "urn:dk:skat:mft:DMS.declaration.status:1"
CONTENT_TYPE = "application/soap+xml; charset=utf-8"
KEY_REFERENCES = ("issuer_serial", "binary_security_token")
WSU_ID = "{%s}Id" % NS["wsu"]
EMPTY_MPC_CODE = "EBMS:0006"
PREVIEW_CHARS = 200
ANSWER_SIGNATURES = ("verified", "not_checked", "invalid")


class As4Error(DmsError):
    """A message could not be built or signed; the text names the cause and the fix."""

    reason = "as4_message"


def _q(prefix, name):
    return "{%s}%s" % (NS[prefix], name)


def _sub(parent, prefix, local, text=None, **attrib):
    element = etree.SubElement(parent, _q(prefix, local), **attrib)
    if text is not None:
        element.text = text
    return element


def _utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def xsd_datetime(moment=None):
    """UTC ``xsd:dateTime`` with milliseconds and ``Z`` (Timestamp, wsu:Created)."""
    moment = moment or _utc_now()
    return moment.astimezone(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def notification_zone():
    """(tzinfo, name) in which dateFrom/dateTo are written: Danish time, or UTC without tz data."""
    if ZoneInfo is not None:
        try:
            return ZoneInfo(NOTIFICATION_TIME_ZONE), NOTIFICATION_TIME_ZONE
        except Exception:  # pylint: disable=broad-except  # ZoneInfoNotFoundError, or a broken tz database
            pass
    return datetime.timezone.utc, "UTC"


def reference_local_time(moment, zone):
    """``2022-03-22T12:30:00.000``: local time without a zone, as the reference client writes dateFrom."""
    return moment.astimezone(zone).replace(tzinfo=None).isoformat(timespec="milliseconds")


def notification_window(minutes, now=None):
    """(dateFrom, dateTo, zone name) of a window of ``minutes`` that ends now."""
    if minutes < 1:
        raise As4Error("The notification window must be at least 1 minute. Fix: set "
                       "notification_window_minutes to 1 or more.")
    zone, name = notification_zone()
    end = now or _utc_now()
    start = end - datetime.timedelta(minutes=minutes)
    return reference_local_time(start, zone), reference_local_time(end, zone), name


def new_message_id():
    """A bare UUID, as the reference client writes MessageId."""
    return str(uuid.uuid4())


def _new_id(kind):
    return "%s-%s" % (kind, uuid.uuid4())


class OutgoingMessage:
    """A built (and, once ``sign`` ran, signed) request."""

    def __init__(self, envelope, message_id, kind, mpc=None, service=None, action=None, properties=None):
        self.envelope = envelope
        self.message_id = message_id
        self.kind = kind          # "notification", "ping" or "pull"
        self.mpc = mpc
        self.service = service
        self.action = action
        self.properties = dict(properties or {})
        self.references = []      # [(uri, digest value)] of our signature, filled by sign()

    def to_bytes(self):
        return etree.tostring(self.envelope, xml_declaration=True, encoding="UTF-8")

    @property
    def security(self):
        """The default ``wsse:Security`` header (no role): the signature's."""
        return _security_header(self.envelope, None)

    @property
    def token_header(self):
        """The ``wsse:Security`` header with ``S12:role="ebms"``: the UsernameToken's."""
        return _security_header(self.envelope, EBMS_ROLE)


def _security_header(envelope, role):
    for header in envelope.findall("S12:Header/wsse:Security", NS):
        if header.get(_q("S12", "role")) == role:
            return header
    return None


def _envelope():
    """Header order as WSS4J leaves it (each header is prepended): signature, token, eb:Messaging."""
    envelope = etree.Element(_q("S12", "Envelope"),
                             nsmap={k: NS[k] for k in ("S12", "eb", "wsse", "wsu", "ds")})
    header = _sub(envelope, "S12", "Header")
    signature_header = _sub(header, "wsse", "Security")
    signature_header.set(_q("S12", "mustUnderstand"), "true")
    token_header = _sub(header, "wsse", "Security")
    token_header.set(_q("S12", "mustUnderstand"), "true")
    token_header.set(_q("S12", "role"), EBMS_ROLE)
    messaging = _sub(header, "eb", "Messaging")
    messaging.set(_q("S12", "mustUnderstand"), "true")
    messaging.set(WSU_ID, _new_id("id"))
    body = _sub(envelope, "S12", "Body")
    body.set(WSU_ID, _new_id("id"))
    return envelope, messaging


def _message_info(parent, message_id, now=None):
    info = _sub(parent, "eb", "MessageInfo")
    _sub(info, "eb", "Timestamp", xsd_datetime(now))
    _sub(info, "eb", "MessageId", message_id)


def _user_message(from_party, to_party, from_party_type, to_party_type, service, service_type, action,
                  properties=None, message_id=None, now=None):
    """UserMessage in the reference client's element order; an empty PayloadInfo, as it writes one."""
    message_id = message_id or new_message_id()
    envelope, messaging = _envelope()
    user_message = _sub(messaging, "eb", "UserMessage")
    _message_info(user_message, message_id, now)
    party_info = _sub(user_message, "eb", "PartyInfo")
    for side, party, party_type, role in (("From", from_party, from_party_type, INITIATOR_ROLE),
                                          ("To", to_party, to_party_type, RESPONDER_ROLE)):
        element = _sub(party_info, "eb", side)
        party_id = _sub(element, "eb", "PartyId", party)
        if party_type:
            party_id.set("type", party_type)
        _sub(element, "eb", "Role", role)
    collaboration = _sub(user_message, "eb", "CollaborationInfo")
    service_element = _sub(collaboration, "eb", "Service", service)
    if service_type:
        service_element.set("type", service_type)
    _sub(collaboration, "eb", "Action", action)
    _sub(collaboration, "eb", "ConversationId", CONVERSATION_ID)
    if properties:
        holder = _sub(user_message, "eb", "MessageProperties")
        for name, value in properties.items():
            _sub(holder, "eb", "Property", value, name=name)
    _sub(user_message, "eb", "PayloadInfo")
    return envelope, message_id


def build_notification(from_party, submitter_id, date_from, date_to, service="DMS.Import",
                       to_party=DEFAULT_TO_PARTY, from_party_type=DEFAULT_PARTY_TYPE,
                       to_party_type=DEFAULT_PARTY_TYPE, lang=NOTIFICATION_LANG, message_id=None, now=None):
    """The reference client's read-only query: Notification on ``service`` without payload, whose
    answer lists the notifications of [date_from, date_to] for ``submitter_id`` (the CVR)."""
    if service not in NOTIFICATION_SERVICES:
        raise As4Error("notification_service must be one of %s." % ", ".join(NOTIFICATION_SERVICES))
    properties = {"lang": lang, "submitterId": submitter_id, "dateFrom": date_from, "dateTo": date_to}
    envelope, message_id = _user_message(from_party, to_party, from_party_type, to_party_type, service,
                                         SERVICE_TYPE, NOTIFICATION_ACTION, properties, message_id, now)
    return OutgoingMessage(envelope, message_id, "notification", service=service, action=NOTIFICATION_ACTION,
                           properties=properties)


def build_ping(from_party, to_party=DEFAULT_TO_PARTY, from_party_type=DEFAULT_PARTY_TYPE,
               to_party_type=DEFAULT_PARTY_TYPE, message_id=None, now=None):
    """ebMS3 UserMessage for the test service/action.  The test service is a URI, so its Service
    carries no type (ebMS3 Core 5.2.2.8)."""
    envelope, message_id = _user_message(from_party, to_party, from_party_type, to_party_type, TEST_SERVICE,
                                         None, TEST_ACTION, None, message_id, now)
    return OutgoingMessage(envelope, message_id, "ping", service=TEST_SERVICE, action=TEST_ACTION)


def build_pull(mpc=DEFAULT_MPC, message_id=None, now=None):
    """ebMS3 PullRequest signal on ``mpc``.  It takes a waiting message: callers decide whether
    that is acceptable (see docs/connectivity.md)."""
    message_id = message_id or new_message_id()
    envelope, messaging = _envelope()
    signal = _sub(messaging, "eb", "SignalMessage")
    _message_info(signal, message_id, now)
    _sub(signal, "eb", "PullRequest", mpc=mpc)
    return OutgoingMessage(envelope, message_id, "pull", mpc=mpc)


def password_digest(nonce, created, password):
    """Base64(SHA-1(nonce bytes + Created + password)): WS-Security UsernameToken Profile 1.0."""
    raw = nonce + created.encode("utf-8") + password.encode("utf-8")
    return base64.b64encode(hashlib.sha1(raw).digest()).decode("ascii")


def add_username_token(message, username, password, nonce=None, created=None):
    """Put the UsernameToken (PasswordDigest, Nonce, Created) alone in the ``ebms``-role header.

    Only the digest goes on the wire; the password itself is never stored in the message.
    """
    nonce = nonce if nonce is not None else os.urandom(16)
    created = created or xsd_datetime()
    token = _sub(message.token_header, "wsse", "UsernameToken")
    token.set(WSU_ID, _new_id("UsernameToken"))
    _sub(token, "wsse", "Username", username)
    _sub(token, "wsse", "Password", password_digest(nonce, created, password), Type=PASSWORD_DIGEST)
    _sub(token, "wsse", "Nonce", base64.b64encode(nonce).decode("ascii"), EncodingType=BASE64_BINARY)
    _sub(token, "wsu", "Created", created)
    return token


def _key_info(message, certificate, key_reference):
    """``ds:KeyInfo/wsse:SecurityTokenReference`` as WS-Security wants it (signxml takes it as is)."""
    key_info = etree.Element(_q("ds", "KeyInfo"), nsmap={"ds": NS["ds"]})
    reference = _sub(key_info, "wsse", "SecurityTokenReference")
    if key_reference == "binary_security_token":
        token_id = _new_id("X509")
        token = etree.Element(_q("wsse", "BinarySecurityToken"), EncodingType=BASE64_BINARY,
                              ValueType=X509V3)
        token.set(WSU_ID, token_id)
        token.text = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")
        message.security.insert(0, token)
        _sub(reference, "wsse", "Reference", URI="#" + token_id, ValueType=X509V3)
    else:
        data = _sub(reference, "ds", "X509Data")
        issuer_serial = _sub(data, "ds", "X509IssuerSerial")
        _sub(issuer_serial, "ds", "X509IssuerName", certificate.issuer.rfc4514_string())
        _sub(issuer_serial, "ds", "X509SerialNumber", str(certificate.serial_number))
    return key_info


def signed_parts(message):
    """The elements that must be signed: Body, eb:Messaging, UsernameToken (WSS4J's order)."""
    token_header = message.token_header
    parts = [message.envelope.find("S12:Body", NS),
             message.envelope.find("S12:Header/eb:Messaging", NS),
             token_header.find("wsse:UsernameToken", NS) if token_header is not None else None]
    if any(part is None for part in parts) or message.security is None:
        raise As4Error("The message lacks Body, eb:Messaging, a security header or the UsernameToken; "
                       "add the UsernameToken before signing.")
    return parts


def sign(message, certificate, private_key, key_reference="issuer_serial"):
    """Sign Body + eb:Messaging + UsernameToken; record (URI, DigestValue) of every reference."""
    if key_reference not in KEY_REFERENCES:
        raise As4Error("key_reference must be one of %s." % ", ".join(KEY_REFERENCES))
    uris = ["#" + part.get(WSU_ID) for part in signed_parts(message)]
    key_info = _key_info(message, certificate, key_reference)
    signer = XMLSigner(method=SignatureConstructionMethod.detached,
                       signature_algorithm=SignatureMethod.RSA_SHA256,
                       digest_algorithm=DigestAlgorithm.SHA256,
                       c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signer.namespaces = {"ds": NS["ds"]}
    try:
        signature = signer.sign(message.envelope, key=private_key, reference_uri=uris, key_info=key_info)
    except (InvalidInput, ValueError, TypeError) as exc:
        raise As4Error("Signing the AS4 message failed (%s). Fix: sign with an RSA private key that "
                       "belongs to the certificate." % type(exc).__name__) from None
    message.security.append(signature)
    message.references = reference_digests(signature)
    # signxml falls back to signing the whole document when a URI does not resolve: refuse that.
    if [uri for uri, _digest in message.references] != uris:
        raise As4Error("The signature does not reference Body, eb:Messaging and UsernameToken.")
    return signature


def reference_digests(signature):
    """[(URI, DigestValue)] of the ``ds:Reference`` elements under ``signature`` (or NRI)."""
    return [(ref.get("URI"), (ref.findtext("ds:DigestValue", namespaces=NS) or "").strip())
            for ref in signature.iter(_q("ds", "Reference"))]


class NotificationQuery:
    """What the notification probe asks: service, submitterId (CVR) and the window."""

    def __init__(self, submitter_id, date_from, date_to, service="DMS.Import", zone="UTC"):
        self.submitter_id = submitter_id
        self.date_from = date_from
        self.date_to = date_to
        self.service = service
        self.zone = zone


def build_request(kind, gateway_user, gateway_password, certificate, private_key, *, mpc=DEFAULT_MPC,
                  from_party=None, to_party=DEFAULT_TO_PARTY, from_party_type=DEFAULT_PARTY_TYPE,
                  to_party_type=DEFAULT_PARTY_TYPE, key_reference="issuer_serial", notification=None):
    """A signed notification query, ping or pull for ``gateway_user``, ready for ``to_bytes()``."""
    from_party = from_party or "%s_AS4" % gateway_user
    if kind == "notification":
        if notification is None:
            raise As4Error("the notification probe needs a NotificationQuery.")
        message = build_notification(from_party, notification.submitter_id, notification.date_from,
                                     notification.date_to, notification.service, to_party, from_party_type,
                                     to_party_type)
    elif kind == "ping":
        message = build_ping(from_party, to_party, from_party_type, to_party_type)
    elif kind == "pull":
        message = build_pull(mpc or DEFAULT_MPC)
    else:
        raise As4Error("probe must be one of %s." % ", ".join(PROBES))
    add_username_token(message, gateway_user, gateway_password)
    sign(message, certificate, private_key, key_reference)
    return message


# ---------------------------------------------------------------------------------------------
# Answers: MIME

class AnswerFormatError(ValueError):
    """The answer's MIME structure cannot be read; the text says what is wrong."""


class Attachment:
    """One MIME part of a ``multipart/related`` answer besides the SOAP part."""

    def __init__(self, content_id, content_type, data):
        self.content_id = content_id
        self.content_type = content_type
        self.data = data
        self.signed = None          # True/False once the answer's signature was evaluated
        self.status = _status_document(content_type, data)

    def as_dict(self):
        return {"content_id": self.content_id, "content_type": self.content_type, "size": len(self.data),
                "signed": self.signed, "status": self.status,
                "preview": _preview(self.content_type, self.data)}


def _is_xml_type(content_type):
    ctype = (content_type or "").lower()
    return ctype in ("text/xml", "application/xml") or (
        ctype.startswith(("application/", "image/")) and ctype.endswith("+xml"))


def _preview(content_type, data, limit=PREVIEW_CHARS):
    """At most ``limit`` characters of a textual attachment; ``None`` for other content."""
    if not (_is_xml_type(content_type) or (content_type or "").lower().startswith("text/")):
        return None
    text = " ".join(data.decode("utf-8", "replace").split())
    return text[:limit] + ("..." if len(text) > limit else "")


def _safe_parser():
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                           remove_comments=True, remove_pis=True)


def _status_document(content_type, data):
    """Code and message of a DMS status document (``xdms.declaration.status.xsd``), else ``None``."""
    if not _is_xml_type(content_type) and not data.lstrip()[:1] == b"<":
        return None
    try:
        root = etree.fromstring(data, _safe_parser())
    except (etree.XMLSyntaxError, ValueError):
        return None
    if root.tag != "{%s}StatusResponse" % STATUS_NS:
        return None
    message = " ".join((root.findtext("{%s}Message" % STATUS_NS) or "").split())
    return {"code": (root.findtext("{%s}Code" % STATUS_NS) or "").strip() or None,
            "message": message[:PREVIEW_CHARS] or None}


def _content_id(part):
    value = part.get("Content-ID") or ""
    return value.strip().strip("<>") or None


def split_multipart(content_type, body):
    """(SOAP part bytes, [Attachment]) of a ``multipart/related`` answer (RFC 2387).

    The standard library's MIME parser reads the parts; the root part is the one the ``start``
    parameter names, or the first part without one.
    """
    head = ("Content-Type: %s\r\nMIME-Version: 1.0\r\n\r\n" % content_type).encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        reasons = ", ".join(type(defect).__name__ for defect in message.defects) or "no parts"
        raise AnswerFormatError("a multipart/related answer whose parts cannot be read (%s)" % reasons)
    parts = list(message.iter_parts())
    start = (message["Content-Type"].params.get("start") or "").strip().strip("<>")
    root = next((part for part in parts if start and _content_id(part) == start), None)
    if root is None:
        if start:
            raise AnswerFormatError("a multipart/related answer whose start part <%s> is missing" % start)
        root = parts[0]
    attachments = [Attachment(_content_id(part), part.get_content_type(), part.get_payload(decode=True) or b"")
                   for part in parts if part is not root]
    return root.get_payload(decode=True) or b"", attachments


def swa_content(attachment):
    """The octets a ``cid:`` reference with the SwA Attachment-Content-Signature-Transform digests
    (SwA Profile 1.1, 5.4.2): XML content exclusive-C14N'd without comments, text/* with CRLF line
    ends, anything else as it is."""
    if _is_xml_type(attachment.content_type):
        root = etree.fromstring(attachment.data, _safe_parser())
        return etree.tostring(root, method="c14n", exclusive=True, with_comments=False)
    if (attachment.content_type or "").lower().startswith("text/"):
        return re.sub(rb"\r?\n|\r", b"\r\n", attachment.data)
    return attachment.data


# ---------------------------------------------------------------------------------------------
# Answers: who signed

class SignerPolicy:
    """Who may sign the gateway's answers.

    ``certificates``: ``receipt_signer`` (the gateway's signing certificate, or a CA that issued it);
    ``subject`` (an ``x509.Name``) and ``fingerprint`` (SHA-256 bytes) narrow a CA down to one
    signer; ``pinned`` is the SHA-256 the pin file holds for this gateway (trust on first use).
    """

    def __init__(self, certificates=(), subject=None, fingerprint=None, pinned=None):
        self.certificates = list(certificates or [])
        self.subject = subject
        self.fingerprint = fingerprint
        self.pinned = pinned

    @property
    def configured(self):
        return bool(self.certificates or self.pinned)


def load_certificates(pem_data):
    """All certificates in a PEM bundle (the ``receipt_signer`` file)."""
    certs = x509.load_pem_x509_certificates(pem_data)
    if not certs:
        raise ValueError("no certificate")
    return certs


def fingerprint_sha256(cert):
    return cert.fingerprint(hashes.SHA256())


def parse_fingerprint(text):
    """SHA-256 fingerprint bytes from hex (colons, spaces and a ``sha256:`` prefix allowed)."""
    value = re.sub(r"[\s:]", "", re.sub(r"^(?i:sha-?256:)", "", (text or "").strip()))
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError("%r is not a SHA-256 fingerprint (64 hex digits, colons allowed)" % text)
    return raw


# Names some toolkits (Java's X500Principal, OpenSSL) write that RFC 4514 parsers do not know.
_NAME_ATTRIBUTES = {"SERIALNUMBER": "2.5.4.5", "ORGANIZATIONIDENTIFIER": "2.5.4.97", "E": "1.2.840.113549.1.9.1",
                    "EMAILADDRESS": "1.2.840.113549.1.9.1", "GIVENNAME": "2.5.4.42", "SURNAME": "2.5.4.4",
                    "SN": "2.5.4.4", "ST": "2.5.4.8", "STREET": "2.5.4.9", "L": "2.5.4.7"}


def parse_name(text):
    """An ``x509.Name`` from an RFC 4514/2253 string as Java, OpenSSL or cryptography write it, or
    ``None`` when it cannot be read (spaces after commas, ``OID.`` prefixes and upper case are fine)."""
    cleaned = re.sub(r"(?<!\\),\s+", ",", (text or "").strip())
    cleaned = re.sub(r"(^|,)OID\.", r"\1", cleaned)
    overrides = {name: x509.ObjectIdentifier(oid) for name, oid in _NAME_ATTRIBUTES.items()}
    cleaned = re.sub(r"(^|,)([A-Za-z]+)=",
                     lambda m: m.group(1) + (m.group(2).upper() if m.group(2).upper() in overrides else m.group(2))
                     + "=", cleaned)
    try:
        return x509.Name.from_rfc4514_string(cleaned, overrides)
    except ValueError:
        return None


def _same_name(a, b):
    def attributes(name):
        return sorted((attr.oid.dotted_string, str(attr.value).strip()) for attr in name)
    return attributes(a) == attributes(b)


def _describe(cert):
    return cert.subject.rfc4514_string()


def _trusted(cert, signers):
    """``cert`` is one of ``signers`` or directly issued by one of them (a CA)."""
    for signer in signers:
        if fingerprint_sha256(signer) == fingerprint_sha256(cert):
            return True
    for signer in signers:
        try:
            cert.verify_directly_issued_by(signer)
            return True
        except (ValueError, TypeError, CryptoInvalidSignature):
            continue
    return False


def _subject_key_identifier(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


class _KeyReference(namedtuple("_KeyReference", "certificate issuer serial ski thumbprint describe",
                               defaults=(None, None, None, None, None, ""))):
    """What an answer's ``ds:KeyInfo`` says about its signer: a certificate it carries, or a way to
    find one among the configured signers (issuer + serial, SKI, SHA-1 thumbprint)."""

    __slots__ = ()

    def match(self, candidates):
        if self.certificate is not None:
            return self.certificate
        for cert in candidates:
            if self.serial is not None and cert.serial_number == self.serial and (
                    self.issuer is None or _same_name(self.issuer, cert.issuer)):
                return cert
            if self.ski is not None and _subject_key_identifier(cert) == self.ski:
                return cert
            if self.thumbprint is not None and cert.fingerprint(hashes.SHA1()) == self.thumbprint:  # nosec
                return cert
        return None


def _b64(text):
    return base64.b64decode("".join((text or "").split()), validate=True)


def _key_reference(doc, signature):
    """Read ``ds:KeyInfo``; raises ``ValueError`` when it names its certificate unreadably."""
    str_ref = signature.find("ds:KeyInfo/wsse:SecurityTokenReference", NS)
    embedded = signature.findtext("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=NS)
    if embedded:
        return _KeyReference(certificate=x509.load_der_x509_certificate(_b64(embedded)),
                             describe="an embedded X509Certificate")
    if str_ref is None:
        return _KeyReference(describe="no key reference")
    reference = str_ref.find("wsse:Reference", NS)
    if reference is not None and (reference.get("URI") or "").startswith("#"):
        wanted = reference.get("URI")[1:]
        for token in doc.iter(_q("wsse", "BinarySecurityToken")):
            if token.get(WSU_ID) == wanted:
                return _KeyReference(certificate=x509.load_der_x509_certificate(_b64(token.text)),
                                     describe="a BinarySecurityToken")
        raise ValueError("the wsse:Reference %s names no BinarySecurityToken in the answer" % wanted)
    issuer_serial = str_ref.find("ds:X509Data/ds:X509IssuerSerial", NS)
    if issuer_serial is not None:
        issuer_text = (issuer_serial.findtext("ds:X509IssuerName", namespaces=NS) or "").strip()
        serial_text = (issuer_serial.findtext("ds:X509SerialNumber", namespaces=NS) or "").strip()
        if not serial_text.isdigit():
            raise ValueError("ds:X509SerialNumber %r is not a decimal number" % serial_text[:60])
        return _KeyReference(issuer=parse_name(issuer_text), serial=int(serial_text),
                             describe="issuer %s, serial %s" % (issuer_text[:200], serial_text))
    identifier = str_ref.find("wsse:KeyIdentifier", NS)
    if identifier is not None:
        value_type, raw = identifier.get("ValueType"), _b64(identifier.text)
        if value_type == X509V3:
            return _KeyReference(certificate=x509.load_der_x509_certificate(raw), describe="a KeyIdentifier")
        if value_type == X509_SKI:
            return _KeyReference(ski=raw, describe="subject key identifier %s" % raw.hex())
        if value_type == THUMBPRINT_SHA1:
            return _KeyReference(thumbprint=raw, describe="SHA-1 thumbprint %s" % raw.hex())
    return _KeyReference(describe="a key reference this client does not read")


class SignatureCheck:
    """The outcome of ``check_answer_signature``."""

    def __init__(self, status, problems=None, warnings=None, signer=None, signed=None):
        self.status = status            # verified | not_checked | invalid
        self.problems = problems or []
        self.warnings = warnings or []
        self.signer = signer            # the certificate that made a signature that verifies
        self.signed = signed or {}      # {reference URI: signed element} (signxml's verify result)


def _signature(doc):
    signatures = doc.findall("S12:Header/wsse:Security/ds:Signature", NS)
    if len(signatures) > 1 or len(doc.findall(".//ds:Signature", NS)) > len(signatures):
        raise ValueError("the answer holds more than one ds:Signature")
    return signatures[0] if signatures else None


def _signer_for(reference, policy):
    """(certificate to verify with, problem) under ``policy``; (None, None) when nothing is configured
    and the answer does not carry its certificate."""
    if policy.certificates:
        cert = reference.match(policy.certificates)
        if cert is None:
            return None, ("the answer names its signer by %s, which matches no receipt_signer certificate "
                          "(a CA alone cannot be matched to such a reference: give the gateway's signing "
                          "certificate itself)" % reference.describe)
        if not _trusted(cert, policy.certificates):
            return None, ("the answer is signed by %s, which is neither receipt_signer nor issued by it"
                          % _describe(cert))
        if policy.subject is not None and not _same_name(cert.subject, policy.subject):
            return None, ("the answer is signed by %s, not by receipt_signer_subject %s"
                          % (_describe(cert), policy.subject.rfc4514_string()))
        if policy.fingerprint is not None and fingerprint_sha256(cert) != policy.fingerprint:
            return None, ("the answer is signed by %s (SHA-256 %s), not by the certificate "
                          "receipt_signer_fingerprint names" % (_describe(cert), fingerprint_sha256(cert).hex()))
        return cert, None
    cert = reference.certificate
    if policy.pinned is not None and cert is None:
        return None, ("the answer names its signer by %s and does not carry the certificate, so it "
                      "cannot be compared with the pinned one" % reference.describe)
    return cert, None


def _pin_problem(cert, policy):
    if policy.pinned is None or fingerprint_sha256(cert) == policy.pinned:
        return None
    return ("the answer is signed by %s (SHA-256 %s), not by the certificate pinned for this gateway "
            "(SHA-256 %s)" % (_describe(cert), fingerprint_sha256(cert).hex(), policy.pinned.hex()))


def _find_signer(doc, policy):
    """(ds:Signature, the certificate to verify it with, None), or (None, None, the ``SignatureCheck``)
    when the answer's signature cannot be verified at all under ``policy``."""
    try:
        signature = _signature(doc)
    except ValueError as exc:
        return None, None, SignatureCheck("invalid", ["%s" % exc])
    if signature is None:
        if policy.configured:
            return None, None, SignatureCheck("invalid", ["the answer is not signed (no ds:Signature in wsse:Security)"])
        return None, None, SignatureCheck("not_checked", warnings=["the answer is not signed"])
    try:
        reference = _key_reference(doc, signature)
    except (ValueError, TypeError, binascii.Error) as exc:
        return None, None, SignatureCheck("invalid", ["the answer's signing certificate cannot be read (%s)"
                                                      % " ".join(str(exc).split())[:200]])
    cert, problem = _signer_for(reference, policy)
    if problem:
        return None, None, SignatureCheck("invalid", [problem])
    if cert is None:
        return None, None, SignatureCheck("not_checked", warnings=[
            "the answer names its signer by %s and no receipt_signer is set, so its signature could not "
            "be checked" % reference.describe])
    return signature, cert, None


def _mark_attachments(attachments, signed):
    """Mark each attachment ``signed`` or not; a warning for each one the signature does not cover."""
    warnings = []
    for attachment in attachments:
        attachment.signed = "cid:%s" % attachment.content_id in signed
        if not attachment.signed:
            warnings.append("attachment <%s> is not covered by the answer's signature: its content is "
                            "unproven" % attachment.content_id)
    return warnings


def check_answer_signature(doc, attachments, policy):
    """Verify the answer's signature as ``policy`` allows; see the module docstring for the states.

    The signature must cover the answer's own Body and ``eb:Messaging`` ("see what is signed"); an
    attachment it does not cover is marked ``signed: false`` and named in a warning.
    """
    signature, cert, unverifiable = _find_signer(doc, policy)
    if unverifiable is not None:
        return unverifiable
    signed, error = _verify(doc, signature, cert, attachments)
    if error:
        return SignatureCheck("invalid", ["the answer's signature does not verify (%s): it was altered on "
                                          "the way or not signed by %s" % (error, _describe(cert))], signer=None)
    problems = _coverage_problems(doc, signed) + [p for p in (_pin_problem(cert, policy),) if p]
    warnings = _mark_attachments(attachments, signed)
    if problems:
        return SignatureCheck("invalid", problems, warnings, signer=cert, signed=signed)
    if policy.configured:
        return SignatureCheck("verified", warnings=warnings, signer=cert, signed=signed)
    warnings.insert(0, "the answer's signature was checked only against the certificate it carries "
                       "(%s), so its origin is unproven; set receipt_signer (or receipt_signer_pin_file) "
                       "to check who signed it" % _describe(cert))
    return SignatureCheck("not_checked", warnings=warnings, signer=cert, signed=signed)


def _verify(doc, signature, cert, attachments):
    """({URI: signed element or octets}, None) when the signature verifies with ``cert``, else (None, why)."""
    by_cid = {"cid:%s" % a.content_id: a for a in attachments if a.content_id}

    def resolve(uri):
        attachment = by_cid.get(uri)
        return swa_content(attachment) if attachment is not None else None

    for ref in signature.findall("ds:SignedInfo/ds:Reference", NS):
        uri = ref.get("URI") or ""
        algorithms = [t.get("Algorithm") for t in ref.findall("ds:Transforms/ds:Transform", NS)]
        if uri.startswith("cid:") and algorithms != [SWA_CONTENT_TRANSFORM]:
            return None, "reference %s uses transforms %s; only the SwA Attachment-Content-Signature-" \
                         "Transform is read" % (uri[:80], ", ".join(a or "?" for a in algorithms) or "none")
    config = SignatureConfiguration(
        expect_references=True,
        location="./{%s}Header/{%s}Security/" % (NS["S12"], NS["wsse"]),
        signature_methods=frozenset([SignatureMethod.RSA_SHA256]),
        digest_algorithms=frozenset([DigestAlgorithm.SHA256]),
    )
    try:
        results = XMLVerifier().verify(doc, x509_cert=cert, expect_config=config, uri_resolver=resolve)
    except (InvalidSignature, InvalidInput, ValueError, etree.XMLSyntaxError) as exc:
        return None, " ".join(str(exc).split())[:200] or type(exc).__name__
    results = results if isinstance(results, list) else [results]
    uris = [ref.get("URI") for ref in signature.findall("ds:SignedInfo/ds:Reference", NS)]
    return {uri: (result.signed_xml if result.signed_xml is not None else result.signed_data)
            for uri, result in zip(uris, results)}, None


def _coverage_problems(doc, signed):
    needed = [element for element in (doc.find("S12:Body", NS), doc.find("S12:Header/eb:Messaging", NS))
              if element is not None]
    if len(needed) != 2 or any("#%s" % (element.get(WSU_ID) or "") not in signed for element in needed):
        return ["the answer's signature does not cover its Body and eb:Messaging"]
    return []


# ---------------------------------------------------------------------------------------------
# Answers: classification

class Answer:
    """A classified gateway answer.

    ``kind``: ``receipt`` | ``response`` (a user message answering ours) | ``empty_pull`` |
    ``user_message`` (a pulled message) | ``error`` | ``soap_fault`` | ``not_as4``.  ``problems``
    lists why the answer cannot be trusted (empty when it can); ``warnings`` things worth saying that
    do not make it invalid; ``answer_signature`` what its signature proved.
    """

    def __init__(self, kind, status, detail, ebms_error=None, message_id=None, ref_to_message_id=None,
                 problems=None, warnings=None, pulled_message_id=None):
        self.kind, self.status, self.detail = kind, status, detail
        self.ebms_error, self.message_id, self.ref_to_message_id = ebms_error, message_id, ref_to_message_id
        self.problems, self.warnings = problems or [], warnings or []
        self.pulled_message_id = pulled_message_id
        self.answer_signature = "not_checked"
        self.signer_certificate = None
        self.attachments = []
        self.properties = {}
        self.original_message_id = None
        self.service = None
        self.action = None
        self.security_fault = None    # WS-Security fault code of a SOAP fault (FailedAuthentication ...)

    @property
    def valid(self):
        return not self.problems

    @property
    def signer(self):
        return _describe(self.signer_certificate) if self.signer_certificate is not None else None

    @property
    def signer_fingerprint(self):
        return fingerprint_sha256(self.signer_certificate).hex() if self.signer_certificate is not None else None

    def as_dict(self):
        return {"kind": self.kind, "http_status": self.status, "detail": self.detail,
                "ebms_error": self.ebms_error, "message_id": self.message_id,
                "ref_to_message_id": self.ref_to_message_id, "signer": self.signer,
                "signer_fingerprint_sha256": self.signer_fingerprint,
                "answer_signature": self.answer_signature,
                "problems": list(self.problems), "warnings": list(self.warnings),
                "pulled_message_id": self.pulled_message_id,
                "original_message_id": self.original_message_id,
                "service": self.service, "action": self.action,
                "properties": dict(self.properties),
                "attachments": [attachment.as_dict() for attachment in self.attachments],
                "security_fault": self.security_fault}


def _ebms_error(error):
    return {
        "code": error.get("errorCode"),
        "severity": error.get("severity"),
        "short_description": error.get("shortDescription"),
        "category": error.get("category"),
        "ref_to_message_in_error": error.get("refToMessageInError"),
        "description": " ".join((error.findtext("eb:Description", namespaces=NS) or "").split()) or None,
        "detail": " ".join((error.findtext("eb:ErrorDetail", namespaces=NS) or "").split())[:500] or None,
    }


def _qname_text(element):
    """``{namespace}local`` of a QName-valued element (``wsse:FailedAuthentication``)."""
    text = (element.text or "").strip()
    prefix, _sep, local = text.rpartition(":")
    namespace = element.nsmap.get(prefix or None)
    return "{%s}%s" % (namespace, local) if namespace else local


def _soap_fault(fault):
    """(text, WS-Security fault code or None): the code is looked for in Value and every Subcode."""
    values = fault.findall("S12:Code/S12:Value", NS) + fault.findall("S12:Code//S12:Subcode/S12:Value", NS)
    security = None
    for value in values:
        name = _qname_text(value)
        if name.startswith("{%s}" % NS["wsse"]):
            security = name.split("}", 1)[1]
    code = " / ".join((value.text or "?").strip() for value in values) or "?"
    reason = fault.findtext("S12:Reason/S12:Text", namespaces=NS) or ""
    return "SOAP fault %s: %s" % (code, " ".join(reason.split())[:300]), security


class _Facts:
    """The values of one ``eb:Messaging`` that classification reads."""

    def __init__(self, messaging):
        self.signal = messaging.find("eb:SignalMessage", NS)
        self.user_message = messaging.find("eb:UserMessage", NS)
        holder = self.signal if self.signal is not None else self.user_message
        info = holder.find("eb:MessageInfo", NS) if holder is not None else None
        self.message_id = _text(info, "eb:MessageId")
        self.ref = _text(info, "eb:RefToMessageId")
        self.error = self.signal.find("eb:Error", NS) if self.signal is not None else None
        self.receipt = self.signal.find("eb:Receipt", NS) if self.signal is not None else None
        user = self.user_message
        self.service = _text(user, "eb:CollaborationInfo/eb:Service")
        self.action = _text(user, "eb:CollaborationInfo/eb:Action")
        self.properties = [(p.get("name") or "", " ".join((p.text or "").split())[:PREVIEW_CHARS])
                           for p in (user.findall("eb:MessageProperties/eb:Property", NS) if user is not None else [])]
        self.part_hrefs = [p.get("href") for p in (user.findall("eb:PayloadInfo/eb:PartInfo", NS)
                                                   if user is not None else []) if p.get("href")]


def _text(element, path):
    if element is None:
        return None
    value = element.findtext(path, namespaces=NS)
    return value.strip() if value is not None else None


def _parse_soap(data):
    return etree.fromstring(data, _safe_parser())


def classify_answer(status, content_type, body, request, policy=None):
    """Classify the gateway's HTTP answer to ``request`` (an ``OutgoingMessage``) under ``policy``."""
    policy = policy if policy is not None else SignerPolicy()
    ctype = (content_type or "").split(";")[0].strip().lower()
    if not body or not body.strip():
        return Answer("not_as4", status, "HTTP %s with an empty body (no AS4 signal)" % status)
    attachments = []
    soap = body
    if ctype == "multipart/related":
        try:
            soap, attachments = split_multipart(content_type, body)
        except AnswerFormatError as exc:
            return Answer("not_as4", status, "HTTP %s with %s" % (status, exc))
    try:
        doc = _parse_soap(soap)
    except (etree.XMLSyntaxError, ValueError):
        return Answer("not_as4", status, "HTTP %s %s that is not XML: %s"
                      % (status, ctype or "without Content-Type", _http.snippet(soap, 120)))
    if doc.tag != _q("S12", "Envelope"):
        return Answer("not_as4", status, "HTTP %s with XML that is not a SOAP 1.2 envelope (root %s): %s"
                      % (status, etree.QName(doc).localname, _http.snippet(soap, 120)))

    messaging = doc.findall("S12:Header/eb:Messaging", NS)
    fault = doc.find("S12:Body/S12:Fault", NS)
    if len(messaging) != 1:
        if fault is not None:
            return _fault_answer(status, fault)
        return Answer("not_as4", status, "HTTP %s SOAP envelope without eb:Messaging" % status)
    facts = _Facts(messaging[0])
    if facts.error is not None and not (_ebms_error(facts.error)["code"] == EMPTY_MPC_CODE and request.kind == "pull"):
        ebms = _ebms_error(facts.error)
        detail = "%s %s (%s): %s" % (ebms["code"], ebms["short_description"], ebms["severity"],
                                     ebms["detail"] or ebms["description"] or "no detail")
        return Answer("error", status, detail, ebms_error=ebms, message_id=facts.message_id,
                      ref_to_message_id=facts.ref)
    if fault is not None:
        return _fault_answer(status, fault)

    check = check_answer_signature(doc, attachments, policy)
    signed_messaging = check.signed.get("#%s" % (messaging[0].get(WSU_ID) or ""))
    if signed_messaging is not None and not isinstance(signed_messaging, bytes):
        facts = _Facts(signed_messaging)  # read what the signature covers, nothing else
    answer = _classify_facts(status, facts, request)
    answer.answer_signature = check.status
    answer.signer_certificate = check.signer
    answer.problems = check.problems + answer.problems
    answer.warnings = check.warnings + answer.warnings
    answer.attachments = attachments
    _check_payload_references(answer, facts)
    return answer


def _fault_answer(status, fault):
    text, security = _soap_fault(fault)
    answer = Answer("soap_fault", status, text)
    answer.security_fault = security
    return answer


def _classify_facts(status, facts, request):
    if facts.error is not None:  # EBMS:0006 on a pull
        ebms = _ebms_error(facts.error)
        answer = Answer("empty_pull", status, "EBMS:0006 EmptyMessagePartitionChannel on %s" % request.mpc,
                        ebms_error=ebms, message_id=facts.message_id, ref_to_message_id=facts.ref)
        _check_ref(answer, request)
        return answer
    if facts.receipt is not None:
        answer = Answer("receipt", status, "receipt %s for %s" % (facts.message_id, facts.ref),
                        message_id=facts.message_id, ref_to_message_id=facts.ref)
        _check_ref(answer, request)
        _check_receipt(facts.receipt, request, answer.problems)
        return answer
    if facts.user_message is not None:
        if request.kind == "pull":
            answer = Answer("user_message", status, "the pull took the waiting message %s from %s"
                            % (facts.message_id, request.mpc), message_id=facts.message_id,
                            ref_to_message_id=facts.ref, pulled_message_id=facts.message_id)
            # As the reference client reads it: the first property is the original message's id.
            answer.original_message_id = facts.properties[0][1] if facts.properties else None
        else:
            detail = "%s %s answer %s to %s" % (facts.service, facts.action, facts.message_id, facts.ref)
            answer = Answer("response", status, detail, message_id=facts.message_id, ref_to_message_id=facts.ref)
            _check_ref(answer, request)
        answer.service, answer.action = facts.service, facts.action
        answer.properties = dict(facts.properties)
        return answer
    return Answer("not_as4", status, "HTTP %s eb:Messaging holds neither a receipt, a user message nor an "
                  "error signal" % status, message_id=facts.message_id, ref_to_message_id=facts.ref)


def _check_payload_references(answer, facts):
    """Every PartInfo ``cid:`` of a user message names an attachment that came with it."""
    present = {"cid:%s" % a.content_id for a in answer.attachments}
    missing = [href for href in facts.part_hrefs if href.startswith("cid:") and href not in present]
    if missing:
        answer.warnings.append("the answer lists payload %s but carries no such attachment"
                               % ", ".join(missing[:5]))


def _check_receipt(receipt, request, problems):
    """NonRepudiationInformation lists exactly the digests of the message sent."""
    nri = receipt.find("ebbp:NonRepudiationInformation", NS)
    if nri is None:
        problems.append("the receipt carries no ebbp:NonRepudiationInformation")
        return
    theirs = sorted(reference_digests(nri))
    ours = sorted(request.references)
    if theirs != ours:
        missing = [uri for uri, digest in ours if (uri, digest) not in theirs]
        problems.append("the receipt's NonRepudiationInformation digests do not match the message "
                        "sent (differing references: %s)" % (", ".join(missing) or "extra entries"))


def _check_ref(answer, request):
    if answer.ref_to_message_id != request.message_id:
        answer.problems.append("the answer refers to message %s, not the one sent (%s)"
                               % (answer.ref_to_message_id, request.message_id))
