# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The portal_user_id filters, called directly and through a real Jinja2 template."""

from __future__ import annotations

import jinja2
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.dkcustoms.dms.plugins.filter import portal_user_id as plugin

UUID = "4b56c2a1-0d0e-4f5a-9b1c-2d3e4f5a6b7c"


def test_filters_are_registered():
    assert set(plugin.FilterModule().filters()) == {"portal_user_id", "parse_portal_user_id"}


def test_build_from_values_and_from_info_dict():
    assert plugin.portal_user_id("20363231", UUID) == "CVR_20363231_UI_" + UUID
    assert plugin.portal_user_id({"cvr": "20363231", "uuid": UUID}) == "CVR_20363231_UI_" + UUID


def test_build_errors_are_filter_errors():
    with pytest.raises(AnsibleFilterError, match="exactly 8 digits"):
        plugin.portal_user_id("2036323", UUID)
    with pytest.raises(AnsibleFilterError, match="36 characters"):
        plugin.portal_user_id("20363231", UUID[:-2])
    with pytest.raises(AnsibleFilterError, match="not both"):
        plugin.portal_user_id({"cvr": "20363231", "uuid": UUID}, UUID)


def test_parse():
    assert plugin.parse_portal_user_id("CVR_20363231_UR_" + UUID)["cvr"] == "20363231"
    with pytest.raises(AnsibleFilterError, match="parse_portal_user_id: .*OCES2"):
        plugin.parse_portal_user_id("CVR_20363231_UID_12345")


def test_through_jinja2():
    env = jinja2.Environment()
    env.filters.update(plugin.FilterModule().filters())
    out = env.from_string("{{ (cvr | portal_user_id(uuid)) | parse_portal_user_id | json }}"
                          .replace(" | json", "")).render(cvr="20363231", uuid=UUID)
    assert "'cvr': '20363231'" in out and UUID in out
