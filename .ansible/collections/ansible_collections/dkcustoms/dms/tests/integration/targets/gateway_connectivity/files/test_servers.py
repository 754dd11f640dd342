#!/usr/bin/env python
"""Plain TLS servers on loopback that each break one layer of the gateway connection test.

    test_servers.py --sandbox SANDBOX_JSON --out SERVERS_JSON [--ttl SECONDS]

Writes SERVERS_JSON = {"closed_port": P, "unknown_ca": P, "wrong_host": P, "expired": P,
"expiring_soon": P, "client_cert_required": P, "html": P, "tampered_receipt": P, "wrong_ref_receipt": P,
"token_mover": P, "resigner": P, "resigner_mode_file": PATH, "pid": PID} once every server listens,
then serves until killed (or --ttl passes).

- unknown_ca: a certificate from a CA made up here (SAN localhost, 127.0.0.1);
- wrong_host / expired / expiring_soon: the test PKI's server certificates of those names;
- client_cert_required: the valid server certificate, but it requires a client certificate from a CA made
  up here, so it refuses our OCES certificate (and the absence of one);
- html: HTTP 200 with an HTML page for everything (a proxy's or captive portal's page);
- tampered_receipt / wrong_ref_receipt: forward the POST to the sandbox gateway and change its signed
  answer - one text in eb:Messaging altered after signing; or RefToMessageId replaced and the answer
  signed again with the gateway's own signing key (a valid signature over the wrong message id);
- token_mover: forward the POST after moving the UsernameToken from the ebms-role header into the
  default wsse:Security header (the signature still verifies: it names the token by wsu:Id);
- resigner: forward the POST and sign the answer again with a BinarySecurityToken - with the gateway's
  own key, or, once resigner_mode_file says "rotated", with a certificate made up here (a gateway whose
  signing certificate changed).

Answers that are SOAP with attachments keep their MIME framing: only the SOAP part's bytes change.
"""

import argparse
import base64
import datetime
import email
import email.policy
import http.client
import http.server
import json
import os
import socket
import ssl
import sys
import tempfile
import threading
import time
from urllib.parse import urlsplit

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
}
WSU_ID = "{%s}Id" % NS["wsu"]
ROLE = "{%s}role" % NS["S12"]
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
FORWARDING = ("tampered_receipt", "wrong_ref_receipt", "token_mover", "resigner")
HTML = (b"<!DOCTYPE html><html><head><title>Access policy</title></head><body><h1>Welcome</h1>"
        b"<p>Please log on to continue to the internet.</p></body></html>")


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Unrelated Test CA"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca_and_leaf(workdir, label):
    """A CA nobody trusts and a localhost server certificate from it: PEM paths (ca, cert, key)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (x509.CertificateBuilder().subject_name(_name(label + " CA")).issuer_name(_name(label + " CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    import ipaddress
    leaf = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {"_leaf": leaf, "_key": key}
    for name, data in (("ca", ca.public_bytes(serialization.Encoding.PEM)),
                       ("cert", leaf.public_bytes(serialization.Encoding.PEM)),
                       ("key", key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))):
        paths[name] = os.path.join(workdir, "%s-%s.pem" % (label, name))
        with open(paths[name], "wb") as handle:
            handle.write(data)
    return paths


def server_context(cert, key, client_ca=None):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_ca)
    return context


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "html"
    sandbox = None
    signing = ()  # (key, certificate)
    rotated = ()  # (key, certificate)
    mode_file = None

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # pylint: disable=invalid-name
        if self.mode in FORWARDING:
            self._send(405, b"method not allowed", "text/plain")
        else:
            self._send(200, HTML, "text/html; charset=utf-8")

    def do_POST(self):  # pylint: disable=invalid-name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.mode not in FORWARDING:
            self._send(200, HTML, "text/html; charset=utf-8")
            return
        if self.mode == "token_mover":
            body = move_token(body)
        status, content_type, answer = self.forward(body)
        if status == 200 and self.mode != "token_mover":
            answer = change_soap_part(content_type, answer, self.change)
        self._send(status, answer, content_type)

    def change(self, soap):
        if self.mode == "tampered_receipt":
            return tamper(soap)
        if self.mode == "wrong_ref_receipt":
            return wrong_ref(soap, self.signing)
        signer = self.rotated if _resigner_mode(self.mode_file) == "rotated" else self.signing
        return resign_with_bst(soap, signer[0], signer[1])

    def forward(self, body):
        parts = urlsplit(self.sandbox["gateway_url"])
        context = ssl.create_default_context(cafile=self.sandbox["ca_bundle"])
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=30)
        try:
            connection.request("POST", self.path, body=body,
                               headers={"Content-Type": self.headers.get("Content-Type", "")})
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type", ""), response.read()
        finally:
            connection.close()


def _resigner_mode(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return "gateway"


def change_soap_part(content_type, answer, change):
    """Apply ``change`` to the SOAP part of a single-part or multipart/related answer."""
    if not content_type.lower().startswith("multipart/related"):
        return change(answer)
    message = email.message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + answer,
                                       policy=email.policy.default)
    start = message["Content-Type"].params["start"].strip("<>")
    soap = [part for part in message.iter_parts() if part["Content-ID"].strip("<>") == start][0]
    old = soap.get_payload(decode=True)
    return answer.replace(old, change(old), 1)  # binary parts: the SOAP bytes appear verbatim


def move_token(request):
    """The UsernameToken into the default wsse:Security header, its ebms-role header removed."""
    doc = etree.fromstring(request)
    ebms = doc.find("S12:Header/wsse:Security[@S12:role='ebms']", NS)
    default = [h for h in doc.findall("S12:Header/wsse:Security", NS) if h.get(ROLE) is None][0]
    for token in ebms.findall("wsse:UsernameToken", NS):
        default.append(token)
    ebms.getparent().remove(ebms)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")


def tamper(answer):
    """Change a signed text after signing: the signature no longer verifies."""
    doc = etree.fromstring(answer)
    timestamp = doc.find("S12:Header/eb:Messaging//eb:Timestamp", NS)
    timestamp.text = "2001-01-01T00:00:00.000Z"
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")


def _sign(doc, security, key, key_info):
    uris = ["#" + doc.find("S12:Body", NS).get(WSU_ID), "#" + doc.find("S12:Header/eb:Messaging", NS).get(WSU_ID)]
    signer = XMLSigner(method=SignatureConstructionMethod.detached, signature_algorithm=SignatureMethod.RSA_SHA256,
                       digest_algorithm=DigestAlgorithm.SHA256,
                       c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    signer.namespaces = {"ds": NS["ds"]}
    security.append(signer.sign(doc, key=key, reference_uri=uris, key_info=key_info))
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")


def wrong_ref(answer, signing):
    """Point RefToMessageId at another message and sign again with the gateway's key."""
    doc = etree.fromstring(answer)
    ref = doc.find("S12:Header/eb:Messaging//eb:RefToMessageId", NS)
    ref.text = "another-message@example.invalid"
    security = doc.find("S12:Header/wsse:Security", NS)
    old = security.find("ds:Signature", NS)
    key_info = old.find("ds:KeyInfo", NS)
    security.remove(old)
    return _sign(doc, security, signing[0], key_info)


def resign_with_bst(answer, key, cert):
    """Sign the answer again, this time carrying the signing certificate in a BinarySecurityToken."""
    doc = etree.fromstring(answer)
    security = doc.find("S12:Header/wsse:Security", NS)
    for old in security.findall("ds:Signature", NS) + security.findall("wsse:BinarySecurityToken", NS):
        security.remove(old)
    token = etree.SubElement(security, "{%s}BinarySecurityToken" % NS["wsse"], ValueType=X509V3)
    token.set(WSU_ID, "resigned-bst")
    token.text = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    key_info = etree.Element("{%s}KeyInfo" % NS["ds"], nsmap={"ds": NS["ds"]})
    etree.SubElement(etree.SubElement(key_info, "{%s}SecurityTokenReference" % NS["wsse"]),
                     "{%s}Reference" % NS["wsse"], URI="#resigned-bst", ValueType=X509V3)
    return _sign(doc, security, key, key_info)


def serve(mode, context, sandbox=None, signing=None, rotated=None, mode_file=None):
    handler = type("Handler_" + mode, (Handler,), {"mode": mode, "sandbox": sandbox, "signing": signing,
                                                   "rotated": rotated, "mode_file": mode_file})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def closed_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    return port


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sandbox", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--ttl", type=float, default=1200)
    args = parser.parse_args()
    with open(args.sandbox, encoding="utf-8") as handle:
        sandbox = json.load(handle)
    with open(os.path.join(sandbox["pki_dir"], "pki.json"), encoding="utf-8") as handle:
        pki = json.load(handle)
    server = pki["server"]
    workdir = tempfile.mkdtemp(prefix="gwtest-")
    unknown = make_ca_and_leaf(workdir, "unknown")
    other_client_ca = make_ca_and_leaf(workdir, "clientca")["ca"]
    with open(server["gateway_signing"]["key"], "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), None)
    with open(server["gateway_signing"]["cert"], "rb") as handle:
        signing = (key, x509.load_pem_x509_certificate(handle.read()))
    other = make_ca_and_leaf(workdir, "rotated-gateway-signer")
    rotated = (other["_key"], other["_leaf"])
    mode_file = os.path.join(os.path.dirname(os.path.abspath(args.out)), "resigner-mode")

    ports = {
        "closed_port": closed_port(),
        "unknown_ca": serve("html", server_context(unknown["cert"], unknown["key"])),
        "wrong_host": serve("html", server_context(server["wrong_host"]["cert"], server["wrong_host"]["key"])),
        "expired": serve("html", server_context(server["expired"]["cert"], server["expired"]["key"])),
        "expiring_soon": serve("html", server_context(server["expiring_soon"]["cert"],
                                                      server["expiring_soon"]["key"])),
        "client_cert_required": serve("html", server_context(server["cert"], server["key"], other_client_ca)),
        "html": serve("html", server_context(server["cert"], server["key"])),
        "tampered_receipt": serve("tampered_receipt", server_context(server["cert"], server["key"]),
                                  sandbox, signing),
        "wrong_ref_receipt": serve("wrong_ref_receipt", server_context(server["cert"], server["key"]),
                                   sandbox, signing),
        "token_mover": serve("token_mover", server_context(server["cert"], server["key"]), sandbox),
        "resigner": serve("resigner", server_context(server["cert"], server["key"]), sandbox, signing, rotated,
                          mode_file),
        "resigner_mode_file": mode_file,
        "pid": os.getpid(),
    }
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(ports, handle)
    os.replace(tmp, args.out)
    deadline = time.monotonic() + args.ttl
    while time.monotonic() < deadline:
        time.sleep(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
