# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_portal_client against a real dms-sandbox portal over HTTPS on 127.0.0.1, in each API shape the
sandbox serves (the default one with the built-in profile, the variant with its profile)."""

from __future__ import annotations

import copy
import os
import sys
import time

import pytest

from ansible_collections.dkcustoms.dms.plugins.module_utils import _oces, _opt_connection, _portal_profile
from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_client as portal
from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_profile_default

sys.path.insert(0, os.path.dirname(__file__))
import _portal_sandbox as shapes  # noqa: E402  pylint: disable=wrong-import-position

PASSWORD = "Unit-Test-Portal-Pw-42"
# Every run meets each transient fault the client retries: a 429 with Retry-After, a 503, a dropped connection.
FAULT_SCRIPT = ["rate_limit", "error", "drop", "rate_limit", "error"]
RETRY_AFTER_S = 30  # longer than any backoff (RetryPolicy caps those at 10 s): a delay of 30 s comes from Retry-After


@pytest.fixture(scope="module", params=shapes.SHAPES)
def sandbox(request, tmp_path_factory, pki_dir, require_tool):
    """A sandbox per API shape; ``info["profile"]`` is the profile that fits it."""
    yield from shapes.serve(require_tool("dms-sandbox"), tmp_path_factory, pki_dir, request.param, "--registration-delay", "1")


def _client(sandbox, pki, entity, base_url=None, profile=None, **kwargs):
    with open(entity["p12"], "rb") as handle:
        bundle = _oces.load_bundle(handle.read(), passphrase=pki["passphrase"])
    kwargs.setdefault("sleep", lambda seconds: None)
    connection = _opt_connection.Connection("test", sandbox["ca_bundle"], True, 10, kwargs.pop("retries", 5))
    session = connection.session(bundle, policy=connection.policy(**kwargs))
    return portal.PortalClient(session, base_url or sandbox["portal_url"], profile or sandbox["profile"])


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


def _requests(sandbox):
    return _admin(sandbox, "GET", "/counters")["requests_by_service"]["portal"]


def test_default_urls_per_environment():
    urls = _portal_profile.default_profile().base_urls
    assert urls["test"] == "https://secureftp.gatewaytest.skat.dk/PortalCertApp"
    assert urls["production"] == "https://secureftpgateway.skat.dk/PortalCertApp"


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
    assert not client.logged_on
    with pytest.raises(portal.SessionExpired):  # logged out: the portal knows no session any more
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


# -- profile-driven behaviour ------------------------------------------------------------------------
# Tests of one shape take the sandbox of that shape only.
variant_only = pytest.mark.parametrize("sandbox", ["variant"], indirect=True)
default_only = pytest.mark.parametrize("sandbox", ["default"], indirect=True)


def _activated(sandbox, pki, name, profile=None):
    client = _client(sandbox, pki, pki["entities"][name], profile=profile)
    user_id = client.whoami()["user_id"]
    client.login(user_id, user_id)
    client.change_password(user_id, PASSWORD)
    return client


def test_a_profile_that_does_not_fit_the_portal_fails_at_the_first_call(sandbox, pki):
    other = shapes.profile_for("variant" if sandbox["portal_api"] == "default" else "default")
    client = _client(sandbox, pki, pki["entities"]["foces-05"], profile=other)
    with pytest.raises(portal.PortalError) as wrong:
        client.whoami()
    assert wrong.value.status == 404 and "profile" in str(wrong.value)


@default_only
def test_settings_calls_without_an_answer_read_the_overview_back(sandbox, pki):
    document = copy.deepcopy(_portal_profile_default.PROFILE)
    del document["calls"]["set_email"]["answer"]
    profile = _portal_profile.load(content=document)
    client = _activated(sandbox, pki, "foces-05", profile=profile)
    before = _requests(sandbox)
    assert client.set_email("back@example.dk")["email"] == "back@example.dk"
    assert _requests(sandbox) == before + 2  # the update, then the overview


@default_only
def test_a_bearer_token_the_profile_cannot_find_is_a_clear_error(sandbox, pki):
    document = copy.deepcopy(_portal_profile_default.PROFILE)
    document["session"]["token"] = "access_token"
    client = _client(sandbox, pki, pki["entities"]["foces-06"], profile=_portal_profile.load(content=document))
    user_id = client.whoami()["user_id"]
    with pytest.raises(portal.PortalError) as missing:
        client.login(user_id, user_id)
    assert missing.value.code == "invalid_answer" and "access_token" in str(missing.value)


@variant_only
def test_cookie_session_with_the_csrf_token_from_the_logon_answer(sandbox, pki):
    document = _portal_profile._read_file(shapes.VARIANT_PROFILE)  # pylint: disable=protected-access
    document["session"]["csrf"] = {"header": "X-XSRF-TOKEN", "answer": "data.csrfToken"}
    client = _activated(sandbox, pki, "foces-05", profile=_portal_profile.load(content=document))
    assert client.set_se_number("87654321")["se_number"] == "87654321"
    # Without the CSRF header every write is refused, and the profile's mapping says why.
    document["session"].pop("csrf")
    no_csrf = _client(sandbox, pki, pki["entities"]["foces-05"], profile=_portal_profile.load(content=document))
    no_csrf.login(no_csrf.whoami()["user_id"], PASSWORD)
    with pytest.raises(portal.PortalError) as refused:
        no_csrf.set_se_number("11223344")
    assert refused.value.code == "csrf_rejected" and refused.value.status == 403
    assert "session.csrf" in str(refused.value)


@variant_only
def test_an_answer_that_does_not_fit_names_call_field_and_expression(sandbox, pki):
    document = _portal_profile._read_file(shapes.VARIANT_PROFILE)  # pylint: disable=protected-access
    document["calls"]["whoami"]["answer"]["account_state"] = "data.accountState"  # no values mapping
    client = _client(sandbox, pki, pki["entities"]["foces-06"], profile=_portal_profile.load(content=document))
    with pytest.raises(portal.PortalError) as wrong:
        client.whoami()
    message = str(wrong.value)
    assert wrong.value.code == "invalid_answer" and message.startswith("Selecting the certificate")
    assert "account_state" in message and "data.accountState" in message and "'NEW'" in message
    assert "Fix:" in message
