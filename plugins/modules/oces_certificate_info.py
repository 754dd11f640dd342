#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: oces_certificate_info
short_description: Read an OCES certificate or PKCS#12 file and classify it
version_added: 0.1.0
description:
  - Reads a PKCS#12 (C(.p12)/C(.pfx)), PEM or DER certificate from O(certificate_path) on the managed
    host or from O(certificate_content), and reports what it is - OCES3 certificate type (VOCES, FOCES, MOCES), environment
    (test or production), CVR, UUID, the certificate portal user id, validity and whether the private
    key belongs to the certificate.
  - VOCES and FOCES share the OCES3 serialNumber form C(UI:DK-O:G:<uuid>); the module tells them apart
    by keyUsage (organisation certificates have nonRepudiation, system certificates do not) and the
    C((systemcertifikat)) suffix of the CN, and reports the basis in RV(classification_basis).
  - OCES2 and non-OCES certificates are recognised and reported (with a warning), not refused; use
    M(dkcustoms.dms.oces_certificate) to refuse them.
  - The module never returns key material or passphrases.
author:
  - dkcustoms.dms developers (@dkcustoms)
extends_documentation_fragment:
  - dkcustoms.dms.attributes
  - dkcustoms.dms.certificate_source
attributes:
  check_mode:
    support: full
    details: The module only reads.
  diff_mode:
    support: none
  idempotent:
    support: full
notes:
  - Dates are ISO 8601 in UTC (C(2029-11-26T12:22:53Z)); RV(days_remaining) counts whole days.
  - Certificate warnings (MOCES, OCES2, expired, key mismatch ...) are returned in
    RV(certificate_warnings) and also shown as Ansible warnings.
seealso:
  - module: dkcustoms.dms.oces_certificate
  - plugin: dkcustoms.dms.portal_user_id
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Inspect a PKCS#12 on the host
  dkcustoms.dms.oces_certificate_info:
    certificate_path: /etc/dms/incoming/foces.p12
    certificate_passphrase: "{{ vault_foces_passphrase }}"
  register: cert

- name: Stop unless it is a test FOCES with 30 days left
  ansible.builtin.assert:
    that:
      - cert.certificate_type == 'FOCES'
      - cert.environment == 'test'
      - cert.days_remaining >= 30
      - cert.key_matches
    fail_msg: "{{ cert.subject }} is {{ cert.certificate_type }} ({{ cert.environment }})"

- name: Inspect a PKCS#12 kept on the controller (ansible-vault encrypted)
  dkcustoms.dms.oces_certificate_info:
    certificate_content: "{{ lookup('ansible.builtin.file', 'files/foces.p12', rstrip=false) | b64encode }}"
    certificate_passphrase: "{{ vault_foces_passphrase }}"
  register: cert

- name: Inspect an installed certificate and its key
  dkcustoms.dms.oces_certificate_info:
    certificate_path: /etc/dms/cert.pem
    private_key_path: /etc/dms/key.pem
  register: installed
"""

RETURN = r"""
certificate_type:
  description: VOCES, FOCES, MOCES (for OCES2 also POCES) or C(unknown).
  returned: success
  type: str
  sample: FOCES
classification_basis:
  description: Why the type was chosen (serialNumber form, keyUsage, CN suffix, OCES2 policy).
  returned: success
  type: list
  elements: str
  sample: ["subject serialNumber UI:DK-O:G:<uuid> (organisation or system certificate)",
           "keyUsage without nonRepudiation (system certificate)"]
oces_generation:
  description: C(OCES3), C(OCES2) or C(unknown) (not an OCES certificate).
  returned: success
  type: str
  sample: OCES3
environment:
  description: C(test) when the issuer carries C(OU=Test - cti), C(production) for the production OCES
    issuer, otherwise C(unknown).
  returned: success
  type: str
  sample: test
cvr:
  description: CVR number from C(organizationIdentifier) C(NTRDK-<cvr>) (OCES2 - from serialNumber).
  returned: success
  type: str
  sample: "12345678"
uuid:
  description: The certificate's UUID (the "UI") from serialNumber C(UI:DK-O:G:<uuid>) / C(UI:DK-E:G:<uuid>).
  returned: success
  type: str
  sample: 9a0c3906-239f-435f-b4f8-b990e4fe0056
portal_user_id:
  description: C(CVR_<cvr>_UI_<uuid>), the user id the certificate portal shows; V(null) if not OCES3.
  returned: success
  type: str
  sample: CVR_12345678_UI_9a0c3906-239f-435f-b4f8-b990e4fe0056
subject:
  description: Subject, RFC 4514 text.
  returned: success
  type: str
  sample: "CN=foces-01 (systemcertifikat),serialNumber=UI:DK-O:G:9a0c...,O=Firma ApS,organizationIdentifier=NTRDK-12345678,C=DK"
common_name:
  description: Subject CN.
  returned: success
  type: str
issuer:
  description: Issuer, RFC 4514 text.
  returned: success
  type: str
serial_number:
  description: Certificate serial number, lower-case hex.
  returned: success
  type: str
fingerprint_sha256:
  description: SHA-256 fingerprint of the certificate (DER), lower-case hex without separators.
  returned: success
  type: str
not_before:
  description: Start of validity, ISO 8601 UTC.
  returned: success
  type: str
  sample: "2026-11-27T12:22:53Z"
not_after:
  description: End of validity, ISO 8601 UTC.
  returned: success
  type: str
  sample: "2029-11-26T12:22:53Z"
days_remaining:
  description: Whole days until RV(not_after) (negative once expired).
  returned: success
  type: int
expired:
  description: Whether RV(not_after) has passed.
  returned: success
  type: bool
not_yet_valid:
  description: Whether RV(not_before) is still in the future.
  returned: success
  type: bool
policies:
  description: Certificate policy OIDs.
  returned: success
  type: list
  elements: str
key_usage:
  description: keyUsage bits set (cryptography names, C(content_commitment) is nonRepudiation).
  returned: success
  type: list
  elements: str
public_key_type:
  description: C(RSA), C(ECC), ...
  returned: success
  type: str
public_key_size:
  description: Key size in bits.
  returned: success
  type: int
has_private_key:
  description: Whether a private key came with the certificate (or via O(private_key_path) or
    O(private_key_content)).
  returned: success
  type: bool
key_matches:
  description: Whether that private key belongs to the certificate; V(null) without a key.
  returned: success
  type: bool
chain:
  description: The CA certificates that came with it, leaf-to-root.
  returned: success
  type: list
  elements: dict
  contains:
    subject:
      description: Subject.
      type: str
    issuer:
      description: Issuer.
      type: str
    serial_number:
      description: Serial number, hex.
      type: str
    fingerprint_sha256:
      description: SHA-256 fingerprint, hex.
      type: str
    not_before:
      description: ISO 8601 UTC.
      type: str
    not_after:
      description: ISO 8601 UTC.
      type: str
source_format:
  description: C(pkcs12), C(pem) or C(der).
  returned: success
  type: str
certificate_warnings:
  description: Problems worth knowing (MOCES, OCES2, not OCES, expired, not yet valid, key mismatch).
  returned: success
  type: list
  elements: str
"""

from ansible_collections.dkcustoms.dms.plugins.module_utils import _deps, _module, _oces, _opt_certificate


def main():
    module = _module.DmsModule({}, groups=[_opt_certificate.CERTIFICATE_SOURCE])
    _deps.require(module, "cryptography")
    with module.failing_on_errors():
        info = _oces.describe(_opt_certificate.read_certificate(module))
    certificate_warnings = info.pop("warnings")
    for warning in certificate_warnings:
        module.warn(warning)
    module.exit_json(changed=False, certificate_warnings=certificate_warnings, **info)


if __name__ == "__main__":
    main()
