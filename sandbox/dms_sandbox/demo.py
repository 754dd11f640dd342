"""`make demo`: onboard a simulated fleet against the sandbox, write the fleet report, prove a re-run is a no-op.

    python -m dms_sandbox.demo --collection-root BUILD_ROOT --out demo-output

Some hosts share one FOCES certificate, some have their own VOCES, one has a MOCES. The sandbox, the fleet
and its runs are the fleet harness's (dms_sandbox.fleet); this module is only the demo's script.
"""

import argparse
import json
import os
import shutil
import sys

from dms_sandbox.fleet import TASK_LINE, Fleet, Sandbox, make_pki, portal_totals


def demo_assignment():
    """12 hosts: 7 share one FOCES certificate, 4 have their own VOCES, 1 has a MOCES."""
    assignment = {}
    for number in range(1, 8):
        assignment["dms-app-%02d" % number] = "foces-01"
    for number in range(1, 5):
        assignment["dms-org-%02d" % number] = "voces-%02d" % number
    assignment["dms-desk-01"] = "moces-01"
    return assignment


class PhasePrinter:
    """Prints one line per phase (role) and per failure, instead of ansible's per-host output."""

    PHASES = {"dkcustoms.dms.certificate": "certificate", "dkcustoms.dms.registration": "registration",
              "dkcustoms.dms.connectivity": "connectivity", "dkcustoms.dms.rotation": "rotation"}

    def __init__(self, stream=sys.stdout):
        self.stream = stream
        self.phase = None
        self.in_recap = False

    def __call__(self, line, elapsed):
        match = TASK_LINE.match(line)
        if match:
            role = match.group("role") or ""
            name = match.group("name")
            phase = self.PHASES.get(role) or name.split(" | ")[0].lower()
            if phase.startswith("validating arguments"):
                phase = role.rsplit(".", 1)[-1] or "play"
            if phase != self.phase:
                self.phase = phase
                self._print("[%6.1fs] phase %s" % (elapsed, phase))
            self._print("[%6.1fs]     %s" % (elapsed, name.split(" | ", 1)[-1]))
        elif line.startswith(("fatal:", "failed:")) or "FAILED!" in line:
            self._print("           !! " + line[:400])
        elif line.startswith("PLAY RECAP"):
            self.in_recap = True
            self._print("[%6.1fs] recap" % elapsed)
        elif self.in_recap and line.strip():
            self._print("           " + line.strip())
        elif "Fleet report:" in line:
            self._print("           " + line.strip().strip('"'))

    def _print(self, text):
        print(text, file=self.stream, flush=True)


def probe_summary(report):
    """One line on what the connection test's probe found, from the fleet report's data."""
    hosts = (report or {}).get("hosts", [])
    probes = sorted({h.get("connectivity_probe") or "-" for h in hosts})
    signatures = {}
    for host in hosts:
        signatures[host.get("answer_signature") or "none"] = signatures.get(host.get("answer_signature") or "none", 0) + 1
    attachments = sum(int(h.get("answer_attachments") or 0) for h in hosts)
    return "probe %s on %d hosts; answer signature %s; %d attachments reported" % (
        "/".join(probes), len(hosts), ", ".join("%s on %d" % item for item in sorted(signatures.items())), attachments)



def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m dms_sandbox.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--collection-root", required=True,
                        help="directory holding ansible_collections/dkcustoms/dms (make build's BUILD_ROOT)")
    parser.add_argument("--out", required=True, help="output directory (recreated, except its pki/)")
    parser.add_argument("--registration-delay", type=float, default=4, help="sandbox registration delay, seconds")
    parser.add_argument("--forks", type=int, default=13)
    return parser.parse_args(argv)


def prepare_out(out):
    """Empty OUT of an earlier demo's inventory, hosts, sandbox and reports; keep its PKI."""
    for name in ("inventory", "hosts", "sandbox", "report", "report-check"):
        shutil.rmtree(os.path.join(out, name), ignore_errors=True)
    os.makedirs(out, exist_ok=True)


def describe_fleet(fleet, assignment):
    entities = list(assignment.values())
    print("== fleet: %d hosts (%s), inventory %s, demo vault password in %s" % (
        len(assignment), ", ".join("%d on %s" % (entities.count(e), e) for e in sorted(set(entities))),
        fleet.inventory_dir, fleet.vault_password_file), flush=True)


def add_notifications(sandbox, manifest, assignment):
    """One notification per company, for the connection test's Notification query to find."""
    for cvr in sorted({manifest["entities"][entity]["cvr"] for entity in assignment.values()}):
        sandbox.add_notification(cvr, "demo: declaration accepted for CVR %s" % cvr)
    print("== gateway: one notification per company, for the connection test's Notification query", flush=True)


def first_run(fleet, out, report_dir, failures):
    """Run 1: onboarding. Every host's connection test must be a verified Notification query."""
    print("\n== run 1: onboarding", flush=True)
    run = fleet.onboard("-e", "onboarding_report_dir=%s" % report_dir, on_line=PhasePrinter())
    log = _save(out, "run1.log", run.output)
    if not run.ok:
        failures.append("run 1 failed (return code %s); full output in %s" % (run.returncode, log))
    print("   %.1fs; report: %s" % (run.seconds, os.path.join(report_dir, "report.html")), flush=True)
    report = _load_json(os.path.join(report_dir, "report.json"))
    print("   connection test: %s" % probe_summary(report), flush=True)
    if any(h.get("connectivity_probe") != "notification" or h.get("answer_signature") != "verified"
           for h in (report or {}).get("hosts", [])):
        failures.append("not every host's connection test was a verified notification query: %s"
                        % probe_summary(report))


def second_run(fleet, out, report_dir, failures):
    """Run 2: the same again must change nothing on any host."""
    print("\n== run 2: the same again must change nothing", flush=True)
    run = fleet.onboard("-e", "onboarding_report_dir=%s" % report_dir, on_line=PhasePrinter())
    _save(out, "run2.log", run.output)
    for host in sorted(fleet.hosts):
        result = run.recap.get(host)
        print("   %-14s changed=%s failed=%s" % (host, result and result["changed"], result and result["failed"]))
    if not run.ok or run.changed_hosts():
        failures.append("run 2 was not changed=0 for every host: %s" % run.recap)


def check_portal(sandbox, assignment, failures):
    """The portal saw one registration per distinct certificate, however many hosts share it."""
    totals = portal_totals(sandbox.counters())
    print("\n== portal: %(accounts)d accounts, %(registrations_requested)d registrations requested, "
          "%(writes)d writes, %(logins_ok)d logins, %(portal_requests)d requests in all; "
          "gateway: %(gateway_accepted)d messages accepted" % totals, flush=True)
    certificates = len(set(assignment.values()))
    if totals["registrations_requested"] != certificates:
        failures.append("expected one registration per distinct certificate (%d), the portal saw %d" % (
            certificates, totals["registrations_requested"]))


def run_demo(args, out, manifest, sandbox, info):
    """The demo's fleet, runs and checks against a started sandbox; return the failures."""
    failures = []
    print("   portal %s, gateway %s" % (info["portal_url"], info["gateway_url"]), flush=True)
    fleet = Fleet(out, args.collection_root, info, manifest, forks=args.forks)
    assignment = demo_assignment()
    fleet.write_inventory(assignment)
    describe_fleet(fleet, assignment)
    add_notifications(sandbox, manifest, assignment)
    report_dir = os.path.join(out, "report")
    first_run(fleet, out, report_dir, failures)
    second_run(fleet, out, report_dir, failures)
    check_portal(sandbox, assignment, failures)
    print("\n== report: %s" % os.path.join(report_dir, "report.html"), flush=True)
    return failures


def main(argv=None):
    args = parse_args(argv)
    out = os.path.abspath(args.out)
    prepare_out(out)
    print("== making the test PKI in %s/pki" % out, flush=True)
    manifest = make_pki(os.path.join(out, "pki"), foces=1, voces=4, moces=1)
    sandbox = Sandbox(os.path.join(out, "sandbox"), os.path.join(out, "pki"),
                      registration_delay=args.registration_delay, ttl=1800)
    print("== starting the sandbox (registration delay %ss)" % args.registration_delay, flush=True)
    info = sandbox.start()
    try:
        failures = run_demo(args, out, manifest, sandbox, info)
    finally:
        print("== stopping the sandbox", flush=True)
        sandbox.stop()
    for failure in failures:
        print("DEMO FAILED: " + failure, file=sys.stderr)
    if failures:
        return 1
    print("== demo passed: every host onboarded, second run changed=0", flush=True)
    return 0


def _load_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _save(out, name, text):
    path = os.path.join(out, name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


if __name__ == "__main__":
    sys.exit(main())
