"""The AS4 gateway's checks and answers (docs/gateway.md), driven through Gateway.handle with a fake store.

Messages come from tests/sandbox/as4_test_client.py (a hand-rolled signer, not the collection's); answers
are verified here with signxml's XMLVerifier against the gateway certificate and, independently of
signxml, with xmlsec1.
"""

import copy
import datetime
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier
from signxml.exceptions import InvalidDigest

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
        self.cvr = entry["cvr"]
        self.der = self.cert.public_bytes(serialization.Encoding.DER)


class FakeStore:
    """In-memory stand-in with exactly the interface of the sandbox store the gateway uses."""

    def __init__(self):
        self.accounts, self.nonces, self.counts, self.mpcs, self.notifications = {}, set(), {}, {}, []

    def add(self, identity, registered=True, interfaces=("AS4",), password=PASSWORD):
        self.accounts[identity.user] = {
            "gateway_user": identity.user, "portal_user_id": identity.user, "registered": registered,
            "interfaces": list(interfaces), "gateway_password": password if registered else None,
            "certificate_der": identity.der, "cvr": identity.cvr}

    def gateway_account(self, gateway_user):
        return self.accounts.get(gateway_user)

    def use_nonce(self, nonce):
        if nonce in self.nonces:
            return False
        self.nonces.add(nonce)
        return True

    def count_gateway(self, result):
        self.counts[result] = self.counts.get(result, 0) + 1

    def mpc_push(self, gateway_user, mpc, message, original_message_id=None):
        self.mpcs.setdefault((gateway_user, mpc), []).append((message, original_message_id))

    def mpc_pop(self, gateway_user, mpc):
        queue = self.mpcs.get((gateway_user, mpc))
        return queue.pop(0) if queue else None

    def notification_add(self, cvr, document, service=None, at=None):
        self.notifications.append({"id": len(self.notifications) + 1, "cvr": cvr, "service": service,
                                   "document": document, "at": time.time() if at is None else at})

    def notifications_between(self, cvr, service, start, end):
        return [{"id": n["id"], "service": n["service"], "document": n["document"], "created_at": str(n["at"])}
                for n in self.notifications
                if n["cvr"] == cvr and start <= n["at"] <= end and n["service"] in (None, service)]

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


def make_gateway(manifest, ids, require_client_cert=False, serve_test_service=False,
                 answer_key_reference="issuer_serial"):
    store = FakeStore()
    store.add(ids["alice"])
    store.add(ids["pending"], registered=False, interfaces=())
    store.add(ids["no_as4"], interfaces=("FTPS",))
    signing = manifest["server"]["gateway_signing"]
    gw = Gateway(store=store, signing_cert_pem=_read(signing["cert"]), signing_key_pem=_read(signing["key"]),
                 trusted_ca_pems=[_read(manifest["ca_bundle"])], require_client_cert=require_client_cert,
                 serve_test_service=serve_test_service, answer_key_reference=answer_key_reference)
    return gw, store


@pytest.fixture()
def gw(manifest, ids):
    return make_gateway(manifest, ids)


def message(ids, who="alice", signer=None, password=PASSWORD, **kwargs):
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


def verify_response(body, gateway_cert, content_type="application/soap+xml"):
    """Verify the gateway's signature with signxml against the gateway certificate; return the root
    (and with a multipart answer, (root, attachments))."""
    soap, attachments = client.split_answer(content_type, body)
    root = etree.fromstring(soap)
    results = XMLVerifier().verify(root, x509_cert=gateway_cert.decode(),
                                   expect_config=SignatureConfiguration(expect_references=2))
    signed_ids = {r.signed_xml.get(client.WSU_ID) for r in results}
    assert signed_ids == {root.find("S12:Body", NS).get(client.WSU_ID),
                          root.find("S12:Header/eb:Messaging", NS).get(client.WSU_ID)}
    return (root, attachments) if content_type.startswith("multipart/") else root


# --- success ------------------------------------------------------------------------------------

NOTIFICATIONS_NS = "urn:dkcustoms:dms-sandbox:notifications"


@pytest.mark.parametrize("answer_key_reference", ["issuer_serial", "binary_security_token"])
@pytest.mark.parametrize("key_reference", ["issuer_serial", "bst"])
def test_notification_query_gets_a_signed_multipart_answer_listing_the_window(manifest, ids, gateway_cert, tmp_path,
                                                                              key_reference, answer_key_reference):
    gw = make_gateway(manifest, ids, answer_key_reference=answer_key_reference)
    store, alice = gw[1], ids["alice"]
    store.notification_add(alice.cvr, "declaration 42 accepted")
    store.notification_add(alice.cvr, "only for exports", service="DMS.Export2")
    store.notification_add(alice.cvr, "an hour ago", at=time.time() - 3600)
    store.notification_add("99999999", "another company")
    request = message(ids, key_reference=key_reference)
    status, headers, body = post(gw, request)
    assert status == 200, body
    assert headers["Content-Type"].startswith("multipart/related;")
    root, attachments = verify_response(body, gateway_cert, headers["Content-Type"])
    user_message = root.find("S12:Header/eb:Messaging/eb:UserMessage", NS)
    request_id = request.findtext(".//eb:MessageId", namespaces=NS)
    assert user_message.findtext("eb:MessageInfo/eb:RefToMessageId", namespaces=NS) == request_id
    assert user_message.findtext("eb:CollaborationInfo/eb:Action", namespaces=NS) == "Notification"
    hrefs = [p.get("href") for p in user_message.findall("eb:PayloadInfo/eb:PartInfo", NS)]
    assert hrefs == ["cid:" + attachments[0][0]] and attachments[0][1] == "application/xml"
    listing = etree.fromstring(attachments[0][2])
    assert listing.get("submitterId") == alice.cvr and listing.get("count") == "1"
    assert [n.text for n in listing.findall("{%s}Notification" % NOTIFICATIONS_NS)] == ["declaration 42 accepted"]
    key_info = root.find(".//ds:Signature/ds:KeyInfo/wsse:SecurityTokenReference", NS)
    named = "ds:X509Data/ds:X509IssuerSerial" if answer_key_reference == "issuer_serial" else "wsse:Reference"
    assert key_info.find(named, NS) is not None
    checked = client.xmlsec1_verify(etree.tostring(root), manifest["server"]["gateway_signing"]["cert"], tmp_path)
    assert checked.returncode == 0 and "2/2" in checked.stderr, checked.stderr
    assert gw[1].counts == {"accepted": 1}


@pytest.mark.parametrize("service", ["DMS.Import", "DMS.Import2", "DMS.Export2"])
def test_notification_services_are_served(gw, ids, service):
    status, _, body = post(gw, message(ids, service=service))
    assert status == 200, body


def test_test_service_is_not_served_unless_enabled(manifest, ids, gateway_cert, tmp_path):
    assert_error(post(make_gateway(manifest, ids), message(ids, kind="ping")), "EBMS:0010",
                 "test service is not configured")
    gw = make_gateway(manifest, ids, serve_test_service=True)
    request = message(ids, kind="ping")
    status, headers, body = post(gw, request)
    assert status == 200, body
    assert headers["Content-Type"] == "application/soap+xml; charset=utf-8"
    root = verify_response(body, gateway_cert)
    signal = root.find("S12:Header/eb:Messaging/eb:SignalMessage", NS)
    assert signal.findtext("eb:MessageInfo/eb:RefToMessageId", namespaces=NS) == request.findtext(
        ".//eb:MessageId", namespaces=NS)
    parts = signal.findall("eb:Receipt/ebbp:NonRepudiationInformation/ebbp:MessagePartNRInformation", NS)
    nri = {p.find("ds:Reference", NS).get("URI"): p.findtext("ds:Reference/ds:DigestValue", namespaces=NS)
           for p in parts}
    assert nri == client.signed_reference_digests(request) and len(nri) == 3
    checked = client.xmlsec1_verify(body, manifest["server"]["gateway_signing"]["cert"], tmp_path)
    assert checked.returncode == 0, checked.stderr


def test_issuer_name_as_java_writes_it_is_accepted(gw, ids):
    """X500Principal.toString() style: spaces after commas; same attributes, so the same certificate."""
    issuer = ids["alice"].cert.issuer.rfc4514_string().replace(",", ", ")
    assert post(gw, message(ids, issuer_name=issuer))[0] == 200


def test_issuer_serial_naming_another_issuer_is_not_registered(gw, ids):
    assert_error(post(gw, message(ids, issuer_name="CN=Some Other CA,O=Elsewhere,C=DK")), "EBMS:0101",
                 "certificate not registered for user")


def test_altered_answer_breaks_the_signature(manifest, ids, gateway_cert, tmp_path):
    """Issue 14 #5: the unaltered answer verifies first; the altered one fails with a digest mismatch."""
    gw = make_gateway(manifest, ids, serve_test_service=True)
    status, _, body = post(gw, message(ids, kind="ping"))
    assert status == 200
    verify_response(body, gateway_cert)
    altered = body.replace(b"RefToMessageId>", b"RefToMessageId>x", 1)
    assert altered != body
    with pytest.raises(InvalidDigest, match="Digest mismatch"):
        verify_response(altered, gateway_cert)
    checked = client.xmlsec1_verify(altered, manifest["server"]["gateway_signing"]["cert"], tmp_path)
    assert checked.returncode != 0


# --- the Notification query ------------------------------------------------------------------------

@pytest.mark.parametrize("change, code, detail", [
    ({"submitterId": None}, "EBMS:0003", "lacks the MessageProperties submitterId"),
    ({"submitterId": "99999999"}, "EBMS:0003", "is not the CVR of gateway user"),
    ({"dateFrom": "2026-01-01T10:00:00Z"}, "EBMS:0003", "is not written as 2022-03-22T12:30:00.000"),
    ({"dateTo": "2026-01-01T10:00:00.000+01:00"}, "EBMS:0003", "is not written as"),
    ({"dateFrom": "2099-01-01T00:00:00.000"}, "EBMS:0003", "dateFrom is after dateTo"),
    ({"lang": "XX"}, "EBMS:0003", "lang 'XX'"),
])
def test_notification_query_properties_are_checked(gw, ids, change, code, detail):
    properties = client.notification_properties(ids["alice"].user)
    for name, value in change.items():
        if value is None:
            properties.pop(name)
        else:
            properties[name] = value
    assert_error(post(gw, message(ids, properties=properties)), code, detail)


def test_dms_service_without_type_string_is_refused(gw, ids):
    assert_error(post(gw, message(ids, service_type="")), "EBMS:0010", 'needs type="string"')


def test_party_id_without_type_string_is_refused(gw, ids):
    assert_error(post(gw, message(ids, party_type=None)), "EBMS:0010", "From PartyId type is None")


# --- authentication and policy ------------------------------------------------------------------

def test_unsigned_message_is_policy_noncompliant(gw, ids):
    assert_error(post(gw, message(ids, sign=False)), "EBMS:0103", "not signed")


@pytest.mark.parametrize("token_header, where", [
    ("default", "in the default wsse:Security header"),
    ("other", 'in the wsse:Security header with S12:role="http://example.invalid/another-role"'),
])
def test_username_token_is_read_only_from_the_ebms_header(gw, ids, token_header, where):
    error = assert_error(post(gw, message(ids, token_header=token_header)), "EBMS:0103", where)
    assert 'reads it only from the wsse:Security header with S12:role="ebms"' in error[2]
    assert gw[1].counts == {"EBMS:0103": 1}


def test_ebms_header_holds_only_the_username_token(gw, ids):
    def move_signature(envelope):
        signature = envelope.find("S12:Header/wsse:Security/ds:Signature", NS)
        envelope.find("S12:Header/wsse:Security[@S12:role='ebms']", NS).append(signature)
    assert_error(post(gw, message(ids, tamper=move_signature)), "EBMS:0103", "holds only the wsse:UsernameToken")


def test_two_headers_for_one_role_are_refused(gw, ids):
    def duplicate(envelope):
        header = envelope.find("S12:Header", NS)
        extra = etree.SubElement(header, client.q("wsse", "Security"))
        extra.set(client.ROLE, "ebms")
    assert_error(post(gw, message(ids, tamper=duplicate)), "EBMS:0103", 'more than one wsse:Security header for S12:role="ebms"')


@pytest.mark.parametrize("where", ["messaging", "body", "token"])
def test_tampered_message_does_not_verify(gw, ids, where):
    def tamper(envelope):
        if where == "messaging":
            envelope.find(".//eb:ConversationId", NS).text = "changed-after-signing"
        elif where == "body":
            etree.SubElement(envelope.find("S12:Body", NS), "{urn:evil}Injected").text = "x"
        else:
            envelope.find(".//wsu:Created", NS).tail = " "  # whitespace inside the signed token
    assert_error(post(gw, message(ids, tamper=tamper)), "EBMS:0101", "signature does not verify")


def test_garbled_signature_value_does_not_verify(gw, ids):
    def garble(envelope):
        envelope.find(".//ds:SignatureValue", NS).text = "not*base64"
    assert_error(post(gw, message(ids, tamper=garble)), "EBMS:0101", "signature does not verify")


def test_signature_wrapping_is_rejected(gw, ids):
    """The signed eb:Messaging copied aside and a forged one in its place must not pass."""
    def wrap(envelope):
        messaging = envelope.find("S12:Header/eb:Messaging", NS)
        hidden = etree.SubElement(envelope.find("S12:Header/wsse:Security", NS), "{urn:evil}Wrapper")
        hidden.append(copy.deepcopy(messaging))
        messaging.find(".//eb:ConversationId", NS).text = "forged"
    assert_error(post(gw, message(ids, tamper=wrap)), "EBMS:0101", "signature does not verify")


@pytest.mark.parametrize("key_reference", ["issuer_serial", "bst"])
def test_signature_by_an_unregistered_certificate(gw, ids, key_reference):
    request = message(ids, signer="mallory", key_reference=key_reference)
    assert_error(post(gw, request), "EBMS:0101", "certificate not registered for user")


def test_wrong_gateway_password(gw, ids):
    assert_error(post(gw, message(ids, password="not-the-password")), "EBMS:0101", "password digest does not match")


def test_replayed_nonce_is_rejected(gw, ids):
    body = client.to_bytes(message(ids))
    user = ids["alice"].user
    assert post(gw, body, user=user)[0] == 200
    assert_error(post(gw, body, user=user), "EBMS:0101", "already used")
    assert gw[1].counts == {"accepted": 1, "EBMS:0101": 1}


@pytest.mark.parametrize("minutes", [-6, 6])
def test_stale_or_future_created_is_rejected(gw, ids, minutes):
    created = client.xsd_datetime(client.utc_now() + datetime.timedelta(minutes=minutes))
    assert_error(post(gw, message(ids, created=created)), "EBMS:0101", "wsu:Created is more than 5 minutes")


def test_created_within_tolerance_is_accepted(gw, ids):
    created = client.xsd_datetime(client.utc_now() - datetime.timedelta(minutes=4))
    assert post(gw, message(ids, created=created))[0] == 200


def test_username_must_be_the_endpoint_user(gw, ids):
    request = message(ids, username=ids["pending"].user)
    assert_error(post(gw, request, user=ids["alice"].user), "EBMS:0101", "not the gateway user of the endpoint")


def test_plain_text_password_is_policy_noncompliant(gw, ids):
    request = message(ids, password_type=client.PASSWORD_TEXT)
    assert_error(post(gw, request), "EBMS:0103", "PasswordDigest")


def test_missing_username_token_is_policy_noncompliant(gw, ids):
    def drop_token(envelope):
        token = envelope.find(".//wsse:UsernameToken", NS)
        token.getparent().remove(token)
    request = message(ids, signed_parts=("body", "messaging"), tamper=drop_token)
    assert_error(post(gw, request, user=ids["alice"].user), "EBMS:0103",
                 'no wsse:UsernameToken in the wsse:Security header with S12:role="ebms"')


@pytest.mark.parametrize("missing,name", [("token", "wsse:UsernameToken"), ("body", "S12:Body"),
                                          ("messaging", "eb:Messaging")])
def test_every_part_must_be_signed(gw, ids, missing, name):
    parts = tuple(p for p in ("body", "messaging", "token") if p != missing)
    assert_error(post(gw, message(ids, signed_parts=parts)), "EBMS:0103", f"{name} (wsu:Id")


def test_sha1_signature_is_policy_noncompliant(gw, ids):
    assert_error(post(gw, message(ids, signature_method=client.RSA_SHA1)), "EBMS:0103", "RSA-SHA256")


def test_pending_registration_rejects_every_logon(gw, ids):
    assert_error(post(gw, message(ids, who="pending")), "EBMS:0101", "registration of the certificate is not complete")


# --- routing --------------------------------------------------------------------------------------

def test_unknown_user_is_404(gw, ids):
    status, headers, _ = post(gw, message(ids), user="CVR_00000000_UI_00000000-0000-0000-0000-000000000000")
    assert status == 404 and headers["Content-Type"].startswith("text/plain")
    assert gw[1].counts == {}


def test_user_without_as4_interface_is_404(gw, ids):
    assert post(gw, message(ids, who="no_as4"))[0] == 404


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
                            client.to_bytes(message(ids)), None)
    assert_error(response, "EBMS:0009", "application/soap+xml")


def test_document_type_declaration_is_invalid_header(gw, ids):
    body = client.to_bytes(message(ids)).replace(b"?>", b"?><!DOCTYPE x [<!ENTITY e 'boom'>]>", 1)
    assert_error(post(gw, body, user=ids["alice"].user), "EBMS:0009", "Document Type Declaration")


def test_missing_messaging_is_invalid_header(gw, ids):
    def drop(envelope):
        messaging = envelope.find("S12:Header/eb:Messaging", NS)
        messaging.getparent().remove(messaging)
    assert_error(post(gw, message(ids, tamper=drop)), "EBMS:0009", "eb:Messaging")


@pytest.mark.parametrize("kwargs,detail", [
    ({"from_party": "SOMEONE_ELSE_AS4"}, "From PartyId"),
    ({"to_party": "NOT-SKAT"}, "To PartyId"),
    ({"kind": "user", "service": "DMS.Import2", "service_type": "string", "action": "Declaration.Submit"},
     "Service 'DMS.Import2' / Action 'Declaration.Submit' is not served"),
])
def test_wrong_party_or_service_is_processing_mode_mismatch(gw, ids, kwargs, detail):
    assert_error(post(gw, message(ids, **kwargs)), "EBMS:0010", detail)


def test_error_signal_references_the_message_in_error(gw, ids):
    request = message(ids, password="wrong")
    _, _, body = post(gw, request)
    error = etree.fromstring(body).find(".//eb:Error", NS)
    assert error.get("refToMessageInError") == request.findtext(".//eb:MessageId", namespaces=NS)
    assert error.get("shortDescription") == "FailedAuthentication"
    assert error.get("category") == "Processing" and error.get("severity") == "failure"
    assert PASSWORD.encode() not in body


# --- pull -----------------------------------------------------------------------------------------

MPC = "urn:fdc:dk.skat.mft.DMS/import2/response"


def test_pull_on_empty_mpc_is_a_signed_warning(gw, ids, gateway_cert):
    status, headers, body = post(gw, message(ids, kind="pull", mpc=MPC))
    assert status == 200, body
    assert headers["Content-Type"] == "application/soap+xml; charset=utf-8"
    verify_response(body, gateway_cert)
    code, severity, detail = client.parse_error(body)
    assert (code, severity) == ("EBMS:0006", "warning") and MPC in detail
    assert etree.fromstring(body).find("S12:Body/S12:Fault", NS) is None


def test_pull_takes_the_waiting_message_as_a_multipart_message(gw, ids, gateway_cert):
    store, user = gw[1], ids["alice"].user
    store.mpc_push(user, MPC, b"<Notification xmlns='urn:test'>hello</Notification>", "declaration-7")
    store.mpc_push(user, MPC, b"\x00binary\r\n\n", None)
    status, headers, body = post(gw, message(ids, kind="pull", mpc=MPC))
    assert status == 200, body
    root, attachments = verify_response(body, gateway_cert, headers["Content-Type"])
    user_message = root.find("S12:Header/eb:Messaging/eb:UserMessage", NS)
    assert user_message.get("mpc") == MPC
    assert user_message.findtext("eb:PartyInfo/eb:To/eb:PartyId", namespaces=NS) == f"{user}_AS4"
    properties = user_message.findall("eb:MessageProperties/eb:Property", NS)
    assert (properties[0].get("name"), properties[0].text) == ("originalMessageId", "declaration-7")
    assert [(a[1], a[2]) for a in attachments] == [
        ("application/xml", b"<Notification xmlns='urn:test'>hello</Notification>")]
    assert store.mpc_count(user, MPC) == 1
    status, headers, body = post(gw, message(ids, kind="pull", mpc=MPC))
    assert status == 200 and store.mpc_count(user, MPC) == 0
    _root, attachments = verify_response(body, gateway_cert, headers["Content-Type"])
    assert [(a[1], a[2]) for a in attachments] == [("application/octet-stream", b"\x00binary\r\n\n")]


def test_signals_other_than_pull_are_not_served(gw, ids):
    assert_error(post(gw, message(ids, kind="receipt")), "EBMS:0010", "only signal the gateway serves")


def test_pull_needs_authentication_too(gw, ids):
    gw[1].mpc_push(ids["alice"].user, MPC, b"<x/>")
    assert_error(post(gw, message(ids, kind="pull", mpc=MPC, signer="mallory")), "EBMS:0101", "not registered")
    assert gw[1].mpc_count(ids["alice"].user, MPC) == 1


# --- TLS client certificate ---------------------------------------------------------------------------

def test_client_certificate_optional_by_default(gw, ids):
    assert post(gw, message(ids), peer=None)[0] == 200


def test_own_client_certificate_is_accepted(manifest, ids):
    gw = make_gateway(manifest, ids, require_client_cert=True)
    assert post(gw, message(ids), peer=ids["alice"].der)[0] == 200


def test_required_client_certificate_missing_is_403(manifest, ids):
    gw = make_gateway(manifest, ids, require_client_cert=True)
    status, _, body = post(gw, message(ids), peer=None)
    assert status == 403 and b"requires a TLS client certificate" in body


def test_client_certificate_of_another_user_is_403(gw, ids):
    status, _, body = post(gw, message(ids), peer=ids["mallory"].der)
    assert status == 403 and ids["mallory"].user.encode() in body
