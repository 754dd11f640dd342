# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_oces: loading (PKCS#12 of several makers, PEM, DER), error classification, OCES3 classification.

Certificates are made here with cryptography (small EC/RSA keys, fast); PKCS#12 files also with the
openssl and keytool command-line tools, as users get them (a missing tool fails under CI and skips
elsewhere: tests/conftest.py)."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import uuid as uuidlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from ansible_collections.dkcustoms.dms.plugins.module_utils import _oces

NOW = datetime.datetime.now(datetime.timezone.utc)
PASS = "unit-test-passphrase-1"
TEST_OU = "Test - cti"


def _name(cn, ou=None, org="Den Danske Stat", extra=()):
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "DK")]
    attrs += list(extra)
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject, issuer, key, issuer_key, ca=False, days=(-1, 1000), nonrep=False, policies=()):
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW + datetime.timedelta(days=days[0]))
               .not_valid_after(NOW + datetime.timedelta(days=days[1]))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=not ca, content_commitment=nonrep, key_encipherment=not ca,
                   data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                   encipher_only=False, decipher_only=False), critical=True))
    if policies:
        builder = builder.add_extension(x509.CertificatePolicies(
            [x509.PolicyInformation(x509.ObjectIdentifier(p), None) for p in policies]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class CA:
    def __init__(self, ou=TEST_OU):
        self.root_key, self.key = _key(), _key()
        root_name = _name("Den Danske Stat OCES rod-CA", ou)
        self.root = _cert(root_name, root_name, self.root_key, self.root_key, ca=True)
        self.name = _name("Den Danske Stat OCES udstedende-CA 1", ou)
        self.cert = _cert(self.name, root_name, self.key, self.root_key, ca=True)

    def issue(self, kind="O", cn="sys (systemcertifikat)", cvr="12345678", nonrep=False, days=(-1, 1000),
              serial=None, key=None):
        key = key or _key()
        uid = str(uuidlib.uuid4())
        extra = [x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, "NTRDK-%s" % cvr),
                 x509.NameAttribute(NameOID.SERIAL_NUMBER, serial or "UI:DK-%s:G:%s" % (kind, uid))]
        cert = _cert(_name(cn, org="Firma ApS", extra=extra), self.name, key, self.key,
                     nonrep=nonrep, days=days, policies=["1.2.208.169.1.1.1.3.7", "0.4.0.2042.1.1"])
        return cert, key, uid


@pytest.fixture(scope="module")
def ca():
    return CA()


def _p12(cert, key, chain, passphrase=PASS, name=b"x"):
    enc = serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else \
        serialization.NoEncryption()
    return pkcs12.serialize_key_and_certificates(name, key, cert, chain, enc)


def _pem(*objs):
    out = b""
    for obj in objs:
        if isinstance(obj, x509.Certificate):
            out += obj.public_bytes(serialization.Encoding.PEM)
        else:
            out += obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    return out


# ---------------------------------------------------------------- loading ----

def test_pkcs12_with_chain(ca):
    cert, key, uid = ca.issue()
    bundle = _oces.load_bundle(_p12(cert, key, [ca.root, ca.cert]), PASS)
    assert bundle.certificate == cert
    assert bundle.key_matches is True
    # chain is ordered leaf-to-root whatever order the file had
    assert bundle.chain == [ca.cert, ca.root]
    assert bundle.source_format == "pkcs12"


def test_pkcs12_without_passphrase(ca):
    cert, key, _uid = ca.issue()
    bundle = _oces.load_bundle(_p12(cert, key, [], passphrase=None))
    assert bundle.key_matches


def test_pem_with_key_and_chain_in_any_order(ca):
    cert, key, _uid = ca.issue()
    bundle = _oces.load_bundle(_pem(ca.root, key, ca.cert, cert))
    assert bundle.certificate == cert and bundle.chain == [ca.cert, ca.root]
    assert bundle.source_format == "pem"


def test_der_certificate_with_separate_key(ca):
    cert, key, _uid = ca.issue()
    der = cert.public_bytes(serialization.Encoding.DER)
    enc_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.BestAvailableEncryption(b"keypass"))
    bundle = _oces.load_bundle(der, key_data=enc_key, key_passphrase="keypass")
    assert bundle.source_format == "der" and bundle.key_matches


def test_der_certificate_alone_has_no_key(ca):
    cert, _key_, _uid = ca.issue()
    bundle = _oces.load_bundle(cert.public_bytes(serialization.Encoding.DER))
    assert bundle.private_key is None and bundle.key_matches is None
    info = _oces.describe(bundle)
    assert info["has_private_key"] is False and info["key_matches"] is None


@pytest.mark.parametrize("args", [["-legacy"], []], ids=["legacy-rc2-3des", "default-aes"])
def test_openssl_made_pkcs12(ca, tmp_path, args, require_tool):
    openssl = require_tool("openssl")
    cert, key, _uid = ca.issue()
    (tmp_path / "c.pem").write_bytes(_pem(cert, ca.cert))
    (tmp_path / "k.pem").write_bytes(_pem(key))
    out = tmp_path / "o.p12"
    subprocess.run([openssl, "pkcs12", "-export", *args, "-in", str(tmp_path / "c.pem"), "-inkey",
                    str(tmp_path / "k.pem"), "-out", str(out), "-passout", "pass:" + PASS], check=True)
    bundle = _oces.load_bundle(out.read_bytes(), PASS)
    assert bundle.certificate == cert and bundle.key_matches and bundle.chain == [ca.cert]
    with pytest.raises(_oces.OcesError) as err:
        _oces.load_bundle(out.read_bytes(), "not-it")
    assert err.value.reason == "wrong_passphrase"


def test_keytool_made_pkcs12(tmp_path, require_tool):
    keytool = require_tool("keytool")
    store = tmp_path / "kt.p12"
    subprocess.run([keytool, "-genkeypair", "-storetype", "PKCS12", "-keystore", str(store),
                    "-storepass", PASS, "-alias", "dms", "-keyalg", "RSA", "-keysize", "2048",
                    "-dname", "CN=keytool-made", "-validity", "30"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bundle = _oces.load_bundle(store.read_bytes(), PASS)
    assert bundle.key_matches and bundle.friendly_name == "dms"
    assert _oces.describe(bundle)["oces_generation"] == "unknown"


def test_written_keystore_roundtrip(ca):
    cert, key, _uid = ca.issue()
    bundle = _oces.load_bundle(_pem(cert, key, ca.cert, ca.root))
    data = _oces.pkcs12_bytes(bundle, "store-pass-1", "dms")
    again = _oces.load_bundle(data, "store-pass-1")
    assert again.certificate == cert and _oces.same_key(again.private_key, key)
    assert _oces.same_certificates(again.chain, bundle.chain)


def test_written_keystore_opens_in_keytool(ca, tmp_path, require_tool):
    keytool = require_tool("keytool")
    cert, key, _uid = ca.issue()
    data = _oces.pkcs12_bytes(_oces.load_bundle(_pem(cert, key, ca.cert, ca.root)), "store-pass-1", "dms")
    (tmp_path / "ks.p12").write_bytes(data)
    out = subprocess.run([keytool, "-list", "-keystore", str(tmp_path / "ks.p12"), "-storepass",
                          "store-pass-1", "-storetype", "PKCS12"], check=True, capture_output=True,
                         text=True).stdout
    assert "dms," in out and "PrivateKeyEntry" in out


def test_encrypted_key_pem_roundtrip(ca):
    _cert_, key, _uid = ca.issue()
    pem = _oces.private_key_pem(key, "kp-1")
    assert b"ENCRYPTED PRIVATE KEY" in pem
    assert _oces.same_key(serialization.load_pem_private_key(pem, b"kp-1"), key)


# ---------------------------------------------------------------- bad input ----

@pytest.fixture(scope="module")
def good_p12(ca):
    cert, key, _uid = ca.issue()
    return _p12(cert, key, [ca.cert, ca.root])


def _reason(data, passphrase=PASS, **kwargs):
    with pytest.raises(_oces.OcesError) as err:
        _oces.load_bundle(data, passphrase, **kwargs)
    assert PASS not in str(err.value)
    return err.value.reason, str(err.value)


def test_wrong_passphrase(good_p12):
    reason, msg = _reason(good_p12, "wrong-one")
    assert reason == "wrong_passphrase" and "passphrase is wrong" in msg and "Fix:" in msg
    assert "wrong-one" not in msg


def test_missing_passphrase(good_p12):
    reason, msg = _reason(good_p12, None)
    assert reason == "passphrase_required" and "Fix: set certificate_passphrase" in msg


@pytest.mark.parametrize("cut", [0.5, 0.9, 0.99])
def test_truncated_pkcs12(good_p12, cut):
    reason, msg = _reason(good_p12[:int(len(good_p12) * cut)])
    assert reason == "truncated" and "truncated" in msg


def test_corrupt_pkcs12_structure(good_p12):
    damaged = bytearray(good_p12)
    damaged[6:10] = b"\xff\xff\xff\xff"   # inside the structure headers
    reason, _msg = _reason(bytes(damaged))
    assert reason in ("corrupt", "truncated")


@pytest.mark.parametrize("data", [b"hello, I am a text file\n", b"\x89PNG\r\n\x1a\n0000", b"   "])
def test_not_a_certificate(data):
    reason, msg = _reason(data)
    assert reason == "not_a_certificate" and "Fix:" in msg


def test_pem_with_only_a_key(ca):
    _cert_, key, _uid = ca.issue()
    reason, msg = _reason(_pem(key))
    assert reason == "not_a_certificate" and "private key but no certificate" in msg


def test_truncated_pem(ca):
    cert, _key_, _uid = ca.issue()
    reason, _msg = _reason(_pem(cert)[:-40])
    assert reason == "truncated"


def test_corrupt_pem_block(ca):
    cert, _key_, _uid = ca.issue()
    pem = _pem(cert).replace(b"\n", b"\n!!", 3)
    reason, _msg = _reason(pem)
    assert reason == "corrupt"


def test_no_key_and_mismatch_are_reported_then_refused(ca):
    cert, key, _uid = ca.issue()
    other = _key()
    no_key = _oces.load_bundle(_p12(cert, None, [ca.cert]), PASS)
    assert _oces.describe(no_key)["has_private_key"] is False
    with pytest.raises(_oces.OcesError) as err:
        _oces.validate(no_key)
    assert err.value.reason == "no_key"
    mismatch = _oces.load_bundle(_pem(cert, ca.cert), key_data=_pem(other))
    assert mismatch.key_matches is False
    assert _oces.describe(mismatch)["key_matches"] is False
    with pytest.raises(_oces.OcesError) as err:
        _oces.validate(mismatch)
    assert err.value.reason == "key_mismatch" and "does not belong" in str(err.value)


def test_wrong_key_passphrase(ca):
    cert, key, _uid = ca.issue()
    enc = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(b"right"))
    reason, _msg = _reason(_pem(cert), None, key_data=enc, key_passphrase="wrong")
    assert reason == "wrong_passphrase"
    reason, _msg = _reason(_pem(cert), None, key_data=enc)
    assert reason == "passphrase_required"


# ---------------------------------------------------------------- classification ----

def test_foces_by_keyusage_and_cn(ca):
    cert, key, uid = ca.issue(cn="Billing (systemcertifikat)", cvr="87654321")
    info = _oces.describe(_oces.Bundle(cert, key, [ca.cert, ca.root]))
    assert info["certificate_type"] == "FOCES" and info["oces_generation"] == "OCES3"
    assert info["cvr"] == "87654321" and info["uuid"] == uid
    assert info["portal_user_id"] == "CVR_87654321_UI_%s" % uid
    assert info["environment"] == "test"
    assert any("nonRepudiation" in b for b in info["classification_basis"])
    assert info["warnings"] == []


def test_voces_by_nonrepudiation(ca):
    cert, key, _uid = ca.issue(cn="Firma ApS", nonrep=True)
    info = _oces.describe(_oces.Bundle(cert, key, []))
    assert info["certificate_type"] == "VOCES"


def test_conflicting_signals_report_basis(ca):
    cert, key, _uid = ca.issue(cn="x (systemcertifikat)", nonrep=True)
    info = _oces.describe(_oces.Bundle(cert, key, []))
    assert info["certificate_type"] == "VOCES"
    assert any("suggests FOCES" in b for b in info["classification_basis"])


def test_moces_warns(ca):
    cert, key, uid = ca.issue(kind="E", cn="Lars Larsen", nonrep=True)
    info = _oces.describe(_oces.Bundle(cert, key, []))
    assert info["certificate_type"] == "MOCES" and info["uuid"] == uid
    assert any("recommends" in w for w in info["warnings"])
    _oces.validate(_oces.Bundle(cert, key, []))          # accepted
    with pytest.raises(_oces.OcesError) as err:
        _oces.validate(_oces.Bundle(cert, key, []), allowed_types=["FOCES", "VOCES"])
    assert err.value.reason == "type_not_allowed"


def test_oces2_recognised_and_refused(ca):
    cert, key, _uid = ca.issue(serial="CVR:12345678-FID:1234567890")
    bundle = _oces.Bundle(cert, key, [])
    info = _oces.describe(bundle)
    assert info["oces_generation"] == "OCES2" and info["certificate_type"] == "FOCES"
    assert info["cvr"] == "12345678" and info["portal_user_id"] is None
    with pytest.raises(_oces.OcesError) as err:
        _oces.validate(bundle)
    assert err.value.reason == "oces2" and "OCES3" in str(err.value)


def test_non_oces_refused_unless_allowed(ca):
    cert, key, _uid = ca.issue(serial="something-else")
    bundle = _oces.Bundle(cert, key, [])
    assert _oces.describe(bundle)["certificate_type"] == "unknown"
    with pytest.raises(_oces.OcesError) as err:
        _oces.validate(bundle)
    assert err.value.reason == "not_oces"
    _oces.validate(bundle, allowed_types=["unknown"])


def test_production_environment():
    prod = CA(ou=None)
    cert, key, _uid = prod.issue()
    assert _oces.describe(_oces.Bundle(cert, key, [prod.cert]))["environment"] == "production"


def test_unknown_environment():
    other = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some CA")])
    key = _key()
    cert = _cert(_name("x"), other, key, key)
    assert _oces.describe(_oces.Bundle(cert, key, []))["environment"] == "unknown"


def test_validity_checks(ca):
    expired, key, _uid = ca.issue(days=(-100, -1))
    with pytest.raises(_oces.OcesError) as err:
        _oces.validate(_oces.Bundle(expired, key, []))
    assert err.value.reason == "expired"
    _oces.validate(_oces.Bundle(expired, key, []), allow_expired=True)
    future, key2, _uid = ca.issue(days=(5, 100))
    with pytest.raises(_oces.OcesError) as err:
        _oces.validate(_oces.Bundle(future, key2, []))
    assert err.value.reason == "not_yet_valid"
    short, key3, _uid = ca.issue(days=(-1, 10))
    with pytest.raises(_oces.OcesError) as err:
        _oces.validate(_oces.Bundle(short, key3, []), min_days_remaining=30)
    assert err.value.reason == "too_few_days"


def test_expected_cvr(ca):
    cert, key, _uid = ca.issue(cvr="11112222")
    bundle = _oces.Bundle(cert, key, [])
    _oces.validate(bundle, expected_cvr="11112222")
    with pytest.raises(_oces.OcesError) as err:
        _oces.validate(bundle, expected_cvr="33334444")
    assert err.value.reason == "cvr_mismatch"
    with pytest.raises(_oces.OcesError) as err:
        _oces.validate(bundle, expected_cvr="1234")
    assert err.value.reason == "invalid_input" and "8 digits" in str(err.value)


def test_describe_dates_are_iso_utc(ca):
    cert, key, _uid = ca.issue()
    info = _oces.describe(_oces.Bundle(cert, key, []))
    for name in ("not_before", "not_after"):
        datetime.datetime.strptime(info[name], "%Y-%m-%dT%H:%M:%SZ")
    assert 998 <= info["days_remaining"] <= 1000 and info["expired"] is False
    assert info["fingerprint_sha256"] == cert.fingerprint(hashes.SHA256()).hex()


def test_rsa_key_description(ca):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert, _k, _uid = ca.issue(key=key)
    info = _oces.describe(_oces.Bundle(cert, key, []))
    assert (info["public_key_type"], info["public_key_size"]) == ("RSA", 2048)


# ---------------------------------------------------------------- the test PKI ----

def test_every_entity_of_the_test_pki(unavailable):
    if not os.environ.get("DMS_PKI_DIR"):
        unavailable("needs DMS_PKI_DIR, the test PKI `make units` makes and names")
    with open(os.path.join(os.environ["DMS_PKI_DIR"], "pki.json"), encoding="utf-8") as handle:
        pki = json.load(handle)
    for name, entity in pki["entities"].items():
        with open(entity["p12"], "rb") as handle:
            info = _oces.describe(_oces.load_bundle(handle.read(), pki["passphrase"]))
        assert info["certificate_type"] == entity["type"], name
        assert (info["cvr"], info["uuid"]) == (entity["cvr"], entity["uuid"]), name
        assert info["portal_user_id"] == entity["portal_user_id"], name
        assert info["fingerprint_sha256"] == entity["fingerprint_sha256"], name
        assert info["environment"] == "test" and info["key_matches"], name


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
