# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""portal_registration run whole (main(), in this process) against a hostile portal on loopback, and
its first-logon lock: security review (issue 10) items 2, 3, 11 and 13."""

from __future__ import annotations

import fcntl
import json
import os
import stat
import sys
import tempfile
import threading
import time

import pytest

from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_logon as logon
from ansible_collections.dkcustoms.dms.plugins.modules import portal_registration as module_code

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "module_utils"))
from _hostile import Sink  # noqa: E402  pylint: disable=wrong-import-position

PASSWORD = "Portal-Password-Secret-77"
GATEWAY_PASSWORD = "Gateway-Password-Secret-88"
BASE = "/PortalCertApp"
GOOD_FILE = b'{\n    "gateway_password": "old-but-good-password",\n    "gateway_user": "CVR_1_UI_x"\n}'


def portal_routes(entity, **overrides):
    """A portal on which ENTITY's account is active and registered; OVERRIDES replace answers by path."""
    user = entity["portal_user_id"]
    overview = {"user_id": user, "registration_status": "registered", "se_number": None, "email": None,
                "interfaces": ["AS4"], "gateway_user": user}
    routes = {
        ("GET", BASE + "/api/whoami"): (200, {}, {"user_id": user, "account_state": "active"}),
        ("POST", BASE + "/api/session"): (200, {}, {"token": "t0k3n", "password_change_required": False}),
        ("GET", BASE + "/api/certificate"): (200, {}, overview),
        ("GET", BASE + "/api/certificate/gateway-credentials"):
            (200, {}, {"gateway_user": user, "gateway_password": GATEWAY_PASSWORD}),
        ("DELETE", BASE + "/api/session"): (204, {}, b""),
    }
    routes.update({("GET" if path != "/api/session" else "POST", BASE + path): answer
                   for path, answer in overrides.items()})
    return routes


def module_args(pki, url, **extra):
    entity = pki["entities"]["foces-01"]
    args = {"portal_url": url + BASE, "ca_path": pki["server"]["ca_bundle"], "certificate_path": entity["p12"],
            "certificate_passphrase": pki["passphrase"], "password": PASSWORD, "timeout": 5, "retries": 0,
            "wait_timeout": 5}
    args.update(extra)
    return args


# -- 2. portal_url must be https ---------------------------------------------------------------------
def test_http_portal_url_is_refused_before_anything_is_sent(pki, run_module):
    sink = Sink()
    try:
        result = run_module(module_code.main, module_args(pki, "http://127.0.0.1:%d" % sink.port))
        time.sleep(0.3)
        assert sink.connections == 0
    finally:
        sink.close()
    assert result["failed"] and result["reason"] == "invalid_portal_url"
    assert "https://" in result["msg"] and "Fix:" in result["msg"]


# -- 3. a 200 gateway-credentials answer of the wrong shape -------------------------------------------
@pytest.mark.parametrize("answer", [{"status": "ok"}, ["a", "b"], {"gateway_user": None, "gateway_password": None},
                                    {"gateway_user": "CVR_1_UI_x", "gateway_password": ""}])
def test_wrong_credentials_answer_leaves_a_good_file_byte_identical(pki, hostile, run_module, tmp_path, answer):
    dest = tmp_path / "gateway-credentials.json"
    dest.write_bytes(GOOD_FILE)
    dest.chmod(0o600)
    before = os.stat(dest)
    server = hostile(portal_routes(pki["entities"]["foces-01"], **{
        "/api/certificate/gateway-credentials": (200, {}, answer)}))

    result = run_module(module_code.main, module_args(pki, server.url, gateway_credentials_dest=str(dest)))

    assert result["failed"] and result["reason"] == "invalid_answer", result
    assert "gateway_credentials_written" not in result["actions"] and not result.get("changed")
    assert dest.read_bytes() == GOOD_FILE and os.stat(dest).st_mtime_ns == before.st_mtime_ns


def test_good_credentials_answer_is_written_in_the_one_layout(pki, hostile, run_module, tmp_path):
    dest = tmp_path / "gateway-credentials.json"
    server = hostile(portal_routes(pki["entities"]["foces-01"]))
    result = run_module(module_code.main, module_args(pki, server.url, gateway_credentials_dest=str(dest)))
    assert not result.get("failed") and result["actions"] == ["gateway_credentials_written"]
    assert json.loads(dest.read_text()) == {"gateway_user": pki["entities"]["foces-01"]["portal_user_id"],
                                            "gateway_password": GATEWAY_PASSWORD}
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    assert GATEWAY_PASSWORD not in json.dumps(result) and PASSWORD not in json.dumps(result)


# -- 11. whoami and the registration status are checked before they are trusted ----------------------
@pytest.mark.parametrize("whoami", [
    {"account_state": "suspended"},             # unknown state
    {"account_state": "active", "user_id": None},   # no user id
    {"account_state": "new", "user_id": "other"},    # not a user id
    {"account_state": "active", "user_id": "another certificate's"},
], ids=["unknown-state", "no-user-id", "not-a-user-id", "another-certificate"])
def test_whoami_that_does_not_name_this_certificate_gets_no_logon(pki, hostile, run_module, whoami):
    entity = pki["entities"]["foces-01"]
    answer = dict({"user_id": entity["portal_user_id"]}, **whoami)
    if answer["user_id"] == "another certificate's":
        answer["user_id"] = pki["entities"]["foces-02"]["portal_user_id"]
    server = hostile(portal_routes(entity, **{"/api/whoami": (200, {}, answer)}))

    result = run_module(module_code.main, module_args(pki, server.url))

    assert result["failed"], result
    assert "POST %s/api/session" % BASE not in server.paths()  # the password never went out
    assert "Fix:" in result["msg"] and PASSWORD not in result["msg"]


@pytest.mark.parametrize("status", ["registred", None, "done"])
def test_unknown_registration_status_fails_and_never_exits_ok(pki, hostile, run_module, status):
    entity = pki["entities"]["foces-01"]
    overview = {"user_id": entity["portal_user_id"], "registration_status": status, "interfaces": ["AS4"]}
    server = hostile(portal_routes(entity, **{"/api/certificate": (200, {}, overview)}))
    result = run_module(module_code.main, module_args(pki, server.url))
    assert result["failed"] and result["reason"] == "invalid_answer", result


# -- 13. the first-logon lock ------------------------------------------------------------------------
def test_lock_lives_in_a_private_directory(tmp_path):
    folder = tmp_path / "locks"
    with logon.first_logon_lock("https://portal", "CVR_1_UI_x", directory=str(folder)):
        info = os.lstat(folder)
        assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
        assert info.st_uid == os.geteuid()
        (lock,) = os.listdir(folder)
        assert stat.S_IMODE(os.stat(folder / lock).st_mode) == 0o600
    default = logon.lock_directory()
    assert os.path.dirname(default) == tempfile.gettempdir() and default.endswith("-%d" % os.geteuid())


def test_lock_never_follows_a_planted_symlink(tmp_path):
    folder = tmp_path / "locks"
    folder.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    digest_path = None
    with logon.first_logon_lock("https://portal", "CVR_1_UI_x", directory=str(folder)):
        (name,) = os.listdir(folder)
        digest_path = folder / name
    digest_path.unlink()
    digest_path.symlink_to(victim)
    with pytest.raises(logon.LogonFailed) as refused:
        with logon.first_logon_lock("https://portal", "CVR_1_UI_x", directory=str(folder)):
            pass
    assert "symbolic link" in str(refused.value) and not victim.exists()


@pytest.mark.parametrize("problem", ["shared-mode", "symlink", "other-owner"])
def test_lock_directory_that_is_not_private_is_refused(tmp_path, problem):
    folder = tmp_path / "locks"
    if problem == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        folder.symlink_to(tmp_path / "elsewhere")
    else:
        folder.mkdir()
        folder.chmod(0o777 if problem == "shared-mode" else 0o700)
        if problem == "other-owner":
            if os.geteuid() != 0:
                pytest.skip("needs root to give the directory to another user")
            os.chown(folder, 65534, 65534)
    with pytest.raises(logon.LogonFailed) as refused:
        with logon.first_logon_lock("https://portal", "CVR_1_UI_x", directory=str(folder)):
            pass
    assert "not a private directory" in str(refused.value) and "Fix:" in str(refused.value)


def test_lock_wait_is_bounded(tmp_path):
    folder = tmp_path / "locks"
    entered = threading.Event()
    release = threading.Event()

    def holder():
        with logon.first_logon_lock("https://portal", "CVR_1_UI_x", directory=str(folder)):
            entered.set()
            release.wait(30)

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    assert entered.wait(10)
    started = time.monotonic()
    try:
        with pytest.raises(logon.LogonFailed) as timed_out:
            with logon.first_logon_lock("https://portal", "CVR_1_UI_x", timeout=1, directory=str(folder)):
                pass
    finally:
        release.set()
        thread.join(10)
    assert 1 <= time.monotonic() - started < 5
    assert "held the first-logon lock" in str(timed_out.value) and "Fix:" in str(timed_out.value)
    # Once free, the lock is taken at once.
    with logon.first_logon_lock("https://portal", "CVR_1_UI_x", timeout=1, directory=str(folder)):
        fd = os.open(str(folder / os.listdir(folder)[0]), os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


def test_locked_account_fails_naming_the_user_without_a_logon(pki, hostile, run_module):
    entity = pki["entities"]["foces-01"]
    server = hostile(portal_routes(entity, **{"/api/whoami": (
        200, {}, {"user_id": entity["portal_user_id"], "account_state": "locked"})}))
    result = run_module(module_code.main, module_args(pki, server.url))
    assert result["failed"] and result["reason"] == "account_locked"
    assert result["portal_user_id"] == entity["portal_user_id"] and result["actions"] == []
    assert "POST %s/api/session" % BASE not in server.paths() and "unlock" in result["msg"]
