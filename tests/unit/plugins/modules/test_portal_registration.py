# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""portal_registration's logon strategy and waiting, against a real dms-sandbox whose sessions
expire after 2 seconds and whose registrations take 3 (paths the integration target cannot reach)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

from ansible_collections.dkcustoms.dms.plugins.module_utils import _http, _oces
from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_client as portal
from ansible_collections.dkcustoms.dms.plugins.modules import portal_registration as module_code

PASSWORD = "Unit-Test-Module-Pw-42"


@pytest.fixture(scope="module")
def pki_dir(require_tool):
    """The test PKI; the tests here need the dms-sandbox command (pip install -e sandbox)."""
    require_tool("dms-sandbox")
    directory = os.environ.get("DMS_PKI_DIR")
    if not directory:
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
                    "--registration-delay", "3", "--session-lifetime", "2"],
                   check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(state, "sandbox.json"), encoding="utf-8") as handle:
        info = json.load(handle)
    yield info
    subprocess.run([dms_sandbox, "stop", "--state", state], check=False, stdout=subprocess.DEVNULL)


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
    session = _http.create_session(ca_path=sandbox["ca_bundle"], timeout=10,
                                   client_cert=_http.client_cert_from_bundle(bundle))
    run = module_code.Registration(FakeModule(**params), portal.PortalClient(session, sandbox["portal_url"]))
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
