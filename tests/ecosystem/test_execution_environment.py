# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ansible-builder over the collection as users install it: from the tarball `ansible-galaxy` builds."""

import os
import shutil
import subprocess

import pytest
import yaml

from conftest import tool


def _requirement_lines(path):
    """The non-comment lines of a requirements / bindep file."""
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip() and not line.lstrip().startswith("#")]


@pytest.fixture(scope="module")
def tarball(collection_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("galaxy-build")
    subprocess.run([tool("ansible-galaxy"), "collection", "build", "--output-path", str(out), collection_dir],
                   check=True, capture_output=True)
    with open(os.path.join(collection_dir, "galaxy.yml"), encoding="utf-8") as handle:
        version = yaml.safe_load(handle)["version"]
    path = out / ("dkcustoms-dms-%s.tar.gz" % version)
    assert path.exists()
    return path


def test_introspect_lists_exactly_our_requirements(tarball, collection_dir, tmp_path):
    subprocess.run([tool("ansible-galaxy"), "collection", "install", "--force", "-p", str(tmp_path / "collections"),
                    str(tarball)], check=True, capture_output=True)
    pip_out, bindep_out = tmp_path / "pip.txt", tmp_path / "bindep.txt"
    subprocess.run([tool("ansible-builder"), "introspect", "--write-pip", str(pip_out), "--write-bindep",
                    str(bindep_out), str(tmp_path / "collections")], check=True, capture_output=True)
    origin = "  # from collection dkcustoms.dms"
    expected_pip = _requirement_lines(os.path.join(collection_dir, "meta", "ee-requirements.txt"))
    expected_bindep = _requirement_lines(os.path.join(collection_dir, "meta", "ee-bindep.txt"))
    assert _requirement_lines(pip_out) == [line + origin for line in expected_pip]
    assert _requirement_lines(bindep_out) == [line + origin for line in expected_bindep]
    assert [line.split(">=")[0] for line in expected_pip] == [
        "cryptography", "requests", "lxml", "signxml", "jmespath"]


def test_create_makes_a_build_context_from_the_example(tarball, collection_dir, tmp_path):
    shutil.copy(os.path.join(collection_dir, "examples", "execution-environment.yml"), tmp_path)
    shutil.copy(tarball, tmp_path)
    context = tmp_path / "context"
    subprocess.run([tool("ansible-builder"), "create", "-f", "execution-environment.yml", "-c", str(context)],
                   cwd=tmp_path, check=True, capture_output=True)
    containerfile = [name for name in ("Containerfile", "Dockerfile") if (context / name).exists()]
    assert containerfile, "ansible-builder create wrote no Containerfile"
    text = (context / containerfile[0]).read_text(encoding="utf-8")
    assert "ansible-galaxy collection install" in text and "introspect" in text
    # The galaxy stage installs the collection from the tarball in the context: do that step here.
    build = context / "_build"
    assert (build / "collections" / tarball.name).exists(), "the example names a tarball of another version"
    subprocess.run([tool("ansible-galaxy"), "collection", "install", "--force", "-r", "requirements.yml", "-p",
                    str(tmp_path / "installed")], cwd=build, check=True, capture_output=True)
    assert (tmp_path / "installed" / "ansible_collections" / "dkcustoms" / "dms" / "MANIFEST.json").exists()
