# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """The certificate given to a module (option group certificate_source, module_utils _opt_certificate)."""

    DOCUMENTATION = r"""
options:
  certificate_path:
    description:
      - Path on the managed host of the certificate file - a PKCS#12 (C(.p12)/C(.pfx)) with the OCES3
        certificate, its private key and (optionally) its CA chain as delivered by MitID Erhverv, or a
        PEM or DER certificate, optionally followed by its CA chain (and, in PEM, its private key). The
        format is detected from the content.
      - Exactly one of O(certificate_path) and O(certificate_content) is required.
    type: path
  certificate_content:
    description:
      - The certificate file's content instead of a path. PEM text is used as it is; anything else is
        decoded as base64, for example a PKCS#12 kept on the controller (optionally ansible-vault
        encrypted) and passed as
        C("{{ lookup('ansible.builtin.file', 'files/foces.p12', rstrip=false) | b64encode }}") - the
        file lookup decrypts vault files on the controller, C(rstrip=false) keeps trailing bytes of the
        binary file, C(b64encode) restores the exact bytes.
      - Never logged. Mutually exclusive with O(certificate_path).
    type: str
  certificate_passphrase:
    description:
      - Passphrase of a PKCS#12 O(certificate_path) or O(certificate_content) (also tried for an
        encrypted private key inside a PEM certificate input when O(private_key_passphrase) is not
        set).
      - Omit it for files without a passphrase (an empty PKCS#12 passphrase is tried as well). Never
        logged.
    type: str
  private_key_path:
    description:
      - Path on the managed host of the PEM (or DER) private key, when the certificate input is a PEM
        or DER certificate without its key.
      - The key is loaded into memory; it is never written anywhere unencrypted.
      - Mutually exclusive with O(private_key_content).
    type: path
  private_key_content:
    description:
      - The private key's PEM text (or its DER bytes, base64-encoded) instead of O(private_key_path).
      - Never logged.
    type: str
  private_key_passphrase:
    description:
      - Passphrase of an encrypted private key (O(private_key_path), O(private_key_content) or a key
        inside a PEM certificate input); defaults to O(certificate_passphrase). Never logged.
    type: str
requirements:
  - cryptography >= 42.0 (on the managed host)
"""
