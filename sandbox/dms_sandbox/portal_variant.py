"""A second shape of the portal API, a TEST shape (`dms-sandbox serve --portal-api variant`).

It exists to prove that the collection knows the portal's API only through its profile: the same portal,
reached through other paths, with camelCase fields inside a `{"data": ...}` envelope, other state names,
a cookie session guarded by an XSRF token (as browser applications of this kind usually work), and error
bodies of another form. docs/portal-api.md describes it beside the default shape.

`PortalVariant(portal).handle(...)` translates each request into a call of `portal.Portal` and its answer
back. Every rule (lockout, forced password change, registration, validation) lives once, in portal.py;
this layer only renames.

Session: the logon answer sets two cookies, `SESSION` (the session, HttpOnly) and `XSRF-TOKEN` (readable
by the page's script). Every state-changing call (POST, PUT, PATCH, DELETE; not the logon itself) must
send the XSRF token back in the `X-XSRF-TOKEN` header, or it is answered `403 CSRF_TOKEN_INVALID`. The
token is derived from the session, so it cannot be guessed without the session cookie.
"""

import hashlib
import json
from http.cookies import CookieError, SimpleCookie

from dms_sandbox import portal as portal_module

BASE_PATH = portal_module.BASE_PATH
API = "/rest/v2"
SESSION_COOKIE = "SESSION"
XSRF_COOKIE = "XSRF-TOKEN"
XSRF_HEADER = "x-xsrf-token"
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")

ACCOUNT_STATES = {"new": "NEW", "active": "ACTIVE", "locked": "LOCKED"}
REGISTRATION_STATES = {"not_registered": "NOT_REGISTERED", "in_progress": "PENDING", "registered": "REGISTERED"}

# The default shape's error codes and their names in this shape.
ERROR_CODES = {
    "invalid_credentials": "BAD_CREDENTIALS",
    "account_locked": "ACCOUNT_LOCKED",
    "session_expired": "SESSION_EXPIRED",
    "invalid_session": "SESSION_INVALID",
    "not_logged_on": "UNAUTHENTICATED",
    "password_change_required": "PASSWORD_EXPIRED",
    "weak_password": "PASSWORD_POLICY",
    "user_mismatch": "USER_MISMATCH",
    "not_oces3": "CERTIFICATE_NOT_OCES3",
    "client_certificate_required": "CERTIFICATE_REQUIRED",
    "already_registered": "ALREADY_REGISTERED",
    "registration_in_progress": "REGISTRATION_PENDING",
    "not_registered": "CERTIFICATE_NOT_REGISTERED",
    "invalid_se_number": "SE_NUMBER_INVALID",
    "invalid_email": "EMAIL_INVALID",
    "invalid_interfaces": "INTERFACES_INVALID",
    "invalid_json": "BAD_REQUEST",
    "invalid_request": "BAD_REQUEST",
    "not_found": "NOT_FOUND",
    "method_not_allowed": "METHOD_NOT_ALLOWED",
    "maintenance": "MAINTENANCE",
    "rate_limited": "TOO_MANY_REQUESTS",
    "service_unavailable": "SERVICE_UNAVAILABLE",
    "internal_error": "INTERNAL_ERROR",
}
CSRF_REJECTED = "CSRF_TOKEN_INVALID"

# PATCH /rest/v2/certificate: the one field it carries -> (default path, default field).
_SETTINGS = {
    "seNumber": ("/api/certificate/se-number", "se_number"),
    "contactEmail": ("/api/certificate/email", "email"),
    "interfaces": ("/api/certificate/interfaces", "interfaces"),
}


def xsrf_token(session_token):
    """The XSRF token bound to a session (the sandbox keeps no extra state for it)."""
    return hashlib.sha256(b"xsrf|" + session_token.encode("utf-8")).hexdigest()[:40]


def error_document(code, detail, **extra):
    """An error body of this shape: {"errors": [{"code", "message", "meta"?}]}."""
    entry = {"code": ERROR_CODES.get(code, code.upper()), "message": detail}
    meta = {}
    if "attempts_remaining" in extra:
        meta["attemptsRemaining"] = extra["attempts_remaining"]
    if "registration_status" in extra:
        meta["registrationStatus"] = REGISTRATION_STATES.get(extra["registration_status"],
                                                             extra["registration_status"])
    if meta:
        entry["meta"] = meta
    return {"errors": [entry]}


def _answer(status, document=None, cookies=()):
    headers = {"Cache-Control": "no-store"}
    if cookies:
        headers["Set-Cookie"] = list(cookies)
    if document is None:
        return status, headers, b""
    headers["Content-Type"] = "application/json"
    return status, headers, json.dumps(document).encode("utf-8")


def _error(status, code, detail):
    return _answer(status, {"errors": [{"code": code, "message": detail}]})


def _cookie(name, value, max_age=None, http_only=True):
    text = "%s=%s; Path=%s; Secure; SameSite=Strict" % (name, value, BASE_PATH)
    if http_only:
        text += "; HttpOnly"
    if max_age is not None:
        text += "; Max-Age=%d" % max_age
    return text


def _cookies_of(headers):
    jar = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def _renamed(body, names):
    """The request body with this shape's field names turned into the default shape's (None: not a JSON
    object, so it is forwarded as it is and the portal answers with its own complaint)."""
    try:
        data = json.loads(body.decode("utf-8")) if body else {}
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return {names[key]: value for key, value in data.items() if key in names}


def _identity(document):
    return {
        "userId": document["user_id"],
        "commonName": document["common_name"],
        "expiryDate": document["expiry_date"],
        "legalIdentifier": document["legal_identifier"],
        "account": document["account"],
        "accountState": ACCOUNT_STATES[document["account_state"]],
    }


def _overview(document):
    translated = _identity(document)
    translated.update({
        "certificateType": document["type"],
        "registration": {"status": REGISTRATION_STATES[document["registration_status"]],
                         "text": document["status_text"]},
        "seNumber": document["se_number"],
        "contactEmail": document["email"],
        "interfaces": document["interfaces"],
        "gatewayUser": document["gateway_user"],
    })
    return translated


class PortalVariant:
    """The variant shape in front of one `portal.Portal`."""

    def __init__(self, portal):
        self.portal = portal
        self.routes = {
            API + "/me": {"GET": self.whoami},
            API + "/auth/logon": {"POST": self.logon},
            API + "/auth/password": {"POST": self.change_password},
            API + "/auth/logoff": {"POST": self.logoff},
            API + "/certificate": {"GET": self.overview, "PATCH": self.update},
            API + "/certificate/registration": {"POST": self.register},
            API + "/certificate/credentials": {"GET": self.credentials},
        }

    @staticmethod
    def error_document(code, detail):
        """Body of an answer the server makes itself (injected faults), in this shape."""
        return error_document(code, detail)

    # -- dispatch -------------------------------------------------------------------------------------------
    def handle(self, method, path, headers, body, peer_certificate_der):
        path = path.split("?", 1)[0]
        local = path[len(BASE_PATH):].rstrip("/") if path.startswith(BASE_PATH + "/") else None
        methods = self.routes.get(local)
        if methods is None:
            return _error(404, "NOT_FOUND", "no such page %s (this portal's API lives under %s%s/)"
                          % (path, BASE_PATH, API))
        if method not in methods:
            return _error(405, "METHOD_NOT_ALLOWED", "%s takes %s" % (path, ", ".join(sorted(methods))))
        headers = {name.lower(): value for name, value in headers.items()}
        session = _cookies_of(headers).get(SESSION_COOKIE)
        if method in STATE_CHANGING and session and methods[method] != self.logon:
            if headers.get(XSRF_HEADER) != xsrf_token(session):
                return _error(403, CSRF_REJECTED, "the %s header must carry the %s cookie's value, as set at "
                                                  "logon" % ("X-XSRF-TOKEN", XSRF_COOKIE))
        request = {"session": session, "body": body, "der": peer_certificate_der}
        return methods[method](request)

    def _call(self, request, method, path, body=b""):
        """One call of the default portal: (status, document or None, raw answer)."""
        headers = {"Authorization": "Bearer " + request["session"]} if request["session"] else {}
        if isinstance(body, dict):
            body = json.dumps(body).encode("utf-8")
        status, answer_headers, payload = self.portal.handle(method, BASE_PATH + path, headers, body,
                                                             request["der"])
        document = json.loads(payload.decode("utf-8")) if payload else None
        return status, document, (status, answer_headers, payload)

    def _translate(self, request, method, path, body=b"", success=None, cookies=()):
        status, document, raw = self._call(request, method, path, body)
        if status >= 400:
            return self._translate_error(raw, status, document)
        if document is None or success is None:
            return _answer(status, None, cookies)
        return _answer(status, {"data": success(document)}, cookies)

    # -- the calls ----------------------------------------------------------------------------------------
    def whoami(self, request):
        return self._translate(request, "GET", "/api/whoami", success=_identity)

    def logon(self, request):
        body = _renamed(request["body"], {"username": "user_id", "password": "password"})
        status, document, raw = self._call(dict(request, session=None), "POST", "/api/session",
                                           request["body"] if body is None else body)
        if status != 200:
            return self._translate_error(raw, status, document)
        token = document["token"]
        cookies = (_cookie(SESSION_COOKIE, token), _cookie(XSRF_COOKIE, xsrf_token(token), http_only=False))
        # The XSRF token is in the answer too, for pages that keep it in memory rather than read the cookie.
        return _answer(200, {"data": {"mustChangePassword": document["password_change_required"],
                                      "sessionTimeout": document["expires_in"], "csrfToken": xsrf_token(token)}},
                       cookies)

    @staticmethod
    def _translate_error(raw, status, document):
        if not isinstance(document, dict) or "error" not in document:
            return raw
        extra = {key: value for key, value in document.items() if key not in ("error", "detail")}
        return _answer(status, error_document(document["error"], document.get("detail", ""), **extra))

    def change_password(self, request):
        body = _renamed(request["body"], {"oldPassword": "current_password", "newPassword": "new_password"})
        return self._translate(request, "POST", "/api/session/password", request["body"] if body is None else body)

    def logoff(self, request):
        expired = (_cookie(SESSION_COOKIE, "", max_age=0), _cookie(XSRF_COOKIE, "", max_age=0, http_only=False))
        return self._translate(request, "DELETE", "/api/session", cookies=expired)

    def overview(self, request):
        return self._translate(request, "GET", "/api/certificate", success=_overview)

    def register(self, request):
        return self._translate(request, "POST", "/api/certificate/registration", {},
                               success=lambda document: {"registration": {
                                   "status": REGISTRATION_STATES[document["registration_status"]]}})

    def update(self, request):
        try:
            data = json.loads(request["body"].decode("utf-8")) if request["body"] else None
        except (UnicodeDecodeError, ValueError):
            data = None
        fields = [name for name in _SETTINGS if isinstance(data, dict) and name in data]
        if not isinstance(data, dict) or len(fields) != 1 or len(data) != 1:
            return _error(400, "BAD_REQUEST", "send exactly one of %s, e.g. {\"seNumber\": \"12345678\"}"
                          % ", ".join(sorted(_SETTINGS)))
        path, name = _SETTINGS[fields[0]]
        return self._translate(request, "PUT", path, {name: data[fields[0]]}, success=_overview)

    def credentials(self, request):
        return self._translate(request, "GET", "/api/certificate/gateway-credentials",
                               success=lambda document: {"username": document["gateway_user"],
                                                         "password": document["gateway_password"]})
