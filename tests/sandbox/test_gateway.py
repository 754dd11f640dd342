"""The AS4 gateway's checks and answers (docs/gateway.md), driven through Gateway.handle with a fake store.

Messages come from tests/sandbox/as4_test_client.py (a hand-rolled signer, not the collection's), receipts
are verified here with signxml's XMLVerifier against the gateway certificate.
"""

import copy
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier

import as4_test_client as client
from dms_sandbox.gateway import Gateway

NS = client.NS
PASSWORD = "gateway-password-Xy7!"


@pytest.fixture(scope="module")
def manifest(pki):
    """The run's test PKI (tests/sandbox/conftest.py: DMS_PKI_DIR, or one made once per run)."""
    return pki


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


class Identity:
    """An entity of the test PKI: certificate, key, portal user id."""

    def __init__(self, entry):
        self.cert = x509.load_pem_x509_certificate(_read(entry["cert"]))
        self.key = serialization.load_pem_private_key(_read(entry["key"]), password=None)
        self.user = entry["portal_user_id"]
        self.der = self.cert.public_bytes(serialization.Encoding.DER)


class FakeStore:
    """In-memory stand-in with exactly the interface of the sandbox store the gateway uses."""

    def __init__(self):
        self.accounts, self.nonces, self.counts, self.mpcs = {}, set(), {}, {}

    def add(self, identity, registered=True, interfaces=("AS4",), password=PASSWORD):
        self.accounts[identity.user] = {
            "gateway_user": identity.user, "portal_user_id": identity.user, "registered": registered,
            "interfaces": list(interfaces), "gateway_password": password if registered else None,
            "certificate_der": identity.der}

    def gateway_account(self, gateway_user):
        return self.accounts.get(gateway_user)

    def use_nonce(self, nonce):
        if nonce in self.nonces:
            return False
        self.nonces.add(nonce)
        return True

    def count_gateway(self, result):
        self.counts[result] = self.counts.get(result, 0) + 1

    def mpc_push(self, gateway_user, mpc, message):
        self.mpcs.setdefault((gateway_user, mpc), []).append(message)

    def mpc_pop(self, gateway_user, mpc):
        queue = self.mpcs.get((gateway_user, mpc))
        return queue.pop(0) if queue else None

    def mpc_count(self, gateway_user, mpc):
        return len(self.mpcs.get((gateway_user, mpc), []))


@pytest.fixture(scope="module")
def ids(manifest):
    entities = manifest["entities"]
    return {"alice": Identity(entities["foces-01"]), "mallory": Identity(entities["foces-02"]),
            "pending": Identity(entities["foces-03"]), "no_as4": Identity(entities["voces-01"])}


@pytest.fixture(scope="module")
def gateway_cert(manifest):
    return _read(manifest["server"]["gateway_signing"]["cert"])


def make_gateway(manifest, ids, require_client_cert=False):
    store = FakeStore()
    store.add(ids["alice"])
    store.add(ids["pending"], registered=False, interfaces=())
    store.add(ids["no_as4"], interfaces=("FTPS",))
    signing = manifest["server"]["gateway_signing"]
    gw = Gateway(store=store, signing_cert_pem=_read(signing["cert"]), signing_key_pem=_read(signing["key"]),
                 trusted_ca_pems=[_read(manifest["ca_bundle"])], require_client_cert=require_client_cert)
    return gw, store


@pytest.fixture()
def gw(manifest, ids):
    return make_gateway(manifest, ids)


def ping(ids, who="alice", signer=None, password=PASSWORD, **kwargs):
    identity, signer = ids[who], ids[signer or who]
    return client.build(identity.user, password, signer.cert, signer.key, **kwargs)


def post(gw_store, envelope, user=None, peer=None, ids=None):
    gw = gw_store[0]
    if user is None:
        user = envelope.findtext(".//wsse:Username", namespaces=NS)
    body = envelope if isinstance(envelope, bytes) else client.to_bytes(envelope)
    return gw.handle("POST", f"/exchange/{user}", {"Content-Type": "application/soap+xml"}, body, peer)


def assert_error(response, code, detail_part, status=500):
    got_status, headers, body = response
    assert got_status == status, body
    assert headers["Content-Type"].startswith("application/soap+xml")
    error = client.parse_error(body)
    assert error is not None, body
    assert error[0] == code, error
    assert detail_part in error[2], error
    if status == 500:
        fault = etree.fromstring(body).find("S12:Body/S12:Fault", NS)
        assert fault is not None and fault.findtext("S12:Code/S12:Value", namespaces=NS) == "S12:Sender"
    return error


def verify_response(body, gateway_cert):
    """Verify the gateway's signature with signxml against the gateway certificate; return the root."""
    root = etree.fromstring(body)
    results = XMLVerifier().verify(root, x509_cert=gateway_cert.decode(),
                                   expect_config=SignatureConfiguration(expect_references=2))
    signed_ids = {r.signed_xml.get(client.WSU_ID) for r in results}
    assert signed_ids == {root.find("S12:Body", NS).get(client.WSU_ID),
                          root.find("S12:Header/eb:Messaging", NS).get(client.WSU_ID)}
    return root


# --- success ------------------------------------------------------------------------------------

@pytest.mark.parametrize("key_reference", ["issuer_serial", "bst"])
@pytest.mark.parametrize("separate_token_header", [False, True])
def test_signed_ping_gets_a_receipt_signed_by_the_gateway(gw, ids, gateway_cert, key_reference,
                                                           separate_token_header):
    request = ping(ids, key_reference=key_reference, separate_token_header=separate_token_header)
    status, headers, body = post(gw, request)
    assert status == 200, body
    assert headers["Content-Type"] == "application/soap+xml; charset=utf-8"
    root = verify_response(body, gateway_cert)
    signal = root.find("S12:Header/eb:Messaging/eb:SignalMessage", NS)
    request_id = request.findtext(".//eb:MessageId", namespaces=NS)
    assert signal.findtext("eb:MessageInfo/eb:RefToMessageId", namespaces=NS) == request_id
    parts = signal.findall("eb:Receipt/ebbp:NonRepudiationInformation/ebbp:MessagePartNRInformation", NS)
    nri = {p.find("ds:Reference", NS).get("URI"): p.findtext("ds:Reference/ds:DigestValue", namespaces=NS)
           for p in parts}
    assert nri == client.signed_reference_digests(request)
    assert len(nri) == 3
    assert gw[1].counts == {"accepted": 1}


def test_issuer_name_as_java_writes_it_is_accepted(gw, ids):
    """X500Principal.toString() style: spaces after commas; same attributes, so the same certificate."""
    issuer = ids["alice"].cert.issuer.rfc4514_string().replace(",", ", ")
    assert post(gw, ping(ids, issuer_name=issuer))[0] == 200


def test_issuer_serial_naming_another_issuer_is_not_registered(gw, ids):
    assert_error(post(gw, ping(ids, issuer_name="CN=Some Other CA,O=Elsewhere,C=DK")), "EBMS:0101",
                 "certificate not registered for user")


def test_receipt_signature_breaks_when_the_receipt_is_altered(gw, ids, gateway_cert):
    status, _, body = post(gw, ping(ids))
    assert status == 200
    altered = body.replace(b"RefToMessageId>", b"RefToMessageId>x", 1)
    with pytest.raises(Exception):
        verify_response(altered, gateway_cert)


# --- authentication and policy ------------------------------------------------------------------

def test_unsigned_message_is_policy_noncompliant(gw, ids):
    assert_error(post(gw, ping(ids, sign=False)), "EBMS:0103", "not signed")


@pytest.mark.parametrize("where", ["messaging", "body", "token"])
def test_tampered_message_does_not_verify(gw, ids, where):
    def tamper(envelope):
        if where == "messaging":
            envelope.find(".//eb:ConversationId", NS).text = "changed-after-signing"
        elif where == "body":
            etree.SubElement(envelope.find("S12:Body", NS), "{urn:evil}Injected").text = "x"
        else:
            envelope.find(".//wsu:Created", NS).tail = " "  # whitespace inside the signed token
    assert_error(post(gw, ping(ids, tamper=tamper)), "EBMS:0101", "signature does not verify")


def test_garbled_signature_value_does_not_verify(gw, ids):
    def garble(envelope):
        envelope.find(".//ds:SignatureValue", NS).text = "not*base64"
    assert_error(post(gw, ping(ids, tamper=garble)), "EBMS:0101", "signature does not verify")


def test_signature_wrapping_is_rejected(gw, ids):
    """The signed eb:Messaging copied aside and a forged one in its place must not pass."""
    def wrap(envelope):
        messaging = envelope.find("S12:Header/eb:Messaging", NS)
        hidden = etree.SubElement(envelope.find("S12:Header/wsse:Security", NS), "{urn:evil}Wrapper")
        hidden.append(copy.deepcopy(messaging))
        messaging.find(".//eb:ConversationId", NS).text = "forged"
    assert_error(post(gw, ping(ids, tamper=wrap)), "EBMS:0101", "signature does not verify")


@pytest.mark.parametrize("key_reference", ["issuer_serial", "bst"])
def test_signature_by_an_unregistered_certificate(gw, ids, key_reference):
    request = ping(ids, signer="mallory", key_reference=key_reference)
    assert_error(post(gw, request), "EBMS:0101", "certificate not registered for user")


def test_wrong_gateway_password(gw, ids):
    assert_error(post(gw, ping(ids, password="not-the-password")), "EBMS:0101", "password digest does not match")


def test_replayed_nonce_is_rejected(gw, ids):
    body = client.to_bytes(ping(ids))
    user = ids["alice"].user
    assert post(gw, body, user=user)[0] == 200
    assert_error(post(gw, body, user=user), "EBMS:0101", "already used")
    assert gw[1].counts == {"accepted": 1, "EBMS:0101": 1}


@pytest.mark.parametrize("minutes", [-6, 6])
def test_stale_or_future_created_is_rejected(gw, ids, minutes):
    created = client.xsd_datetime(client.utc_now() + datetime.timedelta(minutes=minutes))
    assert_error(post(gw, ping(ids, created=created)), "EBMS:0101", "wsu:Created is more than 5 minutes")


def test_created_within_tolerance_is_accepted(gw, ids):
    created = client.xsd_datetime(client.utc_now() - datetime.timedelta(minutes=4))
    assert post(gw, ping(ids, created=created))[0] == 200


def test_username_must_be_the_endpoint_user(gw, ids):
    request = ping(ids, username=ids["pending"].user)
    assert_error(post(gw, request, user=ids["alice"].user), "EBMS:0101", "not the gateway user of the endpoint")


def test_plain_text_password_is_policy_noncompliant(gw, ids):
    request = ping(ids, password_type=client.PASSWORD_TEXT)
    assert_error(post(gw, request), "EBMS:0103", "PasswordDigest")


def test_missing_username_token_is_policy_noncompliant(gw, ids):
    def drop_token(envelope):
        token = envelope.find(".//wsse:UsernameToken", NS)
        token.getparent().remove(token)
    request = ping(ids, signed_parts=("body", "messaging"), tamper=drop_token)
    assert_error(post(gw, request, user=ids["alice"].user), "EBMS:0103", "wsse:UsernameToken")


@pytest.mark.parametrize("missing,name", [("token", "wsse:UsernameToken"), ("body", "S12:Body"),
                                          ("messaging", "eb:Messaging")])
def test_every_part_must_be_signed(gw, ids, missing, name):
    parts = tuple(p for p in ("body", "messaging", "token") if p != missing)
    assert_error(post(gw, ping(ids, signed_parts=parts)), "EBMS:0103", f"{name} (wsu:Id")


def test_sha1_signature_is_policy_noncompliant(gw, ids):
    assert_error(post(gw, ping(ids, signature_method=client.RSA_SHA1)), "EBMS:0103", "RSA-SHA256")


def test_pending_registration_rejects_every_logon(gw, ids):
    assert_error(post(gw, ping(ids, who="pending")), "EBMS:0101", "registration of the certificate is not complete")


# --- routing --------------------------------------------------------------------------------------

def test_unknown_user_is_404(gw, ids):
    status, headers, _ = post(gw, ping(ids), user="CVR_00000000_UI_00000000-0000-0000-0000-000000000000")
    assert status == 404 and headers["Content-Type"].startswith("text/plain")
    assert gw[1].counts == {}


def test_user_without_as4_interface_is_404(gw, ids):
    assert post(gw, ping(ids, who="no_as4"))[0] == 404


def test_other_paths_and_methods(gw, ids):
    assert gw[0].handle("POST", "/", {}, b"", None)[0] == 404
    status, headers, _ = gw[0].handle("GET", f"/exchange/{ids['alice'].user}", {}, b"", None)
    assert status == 405 and headers["Allow"] == "POST"


# --- structure and P-Mode --------------------------------------------------------------------------

def test_not_xml_is_ebms_0004(gw, ids):
    assert_error(post(gw, b"this is not xml", user=ids["alice"].user), "EBMS:0004", "not well-formed XML")


def test_soap_11_is_invalid_header(gw, ids):
    body = b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>'
    assert_error(post(gw, body, user=ids["alice"].user), "EBMS:0009", "SOAP 1.1")


def test_wrong_content_type_is_invalid_header(gw, ids):
    user = ids["alice"].user
    response = gw[0].handle("POST", f"/exchange/{user}", {"content-type": "text/xml; charset=utf-8"},
                            client.to_bytes(ping(ids)), None)
    assert_error(response, "EBMS:0009", "application/soap+xml")


def test_document_type_declaration_is_invalid_header(gw, ids):
    body = client.to_bytes(ping(ids)).replace(b"?>", b"?><!DOCTYPE x [<!ENTITY e 'boom'>]>", 1)
    assert_error(post(gw, body, user=ids["alice"].user), "EBMS:0009", "Document Type Declaration")


def test_missing_messaging_is_invalid_header(gw, ids):
    def drop(envelope):
        messaging = envelope.find("S12:Header/eb:Messaging", NS)
        messaging.getparent().remove(messaging)
    assert_error(post(gw, ping(ids, tamper=drop)), "EBMS:0009", "eb:Messaging")


@pytest.mark.parametrize("kwargs,detail", [
    ({"from_party": "SOMEONE_ELSE_AS4"}, "From PartyId"),
    ({"to_party": "NOT-SKAT"}, "To PartyId"),
    ({"service": "DMS.Import2", "action": "Declaration.Submit"}, "Service 'DMS.Import2'"),
])
def test_wrong_party_or_service_is_processing_mode_mismatch(gw, ids, kwargs, detail):
    assert_error(post(gw, ping(ids, **kwargs)), "EBMS:0010", detail)


def test_error_signal_references_the_message_in_error(gw, ids):
    request = ping(ids, password="wrong")
    _, _, body = post(gw, request)
    error = etree.fromstring(body).find(".//eb:Error", NS)
    assert error.get("refToMessageInError") == request.findtext(".//eb:MessageId", namespaces=NS)
    assert error.get("shortDescription") == "FailedAuthentication"
    assert error.get("category") == "Processing" and error.get("severity") == "failure"
    assert PASSWORD.encode() not in body


# --- pull -----------------------------------------------------------------------------------------

MPC = "urn:fdc:dk.skat.mft.DMS/import2/response"


def test_pull_on_empty_mpc_is_a_signed_warning(gw, ids, gateway_cert):
    status, _, body = post(gw, ping(ids, kind="pull", mpc=MPC))
    assert status == 200, body
    verify_response(body, gateway_cert)
    code, severity, detail = client.parse_error(body)
    assert (code, severity) == ("EBMS:0006", "warning") and MPC in detail
    assert etree.fromstring(body).find("S12:Body/S12:Fault", NS) is None


def test_pull_takes_the_waiting_message(gw, ids, gateway_cert):
    store, user = gw[1], ids["alice"].user
    store.mpc_push(user, MPC, b"<Notification xmlns='urn:test'>hello</Notification>")
    store.mpc_push(user, MPC, b"\x00binary")
    status, _, body = post(gw, ping(ids, kind="pull", mpc=MPC))
    assert status == 200, body
    root = verify_response(body, gateway_cert)
    user_message = root.find("S12:Header/eb:Messaging/eb:UserMessage", NS)
    assert user_message.get("mpc") == MPC
    assert user_message.findtext("eb:PartyInfo/eb:To/eb:PartyId", namespaces=NS) == f"{user}_AS4"
    assert root.findtext("S12:Body/{urn:test}Notification", namespaces=NS) == "hello"
    assert store.mpc_count(user, MPC) == 1
    status, _, body = post(gw, ping(ids, kind="pull", mpc=MPC))
    assert status == 200 and store.mpc_count(user, MPC) == 0
    assert verify_response(body, gateway_cert).findtext(
        "S12:Body/{urn:dkcustoms:dms-sandbox}BinaryPayload", namespaces=NS) == "AGJpbmFyeQ=="


def test_pull_returns_a_stored_envelope_as_it_is(gw, ids, gateway_cert):
    store, user = gw[1], ids["alice"].user
    stored = client.build("SKAT", "x", ids["alice"].cert, ids["alice"].key, sign=False,
                          from_party="SKAT-MFT-AS4", to_party=f"{user}_AS4")
    stored_id = stored.findtext(".//eb:MessageId", namespaces=NS)
    store.mpc_push(user, MPC, client.to_bytes(stored))
    status, _, body = post(gw, ping(ids, kind="pull", mpc=MPC))
    assert status == 200, body
    root = verify_response(body, gateway_cert)
    assert root.findtext(".//eb:UserMessage/eb:MessageInfo/eb:MessageId", namespaces=NS) == stored_id
    assert root.find(".//wsse:UsernameToken", NS) is None  # the stored Security header was replaced


def test_signals_other_than_pull_are_not_served(gw, ids):
    assert_error(post(gw, ping(ids, kind="receipt")), "EBMS:0010", "only signal the gateway serves")


def test_pull_needs_authentication_too(gw, ids):
    gw[1].mpc_push(ids["alice"].user, MPC, b"<x/>")
    assert_error(post(gw, ping(ids, kind="pull", mpc=MPC, signer="mallory")), "EBMS:0101", "not registered")
    assert gw[1].mpc_count(ids["alice"].user, MPC) == 1


# --- TLS client certificate ---------------------------------------------------------------------------

def test_client_certificate_optional_by_default(gw, ids):
    assert post(gw, ping(ids), peer=None)[0] == 200


def test_own_client_certificate_is_accepted(manifest, ids):
    gw = make_gateway(manifest, ids, require_client_cert=True)
    assert post(gw, ping(ids), peer=ids["alice"].der)[0] == 200


def test_required_client_certificate_missing_is_403(manifest, ids):
    gw = make_gateway(manifest, ids, require_client_cert=True)
    status, _, body = post(gw, ping(ids), peer=None)
    assert status == 403 and b"requires a TLS client certificate" in body


def test_client_certificate_of_another_user_is_403(gw, ids):
    status, _, body = post(gw, ping(ids), peer=ids["mallory"].der)
    assert status == 403 and ids["mallory"].user.encode() in body
