"""The gateway's reading and checking of an inbound AS4 message (docs/gateway.md, "Checks").

Every check raises :class:`As4Error` with the ebMS error code and an ErrorDetail that names the check
that failed. The XML signature is verified with signxml's ``XMLVerifier`` -- a library verifier, never
the collection's signing code -- so the sandbox and the client check each other.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import hashlib
import hmac
import re
from dataclasses import dataclass, field

from cryptography import x509
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidCertificate, InvalidDigest, SignXMLException

NS = {
    "S12": "http://www.w3.org/2003/05/soap-envelope",
    "S11": "http://schemas.xmlsoap.org/soap/envelope/",
    "eb": "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "ebbp": "http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0",
}
WSU_ID = "{%s}Id" % NS["wsu"]

PASSWORD_DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
BASE64_BINARY = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"

EBMS_NS = NS["eb"].rstrip("/")
TEST_SERVICE = EBMS_NS + "/service"
TEST_ACTION = EBMS_NS + "/test"
INITIATOR_ROLE = EBMS_NS + "/initiator"
RESPONDER_ROLE = EBMS_NS + "/responder"
DEFAULT_MPC = EBMS_NS + "/defaultMPC"
GATEWAY_PARTY = "SKAT-MFT-AS4"
EBMS_ROLE = "ebms"
ULTIMATE_RECEIVER = "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver"
EBMS_HEADER = 'the wsse:Security header with S12:role="ebms"'

CREATED_TOLERANCE = datetime.timedelta(minutes=5)

# code -> (shortDescription, category, severity), after the ebMS3 core specification, section 6.7.
EBMS_ERRORS = {
    "EBMS:0001": ("ValueNotRecognized", "Content", "failure"),
    "EBMS:0003": ("ValueInconsistent", "Content", "failure"),
    "EBMS:0004": ("Other", "Content", "failure"),
    "EBMS:0006": ("EmptyMessagePartitionChannel", "Communication", "warning"),
    "EBMS:0009": ("InvalidHeader", "Unpackaging", "failure"),
    "EBMS:0010": ("ProcessingModeMismatch", "Processing", "failure"),
    "EBMS:0101": ("FailedAuthentication", "Processing", "failure"),
    "EBMS:0103": ("PolicyNoncompliance", "Processing", "failure"),
}


class As4Error(Exception):
    """An ebMS error: ``code`` (EBMS:0101 ...) and ``detail`` naming the failed check."""

    def __init__(self, code, detail, ref_to_message_id=None):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.ref_to_message_id = ref_to_message_id


@dataclass
class InboundMessage:
    """What the gateway needs from a request once it has been parsed."""

    envelope: etree._Element
    messaging: etree._Element
    body: etree._Element
    message_id: str
    kind: str  # "user" (eb:UserMessage) or "pull" (eb:SignalMessage/eb:PullRequest) or "signal"
    mpc: str = DEFAULT_MPC
    from_party: str | None = None
    from_party_type: str | None = None
    from_role: str | None = None
    to_party: str | None = None
    to_party_type: str | None = None
    to_role: str | None = None
    service: str | None = None
    service_type: str | None = None
    action: str | None = None
    properties: dict = field(default_factory=dict)
    username_token: etree._Element | None = None
    signature: etree._Element | None = None
    signed_references: list = field(default_factory=list)


def _text(element, path):
    found = element.find(path, NS)
    if found is None or found.text is None:
        return None
    return found.text.strip()


# --- structure ---------------------------------------------------------------------------------

def parse_envelope(body_bytes):
    """Parse the request body into an :class:`InboundMessage` (structure only, nothing trusted yet)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
    try:
        root = etree.fromstring(body_bytes, parser)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise As4Error("EBMS:0004", f"request body is not well-formed XML ({exc.__class__.__name__})") from None
    if root.getroottree().docinfo.doctype:
        raise As4Error("EBMS:0009", "the message carries a Document Type Declaration, which SOAP 1.2 forbids")
    if root.tag == "{%s}Envelope" % NS["S11"]:
        raise As4Error("EBMS:0009", "SOAP 1.1 envelope; the gateway requires SOAP 1.2 "
                                    "(namespace http://www.w3.org/2003/05/soap-envelope)")
    if root.tag != "{%s}Envelope" % NS["S12"]:
        raise As4Error("EBMS:0009", f"root element is {root.tag}, not a SOAP 1.2 S12:Envelope")
    header = root.find("S12:Header", NS)
    body = root.find("S12:Body", NS)
    if header is None or body is None:
        raise As4Error("EBMS:0009", "SOAP envelope lacks S12:Header or S12:Body")
    messagings = header.findall("eb:Messaging", NS)
    if len(messagings) != 1:
        raise As4Error("EBMS:0009", f"expected exactly one S12:Header/eb:Messaging, found {len(messagings)}")
    messaging = messagings[0]
    user_messages = messaging.findall("eb:UserMessage", NS)
    signals = messaging.findall("eb:SignalMessage", NS)
    if len(user_messages) + len(signals) != 1:
        raise As4Error("EBMS:0009", "eb:Messaging must hold exactly one eb:UserMessage or eb:SignalMessage")
    unit = (user_messages or signals)[0]
    message_id = _text(unit, "eb:MessageInfo/eb:MessageId")
    if not message_id:
        raise As4Error("EBMS:0009", "eb:MessageInfo/eb:MessageId is missing")
    if not _text(unit, "eb:MessageInfo/eb:Timestamp"):
        raise As4Error("EBMS:0009", "eb:MessageInfo/eb:Timestamp is missing", message_id)
    msg = InboundMessage(envelope=root, messaging=messaging, body=body, message_id=message_id, kind="signal")
    if user_messages:
        msg.kind = "user"
        msg.mpc = unit.get("mpc") or DEFAULT_MPC
        from_id = unit.find("eb:PartyInfo/eb:From/eb:PartyId", NS)
        to_id = unit.find("eb:PartyInfo/eb:To/eb:PartyId", NS)
        if from_id is None or to_id is None:
            raise As4Error("EBMS:0009", "eb:PartyInfo needs eb:From/eb:PartyId and eb:To/eb:PartyId", message_id)
        msg.from_party = (from_id.text or "").strip()
        msg.to_party = (to_id.text or "").strip()
        msg.from_party_type, msg.to_party_type = from_id.get("type"), to_id.get("type")
        msg.from_role = _text(unit, "eb:PartyInfo/eb:From/eb:Role")
        msg.to_role = _text(unit, "eb:PartyInfo/eb:To/eb:Role")
        msg.service = _text(unit, "eb:CollaborationInfo/eb:Service")
        service = unit.find("eb:CollaborationInfo/eb:Service", NS)
        msg.service_type = service.get("type") if service is not None else None
        msg.action = _text(unit, "eb:CollaborationInfo/eb:Action")
        msg.properties = {p.get("name"): (p.text or "").strip()
                          for p in unit.findall("eb:MessageProperties/eb:Property", NS)}
        if not msg.service or not msg.action:
            raise As4Error("EBMS:0009", "eb:CollaborationInfo needs eb:Service and eb:Action", message_id)
    else:
        pull = unit.find("eb:PullRequest", NS)
        if pull is not None:
            msg.kind = "pull"
            msg.mpc = pull.get("mpc") or DEFAULT_MPC
    return msg


# --- WS-Security UsernameToken -----------------------------------------------------------------

def security_headers(msg):
    return msg.envelope.findall("S12:Header/wsse:Security", NS)


def _role(header):
    role = header.get("{%s}role" % NS["S12"])
    return None if role in (None, "", ULTIMATE_RECEIVER) else role


def header_for_role(msg, role):
    """The one ``wsse:Security`` header for ``role`` (None: the default header), or None."""
    found = [header for header in security_headers(msg) if _role(header) == role]
    if len(found) > 1:
        raise As4Error("EBMS:0103", "more than one wsse:Security header for %s"
                       % (f'S12:role="{role}"' if role else "the default role"), msg.message_id)
    return found[0] if found else None


def find_username_token(msg):
    """The UsernameToken, read only from the ``ebms``-role header (ebMS3 Core 7.10; Holodeck B2B
    authorises with that header), which must hold nothing else - as SKAT's reference client sends it."""
    ebms = header_for_role(msg, EBMS_ROLE)
    header_for_role(msg, None)  # at most one default header either
    tokens = ebms.findall("wsse:UsernameToken", NS) if ebms is not None else []
    if not tokens:
        elsewhere = [t for sec in security_headers(msg) for t in sec.findall("wsse:UsernameToken", NS)]
        if elsewhere:
            raise As4Error("EBMS:0103", f"the wsse:UsernameToken is in the {_where(elsewhere[0])}; the gateway "
                                        f"reads it only from {EBMS_HEADER} (ebMS3 Core 7.10)", msg.message_id)
        raise As4Error("EBMS:0103", f"no wsse:UsernameToken in {EBMS_HEADER}", msg.message_id)
    if len(tokens) > 1:
        raise As4Error("EBMS:0103", f"more than one wsse:UsernameToken in {EBMS_HEADER}", msg.message_id)
    others = [etree.QName(child).localname for child in ebms if child is not tokens[0]]
    if others:
        raise As4Error("EBMS:0103", f"{EBMS_HEADER} holds only the wsse:UsernameToken; found {', '.join(others)} "
                                    "there (the signature belongs in the default wsse:Security header)",
                       msg.message_id)
    msg.username_token = tokens[0]
    return tokens[0]


def _where(element):
    role = _role(element.getparent())
    return f'wsse:Security header with S12:role="{role}"' if role else "default wsse:Security header"


def password_digest(nonce_bytes, created, password):
    """WS-Security UsernameToken Profile 1.0: Base64(SHA-1(nonce + created + password))."""
    raw = hashlib.sha1(nonce_bytes + created.encode("utf-8") + password.encode("utf-8")).digest()
    return base64.b64encode(raw).decode("ascii")


def _parse_created(created):
    try:
        value = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:  # WSS: UTC; a value without a zone is read as UTC
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value


def check_username_token(msg, path_user, account, use_nonce, now=None):
    """UsernameToken: user = path user, registration complete, Created fresh, digest right, nonce new."""
    token = msg.username_token
    ref = msg.message_id
    username = _text(token, "wsse:Username")
    password = token.find("wsse:Password", NS)
    nonce = _text(token, "wsse:Nonce")
    created = _text(token, "wsu:Created")
    if password is None or password.get("Type") != PASSWORD_DIGEST:
        raise As4Error("EBMS:0103", "wsse:Password must have Type=\"…#PasswordDigest\" "
                                    "(plain-text passwords are not accepted)", ref)
    if not nonce or not created:
        raise As4Error("EBMS:0103", "wsse:UsernameToken needs wsse:Nonce and wsu:Created for PasswordDigest", ref)
    nonce_element = token.find("wsse:Nonce", NS)
    if nonce_element.get("EncodingType") not in (None, BASE64_BINARY):
        raise As4Error("EBMS:0103", "wsse:Nonce EncodingType must be …#Base64Binary", ref)
    if username != path_user:
        raise As4Error("EBMS:0101", "UsernameToken: wsse:Username is not the gateway user of the endpoint "
                                    "/exchange/<gateway user>", ref)
    if not account.get("registered") or not account.get("gateway_password"):
        raise As4Error("EBMS:0101", "UsernameToken: registration of the certificate is not complete; the "
                                    "gateway rejects every logon until the portal shows it registered", ref)
    created_at = _parse_created(created)
    if created_at is None:
        raise As4Error("EBMS:0101", "UsernameToken: wsu:Created is not an xsd:dateTime", ref)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if abs(now - created_at) > CREATED_TOLERANCE:
        raise As4Error("EBMS:0101", "UsernameToken: wsu:Created is more than 5 minutes from the gateway's "
                                    "clock (stale or future; check the client's clock)", ref)
    try:
        nonce_bytes = base64.b64decode(nonce, validate=True)
    except (binascii.Error, ValueError):
        raise As4Error("EBMS:0101", "UsernameToken: wsse:Nonce is not Base64", ref) from None
    expected = password_digest(nonce_bytes, created, account["gateway_password"])
    if not hmac.compare_digest(expected.encode("ascii"), (password.text or "").strip().encode("ascii", "replace")):
        raise As4Error("EBMS:0101", "UsernameToken: password digest does not match the gateway password", ref)
    if not use_nonce(nonce):
        raise As4Error("EBMS:0101", "UsernameToken: wsse:Nonce was already used (replayed message)", ref)


# --- XML signature ------------------------------------------------------------------------------

def check_signature_policy(msg):
    """One ds:Signature, RSA-SHA256 / exc-C14N / SHA-256, covering Body, eb:Messaging and the UsernameToken."""
    ref = msg.message_id
    default = header_for_role(msg, None)
    signatures = default.findall("ds:Signature", NS) if default is not None else []
    if not signatures:
        raise As4Error("EBMS:0103", "message is not signed: no ds:Signature in the default wsse:Security header",
                       ref)
    if len(signatures) > 1 or len(msg.envelope.findall(".//ds:Signature", NS)) > 1:
        raise As4Error("EBMS:0103", "expected exactly one ds:Signature in the message", ref)
    signature = signatures[0]
    signed_info = signature.find("ds:SignedInfo", NS)
    if signed_info is None:
        raise As4Error("EBMS:0103", "ds:Signature has no ds:SignedInfo", ref)
    c14n = signed_info.find("ds:CanonicalizationMethod", NS)
    if c14n is None or c14n.get("Algorithm") != EXC_C14N:
        raise As4Error("EBMS:0103", f"CanonicalizationMethod must be exclusive C14N ({EXC_C14N})", ref)
    method = signed_info.find("ds:SignatureMethod", NS)
    if method is None or method.get("Algorithm") != RSA_SHA256:
        raise As4Error("EBMS:0103", f"SignatureMethod must be RSA-SHA256 ({RSA_SHA256})", ref)
    references = signed_info.findall("ds:Reference", NS)
    for reference in references:
        digest = reference.find("ds:DigestMethod", NS)
        if digest is None or digest.get("Algorithm") != SHA256:
            raise As4Error("EBMS:0103", f"reference {reference.get('URI')}: DigestMethod must be SHA-256 ({SHA256})",
                           ref)
        transforms = [t.get("Algorithm") for t in reference.findall("ds:Transforms/ds:Transform", NS)]
        if any(t != EXC_C14N for t in transforms):
            raise As4Error("EBMS:0103", f"reference {reference.get('URI')}: the only transform allowed is "
                                        "exclusive C14N", ref)
    uris = {r.get("URI") for r in references}
    for name, element in (("S12:Body", msg.body), ("eb:Messaging", msg.messaging),
                          ("wsse:UsernameToken", msg.username_token)):
        element_id = element.get(WSU_ID)
        if not element_id:
            raise As4Error("EBMS:0103", f"{name} has no wsu:Id, so it cannot be signed", ref)
        if "#" + element_id not in uris:
            raise As4Error("EBMS:0103", f"{name} (wsu:Id {element_id}) is not signed: no ds:Reference "
                                        f"URI=\"#{element_id}\"", ref)
    msg.signature = signature
    msg.signed_references = references
    return signature


# Names some toolkits (Java's X500Principal, OpenSSL) write that RFC 4514 parsers do not know.
_NAME_OVERRIDES = {
    "SERIALNUMBER": x509.NameOID.SERIAL_NUMBER, "ORGANIZATIONIDENTIFIER": x509.ObjectIdentifier("2.5.4.97"),
    "E": x509.NameOID.EMAIL_ADDRESS, "EMAILADDRESS": x509.NameOID.EMAIL_ADDRESS,
    "GIVENNAME": x509.NameOID.GIVEN_NAME, "SURNAME": x509.NameOID.SURNAME, "SN": x509.NameOID.SURNAME,
}


def _names_equal(issuer_name, name):
    """Compare an X509IssuerName string with a certificate's issuer.

    Order, spaces after commas, ``OID.2.5.4.97=`` and upper-case attribute names are all accepted, as
    different toolkits write the same RFC 4514 / RFC 2253 name differently.
    """
    text = re.sub(r"(?<!\\),\s+", ",", issuer_name.strip())
    text = re.sub(r"(^|,)OID\.", r"\1", text)
    text = re.sub(r"(^|,)([A-Za-z]+)=", lambda m: m.group(1) + _canonical_attr(m.group(2)) + "=", text)
    try:
        parsed = x509.Name.from_rfc4514_string(text, {k: v for k, v in _NAME_OVERRIDES.items()})
    except ValueError:
        return False

    def attributes(n):
        return sorted((a.oid.dotted_string, str(a.value).strip()) for a in n)

    return attributes(parsed) == attributes(name)


def _canonical_attr(attr):
    upper = attr.upper()
    return upper if upper in _NAME_OVERRIDES or upper in ("CN", "O", "OU", "C", "L", "ST", "DC", "UID") else attr


def signing_certificate(msg, registered_cert):
    """The certificate the signature names: a BinarySecurityToken, or the registered one by IssuerSerial.

    Returns ``(certificate, how)``. An IssuerSerial that does not name the registered certificate cannot
    be resolved (the gateway knows no other certificates for this user).
    """
    ref = msg.message_id
    str_ref = msg.signature.find("ds:KeyInfo/wsse:SecurityTokenReference", NS)
    if str_ref is None:
        raise As4Error("EBMS:0103", "ds:KeyInfo must hold a wsse:SecurityTokenReference "
                                    "(ds:X509Data/ds:X509IssuerSerial or wsse:Reference to a BinarySecurityToken)",
                       ref)
    issuer_serial = str_ref.find("ds:X509Data/ds:X509IssuerSerial", NS)
    bst_ref = str_ref.find("wsse:Reference", NS)
    if issuer_serial is not None:
        issuer = _text(issuer_serial, "ds:X509IssuerName") or ""
        serial = _text(issuer_serial, "ds:X509SerialNumber") or ""
        try:
            serial_number = int(serial)
        except ValueError:
            raise As4Error("EBMS:0103", "ds:X509SerialNumber is not a decimal integer", ref) from None
        if serial_number == registered_cert.serial_number and _names_equal(issuer, registered_cert.issuer):
            return registered_cert, "X509IssuerSerial"
        raise As4Error("EBMS:0101", "certificate not registered for user: the signature's X509IssuerSerial "
                                    "does not name the certificate registered for this gateway user", ref)
    if bst_ref is not None:
        uri = bst_ref.get("URI") or ""
        if not uri.startswith("#"):
            raise As4Error("EBMS:0103", "wsse:Reference URI must point to a wsse:BinarySecurityToken in the "
                                        "message (\"#<wsu:Id>\")", ref)
        default = header_for_role(msg, None)
        tokens = [t for t in (default.findall("wsse:BinarySecurityToken", NS) if default is not None else [])
                  if t.get(WSU_ID) == uri[1:]]
        if len(tokens) != 1:
            raise As4Error("EBMS:0103", f"wsse:Reference {uri} does not resolve to exactly one "
                                        "wsse:BinarySecurityToken in the default wsse:Security header", ref)
        token = tokens[0]
        if token.get("ValueType") != X509V3:
            raise As4Error("EBMS:0103", "wsse:BinarySecurityToken ValueType must be …#X509v3", ref)
        try:
            cert = x509.load_der_x509_certificate(base64.b64decode("".join((token.text or "").split())))
        except (ValueError, binascii.Error):
            raise As4Error("EBMS:0103", "wsse:BinarySecurityToken is not a Base64 DER X.509 certificate",
                           ref) from None
        return cert, "BinarySecurityToken"
    raise As4Error("EBMS:0103", "wsse:SecurityTokenReference must hold ds:X509Data/ds:X509IssuerSerial or a "
                                "wsse:Reference to a BinarySecurityToken", ref)


SIGNATURE_CONFIG = SignatureConfiguration(
    location="./{%s}Header/{%s}Security/" % (NS["S12"], NS["wsse"]),
    expect_references=True,  # any number; the policy check above already required the three parts
    signature_methods=frozenset({SignatureMethod.RSA_SHA256}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
)


def verify_signature(msg, cert, now=None):
    """Verify the signature with signxml's XMLVerifier against ``cert``."""
    config = SIGNATURE_CONFIG if now is None else dataclasses.replace(SIGNATURE_CONFIG, verification_time=now)
    try:
        XMLVerifier().verify(msg.envelope, x509_cert=cert, expect_config=config)
    except InvalidCertificate as exc:
        raise As4Error("EBMS:0101", f"signing certificate is not valid now: {_first_sentence(exc)}",
                       msg.message_id) from None
    except InvalidDigest as exc:
        raise As4Error("EBMS:0101", f"signature does not verify: a signed part was changed after signing "
                                    f"({_first_sentence(exc)})", msg.message_id) from None
    except SignXMLException as exc:
        raise As4Error("EBMS:0101", f"signature does not verify: {_first_sentence(exc)}", msg.message_id) from None
    except Exception as exc:  # malformed Base64, a key type signxml cannot use ...: still a failed check
        raise As4Error("EBMS:0101", f"signature does not verify: {exc.__class__.__name__}: {_first_sentence(exc)}",
                       msg.message_id) from None


def _first_sentence(exc):
    return str(exc).split(". ")[0].strip()[:300]
