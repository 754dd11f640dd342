# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build, sign and classify ebMS3 / AS4 messages for the gateway.  Knows no Ansible.

What is sent and checked is the wire contract in ``docs/gateway.md`` (SKAT's reference client):

* a SOAP 1.2 envelope with ``eb:Messaging`` holding either the ebMS3 test service/action
  (``build_ping``) or an ``eb:PullRequest`` signal (``build_pull``);
* a WS-Security UsernameToken with a PasswordDigest (``add_username_token``);
* an XML signature: RSA-SHA256, exclusive C14N, SHA-256, over Body + ``eb:Messaging`` +
  UsernameToken, key reference IssuerSerial or a BinarySecurityToken (``sign``).

Signing and verifying are done by signxml (``XMLSigner`` in detached mode with several references
and a custom ``KeyInfo``, which is how signxml expresses the WS-Security
``SecurityTokenReference`` layout; ``XMLVerifier`` for answers).  Written by hand here is only what
no library does: the envelope, the UsernameToken digest and the ebMS-level checks of an answer
(RefToMessageId, NonRepudiationInformation).

``classify_answer`` turns an HTTP answer into an ``Answer``: a receipt, an empty-pull warning, a
pulled user message, an ebMS error signal, a SOAP fault or something that is not AS4 at all.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import uuid

try:
    from lxml import etree
    HAS_LXML = True
    LXML_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - reported by the module
    HAS_LXML = False
    LXML_IMPORT_ERROR = _exc

try:
    from signxml import (CanonicalizationMethod, DigestAlgorithm, SignatureConfiguration,
                         SignatureConstructionMethod, SignatureMethod, XMLSigner, XMLVerifier)
    from signxml.exceptions import InvalidInput, InvalidSignature
    HAS_SIGNXML = True
    SIGNXML_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover
    HAS_SIGNXML = False
    SIGNXML_IMPORT_ERROR = _exc

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = _exc

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
DEFAULT_MPC = EBMS_BASE + "/defaultMPC"
DEFAULT_TO_PARTY = "SKAT-MFT-AS4"
DEFAULT_PARTY_TYPE = "string"
PASSWORD_DIGEST = ("http://docs.oasis-open.org/wss/2004/01/"
                   "oasis-200401-wss-username-token-profile-1.0#PasswordDigest")
BASE64_BINARY = ("http://docs.oasis-open.org/wss/2004/01/"
                 "oasis-200401-wss-soap-message-security-1.0#Base64Binary")
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
CONTENT_TYPE = "application/soap+xml; charset=utf-8"
KEY_REFERENCES = ("issuer_serial", "binary_security_token")
WSU_ID = "{%s}Id" % NS["wsu"]
EMPTY_MPC_CODE = "EBMS:0006"


class As4Error(Exception):
    """A message could not be built or signed; the text names the cause and the fix."""


def _q(prefix, name):
    return "{%s}%s" % (NS[prefix], name)


def _sub(parent, prefix, name, text=None, **attrib):
    element = etree.SubElement(parent, _q(prefix, name), **attrib)
    if text is not None:
        element.text = text
    return element


def xsd_datetime(moment=None):
    """UTC ``xsd:dateTime`` with milliseconds and ``Z``, as the reference client writes it."""
    moment = moment or datetime.datetime.now(datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_message_id():
    return "%s@dkcustoms.dms" % uuid.uuid4()


def _new_id(kind):
    return "_%s-%s" % (kind, uuid.uuid4().hex)


class OutgoingMessage:
    """A built (and, once ``sign`` ran, signed) request."""

    def __init__(self, envelope, message_id, kind, mpc=None):
        self.envelope = envelope
        self.message_id = message_id
        self.kind = kind          # "ping" or "pull"
        self.mpc = mpc
        self.references = []      # [(uri, digest value)] of our signature, filled by sign()

    def to_bytes(self):
        return etree.tostring(self.envelope, xml_declaration=True, encoding="UTF-8")

    @property
    def security(self):
        return self.envelope.find("S12:Header/wsse:Security", NS)


def _envelope():
    envelope = etree.Element(_q("S12", "Envelope"),
                             nsmap={k: NS[k] for k in ("S12", "eb", "wsse", "wsu", "ds")})
    header = _sub(envelope, "S12", "Header")
    messaging = _sub(header, "eb", "Messaging")
    messaging.set(_q("S12", "mustUnderstand"), "true")
    messaging.set(WSU_ID, _new_id("messaging"))
    security = _sub(header, "wsse", "Security")
    security.set(_q("S12", "mustUnderstand"), "true")
    body = _sub(envelope, "S12", "Body")
    body.set(WSU_ID, _new_id("body"))
    return envelope, messaging


def _message_info(parent, message_id, now=None):
    info = _sub(parent, "eb", "MessageInfo")
    _sub(info, "eb", "Timestamp", xsd_datetime(now))
    _sub(info, "eb", "MessageId", message_id)


def build_ping(from_party, to_party=DEFAULT_TO_PARTY, from_party_type=DEFAULT_PARTY_TYPE,
               to_party_type=DEFAULT_PARTY_TYPE, service=TEST_SERVICE, action=TEST_ACTION,
               conversation_id="placeholder", message_id=None, now=None):
    """ebMS3 UserMessage for the test service/action, which a gateway answers without delivering."""
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
    _sub(collaboration, "eb", "Service", service)
    _sub(collaboration, "eb", "Action", action)
    _sub(collaboration, "eb", "ConversationId", conversation_id)
    return OutgoingMessage(envelope, message_id, "ping")


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
    """Add the UsernameToken (PasswordDigest, Nonce, Created) to the Security header.

    Only the digest goes on the wire; the password itself is never stored in the message.
    """
    nonce = nonce if nonce is not None else os.urandom(16)
    created = created or xsd_datetime()
    token = _sub(message.security, "wsse", "UsernameToken")
    token.set(WSU_ID, _new_id("token"))
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
        token_id = _new_id("x509")
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
    """The elements that must be signed: Body, eb:Messaging, UsernameToken (in that order)."""
    parts = [message.envelope.find("S12:Body", NS),
             message.envelope.find("S12:Header/eb:Messaging", NS),
             message.envelope.find("S12:Header/wsse:Security/wsse:UsernameToken", NS)]
    if any(part is None for part in parts):
        raise As4Error("The message lacks Body, eb:Messaging or the UsernameToken; add the "
                       "UsernameToken before signing.")
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


def build_request(kind, gateway_user, gateway_password, certificate, private_key, *, mpc=DEFAULT_MPC,
                  from_party=None, to_party=DEFAULT_TO_PARTY, from_party_type=DEFAULT_PARTY_TYPE,
                  to_party_type=DEFAULT_PARTY_TYPE, key_reference="issuer_serial"):
    """A signed ping or pull for ``gateway_user``, ready for ``to_bytes()``."""
    if kind == "ping":
        message = build_ping(from_party or "%s_AS4" % gateway_user, to_party, from_party_type,
                             to_party_type)
    elif kind == "pull":
        message = build_pull(mpc or DEFAULT_MPC)
    else:
        raise As4Error("probe must be ping or pull.")
    add_username_token(message, gateway_user, gateway_password)
    sign(message, certificate, private_key, key_reference)
    return message


# ---------------------------------------------------------------------------------------------
# Answers

class Answer:
    """A classified gateway answer.

    ``kind``: ``receipt`` | ``empty_pull`` | ``user_message`` | ``error`` | ``soap_fault`` |
    ``not_as4``.  ``problems`` lists why a receipt/signal cannot be trusted (empty when it can);
    ``warnings`` lists things worth saying that do not make it invalid.
    """

    def __init__(self, kind, status, detail, ebms_error=None, message_id=None, ref_to_message_id=None,
                 signer=None, problems=None, warnings=None, pulled_message_id=None):
        self.kind = kind
        self.status = status
        self.detail = detail
        self.ebms_error = ebms_error
        self.message_id = message_id
        self.ref_to_message_id = ref_to_message_id
        self.signer = signer
        self.problems = problems or []
        self.warnings = warnings or []
        self.pulled_message_id = pulled_message_id

    @property
    def valid(self):
        return not self.problems

    def as_dict(self):
        return {"kind": self.kind, "http_status": self.status, "detail": self.detail,
                "ebms_error": self.ebms_error, "message_id": self.message_id,
                "ref_to_message_id": self.ref_to_message_id, "signer": self.signer,
                "problems": list(self.problems), "warnings": list(self.warnings),
                "pulled_message_id": self.pulled_message_id}


def _snippet(body, limit=120):
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


def _parse(body):
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                             remove_comments=False)
    return etree.fromstring(body, parser=parser)


def _ebms_error(error):
    return {
        "code": error.get("errorCode"),
        "severity": error.get("severity"),
        "short_description": error.get("shortDescription"),
        "category": error.get("category"),
        "ref_to_message_in_error": error.get("refToMessageInError"),
        "description": (error.findtext("eb:Description", namespaces=NS) or "").strip() or None,
        "detail": (error.findtext("eb:ErrorDetail", namespaces=NS) or "").strip() or None,
    }


def _soap_fault_text(fault):
    code = fault.findtext("S12:Code/S12:Value", namespaces=NS) or "?"
    reason = fault.findtext("S12:Reason/S12:Text", namespaces=NS) or ""
    return "SOAP fault %s: %s" % (code.strip(), " ".join(reason.split())[:300])


def load_certificates(pem_data):
    """All certificates in a PEM bundle (the ``receipt_signer`` file)."""
    certs = x509.load_pem_x509_certificates(pem_data)
    if not certs:
        raise ValueError("no certificate")
    return certs


def _fingerprint(cert):
    return cert.fingerprint(hashes.SHA256())


def _token_certificate(doc, signature):
    """The certificate the signature's KeyInfo points at (BST reference or X509Certificate)."""
    reference = signature.find("ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference", NS)
    if reference is not None and (reference.get("URI") or "").startswith("#"):
        wanted = reference.get("URI")[1:]
        for token in doc.iter(_q("wsse", "BinarySecurityToken")):
            if token.get(WSU_ID) == wanted:
                return x509.load_der_x509_certificate(base64.b64decode("".join(token.text.split())))
    embedded = signature.findtext("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=NS)
    if embedded:
        return x509.load_der_x509_certificate(base64.b64decode("".join(embedded.split())))
    return None


def _trusted(cert, signers):
    """``cert`` is one of ``signers`` or directly issued by one of them (a pinned CA)."""
    for signer in signers:
        if _fingerprint(signer) == _fingerprint(cert):
            return True
    for signer in signers:
        try:
            cert.verify_directly_issued_by(signer)
            return True
        except (ValueError, TypeError, CryptoInvalidSignature):
            continue
    return False


def _describe(cert):
    return cert.subject.rfc4514_string()


def verify_answer_signature(doc, signers):
    """Verify the answer's signature; return (signer subject, problems, warnings).

    Trust comes from ``signers`` (the gateway certificate or its CA, option ``receipt_signer``),
    never from the certificate the answer carries.  The signature must cover this answer's Body
    and eb:Messaging ("see what is signed").
    """
    problems, warnings = [], []
    signature = doc.find("S12:Header/wsse:Security/ds:Signature", NS)
    if signature is None:
        return None, ["the answer is not signed (no ds:Signature in wsse:Security)"], warnings
    try:
        token_cert = _token_certificate(doc, signature)
    except (ValueError, TypeError):
        return None, ["the answer's signing certificate (BinarySecurityToken) cannot be read"], warnings
    if signers:
        if token_cert is None:
            candidates = list(signers)
        elif _trusted(token_cert, signers):
            candidates = [token_cert]
        else:
            return _describe(token_cert), [
                "the answer is signed by %s, which is neither receipt_signer nor issued by it"
                % _describe(token_cert)], warnings
    elif token_cert is not None:
        candidates = [token_cert]
        warnings.append("the answer's signature was checked against the certificate it carries; set "
                        "receipt_signer to the gateway certificate to check who signed it")
    else:
        return None, ["the answer names no signing certificate and no receipt_signer is set"], warnings

    config = SignatureConfiguration(
        expect_references=True,
        location="./{%s}Header/{%s}Security/" % (NS["S12"], NS["wsse"]),
        signature_methods=frozenset([SignatureMethod.RSA_SHA256]),
        digest_algorithms=frozenset([DigestAlgorithm.SHA256]),
    )
    last_error = None
    for cert in candidates:
        try:
            XMLVerifier().verify(doc, x509_cert=cert, expect_config=config)
        except (InvalidSignature, InvalidInput, ValueError) as exc:
            last_error = exc
            continue
        signed = {uri for uri, _digest in reference_digests(signature.find("ds:SignedInfo", NS))}
        needed = {"#%s" % element.get(WSU_ID) for element in
                  (doc.find("S12:Body", NS), doc.find("S12:Header/eb:Messaging", NS))
                  if element is not None}
        if not needed or not needed <= signed:
            problems.append("the answer's signature does not cover its Body and eb:Messaging")
        return _describe(cert), problems, warnings
    reason = " ".join(str(last_error).split())[:200] if last_error else "no usable key"
    return (_describe(token_cert) if token_cert is not None else None,
            ["the answer's signature does not verify (%s): it was altered on the way or not "
             "signed by the gateway" % reason], warnings)


def _check_receipt(signal, request, problems):
    """RefToMessageId is ours and NonRepudiationInformation lists exactly our digests."""
    nri = signal.find("eb:Receipt/ebbp:NonRepudiationInformation", NS)
    if nri is None:
        problems.append("the receipt carries no ebbp:NonRepudiationInformation")
        return
    theirs = sorted(reference_digests(nri))
    ours = sorted(request.references)
    if theirs != ours:
        missing = [uri for uri, digest in ours if (uri, digest) not in theirs]
        problems.append("the receipt's NonRepudiationInformation digests do not match the message "
                        "sent (differing references: %s)" % (", ".join(missing) or "extra entries"))


def classify_answer(status, content_type, body, request, signers=None):
    """Classify the gateway's HTTP answer to ``request`` (an ``OutgoingMessage``)."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if not body or not body.strip():
        return Answer("not_as4", status, "HTTP %s with an empty body (no AS4 signal)" % status)
    try:
        doc = _parse(body)
    except etree.XMLSyntaxError:
        return Answer("not_as4", status, "HTTP %s %s that is not XML: %s"
                      % (status, ctype or "without Content-Type", _snippet(body)))
    if doc.tag != _q("S12", "Envelope"):
        return Answer("not_as4", status, "HTTP %s with XML that is not a SOAP 1.2 envelope (root %s): %s"
                      % (status, etree.QName(doc).localname, _snippet(body)))

    messaging = doc.findall("S12:Header/eb:Messaging", NS)
    fault = doc.find("S12:Body/S12:Fault", NS)
    if len(messaging) != 1:
        if fault is not None:
            return Answer("soap_fault", status, _soap_fault_text(fault))
        return Answer("not_as4", status, "HTTP %s SOAP envelope without eb:Messaging" % status)
    messaging = messaging[0]
    signal = messaging.find("eb:SignalMessage", NS)
    user_message = messaging.find("eb:UserMessage", NS)
    holder = signal if signal is not None else user_message
    info = holder.find("eb:MessageInfo", NS) if holder is not None else None
    message_id = info.findtext("eb:MessageId", namespaces=NS) if info is not None else None
    ref = info.findtext("eb:RefToMessageId", namespaces=NS) if info is not None else None

    error = signal.find("eb:Error", NS) if signal is not None else None
    if error is not None:
        ebms = _ebms_error(error)
        if ebms["code"] == EMPTY_MPC_CODE and request.kind == "pull":
            answer = Answer("empty_pull", status, "EBMS:0006 EmptyMessagePartitionChannel on %s"
                            % request.mpc, ebms_error=ebms, message_id=message_id,
                            ref_to_message_id=ref)
            answer.signer, answer.problems, answer.warnings = verify_answer_signature(doc, signers)
            _check_ref(answer, request)
            return answer
        detail = "%s %s (%s): %s" % (ebms["code"], ebms["short_description"], ebms["severity"],
                                     ebms["detail"] or ebms["description"] or "no detail")
        return Answer("error", status, detail, ebms_error=ebms, message_id=message_id,
                      ref_to_message_id=ref)
    if fault is not None:
        return Answer("soap_fault", status, _soap_fault_text(fault))

    if signal is not None and signal.find("eb:Receipt", NS) is not None:
        answer = Answer("receipt", status, "receipt %s for %s" % (message_id, ref),
                        message_id=message_id, ref_to_message_id=ref)
        answer.signer, answer.problems, answer.warnings = verify_answer_signature(doc, signers)
        _check_ref(answer, request)
        _check_receipt(signal, request, answer.problems)
        return answer
    if user_message is not None and request.kind == "pull":
        answer = Answer("user_message", status, "the pull took the waiting message %s from %s"
                        % (message_id, request.mpc), message_id=message_id,
                        pulled_message_id=message_id)
        answer.signer, answer.problems, answer.warnings = verify_answer_signature(doc, signers)
        return answer
    return Answer("not_as4", status, "HTTP %s eb:Messaging holds neither a receipt nor an error "
                  "signal" % status, message_id=message_id, ref_to_message_id=ref)


def _check_ref(answer, request):
    if answer.ref_to_message_id != request.message_id:
        answer.problems.append("the signal answers message %s, not the one sent (%s)"
                               % (answer.ref_to_message_id, request.message_id))
