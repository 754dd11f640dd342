"""The UFST certificate portal, as the JSON API modelled in docs/portal-api.md.

`Portal.handle(method, path, headers, body, peer_certificate_der)` -> `(status, headers, body)`; the
server has already verified the TLS client certificate's chain against the trusted OCES CAs. Every rule
lives here (forced password change, lockout, registration, SE-number, e-mail, interfaces); the store
makes each read-modify-write one serialised transaction.
"""

import hashlib
import json
import re
import time

from cryptography import x509
from cryptography.x509.oid import NameOID

from dms_sandbox.store import MAX_FAILED_LOGONS, check_password, hash_password

BASE_PATH = "/PortalCertApp"
SESSION_LIFETIME_S = 900
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
INTERFACES = ("AS4", "FTPS")

_OCES3_SERIAL = re.compile(r"UI:DK-([OE]):G:([0-9a-fA-F-]{36})")
_OCES2_SERIAL = re.compile(r"CVR:([0-9]{8})-(UID|FID|RID):[0-9]+")
_ORGANIZATION_IDENTIFIER = re.compile(r"NTRDK-([0-9]{8})")
_SE_NUMBER = re.compile(r"[0-9]{8}")  # not \d: that matches other scripts' digits too
_EMAIL = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\".]+(\.[^@\s,;<>\".]+)+")

_STATUS_TEXT = {
    "not_registered": "Your certificate is not registered in UFST MFT. Press 'Register Certificate' in order to "
                      "update the certificate in UFST MFT.",
    "in_progress": "The registration has started and completes in a few minutes. Press 'Refresh' to see when it "
                   "is done.",
    "registered": "Your certificate is registered and ready for use.",
}


class ApiError(Exception):
    """An error answer: `{"error": code, "detail": sentence}` plus optional extra fields."""

    def __init__(self, status, code, detail, **extra):
        super().__init__(detail)
        self.status, self.code, self.detail, self.extra = status, code, detail, extra


def _attribute(subject, oid):
    values = subject.get_attributes_for_oid(oid)
    return values[0].value if values else None


def identity_from_certificate(der):
    """CVR, UUID and user id of an OCES3 certificate; ApiError 403 not_oces3 for anything else."""
    cert = x509.load_der_x509_certificate(der)
    serial = _attribute(cert.subject, NameOID.SERIAL_NUMBER) or ""
    organization = _attribute(cert.subject, NameOID.ORGANIZATION_IDENTIFIER) or ""
    serial_match = _OCES3_SERIAL.fullmatch(serial)
    cvr_match = _ORGANIZATION_IDENTIFIER.fullmatch(organization)
    if not (serial_match and cvr_match):
        if _OCES2_SERIAL.fullmatch(serial):
            detail = ("the certificate is an OCES2 certificate (serialNumber %s); the portal accepts OCES3 "
                      "certificates only: use an OCES3 certificate from MitID Erhverv" % serial)
        else:
            detail = ("the certificate has no OCES3 identity (serialNumber UI:DK-O:G:<uuid> and "
                      "organizationIdentifier NTRDK-<cvr>); present an OCES3 certificate from MitID Erhverv")
        raise ApiError(403, "not_oces3", detail)
    cvr, uuid = cvr_match.group(1), serial_match.group(2).lower()
    return {
        "user_id": "CVR_%s_UI_%s" % (cvr, uuid),
        "cvr": cvr,
        "uuid": uuid,
        "employee": serial_match.group(1) == "E",
        "common_name": _attribute(cert.subject, NameOID.COMMON_NAME) or "",
        "expiry_date": cert.not_valid_after_utc.date().isoformat(),
    }


def _json_body(body):
    try:
        data = json.loads(body.decode("utf-8") or "{}") if body else {}
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "invalid_json", "the request body is not JSON; send a JSON object") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "the request body must be a JSON object")
    return data


def _answer(status, document=None, extra_headers=None):
    headers = {"Cache-Control": "no-store"}
    headers.update(extra_headers or {})
    if document is None:
        return status, headers, b""
    headers["Content-Type"] = "application/json"
    return status, headers, json.dumps(document).encode("utf-8")


def _error(exc):
    document = {"error": exc.code, "detail": exc.detail}
    document.update(exc.extra)
    return _answer(exc.status, document)


class Portal:
    """The certificate portal application (no HTTP server here: see server.py)."""

    def __init__(self, store, faults, session_lifetime_s=SESSION_LIFETIME_S):
        self.store = store
        self.faults = faults
        self.session_lifetime_s = session_lifetime_s
        self.routes = {
            "/api/whoami": {"GET": self.whoami},
            "/api/session": {"POST": self.logon, "DELETE": self.logout},
            "/api/session/password": {"POST": self.change_password},
            "/api/certificate": {"GET": self.overview},
            "/api/certificate/registration": {"POST": self.register},
            "/api/certificate/se-number": {"PUT": self.set_se_number},
            "/api/certificate/email": {"PUT": self.set_email},
            "/api/certificate/interfaces": {"PUT": self.set_interfaces},
            "/api/certificate/gateway-credentials": {"GET": self.gateway_credentials},
        }

    # -- dispatch -------------------------------------------------------------------------------------------
    def handle(self, method, path, headers, body, peer_certificate_der):
        try:
            handler = self._route(method, path)
            if not peer_certificate_der:
                raise ApiError(401, "client_certificate_required",
                               "no TLS client certificate was presented; present your OCES3 certificate "
                               "(the portal reads CVR and UUID from it)")
            identity = identity_from_certificate(peer_certificate_der)
            self.store.ensure_account(identity, peer_certificate_der)
            request = {"headers": {k.lower(): v for k, v in headers.items()}, "body": body, "identity": identity,
                       "certificate_der": peer_certificate_der,
                       "certificate_sha256": hashlib.sha256(peer_certificate_der).hexdigest()}
            return handler(request)
        except ApiError as exc:
            return _error(exc)

    def _route(self, method, path):
        path = path.split("?", 1)[0]
        if not path.startswith(BASE_PATH + "/"):
            raise ApiError(404, "not_found", "no such page: the portal API lives under %s/api/" % BASE_PATH)
        methods = self.routes.get(path[len(BASE_PATH):].rstrip("/") or "/")
        if methods is None:
            raise ApiError(404, "not_found", "no such call %s; see docs/portal-api.md" % path)
        if method not in methods:
            raise ApiError(405, "method_not_allowed", "%s takes %s" % (path, ", ".join(sorted(methods))))
        return methods[method]

    # -- helpers ----------------------------------------------------------------------------------------------
    def _account_name(self, account):
        form = "UR" if account["registration_status"] == "registered" and \
            self.store.gateway_user_form == "UR" else "UI"
        return "%s_%s" % (form, account["uuid"])

    def _overview(self, account):
        registered = account["registration_status"] == "registered"
        return {
            "user_id": account["user_id"],
            "common_name": account["common_name"],
            "expiry_date": account["expiry_date"],
            "type": "CVR",
            "legal_identifier": "CVR_%s" % account["cvr"],
            "account": self._account_name(account),
            "account_state": account["state"],
            "registration_status": account["registration_status"],
            "status_text": _STATUS_TEXT[account["registration_status"]],
            "se_number": account["se_number"],
            "email": account["email"],
            "interfaces": account["interfaces"],
            "gateway_user": account["gateway_user"] if registered else None,
        }

    def _logged_on(self, request, allow_password_change=False):
        """The account of the session in the Authorization header (ApiError when there is none)."""
        authorization = request["headers"].get("authorization", "")
        if not authorization.startswith("Bearer ") or not authorization[7:].strip():
            raise ApiError(401, "not_logged_on", "log on first (POST /api/session) and send "
                                                 "'Authorization: Bearer <token>'")
        session = self.store.session(authorization[7:].strip())
        if session is None:
            raise ApiError(401, "invalid_session", "the session token is unknown or logged out; log on again")
        if session["expires_at"] < time.time():
            raise ApiError(401, "session_expired", "the session expired (%d minutes); log on again"
                           % (self.session_lifetime_s // 60))
        if session["user_id"] != request["identity"]["user_id"] or \
                session["certificate_sha256"] != request["certificate_sha256"]:
            raise ApiError(401, "invalid_session", "the session belongs to another certificate; log on with the "
                                                   "certificate you present")
        account = self.store.account(session["user_id"])
        if account["state"] == "locked":
            raise ApiError(423, "account_locked", "the account is locked after %d failed logons; a person must "
                                                  "unlock it" % MAX_FAILED_LOGONS)
        if account["state"] == "new" and not allow_password_change:
            raise ApiError(403, "password_change_required", "change the initial password first "
                                                            "(POST /api/session/password)")
        return account

    def _password_matches(self, account, password):
        if account["state"] == "new" or account["password_hash"] is None:
            return password == account["user_id"]
        return check_password(password, account["password_hash"])

    def _failed_attempt(self, conn, account):
        """Count a wrong password; lock at the limit. Returns the answer to give (inside the transaction)."""
        failed = account["failed_in_row"] + 1
        self.store.bump_in(conn, account["user_id"], "logins_failed")
        if failed >= MAX_FAILED_LOGONS:
            self.store.update_account_in(conn, account["user_id"], failed_in_row=failed, state="locked",
                                         state_before_lock=account["state"])
            return ApiError(423, "account_locked", "wrong password; that was failed logon %d in a row, so the "
                                                   "account is now locked until a person unlocks it" % failed)
        self.store.update_account_in(conn, account["user_id"], failed_in_row=failed)
        return ApiError(401, "invalid_credentials", "wrong user id or password (%d attempts left before the "
                                                    "account locks)" % (MAX_FAILED_LOGONS - failed),
                        attempts_remaining=MAX_FAILED_LOGONS - failed)

    # -- the calls ----------------------------------------------------------------------------------------------
    def whoami(self, request):
        account = self.store.account(request["identity"]["user_id"])
        return _answer(200, {
            "user_id": account["user_id"],
            "common_name": account["common_name"],
            "expiry_date": account["expiry_date"],
            "legal_identifier": "CVR_%s" % account["cvr"],
            "account": self._account_name(account),
            "account_state": account["state"],
        })

    def logon(self, request):
        data = _json_body(request["body"])
        user_id, password = data.get("user_id"), data.get("password")
        if not isinstance(user_id, str) or not isinstance(password, str):
            raise ApiError(400, "invalid_request", "send {\"user_id\": \"CVR_..._UI_...\", \"password\": \"...\"}")
        if user_id != request["identity"]["user_id"]:
            raise ApiError(403, "user_mismatch", "the user id is not the one of the presented certificate (%s); "
                                                 "log on as that user or present the other certificate"
                           % request["identity"]["user_id"])
        with self.store.write() as conn:
            account = self.store.account_in(conn, user_id)
            if account["state"] == "locked":
                self.store.bump_in(conn, user_id, "logins_failed")
                outcome = ApiError(423, "account_locked", "the account is locked after %d failed logons; a person "
                                                          "must unlock it" % MAX_FAILED_LOGONS)
            elif self._password_matches(account, password):
                self.store.bump_in(conn, user_id, "logins_ok")
                self.store.update_account_in(conn, user_id, failed_in_row=0)
                token = self.store.create_session_in(conn, user_id, request["certificate_sha256"],
                                                     self.session_lifetime_s)
                outcome = {"token": token, "password_change_required": account["state"] == "new",
                           "expires_in": self.session_lifetime_s}
            else:
                outcome = self._failed_attempt(conn, account)
        if isinstance(outcome, ApiError):
            raise outcome
        return _answer(200, outcome)

    def logout(self, request):
        self._logged_on(request, allow_password_change=True)
        self.store.delete_session(request["headers"]["authorization"][7:].strip())
        return _answer(204)

    def change_password(self, request):
        self._logged_on(request, allow_password_change=True)
        data = _json_body(request["body"])
        current, new = data.get("current_password"), data.get("new_password")
        if not isinstance(current, str) or not isinstance(new, str):
            raise ApiError(400, "invalid_request", "send {\"current_password\": ..., \"new_password\": ...}")
        user_id = request["identity"]["user_id"]
        weakness = None
        if len(new) < MIN_PASSWORD_LENGTH or len(new) > MAX_PASSWORD_LENGTH:
            weakness = "the new password must have %d to %d characters" % (MIN_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH)
        elif user_id.lower() in new.lower():
            weakness = "the new password must not contain the user id"
        elif new == current:
            weakness = "the new password must differ from the current one"
        new_hash = None if weakness else hash_password(new)  # hashed outside the write lock
        with self.store.write() as conn:
            account = self.store.account_in(conn, user_id)
            if not self._password_matches(account, current):
                outcome = self._failed_attempt(conn, account)
            elif weakness:
                outcome = ApiError(400, "weak_password", weakness)
            else:
                self.store.update_account_in(conn, user_id, password_hash=new_hash, state="active", failed_in_row=0)
                self.store.bump_in(conn, user_id, "writes")
                outcome = None
        if outcome is not None:
            raise outcome
        return _answer(204)

    def overview(self, request):
        return _answer(200, self._overview(self._logged_on(request)))

    def register(self, request):
        account = self._logged_on(request)
        user_id = account["user_id"]
        with self.store.write() as conn:
            self.store.settle_in(conn)
            account = self.store.account_in(conn, user_id)
            status = account["registration_status"]
            if status == "not_registered":
                now = time.time()
                self.store.update_account_in(
                    conn, user_id, registration_status="in_progress", requested_at=now,
                    completes_at=now + self.faults.get("registration_delay_s"),
                    gateway_user=self.store.gateway_user_for(account["cvr"], account["uuid"]),
                    registered_certificate_der=request["certificate_der"])
                self.store.bump_in(conn, user_id, "registrations_requested", "writes")
        if status == "registered":
            raise ApiError(409, "already_registered", "the certificate is already registered; registering it again "
                                                      "is neither needed nor possible",
                           registration_status=status)
        if status == "in_progress":
            raise ApiError(409, "registration_in_progress", "the registration was requested already and completes "
                                                            "in a few minutes; refresh (GET /api/certificate)",
                           registration_status=status)
        return _answer(202, {"registration_status": "in_progress"})

    def _update(self, request, **fields):
        """Apply one field update for the logged-on account; answer the overview."""
        user_id = self._logged_on(request)["user_id"]
        with self.store.write() as conn:
            self.store.update_account_in(conn, user_id, **fields)
            self.store.bump_in(conn, user_id, "writes")
            account = self.store.account_in(conn, user_id)
        return _answer(200, self._overview(account))

    def set_se_number(self, request):
        self._logged_on(request)
        data = _json_body(request["body"])
        if "se_number" not in data:
            raise ApiError(400, "invalid_se_number", "send {\"se_number\": \"12345678\"} or null to clear it")
        value = data["se_number"]
        if value == "":
            value = None
        if value is not None and not (isinstance(value, str) and _SE_NUMBER.fullmatch(value)):
            raise ApiError(400, "invalid_se_number", "an SE-number is exactly 8 digits (or null to clear it), "
                                                     "not %r" % (value,))
        return self._update(request, se_number=value)

    def set_email(self, request):
        self._logged_on(request)
        data = _json_body(request["body"])
        if "email" not in data:
            raise ApiError(400, "invalid_email", "send {\"email\": \"name@example.dk\"} or null to clear it")
        value = data["email"]
        if value == "":
            value = None
        if value is not None and not (isinstance(value, str) and len(value) <= 254 and _EMAIL.fullmatch(value)):
            raise ApiError(400, "invalid_email", "give one e-mail address such as name@example.dk, not %r" % (value,))
        return self._update(request, email=value)

    def set_interfaces(self, request):
        account = self._logged_on(request)
        data = _json_body(request["body"])
        value = data.get("interfaces")
        if not isinstance(value, list) or not value or any(item not in INTERFACES for item in value) \
                or len(set(value)) != len(value):
            raise ApiError(400, "invalid_interfaces", "interfaces is a non-empty list of distinct values from %s, "
                                                      "not %r" % (", ".join(INTERFACES), value))
        if account["registration_status"] != "registered":
            raise ApiError(409, "not_registered", "interfaces can be chosen once the certificate is registered "
                                                  "(registration_status is %s)" % account["registration_status"],
                           registration_status=account["registration_status"])
        return self._update(request, interfaces=sorted(value))

    def gateway_credentials(self, request):
        account = self._logged_on(request)
        if account["registration_status"] != "registered":
            raise ApiError(409, "not_registered", "the gateway user and password exist once the registration is "
                                                  "complete (registration_status is %s)"
                           % account["registration_status"],
                           registration_status=account["registration_status"])
        return _answer(200, {"gateway_user": account["gateway_user"],
                             "gateway_password": account["gateway_password"]})
