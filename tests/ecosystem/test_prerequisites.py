# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The role dkcustoms.dms.prerequisites on a host whose Python has none of the libraries.

Local connection; the "host Python" is a bare virtual environment this test makes. The role creates
its own virtual environment from the pinned, hash-checked lock (PyPI, pip's cache reused), after which
the modules run with the interpreter it set: oces_certificate_info, portal_registration and a signed
AS4 ping with gateway_connectivity against the sandbox. A second run is changed=0; --check changes
nothing, neither after the install nor on a fresh host.
"""

import json
import os
import re
import secrets
import subprocess

import pytest
import yaml

from conftest import ansible_env, tool
from dms_sandbox.fleet import Sandbox, load_pki, make_pki

PLAYBOOK = """
- name: Prerequisites
  hosts: dms
  gather_facts: false
  roles:
    - role: dkcustoms.dms.prerequisites

- name: The modules run with the interpreter the role set
  hosts: dms
  gather_facts: false
  tasks:
    - name: The interpreter is the role's
      ansible.builtin.assert:
        that:
          - ansible_python_interpreter == venv ~ '/bin/python'
          - prerequisites_python_interpreter == venv ~ '/bin/python'
      when: not ansible_check_mode

    - name: Read the certificate
      dkcustoms.dms.oces_certificate_info:
        certificate_path: "{{ entity.p12 }}"
        certificate_passphrase: "{{ pki.passphrase }}"
      register: info
      when: run_modules | bool

    - name: Register it on the sandbox portal
      dkcustoms.dms.portal_registration:
        portal_url: "{{ sandbox.portal_url }}"
        ca_path: "{{ sandbox.ca_bundle }}"
        certificate_path: "{{ entity.p12 }}"
        certificate_passphrase: "{{ pki.passphrase }}"
        password: "{{ portal_password }}"
        interfaces: [AS4]
        wait_timeout: 60
        return_gateway_password: true
      register: registration
      no_log: true
      when: run_modules | bool

    - name: Signed AS4 ping
      dkcustoms.dms.gateway_connectivity:
        url: "{{ sandbox.gateway_url }}"
        ca_path: "{{ sandbox.ca_bundle }}"
        receipt_signer: "{{ sandbox.gateway_certificate }}"
        certificate_path: "{{ entity.p12 }}"
        certificate_passphrase: "{{ pki.passphrase }}"
        gateway_user: "{{ registration.gateway_user }}"
        gateway_password: "{{ registration.gateway_password }}"
        timeout: 10
      register: ping
      when: run_modules | bool

    - name: Write what the modules answered
      ansible.builtin.copy:
        content: "{{ {'type': info.certificate_type, 'user': info.portal_user_id, 'ping': ping.result} | to_json }}"
        dest: "{{ answers }}"
        mode: "0600"
      when: run_modules | bool
"""


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    directory = os.environ.get("DMS_PKI_DIR")
    if not (directory and os.path.exists(os.path.join(directory, "pki.json"))):
        directory = str(tmp_path_factory.mktemp("pki"))
        make_pki(directory, foces=1, voces=0, moces=0)
    server = Sandbox(str(tmp_path_factory.mktemp("sandbox")), directory, registration_delay=0, ttl=600)
    server.start()
    yield server.info, load_pki(directory)
    server.stop()


def _run(work, venv, *args, run_modules=False, extra=None, expect_failure=False):
    extra_vars = dict(prerequisites_method="venv", prerequisites_venv_path=venv, venv=venv,
                      run_modules=run_modules, answers=str(work / "answers.json"))
    extra_vars.update(extra or {})
    with open(work / "extra.json", "w", encoding="utf-8") as handle:
        json.dump(extra_vars, handle)
    completed = subprocess.run(
        [tool("ansible-playbook"), "-i", str(work / "inventory.ini"), str(work / "playbook.yml"),
         "-e", "@" + str(work / "extra.json")] + list(args),
        capture_output=True, text=True, timeout=600, env=ansible_env(), check=False)
    if expect_failure is None:  # either outcome: the caller judges the output
        return None, completed.stdout
    if expect_failure:
        assert completed.returncode != 0, completed.stdout[-3000:]
        return None, completed.stdout
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-3000:]
    recap = re.search(r"^dms\s+: ok=(\d+)\s+changed=(\d+)", completed.stdout, re.MULTILINE)
    assert recap, completed.stdout[-3000:]
    return int(recap.group(2)), completed.stdout


@pytest.fixture
def work(tmp_path, bare_python):
    (tmp_path / "playbook.yml").write_text(PLAYBOOK, encoding="utf-8")
    # The bare Python is the host's: the role must not rely on anything in it.
    (tmp_path / "inventory.ini").write_text(
        "dms ansible_connection=local ansible_python_interpreter=%s\n" % bare_python, encoding="utf-8")
    return tmp_path


def test_role_installs_the_libraries_idempotently_and_the_modules_run(work, sandbox):
    info, pki = sandbox
    entity = next(value for name, value in sorted(pki["entities"].items()) if name.startswith("foces-"))
    venv = str(work / "dms-venv")
    module_vars = {"sandbox": info, "pki": {"passphrase": pki["passphrase"]}, "entity": entity,
                   "portal_password": "Pw-" + secrets.token_urlsafe(16)}
    changed, output = _run(work, venv, run_modules=True, extra=module_vars)
    assert changed >= 3, output  # venv created, libraries installed, lock recorded (+ the registration)
    answers = json.loads((work / "answers.json").read_text(encoding="utf-8"))
    assert answers == {"type": "FOCES", "user": entity["portal_user_id"], "ping": "SUCCESS"}

    changed, output = _run(work, venv)
    assert changed == 0, output
    changed, output = _run(work, venv, "--check")
    assert changed == 0, output


def test_check_mode_on_a_fresh_host_writes_nothing(work):
    venv = work / "never-created" / "venv"
    changed, output = _run(work, str(venv), "--check")
    assert changed == 1, output  # "Create the virtual environment" would run
    assert not (work / "never-created").exists()


def _os_release():
    with open("/etc/os-release", encoding="utf-8") as handle:
        return {key: value.strip('"') for key, value in
                (line.rstrip("\n").split("=", 1) for line in handle if "=" in line)}


def test_auto_takes_the_packages_only_where_the_data_says_they_meet_the_floor(work, collection_dir):
    # Only cryptography needed. The role's data (vars/<family>.yml) names the releases whose package meets
    # the floor; auto must follow it (in check mode: nothing is installed either way).
    with open(os.path.join(collection_dir, "roles", "prerequisites", "vars", "Debian.yml"), encoding="utf-8") as handle:
        releases = yaml.safe_load(handle)["_prerequisites_os_packages"]["cryptography"]["releases"]
    release = _os_release()
    first = {name.lower(): number for name, number in releases.items()}.get(release.get("ID", ""))
    major = int(re.match(r"\d*", release.get("VERSION_ID", "")).group(0) or 0)
    changed, output = _run(work, str(work / "venv"), "--check",
                           extra={"prerequisites_method": "auto", "prerequisites_modules": ["oces_certificate_info"]})
    uses_packages = "prerequisites/tasks/packages.yml for dms" in output
    assert uses_packages == bool(first is not None and major >= first), output
    assert ("prerequisites/tasks/venv.yml for dms" in output) == (not uses_packages), output
    assert not (work / "venv").exists()


def test_packages_are_checked_against_the_floor(work):
    # The distribution's python3-cryptography (installed by the role if missing): the role's check after
    # the install must pass it only at or above the floor, and otherwise say so with the fix.
    dummy, output = _run(work, str(work / "venv"), extra={"prerequisites_method": "packages",
                                                          "prerequisites_modules": ["oces_certificate_info"]},
                         expect_failure=None)
    version = subprocess.run(["/usr/bin/python3", "-c", "import cryptography; print(cryptography.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    if tuple(int(part) for part in version.split(".")[:2]) < (45, 0):
        assert "cryptography: %s is older than the floor 45.0" % version in output, output
        assert "Fix: use prerequisites_method: venv" in output
    else:
        assert re.search(r"^dms\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", output, re.MULTILINE), output


def test_packages_refused_where_signxml_is_not_packaged(work):
    dummy, output = _run(work, str(work / "venv"), extra={"prerequisites_method": "packages"}, expect_failure=True)
    assert "has no package for signxml (needed by" in output
    assert "Fix: set prerequisites_method: venv (or auto)" in output
    assert not (work / "venv").exists()
