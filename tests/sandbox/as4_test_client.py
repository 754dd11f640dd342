"""A small, independent AS4 message builder for the gateway tests.

It builds Notification queries, pings and pulls as docs/gateway.md describes and signs them by hand
(lxml exclusive C14N + cryptography RSA-SHA256), so that the gateway's signxml verifier is checked
against a signer that is neither signxml's nor the collection's (plugins/module_utils/_as4.py is
deliberately not used).  Knobs let the tests make bad messages: unsigned, tampered, the UsernameToken
in the wrong header, wrong password, stale Created, ...  ``split_answer`` reads a multipart answer
with the standard library's MIME parser; ``xmlsec1_verify`` runs libxmlsec1 on a signed document.
"""

from __future__ import annotations

import base64
import datetime
import email
import email.policy
import hashlib
import os
import shutil
import subprocess
import uuid
import zoneinfo

import pytest

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

NS = {
    "S12": "http://www.w3.org/2003/05/soap-envelope",
    "eb": "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "ebbp": "http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0",
}
EBMS = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704"
TEST_SERVICE = EBMS + "/service"
TEST_ACTION = EBMS + "/test"
PASSWORD_DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
PASSWORD_TEXT = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"
BASE64_BINARY = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
WSU_ID = "{%s}Id" % NS["wsu"]
ROLE = "{%s}role" % NS["S12"]


def q(prefix, name):
    return "{%s}%s" % (NS[prefix], name)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def xsd_datetime(moment):
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def notification_dates(minutes=5, zone="Europe/Copenhagen"):
    """(dateFrom, dateTo) of a window ending now, written 2022-03-22T12:30:00.000 in Danish time."""
    end = utc_now().astimezone(zoneinfo.ZoneInfo(zone)).replace(tzinfo=None)
    return tuple(moment.isoformat(timespec="milliseconds") for moment in (end - datetime.timedelta(minutes=minutes), end))


def notification_properties(gateway_user, minutes=5):
    date_from, date_to = notification_dates(minutes)
    return {"lang": "EN", "submitterId": gateway_user.split("_")[1], "dateFrom": date_from, "dateTo": date_to}


def build(gateway_user, password, cert, key, *, kind="notification", mpc=None, sign=True,
          key_reference="issuer_serial", signed_parts=("body", "messaging", "token"), token_header="ebms",
          created=None, nonce=None, username=None, password_type=PASSWORD_DIGEST, from_party=None,
          to_party="SKAT-MFT-AS4", party_type="string", service=None, service_type=None, action=None,
          properties=None, signature_method=RSA_SHA256, issuer_name=None, tamper=None):
    """Return the request envelope (lxml element). ``tamper(envelope)`` runs after signing.

    ``kind``: ``notification`` (DMS.Import / Notification with lang, submitterId, dateFrom, dateTo),
    ``ping`` (the ebMS3 test service), ``user`` (``service``/``action`` as given), ``pull``, or
    ``receipt`` (a signal the gateway does not serve).  ``token_header``: ``ebms`` (its own header with
    S12:role="ebms"), ``default`` (in the signature's header) or ``other`` (a header for another role).
    """
    envelope = etree.Element(q("S12", "Envelope"), nsmap={k: NS[k] for k in ("S12", "eb", "wsse", "wsu", "ds")})
    header = etree.SubElement(envelope, q("S12", "Header"))
    messaging = etree.SubElement(header, q("eb", "Messaging"))
    messaging.set(q("S12", "mustUnderstand"), "true")
    messaging.set(WSU_ID, "_messaging-" + uuid.uuid4().hex)
    user = kind in ("notification", "ping", "user")
    unit = etree.SubElement(messaging, q("eb", "UserMessage" if user else "SignalMessage"))
    info = etree.SubElement(unit, q("eb", "MessageInfo"))
    etree.SubElement(info, q("eb", "Timestamp")).text = xsd_datetime(utc_now())
    etree.SubElement(info, q("eb", "MessageId")).text = str(uuid.uuid4())
    if user:
        defaults = {"notification": ("DMS.Import", "string", "Notification"), "ping": (TEST_SERVICE, None, TEST_ACTION),
                    "user": (service, service_type, action)}[kind]
        service, service_type, action = (service or defaults[0], service_type if service_type is not None else defaults[1],
                                         action or defaults[2])
        if kind == "notification" and properties is None:
            properties = notification_properties(gateway_user)
        _user_message(unit, from_party or f"{gateway_user}_AS4", to_party, party_type, service, service_type, action,
                      properties)
    elif kind == "pull":
        pull = etree.SubElement(unit, q("eb", "PullRequest"))
        if mpc:
            pull.set("mpc", mpc)
    else:  # a signal the gateway does not serve (a receipt sent to it)
        etree.SubElement(unit, q("eb", "Receipt"))

    security = etree.SubElement(header, q("wsse", "Security"))
    security.set(q("S12", "mustUnderstand"), "true")
    token_home = security
    if token_header in ("ebms", "other"):
        token_home = etree.SubElement(header, q("wsse", "Security"))
        token_home.set(ROLE, "ebms" if token_header == "ebms" else "http://example.invalid/another-role")
    token = username_token(username or gateway_user, password, created=created, nonce=nonce,
                           password_type=password_type)
    token_home.append(token)
    body = etree.SubElement(envelope, q("S12", "Body"))
    body.set(WSU_ID, "_body-" + uuid.uuid4().hex)

    if sign:
        parts = {"body": body, "messaging": messaging, "token": token}
        sign_envelope(envelope, security, [parts[p] for p in signed_parts], cert, key, key_reference,
                      signature_method, issuer_name)
    if tamper:
        tamper(envelope)
    return envelope


def _user_message(unit, from_party, to_party, party_type, service, service_type, action, properties):
    party_info = etree.SubElement(unit, q("eb", "PartyInfo"))
    for side, party, role in ((("From", from_party, "initiator")), ("To", to_party, "responder")):
        element = etree.SubElement(party_info, q("eb", side))
        party_id = etree.SubElement(element, q("eb", "PartyId"))
        party_id.text = party
        if party_type:
            party_id.set("type", party_type)
        etree.SubElement(element, q("eb", "Role")).text = f"{EBMS}/{role}"
    collaboration = etree.SubElement(unit, q("eb", "CollaborationInfo"))
    service_element = etree.SubElement(collaboration, q("eb", "Service"))
    service_element.text = service
    if service_type:
        service_element.set("type", service_type)
    etree.SubElement(collaboration, q("eb", "Action")).text = action
    etree.SubElement(collaboration, q("eb", "ConversationId")).text = "placeholder"
    if properties:
        holder = etree.SubElement(unit, q("eb", "MessageProperties"))
        for name, value in properties.items():
            etree.SubElement(holder, q("eb", "Property"), name=name).text = value


def username_token(username, password, *, created=None, nonce=None, password_type=PASSWORD_DIGEST):
    token = etree.Element(q("wsse", "UsernameToken"))
    token.set(WSU_ID, "_token-" + uuid.uuid4().hex)
    etree.SubElement(token, q("wsse", "Username")).text = username
    nonce_bytes = nonce if nonce is not None else os.urandom(16)
    created_text = created if created is not None else xsd_datetime(utc_now())
    if password_type == PASSWORD_DIGEST:
        value = base64.b64encode(hashlib.sha1(nonce_bytes + created_text.encode() + password.encode()).digest())
        value = value.decode()
    else:
        value = password
    etree.SubElement(token, q("wsse", "Password"), Type=password_type).text = value
    etree.SubElement(token, q("wsse", "Nonce"), EncodingType=BASE64_BINARY).text = \
        base64.b64encode(nonce_bytes).decode()
    etree.SubElement(token, q("wsu", "Created")).text = created_text
    return token


def _c14n(element):
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def sign_envelope(envelope, security, parts, cert, key, key_reference="issuer_serial", signature_method=RSA_SHA256,
                  issuer_name=None):
    """Append a ds:Signature over ``parts`` to ``security``, by hand."""
    signature = etree.SubElement(security, q("ds", "Signature"))
    signed_info = etree.SubElement(signature, q("ds", "SignedInfo"))
    etree.SubElement(signed_info, q("ds", "CanonicalizationMethod"), Algorithm=EXC_C14N)
    etree.SubElement(signed_info, q("ds", "SignatureMethod"), Algorithm=signature_method)
    for part in parts:
        reference = etree.SubElement(signed_info, q("ds", "Reference"), URI="#" + part.get(WSU_ID))
        transforms = etree.SubElement(reference, q("ds", "Transforms"))
        etree.SubElement(transforms, q("ds", "Transform"), Algorithm=EXC_C14N)
        etree.SubElement(reference, q("ds", "DigestMethod"), Algorithm=SHA256)
        digest = base64.b64encode(hashlib.sha256(_c14n(part)).digest()).decode()
        etree.SubElement(reference, q("ds", "DigestValue")).text = digest
    algorithm = hashes.SHA1() if signature_method == RSA_SHA1 else hashes.SHA256()
    value = key.sign(_c14n(signed_info), padding.PKCS1v15(), algorithm)
    etree.SubElement(signature, q("ds", "SignatureValue")).text = base64.b64encode(value).decode()
    key_info = etree.SubElement(signature, q("ds", "KeyInfo"))
    str_ref = etree.SubElement(key_info, q("wsse", "SecurityTokenReference"))
    if key_reference == "issuer_serial":
        x509_data = etree.SubElement(str_ref, q("ds", "X509Data"))
        issuer_serial = etree.SubElement(x509_data, q("ds", "X509IssuerSerial"))
        etree.SubElement(issuer_serial, q("ds", "X509IssuerName")).text = \
            issuer_name or cert.issuer.rfc4514_string()
        etree.SubElement(issuer_serial, q("ds", "X509SerialNumber")).text = str(cert.serial_number)
    else:
        bst_id = "_cert-" + uuid.uuid4().hex
        bst = etree.Element(q("wsse", "BinarySecurityToken"), EncodingType=BASE64_BINARY, ValueType=X509V3)
        bst.set(WSU_ID, bst_id)
        bst.text = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        security.insert(0, bst)
        etree.SubElement(str_ref, q("wsse", "Reference"), URI="#" + bst_id, ValueType=X509V3)
    return signature


def to_bytes(envelope):
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def parse_error(body):
    """(errorCode, severity, ErrorDetail) of the first eb:Error in a response, or None."""
    root = etree.fromstring(body)
    error = root.find(".//eb:Error", NS)
    if error is None:
        return None
    detail = error.find("eb:ErrorDetail", NS)
    return error.get("errorCode"), error.get("severity"), detail.text if detail is not None else None


def signed_reference_digests(envelope):
    """{URI: DigestValue} of the request's signature (to compare with a receipt's NRI)."""
    return {r.get("URI"): r.findtext("ds:DigestValue", namespaces=NS)
            for r in envelope.findall(".//ds:Signature/ds:SignedInfo/ds:Reference", NS)}


def split_answer(content_type, body):
    """(SOAP part, [(content id, content type, bytes)]) of an answer; a single-part answer has none."""
    if not (content_type or "").lower().startswith("multipart/related"):
        return body, []
    message = email.message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body,
                                       policy=email.policy.default)
    assert message.is_multipart() and not message.defects, message.defects
    start = message["Content-Type"].params["start"].strip("<>")
    parts = list(message.iter_parts())
    root = [part for part in parts if part["Content-ID"].strip("<>") == start]
    assert len(root) == 1, "the start part %s is not there exactly once" % start
    attachments = [(part["Content-ID"].strip("<>"), part.get_content_type(), part.get_payload(decode=True))
                   for part in parts if part is not root[0]]
    return root[0].get_payload(decode=True), attachments


def xmlsec1_verify(document, cert_pem_path, tmp_path):
    """``xmlsec1 --verify`` of a signed answer or request; without xmlsec1 a failure under ``CI=true``
    and a visible skip elsewhere."""
    tool = shutil.which("xmlsec1")
    if not tool:
        reason = "xmlsec1 is not installed (Debian package xmlsec1; .ci/run installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + ": under CI this check must run")
        pytest.skip(reason)
    path = tmp_path / ("signed-%s.xml" % uuid.uuid4().hex)
    path.write_bytes(document)
    command = [tool, "--verify", "--pubkey-cert-pem", str(cert_pem_path)]
    for node in ("%s:Body" % NS["S12"], "%s:Messaging" % NS["eb"], "%s:UsernameToken" % NS["wsse"],
                 "%s:BinarySecurityToken" % NS["wsse"]):
        command += ["--id-attr:Id", node]
    return subprocess.run(command + [str(path)], capture_output=True, text=True, check=False)
