# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Install an OCES bundle as the files an AS4 client needs (the work of ``oces_certificate``).

``run(module) -> result``
    ``state=present``: read the certificate source (``_opt_certificate``), check it against the
    module's policy, and write each file of ``formats`` whose content differs from the wanted one;
    ``state=absent``: remove them.  Every check happens before the first write, so a failure writes
    nothing.  Raises ``_errors.DmsError`` subclasses (``OcesError``, ``FileError`` ...).
Files are compared by content, not timestamps: certificates by their bytes, keys by value, the
keystore by opening it with the wanted passphrase.  All writes go through ``_files``.
"""

from __future__ import annotations

import os

from ansible_collections.dkcustoms.dms.plugins.module_utils import _files, _oces, _opt_certificate

FILE_NAMES = {"cert": "cert.pem", "key": "key.pem", "chain": "chain.pem",
              "fullchain": "fullchain.pem", "pkcs12": "keystore.p12"}
SECRET_FORMATS = ("key", "pkcs12")
SUMMARY_FIELDS = ("subject", "certificate_type", "environment", "cvr", "uuid", "portal_user_id",
                  "fingerprint_sha256", "not_after", "days_remaining")


def _to_bytes(text):
    return text.encode("utf-8") if text else None


class Installer:
    """Works out which files differ from the wanted bundle and what each should hold."""

    def __init__(self, params, bundle):
        self.params = params
        self.bundle = bundle

    def path(self, fmt):
        return os.path.join(self.params["dest"], FILE_NAMES[fmt])

    def certificates(self, fmt):
        bundle = self.bundle
        return {"cert": [bundle.certificate], "chain": bundle.chain,
                "fullchain": [bundle.certificate] + bundle.chain}[fmt]

    def wanted(self, fmt):
        if fmt == "key":
            return _oces.private_key_pem(self.bundle.private_key, self.params["key_passphrase"])
        if fmt == "pkcs12":
            return _oces.pkcs12_bytes(self.bundle, self.params["keystore_passphrase"],
                                      self.params["keystore_alias"])
        return _oces.chain_pem(self.certificates(fmt))

    def up_to_date(self, fmt, current):
        """Compare content semantically: certificates by their PEM, keys by value."""
        if current is None:
            return False
        try:
            if fmt == "key":
                return self._key_up_to_date(current)
            if fmt == "pkcs12":
                return self._keystore_up_to_date(current)
            return current == _oces.chain_pem(self.certificates(fmt))
        except Exception:  # pylint: disable=broad-except
            # Whatever cannot be read back as the wanted content is rewritten.
            return False

    def _key_up_to_date(self, current):
        passphrase = self.params["key_passphrase"]
        if bool(passphrase) != (b"ENCRYPTED" in current):
            return False
        key = _oces.serialization.load_pem_private_key(current, _to_bytes(passphrase))
        return _oces.same_key(key, self.bundle.private_key)

    def _keystore_up_to_date(self, current):
        existing = _oces.pkcs12.load_pkcs12(current, _to_bytes(self.params["keystore_passphrase"]))
        if existing.cert is None or existing.key is None:
            return False
        others = [c.certificate for c in existing.additional_certs]
        return (existing.cert.friendly_name == _to_bytes(self.params["keystore_alias"])
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
    """One diff line about the file as it will be: a summary, never key material."""
    name = FILE_NAMES[fmt]
    if fmt == "key":
        encrypted = " (encrypted)" if params["key_passphrase"] else ""
        return "%s: private key of %s%s" % (name, info["subject"], encrypted)
    if fmt == "pkcs12":
        return "%s: keystore, alias %s, %s, sha256 %s (+%d CA)" % (
            name, params["keystore_alias"], info["subject"], info["fingerprint_sha256"], len(bundle.chain))
    if fmt == "chain":
        return "%s: %d CA certificate(s): %s" % (
            name, len(bundle.chain), "; ".join(_oces.name_text(c.subject) for c in bundle.chain))
    return "%s: %s, sha256 %s, valid until %s%s" % (
        name, info["subject"], info["fingerprint_sha256"], info["not_after"],
        " (+%d CA)" % len(bundle.chain) if fmt == "fullchain" else "")


def _diff_lines(result, before, after):
    result["diff"]["before"] += before + "\n"
    result["diff"]["after"] += after + "\n"


def absent(module, result):
    """Remove the files of ``formats`` from ``dest`` (``dest`` itself stays)."""
    for fmt in module.params["formats"]:
        path = os.path.join(module.params["dest"], FILE_NAMES[fmt])
        result["files"][fmt] = path
        before = _files.read_file(path) if os.path.isfile(path) else None
        removed = _files.remove_file(module, path, backup=module.params["backup"])
        if removed["changed"]:
            result["changed_files"].append(fmt)
            _diff_lines(result, summary_line(fmt, before), "%s: absent" % FILE_NAMES[fmt])
        if removed["backup_file"]:
            result["backup_files"][fmt] = removed["backup_file"]


def checked_bundle(module):
    """The certificate source, read and checked against the module's policy; (bundle, info)."""
    params = module.params
    if "pkcs12" in params["formats"] and not params["keystore_passphrase"]:
        raise _oces.OcesError("formats contains pkcs12, so keystore.p12 needs its own passphrase. "
                              "Fix: set keystore_passphrase (keep it in ansible-vault).", "invalid_input")
    bundle = _opt_certificate.read_certificate(module)
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
    return bundle, info


def _prepare_dest(module):
    """Create ``dest`` if missing (True then) or check that it can be written to."""
    dest = module.params["dest"]
    # A group that is given must be able to enter the directory (the AS4 client's service group).
    created = _files.ensure_directory(module, dest, mode=0o750 if module.params["group"] else 0o700)
    if created:
        return True
    if not module.check_mode:
        _files.check_writable(dest)
    elif not os.access(dest, os.W_OK | os.X_OK):
        raise _files.FileError("dest %s is not writable. Fix: choose a writable directory or run with "
                               "become." % dest)
    return False


def _pending(installer, info, result):
    """The formats whose file differs from the wanted content (their diff lines added)."""
    pending = []
    for fmt in installer.params["formats"]:
        result["files"][fmt] = installer.path(fmt)
        current = _files.read_file(installer.path(fmt))
        if not installer.up_to_date(fmt, current):
            pending.append(fmt)
            _diff_lines(result, summary_line(fmt, current),
                        wanted_line(fmt, info, installer.bundle, installer.params))
    return pending


def _write(module, installer, pending, result):
    params = module.params
    for fmt in pending:
        written = _files.write_file(module, installer.path(fmt), installer.wanted(fmt),
                                    mode=installer.mode_for(fmt), owner=params["owner"],
                                    group=params["group"], backup=params["backup"])
        result["changed_files"].append(fmt)
        if written["backup_file"]:
            result["backup_files"][fmt] = written["backup_file"]


def _settle_attributes(module, installer, pending):
    """Owner/group/mode of the files left as they were, and of ``dest``; True if any changed."""
    params = module.params
    changed = False
    for fmt in params["formats"]:
        if fmt not in pending and os.path.exists(installer.path(fmt)):
            changed |= bool(_files.set_attributes(module, installer.path(fmt), mode=installer.mode_for(fmt),
                                                  owner=params["owner"], group=params["group"]))
    # The directory belongs to the same owner/group as its files, or that user could not reach them.
    if (params["owner"] or params["group"]) and os.path.isdir(params["dest"]):
        changed |= bool(_files.set_attributes(module, params["dest"], owner=params["owner"],
                                              group=params["group"]))
    return changed


def present(module, result):
    """Write the files of ``formats`` that differ; True if owner/group/mode (or ``dest``) changed."""
    bundle, info = checked_bundle(module)
    result["certificate"] = {k: info[k] for k in SUMMARY_FIELDS}
    # Every check happens before the first write, so a failure writes nothing.
    created_dir = _prepare_dest(module)
    installer = Installer(module.params, bundle)
    pending = _pending(installer, info, result)
    _write(module, installer, pending, result)
    return _settle_attributes(module, installer, pending) or created_dir


def run(module):
    """The module's result for ``state`` (see the module docstring)."""
    dest = module.params["dest"]
    result = {"changed": False, "files": {}, "changed_files": [], "backup_files": {},
              "diff": {"before": "", "after": "", "before_header": dest, "after_header": dest}}
    if module.params["state"] == "absent":
        absent(module, result)
        attributes_changed = False
    else:
        attributes_changed = present(module, result)
    result["changed"] = bool(result["changed_files"]) or attributes_changed
    if not module._diff:
        result.pop("diff")
    if not result["backup_files"]:
        result.pop("backup_files")
    return result
