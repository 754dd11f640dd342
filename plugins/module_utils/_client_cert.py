# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared module options: how to connect (Ansible side).  (The certificate half moved to
``_opt_certificate``; this connection half is on its way to ``_opt_connection``.)

Documented by the doc fragment ``dkcustoms.dms.connection``.  Use::

    spec = merge_specs(connection_spec(), {"argument_spec": {...}})
    module = _module.DmsModule(groups=[_opt_certificate.CERTIFICATE_SOURCE], **spec)
    session = create_session_for(module, bundle)      # _http.DmsSession

``connection_spec()`` returns a dict with the key ``argument_spec``, ready for ``merge_specs``.
"""

from __future__ import annotations

import os

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.dkcustoms.dms.plugins.module_utils import _deps, _http

ENVIRONMENTS = ("test", "production")


def connection_spec(default_timeout=_http.DEFAULT_TIMEOUT, default_retries=_http.DEFAULT_RETRIES):
    """Options of the HTTPS connection to the portal or the gateway."""
    return {
        "argument_spec": {
            "environment": {"type": "str", "default": "test", "choices": list(ENVIRONMENTS)},
            "ca_path": {"type": "path"},
            "validate_certs": {"type": "bool", "default": True},
            "timeout": {"type": "int", "default": default_timeout},
            "retries": {"type": "int", "default": default_retries},
        },
    }


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


def base_url(module, option, defaults):
    """``module.params[option]`` or the default for ``environment``, without a trailing slash."""
    url = module.params.get(option) or defaults[module.params["environment"]]
    return url.rstrip("/")


def create_session_for(module, bundle=None):
    """An ``_http.DmsSession`` from the connection options, presenting ``bundle`` if given."""
    _deps.require(module, "requests")
    params = module.params
    if params["timeout"] <= 0:
        module.fail_json(msg="timeout must be a positive number of seconds. Fix: set timeout >= 1.")
    if params["retries"] < 0:
        module.fail_json(msg="retries must be 0 or more. Fix: set retries >= 0.")
    if params.get("ca_path") and not os.path.exists(params["ca_path"]):
        module.fail_json(msg="ca_path %s does not exist on the managed host. Fix: copy the CA bundle "
                             "there or correct ca_path." % params["ca_path"])
    if not params["validate_certs"]:
        module.warn("validate_certs=false: the server is not verified, so the client certificate and "
                    "any credentials go to whoever answers. Use it only for throw-away tests.")
    client_cert = _http.client_cert_from_bundle(bundle) if bundle is not None else None
    try:
        return _http.create_session(ca_path=params.get("ca_path"),
                                    validate_certs=params["validate_certs"],
                                    timeout=params["timeout"], retries=params["retries"],
                                    client_cert=client_cert)
    except _http.HttpError as exc:
        module.fail_json(msg=to_native(exc), reason=exc.kind)
    return None  # not reached
