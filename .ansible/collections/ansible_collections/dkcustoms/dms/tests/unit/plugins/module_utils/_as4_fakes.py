# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test helpers for test_as4 / test_connectivity: certificates made on the spot and a fake gateway's
answers.

Answers are signed two ways: ``signer="signxml"`` the way the sandbox gateway signs (signxml), and
``signer="hand"`` by code that shares nothing with signxml (lxml exclusive C14N + cryptography, a
``dsig`` prefix, Java's way of writing the issuer name, ``cid:`` references with the SwA transform), so
that the client is not only ever checked against the library it verifies with.  ``multipart`` answers
are put together here by hand, not with the ``email`` package the client parses them with.
``xmlsec1()`` runs the independent verifier (libxmlsec1); without it a test fails under ``CI=true``
and is skipped with the reason elsewhere.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import shutil
import subprocess
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import (CanonicalizationMethod, DigestAlgorithm, SignatureConstructionMethod, SignatureMethod,
                     XMLSigner)

NS = {
    "S12": "http://www.w3.org/2003/05/soap-envelope",
    "eb": "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "ebbp": "http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0",
}
WSU_ID = "{%s}Id" % NS["wsu"]
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SWA_CONTENT = "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Signature-Transform"
EBMS = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704"
NOW = datetime.datetime.now(datetime.timezone.utc)
ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier("2.5.4.97")
BOUNDARY = "MIMEBoundary_fake_gateway_4c1e"


def q(prefix, name):
    return "{%s}%s" % (NS[prefix], name)


class Issued:
    def __init__(self, cert, key):
        self.cert = cert
        self.key = key

    def cert_pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self):
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def write(self, directory, name):
        cert_path, key_path = str(directory / (name + ".pem")), str(directory / (name + "-key.pem"))
        with open(cert_path, "wb") as handle:
            handle.write(self.cert_pem())
        with open(key_path, "wb") as handle:
            handle.write(self.key_pem())
        return cert_path, key_path


def make_ca(cn):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "DK"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test CAs"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=2)).not_valid_after(NOW + datetime.timedelta(days=400))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return Issued(cert, key)


def issue(ca, cn, dns=("localhost",), ips=("127.0.0.1",), days=(-1, 365), cvr=None, self_signed=False):
    """A certificate from ``ca``; with ``cvr`` an OCES3-shaped subject (NTRDK-<cvr>, UI:DK-O:G:<uuid>)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if cvr:
        attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, "DK"),
                      x509.NameAttribute(ORGANIZATION_IDENTIFIER, "NTRDK-%s" % cvr),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Company"),
                      x509.NameAttribute(NameOID.SERIAL_NUMBER, "UI:DK-O:G:%s" % uuid.uuid4())] + attributes
    subject = x509.Name(attributes)
    sans = [x509.DNSName(name) for name in dns] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(subject if self_signed else ca.cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW + datetime.timedelta(days=days[0]) - datetime.timedelta(hours=1))
               .not_valid_after(NOW + datetime.timedelta(days=days[1])))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return Issued(builder.sign(key if self_signed else ca.key, hashes.SHA256()), key)


# --- signing: signxml (as the sandbox gateway) ---------------------------------------------------

def _key_info_children(parent, security, cert, key_reference, prefix_ns=None):
    """SecurityTokenReference under ``parent`` naming ``cert`` by BST (added to ``security``) or
    IssuerSerial; ``java_names`` writes the issuer as Java's X500Principal does (spaces after commas)."""
    reference = etree.SubElement(parent, q("wsse", "SecurityTokenReference"))
    if key_reference == "bst":
        token_id = "_bst-%s" % uuid.uuid4().hex
        token = etree.Element(q("wsse", "BinarySecurityToken"), ValueType=X509V3)
        token.set(WSU_ID, token_id)
        token.text = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        security.insert(0, token)
        etree.SubElement(reference, q("wsse", "Reference"), URI="#" + token_id, ValueType=X509V3)
    else:
        data = etree.SubElement(reference, "{%s}X509Data" % (prefix_ns or NS["ds"]))
        serial = etree.SubElement(data, "{%s}X509IssuerSerial" % (prefix_ns or NS["ds"]))
        etree.SubElement(serial, "{%s}X509IssuerName" % (prefix_ns or NS["ds"])).text = \
            cert.issuer.rfc4514_string().replace(",", ", ")
        etree.SubElement(serial, "{%s}X509SerialNumber" % (prefix_ns or NS["ds"])).text = str(cert.serial_number)


def _sign_with_signxml(doc, signer, key_reference="bst"):
    """Sign Body + eb:Messaging, as the sandbox gateway does."""
    security = doc.find("S12:Header/wsse:Security", NS)
    key_info = etree.Element(q("ds", "KeyInfo"), nsmap={"ds": NS["ds"]})
    _key_info_children(key_info, security, signer.cert, key_reference)
    uris = ["#" + doc.find("S12:Body", NS).get(WSU_ID), "#" + doc.find("S12:Header/eb:Messaging", NS).get(WSU_ID)]
    xml_signer = XMLSigner(method=SignatureConstructionMethod.detached, signature_algorithm=SignatureMethod.RSA_SHA256,
                           digest_algorithm=DigestAlgorithm.SHA256,
                           c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    xml_signer.namespaces = {"ds": NS["ds"]}
    security.append(xml_signer.sign(doc, key=signer.key, reference_uri=uris, key_info=key_info))


# --- signing: by hand, sharing nothing with signxml ----------------------------------------------

DSIG = "{http://www.w3.org/2000/09/xmldsig#}"


def _c14n(element):
    return etree.tostring(element, method="c14n", exclusive=True, with_comments=False)


def swa_content(content_type, data):
    """SwA 1.1 5.4.2, written here independently of the client."""
    if content_type in ("application/xml", "text/xml"):
        return _c14n(etree.fromstring(data))
    if content_type.startswith("text/"):
        return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return data


def sign_by_hand(doc, signer, key_reference="issuer_serial", attachments=()):
    """A WSS4J-like signature over Body, eb:Messaging and every attachment, made with lxml C14N and
    cryptography only; the ``dsig`` prefix and a Java-style issuer name differ from signxml's output."""
    security = doc.find("S12:Header/wsse:Security", NS)
    signature = etree.SubElement(security, DSIG + "Signature", nsmap={"dsig": NS["ds"]})
    signature.set("Id", "SIG-%s" % uuid.uuid4().hex)
    signed_info = etree.SubElement(signature, DSIG + "SignedInfo")
    etree.SubElement(signed_info, DSIG + "CanonicalizationMethod", Algorithm=EXC_C14N)
    etree.SubElement(signed_info, DSIG + "SignatureMethod", Algorithm=RSA_SHA256)
    targets = [("#" + el.get(WSU_ID), EXC_C14N, _c14n(el))
               for el in (doc.find("S12:Body", NS), doc.find("S12:Header/eb:Messaging", NS))]
    targets += [("cid:" + cid, SWA_CONTENT, swa_content(ctype, data)) for cid, ctype, data in attachments]
    for uri, transform, octets in targets:
        reference = etree.SubElement(signed_info, DSIG + "Reference", URI=uri)
        transforms = etree.SubElement(reference, DSIG + "Transforms")
        etree.SubElement(transforms, DSIG + "Transform", Algorithm=transform)
        etree.SubElement(reference, DSIG + "DigestMethod", Algorithm=SHA256)
        etree.SubElement(reference, DSIG + "DigestValue").text = base64.b64encode(
            hashlib.sha256(octets).digest()).decode()
    value = signer.key.sign(_c14n(signed_info), padding.PKCS1v15(), hashes.SHA256())
    etree.SubElement(signature, DSIG + "SignatureValue").text = base64.b64encode(value).decode()
    key_info = etree.SubElement(signature, DSIG + "KeyInfo")
    _key_info_children(key_info, security, signer.cert, key_reference, prefix_ns=NS["ds"])


# --- answers -----------------------------------------------------------------------------------

def _envelope(kind="signal"):
    doc = etree.Element(q("S12", "Envelope"), nsmap={k: NS[k] for k in ("S12", "eb", "wsse", "wsu", "ebbp")})
    header = etree.SubElement(doc, q("S12", "Header"))
    etree.SubElement(header, q("wsse", "Security"))
    messaging = etree.SubElement(header, q("eb", "Messaging"))
    messaging.set(WSU_ID, "_m-%s" % uuid.uuid4().hex)
    body = etree.SubElement(doc, q("S12", "Body"))
    body.set(WSU_ID, "_b-%s" % uuid.uuid4().hex)
    unit = etree.SubElement(messaging, q("eb", "SignalMessage" if kind == "signal" else "UserMessage"))
    info = etree.SubElement(unit, q("eb", "MessageInfo"))
    etree.SubElement(info, q("eb", "Timestamp")).text = "2026-11-28T12:00:00.000Z"
    etree.SubElement(info, q("eb", "MessageId")).text = "%s@fake.gateway" % uuid.uuid4()
    return doc, unit, info


def request_info(request_bytes):
    """(MessageId, [ds:Reference elements]) of a request."""
    doc = etree.fromstring(request_bytes)
    message_id = doc.findtext("S12:Header/eb:Messaging//eb:MessageInfo/eb:MessageId", namespaces=NS)
    references = doc.findall("S12:Header/wsse:Security/ds:Signature/ds:SignedInfo/ds:Reference", NS)
    return message_id, references


def _finish(doc, signer, sign, key_reference, signed_by, attachments=()):
    if sign and signer is not None:
        if signed_by == "hand":
            sign_by_hand(doc, signer, key_reference, attachments)
        else:
            _sign_with_signxml(doc, signer, key_reference)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")


def receipt(request_bytes, signer, ref=None, drop_reference=False, tamper=False, sign=True, key_reference="bst",
            signed_by="signxml", ref_text=None):
    """A receipt for the request; ``ref_text`` replaces the RefToMessageId text before signing."""
    message_id, references = request_info(request_bytes)
    doc, signal, info = _envelope()
    etree.SubElement(info, q("eb", "RefToMessageId")).text = ref_text or ref or message_id
    nri = etree.SubElement(etree.SubElement(signal, q("eb", "Receipt")), q("ebbp", "NonRepudiationInformation"))
    for reference in references[:-1] if drop_reference else references:
        part = etree.SubElement(nri, q("ebbp", "MessagePartNRInformation"))
        part.append(etree.fromstring(etree.tostring(reference)))
    data = _finish(doc, signer, sign, key_reference, signed_by)
    if tamper:
        doc = etree.fromstring(data)
        doc.find("S12:Header/eb:Messaging//eb:Timestamp", NS).text = "2001-01-01T00:00:00.000Z"
        data = etree.tostring(doc, xml_declaration=True, encoding="UTF-8")
    return data


def response(request_bytes, signer, attachments=(), sign=True, key_reference="bst", signed_by="signxml",
             properties=(), kind="response", ref=None):
    """(Content-Type, body): a user message answering the request (``kind="pulled"``: a pulled message
    with ``properties``), SOAP with ``attachments`` [(content id, content type, bytes)] as multipart."""
    message_id, _references = request_info(request_bytes)
    doc, user_message, info = _envelope("user")
    if kind == "response":
        etree.SubElement(info, q("eb", "RefToMessageId")).text = ref or message_id
    party_info = etree.SubElement(user_message, q("eb", "PartyInfo"))
    for side, party, role in (("From", "SKAT-MFT-AS4", "responder"), ("To", "CVR_x_AS4", "initiator")):
        element = etree.SubElement(party_info, q("eb", side))
        etree.SubElement(element, q("eb", "PartyId"), type="string").text = party
        etree.SubElement(element, q("eb", "Role")).text = "%s/%s" % (EBMS, role)
    collaboration = etree.SubElement(user_message, q("eb", "CollaborationInfo"))
    etree.SubElement(collaboration, q("eb", "Service"), type="string").text = "DMS.Import"
    etree.SubElement(collaboration, q("eb", "Action")).text = "Notification"
    etree.SubElement(collaboration, q("eb", "ConversationId")).text = "placeholder"
    if properties:
        holder = etree.SubElement(user_message, q("eb", "MessageProperties"))
        for name, value in properties:
            etree.SubElement(holder, q("eb", "Property"), name=name).text = value
    payload_info = etree.SubElement(user_message, q("eb", "PayloadInfo"))
    for cid, _ctype, _data in attachments:
        etree.SubElement(payload_info, q("eb", "PartInfo"), href="cid:" + cid)
    soap = _finish(doc, signer, sign, key_reference, signed_by, attachments)
    return multipart(soap, attachments)


def multipart(soap, attachments, start=True):
    """(Content-Type, body) of SOAP with attachments, written out by hand (CRLF, binary parts)."""
    root_id = "root.%s@fake.gateway" % uuid.uuid4().hex
    lines = [b"--" + BOUNDARY.encode(), b"Content-Type: application/soap+xml; charset=UTF-8",
             b"Content-Transfer-Encoding: binary", ("Content-ID: <%s>" % root_id).encode(), b"", soap]
    for cid, ctype, data in attachments:
        lines += [b"--" + BOUNDARY.encode(), ("Content-Type: %s" % ctype).encode(),
                  b"Content-Transfer-Encoding: binary", ("Content-ID: <%s>" % cid).encode(), b"", data]
    body = b"\r\n".join(lines) + b"\r\n--" + BOUNDARY.encode() + b"--\r\n"
    content_type = 'multipart/related; boundary="%s"; type="application/soap+xml"' % BOUNDARY
    if start:
        content_type += '; start="<%s>"' % root_id
    return content_type, body


def error_signal(request_bytes, code, short, detail, severity="failure", signer=None, fault=True):
    message_id, _references = request_info(request_bytes)
    doc, signal, info = _envelope()
    etree.SubElement(info, q("eb", "RefToMessageId")).text = message_id
    error = etree.SubElement(signal, q("eb", "Error"), errorCode=code, severity=severity, shortDescription=short,
                             category="Processing", refToMessageInError=message_id)
    etree.SubElement(error, q("eb", "Description")).text = "%s: %s" % (short, detail)
    etree.SubElement(error, q("eb", "ErrorDetail")).text = detail
    if fault:
        body = doc.find("S12:Body", NS)
        fault_el = etree.SubElement(body, q("S12", "Fault"))
        etree.SubElement(etree.SubElement(fault_el, q("S12", "Code")), q("S12", "Value")).text = "S12:Sender"
        etree.SubElement(etree.SubElement(fault_el, q("S12", "Reason")), q("S12", "Text")).text = detail
    return _finish(doc, signer, signer is not None, "bst", "signxml")


def security_fault(code, text):
    """A bare SOAP 1.2 fault with a WS-Security fault code as Subcode, as WSS4J-based stacks answer."""
    return ('<S12:Envelope xmlns:S12="%s" xmlns:wsse="%s"><S12:Body><S12:Fault><S12:Code><S12:Value>S12:Sender'
            '</S12:Value><S12:Subcode><S12:Value>wsse:%s</S12:Value></S12:Subcode></S12:Code><S12:Reason>'
            '<S12:Text xml:lang="en">%s</S12:Text></S12:Reason></S12:Fault></S12:Body></S12:Envelope>'
            % (NS["S12"], NS["wsse"], code, text)).encode()


# --- xmlsec1: the independent verifier -----------------------------------------------------------

ID_ATTRIBUTES = ("%s:Body" % NS["S12"], "%s:Messaging" % NS["eb"], "%s:UsernameToken" % NS["wsse"],
                 "%s:BinarySecurityToken" % NS["wsse"])


def xmlsec1_available():
    """The xmlsec1 binary, or a failure under CI / a visible skip elsewhere."""
    tool = shutil.which("xmlsec1")
    if tool:
        return tool
    reason = "xmlsec1 is not installed (Debian package xmlsec1; .ci/run installs it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + ": under CI this check must run")
    pytest.skip(reason)
    return None


def xmlsec1_verify(document, cert_pem, tmp_path):
    """Run ``xmlsec1 --verify`` on ``document`` with ``cert_pem``'s key; returns the completed process."""
    tool = xmlsec1_available()
    doc_path, cert_path = tmp_path / ("doc-%s.xml" % uuid.uuid4().hex), tmp_path / "signer.pem"
    doc_path.write_bytes(document)
    cert_path.write_bytes(cert_pem)
    command = [tool, "--verify", "--pubkey-cert-pem", str(cert_path)]
    for node in ID_ATTRIBUTES:
        command += ["--id-attr:Id", node]
    return subprocess.run(command + [str(doc_path)], capture_output=True, text=True, check=False)
