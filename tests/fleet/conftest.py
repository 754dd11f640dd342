"""Fixtures for the fleet tests: the collection build, a test PKI, sandboxes and simulated fleets.

The tests run the real playbooks (ansible-playbook, and ansible-runner) over local-connection hosts,
a directory each, against a sandbox of their own over HTTPS on loopback.
"""

import json
import os
import subprocess
import sys

import pytest

from dms_sandbox.fleet import DEMO_PORTAL_PASSWORD, Fleet, Sandbox, load_pki, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """The PKI `make pki` made (DMS_PKI_DIR), or a small one of our own."""
    directory = os.environ.get("DMS_PKI_DIR")
    if directory and os.path.exists(os.path.join(directory, "pki.json")):
        manifest = load_pki(directory)
        if len([name for name in manifest["entities"] if name.startswith("foces-")]) >= 21:
            return directory, manifest
    directory = str(tmp_path_factory.mktemp("pki"))
    return directory, make_pki(directory, foces=21, voces=4, moces=1)


@pytest.fixture
def start_sandbox(tmp_path, pki):
    """start_sandbox(registration_delay=S) -> Sandbox, stopped after the test."""
    started = []

    def start(registration_delay=1, name="sandbox"):
        sandbox = Sandbox(str(tmp_path / name), pki[0], registration_delay=registration_delay, ttl=1800)
        started.append(sandbox)
        sandbox.start()
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def make_fleet(tmp_path, collection_root, pki):
    """make_fleet(sandbox, {host: entity}, forks=N, host_vars=..., group_vars=..., vault_vars=...) -> Fleet
    with its inventory written (vault_vars go into its ansible-vault file)."""

    def make(sandbox, assignment, forks=20, host_vars=None, group_vars=None, vault_vars=None, name="fleet"):
        fleet = Fleet(str(tmp_path / name), collection_root, sandbox.info, pki[1], forks=forks)
        fleet.write_inventory(assignment, group_vars=group_vars, host_vars=host_vars, vault_vars=vault_vars)
        return fleet

    return make


@pytest.fixture
def register_elsewhere(tmp_path, collection_root, pki):
    """register_elsewhere(sandbox, entity) -> {gateway_user, gateway_password}: the certificate registered on
    the sandbox's portal outside any fleet run - as a person does in the browser - by portal_registration run
    directly. The credentials file it wrote is removed: the caller holds the only copy, as a person who noted
    them down would. The portal password becomes the fleet's (DEMO_PORTAL_PASSWORD)."""

    def register(sandbox, entity):
        work = tmp_path / ("elsewhere-" + entity)
        work.mkdir()
        dest = work / "gateway-credentials.json"
        (work / "vars.json").write_text(json.dumps({
            "portal_url": sandbox.info["portal_url"], "ca_path": sandbox.info["ca_bundle"],
            "certificate_path": pki[1]["entities"][entity]["p12"],
            "certificate_passphrase": pki[1]["passphrase"],
            "password": DEMO_PORTAL_PASSWORD, "dest": str(dest)}))
        (work / "register.yml").write_text(
            "- name: Register one certificate outside the fleet\n  hosts: localhost\n  gather_facts: false\n"
            "  tasks:\n    - name: Register it\n      dkcustoms.dms.portal_registration:\n"
            "        portal_url: '{{ portal_url }}'\n        ca_path: '{{ ca_path }}'\n"
            "        certificate_path: '{{ certificate_path }}'\n"
            "        certificate_passphrase: '{{ certificate_passphrase }}'\n"
            "        password: '{{ password }}'\n        interfaces: [AS4]\n"
            "        gateway_credentials_dest: '{{ dest }}'\n")
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collection_root, ANSIBLE_NOCOLOR="1",
                   ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
        binary = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
        result = subprocess.run([binary, "-i", "localhost,", "-c", "local", "-e",
                                 "ansible_python_interpreter=" + sys.executable, "-e", "@" + str(work / "vars.json"),
                                 str(work / "register.yml")], cwd=str(work), env=env, capture_output=True, text=True,
                                timeout=300, check=False)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        credentials = json.loads(dest.read_text())
        dest.unlink()
        return credentials

    return register
