# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_portal_client against a real dms-sandbox portal over HTTPS on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

from ansible_collections.dkcustoms.dms.plugins.module_utils import _http, _oces
from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_client as portal

PASSWORD = "Unit-Test-Portal-Pw-42"
# Every run meets each transient fault the client retries: a 429 with Retry-After, a 503, a dropped connection.
FAULT_SCRIPT = ["rate_limit", "error", "drop", "rate_limit", "error"]
RETRY_AFTER_S = 30  # longer than any backoff (_http caps those at 10 s): a delay of 30 s comes from Retry-After


@pytest.fixture(scope="module")
def pki_dir(require_tool):
    """The test PKI; tests that use it (or the sandbox) need the dms-sandbox command (pip install -e sandbox)."""
    require_tool("dms-sandbox")
    directory = os.environ.get("DMS_PKI_DIR")
    if not directory:
        # One PKI for the unit tests of this user (dms-sandbox pki is idempotent and locks its
        # directory, so test files and parallel workers can share it; keys take time to make).
        directory = os.path.join(tempfile.gettempdir(), "dkcustoms-dms-unit-pki-%d" % os.getuid())
        subprocess.run([sys.executable, "-m", "dms_sandbox", "pki", "--out", directory,
                        "--foces", "6", "--broken"], check=True, stdout=subprocess.DEVNULL)
    return directory


@pytest.fixture(scope="module")
def pki(pki_dir):
    with open(os.path.join(pki_dir, "pki.json"), encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, pki_dir, require_tool):
    dms_sandbox = require_tool("dms-sandbox")
    state = str(tmp_path_factory.mktemp("sandbox"))
    subprocess.run([dms_sandbox, "serve", "--state", state, "--pki", pki_dir, "--detach", "--ttl", "600",
                    "--registration-delay", "1"], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(state, "sandbox.json"), encoding="utf-8") as handle:
        info = json.load(handle)
    yield info
    subprocess.run([dms_sandbox, "stop", "--state", state], check=False, stdout=subprocess.DEVNULL)


def _client(sandbox, pki, entity, base_url=None, **kwargs):
    with open(entity["p12"], "rb") as handle:
        bundle = _oces.load_bundle(handle.read(), passphrase=pki["passphrase"])
    kwargs.setdefault("sleep", lambda seconds: None)
    session = _http.create_session(ca_path=sandbox["ca_bundle"], timeout=10,
                                   client_cert=_http.client_cert_from_bundle(bundle), **kwargs)
    return portal.PortalClient(session, base_url or sandbox["portal_url"])


def _admin(sandbox, method, path, body=None):
    """A call to the sandbox's admin API (with its token); its answer's JSON."""
    from dms_sandbox.adminclient import AdminClient  # pylint: disable=import-outside-toplevel
    client = AdminClient(sandbox, timeout=10)
    try:
        return client.call(method, path, body)
    finally:
        client.close()


def _account(sandbox, user_id):
    return _admin(sandbox, "GET", "/counters")["accounts"][user_id]


def _faults_injected(sandbox):
    return _admin(sandbox, "GET", "/counters")["faults"]["portal"]


def test_default_urls_per_environment():
    assert portal.DEFAULT_PORTAL_URLS["test"] == "https://secureftp.gatewaytest.skat.dk/PortalCertApp"
    assert portal.DEFAULT_PORTAL_URLS["production"] == "https://secureftpgateway.skat.dk/PortalCertApp"


def test_full_manual_procedure(sandbox, pki):
    entity = pki["entities"]["foces-01"]
    client = _client(sandbox, pki, entity)
    me = client.whoami()
    assert me["user_id"] == entity["portal_user_id"] and me["account_state"] == "new"
    assert client.login(me["user_id"], me["user_id"]) is True
    with pytest.raises(portal.PasswordChangeRequired):
        client.overview()
    with pytest.raises(portal.ValidationFailed) as weak:
        client.change_password(me["user_id"], "short")
    assert weak.value.code == "weak_password" and "Fix:" in str(weak.value)
    client.change_password(me["user_id"], PASSWORD)
    overview = client.overview()
    assert overview["registration_status"] == "not_registered" and overview["gateway_user"] is None
    assert portal.settings_of(overview) == {"registration_status": "not_registered", "se_number": None,
                                            "email": None, "interfaces": [], "gateway_user": None}
    with pytest.raises(portal.NotRegistered):
        client.gateway_credentials()
    assert client.request_registration() == (True, "in_progress")
    assert client.request_registration() == (False, "in_progress")  # 409: not an error
    deadline = time.monotonic() + 30
    while client.overview()["registration_status"] != "registered":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert client.request_registration() == (False, "registered")
    credentials = client.gateway_credentials()
    assert credentials["gateway_user"] == client.overview()["gateway_user"]
    assert len(credentials["gateway_password"]) >= 12
    with pytest.raises(portal.ValidationFailed) as bad_se:
        client.set_se_number("1234")
    assert bad_se.value.code == "invalid_se_number" and "8 digits" in str(bad_se.value)
    assert client.set_se_number("12345678")["se_number"] == "12345678"
    assert client.set_se_number("")["se_number"] is None
    assert client.set_email("ops@example.dk")["email"] == "ops@example.dk"
    assert client.set_interfaces(["FTPS", "AS4"])["interfaces"] == ["AS4", "FTPS"]
    account = _account(sandbox, entity["portal_user_id"])
    assert account["registrations_requested"] == 1 and account["logins_failed"] == 0
    client.logout()
    assert client.token is None
    client.token = "expired-or-logged-out"
    with pytest.raises(portal.SessionExpired):
        client.overview()


def test_wrong_password_counts_one_attempt_and_never_echoes_it(sandbox, pki):
    entity = pki["entities"]["foces-02"]
    client = _client(sandbox, pki, entity)
    user_id = client.whoami()["user_id"]
    with pytest.raises(portal.InvalidCredentials) as refused:
        client.login(user_id, "Not-The-Password-123")
    assert refused.value.attempts_remaining == 4
    assert "Not-The-Password-123" not in str(refused.value)
    account = _account(sandbox, user_id)
    assert account["logins_failed"] == 1 and not account["locked"]


def test_lockout_is_reported_as_locked(sandbox, pki):
    entity = pki["entities"]["foces-03"]
    client = _client(sandbox, pki, entity)
    user_id = client.whoami()["user_id"]
    for attempt in range(4):
        with pytest.raises(portal.InvalidCredentials, match="%d attempts left" % (4 - attempt)):
            client.login(user_id, "Wrong-Password-0000")
    with pytest.raises(portal.AccountLocked):
        client.login(user_id, "Wrong-Password-0000")
    assert client.whoami()["account_state"] == "locked"
    message = portal.locked_message(user_id)
    assert "no logon was attempted" in message and "only a person can unlock" in message.lower() and user_id in message


def test_user_mismatch_and_wrong_base_url(sandbox, pki):
    client = _client(sandbox, pki, pki["entities"]["foces-04"])
    with pytest.raises(portal.PortalError) as mismatch:
        client.login(pki["entities"]["foces-05"]["portal_user_id"], "whatever-password")
    assert mismatch.value.code == "user_mismatch" and mismatch.value.status == 403
    wrong = _client(sandbox, pki, pki["entities"]["foces-04"],
                    base_url=sandbox["portal_url"].replace("/PortalCertApp", "/Other"))
    with pytest.raises(portal.PortalError) as not_found:
        wrong.whoami()
    assert not_found.value.status == 404 and "portal_url" in str(not_found.value)


def test_non_oces_certificate_is_refused_with_fix(sandbox, pki):
    broken = pki["broken"]["non_oces"]
    client = _client(sandbox, pki, broken)
    with pytest.raises(portal.PortalError) as refused:
        client.whoami()
    assert refused.value.code == "not_oces3" and "OCES3" in str(refused.value)


def test_transient_faults_are_retried(sandbox, pki):
    entity = pki["entities"]["foces-06"]
    before = _faults_injected(sandbox)
    _admin(sandbox, "POST", "/faults", {"portal": {"script": FAULT_SCRIPT, "retry_after": RETRY_AFTER_S}})
    try:
        delays = []
        client = _client(sandbox, pki, entity, retries=12, sleep=delays.append)
        for dummy in range(10):
            assert client.whoami()["user_id"] == entity["portal_user_id"]
        injected = _faults_injected(sandbox)
        assert {kind: injected.get(kind, 0) - before.get(kind, 0) for kind in injected} == {
            "rate_limited": 2, "service_unavailable": 2, "dropped": 1}
        events = client.session.retry_events
        assert [event.reason for event in events] == ["HTTP 429", "HTTP 503", "ConnectionError", "HTTP 429",
                                                      "HTTP 503"]
        assert [round(delay, 2) for delay in delays] == [event.delay for event in events]
        assert client.session.stats["retries"] == 5
        assert [event.delay for event in events if event.reason == "HTTP 429"] == [RETRY_AFTER_S] * 2
        assert all(event.delay < RETRY_AFTER_S for event in events if event.reason != "HTTP 429")  # backoff
        _admin(sandbox, "POST", "/faults", {"portal": {"error_rate": 1.0}})
        with pytest.raises(portal.PortalError) as gave_up:
            _client(sandbox, pki, entity, retries=2).whoami()
        assert "after 3 attempts" in str(gave_up.value) and gave_up.value.status == 503
    finally:
        _admin(sandbox, "POST", "/faults", {"portal": {"script": [], "error_rate": 0, "retry_after": 1}})


def test_password_problem():
    assert portal.password_problem("short", "CVR_1_UI_x") == "it has fewer than 12 characters"
    assert portal.password_problem("xxCVR_1_UI_xyyyyyyy", "CVR_1_UI_x") == "it contains the user id"
    assert portal.password_problem(PASSWORD, "CVR_1_UI_x") is None
