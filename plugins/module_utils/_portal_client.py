# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Client of the UFST certificate portal's API (docs/portal-api.md).  Knows no Ansible.

This is the ONLY file that knows the portal's URLs, paths and JSON shapes: pointing the collection
at another portal API means changing this file alone.  Every answer is checked against the shape it
must have before anything is done with it: an answer of another shape raises ``PortalError`` with
``code="invalid_answer"`` (a portal, proxy or impostor that answers 200 with something else must not
lead to a logon, a "registered" result or a credentials file full of nulls).

``check_base_url(url)`` raises ``PortalError`` (``code="invalid_portal_url"``) unless ``url`` is an
``https://`` URL; ``PortalClient`` calls it too.

``PortalClient(session, base_url)`` wraps an ``_http.DmsSession`` that presents the OCES3
certificate.  Each method is one call of the API and returns plain data; failures raise
``PortalError`` (or a subclass) whose message names the cause and the fix and never contains a
password (request bodies are never put into messages; the portal's ``detail`` never echoes them).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ansible_collections.dkcustoms.dms.plugins.module_utils import _gateway_credentials, _http, _identity

DEFAULT_PORTAL_URLS = {
    "test": "https://secureftp.gatewaytest.skat.dk/PortalCertApp",
    "production": "https://secureftpgateway.skat.dk/PortalCertApp",
}

ACCOUNT_STATES = ("new", "active", "locked")
REGISTRATION_STATES = ("not_registered", "in_progress", "registered")
INTERFACES = ("AS4", "FTPS")
MIN_PASSWORD_LENGTH = 12

# Fields of the overview that are portal-side settings (what the module diffs).
SETTINGS = ("registration_status", "se_number", "email", "interfaces", "gateway_user")

UNLOCK_HOWTO = (
    "Only a person can unlock it: ask UFST's certificate portal support (Skattestyrelsen) to unlock "
    "user %s. Then make sure the password "
    "option holds the current portal password before running again."
)


class PortalError(Exception):
    """A portal call failed.  ``code`` is the portal's error code (or the HTTP error kind)."""

    def __init__(self, message, code=None, status=None, body=None):
        super().__init__(message)
        self.code = code
        self.status = status
        self.body = body or {}


class InvalidCredentials(PortalError):
    """401 invalid_credentials: wrong password (``attempts_remaining`` before the lockout)."""

    @property
    def attempts_remaining(self):
        return self.body.get("attempts_remaining")


class AccountLocked(PortalError):
    """423 account_locked."""


class SessionExpired(PortalError):
    """401 session_expired / invalid_session / not_logged_on: log on again."""


class PasswordChangeRequired(PortalError):
    """403 password_change_required."""


class ValidationFailed(PortalError):
    """400: a value the portal refuses (weak password, SE-number, e-mail, interfaces)."""


class NotRegistered(PortalError):
    """409 not_registered: the call needs a completed registration."""


_FIXES = {
    "not_oces3": "present an OCES3 certificate (FOCES or VOCES) from MitID Erhverv",
    "client_certificate_required": "give the certificate options (pkcs12_path, pkcs12_content or "
                                   "certificate_path)",
    "user_mismatch": "log on with the user id of the presented certificate",
    "password_change_required": "change the initial password first",
    "weak_password": "choose a password of at least %d characters that does not contain the user id "
                     "and differs from the current one" % MIN_PASSWORD_LENGTH,
    "invalid_se_number": "give se_number as exactly 8 digits, or an empty string to clear it",
    "invalid_email": "give one e-mail address such as name@example.dk",
    "invalid_interfaces": "give interfaces as a non-empty list of AS4 and/or FTPS",
    "not_registered": "wait until the registration is complete (wait: true)",
}

_ERROR_CLASSES = {
    "invalid_credentials": InvalidCredentials,
    "account_locked": AccountLocked,
    "session_expired": SessionExpired,
    "invalid_session": SessionExpired,
    "not_logged_on": SessionExpired,
    "password_change_required": PasswordChangeRequired,
    "not_registered": NotRegistered,
}


def check_base_url(url):
    """Refuse a portal URL that is not https: the logon sends the portal password."""
    parts = urlsplit(url or "")
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise PortalError("portal_url %s is not an https:// URL; nothing was sent. Fix: give the "
                          "portal's https:// address (the default of environment, or for the sandbox "
                          "the portal_url of its sandbox.json)." % _http.origin(url),
                          code="invalid_portal_url")
    return url.rstrip("/")


def _invalid(what, expected):
    return PortalError("%s: the portal answered 200 without %s. Nothing was done with the answer. "
                       "Fix: check that portal_url points at the certificate portal API (not a proxy "
                       "or another service), and retry later." % (what, expected), code="invalid_answer")


def _error(response, what):
    """The ``PortalError`` for a non-2xx answer."""
    base = _http.error_from_response(response, what)
    code = base.error_code
    cls = _ERROR_CLASSES.get(code)
    if cls is None:
        cls = ValidationFailed if response.status_code == 400 else PortalError
    message = str(base)
    fix = _FIXES.get(code)
    if fix:
        message += ". Fix: %s." % fix
    elif response.status_code == 404:
        message += ". Fix: check portal_url (it ends in /PortalCertApp) and the environment."
    return cls(message, code=code, status=response.status_code, body=base.body)


class PortalClient:
    """One logged-on (or not yet logged-on) conversation with the portal."""

    def __init__(self, session, base_url):
        self.session = session
        self.base_url = check_base_url(base_url)
        self.token = None

    # -- plumbing ----------------------------------------------------------------------------------
    def _call(self, method, path, what, json_body=None, expected=(200,), auth=True, replay_safe=True):
        headers = {"Accept": "application/json"}
        if auth and self.token:
            headers["Authorization"] = "Bearer %s" % self.token
        try:
            response = self.session.request(method, self.base_url + path, json=json_body,
                                            headers=headers, replay_safe=replay_safe)
        except _http.HTTPStatusError as exc:  # transient statuses that outlasted the retries
            raise PortalError(str(exc), code=exc.error_code, status=exc.status, body=exc.body) from None
        except _http.HttpError as exc:
            raise PortalError(str(exc), code=exc.kind) from None
        if response.status_code not in expected:
            raise _error(response, what)
        if response.status_code == 204 or not response.content:
            return {}
        try:
            body = response.json()
        except ValueError:
            raise PortalError("%s: the portal answered HTTP %d with something that is not JSON. Fix: "
                              "check portal_url points at the certificate portal API."
                              % (what, response.status_code), code="invalid_answer") from None
        if not isinstance(body, dict):
            raise _invalid(what, "a JSON object")
        return body

    # -- the calls (docs/portal-api.md) ------------------------------------------------------------
    def whoami(self):
        """Who the presented certificate is: ``user_id`` (a portal user id), ``account_state``
        (new|active|locked) ...; an answer without a known state or a user id is invalid."""
        what = "Selecting the certificate (GET /api/whoami)"
        body = self._call("GET", "/api/whoami", what, auth=False)
        if body.get("account_state") not in ACCOUNT_STATES:
            raise _invalid(what, "a known account state (%s)" % " | ".join(ACCOUNT_STATES))
        try:
            _identity.parse_portal_user_id(body.get("user_id"))
        except _identity.IdentityError:
            raise _invalid(what, "a user id of the form CVR_<cvr>_UI_<uuid>") from None
        return body

    def login(self, user_id, password):
        """Log on; returns ``password_change_required``.  Raises ``InvalidCredentials`` /
        ``AccountLocked``."""
        body = self._call("POST", "/api/session", "Logging on (POST /api/session)",
                          json_body={"user_id": user_id, "password": password}, auth=False,
                          # a failed logon that reached the portal counts towards the lockout
                          replay_safe=False)
        self.token = body.get("token")
        if not self.token:
            raise PortalError("Logging on: the portal answered without a session token. Fix: check "
                              "portal_url points at the certificate portal API.",
                              code="invalid_answer")
        return bool(body.get("password_change_required"))

    def change_password(self, current_password, new_password):
        self._call("POST", "/api/session/password", "Changing the password (POST /api/session/password)",
                   json_body={"current_password": current_password, "new_password": new_password},
                   expected=(200, 204), replay_safe=False)

    def overview(self):
        """The certificate overview: ``registration_status``, ``se_number``, ``email``,
        ``interfaces``, ``gateway_user`` (null until registered) ..."""
        what = "Reading the certificate overview (GET /api/certificate)"
        return _checked_overview(self._call("GET", "/api/certificate", what), what)

    def request_registration(self):
        """Press "Register certificate".  Returns ``(requested, registration_status)``: requested is
        False when the portal says it was registered or requested already (409; for instance by
        another host at the same moment) - which is not an error."""
        try:
            body = self._call("POST", "/api/certificate/registration",
                              "Requesting the registration (POST /api/certificate/registration)",
                              json_body={}, expected=(200, 201, 202))
        except PortalError as exc:
            if exc.status == 409 and exc.code in ("already_registered", "registration_in_progress"):
                status = exc.body.get("registration_status") or (
                    "registered" if exc.code == "already_registered" else "in_progress")
                if status not in REGISTRATION_STATES:
                    raise _invalid("Requesting the registration", "a known registration status") from None
                return False, status
            raise
        status = body.get("registration_status", "in_progress")
        if status not in REGISTRATION_STATES:
            raise _invalid("Requesting the registration", "a known registration status")
        return True, status

    def set_se_number(self, se_number):
        """``se_number`` 8 digits or None to clear; returns the new overview."""
        return self._put("/api/certificate/se-number", {"se_number": se_number or None},
                         "Updating the SE-number (PUT /api/certificate/se-number)")

    def set_email(self, email):
        return self._put("/api/certificate/email", {"email": email or None},
                         "Updating the e-mail (PUT /api/certificate/email)")

    def set_interfaces(self, interfaces):
        return self._put("/api/certificate/interfaces", {"interfaces": sorted(interfaces)},
                         "Updating the interfaces (PUT /api/certificate/interfaces)")

    def _put(self, path, body, what):
        return _checked_overview(self._call("PUT", path, what, json_body=body), what)

    def gateway_credentials(self):
        """``{"gateway_user", "gateway_password"}``; ``NotRegistered`` before registration."""
        what = "Reading the gateway credentials (GET /api/certificate/gateway-credentials)"
        body = self._call("GET", "/api/certificate/gateway-credentials", what)
        try:
            return _gateway_credentials.checked(body.get("gateway_user"), body.get("gateway_password"))
        except _gateway_credentials.CredentialsError:
            raise _invalid(what, "a gateway user and a gateway password (non-empty text)") from None

    def logout(self):
        """Log out; best effort (a session also expires by itself)."""
        if not self.token:
            return
        try:
            self._call("DELETE", "/api/session", "Logging out (DELETE /api/session)", expected=(200, 204))
        except PortalError:
            pass
        self.token = None


def _checked_overview(body, what):
    """An overview (also the answer of every settings call) must say where the registration is."""
    if body.get("registration_status") not in REGISTRATION_STATES:
        raise _invalid(what, "a known registration status (%s)" % " | ".join(REGISTRATION_STATES))
    interfaces = body.get("interfaces") or []
    if not isinstance(interfaces, list):
        raise _invalid(what, "a list of interfaces")
    body["interfaces"] = sorted(interfaces)
    return body


def settings_of(overview):
    """The portal-side settings of an overview (what the module compares and diffs)."""
    return {name: overview.get(name) for name in SETTINGS}


def password_problem(password, user_id):
    """Why the portal would refuse ``password`` as a new password, or None (checked before any
    login, so a bad choice costs no login attempt)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return "it has fewer than %d characters" % MIN_PASSWORD_LENGTH
    if user_id and user_id.lower() in password.lower():
        return "it contains the user id"
    return None


def locked_message(user_id):
    return ("The portal account %s is locked after repeated failed logons; no logon was attempted. "
            % user_id) + UNLOCK_HOWTO % user_id
