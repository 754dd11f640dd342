# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_deps: the missing-library check and message, and that its floors are the collection's floors."""

from __future__ import annotations

import os
import re
import sys

import pytest
import yaml

from ansible_collections.dkcustoms.dms.plugins.module_utils import _deps

COLLECTION = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


class FakeModule:
    def __init__(self):
        self.failed = None

    def fail_json(self, **kwargs):
        self.failed = kwargs
        raise SystemExit(1)


def test_all_present_passes():
    module = FakeModule()
    _deps.require(module, "cryptography", "requests", "lxml", "signxml")
    assert module.failed is None


def test_blocked_import_fails_with_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "signxml", None)  # `import signxml` now raises ImportError
    monkeypatch.setitem(sys.modules, "lxml.etree", None)
    module = FakeModule()
    with pytest.raises(SystemExit):
        _deps.require(module, "cryptography", "requests", "lxml", "signxml")
    assert module.failed["reason"] == "missing_library"
    assert module.failed["missing_libraries"] == ["lxml", "signxml"]
    message = module.failed["msg"]
    assert "Missing Python libraries on the managed host for the interpreter %s: lxml (" % sys.executable in message
    assert "Fix: run the role dkcustoms.dms.prerequisites on this host" in message
    assert message.endswith("%s -m pip install 'lxml>=5.4' 'signxml>=4.0'." % sys.executable)
    assert "exception" not in module.failed


def test_broken_submodule_counts_as_missing(monkeypatch):
    # cryptography importable but its pkcs12 support broken (e.g. no compiled binding)
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.serialization.pkcs12", None)
    assert [name for name, dummy in _deps.missing(["cryptography", "requests"])] == ["cryptography"]


def _requirement_floors(text):
    floors = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, floor = re.match(r"^([A-Za-z0-9_.-]+)\s*>=\s*([0-9.]+)$", line).groups()
            floors[name] = floor
    return floors


def test_floors_agree_with_ee_requirements_and_the_prerequisites_role():
    with open(os.path.join(COLLECTION, "meta", "ee-requirements.txt"), encoding="utf-8") as handle:
        ee_floors = _requirement_floors(handle.read())
    deps_floors = {name: spec.split(">=")[1] for name, (imports, spec) in _deps.LIBRARIES.items()}
    with open(os.path.join(COLLECTION, "roles", "prerequisites", "vars", "main.yml"), encoding="utf-8") as handle:
        role_vars = yaml.safe_load(handle)
    assert deps_floors == ee_floors
    assert role_vars["_prerequisites_floors"] == ee_floors
    libraries = {name for names in role_vars["_prerequisites_module_libraries"].values() for name in names}
    assert libraries == set(_deps.LIBRARIES)


def test_check_script_of_the_role_imports_what_the_modules_import():
    path = os.path.join(COLLECTION, "roles", "prerequisites", "files", "check_libraries.py")
    namespace = {}
    with open(path, encoding="utf-8") as handle:
        exec(compile(handle.read(), path, "exec"), namespace)  # pylint: disable=exec-used
    assert namespace["IMPORTS"] == {name: list(imports) for name, (imports, spec) in _deps.LIBRARIES.items()}
