# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""dkcustoms.dms.gateway_credentials and the one credentials layout (security review, issue 10, item 6):
the file is 0600 from its first byte - never, not even for a moment, readable by others - written
atomically, idempotent by content, and the password appears in no output or diff."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.dkcustoms.dms.plugins.filter.gateway_credentials import parse_gateway_credentials
from ansible_collections.dkcustoms.dms.plugins.module_utils import _gateway_credentials
from ansible_collections.dkcustoms.dms.plugins.modules import gateway_credentials as module_code

USER = "CVR_12345678_UI_175a859d-ed76-45af-828f-3a69691a7157"
PASSWORD = "Gateway-Password-Secret-88"


@pytest.fixture
def modes_seen(monkeypatch):
    """Every mode a watched path has right after each chmod, rename or open on the way (what another
    local user could catch)."""
    watched = []
    seen = []

    def look():
        for path in watched:
            if os.path.lexists(path):
                seen.append(stat.S_IMODE(os.lstat(path).st_mode))

    for name in ("chmod", "rename", "replace"):
        real = getattr(os, name)

        def wrapper(*args, _real=real, **kwargs):
            result = _real(*args, **kwargs)
            look()
            return result

        monkeypatch.setattr(os, name, wrapper)
    return watched, seen


def test_file_is_never_readable_by_others_while_it_is_written(run_module, tmp_path, modes_seen):
    dest = str(tmp_path / "gateway-credentials.json")
    watched, seen = modes_seen
    watched.append(dest)
    old_umask = os.umask(0o022)  # the usual umask: a plain create would make it 0644 for a moment
    try:
        result = run_module(module_code.main, {"dest": dest, "gateway_user": USER, "gateway_password": PASSWORD})
    finally:
        os.umask(old_umask)
    assert result["changed"] and result["gateway_user"] == USER
    assert seen and set(seen) == {0o600}, [oct(mode) for mode in seen]
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    assert PASSWORD not in json.dumps(result)


def test_layout_is_the_one_every_reader_uses(run_module, tmp_path):
    dest = tmp_path / "gateway-credentials.json"
    run_module(module_code.main, {"dest": str(dest), "gateway_user": USER, "gateway_password": PASSWORD})
    content = dest.read_bytes()
    assert content == _gateway_credentials.render({"gateway_user": USER, "gateway_password": PASSWORD})
    assert parse_gateway_credentials(content.decode()) == {"gateway_user": USER, "gateway_password": PASSWORD}
    # The layout the registration role wrote before (to_nice_json) reads the same and is not rewritten.
    assert content == json.dumps({"gateway_user": USER, "gateway_password": PASSWORD}, indent=4,
                                 sort_keys=True).encode()


def test_idempotent_by_content_and_mode(run_module, tmp_path):
    dest = tmp_path / "gateway-credentials.json"
    args = {"dest": str(dest), "gateway_user": USER, "gateway_password": PASSWORD}
    assert run_module(module_code.main, args)["changed"]
    before = os.stat(dest)
    assert not run_module(module_code.main, args)["changed"]
    assert os.stat(dest).st_mtime_ns == before.st_mtime_ns and os.stat(dest).st_ino == before.st_ino
    dest.chmod(0o644)
    assert run_module(module_code.main, args)["changed"]  # the mode is put right, the content stays
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600 and os.stat(dest).st_ino == before.st_ino


def test_check_mode_writes_nothing_and_the_diff_hides_the_password(run_module, tmp_path):
    dest = tmp_path / "gateway-credentials.json"
    result = run_module(module_code.main, {"dest": str(dest), "gateway_user": USER, "gateway_password": PASSWORD},
                        check_mode=True, diff=True)
    assert result["changed"] and not dest.exists()
    assert result["diff"]["after"] == {"gateway_user": USER, "gateway_password": "(hidden, changed)"}
    dest.write_bytes(_gateway_credentials.render({"gateway_user": USER, "gateway_password": "Older-Password-1"}))
    dest.chmod(0o600)
    result = run_module(module_code.main, {"dest": str(dest), "gateway_user": USER, "gateway_password": PASSWORD},
                        diff=True)
    assert result["diff"] == {"before": {"gateway_user": USER, "gateway_password": "(hidden)"},
                              "after": {"gateway_user": USER, "gateway_password": "(hidden, changed)"}}
    assert PASSWORD not in json.dumps(result) and "Older-Password-1" not in json.dumps(result)


@pytest.mark.parametrize("values", [{"gateway_user": "", "gateway_password": PASSWORD},
                                    {"gateway_user": USER, "gateway_password": " "}])
def test_empty_values_fail_and_leave_the_file_alone(run_module, tmp_path, values):
    dest = tmp_path / "gateway-credentials.json"
    dest.write_bytes(b"good")
    result = run_module(module_code.main, dict(values, dest=str(dest)))
    assert result["failed"] and "non-empty" in result["msg"] and dest.read_bytes() == b"good"
    assert PASSWORD not in result["msg"]


@pytest.mark.parametrize("mode", ["0644", "0604", "0660", 0o644, "u=rw,o=r"])
def test_modes_that_expose_the_password_are_refused(run_module, tmp_path, mode):
    dest = tmp_path / "gateway-credentials.json"
    result = run_module(module_code.main, {"dest": str(dest), "gateway_user": USER, "gateway_password": PASSWORD,
                                           "mode": mode})
    assert result["failed"] and "Fix:" in result["msg"] and not dest.exists()


def test_owner_group_and_group_readable_mode(run_module, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file to another user")
    dest = tmp_path / "gateway-credentials.json"
    result = run_module(module_code.main, {"dest": str(dest), "gateway_user": USER, "gateway_password": PASSWORD,
                                           "owner": "65534", "group": "65534", "mode": "0640"})
    assert result["changed"]
    info = os.stat(dest)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 65534, 0o640)


def test_absent_removes_the_file(run_module, tmp_path):
    dest = tmp_path / "gateway-credentials.json"
    run_module(module_code.main, {"dest": str(dest), "gateway_user": USER, "gateway_password": PASSWORD})
    assert run_module(module_code.main, {"dest": str(dest), "state": "absent"})["changed"] and not dest.exists()
    assert not run_module(module_code.main, {"dest": str(dest), "state": "absent"})["changed"]


@pytest.mark.parametrize("content", ["", "[]", '{"gateway_user": "u"}', '{"status": "ok"}', "not json"])
def test_the_filter_refuses_what_is_not_the_layout_without_showing_it(content):
    with pytest.raises(AnsibleFilterError) as refused:
        parse_gateway_credentials(content, "/etc/x/gateway-credentials.json")
    assert "/etc/x/gateway-credentials.json" in str(refused.value) and "Fix:" in str(refused.value)
