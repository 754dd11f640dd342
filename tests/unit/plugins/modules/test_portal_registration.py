# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""portal_registration's logon strategy and waiting, against a real dms-sandbox whose sessions
expire after 2 seconds and whose registrations take 3 (paths the integration target cannot reach), in
each API shape the sandbox serves, each with the profile that fits it."""

from __future__ import annotations

import os
import sys

import pytest

from ansible_collections.dkcustoms.dms.plugins.module_utils import _oces, _opt_connection, _portal_profile
from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_client as portal
from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_logon as logon
from ansible_collections.dkcustoms.dms.plugins.module_utils import _registration as registration
from ansible_collections.dkcustoms.dms.plugins.modules import portal_registration as module_code

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "module_utils"))
import _portal_sandbox as shapes  # noqa: E402  pylint: disable=wrong-import-position

PASSWORD = "Unit-Test-Module-Pw-42"


@pytest.fixture(scope="module", params=shapes.SHAPES)
def sandbox(request, tmp_path_factory, pki_dir, require_tool):
    """A sandbox per API shape; ``info["profile"]`` is the profile that fits it."""
    yield from shapes.serve(require_tool("dms-sandbox"), tmp_path_factory, pki_dir, request.param,
                            "--registration-delay", "3", "--session-lifetime", "2")


def wanted(**settings):
    values = {"se_number": None, "email": None, "interfaces": ["AS4"], "wait": True, "wait_timeout": 30,
              "credentials_dest": None, "return_gateway_password": False}
    values.update(settings)
    return registration.Wanted(**values)


def _client(sandbox, pki, name):
    entity = pki["entities"][name]
    with open(entity["p12"], "rb") as handle:
        bundle = _oces.load_bundle(handle.read(), passphrase=pki["passphrase"])
    session = _opt_connection.Connection("test", sandbox["ca_bundle"], True, 10, 5).session(bundle)
    return portal.PortalClient(session, sandbox["portal_url"], sandbox["profile"]), bundle.certificate


def _run(sandbox, pki, name, password=PASSWORD, **settings):
    client, certificate = _client(sandbox, pki, name)
    return registration.run(client, certificate, wanted(**settings), password)


def _account(sandbox, pki, name, password=PASSWORD):
    """A logon.Account for NAME's certificate, as the run makes it after whoami."""
    client, dummy = _client(sandbox, pki, name)
    whoami = client.whoami()
    return logon.Account(client, whoami["user_id"], whoami["account_state"], password)


def _admin(sandbox):
    from dms_sandbox.adminclient import AdminClient  # pylint: disable=import-outside-toplevel
    return AdminClient(sandbox, timeout=10)


def _counters(sandbox, user_id):
    return _admin(sandbox).counters()["accounts"][user_id]


def test_full_run_survives_session_expiry_while_waiting(sandbox, pki):
    outcome = _run(sandbox, pki, "foces-01", se_number="12345678")
    assert outcome.after["registration_status"] == "registered" and outcome.after["gateway_user"]
    assert outcome.actions == ["password_changed", "registration_requested", "se_number_updated",
                               "interfaces_updated"]
    account = _counters(sandbox, outcome.user_id)
    # The initial logon, then logons again after the 2 s sessions expired during the 3 s registration.
    assert account["logins_ok"] >= 2
    assert account["logins_failed"] == 0 and account["registrations_requested"] == 1
    assert outcome.before["registration_status"] == "not_registered" and outcome.after["se_number"] == "12345678"


def test_password_changed_by_someone_else_costs_one_failed_attempt(sandbox, pki):
    first = _account(sandbox, pki, "foces-02")
    assert first.log_on() is True        # changes the initial password
    late = _account(sandbox, pki, "foces-02")
    late.account_state = "new"           # it read whoami before the first run changed the password
    late.client.whoami = lambda: {"user_id": late.user_id, "account_state": "new"}
    assert late.log_on() is False
    assert late.logins == 2
    account = _counters(sandbox, late.user_id)
    assert account["logins_failed"] == 1 and not account["locked"]


def test_wrong_password_is_one_attempt_only(sandbox, pki):
    _account(sandbox, pki, "foces-03").log_on()
    wrong = _account(sandbox, pki, "foces-03", password="Wrong-But-Long-Enough")
    with pytest.raises(logon.LogonFailed) as failed:
        wrong.log_on()
    assert wrong.logins == 1 and failed.value.reason == "invalid_credentials"
    assert "4 attempts left" in str(failed.value) and "Wrong-But-Long-Enough" not in str(failed.value)


def test_wait_timeout_names_the_fix(sandbox, pki):
    with pytest.raises(registration.RegistrationFailed) as failed:
        _run(sandbox, pki, "foces-04", wait_timeout=1)
    assert "still in progress after 1 seconds" in str(failed.value) and "wait_timeout" in str(failed.value)
    assert failed.value.details["actions"] == ["password_changed", "registration_requested"]
    assert failed.value.details["portal_user_id"] == pki["entities"]["foces-04"]["portal_user_id"]


def test_no_wait_returns_in_progress(sandbox, pki):
    outcome = _run(sandbox, pki, "foces-05", wait=False, email="ops@example.dk")
    assert outcome.after["registration_status"] == "in_progress" and outcome.after["gateway_user"] is None
    assert outcome.actions == ["password_changed", "registration_requested", "email_updated"]
    assert outcome.after["email"] == "ops@example.dk" and outcome.after["interfaces"] == []


# -- choosing the profile (before anything is sent) --------------------------------------------------
def test_a_profile_with_an_error_fails_the_task_naming_call_and_field(tmp_path):
    path = tmp_path / "portal.yml"
    with open(shapes.VARIANT_PROFILE, encoding="utf-8") as handle:
        text = handle.read()
    path.write_text(text.replace("path: /rest/v2/certificate/credentials", "path: /rest/v2/{certificate}"))
    with pytest.raises(_portal_profile.ProfileError) as failed:
        _portal_profile.select(path=str(path))
    assert failed.value.reason == "invalid_profile"
    assert "calls.gateway_credentials.path: unknown placeholder {certificate}" in failed.value.msg
    assert str(path) in failed.value.msg and "Fix:" in failed.value.msg


def test_the_profile_can_be_given_as_data_and_chooses_the_base_url():
    document = shapes.profile_for("variant")
    with pytest.raises(_portal_profile.ProfileError) as failed:
        _portal_profile.select(content={"name": "broken"})
    assert "calls: missing" in failed.value.msg
    assert "given in portal_api_profile_content" in failed.value.msg
    with pytest.raises(portal.PortalError) as no_url:  # the variant's profile names no base URL
        portal.base_url_for(None, "test", document)
    assert "base_urls.test" in no_url.value.msg and "portal_url" in no_url.value.msg
    assert portal.base_url_for("https://portal.example/x/", "test", document) == "https://portal.example/x"
    built_in = _portal_profile.select()
    assert portal.base_url_for(None, "production", built_in) == "https://secureftpgateway.skat.dk/PortalCertApp"


class Failed(Exception):
    pass


class ProfileModule:
    def fail_json(self, **result):
        raise Failed(result)


def test_without_jmespath_the_task_says_which_library_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "jmespath", None)  # importing it now fails, as on a host without it
    with pytest.raises(Failed) as failed:
        module_code._deps.require(ProfileModule(), *module_code.LIBRARIES)  # pylint: disable=protected-access
    assert failed.value.args[0]["missing_libraries"] == ["jmespath"]
    assert "jmespath>=1.0" in failed.value.args[0]["msg"]
