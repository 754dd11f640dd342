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
    from O(src) on the managed host or from O(content), checks it (key present and matching, OCES3,
    allowed type, expected CVR, validity), and writes the chosen O(formats) into the directory O(dest)
    under fixed names - C(cert.pem), C(key.pem), C(chain.pem), C(fullchain.pem), C(keystore.p12).
  - Idempotent by content, not timestamps - a file is rewritten only when its certificate fingerprint,
    key, chain, or (for C(keystore.p12) and an encrypted C(key.pem)) the passphrase that must open it
    differ from what is wanted.
  - Nothing is written when a check fails; key material is written with mode C(0600) through one
    temporary file in O(dest) and an atomic rename.
  - The decrypted source never lands on the managed host outside O(dest). With O(content) it travels
    only as a module argument (inside Ansible's temporary module payload, which Ansible deletes after
    the task; with C(pipelining) it never touches the disk).
author:
  - dkcustoms.dms developers (@dkcustoms)
requirements:
  - cryptography >= 42.0 (on the managed host)
extends_documentation_fragment:
  - dkcustoms.dms.attributes
  - dkcustoms.dms.attributes.files
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows a certificate summary per file (subject, fingerprint, validity); never key
      material or passphrases.
  idempotent:
    support: full
  safe_file_operations:
    support: full
options:
  src:
    description:
      - Path of the source on the managed host - a PKCS#12 (C(.p12)/C(.pfx)), or a PEM file with
        certificate, private key and chain.
      - Exactly one of O(src) and O(content) is required with O(state=present).
    type: path
  content:
    description:
      - The source's content - PEM text as it is, anything else base64 (a PKCS#12).
      - To keep the PKCS#12 on the controller, encrypted with ansible-vault (C(ansible-vault encrypt
        files/foces.p12)), pass
        C("{{ lookup('ansible.builtin.file', 'files/foces.p12', rstrip=false) | b64encode }}") - the file
        lookup decrypts vault files on the controller, C(rstrip=false) keeps trailing bytes of the binary
        file, C(b64encode) restores the exact bytes.
    type: str
  passphrase:
    description:
      - Passphrase of the PKCS#12 source (or of the encrypted key in a PEM source).
    type: str
  private_key_src:
    description:
      - Separate private key (PEM/DER) on the managed host when O(src) holds only certificates.
    type: path
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
  pkcs12_passphrase:
    description:
      - Passphrase of the written C(keystore.p12); required when O(formats) contains V(pkcs12).
      - If the existing keystore does not open with it, the keystore is rewritten.
    type: str
  pkcs12_alias:
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
      - V(present) writes the files, V(absent) removes the files of O(formats) from O(dest) (no source
        needed; O(dest) itself stays).
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
    content: "{{ lookup('ansible.builtin.file', 'files/foces.p12', rstrip=false) | b64encode }}"
    passphrase: "{{ vault_foces_passphrase }}"
    dest: /etc/dms/certs
    pkcs12_passphrase: "{{ vault_keystore_passphrase }}"
    owner: dms
    group: dms
    expected_cvr: "12345678"
    allowed_types: [FOCES, VOCES]
    min_days_remaining: 30
  register: installed

- name: Install only PEM files from a PKCS#12 already on the host, with an encrypted key
  dkcustoms.dms.oces_certificate:
    src: /root/incoming/foces.p12
    passphrase: "{{ vault_foces_passphrase }}"
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

import base64
import binascii
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.dkcustoms.dms.plugins.module_utils import _deps, _files, _oces

FILE_NAMES = {"cert": "cert.pem", "key": "key.pem", "chain": "chain.pem",
              "fullchain": "fullchain.pem", "pkcs12": "keystore.p12"}
SECRET_FORMATS = ("key", "pkcs12")
SUMMARY_FIELDS = ("subject", "certificate_type", "environment", "cvr", "uuid", "portal_user_id",
                  "fingerprint_sha256", "not_after", "days_remaining")


def read_source(module):
    if module.params["src"] is not None:
        with open(module.params["src"], "rb") as handle:
            return handle.read()
    content = module.params["content"]
    if "-----BEGIN" in content:
        return to_bytes(content)
    try:
        return base64.b64decode(to_bytes("".join(content.split())), validate=True)
    except (binascii.Error, ValueError):
        raise _oces.OcesError("content is neither PEM text nor valid base64. Fix: fill it with "
                              "lookup('ansible.builtin.file', ...) of a base64 file, or b64encode the "
                              "binary file.", "invalid_input")


def read_private_key(module):
    path = module.params["private_key_src"]
    if path is None:
        return None
    with open(path, "rb") as handle:
        return handle.read()


class Installer:
    """Works out which files differ from the wanted bundle and writes them through _files."""

    def __init__(self, module, bundle):
        self.module = module
        self.bundle = bundle
        self.params = module.params

    def path(self, fmt):
        return os.path.join(self.params["dest"], FILE_NAMES[fmt])

    def wanted(self, fmt):
        bundle = self.bundle
        if fmt == "cert":
            return _oces.certificate_pem(bundle.certificate)
        if fmt == "chain":
            return _oces.chain_pem(bundle.chain)
        if fmt == "fullchain":
            return _oces.chain_pem([bundle.certificate] + bundle.chain)
        if fmt == "key":
            return _oces.private_key_pem(bundle.private_key, self.params["key_passphrase"])
        return _oces.pkcs12_bytes(bundle, self.params["pkcs12_passphrase"], self.params["pkcs12_alias"])

    def up_to_date(self, fmt, current):
        """Compare content semantically: certificates by fingerprint, keys by value."""
        if current is None:
            return False
        bundle = self.bundle
        try:
            if fmt in ("cert", "chain", "fullchain"):
                expected = {"cert": [bundle.certificate], "chain": bundle.chain,
                            "fullchain": [bundle.certificate] + bundle.chain}[fmt]
                return current == _oces.chain_pem(expected)
            if fmt == "key":
                return self._key_up_to_date(current)
            return self._keystore_up_to_date(current)
        except Exception:  # pylint: disable=broad-except
            # Whatever cannot be read back as the wanted content is rewritten.
            return False

    def _key_up_to_date(self, current):
        passphrase = self.params["key_passphrase"]
        encrypted = b"ENCRYPTED" in current
        if bool(passphrase) != encrypted:
            return False
        key = _oces.serialization.load_pem_private_key(current, to_bytes(passphrase) if passphrase else None)
        return _oces.same_key(key, self.bundle.private_key)

    def _keystore_up_to_date(self, current):
        existing = _oces.pkcs12.load_pkcs12(current, to_bytes(self.params["pkcs12_passphrase"]))
        if existing.cert is None or existing.key is None:
            return False
        name = existing.cert.friendly_name
        wanted_name = to_bytes(self.params["pkcs12_alias"]) if self.params["pkcs12_alias"] else None
        others = [c.certificate for c in existing.additional_certs]
        return (name == wanted_name
                and _oces.same_key(existing.key, self.bundle.private_key)
                and _oces.same_certificates([existing.cert.certificate], [self.bundle.certificate])
                and sorted(_oces.fingerprint_sha256(c) for c in others)
                == sorted(_oces.fingerprint_sha256(c) for c in self.bundle.chain))

    def mode_for(self, fmt):
        return self.params["key_mode"] if fmt in SECRET_FORMATS else self.params["mode"]


def summary_line(fmt, current):
    """One diff line about an existing file: certificate summary, never key material."""
    if current is None:
        return "%s: absent" % FILE_NAMES[fmt]
    if fmt in SECRET_FORMATS:
        return "%s: present (key material not shown)" % FILE_NAMES[fmt]
    try:
        bundle = _oces.load_bundle(current)
        return "%s: %s, sha256 %s, valid until %s (+%d CA)" % (
            FILE_NAMES[fmt], _oces.name_text(bundle.certificate.subject),
            _oces.fingerprint_sha256(bundle.certificate),
            bundle.certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"), len(bundle.chain))
    except _oces.OcesError:
        return "%s: present, no readable certificate" % FILE_NAMES[fmt]


def wanted_line(fmt, info, bundle, params):
    name = FILE_NAMES[fmt]
    if fmt == "key":
        encrypted = " (encrypted)" if params["key_passphrase"] else ""
        return "%s: private key of %s%s" % (name, info["subject"], encrypted)
    if fmt == "pkcs12":
        return "%s: keystore, alias %s, %s, sha256 %s (+%d CA)" % (
            name, params["pkcs12_alias"], info["subject"], info["fingerprint_sha256"], len(bundle.chain))
    if fmt == "chain":
        return "%s: %d CA certificate(s): %s" % (
            name, len(bundle.chain), "; ".join(_oces.name_text(c.subject) for c in bundle.chain))
    return "%s: %s, sha256 %s, valid until %s%s" % (
        name, info["subject"], info["fingerprint_sha256"], info["not_after"],
        " (+%d CA)" % len(bundle.chain) if fmt == "fullchain" else "")


def run_absent(module, result):
    dest = module.params["dest"]
    for fmt in module.params["formats"]:
        path = os.path.join(dest, FILE_NAMES[fmt])
        result["files"][fmt] = path
        before = _files.read_file(path) if os.path.isfile(path) else None
        removed = _files.remove_file(module, path, backup=module.params["backup"])
        if removed["changed"]:
            result["changed_files"].append(fmt)
            result["diff"]["before"] += summary_line(fmt, before) + "\n"
            result["diff"]["after"] += "%s: absent\n" % FILE_NAMES[fmt]
        if removed["backup_file"]:
            result["backup_files"][fmt] = removed["backup_file"]


def run_present(module, result):
    params = module.params
    if not params["src"] and params["content"] is None:
        raise _oces.OcesError("state=present needs the certificate: set src (path on the host) or "
                              "content (base64 PKCS#12 or PEM).", "invalid_input")
    if "pkcs12" in params["formats"] and not params["pkcs12_passphrase"]:
        raise _oces.OcesError("formats contains pkcs12, so keystore.p12 needs its own passphrase. "
                              "Fix: set pkcs12_passphrase (keep it in ansible-vault).", "invalid_input")
    try:
        data = read_source(module)
        key_data = read_private_key(module)
    except OSError as exc:
        raise _oces.OcesError("The source file cannot be read (%s). Fix: check src/private_key_src or "
                              "run with become." % (exc.strerror or exc), "invalid_input")
    bundle = _oces.load_bundle(data, passphrase=params["passphrase"], key_data=key_data)
    info = _oces.validate(bundle, require_key=bool({"key", "pkcs12"} & set(params["formats"])),
                          allowed_types=params["allowed_types"], expected_cvr=params["expected_cvr"],
                          min_days_remaining=params["min_days_remaining"],
                          allow_expired=params["allow_expired"],
                          allow_not_yet_valid=params["allow_not_yet_valid"])
    for warning in info["warnings"]:
        module.warn(warning)
    if not bundle.chain and {"chain", "fullchain", "pkcs12"} & set(params["formats"]):
        module.warn("The source has no CA chain; chain.pem is empty and fullchain.pem/keystore.p12 "
                    "hold only the certificate. Export the PKCS#12 with its chain to include it.")
    result["certificate"] = {k: info[k] for k in SUMMARY_FIELDS}

    # Every check happens before the first write, so a failure writes nothing.
    dest = params["dest"]
    # A group that is given must be able to enter the directory (the AS4 client's service group).
    created_dir = _files.ensure_directory(module, dest, mode=0o750 if params["group"] else 0o700)
    if not created_dir:
        if module.check_mode:
            if not os.access(dest, os.W_OK | os.X_OK):
                raise _files.FileError("dest %s is not writable. Fix: choose a writable directory or "
                                       "run with become." % dest)
        else:
            _files.check_writable(dest)
    installer = Installer(module, bundle)
    pending = []
    for fmt in params["formats"]:
        path = installer.path(fmt)
        result["files"][fmt] = path
        current = _files.read_file(path)
        if not installer.up_to_date(fmt, current):
            pending.append(fmt)
            result["diff"]["before"] += summary_line(fmt, current) + "\n"
            result["diff"]["after"] += wanted_line(fmt, info, bundle, params) + "\n"
    for fmt in pending:
        written = _files.write_file(module, installer.path(fmt), installer.wanted(fmt),
                                    mode=installer.mode_for(fmt), owner=params["owner"],
                                    group=params["group"], backup=params["backup"])
        result["changed_files"].append(fmt)
        if written["backup_file"]:
            result["backup_files"][fmt] = written["backup_file"]
    for fmt in params["formats"]:
        if fmt not in pending and os.path.exists(installer.path(fmt)):
            if _files.set_attributes(module, installer.path(fmt), mode=installer.mode_for(fmt),
                                     owner=params["owner"], group=params["group"]):
                result["attributes_changed"] = True
    # The directory belongs to the same owner/group as its files, or that user could not reach them.
    if (params["owner"] or params["group"]) and os.path.isdir(dest):
        if _files.set_attributes(module, dest, owner=params["owner"], group=params["group"]):
            result["attributes_changed"] = True
    if created_dir:
        result["attributes_changed"] = True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path"),
            content=dict(type="str", no_log=True),
            passphrase=dict(type="str", no_log=True),
            private_key_src=dict(type="path"),
            dest=dict(type="path", required=True),
            formats=dict(type="list", elements="str", choices=list(FILE_NAMES),
                         default=list(FILE_NAMES)),
            pkcs12_passphrase=dict(type="str", no_log=True),
            pkcs12_alias=dict(type="str", default="dms"),
            key_passphrase=dict(type="str", no_log=True),
            owner=dict(type="str"),
            group=dict(type="str"),
            mode=dict(type="raw", default="0644"),
            key_mode=dict(type="raw", default="0600", no_log=False),
            backup=dict(type="bool", default=False),
            expected_cvr=dict(type="str"),
            allowed_types=dict(type="list", elements="str", choices=list(_oces.CERTIFICATE_TYPES),
                               default=list(_oces.OCES_TYPES)),
            min_days_remaining=dict(type="int", default=0),
            allow_expired=dict(type="bool", default=False),
            allow_not_yet_valid=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        mutually_exclusive=[("src", "content")],
        supports_check_mode=True,
    )
    _deps.require(module, "cryptography")
    result = {"changed": False, "files": {}, "changed_files": [], "backup_files": {},
              "diff": {"before": "", "after": "", "before_header": module.params["dest"],
                       "after_header": module.params["dest"]}}
    try:
        if module.params["state"] == "absent":
            run_absent(module, result)
        else:
            run_present(module, result)
    except (_oces.OcesError, _files.FileError) as exc:
        module.fail_json(msg=str(exc), reason=getattr(exc, "reason", "file_error"))
    attributes_changed = result.pop("attributes_changed", False)
    result["changed"] = bool(result["changed_files"]) or attributes_changed
    if not module._diff:
        result.pop("diff")
    if not result["backup_files"]:
        result.pop("backup_files")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
