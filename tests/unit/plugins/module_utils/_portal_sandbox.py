# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared by the unit tests that talk to a real dms-sandbox portal: the test PKI, a sandbox per API
shape, and the portal API profile that fits each shape (the default shape: the built-in profile; the
variant: examples/portal-api-profiles/sandbox-variant.yml)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_profile

SHAPES = ("default", "variant")
COLLECTION_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
PROFILES_DIR = os.path.join(COLLECTION_ROOT, "examples", "portal-api-profiles")
VARIANT_PROFILE = os.path.join(PROFILES_DIR, "sandbox-variant.yml")


def pki_dir():
    directory = os.environ.get("DMS_PKI_DIR")
    if not directory:
        # One PKI for the unit tests of this user (dms-sandbox pki is idempotent and locks its
        # directory, so test files and parallel workers can share it; keys take time to make).
        directory = os.path.join(tempfile.gettempdir(), "dkcustoms-dms-unit-pki-%d" % os.getuid())
        subprocess.run([sys.executable, "-m", "dms_sandbox", "pki", "--out", directory,
                        "--foces", "6", "--broken"], check=True, stdout=subprocess.DEVNULL)
    return directory


def load_pki(directory):
    with open(os.path.join(directory, "pki.json"), encoding="utf-8") as handle:
        return json.load(handle)


def start(command, state, pki_directory, shape, *flags):
    """Start a sandbox (``command``: the dms-sandbox command) serving the portal API in ``shape``; its
    sandbox.json."""
    subprocess.run([command, "serve", "--state", state, "--pki", pki_directory, "--detach", "--ttl", "600",
                    "--portal-api", shape] + list(flags), check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(state, "sandbox.json"), encoding="utf-8") as handle:
        return json.load(handle)


def stop(command, state):
    subprocess.run([command, "stop", "--state", state], check=False, stdout=subprocess.DEVNULL)


def serve(command, tmp_path_factory, pki_directory, shape, *flags):
    """The body of a sandbox fixture: a sandbox in ``shape`` while the tests run (its sandbox.json, with
    ``profile``: the profile that fits it)."""
    state = str(tmp_path_factory.mktemp("sandbox-%s" % shape))
    info = start(command, state, pki_directory, shape, *flags)
    info["profile"] = profile_for(shape)
    yield info
    stop(command, state)


def profile_for(shape):
    """The portal API profile for a sandbox shape."""
    if shape == "default":
        return _portal_profile.default_profile()
    return _portal_profile.load(path=VARIANT_PROFILE)
