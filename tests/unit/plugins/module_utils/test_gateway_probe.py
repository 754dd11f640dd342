# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""gateway_connectivity's own options, validated in module_utils before anything is read or sent."""

from __future__ import annotations

import os
import sys

import pytest

from ansible_collections.dkcustoms.dms.plugins.module_utils import _as4, _gateway_probe
from ansible_collections.dkcustoms.dms.plugins.module_utils._gateway_probe import PinFileError, ProbeOptionError

sys.path.insert(0, os.path.dirname(__file__))
import _as4_fakes as fakes  # noqa: E402  pylint: disable=wrong-import-position

URL = "https://gw.example:6384"


def _params(**overrides):
    params = {"gateway_user": "CVR_12345678_UI_x", "gateway_password": "pw", "tls_client_certificate": False,
              "probe": "notification", "allow_dequeue": False, "mpc": None, "notification_window_minutes": 5,
              "notification_service": "DMS.Import", "layers": list(_gateway_probe.LAYERS),
              "receipt_signer": None, "receipt_signer_subject": None, "receipt_signer_fingerprint": None,
              "receipt_signer_pin_file": None, "from_party": None, "to_party": _as4.DEFAULT_TO_PARTY,
              "from_party_type": _as4.DEFAULT_PARTY_TYPE, "to_party_type": _as4.DEFAULT_PARTY_TYPE,
              "key_reference": "issuer_serial"}
    params.update(overrides)
    return params


@pytest.mark.parametrize("overrides, words", [
    ({"probe": "pull"}, "probe=pull would take a message waiting on MPC"),
    ({"notification_window_minutes": 0}, "notification_window_minutes must be 1 or more"),
    ({"layers": []}, "layers is empty"),
])
def test_options_that_cannot_work_are_refused_with_a_fix(overrides, words):
    with pytest.raises(ProbeOptionError) as err:
        _gateway_probe.check_options(_params(**overrides))
    assert words in err.value.msg and "Fix:" in err.value.msg and err.value.reason == "invalid_option"


def test_a_pull_in_check_mode_stops_before_the_message():
    params = _params(probe="pull", allow_dequeue=True)
    assert _gateway_probe.layers_to_run(params, check_mode=False) == (params["layers"], None)
    layers, warning = _gateway_probe.layers_to_run(params, check_mode=True)
    assert layers == ["dns", "tcp", "tls", "client_certificate"] and "the pull is not sent" in warning
    assert _gateway_probe.layers_to_run(_params(probe="pull", layers=["as4"]), True)[0] == ["client_certificate"]
    assert _gateway_probe.layers_to_run(_params(), check_mode=True) == (_params()["layers"], None)


def test_receipt_signer_options(tmp_path):
    gateway = fakes.issue(fakes.make_ca("Gateway CA"), "SKAT OIO Gateway Test", dns=(), ips=())
    cert_path, _key_path = gateway.write(tmp_path, "gateway")
    policy = _gateway_probe.signer_policy(_params(receipt_signer=cert_path, receipt_signer_subject="CN=SKAT OIO Gateway Test",
                                                  receipt_signer_fingerprint="AB:" * 31 + "AB"))
    assert policy.configured and policy.fingerprint == bytes.fromhex("ab" * 32)
    for overrides, words in (({"receipt_signer": str(tmp_path / "missing.pem")}, "Cannot read receipt_signer"),
                             ({"receipt_signer": str(tmp_path / "empty.pem")}, "holds no PEM certificate"),
                             ({"receipt_signer_subject": "not a name"}, "is not an RFC 4514 name"),
                             ({"receipt_signer_fingerprint": "sha256:abcd"}, "receipt_signer_fingerprint")):
        (tmp_path / "empty.pem").write_text("nothing here")
        params = _params(receipt_signer=cert_path)
        params.update(overrides)
        with pytest.raises(ProbeOptionError) as err:
            _gateway_probe.signer_policy(params)
        assert words in err.value.msg and "Fix:" in err.value.msg


def test_the_probe_carries_the_options_and_the_pin():
    pins = {URL: b"\x01" * 32}
    probe = _gateway_probe.probe_from_params(_params(), URL, ["dns", "tcp"], pins)
    assert probe.endpoint == URL + "/exchange/CVR_12345678_UI_x" and probe.last_layer == 1
    assert probe.signer_policy.pinned == b"\x01" * 32 and probe.mpc == _as4.DEFAULT_MPC
    with pytest.raises(AttributeError):
        probe.url = "https://elsewhere"  # pylint: disable=assigning-non-slot


def test_pin_file_reading(tmp_path):
    assert _gateway_probe.read_pins(None) == (None, {})
    assert _gateway_probe.read_pins(str(tmp_path / "none-yet")) == (None, {})
    good = tmp_path / "pins"
    good.write_text(_gateway_probe.add_pin(None, URL, "cd" * 32, "CN=Gateway"))
    assert _gateway_probe.read_pins(str(good))[1] == {URL: bytes.fromhex("cd" * 32)}
    for name, content, words in (("bad", b"https://x sha1:ab\n", "line 1 of the pin file"),
                                 ("binary", b"\xff\xfe\x00", "is not a text file")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(PinFileError) as err:
            _gateway_probe.read_pins(str(tmp_path / name))
        assert words in err.value.msg and "Fix:" in err.value.msg and str(tmp_path / name) in err.value.msg
