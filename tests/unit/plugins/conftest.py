# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the unit tests that talk to a dms-sandbox portal or a hostile server: the test PKI, and
hostile HTTPS servers that are closed after the test (a test file may define its own fixture of the same
name instead)."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "module_utils"))
import _portal_sandbox as shapes  # noqa: E402  pylint: disable=wrong-import-position
from _hostile import HostileHTTPS  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope="module")
def pki_dir(require_tool):
    """The test PKI's directory; tests that use it need the dms-sandbox command (pip install -e sandbox)."""
    require_tool("dms-sandbox")
    return shapes.pki_dir()


@pytest.fixture(scope="module")
def pki(pki_dir):  # pylint: disable=redefined-outer-name
    """The test PKI's pki.json."""
    return shapes.load_pki(pki_dir)


@pytest.fixture
def hostile(pki):  # pylint: disable=redefined-outer-name
    """``hostile(routes=None)`` starts a HostileHTTPS server on loopback; all are closed after the test."""
    servers = []

    def start(routes=None):
        server = HostileHTTPS(pki, routes)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
