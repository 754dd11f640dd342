"""registration_method manual: the gateway credentials come from the vault, nobody logs on to the portal,
and a certificate without credentials leaves its hosts pending with a worksheet (issue 12, part 1)."""

import json
import os

from dms_sandbox.fleet import portal_totals

TEST_PORTAL = "https://secureftp.gatewaytest.skat.dk/PortalCertApp/"
VARIABLE = "vault_registration_manual_credentials"
MANUAL = {
    "registration_method": "manual",
    "registration_manual_credentials": "{{ %s }}" % VARIABLE,
    "registration_manual_credentials_variable": VARIABLE,
    "registration_se_number": "87654321",
}


def read_json(*parts):
    with open(os.path.join(*parts), encoding="utf-8") as handle:
        return json.load(handle)


def read_text(*parts):
    with open(os.path.join(*parts), encoding="utf-8") as handle:
        return handle.read()


def assert_ok(run):
    assert run.ok, run.output[-6000:]


def credentials_file(fleet, host, entity):
    fingerprint = fleet.pki["entities"][entity]["fingerprint_sha256"]
    return os.path.join(fleet.host_base_dir(host), "bundles", fingerprint[:16], "gateway-credentials.json")


def assert_no_portal_request(sandbox):
    """Nothing reached the portal since the counters were reset; the gateway was reached."""
    totals = portal_totals(sandbox.counters())
    assert totals["portal_requests"] == 0 and totals["logins_ok"] == 0 and totals["writes"] == 0, totals
    assert totals["gateway_accepted"] > 0, totals


def test_manual_registration_pending_worksheet_then_onboarded(start_sandbox, make_fleet, register_elsewhere, pki):
    """Acceptance of issue 12 part 1, with 3 hosts: a FOCES shared by two hosts whose credentials a person
    put in the vault, and a VOCES not registered yet. Then the person follows the worksheet, and the rotation
    of the VOCES host shows the same for a new certificate."""
    sandbox = start_sandbox(registration_delay=1)
    entities = pki[1]["entities"]
    hosts = {"man-01": "foces-01", "man-02": "foces-01", "man-03": "voces-01"}
    foces_id, voces_id, new_id = (entities[name]["portal_user_id"] for name in ("foces-01", "voces-01", "voces-02"))
    rotation = {"man-03": {"rotation_certificate_path": entities["voces-02"]["p12"]}}
    # A person registered the FOCES in the browser and noted the gateway user and password.
    foces = register_elsewhere(sandbox, "foces-01")
    fleet = make_fleet(sandbox, hosts, group_vars=MANUAL, host_vars=rotation, vault_vars={VARIABLE: {foces_id: foces}})
    sandbox.reset_counters()
    report_dir = os.path.join(fleet.root, "report")

    first = fleet.onboard("-e", "onboarding_report_dir=" + report_dir, "-vvvv")

    assert_ok(first)  # a certificate waiting for a person does not fail the run
    assert_no_portal_request(sandbox)
    data = read_json(report_dir, "report.json")
    rows = {row["host"]: row for row in data["hosts"]}
    assert {host: row["status"] for host, row in rows.items()} == {"man-01": "ok", "man-02": "ok", "man-03": "pending"}
    assert rows["man-01"]["connectivity_result"] == "SUCCESS" and rows["man-01"]["registration_method"] == "manual"
    assert (rows["man-03"]["stage"], rows["man-03"]["registration_status"]) == ("registration", "waiting_for_credentials")
    for host in ("man-01", "man-02"):
        path = credentials_file(fleet, host, "foces-01")
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert read_json(path) == foces
    assert not os.path.exists(credentials_file(fleet, "man-03", "voces-01"))
    (entry,) = data["worksheet"]
    voces = entities["voces-01"]
    assert entry["hosts"] == ["man-03"]
    assert {key: entry[key] for key in ("method", "portal_url", "portal_user_id", "certificate_type", "not_after",
                                        "se_number", "email", "interfaces", "credentials_variable")} == {
        "method": "manual", "portal_url": TEST_PORTAL, "portal_user_id": voces_id, "certificate_type": "VOCES",
        "not_after": voces["not_after"], "se_number": "87654321", "email": "integration@example.invalid",
        "interfaces": ["AS4"], "credentials_variable": '%s["%s"]' % (VARIABLE, voces_id)}
    assert voces_id in entry["first_logon_password"] and entry["common_name"]
    worksheet = read_text(report_dir, "worksheet.md")
    for text in (TEST_PORTAL, voces_id, '%s["%s"]' % (VARIABLE, voces_id), "87654321", "Register certificate"):
        assert text in worksheet, text
    html = read_text(report_dir, "report.html")
    assert 'id="worksheet"' in html and voces_id in html
    assert "1 host(s) of 1 certificate(s) wait for a person" in first.output
    assert foces["gateway_password"] not in first.output  # at -vvvv, though it passed through the inventory

    # verify: the pending host is pending again (no credentials on it or in the vault), and asked to, fails.
    verify = fleet.run("dkcustoms.dms.verify", "-e", "onboarding_report_dir=" + os.path.join(fleet.root, "verify"),
                       "-e", "onboarding_fail_on_pending=true")

    assert verify.returncode != 0
    assert {host: int(r["failed"]) for host, r in verify.recap.items()} == {"man-01": 0, "man-02": 0, "man-03": 1}
    assert "onboarding_fail_on_pending is true" in verify.output
    verified = read_json(fleet.root, "verify", "report.json")
    assert [(w["portal_user_id"], w["hosts"]) for w in verified["worksheet"]] == [(voces_id, ["man-03"])]
    assert verified["summary"]["ok"] == 2 and verified["summary"]["pending"] == 1
    assert os.path.exists(os.path.join(fleet.root, "verify", "worksheet.md"))

    # The person follows the worksheet: registers the VOCES in the browser, puts its credentials in the vault.
    voces_credentials = register_elsewhere(sandbox, "voces-01")
    given = {foces_id: foces, voces_id: voces_credentials}
    fleet.write_inventory(hosts, group_vars=MANUAL, host_vars=rotation, vault_vars={VARIABLE: given})
    sandbox.reset_counters()

    second = fleet.onboard("-e", "onboarding_report_dir=" + report_dir)

    assert_ok(second)
    assert second.changed_hosts() == ["man-03"]
    assert_no_portal_request(sandbox)
    assert read_json(credentials_file(fleet, "man-03", "voces-01")) == voces_credentials
    data = read_json(report_dir, "report.json")
    assert data["summary"]["ok"] == 3 and data["worksheet"] == []
    assert "Nothing to do" in read_text(report_dir, "worksheet.md")

    # Rotation to a new certificate the vault has no credentials for: the host is left as it is, pending.
    before = fleet.tree_digest("man-03")

    waiting = fleet.run("dkcustoms.dms.rotate", "-e", "rotation_force=true", "-e", "onboarding_report_dir=" + report_dir)

    assert_ok(waiting)
    assert waiting.changed_hosts() == []
    assert fleet.tree_digest("man-03") == before
    rotation_sheet = read_text(report_dir, "rotation-worksheet.md")
    assert new_id in rotation_sheet and "man-03" in rotation_sheet and '%s["%s"]' % (VARIABLE, new_id) in rotation_sheet

    # With its credentials in the vault, the rotation registers nothing anywhere and switches.
    given[new_id] = register_elsewhere(sandbox, "voces-02")
    fleet.write_inventory(hosts, group_vars=MANUAL, host_vars=rotation, vault_vars={VARIABLE: given})
    sandbox.reset_counters()

    rotated = fleet.run("dkcustoms.dms.rotate", "-e", "rotation_force=true", "-e", "onboarding_report_dir=" + report_dir)

    assert_ok(rotated)
    assert rotated.changed_hosts() == ["man-03"]
    assert_no_portal_request(sandbox)
    new_bundle = "bundles/" + entities["voces-02"]["fingerprint_sha256"][:16]
    assert os.readlink(os.path.join(fleet.host_base_dir("man-03"), "current")) == new_bundle
    assert read_json(credentials_file(fleet, "man-03", "voces-02")) == given[new_id]
    assert "Nothing to do" in read_text(report_dir, "rotation-worksheet.md")
