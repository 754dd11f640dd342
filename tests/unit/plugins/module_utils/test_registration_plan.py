# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_registration.plan without a portal: every account state the portal can show x the settings a task
wants -> the ordered steps and the settings they lead to (what check mode reports and the diff shows)."""

from __future__ import annotations

import itertools

import pytest

from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_logon
from ansible_collections.dkcustoms.dms.plugins.module_utils import _registration as reg

USER = "CVR_12345678_UI_175a859d-ed76-45af-828f-3a69691a7157"
GATEWAY_USER = "CVR_12345678_UR_175a859d-ed76-45af-828f-3a69691a7157"


def settings(status, se_number=None, email=None, interfaces=(), gateway_user=None):
    return {"registration_status": status, "se_number": se_number, "email": email,
            "interfaces": list(interfaces), "gateway_user": gateway_user}


def wanted(**values):
    defaults = {"se_number": None, "email": None, "interfaces": ["AS4"], "wait": True, "wait_timeout": 900,
                "credentials_dest": None, "return_gateway_password": False}
    defaults.update(values)
    return reg.Wanted(**defaults)


# What the portal can show.
ACCOUNTS = {
    "new": reg.never_used(USER),
    "active-not-registered": reg.Observed(USER, "active", settings("not_registered"), None),
    "active-in-progress": reg.Observed(USER, "active", settings("in_progress", email="ops@example.dk"), None),
    "active-registered-bare": reg.Observed(USER, "active", settings("registered", gateway_user=GATEWAY_USER), None),
    "active-registered-set": reg.Observed(USER, "active", settings(
        "registered", "12345678", "ops@example.dk", ["AS4"], GATEWAY_USER), None),
    "registered-credentials-current": reg.Observed(USER, "active", settings(
        "registered", "12345678", "ops@example.dk", ["AS4"], GATEWAY_USER), True),
    "registered-credentials-stale": reg.Observed(USER, "active", settings(
        "registered", "12345678", "ops@example.dk", ["AS4"], GATEWAY_USER), False),
}

# What a task can want.
WANTED = {
    "defaults": wanted(),
    "no-wait": wanted(wait=False),
    "settings": wanted(se_number="12345678", email="ops@example.dk"),
    "other-settings": wanted(se_number="87654321", email="other@example.dk", interfaces=["FTPS", "AS4", "AS4"]),
    "clear": wanted(se_number="", email=""),
    "credentials": wanted(se_number="12345678", email="ops@example.dk", credentials_dest="/etc/dms/creds.json"),
    "credentials-no-wait": wanted(wait=False, credentials_dest="/etc/dms/creds.json"),
}

W = reg.WaitForRegistration(900)
CHANGE, REQUEST, STORE = reg.ChangePassword(), reg.RequestRegistration(), reg.StoreCredentials()
SE, SE2, NO_SE = reg.SetSeNumber("12345678"), reg.SetSeNumber("87654321"), reg.SetSeNumber(None)
EMAIL, EMAIL2, NO_EMAIL = reg.SetEmail("ops@example.dk"), reg.SetEmail("other@example.dk"), reg.SetEmail(None)
AS4, BOTH = reg.SetInterfaces(["AS4"]), reg.SetInterfaces(["AS4", "FTPS"])

# (account, wanted) -> the steps, in order.
EXPECTED = {
    ("new", "defaults"): [CHANGE, REQUEST, W, AS4],
    ("new", "no-wait"): [CHANGE, REQUEST],
    ("new", "settings"): [CHANGE, REQUEST, W, SE, EMAIL, AS4],
    ("new", "other-settings"): [CHANGE, REQUEST, W, SE2, EMAIL2, BOTH],
    ("new", "clear"): [CHANGE, REQUEST, W, AS4],
    ("new", "credentials"): [CHANGE, REQUEST, W, SE, EMAIL, AS4, STORE],
    ("new", "credentials-no-wait"): [CHANGE, REQUEST],
    ("active-not-registered", "defaults"): [REQUEST, W, AS4],
    ("active-not-registered", "no-wait"): [REQUEST],
    ("active-not-registered", "settings"): [REQUEST, W, SE, EMAIL, AS4],
    ("active-not-registered", "other-settings"): [REQUEST, W, SE2, EMAIL2, BOTH],
    ("active-not-registered", "clear"): [REQUEST, W, AS4],
    ("active-not-registered", "credentials"): [REQUEST, W, SE, EMAIL, AS4, STORE],
    ("active-not-registered", "credentials-no-wait"): [REQUEST],
    ("active-in-progress", "defaults"): [W, AS4],
    ("active-in-progress", "no-wait"): [],
    ("active-in-progress", "settings"): [W, SE, AS4],
    ("active-in-progress", "other-settings"): [W, SE2, EMAIL2, BOTH],
    ("active-in-progress", "clear"): [W, NO_EMAIL, AS4],
    ("active-in-progress", "credentials"): [W, SE, AS4, STORE],
    ("active-in-progress", "credentials-no-wait"): [],
    ("active-registered-bare", "defaults"): [AS4],
    ("active-registered-bare", "no-wait"): [AS4],
    ("active-registered-bare", "settings"): [SE, EMAIL, AS4],
    ("active-registered-bare", "other-settings"): [SE2, EMAIL2, BOTH],
    ("active-registered-bare", "clear"): [AS4],
    ("active-registered-bare", "credentials"): [SE, EMAIL, AS4, STORE],
    ("active-registered-bare", "credentials-no-wait"): [AS4, STORE],
    ("active-registered-set", "defaults"): [],
    ("active-registered-set", "no-wait"): [],
    ("active-registered-set", "settings"): [],
    ("active-registered-set", "other-settings"): [SE2, EMAIL2, BOTH],
    ("active-registered-set", "clear"): [NO_SE, NO_EMAIL],
    ("active-registered-set", "credentials"): [STORE],
    ("active-registered-set", "credentials-no-wait"): [STORE],
    ("registered-credentials-current", "defaults"): [],
    ("registered-credentials-current", "no-wait"): [],
    ("registered-credentials-current", "settings"): [],
    ("registered-credentials-current", "other-settings"): [SE2, EMAIL2, BOTH],
    ("registered-credentials-current", "clear"): [NO_SE, NO_EMAIL],
    ("registered-credentials-current", "credentials"): [],
    ("registered-credentials-current", "credentials-no-wait"): [],
    ("registered-credentials-stale", "defaults"): [],
    ("registered-credentials-stale", "no-wait"): [],
    ("registered-credentials-stale", "settings"): [],
    ("registered-credentials-stale", "other-settings"): [SE2, EMAIL2, BOTH],
    ("registered-credentials-stale", "clear"): [NO_SE, NO_EMAIL],
    ("registered-credentials-stale", "credentials"): [STORE],
    ("registered-credentials-stale", "credentials-no-wait"): [STORE],
}


def test_the_table_covers_every_account_state_and_wanted_settings():
    assert set(EXPECTED) == set(itertools.product(ACCOUNTS, WANTED))


@pytest.mark.parametrize("account,want", sorted(EXPECTED))
def test_plan(account, want):
    observed, task = ACCOUNTS[account], WANTED[want]
    plan = reg.plan(observed, task)
    assert list(plan.steps) == EXPECTED[(account, want)]
    assert plan.actions == [step.action for step in EXPECTED[(account, want)] if step.action]
    assert plan.before == observed.settings
    # The settings after the plan are the ones the task wants, where the plan could reach them.
    after = plan.after
    if task.se_number is not None:
        assert after["se_number"] == (task.se_number or None)
    if task.email is not None:
        assert after["email"] == (task.email or None)
    if after["registration_status"] == "registered":
        assert after["interfaces"] == sorted(set(task.interfaces))
    else:
        assert after["interfaces"] == observed.settings["interfaces"]
    expected_status = {True: "registered", False: observed.settings["registration_status"]}[task.wait]
    if observed.settings["registration_status"] == "not_registered":
        expected_status = "registered" if task.wait else "in_progress"
    assert after["registration_status"] == expected_status
    assert after["gateway_user"] == observed.settings["gateway_user"]  # read from the portal, never predicted


@pytest.mark.parametrize("account,want", sorted(EXPECTED))
def test_a_plan_carried_out_leaves_nothing_to_do(account, want):
    """Idempotence in the plan itself: planning again from where a plan leads needs no step."""
    observed, task = ACCOUNTS[account], WANTED[want]
    first = reg.plan(observed, task)
    current = True if reg.StoreCredentials() in first.steps else observed.credentials_current
    second = reg.plan(reg.Observed(USER, "active", first.after, current), task)
    if first.after["registration_status"] == "in_progress":  # with wait=false: the next run waits or not
        assert second.steps == () or second.steps == (reg.WaitForRegistration(900),)
    else:
        assert second.steps == ()
    assert second.after == first.after


def test_a_locked_account_has_no_plan():
    with pytest.raises(_portal_logon.LogonFailed) as locked:
        reg.plan(reg.Observed(USER, "locked", settings("registered"), None), wanted())
    assert locked.value.reason == "account_locked" and USER in locked.value.msg and "Fix" not in USER


@pytest.mark.parametrize("params,problem", [
    ({"interfaces": []}, "interfaces is empty"),
    ({"wait_timeout": -1}, "wait_timeout must be 0 or more"),
    ({"se_number": "1234"}, "se_number must be exactly 8 digits"),
    ({"se_number": "1234567a"}, "se_number must be exactly 8 digits"),
], ids=["no-interfaces", "negative-timeout", "short-se-number", "letter-se-number"])
def test_wanted_settings_are_checked_before_anything_is_sent(params, problem):
    options = {"se_number": None, "email": None, "interfaces": ["AS4"], "wait": True, "wait_timeout": 900,
               "gateway_credentials_dest": None, "return_gateway_password": False}
    options.update(params)
    with pytest.raises(reg.RegistrationFailed) as failed:
        reg.wanted_from(options)
    assert problem in failed.value.msg and "Fix:" in failed.value.msg and failed.value.reason == "invalid_option"


def test_a_directory_is_no_credentials_file(tmp_path):
    options = {"se_number": "", "email": None, "interfaces": ["AS4"], "wait": True, "wait_timeout": 900,
               "gateway_credentials_dest": str(tmp_path), "return_gateway_password": False}
    with pytest.raises(reg.RegistrationFailed, match="is a directory. Fix: give a file path"):
        reg.wanted_from(options)
    options["gateway_credentials_dest"] = str(tmp_path / "creds.json")
    assert reg.wanted_from(options).credentials_dest == str(tmp_path / "creds.json")
