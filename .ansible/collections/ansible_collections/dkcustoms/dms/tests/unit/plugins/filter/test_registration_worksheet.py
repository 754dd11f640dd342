# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The registration_worksheet filter (module_utils/_worksheet.py): what a person is told to do."""

from __future__ import annotations

import json

import jinja2
import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.dkcustoms.dms.plugins.filter import registration_worksheet as plugin
from ansible_collections.dkcustoms.dms.plugins.module_utils import _worksheet

USER_ID = "CVR_98753572_UI_175a859d-ed76-45af-828f-3a69691a7157"
CERTIFICATE = {"portal_user_id": USER_ID, "cvr": "98753572", "certificate_type": "FOCES",
               "common_name": "OCES3 (test) systemcertifikat", "not_after": "2025-12-04T10:00:00Z",
               "fingerprint_sha256": "ab" * 32, "subject": "CN=OCES3 (test) systemcertifikat,C=DK"}


def test_filter_is_registered():
    assert set(plugin.FilterModule().filters()) == {"registration_worksheet"}


def test_manual_entry_names_everything_a_person_needs():
    entry = plugin.registration_worksheet(CERTIFICATE, method="manual", environment="test", se_number="12345678",
                                          email="dms@example.dk", interfaces=["AS4"],
                                          credentials_variable="vault_registration_manual_credentials")
    assert entry["portal_url"] == "https://secureftp.gatewaytest.skat.dk/PortalCertApp/"  # the guide's
    assert (entry["portal_user_id"], entry["common_name"], entry["certificate_type"], entry["not_after"]) == (
        USER_ID, "OCES3 (test) systemcertifikat", "FOCES", "2025-12-04T10:00:00Z")
    assert USER_ID in entry["first_logon_password"]
    assert (entry["se_number"], entry["email"], entry["interfaces"]) == ("12345678", "dms@example.dk", ["AS4"])
    assert entry["credentials_variable"] == 'vault_registration_manual_credentials["%s"]' % USER_ID
    steps = " ".join(entry["steps"])
    for text in (entry["portal_url"], USER_ID, "SE-number: 12345678", "Register certificate", "Refresh",
                 "dms@example.dk", "tick AS4", entry["credentials_variable"], "run the playbook again"):
        assert text in steps, text
    assert "registration_password" not in steps  # manual mode never asks for the automation's portal password


def test_the_vault_lines_are_yaml_that_reads_back_to_the_variable_path():
    entry = plugin.registration_worksheet(CERTIFICATE, credentials_variable="vault_registration_manual_credentials")
    document = yaml.safe_load(entry["credentials_yaml"])
    assert list(document) == ["vault_registration_manual_credentials"]
    assert set(document["vault_registration_manual_credentials"][USER_ID]) == {"gateway_user", "gateway_password"}
    # The path's key is quoted as Jinja2 reads it: it finds the entry the lines make.
    path = entry["credentials_variable"]
    assert jinja2.Environment().from_string("{{ %s.gateway_user }}" % path).render(document).startswith("<Gateway user")


def test_empty_settings_say_to_leave_them():
    entry = plugin.registration_worksheet(CERTIFICATE)
    steps = " ".join(entry["steps"])
    assert "Leave SE-number empty" in steps and "Update e-mail" not in steps
    assert entry["interfaces"] == ["AS4"] and entry["credentials_variable"].startswith("registration_manual_credentials[")


def test_portal_entry_says_to_use_the_inventory_portal_password():
    entry = plugin.registration_worksheet(CERTIFICATE, method="portal", interfaces=["AS4", "FTPS"])
    steps = " ".join(entry["steps"])
    assert entry["method"] == "portal" and "registration_password" in steps and "tick AS4 and FTPS" in steps
    assert "registration_method: manual" in steps  # the way to keep the automation off the portal


def test_production_and_override_addresses():
    assert plugin.registration_worksheet(CERTIFICATE, environment="production")["portal_url"] == \
        "https://secureftpgateway.skat.dk/PortalCertApp/"
    assert plugin.registration_worksheet(CERTIFICATE, portal_url="https://portal.example/")["portal_url"] == \
        "https://portal.example/"
    assert set(_worksheet.PORTAL_WEB_URLS) == {"test", "production"}


def test_common_name_falls_back_to_the_subject():
    certificate = dict(CERTIFICATE)
    del certificate["common_name"]
    assert plugin.registration_worksheet(certificate)["common_name"] == CERTIFICATE["subject"]


@pytest.mark.parametrize("certificate,options,message", [
    ({}, {}, "no portal_user_id.*Fix: pass the certificate role's certificate_summary"),
    (None, {}, "no portal_user_id"),
    (CERTIFICATE, {"method": "browser"}, "method 'browser'.*Fix: set registration_method"),
    (CERTIFICATE, {"environment": "staging"}, "environment 'staging'.*Fix: set registration_environment"),
    (CERTIFICATE, {"interfaces": []}, "interfaces is empty.*Fix"),
])
def test_bad_input_names_the_problem_and_the_fix(certificate, options, message):
    with pytest.raises(AnsibleFilterError, match="registration_worksheet: .*" + message):
        plugin.registration_worksheet(certificate, **options)


def test_entry_is_plain_data_through_jinja2():
    env = jinja2.Environment()
    env.filters.update(plugin.FilterModule().filters())
    out = env.from_string("{{ cert | registration_worksheet(method='manual', email='a@b.dk') | tojson }}").render(
        cert=CERTIFICATE)
    entry = json.loads(out)
    assert entry["kind"] == "register_certificate" and entry["email"] == "a@b.dk"
    assert all(isinstance(step, str) for step in entry["steps"])
