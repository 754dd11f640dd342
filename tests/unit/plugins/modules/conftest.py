# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the module tests: run a module's main() with arguments and read its JSON result."""

from __future__ import annotations

import json

import pytest

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19
    patch_module_args = None


@pytest.fixture
def run_module(capsys):
    """``run_module(main, args, check_mode=False, diff=False)``: the module's result as a dict."""
    if patch_module_args is None:
        pytest.skip("needs ansible-core 2.19 (patch_module_args)")

    def run(main, args, check_mode=False, diff=False):
        args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                main()
        return json.loads(capsys.readouterr().out)
    return run
