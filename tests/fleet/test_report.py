"""The fleet report in a real browser (issue #13, part 5): a generated 200-host report and a real run's report.

Each test keeps screenshots of what it looked at under tests/output/ (ignored by git) and prints their paths.
"""

import json
import os
import socket
from collections import Counter

import pytest

from report_browser import WIDTH, ReportPage, find_chromium
from report_fleet import render_report, synthetic_hostvars

# One pytest-xdist worker runs them all: the 200-host report and Chromium are made once (module fixtures).
pytestmark = pytest.mark.xdist_group("report")

OUTPUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "output")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    find_chromium()
    browser = ReportPage(str(tmp_path_factory.mktemp("chromium-profile")))
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def generated(tmp_path_factory, collection_root):
    """The report of a synthetic 200-host fleet, written by the role's report tasks: (hostvars, dir, data)."""
    hostvars = synthetic_hostvars(200)
    # rotation_days is the rotation role's threshold: the report's rotation window follows it.
    report_dir = render_report(collection_root, str(tmp_path_factory.mktemp("generated")), hostvars,
                               extra_vars={"rotation_days": 75})
    with open(os.path.join(report_dir, "report.json"), encoding="utf-8") as handle:
        return hostvars, report_dir, json.load(handle)


def keep_screenshot(page, name):
    os.makedirs(OUTPUT, exist_ok=True)
    path = page.screenshot(os.path.join(OUTPUT, name))
    print("screenshot: %s" % path)
    return path


def assert_fits_1400(page):
    assert page.viewport_width() == WIDTH
    assert page.page_width() <= WIDTH, "the page is %spx wide at %spx" % (page.page_width(), WIDTH)


def assert_failures_first(rows):
    """Failed and pending hosts above every connected one, a failed one on top when there is one."""
    statuses = [status for _, status in rows]
    first_ok = statuses.index("ok") if "ok" in statuses else len(statuses)
    assert set(statuses[first_ok:]) <= {"ok"}, statuses
    assert statuses[0] == "failed" or "failed" not in statuses, statuses


def assert_one_line_rows(page):
    heights = page.row_heights()
    tallest, lowest = max(heights, key=lambda pair: pair[1]), min(height for _, height in heights)
    assert tallest[1] < lowest * 1.25, "row %s is %.0fpx high, others %.0fpx" % (tallest[0], tallest[1], lowest)


def expected_status(variables):
    """The status a host must get, decided from its variables independently of the template."""
    connectivity = variables.get("connectivity_summary") or {}
    registration = variables.get("registration_summary") or {}
    if connectivity.get("ok"):
        return "ok"
    if registration.get("worksheet") or registration.get("registration_status") == "in_progress":
        return "pending"
    return "failed"


def test_generated_report_data_for_200_hosts(generated):
    hostvars, _, data = generated

    assert data["rotation_days"] == 75
    statuses = Counter(expected_status(variables) for variables in hostvars.values())
    assert {key: data["summary"][key] for key in ("hosts", "ok", "failed", "pending")} == dict(statuses, hosts=200)
    fingerprints = {}
    for host, variables in hostvars.items():
        if variables.get("certificate_summary"):
            fingerprints.setdefault(variables["certificate_summary"]["fingerprint_sha256"], set()).add(host)
    assert {c["fingerprint_sha256"]: set(c["hosts"]) for c in data["certificates"]} == fingerprints
    days = [c["days_remaining"] for c in data["certificates"]]
    assert days == sorted(days)
    for certificate in data["certificates"]:
        expiry = "expired" if certificate["days_remaining"] < 0 else \
            "rotation_due" if certificate["days_remaining"] <= data["rotation_days"] else "valid"
        assert certificate["expiry"] == expiry, certificate
    waiting = [host for host, variables in hostvars.items()
               if (variables.get("registration_summary") or {}).get("worksheet")]
    assert [sorted(entry["hosts"]) for entry in data["worksheet"]] == [sorted(waiting)]
    (entry,) = data["worksheet"]
    task = hostvars[waiting[0]]["registration_summary"]["worksheet"]
    assert {key: value for key, value in entry.items() if key != "hosts"} == task  # every key, as the host gave it
    for row in data["hosts"]:
        assert row["status"] in ("ok", "failed", "pending")
        if row["status"] == "failed" and row["stage"] == "connectivity":
            layer = hostvars[row["host"]]["connectivity_summary"]["failed_layer"]
            assert row["reason"].startswith(layer + ": ") and row["hint"], row


def test_generated_worksheet_markdown(generated):
    _, report_dir, data = generated
    (entry,) = data["worksheet"]
    with open(os.path.join(report_dir, "worksheet.md"), encoding="utf-8") as handle:
        sheet = handle.read()
    assert sheet.startswith("# DMS registration worksheet\n")
    assert sheet.count("\n## ") == 1 and "(systemcertifikat)" in sheet
    for text in (entry["portal_url"], entry["portal_user_id"], entry["credentials_variable"], entry["credentials_yaml"],
                 "| Interfaces | AS4 |", "| SE-number | leave it empty |", "| note | asked for by the EDI team |"):
        assert text in sheet, text
    assert sheet.count("\n1. ") == 1 and "\n%d. " % len(entry["steps"]) in sheet  # the steps, numbered


def test_generated_200_host_report_in_a_browser(generated, page):
    _, report_dir, data = generated
    html = os.path.join(report_dir, "report.html")
    with open(html, encoding="utf-8") as handle:
        text = handle.read()
    for reference in (" src=", "url(", "@import", "<link", 'href="http', "@font-face"):
        assert reference not in text, "the report refers to something outside itself: %s" % reference

    page.open(html)

    assert_fits_1400(page)
    rows = page.host_rows()
    assert len(rows) == 200
    assert_failures_first(rows)
    assert_one_line_rows(page)
    dated = [c for c in data["certificates"] if c["days_remaining"] is not None]
    assert page.count("svg circle") == len(dated)  # one mark per certificate
    assert page.count("svg rect[fill='#fff0c7']") == 1  # the rotation window
    keep_screenshot(page, "report-200-hosts.png")

    page.choose("status", "failed")
    assert Counter(status for _, status in page.host_rows()) == {"failed": data["summary"]["failed"]}
    assert page.js("return location.hash") == "#status=failed"

    page.choose("status", "attention")
    assert len(page.host_rows()) == data["summary"]["failed"] + data["summary"]["pending"]

    page.choose("status", "all")
    shared = max(data["certificates"], key=lambda c: len(c["hosts"]))
    page.choose("cert", shared["fingerprint_sha256"][:16])
    assert sorted(host for host, _ in page.host_rows()) == sorted(shared["hosts"])
    assert_failures_first(page.host_rows())

    page.choose("cert", "due")
    due = {host for c in data["certificates"] if c["expiry"] in ("expired", "rotation_due") for host in c["hosts"]}
    assert {host for host, _ in page.host_rows()} == due and due

    page.choose("cert", "all")
    one = data["hosts"][57]["host"]
    page.search(one.upper())
    assert [host for host, _ in page.host_rows()] == [one]
    page.search("<eb:Description>the receiving")  # the detail of a failed layer, markup and all
    found = {row["host"] for row in data["hosts"] if row["failed_layer"] == "as4" and row["status"] == "failed"}
    assert {host for host, _ in page.host_rows()} == found and found
    assert page.count("eb\\:Description") == 0  # shown as text, never as an element
    page.search("")
    assert len(page.host_rows()) == 200

    page.choose("sort", "host")
    rows = page.host_rows()
    assert_failures_first(rows)  # sorting is inside the sections: what needs attention stays on top
    attention = [host for host, status in rows if status != "ok"]
    assert len(attention) == data["summary"]["failed"] + data["summary"]["pending"]
    page.choose("sort", "status")

    (entry,) = data["worksheet"]
    page.open(html, "#worksheet")  # the worksheet: open, inside the page's width, the vault lines as they are
    sheet = page.js("var w = document.querySelector('ol.worksheet');"
                    "return {text: w.innerText, fits: w.scrollWidth <= w.clientWidth,"
                    "        pre: w.querySelector('pre').innerText, open: w.querySelector('details').open};")
    assert sheet["open"] and sheet["fits"], sheet
    assert sheet["pre"].strip() == entry["credentials_yaml"]
    for text in (entry["portal_url"], entry["portal_user_id"], entry["credentials_variable"], entry["steps"][-1]):
        assert text in sheet["text"], text
    assert_fits_1400(page)
    keep_screenshot(page, "report-200-hosts-worksheet.png")

    page.open(html, "#status=pending")  # a bookmarked view
    assert Counter(status for _, status in page.host_rows()) == {"pending": data["summary"]["pending"]}
    keep_screenshot(page, "report-200-hosts-pending.png")


def test_generated_report_without_javascript(generated, tmp_path):
    _, report_dir, _ = generated
    find_chromium()
    page = ReportPage(str(tmp_path / "profile"), javascript=False)
    try:
        page.open(os.path.join(report_dir, "report.html"))

        assert not page.filters_shown()
        rows = page.host_rows()
        assert len(rows) == 200
        assert_failures_first(rows)
        assert_fits_1400(page)
        keep_screenshot(page, "report-200-hosts-no-javascript.png")
    finally:
        page.close()


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_report_of_a_real_run_in_a_browser(start_sandbox, make_fleet, page):
    """The demo fleet's shapes - a FOCES shared by two hosts, a MOCES with its warning - onboarded for real,
    the MOCES host with its gateway port closed; the report opened in Chromium."""
    sandbox = start_sandbox(registration_delay=1)
    hosts = {"demo-app-01": "foces-01", "demo-app-02": "foces-01", "demo-desk-01": "moces-01"}
    broken = {"demo-desk-01": {"connectivity_url": "https://127.0.0.1:%d" % closed_port()}}
    fleet = make_fleet(sandbox, hosts, host_vars=broken)
    report_dir = os.path.join(fleet.root, "report")

    run = fleet.onboard("-e", "onboarding_report_dir=%s" % report_dir)

    assert run.returncode != 0 and int(run.recap["demo-desk-01"]["failed"]) == 1, run.output[-4000:]
    with open(os.path.join(report_dir, "report.json"), encoding="utf-8") as handle:
        data = json.load(handle)
    assert data["summary"]["ok"] == 2 and data["summary"]["failed"] == 1
    (failed,) = [row for row in data["hosts"] if row["status"] == "failed"]
    assert (failed["host"], failed["stage"], failed["failed_layer"]) == ("demo-desk-01", "connectivity", "tcp")
    assert failed["certificate_warnings"] and failed["hint"]
    assert [len(c["hosts"]) for c in data["certificates"]] in ([2, 1], [1, 2])

    page.open(os.path.join(report_dir, "report.html"))

    assert_fits_1400(page)
    assert page.host_rows() == [("demo-desk-01", "failed"), ("demo-app-01", "ok"), ("demo-app-02", "ok")]
    assert_one_line_rows(page)  # the MOCES warning stays in its collapsed details
    keep_screenshot(page, "report-real-run.png")
    page.choose("status", "ok")
    assert page.host_rows() == [("demo-app-01", "ok"), ("demo-app-02", "ok")]
    page.choose("status", "all")
    page.click("tr.host[data-host='demo-desk-01'] details summary")
    details = page.js("return document.querySelector(\"tr.host[data-host='demo-desk-01'] .more\").innerText")
    assert "MOCES" in details and failed["hint"] in details
    assert_fits_1400(page)  # the opened details stay inside the row
    keep_screenshot(page, "report-real-run-expanded.png")
