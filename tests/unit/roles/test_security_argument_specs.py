# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every secret option of every role's argument_specs is no_log (security review, issue 10, item 16),
and no option that is not secret is caught by the rule by mistake."""

from __future__ import annotations

import glob
import os
import re

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
# Names that hold a secret: passwords, passphrases, key or keystore content, gateway credentials. Paths
# and file names of such things are not secrets (the same rule ansible-test applies to module options).
SECRET = re.compile(r"(password|passphrase|secret|token|_content|_credentials)$")
SPEC_FILES = sorted(glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml")))


def _options():
    for path in SPEC_FILES:
        with open(path, encoding="utf-8") as handle:
            specs = yaml.safe_load(handle)["argument_specs"]
        role = path.split(os.sep)[-3]
        for entry, spec in specs.items():
            for name, option in (spec.get("options") or {}).items():
                yield "%s/%s/%s" % (role, entry, name), option


def test_every_role_has_an_argument_spec():
    assert {path.split(os.sep)[-3] for path in SPEC_FILES} >= {
        "certificate", "registration", "rotation", "connectivity", "onboarding"}


@pytest.mark.parametrize("where,option", [pair for pair in _options() if SECRET.search(pair[0])],
                         ids=lambda value: value if isinstance(value, str) else "")
def test_secret_options_are_no_log(where, option):
    assert option.get("no_log") is True, "%s holds a secret and needs no_log: true" % where


def test_the_secret_options_are_the_expected_ones():
    secret = sorted(where for where, option in _options() if option.get("no_log"))
    assert secret == sorted([
        "certificate/main/certificate_content", "certificate/main/certificate_passphrase",
        "certificate/main/certificate_keystore_passphrase", "certificate/main/certificate_key_passphrase",
        "registration/main/registration_password", "registration/main/registration_certificate_content",
        "registration/main/registration_certificate_passphrase", "registration/main/registration_manual_credentials",
        "rotation/main/rotation_certificate_content", "rotation/main/rotation_certificate_passphrase",
        "connectivity/main/connectivity_private_key_passphrase",
        # package index URLs and the proxy may carry user:password
        "prerequisites/main/prerequisites_pip_index_url", "prerequisites/main/prerequisites_pip_extra_index_urls",
        "prerequisites/main/prerequisites_pip_proxy",
    ])
