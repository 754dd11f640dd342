"""Fixtures for the fleet tests: the collection build, a test PKI, sandboxes and simulated fleets.

The tests run the real playbooks (ansible-playbook, and ansible-runner) over local-connection hosts,
a directory each, against a sandbox of their own over HTTPS on loopback.
"""

import os

import pytest

from dms_sandbox.demo import Fleet, Sandbox, load_pki, make_pki


@pytest.fixture(scope="session")
def collection_root():
    """The ansible_collections parent made by `make build` (the Makefile exports it)."""
    for root in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep):
        if root and os.path.isdir(os.path.join(root, "ansible_collections", "dkcustoms", "dms", "roles")):
            return root
    pytest.fail("No built collection: run the fleet tests with `make fleet-tests` (it runs `make build` and "
                "exports ANSIBLE_COLLECTIONS_PATH), or set ANSIBLE_COLLECTIONS_PATH to your BUILD_ROOT.")
    return None


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
    """make_fleet(sandbox, {host: entity}, forks=N, host_vars=...) -> Fleet with its inventory written."""

    def make(sandbox, assignment, forks=20, host_vars=None, group_vars=None, name="fleet"):
        fleet = Fleet(str(tmp_path / name), collection_root, sandbox.info, pki[1], forks=forks)
        fleet.write_inventory(assignment, group_vars=group_vars, host_vars=host_vars)
        return fleet

    return make
