"""The test PKI has the OCES3 shape domain.md describes, and its broken certificates are broken as named."""

import datetime
import json
import os
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from dms_sandbox.pki import make_pki


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    directory = os.environ.get("DMS_PKI_DIR")
    if directory and os.path.exists(os.path.join(directory, "pki.json")):
        with open(os.path.join(directory, "pki.json"), encoding="utf-8") as handle:
            return json.load(handle)
    return make_pki(str(tmp_path_factory.mktemp("pki")), foces=2, voces=1, moces=1, broken=True)


def _cert(path):
    with open(path, "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read())


def _attr(cert, oid):
    return cert.subject.get_attributes_for_oid(oid)[0].value


def _policies(cert):
    ext = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    return {p.policy_identifier.dotted_string for p in ext}


def test_hierarchy_is_named_like_oces3_test_and_pss_signed(manifest):
    root, issuing = _cert(manifest["root_ca"]["cert"]), _cert(manifest["issuing_ca"]["cert"])
    assert root.subject.rfc4514_string() == "CN=Den Danske Stat OCES rod-CA,OU=Test - cti,O=Den Danske Stat,C=DK"
    assert issuing.issuer == root.subject
    assert _attr(issuing, NameOID.COMMON_NAME) == "Den Danske Stat OCES udstedende-CA 1"
    leaf = _cert(manifest["entities"]["foces-01"]["cert"])
    assert isinstance(leaf.signature_algorithm_parameters, padding.PSS)
    assert leaf.public_key().key_size == 3072
    # Chain verifies: leaf by issuing, issuing by root.
    leaf.verify_directly_issued_by(issuing)
    issuing.verify_directly_issued_by(root)


@pytest.mark.parametrize("name,cert_type", [("foces-01", "FOCES"), ("voces-01", "VOCES"), ("moces-01", "MOCES")])
def test_entity_subjects_policies_and_key_usage(manifest, name, cert_type):
    entry = manifest["entities"][name]
    cert = _cert(entry["cert"])
    assert entry["type"] == cert_type
    assert _attr(cert, NameOID.ORGANIZATION_IDENTIFIER) == "NTRDK-" + entry["cvr"]
    tag = "DK-E" if cert_type == "MOCES" else "DK-O"
    assert _attr(cert, NameOID.SERIAL_NUMBER) == "UI:%s:G:%s" % (tag, entry["uuid"])
    assert len(entry["uuid"]) == 36 and len(entry["cvr"]) == 8 and entry["cvr"].isdigit()
    assert entry["portal_user_id"] == "CVR_%s_UI_%s" % (entry["cvr"], entry["uuid"])
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.content_commitment is (cert_type != "FOCES")
    if cert_type == "MOCES":
        assert "1.2.208.169.1.1.1.2.7.1" in _policies(cert)
        assert cert.subject.get_attributes_for_oid(NameOID.GIVEN_NAME)
    else:
        assert {"1.2.208.169.1.1.1.3.7", "0.4.0.2042.1.1"} <= _policies(cert)
    assert _attr(cert, NameOID.COMMON_NAME).endswith("(systemcertifikat)") is (cert_type == "FOCES")
    validity = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=1090) < validity < datetime.timedelta(days=1100)


def test_pkcs12_opens_with_the_passphrase_and_holds_key_cert_chain(manifest):
    entry = manifest["entities"]["foces-01"]
    with open(entry["p12"], "rb") as handle:
        key, cert, extra = pkcs12.load_key_and_certificates(handle.read(), manifest["passphrase"].encode())
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert len(extra) == 2
    with pytest.raises(ValueError):
        with open(entry["p12"], "rb") as handle:
            pkcs12.load_key_and_certificates(handle.read(), b"not the passphrase")
    assert os.stat(entry["p12"]).st_mode & 0o077 == 0
    assert os.stat(entry["key"]).st_mode & 0o077 == 0


def test_foces_share_the_company_cvr_and_voces_do_not(manifest):
    foces = [e for n, e in manifest["entities"].items() if n.startswith("foces-")]
    assert {e["cvr"] for e in foces} == {manifest["company_cvr"]}
    assert len({e["uuid"] for e in foces}) == len(foces)


def test_broken_certificates_are_broken_as_named(manifest):
    broken = manifest["broken"]
    now = datetime.datetime.now(datetime.timezone.utc)
    assert _cert(broken["expired"]["cert"]).not_valid_after_utc < now
    assert _cert(broken["not_yet_valid"]["cert"]).not_valid_before_utc > now
    issuing = _cert(manifest["issuing_ca"]["cert"])
    assert _cert(broken["unknown_ca"]["cert"]).issuer != issuing.subject
    oces2 = _cert(broken["oces2"]["cert"])
    assert _attr(oces2, NameOID.SERIAL_NUMBER).startswith("CVR:") and "-FID:" in _attr(oces2, NameOID.SERIAL_NUMBER)
    assert "TRUST2408" in oces2.issuer.rfc4514_string()
    assert not _cert(broken["non_oces"]["cert"]).subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    with open(broken["key_mismatch"]["p12"], "rb") as handle:
        key, cert, extra = pkcs12.load_key_and_certificates(handle.read(), manifest["passphrase"].encode())
    mismatched = cert or extra[0]
    assert key.public_key().public_numbers() != mismatched.public_key().public_numbers()
    with open(broken["no_key"]["p12"], "rb") as handle:
        key, cert, extra = pkcs12.load_key_and_certificates(handle.read(), manifest["passphrase"].encode())
    leaf = _cert(broken["no_key"]["cert"])
    assert key is None and leaf in ([cert] if cert else []) + extra


def test_server_certificates_for_loopback_expired_and_wrong_host(manifest):
    server = manifest["server"]
    sans = _cert(server["cert"]).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert _cert(server["expired"]["cert"]).not_valid_after_utc < datetime.datetime.now(datetime.timezone.utc)
    wrong = _cert(server["wrong_host"]["cert"]).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert wrong.get_values_for_type(x509.DNSName) == ["wrong-host.invalid"]


def test_rerun_adds_without_replacing(tmp_path):
    first = make_pki(str(tmp_path), foces=1, voces=0, moces=0)
    again = subprocess.run([sys.executable, "-m", "dms_sandbox", "pki", "--out", str(tmp_path), "--foces", "1",
                            "--voces", "0", "--moces", "0", "--issue", "next-01:FOCES"],
                           check=True, capture_output=True, text=True)
    assert again.stdout.strip().endswith("pki.json")
    with open(tmp_path / "pki.json", encoding="utf-8") as handle:
        second = json.load(handle)
    assert second["entities"]["foces-01"] == first["entities"]["foces-01"]
    assert second["entities"]["next-01"]["cvr"] == first["company_cvr"]
    assert second["passphrase"] == first["passphrase"]
