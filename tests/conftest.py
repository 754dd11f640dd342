# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The skip policy shared by every pytest suite under tests/ (tests/README.md).

A test that cannot run because something it needs is missing (a command, the sandbox, a PKI) calls
`require_tool(name)` or `unavailable(reason)`: under CI (CI=true) that is a failure, elsewhere a skip
that names what is missing. `make` counts each suite's skips afterwards (.ci/check-skips.py) and, under
CI, fails on any skip that tests/README.md does not list.
"""

from __future__ import annotations

import os
import shutil

import pytest


def under_ci():
    """True when the CI environment variable says so (CI=true, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _unavailable(reason):
    if under_ci():
        pytest.fail("%s. CI=true, so this is a failure, not a skip (tests/README.md)" % reason, pytrace=False)
    pytest.skip(reason)


def _require_tool(name):
    path = shutil.which(name)
    if path is None:
        _unavailable("needs the %s command, which is not on PATH" % name)
    return path


@pytest.fixture(scope="session")
def unavailable():
    """unavailable(reason): stop this test because something it needs is missing (fails under CI)."""
    return _unavailable


@pytest.fixture(scope="session")
def require_tool():
    """require_tool(name) -> path of the command; a missing one fails under CI and skips elsewhere."""
    return _require_tool


@pytest.fixture(scope="session")
def collection_root():
    """The ansible_collections parent made by `make build`, for the suites that run the built collection
    (tests/fleet, tests/ecosystem: their make targets build it and export ANSIBLE_COLLECTIONS_PATH)."""
    for root in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep):
        if root and os.path.isdir(os.path.join(root, "ansible_collections", "dkcustoms", "dms", "roles")):
            return root
    pytest.fail("No built collection: run these tests with `make fleet-tests` or `make ecosystem-tests` (they "
                "run `make build` and export ANSIBLE_COLLECTIONS_PATH), or set ANSIBLE_COLLECTIONS_PATH to "
                "your BUILD_ROOT.")
    return None
