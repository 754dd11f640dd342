"""The playbooks over simulated fleets, against a sandbox of their own (issue #6 acceptance)."""

import json
import os
import shutil
import subprocess
import sys

from dms_sandbox.fleet import DEMO_KEYSTORE_PASSPHRASE, DEMO_PORTAL_PASSWORD, DEMO_VAULT_PASSWORD, portal_totals


def mixed_fleet():
    """Four hosts sharing a FOCES, two with their own VOCES, one MOCES."""
    hosts = {"app-%02d" % n: "foces-01" for n in range(1, 5)}
    hosts.update({"org-01": "voces-01", "org-02": "voces-02", "desk-01": "moces-01"})
    return hosts


def files_under(path):
    return sorted(os.path.join(folder, name) for folder, _, names in os.walk(path) for name in names)


def report(fleet, name="report"):
    with open(os.path.join(fleet.root, name, "report.json"), encoding="utf-8") as handle:
        return json.load(handle)


def onboard(fleet, *args, **kwargs):
    return fleet.onboard("-e", "onboarding_report_dir=%s" % os.path.join(fleet.root, "report"), *args, **kwargs)


def assert_ok(run):
    assert run.ok, run.output[-6000:]


def test_check_mode_writes_nothing_and_reports_what_would_change(start_sandbox, make_fleet, register_elsewhere):
    """Check mode in portal mode also shows the worksheet: one entry per certificate the portal has not
    registered yet (voces-02 was registered before, by a person, and gets none)."""
    sandbox = start_sandbox(registration_delay=1)
    fleet = make_fleet(sandbox, mixed_fleet())
    register_elsewhere(sandbox, "voces-02")
    sandbox.reset_counters()

    run = onboard(fleet, "--check")

    assert_ok(run)
    assert files_under(fleet.hosts_dir) == []
    totals = portal_totals(sandbox.counters())
    assert totals["writes"] == 0 and totals["registrations_requested"] == 0 and totals["logins_failed"] == 0, totals
    data = report(fleet)
    assert data["check_mode"] is True
    assert data["summary"]["hosts"] == 7 and data["summary"]["pending"] == 7
    for host in data["hosts"]:
        assert "certificate bundle installed" in host["changes"], host
    leaders = [h for h in data["hosts"] if "registration_requested" in " ".join(h["changes"])]
    assert len(leaders) == 3  # one per distinct certificate not registered yet
    entities = fleet.pki["entities"]
    worksheet = {entry["portal_user_id"]: entry for entry in data["worksheet"]}
    assert {user_id: sorted(entry["hosts"]) for user_id, entry in worksheet.items()} == {
        entities["foces-01"]["portal_user_id"]: ["app-01", "app-02", "app-03", "app-04"],
        entities["voces-01"]["portal_user_id"]: ["org-01"],
        entities["moces-01"]["portal_user_id"]: ["desk-01"]}
    for entry in worksheet.values():
        assert entry["method"] == "portal" and entry["portal_url"] == "https://secureftp.gatewaytest.skat.dk/PortalCertApp/"
        assert any("registration_password" in step for step in entry["steps"]), entry["steps"]
    rows = {row["host"]: row for row in data["hosts"]}
    assert rows["app-01"]["registration_status"] == "not_registered" and rows["org-02"]["registration_status"] == "registered"
    with open(os.path.join(fleet.root, "report", "worksheet.md"), encoding="utf-8") as handle:
        sheet = handle.read()
    assert "check-mode run" in sheet and sheet.count("\n## ") == 3
    assert entities["voces-02"]["portal_user_id"] not in sheet


def test_shared_certificate_registers_once_and_rerun_changes_nothing(start_sandbox, make_fleet):
    """Ten hosts on one certificate, all at once (forks = hosts): one registration, the same credentials on
    each. More hosts prove nothing more here; `make bench` runs 50 and 200."""
    sandbox = start_sandbox(registration_delay=2)
    hosts = {"shared-%02d" % n: "foces-01" for n in range(1, 11)}
    fleet = make_fleet(sandbox, hosts, forks=len(hosts))

    first = onboard(fleet)

    assert_ok(first)
    accounts = sandbox.counters()["accounts"]
    assert len(accounts) == 1
    (account,) = accounts.values()
    assert account["registrations_requested"] == 1
    assert account["registration_status"] == "registered"
    credentials = set()
    for host in hosts:
        path = os.path.join(fleet.host_base_dir(host), "current", "gateway-credentials.json")
        assert os.stat(path).st_mode & 0o777 == 0o600
        with open(path, encoding="utf-8") as handle:
            credentials.add(json.dumps(json.load(handle), sort_keys=True))
    assert len(credentials) == 1
    password = json.loads(credentials.pop())["gateway_password"]
    assert password not in first.output

    second = onboard(fleet)

    assert_ok(second)
    assert second.changed_hosts() == []
    assert [a["registrations_requested"] for a in sandbox.counters()["accounts"].values()] == [1]


def test_distinct_registrations_overlap(start_sandbox, make_fleet):
    """The portal works on all 8 registrations at once. Measured by the sandbox's own clock: every one
    was requested before the first one completed (a fleet that waited for each registration in turn
    would send the next request only after the previous one's 12 s). 1.5 s of the delay per request
    leaves more room for a slow machine than the 20 hosts in 20 s this test had before."""
    delay = 12
    sandbox = start_sandbox(registration_delay=delay)
    hosts = {"distinct-%02d" % n: "foces-%02d" % n for n in range(1, 9)}
    fleet = make_fleet(sandbox, hosts, forks=len(hosts))

    run = onboard(fleet)

    assert_ok(run)
    accounts = [sandbox.account(fleet.pki["entities"][entity]["portal_user_id"]) for entity in hosts.values()]
    assert [(a["registration_status"], a["registrations_requested"]) for a in accounts] == [("registered", 1)] * 8
    last_request = max(account["requested_at"] for account in accounts)
    first_completion = min(account["completes_at"] for account in accounts)
    assert last_request < first_completion, (
        "registrations did not overlap: the last was requested %.1f s after the first completed"
        % (last_request - first_completion))


def test_rotation_rolls_back_a_rejected_certificate_and_switches_a_good_one(start_sandbox, make_fleet, pki):
    """Two hosts on one FOCES and one on its own VOCES: a shared and a single certificate rotated together."""
    sandbox = start_sandbox(registration_delay=1)
    hosts = {"rot-01": "foces-01", "rot-02": "foces-01", "rot-03": "voces-01"}
    new = {"rot-01": "foces-21", "rot-02": "foces-21", "rot-03": "voces-03"}
    host_vars = {host: {"rotation_certificate_path": pki[1]["entities"][entity]["p12"]}
                 for host, entity in new.items()}
    fleet = make_fleet(sandbox, hosts, host_vars=host_vars)
    assert_ok(onboard(fleet))
    before = {host: fleet.tree_digest(host) for host in hosts}

    # The new certificates get registered without the AS4 interface: the gateway answers 404 for them.
    rejected = fleet.run("dkcustoms.dms.rotate", "-e", "rotation_force=true",
                         "-e", '{"registration_interfaces": ["FTPS"]}')

    assert rejected.returncode != 0
    for host in hosts:  # rejected by the gateway during verification, not by anything earlier
        assert "Gateway connection from %s failed at layer" % host in rejected.output, rejected.output[-4000:]
    assert all(int(rejected.recap[host]["rescued"]) == 1 for host in hosts), rejected.output[-4000:]
    assert {host: fleet.tree_digest(host) for host in hosts} == before
    assert_ok(fleet.run("dkcustoms.dms.verify", "-e", "onboarding_report_dir=%s" % os.path.join(fleet.root, "v")))

    good = fleet.run("dkcustoms.dms.rotate", "-e", "rotation_force=true")

    assert_ok(good)
    # Without onboarding_report_dir the worksheet goes to the default, under the directory the run started in.
    assert os.path.isfile(os.path.join(fleet.root, "dms-report", "rotation-worksheet.md"))
    for host, entity in new.items():
        fingerprint = fleet.pki["entities"][entity]["fingerprint_sha256"]
        base = fleet.host_base_dir(host)
        assert os.readlink(os.path.join(base, "current")) == "bundles/" + fingerprint[:16]
        assert os.readlink(os.path.join(base, "previous")) == "bundles/" + \
            fleet.pki["entities"][hosts[host]]["fingerprint_sha256"][:16]
    assert_ok(fleet.run("dkcustoms.dms.verify", "-e", "onboarding_report_dir=%s" % os.path.join(fleet.root, "v")))
    again = fleet.run("dkcustoms.dms.rotate", "-e", "rotation_force=true")
    assert_ok(again)
    assert again.changed_hosts() == []

    # Onboarding with an inventory that still names the old certificates does not undo the rotation.
    onboard_again = onboard(fleet)
    assert_ok(onboard_again)
    assert onboard_again.changed_hosts() == []
    for host, entity in new.items():
        fingerprint = fleet.pki["entities"][entity]["fingerprint_sha256"]
        assert os.readlink(os.path.join(fleet.host_base_dir(host), "current")) == "bundles/" + fingerprint[:16]
    for row in report(fleet)["hosts"]:
        assert any("holds a newer certificate" in warning for warning in row["certificate_warnings"]), row


def test_secrets_stay_out_of_vvvv_output(start_sandbox, make_fleet):
    sandbox = start_sandbox(registration_delay=1)
    fleet = make_fleet(sandbox, {"secret-01": "voces-01", "secret-02": "voces-01"})

    run = onboard(fleet, "-vvvv")

    assert_ok(run)
    with open(os.path.join(fleet.host_base_dir("secret-01"), "current", "gateway-credentials.json"),
              encoding="utf-8") as handle:
        gateway_password = json.load(handle)["gateway_password"]
    for secret in (gateway_password, DEMO_PORTAL_PASSWORD, DEMO_KEYSTORE_PASSPHRASE, DEMO_VAULT_PASSWORD,
                   fleet.pki["passphrase"], "PRIVATE KEY"):
        assert secret not in run.output


def test_playbooks_run_under_ansible_runner(tmp_path, start_sandbox, make_fleet, collection_root):
    sandbox = start_sandbox(registration_delay=1)
    fleet = make_fleet(sandbox, {"runner-01": "voces-01", "runner-02": "voces-02"})
    private = tmp_path / "runner"
    (private / "project").mkdir(parents=True)
    (private / "env").mkdir()
    shutil.copytree(fleet.inventory_dir, private / "inventory")
    playbooks = os.path.join(collection_root, "ansible_collections", "dkcustoms", "dms", "playbooks")
    for name in ("onboard.yml", "verify.yml"):
        shutil.copy(os.path.join(playbooks, name), private / "project" / name)  # unchanged
    (private / "env" / "envvars").write_text(json.dumps({
        "ANSIBLE_COLLECTIONS_PATH": collection_root, "ANSIBLE_PYTHON_INTERPRETER": sys.executable}))
    (private / "env" / "cmdline").write_text(
        "--vault-password-file %s -e onboarding_report_dir=%s" % (fleet.vault_password_file, tmp_path / "report"))
    runner = os.path.join(os.path.dirname(sys.executable), "ansible-runner")

    for playbook in ("onboard.yml", "verify.yml"):
        result = subprocess.run([runner, "run", str(private), "-p", playbook], capture_output=True, text=True,
                                timeout=900, env=fleet.env(), check=False)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        status = sorted((private / "artifacts").iterdir(), key=os.path.getmtime)[-1] / "status"
        assert status.read_text().strip() == "successful"
    assert portal_totals(sandbox.counters())["registrations_requested"] == 2
