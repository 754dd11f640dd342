#!/usr/bin/env python
"""Fail if the -vvvv log of the target holds a secret: the gateway password, the portal password, the
PKCS#12 passphrase or any line of the private keys used to sign."""

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
    for name in ("foces-03", "foces-04"):
        with open(pki["entities"][name]["key"], encoding="ascii") as handle:
            lines = [line for line in handle.read().splitlines() if line and not line.startswith("-----")]
        secrets["private key of %s" % name] = lines[len(lines) // 2]
    with open(os.path.join(output_dir, "credentials", "foces-03.json"), encoding="utf-8") as handle:
        secrets["gateway_password"] = json.load(handle)["gateway_password"]
    if len(log) < 10000 or "gateway_connectivity" not in log:
        sys.exit("check_log: too little to check (%d bytes of log)" % len(log))
    leaked = [name for name, value in secrets.items() if value and value in log]
    if leaked:
        sys.exit("check_log: secrets found in the -vvvv output: %s" % ", ".join(sorted(leaked)))
    print("check_log: %d secrets, none in %d bytes of -vvvv output" % (len(secrets), len(log)))


if __name__ == "__main__":
    main(*sys.argv[1:4])
