# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Load OCES certificates and classify them.  Knows no Ansible (unit-testable, reusable).

Reading the module options that name a certificate is ``_opt_certificate``'s job; this file turns
bytes into a ``Bundle`` and judges it.

Public API (private to this collection, but stable for its modules and plugins):

``OcesError(_errors.DmsError)``
    The one exception type.  ``str(exc)`` names the problem and the fix and never contains a
    passphrase or key material.  ``exc.reason`` is a short machine-readable code (see ``REASONS``).
``Bundle(certificate, private_key, chain)``
    A loaded end-entity certificate, its private key (or ``None``) and the CA certificates that came
    with it (leaf-to-root order as far as it could be worked out).  ``bundle.key_matches`` tells
    whether the key belongs to the certificate (``None`` without a key).
``load_bundle(data, passphrase=None, key_data=None, key_passphrase=None) -> Bundle``
    ``data`` is a PKCS#12 (any of the usual encryptions incl. legacy RC2/3DES), PEM (certificate,
    optionally key and chain in one file) or DER certificate.  ``key_data`` is an optional separate
    PEM/DER private key.  Key mismatch and a missing key are *not* errors here: the info module
    reports them; ``validate()`` refuses them.
``describe(bundle, now=None) -> dict``
    Every field ``oces_certificate_info`` returns (classification, identity, validity, chain ...).
``check_key(bundle)``
    Raise ``OcesError`` unless the bundle has a private key that belongs to its certificate.
``validate(bundle, ...)``
    Raise ``OcesError`` when the bundle is not fit for use (no key, mismatch, OCES2, expired ...).
``portal_user_id_of(classify(cert))``
    ``CVR_<cvr>_UI_<uuid>`` of an OCES3 certificate (built by ``_identity``), else None.
``certificate_pem / private_key_pem / chain_pem / pkcs12_bytes``
    Serialisers for the files ``oces_certificate`` writes; ``same_key / same_certificates`` compare.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import List, Optional

from ansible_collections.dkcustoms.dms.plugins.module_utils import _errors, _identity

try:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtensionOID, NameOID
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - _deps.require names the fix before anything here runs
    HAS_CRYPTOGRAPHY = False


OCES_TYPES = ("VOCES", "FOCES", "MOCES")
CERTIFICATE_TYPES = OCES_TYPES + ("unknown",)

REASONS = (
    "wrong_passphrase", "passphrase_required", "corrupt", "truncated", "not_a_certificate",
    "unsupported", "no_key", "key_mismatch", "expired", "not_yet_valid", "too_few_days",
    "type_not_allowed", "cvr_mismatch", "oces2", "not_oces", "invalid_input",
)

# Subject serialNumber (2.5.4.5) forms, see docs/certificates.md and domain.md.
_OCES3_SERIAL = re.compile(
    r"^UI:DK-(?P<kind>[OE]):G:(?P<uuid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$")
_OCES2_SERIAL = re.compile(r"^CVR:(?P<cvr>\d{8})-(?P<kind>UID|FID|RID):(?P<id>.+)$")
_OCES2_KINDS = {"UID": "VOCES", "FID": "FOCES", "RID": "MOCES"}
_ORG_IDENTIFIER = re.compile(r"^NTRDK-(?P<cvr>\d{8})$")
_OCES2_POLICY_TYPES = {
    "1.2.208.169.1.1.1.1": "POCES", "1.2.208.169.1.1.1.2": "MOCES",
    "1.2.208.169.1.1.1.3": "VOCES", "1.2.208.169.1.1.1.4": "FOCES",
}
_OCES3_POLICY_PREFIXES = ("1.2.208.169.1.1.1.3.7", "1.2.208.169.1.1.1.2.7")
_TEST_OU = "test - cti"
_PRODUCTION_ISSUER_O = "den danske stat"
_SYSTEM_CN_SUFFIX = "(systemcertifikat)"
_PKCS7_DATA_OID = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01"


class OcesError(_errors.DmsError):
    """A certificate input problem.  The message names the problem and the fix, never a secret."""

    reason = "invalid_input"


@dataclass
class Bundle:
    """End-entity certificate + private key (or None) + CA chain (leaf-to-root where known)."""

    certificate: "x509.Certificate"
    private_key: object = None
    chain: List["x509.Certificate"] = field(default_factory=list)
    source_format: str = ""          # pkcs12 | pem | der
    friendly_name: Optional[str] = None

    @property
    def key_matches(self):
        """True/False whether the private key belongs to the certificate; None without a key."""
        if self.private_key is None:
            return None
        return _public_bytes(self.private_key.public_key()) == _public_bytes(self.certificate.public_key())


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

def _to_bytes(value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _public_bytes(public_key):
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def _der_header(data, offset=0):
    """Return (tag, header_length, content_length) of the DER element at offset, or None."""
    if len(data) < offset + 2:
        return None
    tag = data[offset]
    first = data[offset + 1]
    if first < 0x80:
        return tag, 2, first
    count = first & 0x7F
    if count == 0 or count > 4 or len(data) < offset + 2 + count:
        return None
    return tag, 2 + count, int.from_bytes(data[offset + 2:offset + 2 + count], "big")


def _der_shape(data):
    """Classify raw bytes: 'not_der', 'truncated', 'trailing' or 'ok' (outer SEQUENCE length)."""
    header = _der_header(data)
    if header is None or header[0] != 0x30:
        return "not_der"
    _tag, head, length = header
    if head + length > len(data):
        return "truncated"
    if head + length < len(data) and data[head + length:].strip(b"\x00\r\n ") != b"":
        return "trailing"
    return "ok"


def _looks_like_pkcs12(data):
    """PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo (pkcs7-data or signed) ... }."""
    header = _der_header(data)
    if header is None:
        return False
    pos = header[1]
    return data[pos:pos + 3] == b"\x02\x01\x03"


def _pkcs12_passphrase_candidates(passphrase):
    if passphrase is not None:
        return [_to_bytes(passphrase)]
    # No passphrase given: files made with an empty passphrase use either form.
    return [None, b""]


def _load_pkcs12(data, passphrase, shape):
    for candidate in _pkcs12_passphrase_candidates(passphrase):
        try:
            return pkcs12.load_pkcs12(data, candidate)
        except UnsupportedAlgorithm as exc:
            raise OcesError(
                "The PKCS#12 file uses an encryption this cryptography/OpenSSL build cannot read "
                "(%s). Fix: re-export it with 'openssl pkcs12 -export' using default (AES) encryption."
                % _safe_text(exc), "unsupported")
        except (ValueError, TypeError):
            continue   # the reason is worked out below from the file's structure
    if shape == "ok" and _structurally_valid_pfx(data):
        if passphrase is None:
            raise OcesError(
                "The PKCS#12 file is protected by a passphrase and none was given. Fix: set "
                "certificate_passphrase (keep it in ansible-vault).", "passphrase_required")
        raise OcesError(
            "The PKCS#12 passphrase is wrong: the file's structure is intact but the given "
            "passphrase does not open it. Fix: supply the passphrase the file was exported with (if "
            "you are sure of it, the encrypted content was altered: copy the file again).",
            "wrong_passphrase")
    raise OcesError(
        "The PKCS#12 file is corrupt: its structure cannot be parsed. Fix: export the certificate "
        "again from its source or copy the complete file in binary mode.", "corrupt")


def _structurally_valid_pfx(data):
    """Walk the DER tree of the outer PFX; damaged files fail here, intact ones pass."""
    try:
        _walk_der(data, 0, len(data), depth=0)
    except ValueError:
        return False
    return _looks_like_pkcs12(data) and _PKCS7_DATA_OID in data[:40]


def _walk_der(data, start, end, depth):
    pos = start
    while pos < end:
        header = _der_header(data, pos)
        if header is None:
            raise ValueError("bad header")
        tag, head, length = header
        if pos + head + length > end:
            raise ValueError("element overruns its parent")
        # Only descend into constructed SEQUENCE/SET and context-specific constructed tags.
        if tag & 0x20 and depth < 6:
            _walk_der(data, pos + head, pos + head + length, depth + 1)
        pos += head + length
    if pos != end:
        raise ValueError("length mismatch")


def _safe_text(exc):
    """Exception text from cryptography without anything that could echo input bytes."""
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return text[:200]


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


def _pem_blocks(data):
    """Return [(label, full_block_bytes)]; raise on a BEGIN without END (truncated)."""
    blocks = [(m.group(1).decode("ascii"), m.group(0)) for m in _PEM_BLOCK.finditer(data)]
    begins = len(re.findall(rb"-----BEGIN [A-Z0-9 ]+-----", data))
    if begins != len(blocks):
        raise OcesError(
            "The PEM data is truncated: a '-----BEGIN ...-----' block has no matching END line. Fix: "
            "copy the complete file again.", "truncated")
    return blocks


def _load_pem_key(block, passphrase):
    try:
        return serialization.load_pem_private_key(block, _to_bytes(passphrase))
    except TypeError:
        if passphrase is None:
            raise OcesError(
                "The private key is encrypted and no passphrase was given. Fix: set "
                "private_key_passphrase (keep it in ansible-vault).", "passphrase_required")
        # An unencrypted key with a passphrase given (e.g. one passphrase for a whole PEM bundle).
        return _load_pem_key(block, None)
    except ValueError as exc:
        if passphrase is not None and ("Incorrect password" in str(exc) or "Bad decrypt" in str(exc)):
            raise OcesError(
                "The private key passphrase is wrong. Fix: supply the passphrase the key was "
                "encrypted with.", "wrong_passphrase")
        raise OcesError(
            "The private key is corrupt and cannot be parsed. Fix: export the key again.", "corrupt")
    except UnsupportedAlgorithm as exc:
        raise OcesError("The private key uses an unsupported algorithm (%s). Fix: re-export it as "
                        "PKCS#8 with AES encryption." % _safe_text(exc), "unsupported")


def _load_key_data(key_data, passphrase):
    key_data = _to_bytes(key_data)
    if b"-----BEGIN" in key_data:
        keys = [blk for label, blk in _pem_blocks(key_data) if "PRIVATE KEY" in label]
        if not keys:
            raise OcesError(
                "The private key file contains no PEM private key block. Fix: point the key option "
                "at the PEM private key that belongs to the certificate.", "no_key")
        return _load_pem_key(keys[0], passphrase)
    try:
        return serialization.load_der_private_key(key_data, _to_bytes(passphrase))
    except TypeError:
        raise OcesError("The DER private key is encrypted and no passphrase was given (or one was "
                        "given for an unencrypted key). Fix: set or drop private_key_passphrase.",
                        "passphrase_required")
    except (ValueError, UnsupportedAlgorithm):
        raise OcesError(
            "The private key file is neither a PEM nor a readable DER private key. Fix: supply the "
            "private key in PEM format.", "not_a_certificate")


def _load_pem(data, passphrase, key_passphrase):
    blocks = _pem_blocks(data)
    certs, key = [], None
    for label, block in blocks:
        if label in ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"):
            try:
                if label == "TRUSTED CERTIFICATE":
                    raise OcesError("OpenSSL 'TRUSTED CERTIFICATE' PEM blocks are not supported. Fix: "
                                    "convert with 'openssl x509 -in FILE -out cert.pem'.", "unsupported")
                certs.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                raise OcesError(
                    "A PEM CERTIFICATE block is corrupt and cannot be parsed. Fix: copy the "
                    "certificate file again from its source.", "corrupt")
        elif "PRIVATE KEY" in label and key is None:
            key = _load_pem_key(block, key_passphrase if key_passphrase is not None else passphrase)
    if not certs:
        if key is not None:
            raise OcesError(
                "The PEM data holds a private key but no certificate. Fix: supply the certificate "
                "(PEM/DER/PKCS#12) and give the key separately.", "not_a_certificate")
        raise OcesError(
            "The PEM data contains no CERTIFICATE block (found: %s). Fix: supply an OCES certificate "
            "as PKCS#12, PEM or DER." % (", ".join(sorted({b[0] for b in blocks})) or "nothing"),
            "not_a_certificate")
    return certs, key


def load_bundle(data, passphrase=None, key_data=None, key_passphrase=None):
    """Load a certificate bundle from PKCS#12, PEM or DER bytes.  See the module docstring."""
    if not HAS_CRYPTOGRAPHY:  # pragma: no cover
        raise OcesError("The Python library 'cryptography' is required. Fix: install it on the host "
                        "that runs the module (pip install cryptography).", "unsupported")
    data = _to_bytes(data)
    if not data or not data.strip():
        raise OcesError("The certificate data is empty. Fix: point the module at the certificate "
                        "file (PKCS#12, PEM or DER).", "not_a_certificate")
    key = None
    friendly_name = None
    if b"-----BEGIN" in data:
        certs, key = _load_pem(data, passphrase, key_passphrase)
        source = "pem"
    else:
        certs, source = _load_binary(data, passphrase)
        if source == "pkcs12":
            p12 = certs
            key = p12.key
            certs = ([p12.cert.certificate] if p12.cert is not None else []) + \
                [c.certificate for c in p12.additional_certs]
            if p12.cert is not None and p12.cert.friendly_name:
                friendly_name = p12.cert.friendly_name.decode("utf-8", "replace")
            if not certs:
                raise OcesError(
                    "The PKCS#12 file contains no certificate. Fix: export the certificate together "
                    "with its key (openssl pkcs12 -export -in cert.pem -inkey key.pem).",
                    "not_a_certificate")
    if key_data is not None:
        if key is not None:
            raise OcesError("A private key was given separately but the certificate data already "
                            "contains one. Fix: give only one of them.", "invalid_input")
        key = _load_key_data(key_data, key_passphrase if key_passphrase is not None else passphrase)
    leaf = _pick_leaf(certs, key)
    chain = _order_chain(leaf, [c for c in certs if c is not leaf])
    return Bundle(certificate=leaf, private_key=key, chain=chain, source_format=source,
                  friendly_name=friendly_name)


# What a damaged outer structure means, by (detected format, _der_shape): (message, reason).
_SHAPE_PROBLEMS = {
    ("der", "not_der"): (
        "The data is not a certificate: it is neither PEM, DER nor PKCS#12. Fix: supply the OCES "
        "certificate file (.p12/.pfx, .pem/.crt or .cer/.der).", "not_a_certificate"),
    ("pkcs12", "truncated"): (
        "The PKCS#12 file is truncated (it ends before its declared length). Fix: copy the "
        "complete file again from its source (binary transfer, no text conversion).", "truncated"),
    ("der", "truncated"): (
        "The DER data is truncated (it ends before its declared length). Fix: copy the complete "
        "file again from its source in binary mode.", "truncated"),
}


def _load_binary(data, passphrase):
    shape = _der_shape(data)
    kind = "pkcs12" if shape != "not_der" and _looks_like_pkcs12(data) else "der"
    if (kind, shape) in _SHAPE_PROBLEMS:
        raise OcesError(*_SHAPE_PROBLEMS[(kind, shape)])
    if kind == "pkcs12":
        return _load_pkcs12(data, passphrase, shape), "pkcs12"
    try:
        return [x509.load_der_x509_certificate(data)], "der"
    except ValueError:
        pass
    raise OcesError(
        "The file is corrupt or is not a certificate: its binary (DER) data parses neither as an "
        "X.509 certificate nor as PKCS#12. Fix: supply the OCES certificate file again.", "corrupt")


def _is_ca(cert):
    try:
        return cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value.ca
    except x509.ExtensionNotFound:
        return cert.issuer == cert.subject


def _pick_leaf(certs, key):
    if key is not None:
        wanted = _public_bytes(key.public_key())
        for cert in certs:
            if _public_bytes(cert.public_key()) == wanted:
                return cert
    subjects_issuing_others = {c.issuer for c in certs if c.issuer != c.subject}
    for cert in certs:
        if not _is_ca(cert) and cert.subject not in subjects_issuing_others:
            return cert
    for cert in certs:
        if not _is_ca(cert):
            return cert
    return certs[0]


def _order_chain(leaf, others):
    ordered, remaining, current = [], list(others), leaf
    while remaining:
        nxt = next((c for c in remaining if c.subject == current.issuer and c is not current), None)
        if nxt is None or current.issuer == current.subject:
            break
        ordered.append(nxt)
        remaining.remove(nxt)
        current = nxt
    return ordered + remaining


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------

def _attr(name, oid):
    values = name.get_attributes_for_oid(oid)
    return values[0].value if values else None


def _policies(cert):
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.CERTIFICATE_POLICIES).value
    except x509.ExtensionNotFound:
        return []
    return [p.policy_identifier.dotted_string for p in ext]


def _key_usage(cert):
    try:
        ku = cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    except x509.ExtensionNotFound:
        return None
    usages = []
    for name in ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                 "key_agreement", "key_cert_sign", "crl_sign"):
        if getattr(ku, name):
            usages.append(name)
    return usages


def _classify_oces2(serial, policies, result):
    """Fill ``result`` for an OCES2 certificate (serialNumber form, policy, or issuer)."""
    result["oces_generation"] = "OCES2"
    oces2 = _OCES2_SERIAL.match(serial)
    oces2_policy = next((p for p in policies if p in _OCES2_POLICY_TYPES), None)
    if oces2:
        result["certificate_type"] = _OCES2_KINDS[oces2.group("kind")]
        result["cvr"] = oces2.group("cvr")
        result["basis"].append("subject serialNumber %s (OCES2 form CVR:<cvr>-%s:<id>)"
                               % (serial, oces2.group("kind")))
    elif oces2_policy:
        result["certificate_type"] = _OCES2_POLICY_TYPES[oces2_policy]
        result["basis"].append("OCES2 certificate policy %s" % oces2_policy)
    else:
        result["basis"].append("issuer organisation TRUST2408 (OCES2 CA)")
    return result


def _is_oces2(cert, serial, policies):
    issuer_o = (_attr(cert.issuer, NameOID.ORGANIZATION_NAME) or "").upper()
    return bool(_OCES2_SERIAL.match(serial) or any(p in _OCES2_POLICY_TYPES for p in policies)
                or "TRUST2408" in issuer_o)


def _classify_organisation(cert, result):
    """VOCES or FOCES for an OCES3 UI:DK-O certificate: keyUsage decides, the CN suffix is noted."""
    result["basis"].append("subject serialNumber UI:DK-O:G:<uuid> (organisation or system certificate)")
    cn = _attr(cert.subject, NameOID.COMMON_NAME) or ""
    system_cn = cn.strip().lower().endswith(_SYSTEM_CN_SUFFIX)
    if "content_commitment" in (_key_usage(cert) or []):
        result["certificate_type"] = "VOCES"
        result["basis"].append("keyUsage includes nonRepudiation (organisation certificate)")
        if system_cn:
            result["basis"].append("note: CN ends in '(systemcertifikat)', which suggests FOCES; "
                                   "keyUsage decided")
    else:
        result["certificate_type"] = "FOCES"
        result["basis"].append("keyUsage without nonRepudiation (system certificate)")
        if system_cn:
            result["basis"].append("CN ends in '(systemcertifikat)'")
    return result


def classify(cert):
    """Return dict(certificate_type, oces_generation, cvr, uuid, basis=[...]) for one certificate."""
    serial = _attr(cert.subject, NameOID.SERIAL_NUMBER) or ""
    policies = _policies(cert)
    result = {"certificate_type": "unknown", "oces_generation": "unknown", "cvr": None,
              "uuid": None, "basis": []}
    if _is_oces2(cert, serial, policies):
        return _classify_oces2(serial, policies, result)
    oces3 = _OCES3_SERIAL.match(serial)
    if not oces3:
        result["basis"].append("no OCES serialNumber (UI:DK-O:G:<uuid> / UI:DK-E:G:<uuid>) in subject")
        return result
    result["oces_generation"] = "OCES3"
    result["uuid"] = oces3.group("uuid").lower()
    org = _ORG_IDENTIFIER.match(_attr(cert.subject, NameOID.ORGANIZATION_IDENTIFIER) or "")
    if org:
        result["cvr"] = org.group("cvr")
    if oces3.group("kind") == "E":
        result["certificate_type"] = "MOCES"
        result["basis"].append("subject serialNumber UI:DK-E:G:<uuid> (employee certificate)")
        return result
    return _classify_organisation(cert, result)


def environment_of(bundle):
    """'test' when the issuer (or any chain certificate) has OU=Test - cti, 'production' for the
    production OCES issuer (O=Den Danske Stat without that OU), else 'unknown'."""
    names = [bundle.certificate.issuer] + [c.subject for c in bundle.chain]
    for name in names:
        ous = [a.value.strip().lower() for a in name.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
        if _TEST_OU in ous:
            return "test"
    issuer_o = (_attr(bundle.certificate.issuer, NameOID.ORGANIZATION_NAME) or "").strip().lower()
    issuer_cn = (_attr(bundle.certificate.issuer, NameOID.COMMON_NAME) or "").lower()
    if issuer_o == _PRODUCTION_ISSUER_O and "oces" in issuer_cn:
        return "production"
    return "unknown"


def name_text(name):
    """RFC 4514 text with readable names for the OCES attributes cryptography prints as OIDs."""
    return name.rfc4514_string({NameOID.SERIAL_NUMBER: "serialNumber",
                                NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier",
                                NameOID.GIVEN_NAME: "givenName", NameOID.SURNAME: "surname"})


def _iso(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fingerprint_sha256(cert):
    return cert.fingerprint(hashes.SHA256()).hex()


def _key_description(key):
    if isinstance(key, rsa.RSAPrivateKey) or isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "ECC", key.curve.key_size
    if isinstance(key, (dsa.DSAPrivateKey, dsa.DSAPublicKey)):
        return "DSA", key.key_size
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return "Ed25519", 256
    if isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return "Ed448", 456
    return "unknown", None


def _chain_entry(cert):
    return {"subject": name_text(cert.subject), "issuer": name_text(cert.issuer),
            "serial_number": format(cert.serial_number, "x"),
            "fingerprint_sha256": fingerprint_sha256(cert),
            "not_before": _iso(cert.not_valid_before_utc), "not_after": _iso(cert.not_valid_after_utc)}


def portal_user_id_of(info):
    """The portal user id of a ``classify`` result, or None when it is not an OCES3 identity."""
    if info["oces_generation"] != "OCES3" or not (info["cvr"] and info["uuid"]):
        return None
    return _identity.build_portal_user_id(info["cvr"], info["uuid"])


def _warnings(info, bundle, now):
    """What is worth knowing about a certificate that does not stop it from being read."""
    not_before, not_after = bundle.certificate.not_valid_before_utc, bundle.certificate.not_valid_after_utc
    warnings = []
    if info["oces_generation"] == "OCES2":
        warnings.append("This is an OCES2 certificate; the DMS gateway needs OCES3. Order an OCES3 "
                        "certificate (FOCES or VOCES) from MitID Erhverv.")
    elif info["oces_generation"] == "unknown":
        warnings.append("This is not an OCES certificate (no OCES serialNumber in the subject); "
                        "the certificate portal will not accept it.")
    if info["certificate_type"] == "MOCES" and info["oces_generation"] == "OCES3":
        warnings.append("MOCES (employee) certificate: the DMS onboarding guide recommends a FOCES "
                        "(system) or VOCES (organisation) certificate for system-to-system use.")
    if now > not_after:
        warnings.append("The certificate expired on %s." % _iso(not_after))
    elif now < not_before:
        warnings.append("The certificate is not valid before %s." % _iso(not_before))
    if bundle.private_key is not None and not bundle.key_matches:
        warnings.append("The private key does not belong to the certificate.")
    return warnings


def describe(bundle, now=None):
    """Every field oces_certificate_info returns.  Contains no key material."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    cert = bundle.certificate
    info = classify(cert)
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    key_type, key_size = _key_description(cert.public_key())
    remaining = (not_after - now)
    return {
        "certificate_type": info["certificate_type"],
        "classification_basis": info["basis"],
        "oces_generation": info["oces_generation"],
        "environment": environment_of(bundle),
        "cvr": info["cvr"],
        "uuid": info["uuid"],
        "portal_user_id": portal_user_id_of(info),
        "subject": name_text(cert.subject),
        "common_name": _attr(cert.subject, NameOID.COMMON_NAME),
        "issuer": name_text(cert.issuer),
        "serial_number": format(cert.serial_number, "x"),
        "fingerprint_sha256": fingerprint_sha256(cert),
        "not_before": _iso(not_before),
        "not_after": _iso(not_after),
        "days_remaining": remaining.days,
        "expired": now > not_after,
        "not_yet_valid": now < not_before,
        "policies": _policies(cert),
        "key_usage": _key_usage(cert) or [],
        "public_key_type": key_type,
        "public_key_size": key_size,
        "has_private_key": bundle.private_key is not None,
        "key_matches": bundle.key_matches,
        "chain": [_chain_entry(c) for c in bundle.chain],
        "source_format": bundle.source_format,
        "warnings": _warnings(info, bundle, now),
    }


def check_key(bundle):
    """Raise OcesError unless the bundle carries a private key that belongs to its certificate."""
    subject = name_text(bundle.certificate.subject)
    if bundle.private_key is None:
        raise OcesError(
            "The certificate comes without a private key (%s). Fix: export the PKCS#12 with its "
            "private key, or give the matching private key separately (private_key_path or "
            "private_key_content)." % subject, "no_key")
    if not bundle.key_matches:
        raise OcesError(
            "The private key does not belong to the certificate %s (key/certificate mismatch). Fix: "
            "supply the key the certificate was issued for." % subject, "key_mismatch")


def _check_type(info, allowed_types, allow_oces2):
    if info["oces_generation"] == "OCES2" and not allow_oces2:
        message = ("%s is an OCES2 %s certificate; OCES2 is retired and the DMS gateway needs OCES3. "
                   "Fix: order an OCES3 FOCES or VOCES certificate from MitID Erhverv."
                   % (info["subject"], info["certificate_type"]))
        raise OcesError(message, "oces2")
    if info["oces_generation"] == "unknown" and "unknown" not in allowed_types:
        raise OcesError(
            "%s is not an OCES certificate (its subject has no serialNumber UI:DK-O:G:<uuid> or "
            "UI:DK-E:G:<uuid>); the certificate portal and the DMS gateway accept only OCES3. Fix: "
            "supply the OCES3 certificate from MitID Erhverv." % info["subject"], "not_oces")
    if info["certificate_type"] not in allowed_types:
        raise OcesError(
            "The certificate type is %s, which is not in allowed_types (%s). Fix: use a certificate "
            "of an allowed type or widen allowed_types." % (info["certificate_type"],
                                                            ", ".join(allowed_types)),
            "not_oces" if info["certificate_type"] == "unknown" else "type_not_allowed")


def _check_cvr(info, expected_cvr):
    expected = str(expected_cvr)
    if not re.match(r"^\d{8}$", expected):
        raise OcesError("expected_cvr %r is not a CVR number: it must be exactly 8 digits. Fix: "
                        "correct expected_cvr." % expected, "invalid_input")
    if info["cvr"] != expected:
        raise OcesError(
            "The certificate belongs to CVR %s, not the expected CVR %s. Fix: supply the "
            "certificate of CVR %s or correct expected_cvr." % (info["cvr"] or "(none)", expected,
                                                                expected), "cvr_mismatch")


def _check_validity(info, min_days_remaining, allow_expired, allow_not_yet_valid):
    if info["expired"] and not allow_expired:
        raise OcesError(
            "The certificate expired on %s. Fix: renew it in MitID Erhverv and supply the new one "
            "(or allow expired certificates: allow_expired)."
            % info["not_after"], "expired")
    if info["not_yet_valid"] and not allow_not_yet_valid:
        raise OcesError(
            "The certificate is not valid before %s. Fix: wait until then, check the host clock, or "
            "allow not-yet-valid certificates (allow_not_yet_valid)." % info["not_before"], "not_yet_valid")
    if min_days_remaining is not None and not info["expired"] and \
            info["days_remaining"] < int(min_days_remaining):
        raise OcesError(
            "The certificate has %d days left, fewer than min_days_remaining=%d. Fix: renew it in "
            "MitID Erhverv, or lower min_days_remaining." % (info["days_remaining"],
                                                             int(min_days_remaining)),
            "too_few_days")


def validate(bundle, require_key=True, allowed_types=None, expected_cvr=None,
             min_days_remaining=None, allow_expired=False, allow_not_yet_valid=False,
             allow_oces2=False, now=None):
    """Raise OcesError (message: problem + fix) when the bundle is not fit for installation/use.
    Returns describe(bundle) for convenience."""
    info = describe(bundle, now=now)
    if require_key or bundle.private_key is not None:
        check_key(bundle)
    _check_type(info, OCES_TYPES if allowed_types is None else allowed_types, allow_oces2)
    if expected_cvr is not None:
        _check_cvr(info, expected_cvr)
    _check_validity(info, min_days_remaining, allow_expired, allow_not_yet_valid)
    return info


# --------------------------------------------------------------------------------------------
# Serialising and comparing
# --------------------------------------------------------------------------------------------

def certificate_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def chain_pem(certs):
    return b"".join(certificate_pem(c) for c in certs)


def private_key_pem(key, passphrase=None):
    """PKCS#8 PEM; encrypted (best available: AES-256-CBC, PBKDF2) when passphrase is given."""
    encryption = serialization.NoEncryption() if not passphrase else \
        serialization.BestAvailableEncryption(_to_bytes(passphrase))
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def pkcs12_bytes(bundle, passphrase, friendly_name=None):
    """A PKCS#12 keystore Java 17 keytool opens: PBES2 AES-256-CBC + PBKDF2, HMAC-SHA256 MAC."""
    if not passphrase:
        raise OcesError("A PKCS#12 keystore needs a passphrase. Fix: set keystore_passphrase.",
                        "invalid_input")
    encryption = (serialization.PrivateFormat.PKCS12.encryption_builder()
                  .kdf_rounds(100000)
                  .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
                  .hmac_hash(hashes.SHA256())
                  .build(_to_bytes(passphrase)))
    name = _to_bytes(friendly_name) if friendly_name else None
    return pkcs12.serialize_key_and_certificates(name, bundle.private_key, bundle.certificate,
                                                 bundle.chain or None, encryption)


def same_key(a, b):
    """Whether two private keys are the same key (compared through their private numbers)."""
    if a is None or b is None:
        return a is b
    fmt = (serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return a.private_bytes(*fmt) == b.private_bytes(*fmt)


def same_certificates(a, b):
    """Whether two certificate lists hold the same certificates in the same order."""
    return [c.fingerprint(hashes.SHA256()) for c in a] == [c.fingerprint(hashes.SHA256()) for c in b]
