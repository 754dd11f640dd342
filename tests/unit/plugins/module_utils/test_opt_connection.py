# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The connection option group: validation in one place, the service URL, and the one retry policy."""

from __future__ import annotations

import pytest

from ansible_collections.dkcustoms.dms.plugins.module_utils import _errors, _opt_connection
from ansible_collections.dkcustoms.dms.plugins.module_utils._module import compose
from ansible_collections.dkcustoms.dms.plugins.module_utils._opt_connection import (
    Connection, ConnectionOptionError, RetryPolicy, resolve_url)

DEFAULTS = {"test": "https://gw.test.example:6384", "production": "https://gw.example:6384"}


def _params(**overrides):
    params = {"environment": "test", "ca_path": None, "validate_certs": True, "timeout": 30, "retries": 5}
    params.update(overrides)
    return params


def test_the_group_has_the_documented_options_and_a_module_may_choose_defaults():
    spec = compose({}, [_opt_connection.group(default_retries=2)])["argument_spec"]
    assert sorted(spec) == sorted(_opt_connection.OPTIONS)
    assert spec["retries"]["default"] == 2 and spec["timeout"]["default"] == 30
    assert spec["environment"]["choices"] == ["test", "production"]


@pytest.mark.parametrize("overrides, words", [
    ({"timeout": 0}, "timeout must be a positive"),
    ({"retries": -1}, "retries must be 0 or more"),
    ({"ca_path": "/nonexistent/ca.pem"}, "ca_path /nonexistent/ca.pem does not exist"),
])
def test_each_bad_option_is_named_with_its_fix(overrides, words):
    with pytest.raises(ConnectionOptionError) as err:
        Connection.from_params(_params(**overrides))
    assert words in err.value.msg and "Fix:" in err.value.msg
    assert isinstance(err.value, _errors.DmsError) and err.value.reason == "invalid_option"


def test_validate_certs_false_is_warned_about(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    assert Connection.from_params(_params(ca_path=str(ca))).warnings() == []
    assert "not verified" in Connection.from_params(_params(validate_certs=False)).warnings()[0]


def test_url_resolution():
    assert resolve_url(None, "production", DEFAULTS) == "https://gw.example:6384"
    assert resolve_url("https://other:1/base/", "test", DEFAULTS) == "https://other:1/base"
    for bad in ("http://gw.example:6384", "gw.example:6384", "https:///x"):
        with pytest.raises(ConnectionOptionError) as err:
            resolve_url(bad, "test", DEFAULTS)
        assert "must be an https:// URL" in err.value.msg


def test_transient_statuses_are_defined_once():
    policy = RetryPolicy()
    assert [s for s in range(400, 600) if policy.is_transient(s)] == [429, 500, 502, 503, 504]
    # Not replay-safe (a logon): only answers that say the request was not processed.
    assert [s for s in range(400, 600) if policy.is_transient(s, replay_safe=False)] == [429, 503]
    # AS4: an HTTP 500 carries the gateway's answer (the ebMS error signal).
    assert not RetryPolicy(answer_statuses=(500,)).is_transient(500)
    assert policy.limit() == 5 and policy.limit(replay_safe=False) == 1 and RetryPolicy(0).limit(False) == 0


def test_delay_is_retry_after_capped_or_jittered_backoff():
    policy = RetryPolicy(backoff_base=0.5, backoff_max=10.0, retry_after_max=20.0)
    assert policy.delay(0, "3") == 3.0 and policy.delay(0, "600") == 20.0
    assert 0.25 <= policy.delay(0) <= 0.5 and 0.5 <= policy.delay(1, "garbage") <= 1.0
    assert 5.0 <= policy.delay(10) <= 10.0
