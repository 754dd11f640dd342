"""The sandbox's AS4 gateway: ``POST /exchange/<gateway user>`` (wire contract: docs/gateway.md).

The HTTPS server (server.py) owns sockets, TLS and fault injection; for every request on the gateway
port it calls :meth:`Gateway.handle` and writes back the ``(status, headers, body)`` it returns.

What it serves: the Notification query of SKAT's reference client on DMS.Import / DMS.Import2 /
DMS.Export2 (a signed ``multipart/related`` answer whose first attachment lists the account's
notifications of the window), pulls on any MPC (a signed multipart message, or EBMS:0006), and the
ebMS3 test service only when started with ``--serve-test-service`` (otherwise EBMS:0010: nothing
public shows the DMS gateway serving it).  Everything else is EBMS:0010.
"""

from __future__ import annotations

import datetime
import logging
import re
import urllib.parse

try:
    import zoneinfo
except ImportError:  # pragma: no cover - Python < 3.9
    zoneinfo = None

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from . import as4sign, as4verify
from .as4verify import As4Error, GATEWAY_PARTY, INITIATOR_ROLE, RESPONDER_ROLE, TEST_ACTION, TEST_SERVICE

LOG = logging.getLogger(__name__)
EXCHANGE_PATH = re.compile(r"^/exchange/([^/?#]+)/?$")
ORGANIZATION_IDENTIFIER = x509.ObjectIdentifier("2.5.4.97")
TEXT = {"Content-Type": "text/plain; charset=utf-8"}
NOTIFICATION_SERVICES = ("DMS.Import", "DMS.Import2", "DMS.Export2")
NOTIFICATION_PROPERTIES = ("lang", "submitterId", "dateFrom", "dateTo")
NOTIFICATION_LANGUAGES = ("EN", "DA")
# dateFrom/dateTo exactly as the reference client writes them: local time, milliseconds, no zone.
REFERENCE_DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}")
NOTIFICATION_TIME_ZONE = "Europe/Copenhagen"


def _plain(status, text, extra=None):
    headers = dict(TEXT)
    headers.update(extra or {})
    return status, headers, (text + "\n").encode("utf-8")


def _soap(status, envelope, attachments=()):
    soap = as4sign.serialize(envelope)
    if attachments:
        content_type, body = as4sign.multipart(soap, attachments)
        return status, {"Content-Type": content_type}, body
    return status, {"Content-Type": as4sign.CONTENT_TYPE}, soap


def _window_zone():
    """Danish time, in which the notification window's dates are read (**model**); UTC without tz data."""
    if zoneinfo is not None:
        try:
            return zoneinfo.ZoneInfo(NOTIFICATION_TIME_ZONE)
        except Exception:  # pylint: disable=broad-except  # ZoneInfoNotFoundError, a broken tz database
            pass
    return datetime.timezone.utc


def _epoch(local_text, zone):
    return datetime.datetime.fromisoformat(local_text).replace(tzinfo=zone).timestamp()


def certificate_user_id(cert):
    """``CVR_<cvr>_UI_<uuid>`` read from an OCES3 subject, or None when it is not OCES3-shaped."""
    try:
        org = cert.subject.get_attributes_for_oid(ORGANIZATION_IDENTIFIER)
        serial = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    except ValueError:
        return None
    if not org or not serial:
        return None
    cvr = re.fullmatch(r"NTRDK-(\d{8})", str(org[0].value))
    uid = re.fullmatch(r"UI:DK-[OE]:G:([0-9a-fA-F-]{36})", str(serial[0].value))
    if not cvr or not uid:
        return None
    return f"CVR_{cvr.group(1)}_UI_{uid.group(1).lower()}"


def _check_content_type(headers):
    """SOAP 1.2 travels as application/soap+xml; a missing header is let through to the XML checks."""
    value = next((v for k, v in (headers or {}).items() if k.lower() == "content-type"), None)
    media_type = (value or "").split(";")[0].strip().lower()
    if value is not None and media_type != "application/soap+xml":
        raise As4Error("EBMS:0009", f"Content-Type {media_type!r}: a SOAP 1.2 message is sent as "
                                    "application/soap+xml (single part; this gateway takes no attachments)")


class Gateway:
    """Authenticates and answers AS4 messages for the gateway users the store knows."""

    def __init__(self, store, signing_cert_pem, signing_key_pem, trusted_ca_pems=(), require_client_cert=False,
                 serve_test_service=False, answer_key_reference="issuer_serial"):
        self.store = store
        self.signer = as4sign.ResponseSigner(signing_cert_pem, signing_key_pem, answer_key_reference)
        self.trusted_cas = [c for pem in trusted_ca_pems for c in x509.load_pem_x509_certificates(pem)]
        self.require_client_cert = require_client_cert
        self.serve_test_service = serve_test_service

    # -- entry point ----------------------------------------------------------------------------

    def handle(self, method, path, headers, body, peer_cert_der=None):
        match = EXCHANGE_PATH.match(urllib.parse.urlsplit(path).path)
        if not match:
            return _plain(404, "Not Found: the AS4 endpoint is /exchange/<gateway user>")
        gateway_user = urllib.parse.unquote(match.group(1))
        account = self.store.gateway_account(gateway_user)
        if account is None or (account.get("registered") and "AS4" not in (account.get("interfaces") or [])):
            return _plain(404, "Not Found: the gateway has no AS4 user of that name")
        if method != "POST":
            return _plain(405, "Method Not Allowed: POST a SOAP 1.2 envelope", {"Allow": "POST"})
        refusal = self._check_client_certificate(peer_cert_der, gateway_user, account)
        if refusal:
            return _plain(403, f"Forbidden: {refusal}")
        try:
            status, envelope, attachments, result = self._exchange(gateway_user, account, headers, body)
        except As4Error as exc:
            self.store.count_gateway(exc.code)
            return _soap(500, as4sign.error_signal(exc.code, exc.detail, exc.ref_to_message_id))
        except Exception as exc:  # an answer, never a dropped connection, for a bug of the sandbox
            LOG.exception("gateway: internal error")
            self.store.count_gateway("EBMS:0004")
            return _soap(500, as4sign.internal_error(f"internal error of the sandbox gateway "
                                                     f"({exc.__class__.__name__})"))
        self.store.count_gateway(result)
        return _soap(status, envelope, attachments)

    # -- transport ------------------------------------------------------------------------------

    def _check_client_certificate(self, peer_cert_der, gateway_user, account):
        """A TLS client certificate is checked when presented; required only with require_client_cert."""
        if peer_cert_der is None:
            if self.require_client_cert:
                return "this gateway requires a TLS client certificate (the OCES3 certificate registered " \
                       "for the gateway user)"
            return None
        try:
            cert = x509.load_der_x509_certificate(peer_cert_der)
        except ValueError:
            return "the TLS client certificate cannot be read"
        if not self._issued_by_trusted_ca(cert):
            return "the TLS client certificate is not issued by a trusted OCES CA"
        now = datetime.datetime.now(datetime.timezone.utc)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            return "the TLS client certificate is expired or not yet valid"
        if peer_cert_der == account.get("certificate_der"):
            return None
        owner = certificate_user_id(cert)
        if owner is None or owner.lower() != str(account.get("portal_user_id") or "").lower():
            return f"the TLS client certificate belongs to {owner or 'no OCES3 identity'}, " \
                   f"not to gateway user {gateway_user}"
        return None

    def _issued_by_trusted_ca(self, cert):
        for ca in self.trusted_cas:
            if ca.subject != cert.issuer:
                continue
            try:
                cert.verify_directly_issued_by(ca)
                return True
            except (InvalidSignature, ValueError, TypeError):  # not this CA's signature, or another key type
                continue
        return False

    # -- messages -------------------------------------------------------------------------------

    def _exchange(self, gateway_user, account, headers, body):
        """Run the checks of docs/gateway.md in order; returns (status, envelope, attachments, counter result)."""
        _check_content_type(headers)
        msg = as4verify.parse_envelope(body)
        as4verify.find_username_token(msg)
        as4verify.check_username_token(msg, gateway_user, account, self.store.use_nonce)
        as4verify.check_signature_policy(msg)
        registered = x509.load_der_x509_certificate(account["certificate_der"])
        cert, _how = as4verify.signing_certificate(msg, registered)
        as4verify.verify_signature(msg, cert)
        if cert != registered:
            raise As4Error("EBMS:0101", "certificate not registered for user: the message is signed by "
                                        f"serial {cert.serial_number}, not by the certificate registered for "
                                        f"{gateway_user}", msg.message_id)
        if msg.kind == "user":
            self._check_parties(msg, gateway_user)
            if (msg.service, msg.action) == (TEST_SERVICE, TEST_ACTION):
                return self._test_service(msg)
            if msg.service in NOTIFICATION_SERVICES and msg.action == "Notification":
                return self._notification(msg, gateway_user, account)
            raise As4Error("EBMS:0010", f"Service {msg.service!r} / Action {msg.action!r} is not served: the sandbox "
                                        "gateway answers the Notification query (DMS.Import, DMS.Import2, "
                                        "DMS.Export2) and pulls", msg.message_id)
        if msg.kind == "pull":
            return self._pull(msg, gateway_user)
        raise As4Error("EBMS:0010", "the only signal the gateway serves is eb:PullRequest", msg.message_id)

    @staticmethod
    def _check_parties(msg, gateway_user):
        expected = (
            ("From PartyId", msg.from_party, f"{gateway_user}_AS4"),
            ("From PartyId type", msg.from_party_type, "string"),
            ("From Role", msg.from_role, INITIATOR_ROLE),
            ("To PartyId", msg.to_party, GATEWAY_PARTY),
            ("To PartyId type", msg.to_party_type, "string"),
            ("To Role", msg.to_role, RESPONDER_ROLE),
        )
        for name, got, want in expected:
            if got != want:
                raise As4Error("EBMS:0010", f"{name} is {got!r}; the gateway expects {want!r}", msg.message_id)

    def _test_service(self, msg):
        if not self.serve_test_service:
            raise As4Error("EBMS:0010", "the ebMS3 test service is not configured on this gateway (the sandbox "
                                        "answers it only when started with --serve-test-service)", msg.message_id)
        return 200, self.signer.sign(as4sign.receipt(msg.message_id, msg.signed_references)), (), "accepted"

    def _notification(self, msg, gateway_user, account):
        """The reference client's read-only query: the account's notifications of [dateFrom, dateTo]."""
        ref = msg.message_id
        if msg.service_type != "string":
            raise As4Error("EBMS:0010", f"Service {msg.service!r} needs type=\"string\" (as SKAT's reference client "
                                        "sends it)", ref)
        missing = [name for name in NOTIFICATION_PROPERTIES if not msg.properties.get(name)]
        if missing:
            raise As4Error("EBMS:0003", f"the Notification query lacks the MessageProperties {', '.join(missing)}", ref)
        props = msg.properties
        if props["lang"] not in NOTIFICATION_LANGUAGES:
            raise As4Error("EBMS:0003", f"lang {props['lang']!r} is not one of {', '.join(NOTIFICATION_LANGUAGES)}",
                           ref)
        if props["submitterId"] != account.get("cvr"):
            raise As4Error("EBMS:0003", f"submitterId {props['submitterId'][:20]!r} is not the CVR of gateway user "
                                        f"{gateway_user}", ref)
        for name in ("dateFrom", "dateTo"):
            if not REFERENCE_DATE.fullmatch(props[name]):
                raise As4Error("EBMS:0003", f"{name} {props[name][:40]!r} is not written as 2022-03-22T12:30:00.000 "
                                            "(local time, milliseconds, no zone)", ref)
        zone = _window_zone()
        try:
            start, end = _epoch(props["dateFrom"], zone), _epoch(props["dateTo"], zone)
        except ValueError:
            raise As4Error("EBMS:0003", "dateFrom or dateTo is not a valid date and time", ref) from None
        if start > end:
            raise As4Error("EBMS:0003", "dateFrom is after dateTo", ref)
        # Dates are written to the millisecond: dateTo covers that whole millisecond.
        notifications = self.store.notifications_between(props["submitterId"], msg.service, start, end + 0.001)
        document = as4sign.notifications_document(notifications, props["submitterId"], msg.service,
                                                  props["dateFrom"], props["dateTo"])
        envelope, attachments = as4sign.notification_answer(ref, gateway_user, msg.service, document)
        return 200, self.signer.sign(envelope), attachments, "accepted"

    def _pull(self, msg, gateway_user):
        stored = self.store.mpc_pop(gateway_user, msg.mpc)
        if stored is None:
            warning = as4sign.error_signal("EBMS:0006", f"no message is waiting on MPC {msg.mpc}", msg.message_id,
                                           with_fault=False)
            return 200, self.signer.sign(warning), (), "EBMS:0006"
        payload, original = stored
        envelope, attachments = as4sign.pulled_user_message(payload, gateway_user, msg.mpc,
                                                            original or as4sign.new_message_id())
        return 200, self.signer.sign(envelope), attachments, "accepted"
