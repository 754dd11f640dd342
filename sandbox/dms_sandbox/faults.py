"""Faults on demand, per service: latency, 503s, 429s with Retry-After, maintenance, dropped connections,
stuck registrations and a bad server certificate; drawn at random at a given rate, or scripted for the next
requests (`script`), so a test can count on the answers it needs.

One `Faults` object per service (`portal`, `gateway`). The server asks it before dispatching each request
(`decide()`); the portal asks it how long a registration takes. Settings come from `serve` flags and from
`POST {admin_url}/faults`; they live in memory (a restart goes back to the flags).
"""

import random
import threading
import time

SERVICES = ("portal", "gateway")
SERVER_CERTIFICATES = ("valid", "expired", "wrong_host")
SCRIPT_STEPS = ("serve", "rate_limit", "error", "drop")

# name -> (type, default, help). Rates are probabilities 0..1 per request.
FIELDS = {
    "error_rate": (float, 0.0, "share of requests answered with error_status (0..1)"),
    "error_status": (int, 503, "HTTP status of injected errors"),
    "rate_limit_rate": (float, 0.0, "share of requests answered 429 with Retry-After (0..1)"),
    "retry_after": (int, 1, "seconds announced in Retry-After (429 and maintenance)"),
    "latency_ms": (int, 0, "delay added before every answer, in milliseconds"),
    "drop_rate": (float, 0.0, "share of requests whose connection is closed without an answer (0..1)"),
    "maintenance": (bool, False, "answer every request 503 maintenance (with Retry-After)"),
    "maintenance_for_s": (float, 0.0, "maintenance window of this many seconds from now (0: none)"),
    "server_certificate": (str, "valid", "TLS server certificate: valid | expired | wrong_host (new connections)"),
    "registration_delay_s": (float, 180.0, "seconds a registration takes to complete (portal only)"),
    "registration_stuck": (bool, False, "registrations never complete while set (portal only)"),
    "script": (tuple, (), "answers to the next requests, in order, before the rates apply: a list (or comma-"
                          "separated) of serve | rate_limit | error | drop; setting it replaces what is left"),
}
PORTAL_ONLY = ("registration_delay_s", "registration_stuck")


class FaultError(ValueError):
    """A fault setting that makes no sense; the message says which and what is allowed."""


def _as_bool(name, value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return value.lower() in ("1", "true", "yes", "on")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise FaultError("%s must be true or false, not %r" % (name, value))


def _as_script(value):
    steps = [step.strip() for step in value.split(",") if step.strip()] if isinstance(value, str) else value
    if not isinstance(steps, (list, tuple)) or any(step not in SCRIPT_STEPS for step in steps):
        raise FaultError("script is a list of steps (%s), not %r" % (" | ".join(SCRIPT_STEPS), value))
    return tuple(steps)


def coerce(name, value):
    """Check and convert one setting; raise FaultError naming the setting and its allowed values."""
    if name not in FIELDS:
        raise FaultError("unknown fault %r; known: %s" % (name, ", ".join(sorted(FIELDS))))
    kind = FIELDS[name][0]
    if kind is bool:
        return _as_bool(name, value)
    if kind is tuple:
        return _as_script(value)
    if kind is str:
        if value not in SERVER_CERTIFICATES:
            raise FaultError("%s must be one of %s, not %r" % (name, ", ".join(SERVER_CERTIFICATES), value))
        return value
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise FaultError("%s must be a number, not %r" % (name, value)) from None
    if isinstance(value, bool) or number < 0:
        raise FaultError("%s must be a number >= 0, not %r" % (name, value))
    if name.endswith("_rate") and number > 1:
        raise FaultError("%s is a share of requests between 0 and 1, not %r" % (name, value))
    if name == "error_status" and not 400 <= number <= 599:
        raise FaultError("error_status must be an HTTP error status 400..599, not %r" % (value,))
    return number


class Faults:
    """The fault settings of one service; thread-safe."""

    def __init__(self, service, **settings):
        self.service = service
        self._lock = threading.Lock()
        self._values = {name: spec[1] for name, spec in FIELDS.items()}
        self._maintenance_until = 0.0
        self._random = random.Random()
        self.listeners = []  # called with the changed names after update()
        self.update(settings)

    def update(self, settings):
        """Apply a dict of settings (all or nothing); return the new state."""
        if not isinstance(settings, dict):
            raise FaultError("faults of %s must be a JSON object of settings" % self.service)
        clean = {name: coerce(name, value) for name, value in settings.items()}
        if self.service != "portal":
            misplaced = [name for name in clean if name in PORTAL_ONLY]
            if misplaced:
                raise FaultError("%s belong to the portal (the gateway only sees the result); set them under "
                                 "\"portal\"" % ", ".join(misplaced))
        with self._lock:
            self._values.update(clean)
            if "maintenance_for_s" in clean:
                window = clean["maintenance_for_s"]
                self._maintenance_until = time.time() + window if window else 0.0
        for listener in self.listeners:
            listener(self, sorted(clean))
        return self.snapshot()

    def get(self, name):
        with self._lock:
            return self._values[name]

    def in_maintenance(self):
        with self._lock:
            return self._values["maintenance"] or time.time() < self._maintenance_until

    def snapshot(self):
        with self._lock:
            values = dict(self._values)
            remaining = max(0.0, self._maintenance_until - time.time())
        values["maintenance_for_s"] = round(remaining, 1)
        if self.service != "portal":
            for name in PORTAL_ONLY:
                values.pop(name, None)
        return values

    def decide(self):
        """What to do with the next request, after the added latency has been slept.

        Returns None (serve it), "drop" (close the connection without answering), or
        (status, reason, headers) for an injected answer. A scripted step, while one is left, takes the
        place of the random draws (maintenance still comes first and leaves the script alone).
        """
        with self._lock:
            values = dict(self._values)
            maintenance_left = self._maintenance_until - time.time()
            in_maintenance = values["maintenance"] or maintenance_left > 0
            step = None
            if values["script"] and not in_maintenance:
                step, self._values["script"] = values["script"][0], values["script"][1:]
            rolls = {kind: self._random.random() for kind in ("drop", "rate_limit", "error")}
        if values["latency_ms"]:
            time.sleep(values["latency_ms"] / 1000.0)
        if in_maintenance:
            retry = int(maintenance_left) + 1 if maintenance_left > 0 else values["retry_after"]
            return 503, "maintenance", {"Retry-After": str(retry)}
        if step is not None:
            return _answer(step, values)
        for kind, roll in rolls.items():  # in this order: drop, rate limit, error
            if roll < values[kind + "_rate"]:
                return _answer(kind, values)
        return None


def _answer(step, values):
    """decide()'s answer for one step: serve | drop | rate_limit | error."""
    if step == "drop":
        return "drop"
    if step == "rate_limit":
        return 429, "rate_limited", {"Retry-After": str(values["retry_after"])}
    if step == "error":
        return values["error_status"], "service_unavailable", {}
    return None


def add_arguments(parser):
    """`serve` flags: --portal-error-rate, --gateway-latency-ms, ... and --registration-delay/--registration-stuck."""
    group = parser.add_argument_group("faults (also settable at run time with POST {admin_url}/faults)")
    for service in SERVICES:
        for name, (kind, _default, text) in FIELDS.items():
            if name in PORTAL_ONLY:
                continue
            flag = "--%s-%s" % (service, name.replace("_", "-"))
            dest = "fault_%s_%s" % (service, name)
            if kind is bool:
                group.add_argument(flag, dest=dest, action="store_true", default=None, help="%s: %s" % (service, text))
            elif kind is str:
                group.add_argument(flag, dest=dest, default=None, choices=SERVER_CERTIFICATES,
                                   help="%s: %s" % (service, text))
            elif kind is tuple:
                group.add_argument(flag, dest=dest, default=None, metavar="STEP,...", help="%s: %s" % (service, text))
            else:
                group.add_argument(flag, dest=dest, default=None, metavar=kind.__name__.upper(),
                                   help="%s: %s" % (service, text))
    group.add_argument("--registration-delay", dest="fault_portal_registration_delay_s", default=180.0, type=float,
                       metavar="SECONDS", help="seconds until a requested registration completes (default 180)")
    group.add_argument("--registration-stuck", dest="fault_portal_registration_stuck", action="store_true",
                       default=None, help="registrations never complete (until unset with POST /faults)")


def from_arguments(args):
    """{service: Faults} built from the parsed `serve` flags (FaultError on a bad value)."""
    faults = {}
    for service in SERVICES:
        settings = {}
        for name in FIELDS:
            value = getattr(args, "fault_%s_%s" % (service, name), None)
            if value is not None:
                settings[name] = value
        faults[service] = Faults(service, **settings)
    return faults
