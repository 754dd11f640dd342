# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared module options: which certificate to present, and how to connect (Ansible side).

Documented by the doc fragments ``dkcustoms.dms.client_certificate`` and
``dkcustoms.dms.connection``.  Use::

    spec = merge_specs(client_certificate_spec(), connection_spec(), {"argument_spec": {...}})
    module = AnsibleModule(supports_check_mode=True, **spec)
    bundle = load_client_certificate(module)          # fails the module with a clear message
    session = create_session_for(module, bundle)      # _http.DmsSession

``client_certificate_spec()`` / ``connection_spec()`` return dicts with the keys ``argument_spec``,
``mutually_exclusive``, ``required_together``, ``required_one_of``, ``required_by`` (only those
that apply), ready for ``merge_specs``.
"""

from __future__ import annotations

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.dkcustoms.dms.plugins.module_utils import _deps, _oces, _opt_connection
from ansible_collections.dkcustoms.dms.plugins.module_utils._errors import DmsError, fail

CLIENT_CERTIFICATE_OPTIONS = ("pkcs12_path", "pkcs12_content", "pkcs12_passphrase",
                              "certificate_path", "private_key_path", "private_key_passphrase")
ENVIRONMENTS = ("test", "production")


def client_certificate_spec(required=True):
    """Options of the certificate presented as TLS client certificate (and used to sign)."""
    spec = {
        "argument_spec": {
            "pkcs12_path": {"type": "path"},
            "pkcs12_content": {"type": "str", "no_log": True},
            "pkcs12_passphrase": {"type": "str", "no_log": True},
            "certificate_path": {"type": "path"},
            "private_key_path": {"type": "path", "no_log": False},
            "private_key_passphrase": {"type": "str", "no_log": True},
        },
        "mutually_exclusive": [
            ("pkcs12_path", "pkcs12_content", "certificate_path"),
            ("pkcs12_path", "pkcs12_content", "private_key_path"),
            ("pkcs12_path", "pkcs12_content", "private_key_passphrase"),
        ],
        "required_together": [("certificate_path", "private_key_path")],
        "required_by": {"private_key_passphrase": ("private_key_path",)},
    }
    if required:
        spec["required_one_of"] = [("pkcs12_path", "pkcs12_content", "certificate_path")]
    return spec


def connection_spec(default_timeout=_opt_connection.DEFAULT_TIMEOUT,
                    default_retries=_opt_connection.DEFAULT_RETRIES):
    """Options of the HTTPS connection (moved to ``_opt_connection.group``; kept until callers switch)."""
    return {"argument_spec": _opt_connection.group(default_timeout, default_retries).argument_spec()}


def merge_specs(*parts):
    """Combine spec parts into keyword arguments for ``AnsibleModule``."""
    merged = {"argument_spec": {}}
    for part in parts:
        for key, value in part.items():
            if key in ("argument_spec", "required_by"):
                merged.setdefault(key, {}).update(value)
            else:
                merged.setdefault(key, []).extend(value)
    return merged


def _read(module, option):
    path = module.params[option]
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        module.fail_json(msg="Cannot read %s %s (%s). Fix: give the path of a readable file on the "
                             "managed host." % (option, path, to_native(exc.strerror or exc)))
    return None  # not reached


def load_client_certificate(module):
    """The ``_oces.Bundle`` the options describe, with a private key that belongs to it.

    Fails the module with a message naming the problem and the fix (never a passphrase).  Whether
    the certificate is OCES3, unexpired etc. is left to the caller and the server, which report it
    in their own words.
    """
    _deps.require(module, "cryptography")
    params = module.params
    try:
        if params.get("pkcs12_content"):
            data = _oces.decode_base64(params["pkcs12_content"], "pkcs12_content")
            bundle = _oces.load_bundle(data, passphrase=params.get("pkcs12_passphrase"))
        elif params.get("pkcs12_path"):
            bundle = _oces.load_bundle(_read(module, "pkcs12_path"),
                                       passphrase=params.get("pkcs12_passphrase"))
        else:
            key_data = _read(module, "private_key_path") if params.get("private_key_path") else None
            bundle = _oces.load_bundle(_read(module, "certificate_path"), key_data=key_data,
                                       key_passphrase=params.get("private_key_passphrase"))
        # Only "is there a key and is it the right one": policy checks belong to the caller.
        _oces.validate(bundle, require_key=True, allowed_types=_oces.CERTIFICATE_TYPES,
                       allow_expired=True, allow_not_yet_valid=True, allow_oces2=True)
    except _oces.OcesError as exc:
        module.fail_json(msg=to_native(exc), reason=exc.reason)
    return bundle


def base_url(module, option, defaults):
    """``module.params[option]`` or the default for ``environment``, without a trailing slash."""
    url = module.params.get(option) or defaults[module.params["environment"]]
    return url.rstrip("/")


def create_session_for(module, bundle=None):
    """An ``_http.DmsSession`` from the connection options (moved to ``_opt_connection.Connection``)."""
    _deps.require(module, "requests")
    try:
        connection = _opt_connection.Connection.from_params(module.params)
        for warning in connection.warnings():
            module.warn(warning)
        return connection.session(bundle)
    except DmsError as exc:
        fail(module, exc)
    return None  # not reached
