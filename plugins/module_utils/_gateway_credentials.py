# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The gateway credentials file: its one JSON layout, and the one way it is installed on a host.

Everything that writes the file (``portal_registration``'s ``gateway_credentials_dest``, the module
``gateway_credentials`` the registration role runs on each host) and everything that reads it (the
filter ``parse_gateway_credentials`` the connectivity role uses) goes through this file, so the layout
is defined once.

``CredentialsError(ValueError)``
    Invalid values or an unreadable file; the message names the problem and the fix and never
    contains the password.
``checked(gateway_user, gateway_password) -> dict``
    ``{"gateway_user", "gateway_password"}`` when both are non-empty strings; else ``CredentialsError``.
``render(credentials) -> bytes``
    The file content for a ``checked`` dict (JSON, sorted keys, 4-space indent, no trailing newline:
    the layout files written by earlier versions already have, so they stay unchanged).
``parse(content, what="the gateway credentials file") -> dict``
    The ``checked`` dict from file content (bytes or text).
``install(module, path, credentials, mode=0o600, owner=None, group=None) -> bool``
    Write the file through ``_files.write_file`` (temp file 0600 from its first byte, fsync, atomic
    rename) when its content differs, else only settle owner/group/mode.  ``True`` if anything
    changed (or, in check mode, would change).  Raises ``_files.FileError``.
``remove(module, path) -> bool``
    Remove the file if present.
"""

from __future__ import annotations

import json

from ansible_collections.dkcustoms.dms.plugins.module_utils import _files

FIELDS = ("gateway_user", "gateway_password")


class CredentialsError(ValueError):
    """The values or the file are not gateway credentials (the message never holds the password)."""


def checked(gateway_user, gateway_password):
    problems = [name for name, value in zip(FIELDS, (gateway_user, gateway_password))
                if not isinstance(value, str) or not value.strip()]
    if problems:
        raise CredentialsError(
            "%s must be non-empty text. Fix: give the gateway user and password the certificate "
            "portal shows for the registered certificate." % " and ".join(problems))
    return {"gateway_user": gateway_user, "gateway_password": gateway_password}


def render(credentials):
    document = checked(credentials.get("gateway_user"), credentials.get("gateway_password"))
    return json.dumps(document, indent=4, sort_keys=True).encode("utf-8")


def parse(content, what="the gateway credentials file"):
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    try:
        document = json.loads(content)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise CredentialsError(
            "%s is not a JSON object with gateway_user and gateway_password. Fix: write it again "
            "with dkcustoms.dms.gateway_credentials (or the registration role)." % what)
    try:
        return checked(document.get("gateway_user"), document.get("gateway_password"))
    except CredentialsError as exc:
        raise CredentialsError("%s: %s" % (what, exc)) from None


def install(module, path, credentials, mode=0o600, owner=None, group=None):
    content = render(credentials)
    if _files.read_file(path) != content:
        _files.write_file(module, path, content, mode=mode, owner=owner, group=group)
        return True
    return bool(_files.set_attributes(module, path, mode=mode, owner=owner, group=group))


def remove(module, path):
    return _files.remove_file(module, path)["changed"]
