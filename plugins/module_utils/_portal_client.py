# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Client of the UFST certificate portal.  Knows no Ansible.

It knows WHAT the portal does - the calls that are the guide's browser steps, what a refusal means,
the rules a new password must follow - and nothing of HOW its API looks: methods, paths, request
bodies, answer fields, error bodies and the session come from a portal API profile
(``_portal_profile``, the one reader of it; the built-in profile is the model of docs/portal-api.md).

Every answer is checked before anything is done with it - the shape the profile says it has, then
what the collection needs of it (a user id of the form ``CVR_<cvr>_UI_<uuid>``, a known account and
registration state, a gateway user and password that are text): an answer that fails raises
``PortalError`` with ``code="invalid_answer"`` (a portal, proxy or impostor that answers 200 with
something else must not lead to a logon, a "registered" result or a credentials file full of nulls).

``check_base_url(url)`` raises ``PortalError`` (``code="invalid_portal_url"``) unless ``url`` is an
``https://`` URL; ``PortalClient`` calls it too.

``PortalClient(session, base_url, profile=None)`` wraps an ``_http.DmsSession`` that presents the
OCES3 certificate; ``profile`` is a ``_portal_profile.Profile`` (default: the built-in one).  Each
method is one call and returns plain data in the collection's own field names (checked against what
the profile says the answer holds); failures raise ``PortalError`` (or a subclass) whose message names
the cause and the fix and never contains a password (request bodies and answer values that may be
secret are never put into messages).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ansible_collections.dkcustoms.dms.plugins.module_utils import (
    _gateway_credentials, _http, _identity, _portal_profile)

ACCOUNT_STATES = _portal_profile.ACCOUNT_STATES
REGISTRATION_STATES = _portal_profile.REGISTRATION_STATES
INTERFACES = ("AS4", "FTPS")
MIN_PASSWORD_LENGTH = 12

# Fields of the overview that are portal-side settings (what the module diffs).
SETTINGS = ("registration_status", "se_number", "email", "interfaces", "gateway_user")

UNLOCK_HOWTO = (
    "Only a person can unlock it: ask UFST's certificate portal support (Skattestyrelsen) to unlock "
    "user %s. Then make sure the password "
    "option holds the current portal password before running again."
)

# The guide's step each call is (for messages).
_STEPS = {
    "whoami": "Selecting the certificate",
    "login": "Logging on",
    "change_password": "Changing the password",
    "overview": "Reading the certificate overview",
    "request_registration": "Requesting the registration",
    "set_se_number": "Updating the SE-number",
    "set_email": "Updating the e-mail",
    "set_interfaces": "Updating the interfaces",
    "gateway_credentials": "Reading the gateway credentials",
    "logout": "Logging out",
}
# Calls made before there is a session: they carry none.
_WITHOUT_SESSION = ("whoami", "login")
FIX_ANSWER = ("check that portal_url is the certificate portal and that the portal API profile fits its "
              "API (docs/portal-api.md)")


class PortalError(Exception):
    """A portal call failed.  ``code`` is what the refusal means (``_portal_profile.ERROR_MEANINGS``
    where the profile maps it, else the portal's own code or the HTTP error kind); ``body`` holds what
    the profile read from the error answer (``attempts_remaining``, ``registration_status``)."""

    def __init__(self, message, code=None, status=None, body=None):
        super().__init__(message)
        self.code = code
        self.status = status
        self.body = body or {}


class InvalidCredentials(PortalError):
    """invalid_credentials: wrong password (``attempts_remaining`` before the lockout)."""

    @property
    def attempts_remaining(self):
        return self.body.get("attempts_remaining")


class AccountLocked(PortalError):
    """account_locked."""


class SessionExpired(PortalError):
    """session_expired / invalid_session / not_logged_on: log on again."""


class PasswordChangeRequired(PortalError):
    """password_change_required."""


class ValidationFailed(PortalError):
    """A value the portal refuses (weak password, SE-number, e-mail, interfaces; or any HTTP 400)."""


class NotRegistered(PortalError):
    """not_registered: the call needs a completed registration."""


_FIXES = {
    "not_oces3": "present an OCES3 certificate (FOCES or VOCES) from MitID Erhverv",
    "client_certificate_required": "give the certificate options (certificate_path or "
                                   "certificate_content)",
    "user_mismatch": "log on with the user id of the presented certificate",
    "password_change_required": "change the initial password first",
    "weak_password": "choose a password of at least %d characters that does not contain the user id "
                     "and differs from the current one" % MIN_PASSWORD_LENGTH,
    "invalid_se_number": "give se_number as exactly 8 digits, or an empty string to clear it",
    "invalid_email": "give one e-mail address such as name@example.dk",
    "invalid_interfaces": "give interfaces as a non-empty list of AS4 and/or FTPS",
    "not_registered": "wait until the registration is complete (wait: true)",
    "csrf_rejected": "the portal refused the CSRF token: check session.csrf of the portal API profile (the "
                     "header name, and the cookie or logon-answer field the token comes from)",
}

_ERROR_CLASSES = {
    "invalid_credentials": InvalidCredentials,
    "account_locked": AccountLocked,
    "session_expired": SessionExpired,
    "invalid_session": SessionExpired,
    "not_logged_on": SessionExpired,
    "password_change_required": PasswordChangeRequired,
    "not_registered": NotRegistered,
    "weak_password": ValidationFailed,
    "invalid_se_number": ValidationFailed,
    "invalid_email": ValidationFailed,
    "invalid_interfaces": ValidationFailed,
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
    return PortalError("%s: the portal answered without %s. Nothing was done with the answer. Fix: %s, "
                       "and retry later." % (what, expected, FIX_ANSWER), code="invalid_answer")


def _json_of(response):
    """The parsed JSON of an answer, or None (empty or not JSON)."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


class PortalClient:
    """One logged-on (or not yet logged-on) conversation with the portal."""

    def __init__(self, session, base_url, profile=None):
        self.session = session
        self.base_url = check_base_url(base_url)
        self.profile = profile or _portal_profile.default_profile()
        self.user_id = None
        self.token = None        # the bearer token (bearer sessions)
        self.logged_on = False
        self._csrf = None        # a CSRF token read from the logon answer (cookie sessions)

    # -- plumbing ----------------------------------------------------------------------------------
    def _what(self, call):
        return "%s (%s)" % (_STEPS[call], self.profile.describe(call))

    def _session_headers(self, method):
        spec = self.profile.session
        csrf = self.session.cookies.get(spec.csrf_cookie) if spec.csrf_cookie else self._csrf
        return spec.headers(method, token=self.token, csrf=csrf)

    def _send(self, call, replay_safe=True, **params):
        """Send ``call``; the parsed JSON of its 2xx answer (None when it has none)."""
        what = self._what(call)
        request = self.profile.request(call, user_id=self.user_id or "", **params)
        headers = {"Accept": "application/json"}
        if call not in _WITHOUT_SESSION:
            headers.update(self._session_headers(request.method))
        try:
            response = self.session.request(request.method, self.base_url + request.path, json=request.body,
                                            headers=headers, replay_safe=replay_safe)
        except _http.HTTPStatusError as exc:  # transient statuses that outlasted the retries
            failure = self.profile.read_error(exc.status, exc.body or None)
            raise PortalError(str(exc), code=failure.code or exc.error_code, status=exc.status) from None
        except _http.HttpError as exc:
            raise PortalError(str(exc), code=exc.kind) from None
        if not 200 <= response.status_code < 300:
            raise self._error(response, what)
        document = _json_of(response)
        if document is None and response.content and self.profile.has_answer(call):
            raise PortalError("%s: the portal answered HTTP %d with something that is not JSON. Fix: %s."
                              % (what, response.status_code, FIX_ANSWER), code="invalid_answer")
        return document

    def _read(self, call, document):
        try:
            return self.profile.read_answer(call, document)
        except _portal_profile.AnswerError as exc:
            raise PortalError("%s: %s. Fix: %s." % (self._what(call), exc, FIX_ANSWER),
                              code="invalid_answer") from None

    def _call(self, call, replay_safe=True, **params):
        return self._read(call, self._send(call, replay_safe=replay_safe, **params))

    def _error(self, response, what):
        """The ``PortalError`` for a non-2xx answer, read through the profile."""
        status = response.status_code
        failure = self.profile.read_error(status, _json_of(response))
        message = "%s at %s answered HTTP %d" % (what, _http.origin(response.url), status)
        if failure.code:
            message += " %s" % failure.code
        if failure.detail:
            message += ": %s" % failure.detail
        fix = _FIXES.get(failure.code)
        if fix:
            message += ". Fix: %s." % fix
        elif status == 404:
            message += (". Fix: check portal_url and the environment, and that the paths of the portal API "
                        "profile are the portal's.")
        cls = _ERROR_CLASSES.get(failure.code) or (ValidationFailed if status == 400 else PortalError)
        body = {"attempts_remaining": failure.attempts_remaining,
                "registration_status": failure.registration_status}
        return cls(message, code=failure.code, status=status, body=body)

    def _start_session(self, answer):
        """Keep what the logon answer (or its cookies) says the session is."""
        spec = self.profile.session
        if spec.kind == "bearer":
            token = spec.token(answer)
            if not isinstance(token, str) or not token:
                raise PortalError("Logging on: the portal answered without a session token (expected at %s "
                                  "of the answer). Fix: %s." % (spec.token_expression, FIX_ANSWER),
                                  code="invalid_answer")
            self.token = token
        else:
            if self.session.cookies.get(spec.cookie) is None:
                raise PortalError("Logging on: the portal set no session cookie %s. Fix: %s."
                                  % (spec.cookie, FIX_ANSWER), code="invalid_answer")
            if spec.csrf_answer:
                self._csrf = spec.csrf_from_answer(answer)
                if not isinstance(self._csrf, str) or not self._csrf:
                    raise PortalError("Logging on: the logon answer holds no CSRF token (expected at %s). "
                                      "Fix: %s." % (spec.csrf_answer.text, FIX_ANSWER), code="invalid_answer")
            elif spec.csrf_cookie and self.session.cookies.get(spec.csrf_cookie) is None:
                raise PortalError("Logging on: the portal set no CSRF cookie %s. Fix: %s."
                                  % (spec.csrf_cookie, FIX_ANSWER), code="invalid_answer")
        self.logged_on = True

    def _end_session(self):
        self.token = None
        self._csrf = None
        self.logged_on = False
        if self.profile.session.kind == "cookie":
            self.session.cookies.clear()

    # -- the calls (docs/portal-api.md) ------------------------------------------------------------
    def whoami(self):
        """Who the presented certificate is: ``user_id`` (a portal user id), ``account_state``
        (new|active|locked) ...; an answer without a known state or a user id is invalid."""
        answer = self._call("whoami")
        try:
            _identity.parse_portal_user_id(answer["user_id"])
        except _identity.IdentityError:
            raise _invalid(self._what("whoami"), "a user id of the form CVR_<cvr>_UI_<uuid>") from None
        return answer

    def login(self, user_id, password):
        """Log on; returns ``password_change_required``.  Raises ``InvalidCredentials`` /
        ``AccountLocked``."""
        self.user_id = user_id
        # A failed logon that reached the portal counts towards the lockout: never sent twice.
        document = self._send("login", replay_safe=False, password=password)
        answer = self._read("login", document)
        self._start_session(document)
        return bool(answer.get("password_change_required"))

    def change_password(self, current_password, new_password):
        self._call("change_password", replay_safe=False, current_password=current_password,
                   new_password=new_password)

    def overview(self):
        """The certificate overview: ``registration_status``, ``se_number``, ``email``,
        ``interfaces``, ``gateway_user`` (null until registered) ..."""
        return _sorted_interfaces(self._call("overview"))

    def request_registration(self):
        """Press "Register certificate".  Returns ``(requested, registration_status)``: requested is
        False when the portal says it was registered or requested already (for instance by another
        host at the same moment) - which is not an error."""
        try:
            answer = self._call("request_registration")
        except PortalError as exc:
            if exc.code in ("already_registered", "registration_in_progress"):
                status = exc.body.get("registration_status") or (
                    "registered" if exc.code == "already_registered" else "in_progress")
                if status not in REGISTRATION_STATES:
                    raise _invalid(self._what("request_registration"),
                                   "a known registration status") from None
                return False, status
            raise
        return True, answer.get("registration_status") or "in_progress"

    def set_se_number(self, se_number):
        """``se_number`` 8 digits or None to clear; returns the new overview."""
        return self._update("set_se_number", se_number=se_number or None)

    def set_email(self, email):
        return self._update("set_email", email=email or None)

    def set_interfaces(self, interfaces):
        return self._update("set_interfaces", interfaces=sorted(interfaces))

    def _update(self, call, **params):
        answer = self._call(call, **params)
        if not self.profile.has_answer(call):  # the portal answers with nothing useful: read it back
            return self.overview()
        return _sorted_interfaces(answer)

    def gateway_credentials(self):
        """``{"gateway_user", "gateway_password"}``; ``NotRegistered`` before registration."""
        answer = self._call("gateway_credentials")
        try:
            return _gateway_credentials.checked(answer["gateway_user"], answer["gateway_password"])
        except _gateway_credentials.CredentialsError:
            raise _invalid(self._what("gateway_credentials"),
                           "a gateway user and a gateway password (non-empty text)") from None

    def logout(self):
        """Log out; best effort (a session also expires by itself)."""
        if not self.logged_on:
            return
        try:
            self._call("logout")
        except PortalError:
            pass
        self._end_session()


def _sorted_interfaces(answer):
    answer["interfaces"] = sorted(answer.get("interfaces") or [])
    return answer


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
