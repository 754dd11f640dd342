"""A test PKI shaped like OCES3 (MitID Erhverv), for the sandbox, the tests and the demo.

The hierarchy follows ../shared/reference/domain.md: a root CA and an issuing CA named like the real test
CAs ("Den Danske Stat OCES rod-CA" / "udstedende-CA 1", OU "Test - cti"), RSASSA-PSS signatures,
RSA-3072 end-entity keys, 3-year validity, subjects with organizationIdentifier NTRDK-<CVR> and
serialNumber UI:DK-O:G:<UUID> (UI:DK-E:G: for employees), OCES3 policy OIDs. VOCES and FOCES differ in
keyUsage (nonRepudiation) and in the "(systemcertifikat)" CN suffix, as observed on real certificates.

Besides good certificates it makes the broken ones users meet (expired, not yet valid, unknown CA,
OCES2, not OCES at all, key mismatch, no key) and the sandbox's own TLS server certificates.

Everything lives under one directory and is described by DIR/pki.json; running it again adds what is
missing and never replaces what exists, so many tests and sandboxes can share one PKI.
"""

import contextlib
import datetime
import fcntl
import ipaddress
import json
import os
import secrets
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

OID_ORGANIZATION_IDENTIFIER = NameOID.ORGANIZATION_IDENTIFIER  # 2.5.4.97
POLICY_OCES3_ORGANISATION = "1.2.208.169.1.1.1.3.7"  # VOCES and FOCES (OCES3)
POLICY_OCES3_EMPLOYEE = "1.2.208.169.1.1.1.2.7.1"  # MOCES (seen in test fixtures only)
POLICY_ETSI_NCP_PLUS = "0.4.0.2042.1.1"
POLICY_OCES2 = {"VOCES": "1.2.208.169.1.1.1.3", "FOCES": "1.2.208.169.1.1.1.4", "MOCES": "1.2.208.169.1.1.1.2"}
OCES2_SERIAL_TAG = {"VOCES": "UID", "FOCES": "FID", "MOCES": "RID"}

TEST_CRL = "http://ca1.cti-gov.dk/oces/issuing/1/crl/issuing.crl"
TEST_OCSP = "http://ca1.cti-gov.dk/ocsp"
TEST_CA_ISSUERS = "http://ca1.cti-gov.dk/oces/issuing/1/cacert/issuing.cer"

CERT_TYPES = ("VOCES", "FOCES", "MOCES")
THREE_YEARS = datetime.timedelta(days=3 * 365)
BROKEN_KINDS = ("expired", "not_yet_valid", "unknown_ca", "oces2", "non_oces", "key_mismatch", "no_key")

_GIVEN_NAMES = ["Mette", "Lars", "Sofie", "Jens", "Ida", "Mads", "Freja", "Anders"]
_SURNAMES = ["Jensen", "Nielsen", "Hansen", "Pedersen", "Andersen", "Christensen", "Larsen"]


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _pss():
    # Real OCES3 certificates are signed with RSASSA-PSS.
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def _name(*pairs):
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


def _oces_ca_name(common_name, production=False):
    parts = [(NameOID.COUNTRY_NAME, "DK"), (NameOID.ORGANIZATION_NAME, "Den Danske Stat")]
    if not production:
        parts.append((NameOID.ORGANIZATIONAL_UNIT_NAME, "Test - cti"))
    parts.append((NameOID.COMMON_NAME, common_name))
    return _name(*parts)


def random_cvr():
    """An 8-digit CVR-shaped number (no modulus-11 check: CVR numbers have none since 2013)."""
    return str(secrets.randbelow(90000000) + 10000000)


class _Issuer:
    def __init__(self, cert, key, pss=True):
        self.cert = cert
        self.key = key
        self.pss = pss

    def sign(self, builder):
        builder = builder.issuer_name(self.cert.subject).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        if self.pss:
            return builder.sign(self.key, hashes.SHA256(), rsa_padding=_pss())
        return builder.sign(self.key, hashes.SHA256())


def _write(path, data, mode=0o644):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_cert(path):
    with open(path, "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read())


def _load_key(path):
    with open(path, "rb") as handle:
        return serialization.load_pem_private_key(handle.read(), password=None)


class TestPKI:
    """An OCES3-shaped test PKI in one directory. Safe to open from several processes."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory, passphrase=None, key_size=3072):
        self.dir = os.path.abspath(directory)
        self.key_size = key_size
        os.makedirs(self.dir, exist_ok=True)
        self._state_path = os.path.join(self.dir, "pki-state.json")
        self._requested_passphrase = passphrase
        self.state = None

    # -- locking and state -------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self):
        """Hold the directory's lock and the loaded state; save the state on the way out."""
        with open(os.path.join(self.dir, ".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._load_state()
                yield self
                self._save_state()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load_state(self):
        if os.path.exists(self._state_path):
            with open(self._state_path, encoding="utf-8") as handle:
                self.state = json.load(handle)
        else:
            self.state = {
                "passphrase": self._requested_passphrase or secrets.token_urlsafe(18),
                "company_cvr": random_cvr(),
                "entities": {},
                "broken": {},
            }

    def _save_state(self):
        _write(self._state_path, json.dumps(self.state, indent=2, sort_keys=True).encode(), 0o600)
        _write(os.path.join(self.dir, "pki.json"), json.dumps(self.manifest(), indent=2, sort_keys=True).encode(), 0o644)

    @property
    def passphrase(self):
        return self.state["passphrase"]

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def _new_key(self, size=None):
        return rsa.generate_private_key(public_exponent=65537, key_size=size or self.key_size)

    # -- certificate authorities -------------------------------------------------------------------
    def _ca(self, slug, subject, parent=None, key_size=None, pss=True, path_length=None):
        """Load or create a CA certificate + key under ca/ (parent None: self-signed root)."""
        cert_path, key_path = self.path("ca", slug + ".pem"), self.path("ca", "private", slug + "-key.pem")
        if os.path.exists(cert_path) and os.path.exists(key_path):
            return _Issuer(_load_cert(cert_path), _load_key(key_path), pss)
        os.makedirs(self.path("ca", "private"), mode=0o700, exist_ok=True)
        key = self._new_key(key_size)
        now = _now()
        builder = (x509.CertificateBuilder()
                   .subject_name(subject)
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=365))
                   .not_valid_after(now + datetime.timedelta(days=12 * 365))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False,
                                                key_agreement=False, key_cert_sign=True, crl_sign=True,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        issuer = parent or _Issuer(x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                                   .public_key(key.public_key()).serial_number(1)
                                   .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                                   .sign(key, hashes.SHA256()), key, pss)
        cert = issuer.sign(builder)
        _write(key_path, _key_pem(key), 0o600)
        _write(cert_path, _pem(cert))
        return _Issuer(cert, key, pss)

    def root(self):
        return self._ca("root", _oces_ca_name("Den Danske Stat OCES rod-CA"), key_size=4096)

    def issuing(self):
        return self._ca("issuing", _oces_ca_name("Den Danske Stat OCES udstedende-CA 1"), parent=self.root(),
                        path_length=0)

    def _unknown_issuing(self):
        root = self._ca("unknown-root", _name((NameOID.COUNTRY_NAME, "DK"), (NameOID.ORGANIZATION_NAME, "Ukendt Test"),
                                              (NameOID.COMMON_NAME, "Ukendt Test rod-CA")))
        return self._ca("unknown-issuing", _name((NameOID.COUNTRY_NAME, "DK"),
                                                 (NameOID.ORGANIZATION_NAME, "Ukendt Test"),
                                                 (NameOID.COMMON_NAME, "Ukendt Test udstedende-CA")),
                        parent=root, path_length=0)

    def _trust2408(self):
        return self._ca("trust2408", _name((NameOID.COUNTRY_NAME, "DK"), (NameOID.ORGANIZATION_NAME, "TRUST2408"),
                                           (NameOID.COMMON_NAME, "TRUST2408 Systemtest XXXIV CA")), pss=False)

    def tls_ca(self):
        # The sandbox's own server certificates come from a separate, ordinary CA, as real web servers'
        # certificates do not come from OCES.
        return self._ca("tls-root", _name((NameOID.COUNTRY_NAME, "DK"), (NameOID.ORGANIZATION_NAME, "DMS Sandbox"),
                                          (NameOID.COMMON_NAME, "DMS Sandbox TLS CA")), key_size=2048, pss=False)

    # -- end entities --------------------------------------------------------------------------------
    def _entity_builder(self, cert_type, cvr, entity_uuid, common_name, key, not_before, not_after,
                        oces2_number=None):
        if oces2_number is not None:
            subject = _name((NameOID.COUNTRY_NAME, "DK"), (NameOID.ORGANIZATION_NAME, "Testvirksomhed // CVR:" + cvr),
                            (NameOID.SERIAL_NUMBER, "CVR:%s-%s:%s" % (cvr, OCES2_SERIAL_TAG[cert_type], oces2_number)),
                            (NameOID.COMMON_NAME, common_name))
            policies = [POLICY_OCES2[cert_type]]
        else:
            tag = "DK-E" if cert_type == "MOCES" else "DK-O"
            parts = [(NameOID.COUNTRY_NAME, "DK"), (OID_ORGANIZATION_IDENTIFIER, "NTRDK-" + cvr),
                     (NameOID.ORGANIZATION_NAME, "Testvirksomhed %s ApS" % cvr)]
            if cert_type == "MOCES":
                given, surname = common_name.split(" ", 1)
                parts += [(NameOID.GIVEN_NAME, given), (NameOID.SURNAME, surname)]
            parts += [(NameOID.SERIAL_NUMBER, "UI:%s:G:%s" % (tag, entity_uuid)), (NameOID.COMMON_NAME, common_name)]
            subject = _name(*parts)
            policies = [POLICY_OCES3_EMPLOYEE if cert_type == "MOCES" else POLICY_OCES3_ORGANISATION,
                        POLICY_ETSI_NCP_PLUS]
        non_repudiation = cert_type in ("VOCES", "MOCES")
        return (x509.CertificateBuilder()
                .subject_name(subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(not_before)
                .not_valid_after(not_after)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=non_repudiation,
                                             key_encipherment=True, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=False, crl_sign=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH,
                                                      ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                .add_extension(x509.CertificatePolicies([x509.PolicyInformation(ObjectIdentifier(p), None)
                                                         for p in policies]), critical=False)
                .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                    [x509.UniformResourceIdentifier(TEST_CRL)], None, None, None)]), critical=False)
                .add_extension(x509.AuthorityInformationAccess([
                    x509.AccessDescription(x509.AuthorityInformationAccessOID.OCSP,
                                           x509.UniformResourceIdentifier(TEST_OCSP)),
                    x509.AccessDescription(x509.AuthorityInformationAccessOID.CA_ISSUERS,
                                           x509.UniformResourceIdentifier(TEST_CA_ISSUERS))]), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))

    def _write_entity(self, name, folder, cert, key, chain, p12_key=None, p12_cert=None, p12_cas=None,
                      extra=None):
        """Write NAME.pem, NAME-key.pem, NAME-chain.pem and NAME.p12; return the manifest entry."""
        os.makedirs(self.path(folder), exist_ok=True)
        base = self.path(folder, name)
        _write(base + ".pem", _pem(cert))
        _write(base + "-key.pem", _key_pem(key), 0o600)
        _write(base + "-chain.pem", b"".join(_pem(c) for c in chain))
        p12 = pkcs12.serialize_key_and_certificates(
            name.encode(), p12_key, p12_cert, p12_cas if p12_cas is not None else chain,
            serialization.BestAvailableEncryption(self.passphrase.encode()))
        _write(base + ".p12", p12, 0o600)
        entry = {"cert": base + ".pem", "key": base + "-key.pem", "chain": base + "-chain.pem", "p12": base + ".p12",
                 "not_before": cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "fingerprint_sha256": cert.fingerprint(hashes.SHA256()).hex()}
        entry.update(extra or {})
        return entry

    def issue(self, name, cert_type, cvr=None, common_name=None, not_before=None, not_after=None):
        """Issue (once) an OCES3 end-entity certificate NAME of CERT_TYPE; return its manifest entry.

        Must be called inside `with pki.locked():`.
        """
        if name in self.state["entities"]:
            return self.state["entities"][name]
        if cert_type not in CERT_TYPES:
            raise ValueError("cert_type must be one of %s" % ", ".join(CERT_TYPES))
        cvr = cvr or (self.state["company_cvr"] if cert_type == "FOCES" else random_cvr())
        entity_uuid = str(uuid.uuid4())
        if common_name is None:
            if cert_type == "FOCES":
                common_name = "%s (systemcertifikat)" % name
            elif cert_type == "VOCES":
                common_name = "Testvirksomhed %s - %s" % (cvr, name)
            else:
                common_name = "%s %s" % (secrets.choice(_GIVEN_NAMES), secrets.choice(_SURNAMES))
        now = _now()
        not_before = not_before or now - datetime.timedelta(days=1)
        not_after = not_after or not_before + THREE_YEARS
        key = self._new_key()
        issuing = self.issuing()
        cert = issuing.sign(self._entity_builder(cert_type, cvr, entity_uuid, common_name, key, not_before, not_after))
        chain = [issuing.cert, self.root().cert]
        entry = self._write_entity(name, "entities", cert, key, chain, key, cert, chain, {
            "type": cert_type, "cvr": cvr, "uuid": entity_uuid, "common_name": common_name,
            "portal_user_id": "CVR_%s_UI_%s" % (cvr, entity_uuid)})
        self.state["entities"][name] = entry
        return entry

    def issue_broken(self, kind):
        """Issue (once) one of the broken certificates users meet; return its manifest entry."""
        if kind in self.state["broken"]:
            return self.state["broken"][kind]
        if kind not in BROKEN_KINDS:
            raise ValueError("kind must be one of %s" % ", ".join(BROKEN_KINDS))
        now = _now()
        cvr, entity_uuid = self.state["company_cvr"], str(uuid.uuid4())
        name = "broken-" + kind.replace("_", "-")
        key = self._new_key()
        issuing = self.issuing()
        chain = [issuing.cert, self.root().cert]
        not_before, not_after = now - datetime.timedelta(days=1), now + THREE_YEARS
        extra = {"type": "FOCES", "cvr": cvr, "uuid": entity_uuid, "portal_user_id": "CVR_%s_UI_%s" % (cvr, entity_uuid)}
        oces2_number = None
        if kind == "expired":
            not_before, not_after = now - THREE_YEARS, now - datetime.timedelta(days=2)
        elif kind == "not_yet_valid":
            not_before, not_after = now + datetime.timedelta(days=30), now + THREE_YEARS
        elif kind == "unknown_ca":
            issuing = self._unknown_issuing()
            chain = [issuing.cert]
        elif kind == "oces2":
            issuing = self._trust2408()
            chain = [issuing.cert]
            oces2_number = str(secrets.randbelow(10 ** 10))
            extra = {"type": "FOCES", "cvr": cvr, "oces2_serial": "CVR:%s-FID:%s" % (cvr, oces2_number)}
        if kind == "non_oces":
            builder = (x509.CertificateBuilder()
                       .subject_name(_name((NameOID.COUNTRY_NAME, "DK"), (NameOID.ORGANIZATION_NAME, "Example ApS"),
                                           (NameOID.COMMON_NAME, "integration.example.dk")))
                       .public_key(key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(not_before).not_valid_after(not_after)
                       .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                       .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
            extra = {"type": "unknown"}
        else:
            builder = self._entity_builder("FOCES", cvr, entity_uuid, "%s (systemcertifikat)" % name, key,
                                           not_before, not_after, oces2_number=oces2_number)
        cert = issuing.sign(builder)
        p12_key, p12_cert, write_key = key, cert, key
        if kind == "key_mismatch":
            # The PKCS#12 carries this certificate with somebody else's key, as happens when files get mixed up.
            write_key = p12_key = self._new_key()
            entry = self._write_mismatched(name, cert, p12_key, chain, extra)
        else:
            if kind == "no_key":
                p12_key = None
            entry = self._write_entity(name, "broken", cert, write_key, chain, p12_key, p12_cert, chain, extra)
        self.state["broken"][kind] = entry
        return entry

    def _write_mismatched(self, name, cert, other_key, chain, extra):
        try:
            return self._write_entity(name, "broken", cert, other_key, chain, other_key, cert, chain, extra)
        except ValueError:
            # This cryptography refuses to pack a mismatched pair: pack the key with the certificate as an
            # "additional" certificate, which readers that take the first certificate see the same way.
            entry = self._write_entity(name, "broken", cert, other_key, chain, other_key, None, [cert] + chain, extra)
            return entry

    # -- the sandbox's TLS server certificates ----------------------------------------------------------
    def _server_cert(self, slug, dns_names, ips, not_before, not_after, common_name, key_size=2048):
        cert_path, key_path = self.path("server", slug + ".pem"), self.path("server", slug + "-key.pem")
        if not (os.path.exists(cert_path) and os.path.exists(key_path)):
            os.makedirs(self.path("server"), exist_ok=True)
            key = self._new_key(key_size)
            sans = [x509.DNSName(d) for d in dns_names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
            builder = (x509.CertificateBuilder()
                       .subject_name(_name((NameOID.COUNTRY_NAME, "DK"), (NameOID.ORGANIZATION_NAME, "DMS Sandbox"),
                                           (NameOID.COMMON_NAME, common_name)))
                       .public_key(key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(not_before).not_valid_after(not_after)
                       .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                       .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                       .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                       .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
            cert = self.tls_ca().sign(builder)
            _write(key_path, _key_pem(key), 0o600)
            # The file carries the leaf only; servers send the chain from server/chain.pem if they want.
            _write(cert_path, _pem(cert))
        return {"cert": cert_path, "key": key_path}

    def _gateway_signing(self):
        """The gateway's receipt-signing certificate: an OCES3 system certificate of Skatteforvaltningen."""
        cert_path, key_path = self.path("server", "gateway-signing.pem"), self.path("server", "gateway-signing-key.pem")
        if not (os.path.exists(cert_path) and os.path.exists(key_path)):
            os.makedirs(self.path("server"), exist_ok=True)
            key = self._new_key()
            now = _now()
            cert = self.issuing().sign(self._entity_builder("FOCES", "19552101", str(uuid.uuid4()),
                                                            "SKAT OIO Gateway Test", key, now - datetime.timedelta(days=1),
                                                            now + THREE_YEARS))
            _write(key_path, _key_pem(key), 0o600)
            _write(cert_path, _pem(cert))
        return {"cert": cert_path, "key": key_path}

    def ensure_base(self):
        """CAs, bundles and server certificates: everything but end entities."""
        root, issuing, tls = self.root(), self.issuing(), self.tls_ca()
        _write(self.path("ca", "oces-ca-bundle.pem"), _pem(issuing.cert) + _pem(root.cert))
        os.makedirs(self.path("server"), exist_ok=True)
        _write(self.path("server", "ca.pem"), _pem(tls.cert))
        now = _now()
        loopback = (["localhost"], ["127.0.0.1", "::1"])
        self._server_cert("server", *loopback, now - datetime.timedelta(days=1), now + datetime.timedelta(days=825),
                          "localhost")
        self._server_cert("expired", *loopback, now - datetime.timedelta(days=400), now - datetime.timedelta(days=3),
                          "localhost")
        self._server_cert("wrong-host", ["wrong-host.invalid"], [], now - datetime.timedelta(days=1),
                          now + datetime.timedelta(days=825), "wrong-host.invalid")
        self._server_cert("expiring-soon", *loopback, now - datetime.timedelta(days=300),
                          now + datetime.timedelta(days=10), "localhost")
        self._gateway_signing()

    def manifest(self):
        server = {"ca_bundle": self.path("server", "ca.pem"),
                  "cert": self.path("server", "server.pem"), "key": self.path("server", "server-key.pem")}
        for slug, key in (("expired", "expired"), ("wrong-host", "wrong_host"), ("expiring-soon", "expiring_soon"),
                          ("gateway-signing", "gateway_signing")):
            server[key] = {"cert": self.path("server", slug + ".pem"), "key": self.path("server", slug + "-key.pem")}
        return {
            "passphrase": self.passphrase,
            "company_cvr": self.state["company_cvr"],
            "root_ca": {"cert": self.path("ca", "root.pem")},
            "issuing_ca": {"cert": self.path("ca", "issuing.pem")},
            "ca_bundle": self.path("ca", "oces-ca-bundle.pem"),
            "unknown_ca_bundle": self.path("ca", "unknown-issuing.pem"),
            "server": server,
            "entities": self.state["entities"],
            "broken": self.state["broken"],
        }


def make_pki(directory, foces=1, voces=1, moces=1, broken=False, passphrase=None, extra=()):
    """Create or complete a PKI; return its manifest. EXTRA: (name, type, cvr-or-None) tuples."""
    pki = TestPKI(directory, passphrase=passphrase)
    with pki.locked():
        pki.ensure_base()
        for cert_type, count in (("FOCES", foces), ("VOCES", voces), ("MOCES", moces)):
            for number in range(1, count + 1):
                pki.issue("%s-%02d" % (cert_type.lower(), number), cert_type)
        for name, cert_type, cvr in extra:
            pki.issue(name, cert_type, cvr=cvr)
        if broken:
            for kind in BROKEN_KINDS:
                pki.issue_broken(kind)
                if kind == "unknown_ca":
                    pki._unknown_issuing()  # pylint: disable=protected-access
        return pki.manifest()


def _parse_extra(text):
    parts = text.split(":")
    if len(parts) not in (2, 3) or parts[1].upper() not in CERT_TYPES:
        raise ValueError("--issue takes NAME:TYPE[:CVR] with TYPE one of VOCES, FOCES, MOCES, e.g. web-02:FOCES")
    return parts[0], parts[1].upper(), parts[2] if len(parts) == 3 else None


def add_subcommand(subparsers):
    parser = subparsers.add_parser("pki", help="make (or complete) an OCES3-shaped test PKI",
                                   description="Make or complete an OCES3-shaped test PKI in --out; writes OUT/pki.json.")
    parser.add_argument("--out", required=True, help="directory of the PKI (created; reused when it exists)")
    parser.add_argument("--foces", type=int, default=1, help="number of FOCES (system) certificates foces-NN")
    parser.add_argument("--voces", type=int, default=1, help="number of VOCES (organisation) certificates voces-NN")
    parser.add_argument("--moces", type=int, default=1, help="number of MOCES (employee) certificates moces-NN")
    parser.add_argument("--broken", action="store_true", help="also make the broken certificates users meet")
    parser.add_argument("--passphrase", help="PKCS#12 passphrase for a new PKI (default: random, in pki.json)")
    parser.add_argument("--issue", action="append", default=[], metavar="NAME:TYPE[:CVR]",
                        help="issue one more named certificate (repeatable)")
    parser.set_defaults(func=_run)


def _run(args):
    extra = [_parse_extra(text) for text in args.issue]
    manifest = make_pki(args.out, args.foces, args.voces, args.moces, args.broken, args.passphrase, extra)
    print(os.path.join(os.path.abspath(args.out), "pki.json"))
    return 0 if manifest else 1
