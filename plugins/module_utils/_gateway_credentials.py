# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The gateway credentials file: its one JSON layout, and the one way it is installed on a host.

Everything that writes the file (``portal_registration``'s ``gateway_credentials_dest``, the module
``gateway_credentials`` the registration role runs on each host) and everything that reads it (the
filter ``parse_gateway_credentials`` the connectivity role uses) goes through this file, so the layout
is defined once.

``CredentialsError(DmsError, ValueError)``
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
``run(module) -> result``
    The work of the module ``gateway_credentials``: its ``state`` applied to ``dest`` (mode checked,
    diff without the password).  Raises ``CredentialsError`` / ``_files.FileError``.
"""

from __future__ import annotations

import json
import os
import stat

from ansible_collections.dkcustoms.dms.plugins.module_utils import _errors, _files

FIELDS = ("gateway_user", "gateway_password")
HIDDEN = "(hidden)"
HIDDEN_CHANGED = "(hidden, changed)"


class CredentialsError(_errors.DmsError, ValueError):
    """The values or the file are not gateway credentials (the message never holds the password)."""

    reason = "invalid_input"


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


def mode_problem(mode):
    """Why ``mode`` would expose the password (or cannot be judged), or None."""
    if isinstance(mode, int):
        value = mode
    else:
        text = str(mode)
        if not text or any(char not in "01234567" for char in text):
            return ("mode %s is not an octal mode. Fix: give it in octal, such as '0600' (or '0640' with "
                    "group)" % text)
        value = int(text, 8)
    if value & (stat.S_IRWXO | stat.S_IWGRP | stat.S_IXGRP):
        return ("mode %s lets other users read or change the gateway password. Fix: use 0600, or 0640 "
                "with group" % mode)
    return None


def current(path):
    """The credentials in ``path`` as they are (None when missing or not our layout)."""
    content = _files.read_file(path)
    if content is None:
        return None
    try:
        return parse(content, what=path)
    except CredentialsError:
        return None


def diff(before, after):
    """Before/after without the password: only whether it changes."""
    def view(credentials, changed):
        if credentials is None:
            return {}
        return {"gateway_user": credentials["gateway_user"],
                "gateway_password": HIDDEN_CHANGED if changed else HIDDEN}
    password_changed = (before or {}).get("gateway_password") != (after or {}).get("gateway_password")
    return {"before": view(before, False), "after": view(after, password_changed and after is not None)}


def _present(module, dest):
    params = module.params
    wanted = checked(params["gateway_user"], params["gateway_password"])
    problem = mode_problem(params["mode"])
    if problem:
        raise CredentialsError(problem + ".")
    if not module.check_mode:
        _files.check_writable(os.path.dirname(os.path.abspath(dest)))
    changed = install(module, dest, wanted, mode=params["mode"], owner=params["owner"], group=params["group"])
    return wanted, changed


def run(module):
    dest = module.params["dest"]
    if os.path.isdir(dest):
        raise CredentialsError("dest %s is a directory. Fix: give the path of the credentials file." % dest)
    before = current(dest)
    if module.params["state"] == "absent":
        after, changed = None, remove(module, dest)
    else:
        after, changed = _present(module, dest)
    result = {"changed": changed, "dest": dest, "gateway_user": after["gateway_user"] if after else None}
    if module._diff and changed:
        result["diff"] = diff(before, after)
    return result
