# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_opt_certificate: the one certificate source (option group + reader), every input form."""

from __future__ import annotations

import base64
import os
import sys

import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.dkcustoms.dms.plugins.module_utils import _errors, _module, _oces, _opt_certificate

sys.path.insert(0, os.path.dirname(__file__))
from test_oces import CA, PASS, _p12, _pem  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope="module")
def ca():
    return CA()


@pytest.fixture(scope="module")
def issued(ca):
    cert, key, _uid = ca.issue()
    return cert, key


def _params(**given):
    params = dict.fromkeys(_opt_certificate.CERTIFICATE_OPTIONS)
    params.update(given)
    return params


def test_group_rules():
    kwargs = _module.compose({}, [_opt_certificate.CERTIFICATE_SOURCE])
    assert sorted(kwargs["argument_spec"]) == sorted(_opt_certificate.CERTIFICATE_OPTIONS)
    assert kwargs["required_one_of"] == [("certificate_path", "certificate_content")]
    assert ("private_key_path", "private_key_content") in kwargs["mutually_exclusive"]
    secrets = {name for name, spec in kwargs["argument_spec"].items() if spec.get("no_log")}
    assert secrets == {"certificate_content", "certificate_passphrase", "private_key_content",
                       "private_key_passphrase"}
    assert "required_one_of" not in _module.compose({}, [_opt_certificate.certificate_source(False)])


def test_pkcs12_path(ca, issued, tmp_path):
    path = tmp_path / "foces.p12"
    path.write_bytes(_p12(issued[0], issued[1], [ca.cert, ca.root]))
    bundle = _opt_certificate.read_bundle(_params(certificate_path=str(path), certificate_passphrase=PASS),
                                          require_key=True)
    assert bundle.source_format == "pkcs12" and bundle.certificate == issued[0] and len(bundle.chain) == 2


def test_pkcs12_content_base64_with_line_breaks(ca, issued):
    text = base64.encodebytes(_p12(issued[0], issued[1], [ca.cert])).decode()
    assert "\n" in text
    bundle = _opt_certificate.read_bundle(_params(certificate_content=text, certificate_passphrase=PASS))
    assert bundle.key_matches is True


def test_pem_content_and_separate_key_content(ca, issued):
    encrypted = issued[1].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.BestAvailableEncryption(b"key-pass-1"))
    bundle = _opt_certificate.read_bundle(_params(certificate_content=_pem(issued[0], ca.cert).decode(),
                                                  private_key_content=encrypted.decode(),
                                                  private_key_passphrase="key-pass-1"), require_key=True)
    assert bundle.source_format == "pem" and bundle.chain == [ca.cert]


def test_der_path_and_key_path(issued, tmp_path):
    (tmp_path / "cert.der").write_bytes(issued[0].public_bytes(serialization.Encoding.DER))
    (tmp_path / "key.pem").write_bytes(_pem(issued[1]))
    bundle = _opt_certificate.read_bundle(_params(certificate_path=str(tmp_path / "cert.der"),
                                                  private_key_path=str(tmp_path / "key.pem")), require_key=True)
    assert bundle.source_format == "der" and bundle.key_matches


def test_require_key_refuses_a_certificate_alone_and_a_foreign_key(ca, issued):
    with pytest.raises(_oces.OcesError) as err:
        _opt_certificate.read_bundle(_params(certificate_content=_pem(issued[0]).decode()), require_key=True)
    assert err.value.reason == "no_key" and "private_key_path" in err.value.msg
    other = ca.issue()[1]
    with pytest.raises(_oces.OcesError) as err:
        _opt_certificate.read_bundle(_params(certificate_content=_pem(issued[0]).decode(),
                                             private_key_content=_pem(other).decode()), require_key=True)
    assert err.value.reason == "key_mismatch"
    # Without require_key the info module reports both instead.
    bundle = _opt_certificate.read_bundle(_params(certificate_content=_pem(issued[0]).decode()))
    assert bundle.private_key is None


def test_missing_file_names_the_option_and_the_fix(tmp_path):
    with pytest.raises(_opt_certificate.CertificateSourceError) as err:
        _opt_certificate.read_bundle(_params(private_key_path=str(tmp_path / "nope.pem"),
                                             certificate_path=str(tmp_path / "cert.pem")))
    assert isinstance(err.value, _errors.DmsError) and err.value.reason == "invalid_input"
    assert "certificate_path %s" % (tmp_path / "cert.pem") in err.value.msg and "Fix:" in err.value.msg


def test_content_neither_pem_nor_base64():
    with pytest.raises(_opt_certificate.CertificateSourceError) as err:
        _opt_certificate.read_bundle(_params(certificate_content="not base64 at all!"))
    assert "certificate_content is neither PEM text nor valid base64" in err.value.msg


def test_wrong_passphrase_is_a_dms_error_without_the_passphrase(issued):
    text = base64.b64encode(_p12(issued[0], issued[1], [])).decode()
    with pytest.raises(_errors.DmsError) as err:
        _opt_certificate.read_bundle(_params(certificate_content=text, certificate_passphrase="wrong-secret-9"))
    assert err.value.reason == "wrong_passphrase" and "wrong-secret-9" not in err.value.msg


def test_no_certificate_input():
    with pytest.raises(_opt_certificate.CertificateSourceError, match="certificate_path"):
        _opt_certificate.read_bundle(_params())
