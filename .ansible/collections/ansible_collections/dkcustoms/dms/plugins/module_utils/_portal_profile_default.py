# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The built-in portal API profile: the model of docs/portal-api.md, as data.  Knows no Ansible.

Why a Python dict and not a YAML file: modules are shipped to the host they run on (AnsiballZ) with
their Python module_utils only, and PyYAML is not on every host.  The same profile as YAML, to copy
and adapt, is examples/portal-api-profiles/default.yml; a unit test keeps the two equal.
``_portal_profile`` reads and validates it like any user profile.
"""

from __future__ import annotations

_OVERVIEW = {
    "user_id": "user_id",
    "account_state": "account_state",
    "common_name": "common_name",
    "expiry_date": "expiry_date",
    "registration_status": "registration_status",
    "se_number": "se_number",
    "email": "email",
    "interfaces": "interfaces",
    "gateway_user": "gateway_user",
}

PROFILE = {
    "profile_format": 1,
    "name": "default",
    "description": "The certificate portal's API as modelled in docs/portal-api.md (the sandbox's default shape).",
    "base_urls": {
        "test": "https://secureftp.gatewaytest.skat.dk/PortalCertApp",
        "production": "https://secureftpgateway.skat.dk/PortalCertApp",
    },
    "session": {"type": "bearer", "token": "token", "header": "Authorization", "scheme": "Bearer"},
    "errors": {
        "code": "error",
        "detail": "detail",
        "attempts_remaining": "attempts_remaining",
        "registration_status": "registration_status",
    },
    "calls": {
        "whoami": {
            "method": "GET", "path": "/api/whoami",
            "answer": {"user_id": "user_id", "account_state": "account_state", "common_name": "common_name",
                       "expiry_date": "expiry_date"},
        },
        "login": {
            "method": "POST", "path": "/api/session",
            "body": {"user_id": "{user_id}", "password": "{password}"},
            "answer": {"password_change_required": "password_change_required"},
        },
        "change_password": {
            "method": "POST", "path": "/api/session/password",
            "body": {"current_password": "{current_password}", "new_password": "{new_password}"},
        },
        "overview": {"method": "GET", "path": "/api/certificate", "answer": _OVERVIEW},
        "request_registration": {
            "method": "POST", "path": "/api/certificate/registration", "body": {},
            "answer": {"registration_status": "registration_status"},
        },
        "set_se_number": {
            "method": "PUT", "path": "/api/certificate/se-number", "body": {"se_number": "{se_number}"},
            "answer": _OVERVIEW,
        },
        "set_email": {
            "method": "PUT", "path": "/api/certificate/email", "body": {"email": "{email}"},
            "answer": _OVERVIEW,
        },
        "set_interfaces": {
            "method": "PUT", "path": "/api/certificate/interfaces", "body": {"interfaces": "{interfaces}"},
            "answer": _OVERVIEW,
        },
        "gateway_credentials": {
            "method": "GET", "path": "/api/certificate/gateway-credentials",
            "answer": {"gateway_user": "gateway_user", "gateway_password": "gateway_password"},
        },
        "logout": {"method": "DELETE", "path": "/api/session"},
    },
}
