# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The portal API profile: its one reader.  Knows no Ansible.

A profile is the data that says how the certificate portal's API looks: per call (whoami, login, ...)
the method, a path template and a body template; per answer field a jmespath expression; how errors
are told apart (by status and by a jmespath expression for the error code); and how the session is
kept (a bearer token from the logon answer, or a cookie with a CSRF header).  docs/portal-api.md
describes the format.  The built-in profile (``_portal_profile_default.PROFILE``) is the model of
docs/portal-api.md; a user profile is a YAML or JSON file, or the same data as a dict.

This file and the profile are the ONLY places that know the portal's URLs, paths and JSON.

``load(path=None, content=None)`` -> ``Profile``
    Reads (``path``: YAML if PyYAML is importable, else JSON) and VALIDATES a profile before any
    request is made: every call present and known, every expression compiled, every placeholder a
    parameter of its call, the session type known.  Raises ``ProfileError`` naming each problem by
    its place (``calls.overview.answer.registration_status``), with the fix.
``default_profile()`` -> the built-in ``Profile``; ``select(path, content)`` -> the one a task names, or it.
``Profile.request(call, **params)`` -> ``Request(method, path, body)`` (templates filled in).
``Profile.read_answer(call, document)`` -> dict of the collection's field names, values checked
    (type, and state names mapped to ``ACCOUNT_STATES`` / ``REGISTRATION_STATES``); raises
    ``AnswerError`` (naming call, field and expression, never a value that could be a secret).
``Profile.read_error(status, document)`` -> ``PortalFailure(code, detail, attempts_remaining,
    registration_status)`` with ``code`` one of ``ERROR_MEANINGS`` when the profile maps it.
``Profile.session`` -> ``SessionSpec`` (``kind`` bearer|cookie, ``token(answer)``, ``headers(...)``).
"""

from __future__ import annotations

import functools
import json
import re
from collections import namedtuple
from urllib.parse import quote

try:
    import jmespath
    from jmespath.exceptions import JMESPathError
except ImportError:  # pragma: no cover - the module reports it first (_deps.require)
    jmespath = None
    JMESPathError = ValueError

try:
    import yaml
    from yaml import YAMLError
    HAS_YAML = True
except ImportError:  # pragma: no cover - a profile file is then read as JSON
    HAS_YAML = False
    YAMLError = ValueError

from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_profile_default
from ansible_collections.dkcustoms.dms.plugins.module_utils._errors import DmsError

FORMAT = 1
ENVIRONMENTS = ("test", "production")
ACCOUNT_STATES = ("new", "active", "locked")
REGISTRATION_STATES = ("not_registered", "in_progress", "registered")
SESSION_KINDS = ("bearer", "cookie")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")

# What the collection understands of a refusal; a profile maps the portal's own codes (or statuses) to
# these.  Codes it does not map pass through as the portal wrote them.
ERROR_MEANINGS = (
    "invalid_credentials", "account_locked", "session_expired", "invalid_session", "not_logged_on",
    "password_change_required", "weak_password", "user_mismatch", "not_oces3",
    "client_certificate_required", "already_registered", "registration_in_progress", "not_registered",
    "invalid_se_number", "invalid_email", "invalid_interfaces", "csrf_rejected",
)

# Field kinds: how a value read from an answer is checked and normalised.
_KINDS = {
    "text": "a non-empty string",
    "optional_text": "a string or null",
    "flag": "true or false",
    "count": "a whole number or null",
    "account_state": "one of " + ", ".join(ACCOUNT_STATES),
    "registration_status": "one of " + ", ".join(REGISTRATION_STATES),
    "list": "a list of strings (or null)",
}
_ENUMS = {"account_state": ACCOUNT_STATES, "registration_status": REGISTRATION_STATES}

Field = namedtuple("Field", ["kind", "required"])
CallSpec = namedtuple("CallSpec", ["params", "answer", "answer_required"])

_OVERVIEW = {
    "registration_status": Field("registration_status", True),
    "se_number": Field("optional_text", True),
    "email": Field("optional_text", True),
    "interfaces": Field("list", True),
    "gateway_user": Field("optional_text", True),
    "user_id": Field("optional_text", False),
    "account_state": Field("account_state", False),
    "common_name": Field("optional_text", False),
    "expiry_date": Field("optional_text", False),
}

# The calls the client makes: their template parameters and answer fields.  ``user_id`` (the user
# the client logged on as) is a parameter of every call after the logon too.
CALLS = {
    "whoami": CallSpec((), {"user_id": Field("text", True), "account_state": Field("account_state", True),
                            "common_name": Field("optional_text", False),
                            "expiry_date": Field("optional_text", False)}, True),
    "login": CallSpec(("user_id", "password"), {"password_change_required": Field("flag", False)}, False),
    "change_password": CallSpec(("user_id", "current_password", "new_password"), {}, False),
    "overview": CallSpec(("user_id",), _OVERVIEW, True),
    "request_registration": CallSpec(("user_id",),
                                     {"registration_status": Field("registration_status", False)}, False),
    "set_se_number": CallSpec(("user_id", "se_number"), _OVERVIEW, False),
    "set_email": CallSpec(("user_id", "email"), _OVERVIEW, False),
    "set_interfaces": CallSpec(("user_id", "interfaces"), _OVERVIEW, False),
    "gateway_credentials": CallSpec(("user_id",), {"gateway_user": Field("text", True),
                                                   "gateway_password": Field("text", True)}, True),
    "logout": CallSpec(("user_id",), {}, False),
}
_ERROR_FIELDS = {"attempts_remaining": Field("count", False),
                 "registration_status": Field("registration_status", False)}

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"[a-z_]+\Z")

Request = namedtuple("Request", ["method", "path", "body"])
Expression = namedtuple("Expression", ["compiled", "text", "values"])
PortalFailure = namedtuple("PortalFailure", ["code", "detail", "attempts_remaining", "registration_status"])

FIX_PROFILE = ("correct the portal API profile (docs/portal-api.md says how each part is written), or "
               "leave portal_api_profile unset for the built-in one.")


class ProfileError(DmsError, ValueError):
    """A profile that cannot be used; the message lists every problem by its place, then the fix."""

    reason = "invalid_profile"


class AnswerError(ValueError):
    """An answer that does not fit the profile (``call``, ``field``, ``expression`` say where)."""

    def __init__(self, message, call, field=None, expression=None):
        super().__init__(message)
        self.call = call
        self.field = field
        self.expression = expression


# -- loading -----------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def default_profile():
    """The built-in profile (the model of docs/portal-api.md), validated once per process."""
    return load(content=_portal_profile_default.PROFILE, source="built-in profile")


def select(path=None, content=None):
    """The profile a task names (``path``: portal_api_profile, ``content``: portal_api_profile_content),
    else the built-in one; validated (a mistake fails the task here, before any request)."""
    if path:
        return load(path=path)
    if content is not None:
        return load(content=content, source="given in portal_api_profile_content")
    return default_profile()


def load(path=None, content=None, source=None):
    """Read and validate a profile from ``path`` (a YAML or JSON file) or ``content`` (a dict)."""
    if jmespath is None:
        raise ProfileError("The portal API profile needs the Python library jmespath. Fix: install "
                           "jmespath on the host the module runs on.")
    if path is not None:
        source = source or path
        content = _read_file(path)
    source = source or "given as data"
    return Profile(_Validator(source).profile(content), source)


def _read_file(path):
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError("Cannot read the portal API profile %s (%s). Fix: give the path of a YAML or "
                           "JSON file on the host the module runs on." % (path, exc)) from None
    try:
        if HAS_YAML:
            return yaml.safe_load(text)
        return json.loads(text)
    except (ValueError, YAMLError) as exc:
        kind = "YAML" if HAS_YAML else "JSON (PyYAML is not installed on this host, so YAML cannot be read)"
        raise ProfileError("The portal API profile %s is not valid %s: %s. Fix: correct the file."
                           % (path, kind, " ".join(str(exc).split()))) from None


class _Validator:
    """Checks a profile document and builds the compiled form; collects every problem."""

    def __init__(self, source):
        self.source = source
        self.problems = []

    def problem(self, where, text):
        self.problems.append("%s: %s" % (where, text))

    def profile(self, document):
        if not isinstance(document, dict):
            raise ProfileError("The portal API profile %s is not a mapping (got %s). Fix: %s"
                               % (self.source, _type_name(document), FIX_PROFILE))
        self._known_keys("profile", document, ("profile_format", "name", "description", "base_urls",
                                               "session", "errors", "calls"))
        if document.get("profile_format", FORMAT) != FORMAT:
            self.problem("profile_format", "this collection reads format %d, not %r" % (
                FORMAT, document.get("profile_format")))
        compiled = {
            "name": document.get("name") if isinstance(document.get("name"), str) else self.source,
            "base_urls": self._base_urls(document.get("base_urls")),
            "session": self._session(document.get("session")),
            "errors": self._errors(document.get("errors")),
            "calls": self._calls(document.get("calls")),
        }
        if self.problems:
            raise ProfileError("The portal API profile %s is not valid: %s. Fix: %s"
                               % (self.source, "; ".join(self.problems), FIX_PROFILE))
        return compiled

    # -- parts -------------------------------------------------------------------------------------------
    def _known_keys(self, where, mapping, known):
        for key in mapping:
            if key not in known:
                self.problem("%s.%s" % (where, key) if where != "profile" else str(key),
                             "unknown key (known: %s)" % ", ".join(known))

    def _mapping(self, where, value, required=True):
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            self.problem(where, "missing" if value is None else "must be a mapping, not %s" % _type_name(value))
            return None
        return value

    def _text(self, where, value, required=True):
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            self.problem(where, "missing" if value is None else "must be a non-empty string")
            return None
        return value

    def _expression(self, where, text):
        if self._text(where, text) is None:
            return None
        try:
            return jmespath.compile(text)
        except JMESPathError as exc:
            self.problem(where, "%r is not a valid jmespath expression (%s)" % (text, " ".join(str(exc).split())))
            return None

    def _field(self, where, spec, kind):
        """A field: an expression, or {expression, values} (values maps the portal's words to ours)."""
        values = {}
        if isinstance(spec, dict):
            self._known_keys(where, spec, ("expression", "values"))
            values = self._mapping(where + ".values", spec.get("values"), required=False) or {}
            for portal_value, ours in values.items():
                if kind in _ENUMS and ours not in _ENUMS[kind]:
                    self.problem("%s.values.%s" % (where, portal_value), "%r is not %s" % (ours, _KINDS[kind]))
            where, spec = where + ".expression", spec.get("expression")
        compiled = self._expression(where, spec)
        return Expression(compiled, spec, values) if compiled is not None else None

    def _base_urls(self, value):
        urls = self._mapping("base_urls", value, required=False)
        if urls is None:
            return {}
        for environment, url in urls.items():
            where = "base_urls.%s" % environment
            if environment not in ENVIRONMENTS:
                self.problem(where, "unknown environment (known: %s)" % ", ".join(ENVIRONMENTS))
            elif self._text(where, url) and not url.startswith("https://"):
                self.problem(where, "must be an https:// URL")
        return {env: url.rstrip("/") for env, url in urls.items() if isinstance(url, str)}

    def _session(self, value):
        session = self._mapping("session", value)
        if session is None:
            return None
        kind = session.get("type")
        if kind not in SESSION_KINDS:
            self.problem("session.type", "missing" if kind is None else "unknown session type %r (known: %s)"
                         % (kind, ", ".join(SESSION_KINDS)))
            return None
        if kind == "bearer":
            self._known_keys("session", session, ("type", "token", "header", "scheme"))
            return SessionSpec(kind, token=self._field("session.token", session.get("token"), "text"),
                               header=self._text("session.header", session.get("header", "Authorization")),
                               scheme=session.get("scheme", "Bearer"))
        self._known_keys("session", session, ("type", "cookie", "csrf"))
        csrf = self._mapping("session.csrf", session.get("csrf"), required=False)
        spec = SessionSpec(kind, cookie=self._text("session.cookie", session.get("cookie")))
        return spec._replace(**self._csrf(csrf)) if csrf else spec

    def _csrf(self, csrf):
        """The CSRF parts of a cookie session: the header, and the cookie or logon-answer field of the token."""
        self._known_keys("session.csrf", csrf, ("header", "cookie", "answer"))
        parts = {"csrf_header": self._text("session.csrf.header", csrf.get("header"))}
        if ("cookie" in csrf) == ("answer" in csrf):
            self.problem("session.csrf", "give exactly one of cookie (the cookie that carries the CSRF "
                                         "token) or answer (its jmespath expression on the logon answer)")
        elif "cookie" in csrf:
            parts["csrf_cookie"] = self._text("session.csrf.cookie", csrf.get("cookie"))
        else:
            parts["csrf_answer"] = self._field("session.csrf.answer", csrf.get("answer"), "text")
        return parts

    def _errors(self, value):
        errors = self._mapping("errors", value)
        if errors is None:
            return None
        self._known_keys("errors", errors, ("code", "detail", "codes", "statuses") + tuple(_ERROR_FIELDS))
        compiled = {"code": self._field("errors.code", errors.get("code"), "optional_text"),
                    "detail": (self._field("errors.detail", errors["detail"], "optional_text")
                               if "detail" in errors else None),
                    "fields": {}}
        for name, field in _ERROR_FIELDS.items():
            if name in errors:
                compiled["fields"][name] = self._field("errors." + name, errors[name], field.kind)
        codes = self._mapping("errors.codes", errors.get("codes"), required=False) or {}
        for portal_code, meaning in codes.items():
            if meaning not in ERROR_MEANINGS:
                self.problem("errors.codes.%s" % portal_code, "unknown meaning %r (known: %s)"
                             % (meaning, ", ".join(ERROR_MEANINGS)))
        compiled["codes"] = {str(code): meaning for code, meaning in codes.items()}
        statuses = self._mapping("errors.statuses", errors.get("statuses"), required=False) or {}
        compiled["statuses"] = {}
        for status, meaning in statuses.items():
            where = "errors.statuses.%s" % status
            if not str(status).isdigit() or not 400 <= int(status) <= 599:
                self.problem(where, "not an HTTP error status (400-599)")
            elif meaning not in ERROR_MEANINGS:
                self.problem(where, "unknown meaning %r (known: %s)" % (meaning, ", ".join(ERROR_MEANINGS)))
            else:
                compiled["statuses"][int(status)] = meaning
        return compiled

    def _calls(self, value):
        calls = self._mapping("calls", value)
        if calls is None:
            return {}
        for name in calls:
            if name not in CALLS:
                self.problem("calls.%s" % name, "unknown call (the calls are %s)" % ", ".join(CALLS))
        compiled = {}
        for name, spec in CALLS.items():
            if name not in calls:
                self.problem("calls.%s" % name, "missing call")
                continue
            compiled[name] = self._call(name, spec, calls[name])
        return compiled

    def _call(self, name, spec, value):
        where = "calls.%s" % name
        call = self._mapping(where, value)
        if call is None:
            return None
        self._known_keys(where, call, ("method", "path", "body", "answer"))
        method = call.get("method")
        if method not in METHODS:
            self.problem(where + ".method", "missing" if method is None else "%r is not one of %s"
                         % (method, ", ".join(METHODS)))
        path = self._text(where + ".path", call.get("path"))
        if path and not path.startswith("/"):
            self.problem(where + ".path", "must start with / (it is appended to portal_url)")
        if path:
            self._placeholders(where + ".path", path, spec.params)
        if call.get("body") is not None:
            self._placeholders(where + ".body", call["body"], spec.params)
        return {"method": method, "path": path, "body": call.get("body"),
                "answer": self._answer(where + ".answer", spec, call.get("answer"))}

    def _placeholders(self, where, template, params):
        for text in _strings(template):
            for placeholder in _PLACEHOLDER.findall(text):
                if placeholder not in params:
                    self.problem(where, "unknown placeholder {%s} (this call's are %s)"
                                 % (placeholder, ", ".join("{%s}" % p for p in params) or "none"))
            if "{" in _PLACEHOLDER.sub("", text) or "}" in _PLACEHOLDER.sub("", text):
                self.problem(where, "unbalanced { or } in %r" % text)

    def _answer(self, where, spec, value):
        if value is None and not spec.answer_required:
            return None
        answer = self._mapping(where, value)
        if answer is None:
            return None
        for name in answer:
            if name not in spec.answer:
                self.problem("%s.%s" % (where, name), "unknown field (known: %s)" % ", ".join(spec.answer))
        compiled = {}
        for name, field in spec.answer.items():
            if name in answer:
                compiled[name] = self._field("%s.%s" % (where, name), answer[name], field.kind)
            elif field.required:
                self.problem("%s.%s" % (where, name), "missing field (a jmespath expression)")
        return compiled


def _strings(template):
    """Every string in a body template (keys are fixed names, values may hold placeholders)."""
    if isinstance(template, str):
        yield template
    elif isinstance(template, (dict, list)):
        for item in template.values() if isinstance(template, dict) else template:
            yield from _strings(item)


def _type_name(value):
    return {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


# -- the session -------------------------------------------------------------------------------------
_SESSION_PARTS = ("kind", "token_field", "header", "scheme", "cookie", "csrf_header", "csrf_cookie", "csrf_answer")


class SessionSpec(namedtuple("SessionSpec", _SESSION_PARTS)):
    """How the portal keeps a session: ``bearer`` (a token from the logon answer, sent in a header)
    or ``cookie`` (a cookie the logon sets; state-changing calls may need a CSRF header)."""

    __slots__ = ()

    def __new__(cls, kind, token=None, header=None, scheme=None, cookie=None):
        return super().__new__(cls, kind, token, header, scheme, cookie, None, None, None)

    @property
    def token_expression(self):
        return self.token_field.text if self.token_field else None

    def token(self, answer):
        """The bearer token in a logon answer (None when it has none)."""
        return _search(self.token_field, answer) if self.token_field else None

    def csrf_from_answer(self, answer):
        return _search(self.csrf_answer, answer) if self.csrf_answer else None

    def headers(self, method, token=None, csrf=None):
        """Headers that carry the session on a call with ``method``."""
        headers = {}
        if self.kind == "bearer" and token:
            headers[self.header] = "%s %s" % (self.scheme, token) if self.scheme else token
        if self.csrf_header and csrf and method in STATE_CHANGING:
            headers[self.csrf_header] = csrf
        return headers


def _search(field, document):
    """The value of ``field`` (an ``Expression``) in ``document``, mapped through its ``values``."""
    value = field.compiled.search(document)
    for key in (value, str(value)) if field.values and value is not None else ():
        if key in field.values:
            return field.values[key]
    return value


# -- using a profile ---------------------------------------------------------------------------------
class Profile:
    """A validated profile (build with ``load`` or ``default_profile``)."""

    def __init__(self, compiled, source):
        self.source = source
        self.name = compiled["name"]
        self.base_urls = compiled["base_urls"]
        self.session = compiled["session"]
        self._errors = compiled["errors"]
        self._calls = compiled["calls"]

    def describe(self, call):
        """``METHOD /path`` of a call (placeholders unfilled), for messages."""
        spec = self._calls[call]
        return "%s %s" % (spec["method"], spec["path"])

    def has_answer(self, call):
        return self._calls[call]["answer"] is not None

    def request(self, call, **params):
        """The request of ``call`` with its templates filled in from ``params``."""
        spec = self._calls[call]
        path = _PLACEHOLDER.sub(lambda match: quote(str(params[match.group(1)]), safe=""), spec["path"])
        body = _fill(spec["body"], params) if spec["body"] is not None else None
        return Request(spec["method"], path, body)

    def read_answer(self, call, document):
        """The collection's fields of ``call``'s answer ``document`` (parsed JSON, or None)."""
        answer = self._calls[call]["answer"] or {}
        expected = CALLS[call].answer
        return {name: self._checked(call, name, field, expected[name], document) for name, field in answer.items()}

    def _checked(self, call, name, field, expected, document):
        ok, value = _normalised(_search(field, document), expected.kind)
        if ok and (value is not None or not expected.required or expected.kind in ("optional_text", "list")):
            return value
        # Only state names are shown: other fields may hold a secret (the gateway password).
        shown = " %r" % (value,) if expected.kind in _ENUMS and isinstance(value, str) else ""
        raise AnswerError(
            "the answer does not fit the portal API profile %s: field %s (expression %s) gave %s%s, not %s"
            % (self.name, name, field.text, _type_name(value), shown, _KINDS[expected.kind]),
            call, name, field.text)

    def read_error(self, status, document):
        """What an error answer means: ``PortalFailure`` with ``code`` mapped to ``ERROR_MEANINGS`` by the
        profile's codes (first) or statuses (when the answer has no code the collection knows)."""
        errors = self._errors
        code = _search(errors["code"], document)
        code = code if isinstance(code, str) and code else None
        detail = _search(errors["detail"], document) if errors["detail"] else None
        detail = " ".join(detail.split())[:300] if isinstance(detail, str) else None
        meaning = errors["codes"].get(code) if code else None
        if meaning is None and code not in ERROR_MEANINGS:
            meaning = errors["statuses"].get(status)
        extra = {}
        for name, field in errors["fields"].items():
            ok, value = _normalised(_search(field, document), _ERROR_FIELDS[name].kind)
            # A state word the collection does not know is kept (text only), for the caller to refuse.
            extra[name] = value if ok or (_ERROR_FIELDS[name].kind in _ENUMS and isinstance(value, str)) else None
        return PortalFailure(meaning or code, detail, extra.get("attempts_remaining"),
                             extra.get("registration_status"))


def _normalised(value, kind):
    """(fits, value) for a value read from an answer."""
    if kind == "text":
        return isinstance(value, str) and bool(value), value
    if kind == "optional_text":
        if value == "":
            value = None
        return value is None or isinstance(value, str), value
    if kind == "flag":
        return value is None or isinstance(value, bool), value
    if kind == "count":
        return value is None or (isinstance(value, int) and not isinstance(value, bool)), value
    if kind in _ENUMS:
        return value is None or value in _ENUMS[kind], value
    if kind == "list":
        if value is None:
            return True, []
        return isinstance(value, list) and all(isinstance(item, str) for item in value), value
    raise ValueError("unknown field kind %s" % kind)


def _fill(template, params):
    """A body template with its placeholders replaced: a string that is exactly one placeholder takes
    the parameter's value as it is (null, a list ...); placeholders inside text are filled as text."""
    if isinstance(template, dict):
        return {key: _fill(value, params) for key, value in template.items()}
    if isinstance(template, list):
        return [_fill(item, params) for item in template]
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template)
        if whole:
            return params[whole.group(1)]
        return _PLACEHOLDER.sub(lambda match: "" if params[match.group(1)] is None
                                else str(params[match.group(1)]), template)
    return template
