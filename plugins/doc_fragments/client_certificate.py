# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """The OCES3 certificate a module presents (TLS client certificate) or signs with."""

    DOCUMENTATION = r"""
options:
  pkcs12_path:
    description:
      - Path on the managed host of the PKCS#12 file (C(.p12)/C(.pfx)) with the OCES3 certificate, its
        private key and (optionally) its CA chain, as delivered by MitID Erhverv.
      - Mutually exclusive with O(pkcs12_content) and O(certificate_path).
      - One of O(pkcs12_path), O(pkcs12_content) or O(certificate_path) is required.
    type: path
  pkcs12_content:
    description:
      - The PKCS#12 file's content, base64-encoded (for example
        C(lookup('ansible.builtin.file', 'cert.p12') | b64encode) or a vaulted variable).
      - Never logged. Mutually exclusive with O(pkcs12_path) and O(certificate_path).
    type: str
  pkcs12_passphrase:
    description:
      - Passphrase of the PKCS#12 file. Never logged.
    type: str
  certificate_path:
    description:
      - Path on the managed host of the PEM (or DER) certificate, optionally followed by its CA chain.
      - Requires O(private_key_path).
    type: path
  private_key_path:
    description:
      - Path on the managed host of the PEM (or DER) private key belonging to O(certificate_path).
      - The key is loaded into memory; it is never written anywhere unencrypted.
    type: path
  private_key_passphrase:
    description:
      - Passphrase of an encrypted O(private_key_path). Never logged.
    type: str
requirements:
  - cryptography
"""
