# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters portal_user_id and parse_portal_user_id (documented in portal_user_id.yml and
parse_portal_user_id.yml beside this file)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.dkcustoms.dms.plugins.module_utils._identity import (
    IdentityError,
    build_portal_user_id,
    parse_portal_user_id as _parse,
)


def portal_user_id(cvr, uuid=None, kind="UI"):
    """cvr | portal_user_id(uuid) -> CVR_<cvr>_UI_<uuid>.  A dict with cvr and uuid keys (e.g. the
    result of oces_certificate_info) may be piped in instead."""
    if isinstance(cvr, dict):
        if uuid is not None:
            raise AnsibleFilterError("portal_user_id: give either a dict with cvr and uuid, or cvr "
                                     "and uuid, not both.")
        cvr, uuid = cvr.get("cvr"), cvr.get("uuid")
    try:
        return build_portal_user_id(cvr, uuid, kind)
    except IdentityError as exc:
        raise AnsibleFilterError("portal_user_id: %s" % exc)


def parse_portal_user_id(value):
    """'CVR_x_UI_uuid' | parse_portal_user_id -> {cvr, uuid, kind, portal_user_id}."""
    try:
        return _parse(value)
    except IdentityError as exc:
        raise AnsibleFilterError("parse_portal_user_id: %s" % exc)


class FilterModule:
    """Portal user id filters."""

    def filters(self):
        return {"portal_user_id": portal_user_id, "parse_portal_user_id": parse_portal_user_id}
