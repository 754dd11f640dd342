# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the ecosystem tests: the built collection, a bare host Python, ansible runs.

These tests meet the collection the way its users do: ansible-galaxy / ansible-builder over the built
tarball, ansible-doc and antsibull-docs over the installed collection, the prerequisites role on a host
whose Python has none of the libraries.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

import pytest

BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="session")
def collection_dir(collection_root):
    return os.path.join(collection_root, "ansible_collections", "dkcustoms", "dms")


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory):
    """A fresh virtual environment without pip or any library: a host Python with nothing installed."""
    directory = tmp_path_factory.mktemp("bare-host") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True)
    python = str(directory / "bin" / "python")
    probe = subprocess.run([python, "-c", "import cryptography"], capture_output=True, check=False)
    assert probe.returncode != 0, "the bare Python must not see cryptography"
    return python


def tool(name):
    """A console script of the .venv that runs the tests."""
    return os.path.join(BIN, name)


def ansible_env(**extra):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_HOST_KEY_CHECKING="0",
               ANSIBLE_RETRY_FILES_ENABLED="0", PYTHONDONTWRITEBYTECODE="1")
    env.update(extra)
    return env


def run_module(module, args, interpreter, timeout=120):
    """Run dkcustoms.dms.<module> ad hoc on localhost (local connection) with ``interpreter``.

    Returns (status, result dict, CompletedProcess): ad hoc output is ``localhost | STATUS => {json}``.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".ini") as inventory:
        inventory.write("localhost ansible_connection=local ansible_python_interpreter=%s\n" % interpreter)
        inventory.flush()
        completed = subprocess.run(
            [tool("ansible"), "localhost", "-i", inventory.name, "-m", "dkcustoms.dms." + module,
             "-a", json.dumps(args)],
            capture_output=True, text=True, timeout=timeout, env=ansible_env(), check=False)
    found = re.search(r"^localhost \| (\S+) => ", completed.stdout, re.MULTILINE)
    if found:
        return found.group(1), json.JSONDecoder().raw_decode(completed.stdout[found.end():])[0], completed
    pytest.fail("ansible printed no result (rc %s):\n%s\n%s" % (completed.returncode, completed.stdout,
                                                                completed.stderr))
    return None, None, completed
