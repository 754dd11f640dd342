#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gateway_credentials
short_description: Install the AS4 gateway user and password on a host, as a 0600 file
version_added: 0.1.0
description:
  - Writes the gateway user and gateway password of a registered certificate to O(dest) on the managed
    host, in the JSON layout the other parts of the collection read (the connectivity role, the filter
    P(dkcustoms.dms.parse_gateway_credentials#filter)) and M(dkcustoms.dms.portal_registration) writes.
  - The file is written atomically through a temporary file in the same directory that has mode C(0600)
    before its first byte, then renamed over O(dest); owner, group and mode are set before the module
    returns. The password never passes through a file of another mode, a diff, the output or a log.
  - Idempotent by content - the file is written only when its content differs; otherwise only owner,
    group and mode are put right.
  - The credentials usually come from M(dkcustoms.dms.portal_registration) (the
    C(dkcustoms.dms.registration) role runs this module on every host that shares a certificate); they can
    also come from ansible-vault when a person registered the certificate on the portal by hand.
author:
  - dkcustoms.dms developers (@dkcustoms)
extends_documentation_fragment:
  - dkcustoms.dms.attributes
  - dkcustoms.dms.attributes.files
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows the gateway user and whether the password changes, never the password.
  idempotent:
    support: full
  safe_file_operations:
    support: full
options:
  dest:
    description: Path of the credentials file on the managed host. Its directory must exist.
    type: path
    required: true
  state:
    description: V(present) writes the file, V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  gateway_user:
    description:
      - The gateway user the certificate portal shows for the registered certificate
        (C(CVR_<cvr>_UI_<uuid>) or C(CVR_<cvr>_UR_<uuid>)). Required with O(state=present).
    type: str
  gateway_password:
    description:
      - The gateway password the certificate portal shows ("show"). Required with O(state=present).
      - Never logged. Keep it in ansible-vault when it does not come from M(dkcustoms.dms.portal_registration).
    type: str
  owner:
    description: Owner of the file (name or uid), for example the user the AS4 client runs as.
    type: str
  group:
    description: Group of the file (name or gid).
    type: str
  mode:
    description:
      - Mode of the file, in octal (for example V('0640') with O(group) for an AS4 client's service
        group). Modes that let other users (not owner, not group) read it, or let the group write it,
        are refused, as are symbolic modes.
    type: raw
    default: '0600'
seealso:
  - module: dkcustoms.dms.portal_registration
  - plugin: dkcustoms.dms.parse_gateway_credentials
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Install the gateway credentials the registration returned
  dkcustoms.dms.gateway_credentials:
    dest: /etc/dkcustoms/dms/current/gateway-credentials.json
    gateway_user: "{{ registration.gateway_user }}"
    gateway_password: "{{ registration.gateway_password }}"
    owner: as4client
    group: as4client
  no_log: true

- name: Manual registration - credentials copied from the portal into ansible-vault
  dkcustoms.dms.gateway_credentials:
    dest: /etc/dkcustoms/dms/current/gateway-credentials.json
    gateway_user: "{{ vault_gateway_user }}"
    gateway_password: "{{ vault_gateway_password }}"

- name: Remove them
  dkcustoms.dms.gateway_credentials:
    dest: /etc/dkcustoms/dms/current/gateway-credentials.json
    state: absent
"""

RETURN = r"""
dest:
  description: The credentials file.
  returned: always
  type: str
  sample: /etc/dkcustoms/dms/current/gateway-credentials.json
gateway_user:
  description: The gateway user now in the file (null with O(state=absent)).
  returned: always
  type: str
  sample: CVR_12345678_UI_175a859d-ed76-45af-828f-3a69691a7157
"""

import os
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.dkcustoms.dms.plugins.module_utils import _files, _gateway_credentials

HIDDEN = "(hidden)"
HIDDEN_CHANGED = "(hidden, changed)"


def _mode_problem(mode):
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


def _current_credentials(dest):
    """The credentials in ``dest`` as they are (None when missing or not our layout)."""
    content = _files.read_file(dest)
    if content is None:
        return None
    try:
        return _gateway_credentials.parse(content, what=dest)
    except _gateway_credentials.CredentialsError:
        return None


def _diff(before, after):
    """Before/after without the password: only whether it changes."""
    def view(credentials, changed):
        if credentials is None:
            return {}
        return {"gateway_user": credentials["gateway_user"],
                "gateway_password": HIDDEN_CHANGED if changed else HIDDEN}
    password_changed = (before or {}).get("gateway_password") != (after or {}).get("gateway_password")
    return {"before": view(before, False), "after": view(after, password_changed and after is not None)}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            gateway_user=dict(type="str"),
            gateway_password=dict(type="str", no_log=True),
            owner=dict(type="str"),
            group=dict(type="str"),
            mode=dict(type="raw", default="0600"),
        ),
        required_if=[("state", "present", ("gateway_user", "gateway_password"))],
        supports_check_mode=True,
    )
    params = module.params
    dest = params["dest"]
    result = {"changed": False, "dest": dest, "gateway_user": None}
    if os.path.isdir(dest):
        module.fail_json(msg="dest %s is a directory. Fix: give the path of the credentials file." % dest,
                         **result)
    try:
        before = _current_credentials(dest)
        if params["state"] == "absent":
            result["changed"] = _gateway_credentials.remove(module, dest)
            after = None
        else:
            after = _gateway_credentials.checked(params["gateway_user"], params["gateway_password"])
            problem = _mode_problem(params["mode"])
            if problem:
                module.fail_json(msg=problem + ".", **result)
            if not module.check_mode:
                _files.check_writable(os.path.dirname(os.path.abspath(dest)))
            result["changed"] = _gateway_credentials.install(module, dest, after, mode=params["mode"],
                                                             owner=params["owner"], group=params["group"])
            result["gateway_user"] = after["gateway_user"]
    except (_gateway_credentials.CredentialsError, _files.FileError) as exc:
        module.fail_json(msg=to_native(exc), **result)
    if module._diff and result["changed"]:
        result["diff"] = _diff(before, after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
