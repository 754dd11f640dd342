# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_identity: portal user ids."""

from __future__ import annotations

import pytest

from ansible_collections.dkcustoms.dms.plugins.module_utils import _identity

UUID = "175a859d-ed76-45af-828f-3a69691a7157"


def test_build_and_parse_roundtrip():
    user_id = _identity.build_portal_user_id("98753572", UUID)
    assert user_id == "CVR_98753572_UI_" + UUID
    assert _identity.parse_portal_user_id(user_id) == {
        "cvr": "98753572", "uuid": UUID, "kind": "UI", "portal_user_id": user_id}


def test_ur_form_is_accepted_and_normalised():
    parsed = _identity.parse_portal_user_id("CVR_98753572_UR_" + UUID.upper())
    assert parsed["kind"] == "UR" and parsed["uuid"] == UUID
    assert parsed["portal_user_id"] == "CVR_98753572_UI_" + UUID
    assert _identity.build_portal_user_id("98753572", UUID, kind="UR") == "CVR_98753572_UR_" + UUID


def test_integer_cvr_is_accepted():
    assert _identity.validate_cvr(12345678) == "12345678"


@pytest.mark.parametrize("cvr, words", [
    ("1234567", "has 7 digits"), ("123456789", "has 9 digits"), ("DK12345678", "not a number"),
    ("", "not a number"), (None, "missing"), (True, "missing")])
def test_bad_cvr(cvr, words):
    with pytest.raises(_identity.IdentityError) as err:
        _identity.build_portal_user_id(cvr, UUID)
    assert words in str(err.value) and "Fix:" in str(err.value)


@pytest.mark.parametrize("uuid, words", [
    (UUID[:-1], "has 35 characters"), (UUID + "0", "has 37 characters"),
    (UUID.replace("-", "x", 1), "not in the form"), ("g" * 36, "not in the form"), (None, "missing")])
def test_bad_uuid(uuid, words):
    with pytest.raises(_identity.IdentityError) as err:
        _identity.build_portal_user_id("12345678", uuid)
    assert words in str(err.value)


@pytest.mark.parametrize("value, words", [
    ("CVR_12345678_UID_1234567", "OCES2"),
    ("CVR_12345678_RID_1234567", "OCES2"),
    ("UR_" + UUID, "without the CVR part"),
    ("something else", "not a portal user id"),
    ("CVR_12345678_XX_" + UUID, "expected UI"),
    ("CVR_1234_UI_" + UUID, "has 4 digits"),
    ("CVR_12345678_UI_" + UUID[:30], "has 30 characters"),
    (12345678, "must be text"),
])
def test_parse_errors(value, words):
    with pytest.raises(_identity.IdentityError) as err:
        _identity.parse_portal_user_id(value)
    assert words in str(err.value)


def test_bad_kind():
    with pytest.raises(_identity.IdentityError):
        _identity.build_portal_user_id("12345678", UUID, kind="UID")
