#!/usr/bin/env python
"""Fail if the -vvvv log of the target holds any secret: portal passwords, the PKCS#12 passphrase
(and the PKCS#12 as base64), or any gateway password the portal handed out."""

import base64
import glob
import json
import os
import sys

import yaml


def main(log_path, secrets_path, output_dir):
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        log = handle.read()
    with open(secrets_path, encoding="utf-8") as handle:
        secrets = dict(yaml.safe_load(handle))
    with open(os.path.join(output_dir, "sandbox", "sandbox.json"), encoding="utf-8") as handle:
        pki_dir = json.load(handle)["pki_dir"]
    with open(os.path.join(pki_dir, "pki.json"), encoding="utf-8") as handle:
        pki = json.load(handle)
    secrets["certificate_passphrase"] = pki["passphrase"]
    with open(pki["entities"]["foces-05"]["p12"], "rb") as handle:
        secrets["certificate_content"] = base64.b64encode(handle.read()).decode()[:64]
    files = glob.glob(os.path.join(output_dir, "credentials", "**", "*.json"), recursive=True)
    for path in files:
        with open(path, encoding="utf-8") as handle:
            secrets["gateway_password of %s" % os.path.relpath(path, output_dir)] = json.load(handle)["gateway_password"]
    if len(files) < 5 or len(log) < 10000:
        sys.exit("check_log: too little to check (%d credential files, %d bytes of log)" % (len(files), len(log)))
    leaked = [name for name, value in secrets.items() if value and value in log]
    if leaked:
        sys.exit("check_log: secrets found in the -vvvv output: %s" % ", ".join(sorted(leaked)))
    print("check_log: %d secrets, none in %d bytes of -vvvv output" % (len(secrets), len(log)))


if __name__ == "__main__":
    main(*sys.argv[1:4])
