#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: oces_certificate
short_description: Install an OCES3 certificate bundle in the formats an AS4 client needs
version_added: 0.1.0
description:
  - Reads an OCES3 certificate with its private key and CA chain (PKCS#12, or PEM with key and chain)
    from O(certificate_path) on the managed host or from O(certificate_content) (one of them is required
    with O(state=present)), checks it (key present and matching, OCES3, allowed type, expected CVR,
    validity), and writes the chosen O(formats) into the directory O(dest)
    under fixed names - C(cert.pem), C(key.pem), C(chain.pem), C(fullchain.pem), C(keystore.p12).
  - Idempotent by content, not timestamps - a file is rewritten only when its certificate fingerprint,
    key, chain, or (for C(keystore.p12) and an encrypted C(key.pem)) the passphrase that must open it
    differ from what is wanted.
  - Nothing is written when a check fails; key material is written with mode C(0600) through one
    temporary file in O(dest) and an atomic rename.
  - The decrypted source never lands on the managed host outside O(dest). With O(certificate_content) it
    travels only as a module argument (inside Ansible's temporary module payload, which Ansible deletes after
    the task; with C(pipelining) it never touches the disk).
author:
  - dkcustoms.dms developers (@dkcustoms)
extends_documentation_fragment:
  - dkcustoms.dms.attributes
  - dkcustoms.dms.attributes.files
  - dkcustoms.dms.certificate_source
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows a certificate summary per file (subject, fingerprint, validity); never key
      material or passphrases.
  idempotent:
    support: full
options:
  dest:
    description:
      - Directory to write the files into; created (mode C(0700)) if missing.
    type: path
    required: true
  formats:
    description:
      - Which files to write (with O(state=absent) - which to remove).
      - V(cert) is C(cert.pem) (the certificate), V(key) is C(key.pem) (PKCS#8 private key, encrypted
        with O(key_passphrase) if set), V(chain) is C(chain.pem) (CA certificates, leaf-to-root),
        V(fullchain) is C(fullchain.pem) (certificate then chain), V(pkcs12) is C(keystore.p12)
        (key, certificate and chain; AES-256/PBKDF2 with HMAC-SHA256 MAC, opens with Java 17
        C(keytool -list)).
    type: list
    elements: str
    choices: [cert, key, chain, fullchain, pkcs12]
    default: [cert, key, chain, fullchain, pkcs12]
  keystore_passphrase:
    description:
      - Passphrase of the written C(keystore.p12); required when O(formats) contains V(pkcs12).
      - If the existing keystore does not open with it, the keystore is rewritten.
    type: str
  keystore_alias:
    description:
      - Alias (friendly name) of the key entry in C(keystore.p12), as Java C(keytool) shows it.
    type: str
    default: dms
  key_passphrase:
    description:
      - Encrypt C(key.pem) with this passphrase (PKCS#8, AES-256-CBC). Unencrypted if omitted.
    type: str
  owner:
    description: Owner of the written files and of O(dest) (name or uid).
    type: str
  group:
    description:
      - Group of the written files and of O(dest) (name or gid).
      - A O(dest) created with a group is mode C(0750), so members of the group can enter it; otherwise C(0700).
    type: str
  mode:
    description: Mode of the certificate files (C(cert.pem), C(chain.pem), C(fullchain.pem)).
    type: raw
    default: '0644'
  key_mode:
    description: Mode of the files holding key material (C(key.pem), C(keystore.p12)).
    type: raw
    default: '0600'
  backup:
    description: Keep a timestamped copy of each file before it is replaced or removed.
    type: bool
    default: false
  expected_cvr:
    description:
      - Fail unless the certificate belongs to this CVR (8 digits).
    type: str
  allowed_types:
    description:
      - Certificate types to accept. MOCES is accepted with a warning (the guide recommends FOCES or
        VOCES). Add V(unknown) to install a non-OCES certificate.
    type: list
    elements: str
    choices: [VOCES, FOCES, MOCES, unknown]
    default: [VOCES, FOCES, MOCES]
  min_days_remaining:
    description:
      - Fail when the certificate has fewer days left.
    type: int
    default: 0
  allow_expired:
    description: Install an expired certificate instead of failing.
    type: bool
    default: false
  allow_not_yet_valid:
    description: Install a certificate whose validity has not started instead of failing.
    type: bool
    default: false
  state:
    description:
      - V(present) writes the files, V(absent) removes the files of O(formats) from O(dest) (no
        certificate needed; O(dest) itself stays).
    type: str
    choices: [present, absent]
    default: present
notes:
  - OCES2 certificates are refused with a message that says to order an OCES3 certificate.
  - A source without CA chain (for example made by C(keytool -genkeypair)) gives an empty
    C(chain.pem) and a warning.
seealso:
  - module: dkcustoms.dms.oces_certificate_info
  - module: community.crypto.openssl_pkcs12
"""

EXAMPLES = r"""
- name: Install a FOCES kept on the controller (ansible-vault encrypt files/foces.p12)
  dkcustoms.dms.oces_certificate:
    certificate_content: "{{ lookup('ansible.builtin.file', 'files/foces.p12', rstrip=false) | b64encode }}"
    certificate_passphrase: "{{ vault_foces_passphrase }}"
    dest: /etc/dms/certs
    keystore_passphrase: "{{ vault_keystore_passphrase }}"
    owner: dms
    group: dms
    expected_cvr: "12345678"
    allowed_types: [FOCES, VOCES]
    min_days_remaining: 30
  register: installed

- name: Install only PEM files from a PKCS#12 already on the host, with an encrypted key
  dkcustoms.dms.oces_certificate:
    certificate_path: /root/incoming/foces.p12
    certificate_passphrase: "{{ vault_foces_passphrase }}"
    dest: /etc/dms/pem
    formats: [cert, key, fullchain]
    key_passphrase: "{{ vault_key_passphrase }}"
    backup: true

- name: Remove the installed files
  dkcustoms.dms.oces_certificate:
    dest: /etc/dms/pem
    formats: [cert, key, fullchain]
    state: absent
"""

RETURN = r"""
files:
  description: Path of every file of O(formats), by format (written or already up to date).
  returned: always
  type: dict
  sample: {"cert": "/etc/dms/certs/cert.pem", "key": "/etc/dms/certs/key.pem",
           "pkcs12": "/etc/dms/certs/keystore.p12"}
changed_files:
  description: Formats whose files were (or in check mode would be) written or removed.
  returned: always
  type: list
  elements: str
  sample: [cert, pkcs12]
backup_files:
  description: Backup copies made, by format.
  returned: when O(backup=true) and a file was replaced or removed
  type: dict
certificate:
  description: Summary of the installed certificate (no key material).
  returned: when O(state=present)
  type: dict
  contains:
    subject:
      description: Subject, RFC 4514.
      type: str
    certificate_type:
      description: VOCES, FOCES, MOCES or unknown.
      type: str
    environment:
      description: test, production or unknown.
      type: str
    cvr:
      description: CVR number.
      type: str
    uuid:
      description: Certificate UUID.
      type: str
    portal_user_id:
      description: C(CVR_<cvr>_UI_<uuid>).
      type: str
    fingerprint_sha256:
      description: SHA-256 fingerprint, hex.
      type: str
    not_after:
      description: ISO 8601 UTC.
      type: str
    days_remaining:
      description: Whole days left.
      type: int
"""

from ansible_collections.dkcustoms.dms.plugins.module_utils import _deps, _install, _module, _oces, _opt_certificate

ARGUMENT_SPEC = {
    "dest": {"type": "path", "required": True},
    "formats": {"type": "list", "elements": "str", "choices": list(_install.FILE_NAMES),
                "default": list(_install.FILE_NAMES)},
    "keystore_passphrase": {"type": "str", "no_log": True},
    "keystore_alias": {"type": "str", "default": "dms", "no_log": False},
    "key_passphrase": {"type": "str", "no_log": True},
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "mode": {"type": "raw", "default": "0644"},
    "key_mode": {"type": "raw", "default": "0600", "no_log": False},
    "backup": {"type": "bool", "default": False},
    "expected_cvr": {"type": "str"},
    "allowed_types": {"type": "list", "elements": "str", "choices": list(_oces.CERTIFICATE_TYPES),
                      "default": list(_oces.OCES_TYPES)},
    "min_days_remaining": {"type": "int", "default": 0},
    "allow_expired": {"type": "bool", "default": False},
    "allow_not_yet_valid": {"type": "bool", "default": False},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
}


def main():
    # The certificate is needed only to install it, not to remove the files.
    module = _module.DmsModule(ARGUMENT_SPEC, groups=[_opt_certificate.certificate_source(required=False)],
                               required_if=[("state", "present", _opt_certificate.CERTIFICATE_INPUTS, True)])
    if module.params["state"] == "present":
        # Before any other check: a host without cryptography gets the fix, not a misleading input error.
        _deps.require(module, "cryptography")
    with module.failing_on_errors():
        result = _install.run(module)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
