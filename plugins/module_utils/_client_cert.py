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

from ansible_collections.dkcustoms.dms.plugins.module_utils import _deps, _opt_connection
from ansible_collections.dkcustoms.dms.plugins.module_utils._errors import DmsError, fail


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
