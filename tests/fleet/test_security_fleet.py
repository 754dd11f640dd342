"""A host is never left without its working certificate (security review, issue 10, items 4 and 7)."""

import json
import os
import socket


def onboard(fleet, *args):
    return fleet.onboard("-e", "onboarding_report_dir=%s" % os.path.join(fleet.root, "report"), *args)


def assert_ok(run):
    assert run.ok, run.output[-6000:]


def bundle_of(fleet, entity):
    return "bundles/" + fleet.pki["entities"][entity]["fingerprint_sha256"][:16]


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_current_moves_only_to_a_verified_certificate_and_a_rescue_removes_only_its_own(start_sandbox, make_fleet):
    sandbox = start_sandbox(registration_delay=1)
    host = "switch-01"
    fleet = make_fleet(sandbox, {host: "voces-01"})
    assert_ok(onboard(fleet))
    base = fleet.host_base_dir(host)
    current, previous = os.path.join(base, "current"), os.path.join(base, "previous")
    assert os.readlink(current) == bundle_of(fleet, "voces-01")

    # Item 4: the inventory names a new certificate and someone runs onboard.yml. The working
    # certificate stays active and the run says to use the rotation playbook.
    fleet.write_inventory({host: "voces-03"})
    run = onboard(fleet)

    assert_ok(run)
    assert os.readlink(current) == bundle_of(fleet, "voces-01")
    assert "playbooks/rotate.yml" in run.output and "stays active" in run.output
    with open(os.path.join(fleet.root, "report", "report.json"), encoding="utf-8") as handle:
        (row,) = json.load(handle)["hosts"]
    assert any("rotate.yml" in warning for warning in row["certificate_warnings"]), row

    # The rotation playbook is the way to switch: it registers and verifies first.
    new_p12, old_p12 = (fleet.pki["entities"][name]["p12"] for name in ("voces-03", "voces-01"))
    assert_ok(fleet.run("dkcustoms.dms.rotate", "-e", "rotation_force=true", "-e", "rotation_certificate_path=" + new_p12))
    assert os.readlink(current) == bundle_of(fleet, "voces-03")
    assert os.readlink(previous) == bundle_of(fleet, "voces-01")
    before = fleet.tree_digest(host)

    # Item 7: rotating back to the previous certificate fails (the gateway cannot be reached). The
    # rescue must not remove bundles/<voces-01>: this run did not create it, previous/ points at it.
    failed = fleet.run("dkcustoms.dms.rotate", "-e", "rotation_force=true", "-e", "rotation_certificate_path=" + old_p12,
                       "-e", "connectivity_url=https://127.0.0.1:%d" % closed_port())

    assert failed.returncode != 0 and int(failed.recap[host]["rescued"]) == 1, failed.output[-4000:]
    assert os.readlink(current) == bundle_of(fleet, "voces-03")
    assert os.readlink(previous) == bundle_of(fleet, "voces-01")
    assert os.path.isfile(os.path.join(previous, "cert.pem"))
    assert os.path.isfile(os.path.join(previous, "gateway-credentials.json"))
    assert fleet.tree_digest(host) == before
