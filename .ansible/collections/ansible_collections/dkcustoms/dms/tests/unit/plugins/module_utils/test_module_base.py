# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The module base: option groups compose into one argument spec; DmsError becomes fail_json."""

from __future__ import annotations

import pytest

from ansible_collections.dkcustoms.dms.plugins.module_utils._errors import DmsError, fail
from ansible_collections.dkcustoms.dms.plugins.module_utils._module import OptionGroup, compose

SOURCE = OptionGroup("source", {"a_path": {"type": "path"}, "a_content": {"type": "str", "no_log": True}},
                     mutually_exclusive=[("a_path", "a_content")], required_one_of=[("a_path", "a_content")])
CONN = OptionGroup("conn", {"url": {"type": "str"}}, required_by={"url": "a_path"})


def test_groups_compose_options_and_rules():
    kwargs = compose({"own": {"type": "bool"}}, [SOURCE, CONN], mutually_exclusive=[("own", "url")])
    assert sorted(kwargs["argument_spec"]) == ["a_content", "a_path", "own", "url"]
    assert kwargs["mutually_exclusive"] == [("own", "url"), ("a_path", "a_content")]
    assert kwargs["required_one_of"] == [("a_path", "a_content")]
    assert kwargs["required_by"] == {"url": "a_path"}
    assert "required_together" not in kwargs


def test_composed_spec_is_a_copy():
    kwargs = compose({}, [SOURCE])
    kwargs["argument_spec"]["a_path"]["type"] = "str"
    assert SOURCE.options["a_path"]["type"] == "path"


def test_an_option_defined_twice_is_refused():
    with pytest.raises(ValueError, match="a_path"):
        compose({"a_path": {"type": "str"}}, [SOURCE])


def test_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="required_sometimes"):
        OptionGroup("bad", {}, required_sometimes=[])


class _Module:
    def fail_json(self, **kwargs):
        self.failed = kwargs


def test_fail_reports_message_reason_and_details():
    module = _Module()
    fail(module, DmsError("x is wrong. Fix: give y.", reason="bad_x", layer="tls"), changed=False)
    assert module.failed == {"msg": "x is wrong. Fix: give y.", "reason": "bad_x", "layer": "tls", "changed": False}


def test_subclass_reason_is_the_default():
    class Expired(DmsError):
        reason = "expired"
    assert Expired("old").reason == "expired"
    assert Expired("old", reason="not_yet_valid").reason == "not_yet_valid"
