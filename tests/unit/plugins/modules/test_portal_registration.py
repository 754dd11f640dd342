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

from ansible_collections.dkcustoms.dms.plugins.module_utils import _oces, _opt_connection
from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_client as portal
from ansible_collections.dkcustoms.dms.plugins.modules import portal_registration as module_code

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "module_utils"))
import _portal_sandbox as shapes  # noqa: E402  pylint: disable=wrong-import-position

PASSWORD = "Unit-Test-Module-Pw-42"


@pytest.fixture(scope="module")
def pki_dir(require_tool):
    """The test PKI; the tests here need the dms-sandbox command (pip install -e sandbox)."""
    require_tool("dms-sandbox")
    return shapes.pki_dir()


@pytest.fixture(scope="module")
def pki(pki_dir):
    return shapes.load_pki(pki_dir)


@pytest.fixture(scope="module", params=shapes.SHAPES)
def sandbox(request, tmp_path_factory, pki_dir, require_tool):
    command = require_tool("dms-sandbox")
    state = str(tmp_path_factory.mktemp("sandbox-%s" % request.param))
    info = shapes.start(command, state, pki_dir, request.param, "--registration-delay", "3",
                        "--session-lifetime", "2")
    info["profile"] = shapes.profile_for(request.param)
    yield info
    shapes.stop(command, state)


class FakeModule:
    check_mode = False

    def __init__(self, **params):
        self.params = {"password": PASSWORD, "se_number": None, "email": None, "interfaces": ["AS4"],
                       "wait": True, "wait_timeout": 30, "gateway_credentials_dest": None,
                       "return_gateway_password": False}
        self.params.update(params)


def _run(sandbox, pki, name, **params):
    entity = pki["entities"][name]
    with open(entity["p12"], "rb") as handle:
        bundle = _oces.load_bundle(handle.read(), passphrase=pki["passphrase"])
    session = _opt_connection.Connection("test", sandbox["ca_bundle"], True, 10, 5).session(bundle)
    client = portal.PortalClient(session, sandbox["portal_url"], sandbox["profile"])
    run = module_code.Registration(FakeModule(**params), client)
    whoami = run.client.whoami()
    run.user_id, run.account_state = whoami["user_id"], whoami["account_state"]
    return run


def _admin(sandbox):
    from dms_sandbox.adminclient import AdminClient  # pylint: disable=import-outside-toplevel
    return AdminClient(sandbox, timeout=10)


def _account(sandbox, user_id):
    return _admin(sandbox).counters()["accounts"][user_id]


def test_full_run_survives_session_expiry_while_waiting(sandbox, pki):
    run = _run(sandbox, pki, "foces-01", se_number="12345678")
    before, after, status, gateway_user, credentials = module_code.real_run(run.module, run)
    assert status == "registered" and gateway_user
    assert run.actions == ["password_changed", "registration_requested", "se_number_updated",
                           "interfaces_updated"]
    assert run.logins >= 2  # the initial logon, then logons again after the 2 s sessions expired
    account = _account(sandbox, run.user_id)
    assert account["logins_failed"] == 0 and account["registrations_requested"] == 1
    assert before["registration_status"] == "not_registered" and after["se_number"] == "12345678"


def test_password_changed_by_someone_else_costs_one_failed_attempt(sandbox, pki):
    first = _run(sandbox, pki, "foces-02")
    first.log_on()                       # changes the initial password
    assert first.actions == ["password_changed"]
    late = _run(sandbox, pki, "foces-02")
    late.account_state = "new"           # it read whoami before the first run changed the password
    late.client.whoami = lambda: {"user_id": late.user_id, "account_state": "new"}
    assert late.log_on()
    assert late.logins == 2 and late.actions == []
    account = _account(sandbox, late.user_id)
    assert account["logins_failed"] == 1 and not account["locked"]


def test_wrong_password_is_one_attempt_only(sandbox, pki):
    _run(sandbox, pki, "foces-03").log_on()
    wrong = _run(sandbox, pki, "foces-03", password="Wrong-But-Long-Enough")
    with pytest.raises(module_code.RegistrationFailed) as failed:
        wrong.log_on()
    assert wrong.logins == 1
    assert "4 attempts left" in str(failed.value) and "Wrong-But-Long-Enough" not in str(failed.value)


def test_wait_timeout_names_the_fix(sandbox, pki):
    run = _run(sandbox, pki, "foces-04", wait_timeout=1)
    with pytest.raises(module_code.RegistrationFailed) as failed:
        module_code.real_run(run.module, run)
    assert "still in progress after 1 seconds" in str(failed.value) and "wait_timeout" in str(failed.value)
    assert run.actions == ["password_changed", "registration_requested"]


def test_no_wait_returns_in_progress(sandbox, pki):
    run = _run(sandbox, pki, "foces-05", wait=False, email="ops@example.dk")
    dummy, after, status, gateway_user, dummy2 = module_code.real_run(run.module, run)
    assert status == "in_progress" and gateway_user is None
    assert run.actions == ["password_changed", "registration_requested", "email_updated"]
    assert after["email"] == "ops@example.dk" and after["interfaces"] == []


# -- choosing the profile (before anything is sent) --------------------------------------------------
class Failed(Exception):
    pass


class ProfileModule(FakeModule):
    def __init__(self, **params):
        super().__init__(portal_api_profile=None, portal_api_profile_content=None, portal_url=None,
                         environment="test")
        self.params.update(params)

    def fail_json(self, **result):
        raise Failed(result)


def test_a_profile_with_an_error_fails_the_task_naming_call_and_field(tmp_path):
    path = tmp_path / "portal.yml"
    with open(shapes.VARIANT_PROFILE, encoding="utf-8") as handle:
        text = handle.read()
    path.write_text(text.replace("path: /rest/v2/certificate/credentials", "path: /rest/v2/{certificate}"))
    with pytest.raises(Failed) as failed:
        module_code.load_profile(ProfileModule(portal_api_profile=str(path)))
    result = failed.value.args[0]
    assert result["reason"] == "invalid_profile"
    assert "calls.gateway_credentials.path: unknown placeholder {certificate}" in result["msg"]
    assert str(path) in result["msg"] and "Fix:" in result["msg"]


def test_the_profile_can_be_given_as_data_and_chooses_the_base_url():
    document = shapes.profile_for("variant")
    module = ProfileModule(portal_api_profile_content={"name": "broken"})
    with pytest.raises(Failed) as failed:
        module_code.load_profile(module)
    assert "calls: missing" in failed.value.args[0]["msg"]
    assert "given in portal_api_profile_content" in failed.value.args[0]["msg"]
    with pytest.raises(Failed) as no_url:  # the variant's profile names no base URL
        module_code.portal_base_url(ProfileModule(), document)
    assert "base_urls.test" in no_url.value.args[0]["msg"] and "portal_url" in no_url.value.args[0]["msg"]
    assert module_code.portal_base_url(ProfileModule(portal_url="https://portal.example/x/"), document) == \
        "https://portal.example/x"
    built_in = module_code.load_profile(ProfileModule())
    assert module_code.portal_base_url(ProfileModule(environment="production"), built_in) == \
        "https://secureftpgateway.skat.dk/PortalCertApp"


def test_without_jmespath_the_task_says_which_library_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "jmespath", None)  # importing it now fails, as on a host without it
    with pytest.raises(Failed) as failed:
        module_code._deps.require(ProfileModule(), *module_code.LIBRARIES)  # pylint: disable=protected-access
    assert failed.value.args[0]["missing_libraries"] == ["jmespath"]
    assert "jmespath>=1.0" in failed.value.args[0]["msg"]
