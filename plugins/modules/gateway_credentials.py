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

from ansible_collections.dkcustoms.dms.plugins.module_utils import _gateway_credentials, _module

ARGUMENT_SPEC = {
    "dest": {"type": "path", "required": True},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "gateway_user": {"type": "str"},
    "gateway_password": {"type": "str", "no_log": True},
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "mode": {"type": "raw", "default": "0600"},
}


def main():
    module = _module.DmsModule(ARGUMENT_SPEC,
                               required_if=[("state", "present", ("gateway_user", "gateway_password"))])
    with module.failing_on_errors(changed=False, dest=module.params["dest"], gateway_user=None):
        result = _gateway_credentials.run(module)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
