# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one certificate source: the options that name the certificate given to a module, and its reader.

Every module that takes a certificate (``oces_certificate_info``, ``oces_certificate``,
``portal_registration``, ``gateway_connectivity``) uses the option group ``CERTIFICATE_SOURCE``
(documented by the doc fragment ``dkcustoms.dms.certificate_source``) and reads it with
``read_certificate``; nothing else opens, decodes or parses certificate input.  Use::

    module = _module.DmsModule(own_spec, groups=[_opt_certificate.CERTIFICATE_SOURCE])
    with module.failing_on_errors():
        bundle = _opt_certificate.read_certificate(module, require_key=True)   # an _oces.Bundle

Options: ``certificate_path`` | ``certificate_content`` (PKCS#12, or PEM/DER certificate optionally
followed by its chain and key; format detected), ``certificate_passphrase`` (the PKCS#12's),
``private_key_path`` | ``private_key_content`` (a separate key), ``private_key_passphrase``.
Errors are ``CertificateSourceError`` (unreadable file, bad base64) or ``_oces.OcesError`` (wrong
passphrase, corrupt, no key, key mismatch ...), both ``_errors.DmsError``: message + fix, no secret.
Knows Ansible: only through ``module.params`` and ``_deps.require``.
"""

from __future__ import annotations

import base64
import binascii

from ansible_collections.dkcustoms.dms.plugins.module_utils import _deps, _errors, _module, _oces

CERTIFICATE_OPTIONS = {
    "certificate_path": {"type": "path"},
    "certificate_content": {"type": "str", "no_log": True},
    "certificate_passphrase": {"type": "str", "no_log": True},
    "private_key_path": {"type": "path", "no_log": False},
    "private_key_content": {"type": "str", "no_log": True},
    "private_key_passphrase": {"type": "str", "no_log": True},
}
CERTIFICATE_INPUTS = ("certificate_path", "certificate_content")
_EXCLUSIVE = [CERTIFICATE_INPUTS, ("private_key_path", "private_key_content")]


def certificate_source(required=True):
    """The option group; ``required=False`` for a module that needs a certificate only sometimes
    (``oces_certificate`` with ``state=absent``), which then states its own ``required_if``."""
    rules = {"mutually_exclusive": _EXCLUSIVE}
    if required:
        rules["required_one_of"] = [CERTIFICATE_INPUTS]
    return _module.OptionGroup("certificate_source", CERTIFICATE_OPTIONS, **rules)


CERTIFICATE_SOURCE = certificate_source()


class CertificateSourceError(_errors.DmsError):
    """The certificate input cannot be read at all (file missing or unreadable, content not base64)."""

    reason = "invalid_input"


def read_file(path, option):
    """The bytes of the file ``option`` names on the managed host."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        raise CertificateSourceError(
            "%s %s cannot be read (%s). Fix: give the path of a readable file on the managed host, or "
            "run with become." % (option, path, exc.strerror or exc))


def decode_content(content, option):
    """The bytes ``option``'s text stands for: PEM text as it is, anything else base64-decoded."""
    text = content if isinstance(content, str) else content.decode("utf-8", "replace")
    if "-----BEGIN" in text:
        return text.encode("utf-8")
    try:
        return base64.b64decode("".join(text.split()).encode("ascii"), validate=True)
    except (binascii.Error, ValueError):
        raise CertificateSourceError(
            "%s is neither PEM text nor valid base64. Fix: fill it with "
            "lookup('ansible.builtin.file', path, rstrip=false) | b64encode (binary files such as a "
            "PKCS#12) or with the PEM text, or use the matching _path option." % option)


def _input(params, prefix):
    """Bytes of ``<prefix>_path`` or ``<prefix>_content``, or None when neither is set."""
    if params.get(prefix + "_path"):
        return read_file(params[prefix + "_path"], prefix + "_path")
    if params.get(prefix + "_content") is not None:
        return decode_content(params[prefix + "_content"], prefix + "_content")
    return None


def read_bundle(params, require_key=False):
    """The ``_oces.Bundle`` the certificate options in ``params`` describe.

    With ``require_key`` the bundle must carry a private key that belongs to the certificate.  Whether
    the certificate is OCES3, unexpired etc. is the caller's policy (``_oces.validate``).
    """
    data = _input(params, "certificate")
    if data is None:
        raise CertificateSourceError("No certificate given. Fix: set certificate_path (a file on the "
                                     "managed host) or certificate_content.")
    bundle = _oces.load_bundle(data, passphrase=params.get("certificate_passphrase"),
                               key_data=_input(params, "private_key"),
                               key_passphrase=params.get("private_key_passphrase"))
    if require_key:
        _oces.check_key(bundle)
    return bundle


def read_certificate(module, require_key=False):
    """``read_bundle`` of the module's parameters (fails the module if cryptography is missing)."""
    _deps.require(module, "cryptography")
    return read_bundle(module.params, require_key=require_key)
