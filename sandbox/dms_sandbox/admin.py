"""The admin API (plain HTTP on its own loopback port): what tests and people use to inspect and steer.

Every call needs `Authorization: Bearer <admin_token>` (a random token in sandbox.json, which only the
sandbox's user can read) and a `Host` header naming the admin port on 127.0.0.1 or localhost: another
local user cannot steer the sandbox, and a web page cannot reach it by DNS rebinding (its requests carry
the page's host name). Python callers use `dms_sandbox.adminclient.AdminClient`.

GET  /counters                    per account and gateway counters (docs/sandbox.md has the shape)
GET  /faults                      current fault settings per service
POST /faults                      {"portal": {...}, "gateway": {...}} or {"service": "portal", ...}: change faults
POST /mpc                         {"gateway_user", "mpc", "message"?, "original_message_id"?}: queue a message for a pull
POST /notifications               {"cvr", "message", "service"?}: a notification the Notification query lists
POST /accounts/<user id>/unlock   a person lifts a lockout
GET  /accounts/<user id>          the account as the sandbox holds it (no secrets)
POST /reset-counters              zero the counters, keep the state
GET  /health                      {"ok": true}
"""

import hmac
import json
import re
import secrets
import uuid

from dms_sandbox.faults import SERVICES, FaultError

DEFAULT_MPC_MESSAGE = (b'<Notification xmlns="urn:dms-sandbox:test">a message waiting in the sandbox, '
                       b'placed with POST /mpc</Notification>')
_ACCOUNT_PATH = re.compile(r"/accounts/([^/]+)(/unlock)?")
# Shown by GET /accounts/<id>: everything but secrets and certificates.
_PUBLIC_ACCOUNT_FIELDS = ("user_id", "cvr", "uuid", "common_name", "expiry_date", "state", "failed_in_row",
                          "registration_status", "requested_at", "completes_at", "registered_at", "gateway_user",
                          "se_number", "email", "interfaces", "logins_ok", "logins_failed",
                          "registrations_requested", "writes")


def _json(status, document):
    return status, {"Content-Type": "application/json"}, json.dumps(document, indent=1, sort_keys=True).encode()


def _error(status, code, detail):
    return _json(status, {"error": code, "detail": detail})


def _header(headers, name):
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


class Admin:
    def __init__(self, store, faults, token=None):
        self.store = store
        self.faults = faults
        self.token = token or secrets.token_urlsafe(32)
        self.allowed_hosts = frozenset()  # set by allow_port() once the admin port is bound

    def allow_port(self, port):
        """Accept Host headers naming this port on the loopback address or localhost."""
        self.allowed_hosts = frozenset("%s:%d" % (name, port) for name in ("127.0.0.1", "localhost"))

    def _refusal(self, headers):
        """An answer refusing the request, or None when Host and token are right."""
        host = (_header(headers, "Host") or "").strip().lower()
        if host not in self.allowed_hosts:
            return _error(403, "host_not_allowed", "the admin API answers only requests for %s"
                          % " or ".join(sorted(self.allowed_hosts)))
        authorization = _header(headers, "Authorization") or ""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.token.encode()):
            status, answer_headers, payload = _error(
                401, "admin_token_required", "send Authorization: Bearer <admin_token from sandbox.json>")
            return status, dict(answer_headers, **{"WWW-Authenticate": "Bearer"}), payload
        return None

    def handle(self, method, path, headers, body, peer_certificate_der=None):  # pylint: disable=unused-argument
        refusal = self._refusal(headers)
        if refusal is not None:
            return refusal
        path = path.split("?", 1)[0].rstrip("/") or "/"
        try:
            data = json.loads(body.decode("utf-8")) if body and body.strip() else {}
        except (UnicodeDecodeError, ValueError):
            return _error(400, "invalid_json", "the body is not JSON")
        if not isinstance(data, dict):
            return _error(400, "invalid_json", "the body must be a JSON object")
        if (method, path) == ("GET", "/health"):
            return _json(200, {"ok": True})
        if (method, path) == ("GET", "/counters"):
            return _json(200, self.store.counters())
        if (method, path) == ("POST", "/reset-counters"):
            self.store.reset_counters()
            return _json(200, self.store.counters())
        if path == "/faults" and method in ("GET", "POST"):
            return self._faults(data if method == "POST" else {})
        if (method, path) == ("POST", "/mpc"):
            return self._mpc(data)
        if (method, path) == ("POST", "/notifications"):
            return self._notification(data)
        match = _ACCOUNT_PATH.fullmatch(path)
        if match:
            return self._account(method, match.group(1), bool(match.group(2)))
        return _error(404, "not_found", "no such admin call %s %s; see docs/sandbox.md" % (method, path))

    def _faults(self, data):
        if "service" in data:  # the flat form {"service": "portal", "error_rate": 0.2, ...}
            settings = dict(data)
            service = settings.pop("service")
            if not isinstance(service, str):
                return _error(400, "invalid_faults", "service is %s" % " | ".join(SERVICES))
            data = {service: settings}
        unknown = [name for name in data if name not in SERVICES]
        if unknown:
            return _error(400, "invalid_faults", "faults are set per service (%s), not %s"
                          % (" | ".join(SERVICES), ", ".join(unknown)))
        try:
            # Check everything before changing anything: a bad setting must not leave half the change applied.
            for service, settings in data.items():
                probe = type(self.faults[service])(service)
                probe.update(settings)
            for service, settings in data.items():
                self.faults[service].update(settings)
        except FaultError as exc:
            return _error(400, "invalid_faults", str(exc))
        return _json(200, {service: self.faults[service].snapshot() for service in SERVICES})

    def _mpc(self, data):
        gateway_user, mpc, message = data.get("gateway_user"), data.get("mpc"), data.get("message")
        if not isinstance(gateway_user, str) or not gateway_user or not isinstance(mpc, str) or not mpc:
            return _error(400, "invalid_request", "send {\"gateway_user\": ..., \"mpc\": ..., \"message\": "
                                                  "\"<xml/>\" (optional)}")
        original = data.get("original_message_id")
        if message is not None and not isinstance(message, str):
            return _error(400, "invalid_request", "message is a string (the payload XML)")
        if original is not None and not (isinstance(original, str) and original):
            return _error(400, "invalid_request", "original_message_id is a non-empty string")
        self.store.mpc_push(gateway_user, mpc, message.encode("utf-8") if message else DEFAULT_MPC_MESSAGE,
                            original or str(uuid.uuid4()))
        return _json(200, {"gateway_user": gateway_user, "mpc": mpc,
                           "waiting": self.store.mpc_count(gateway_user, mpc)})

    def _notification(self, data):
        cvr, message, service = data.get("cvr"), data.get("message"), data.get("service")
        if not (isinstance(cvr, str) and re.fullmatch(r"\d{8}", cvr)) or not (isinstance(message, str) and message):
            return _error(400, "invalid_request", "send {\"cvr\": \"<8 digits>\", \"message\": \"...\", "
                                                  "\"service\": \"DMS.Import\" (optional: every service)}")
        if service is not None and not (isinstance(service, str) and service):
            return _error(400, "invalid_request", "service is a non-empty string, e.g. DMS.Import")
        return _json(200, {"id": self.store.notification_add(cvr, message, service), "cvr": cvr, "service": service})

    def _account(self, method, user_id, unlock):
        if unlock and method == "POST":
            account = self.store.unlock(user_id)
        elif not unlock and method == "GET":
            account = self.store.account(user_id)
        else:
            return _error(405, "method_not_allowed", "use GET /accounts/<id> or POST /accounts/<id>/unlock")
        if account is None:
            return _error(404, "unknown_account", "no account %s: it appears once its certificate has "
                                                  "called the portal" % user_id)
        return _json(200, {name: account[name] for name in _PUBLIC_ACCOUNT_FIELDS})
