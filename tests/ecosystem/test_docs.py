# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The documentation as users read it: antsibull-docs lint (semantic markup checked, references
inside the collection and to ansible.builtin resolved) and ansible-doc for every plugin and role
entry point, without a warning."""

import glob
import os
import re
import subprocess

import pytest
import yaml

from conftest import ansible_env, tool

NOISE = re.compile(r"\[(WARNING|DEPRECATION WARNING|ERROR)\]")


def _plugins(collection_dir):
    """{type: [fully qualified names]} from the files, so a plugin whose docs fail to load is not missed."""
    modules = sorted(os.path.basename(path)[:-3]
                     for path in glob.glob(os.path.join(collection_dir, "plugins", "modules", "*.py")))
    filters = []
    for path in glob.glob(os.path.join(collection_dir, "plugins", "filter", "*.yml")):
        with open(path, encoding="utf-8") as handle:
            filters.append(yaml.safe_load(handle)["DOCUMENTATION"]["name"])
    return {"module": ["dkcustoms.dms." + name for name in modules],
            "filter": ["dkcustoms.dms." + name for name in sorted(filters)]}


def _role_entry_points(collection_dir):
    entry_points = {}
    for path in sorted(glob.glob(os.path.join(collection_dir, "roles", "*", "meta", "argument_specs.yml"))):
        with open(path, encoding="utf-8") as handle:
            specs = yaml.safe_load(handle)["argument_specs"]
        entry_points["dkcustoms.dms." + path.split(os.sep)[-3]] = sorted(specs)
    return entry_points


def _ansible_doc(*args):
    completed = subprocess.run([tool("ansible-doc")] + list(args), capture_output=True, text=True, timeout=300,
                               env=ansible_env(ANSIBLE_DEPRECATION_WARNINGS="1"), check=False)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert not NOISE.search(output), output
    return completed.stdout


def test_lint_collection_docs(collection_dir):
    completed = subprocess.run(
        [tool("antsibull-docs"), "lint-collection-docs", "--plugin-docs", "--validate-collection-refs=dependent",
         "--check-extra-docs-refs", collection_dir],
        capture_output=True, text=True, timeout=600, env=ansible_env(), check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.strip() == "", completed.stdout


@pytest.mark.parametrize("plugin_type", ["module", "filter"])
def test_ansible_doc_renders_every_plugin(plugin_type, collection_dir):
    names = _plugins(collection_dir)[plugin_type]
    assert names
    output = _ansible_doc("-t", plugin_type, *names)
    for name in names:
        assert re.search(r"^> %s %s \(" % (plugin_type.upper(), re.escape(name)), output, re.MULTILINE), name


def test_ansible_doc_renders_every_role_entry_point(collection_dir):
    entry_points = _role_entry_points(collection_dir)
    assert "dkcustoms.dms.prerequisites" in entry_points
    for role, points in entry_points.items():
        for point in points:
            output = _ansible_doc("-t", "role", role, "--entry-point", point)
            assert "ENTRY POINT: *%s*" % point in output, (role, point, output[:2000])
