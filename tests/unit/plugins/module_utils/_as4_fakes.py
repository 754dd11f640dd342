# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test helpers for test_as4 / test_connectivity: certificates made on the spot and a fake gateway's
answers (receipts signed with signxml the way docs/gateway.md describes, error signals, HTML)."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
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
NOW = datetime.datetime.now(datetime.timezone.utc)


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
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=2)).not_valid_after(NOW + datetime.timedelta(days=400))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return Issued(cert, key)


def issue(ca, cn, dns=("localhost",), ips=("127.0.0.1",), days=(-1, 365)):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sans = [x509.DNSName(name) for name in dns] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .issuer_name(ca.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW + datetime.timedelta(days=days[0]) - datetime.timedelta(hours=1))
               .not_valid_after(NOW + datetime.timedelta(days=days[1])))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def _sign(doc, signer_key, signer_cert):
    """Sign Body + eb:Messaging with a BST key reference, as the sandbox gateway does."""
    security = doc.find("S12:Header/wsse:Security", NS)
    token_id = "_bst-%s" % uuid.uuid4().hex
    token = etree.SubElement(security, q("wsse", "BinarySecurityToken"), ValueType=X509V3)
    token.set(WSU_ID, token_id)
    token.text = base64.b64encode(signer_cert.public_bytes(serialization.Encoding.DER)).decode()
    key_info = etree.Element(q("ds", "KeyInfo"), nsmap={"ds": NS["ds"]})
    reference = etree.SubElement(etree.SubElement(key_info, q("wsse", "SecurityTokenReference")),
                                 q("wsse", "Reference"), URI="#" + token_id)
    del reference
    uris = ["#" + doc.find("S12:Body", NS).get(WSU_ID), "#" + doc.find("S12:Header/eb:Messaging", NS).get(WSU_ID)]
    signer = XMLSigner(method=SignatureConstructionMethod.detached, signature_algorithm=SignatureMethod.RSA_SHA256,
                       digest_algorithm=DigestAlgorithm.SHA256,
                       c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signer.namespaces = {"ds": NS["ds"]}
    security.append(signer.sign(doc, key=signer_key, reference_uri=uris, key_info=key_info))


def _envelope():
    doc = etree.Element(q("S12", "Envelope"), nsmap={k: NS[k] for k in ("S12", "eb", "wsse", "wsu", "ds", "ebbp")})
    header = etree.SubElement(doc, q("S12", "Header"))
    messaging = etree.SubElement(header, q("eb", "Messaging"))
    messaging.set(WSU_ID, "_m-%s" % uuid.uuid4().hex)
    etree.SubElement(header, q("wsse", "Security"))
    body = etree.SubElement(doc, q("S12", "Body"))
    body.set(WSU_ID, "_b-%s" % uuid.uuid4().hex)
    signal = etree.SubElement(messaging, q("eb", "SignalMessage"))
    info = etree.SubElement(signal, q("eb", "MessageInfo"))
    etree.SubElement(info, q("eb", "Timestamp")).text = "2026-11-28T12:00:00.000Z"
    etree.SubElement(info, q("eb", "MessageId")).text = "%s@fake.gateway" % uuid.uuid4()
    return doc, signal, info


def request_info(request_bytes):
    """(MessageId, [ds:Reference elements]) of a request."""
    doc = etree.fromstring(request_bytes)
    message_id = doc.findtext("S12:Header/eb:Messaging//eb:MessageInfo/eb:MessageId", namespaces=NS)
    references = doc.findall("S12:Header/wsse:Security/ds:Signature/ds:SignedInfo/ds:Reference", NS)
    return message_id, references


def receipt(request_bytes, signer, ref=None, drop_reference=False, tamper=False, sign=True):
    message_id, references = request_info(request_bytes)
    doc, signal, info = _envelope()
    etree.SubElement(info, q("eb", "RefToMessageId")).text = ref or message_id
    nri = etree.SubElement(etree.SubElement(signal, q("eb", "Receipt")), q("ebbp", "NonRepudiationInformation"))
    for reference in references[:-1] if drop_reference else references:
        part = etree.SubElement(nri, q("ebbp", "MessagePartNRInformation"))
        part.append(etree.fromstring(etree.tostring(reference)))
    if sign:
        _sign(doc, signer.key, signer.cert)
    if tamper:
        doc.find("S12:Header/eb:Messaging//eb:Timestamp", NS).text = "2001-01-01T00:00:00.000Z"
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")


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
    if signer is not None:
        _sign(doc, signer.key, signer.cert)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")
