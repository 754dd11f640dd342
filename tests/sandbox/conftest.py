"""Fixtures that run the sandbox as a real process and talk to it over HTTPS, as clients do.

`pki`      the test PKI manifest (pki.json) plus "dir": DMS_PKI_DIR if set, else one made once per run.
`sandbox`  factory: `sandbox(*flags, registration_delay=1)` starts `dms-sandbox serve` in its own state dir
           and returns a `Sandbox` (its sandbox.json as `.info`, admin helpers, portal clients); every
           sandbox a test started is stopped after the test.

Note: requests lets REQUESTS_CA_BUNDLE override `Session.verify`, so sessions here set `trust_env = False`.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from dms_sandbox.adminclient import AdminClient

STARTUP_TIMEOUT_S = 60
NEW_PASSWORD = "Sandbox-Password-2026"


def _load(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    directory = os.environ.get("DMS_PKI_DIR")
    if not directory:
        # Shared by the xdist workers of one run (pki.py locks its directory while it works).
        directory = str(tmp_path_factory.getbasetemp().parent / "dms-sandbox-pki")
        subprocess.run([sys.executable, "-m", "dms_sandbox", "pki", "--out", directory, "--foces", "8",
                        "--voces", "2", "--moces", "1", "--broken"], check=True, stdout=subprocess.DEVNULL)
    manifest = _load(os.path.join(directory, "pki.json"))
    manifest["dir"] = os.path.abspath(directory)
    return manifest


class PortalClient:
    """One browser: a TLS client certificate (or none) and the portal session token."""

    def __init__(self, sandbox, entity=None):
        self.sandbox = sandbox
        self.entity = entity
        self.user_id = entity.get("portal_user_id") if entity else None
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = sandbox.info["ca_bundle"]
        if entity:
            self.session.cert = (entity["cert"], entity["key"])

    def call(self, method, path, body=None, **kwargs):
        kwargs.setdefault("timeout", 30)
        if body is not None:
            kwargs["json"] = body
        return self.session.request(method, self.sandbox.info["portal_url"] + path, **kwargs)

    def get(self, path, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path, body=None, **kwargs):
        return self.call("POST", path, body, **kwargs)

    def put(self, path, body=None, **kwargs):
        return self.call("PUT", path, body, **kwargs)

    def delete(self, path, **kwargs):
        return self.call("DELETE", path, **kwargs)

    def logon(self, password=None):
        answer = self.post("/api/session", {"user_id": self.user_id, "password": password or self.user_id})
        if answer.status_code == 200:
            self.session.headers["Authorization"] = "Bearer " + answer.json()["token"]
        return answer

    def activate(self, new_password=NEW_PASSWORD):
        """First logon with the user id and the forced password change."""
        assert self.logon().status_code == 200
        answer = self.post("/api/session/password", {"current_password": self.user_id, "new_password": new_password})
        assert answer.status_code == 204, answer.text
        return self

    def register_and_wait(self, timeout=30):
        assert self.post("/api/certificate/registration", {}).status_code == 202
        return self.wait_registered(timeout)

    def wait_registered(self, timeout=30):
        """Refresh until the registration completes; return the overview."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            overview = self.get("/api/certificate").json()
            if overview["registration_status"] == "registered":
                return overview
            time.sleep(0.2)
        raise AssertionError("registration did not complete in %s s" % timeout)


class Sandbox:
    """A running `dms-sandbox serve` process and its state directory."""

    def __init__(self, state, pki, flags, log_path):
        self.state, self.pki, self.flags, self.log_path = state, pki, list(flags), log_path
        self.process = None
        self.info = None

    @property
    def command(self):
        return [sys.executable, "-m", "dms_sandbox", "serve", "--state", self.state, "--pki", self.pki["dir"],
                "--ttl", "900"] + self.flags

    def start(self):
        ready_path = os.path.join(self.state, "sandbox.json")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # pylint: disable=consider-using-with
                self.command, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.time() + STARTUP_TIMEOUT_S
        while time.time() < deadline:
            if os.path.exists(ready_path):
                try:
                    info = _load(ready_path)
                except ValueError:
                    info = {}
                if info.get("pid") == self.process.pid:
                    self.info = info
                    return self
            if self.process.poll() is not None:
                raise AssertionError("dms-sandbox serve exited with %s:\n%s" % (self.process.returncode,
                                                                                 self.log()[-5000:]))
            time.sleep(0.05)
        raise AssertionError("sandbox not ready after %s s:\n%s" % (STARTUP_TIMEOUT_S, self.log()[-5000:]))

    def log(self):
        """Everything the sandbox wrote to stderr so far."""
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signal the process and wait; return its exit status."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout)

    def restart(self):
        self.stop()
        return self.start()

    # -- admin API --------------------------------------------------------------------------------------
    def admin(self, method, path, body=None):
        return AdminClient(self.info).request(method, path, body)

    def counters(self):
        answer = self.admin("GET", "/counters")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def account_counters(self, user_id):
        return self.counters()["accounts"][user_id]

    def set_faults(self, **services):
        answer = self.admin("POST", "/faults", services)
        assert answer.status_code == 200, answer.text
        return answer.json()

    # -- clients ------------------------------------------------------------------------------------------
    def entity(self, name):
        group, _, key = name.partition(".")
        return self.pki[group][key] if key else self.pki["entities"][name]

    def client(self, name=None):
        """A portal client presenting entity NAME ("foces-01", "broken.unknown_ca"); None: no certificate."""
        return PortalClient(self, self.entity(name) if name else None)


@pytest.fixture()
def sandbox(pki, tmp_path):
    started = []

    def start(*flags, registration_delay=1, state=None):
        number = len(started)
        state_dir = state or str(tmp_path / ("sandbox-%d" % number))
        instance = Sandbox(state_dir, pki, ["--registration-delay", str(registration_delay)] + list(flags),
                           str(tmp_path / ("sandbox-%d.log" % number)))
        started.append(instance)
        return instance.start()

    yield start
    for instance in started:
        instance.stop()
