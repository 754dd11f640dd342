# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter registration_worksheet (documented in registration_worksheet.yml beside this file)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.dkcustoms.dms.plugins.module_utils import _worksheet


def registration_worksheet(certificate, method="manual", environment="test", portal_url=None, se_number="",
                           email="", interfaces=None, credentials_variable="registration_manual_credentials",
                           password_variable="registration_password"):
    """certificate_summary | registration_worksheet(method=..., ...) -> one worksheet entry (a dict)."""
    try:
        return _worksheet.entry(certificate, method, environment, portal_url=portal_url, se_number=se_number,
                                email=email, interfaces=["AS4"] if interfaces is None else interfaces,
                                credentials_variable=credentials_variable, password_variable=password_variable)
    except _worksheet.WorksheetError as exc:
        raise AnsibleFilterError("registration_worksheet: %s" % exc)


class FilterModule:
    """Registration worksheet filter."""

    def filters(self):
        return {"registration_worksheet": registration_worksheet}
