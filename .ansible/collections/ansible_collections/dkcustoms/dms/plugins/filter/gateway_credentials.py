# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filter parse_gateway_credentials (documented in parse_gateway_credentials.yml beside this file)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.dkcustoms.dms.plugins.module_utils._gateway_credentials import CredentialsError, parse


def parse_gateway_credentials(content, what="the gateway credentials file"):
    """File content (text) | parse_gateway_credentials -> {gateway_user, gateway_password}."""
    try:
        return parse(content, what=what)
    except CredentialsError as exc:
        raise AnsibleFilterError("parse_gateway_credentials: %s" % exc)


class FilterModule:
    """Gateway credentials filter."""

    def filters(self):
        return {"parse_gateway_credentials": parse_gateway_credentials}
