# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Each module, run with a Python that has none of its libraries, names what is missing and the fix.

No traceback: no ``exception`` in the result, nothing of one in the output.
"""

import pytest

from conftest import run_module

# module -> (arguments that pass the argument spec, the libraries it must name)
CASES = {
    "oces_certificate_info": ({"certificate_path": "/nonexistent.p12"}, ["cryptography"]),
    "oces_certificate": ({"certificate_path": "/nonexistent.p12", "dest": "/nonexistent-dir"}, ["cryptography"]),
    "portal_registration": ({"certificate_path": "/nonexistent.p12", "password": "unused-password"},
                            ["cryptography", "requests", "jmespath"]),
    "gateway_connectivity": ({"certificate_path": "/nonexistent.p12", "gateway_user": "unused-user",
                              "gateway_password": "unused-gateway-password"},
                             ["cryptography", "requests", "lxml", "signxml"]),
}


@pytest.mark.parametrize("module", sorted(CASES))
def test_missing_library_names_the_fix(module, bare_python, collection_root):
    args, libraries = CASES[module]
    status, result, completed = run_module(module, args, bare_python)
    assert status == "FAILED!"
    assert result["reason"] == "missing_library"
    assert result["missing_libraries"] == libraries
    message = result["msg"]
    assert message.startswith("Missing Python librar")
    assert bare_python in message
    assert "Fix: run the role dkcustoms.dms.prerequisites on this host" in message
    for library in libraries:
        assert "'%s>=" % library in message  # the pip requirement with the floor
    assert "exception" not in result
    assert "Traceback" not in completed.stdout + completed.stderr
