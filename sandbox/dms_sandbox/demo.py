"""`make demo`: onboard a simulated fleet against the sandbox, write the fleet report, prove a re-run is a no-op.

    python -m dms_sandbox.demo --collection-root BUILD_ROOT --out demo-output

Each simulated host is an inventory host with `ansible_connection: local` and a directory of its own
(its `certificate_base_dir`). Some hosts share one FOCES certificate, some have their own VOCES, one
has a MOCES. The `Fleet` helper here is also what `dms_sandbox.bench` and `tests/fleet` drive.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

from dms_sandbox import pki as pki_module
from dms_sandbox.adminclient import AdminClient

# Demo secrets: they protect throw-away sandbox certificates only. Real inventories keep theirs in an
# ansible-vault file whose password is not in the repository (see examples/inventory/README.md).
DEMO_VAULT_PASSWORD = "dkcustoms-dms-demo-vault"
DEMO_PORTAL_PASSWORD = "Demo-portal-password-2026"
DEMO_KEYSTORE_PASSPHRASE = "Demo-keystore-passphrase"

RECAP_LINE = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)\s+ignored=(?P<ignored>\d+)")
TASK_LINE = re.compile(r"^TASK \[(?:(?P<role>[\w.]+) : )?(?P<name>.*?)\] \**$")


class FleetError(RuntimeError):
    """Something the demo, the benchmark or a fleet test cannot go on without."""


class PlaybookRun:
    """The outcome of one ansible-playbook run: return code, recap per host, wall time, output.

    HOSTS are the hosts the run was for: a recap that does not name exactly these (unparsed output, a
    host left out) is not a success, and asking it which hosts changed is an error."""

    def __init__(self, returncode, recap, seconds, output, tasks, hosts):
        self.returncode = returncode
        self.recap = recap
        self.seconds = seconds
        self.output = output
        self.tasks = tasks
        self.hosts = set(hosts)

    @property
    def recap_complete(self):
        return bool(self.hosts) and set(self.recap) == self.hosts

    @property
    def ok(self):
        return self.returncode == 0 and self.recap_complete and all(
            int(r["failed"]) == 0 and int(r["unreachable"]) == 0 for r in self.recap.values())

    def changed_hosts(self):
        if not self.recap_complete:
            raise FleetError("the recap names %s, the run was for %s: nothing can be said about changes"
                             % (sorted(self.recap) or "no host", sorted(self.hosts)))
        return sorted(host for host, r in self.recap.items() if int(r["changed"]) > 0)


def make_pki(directory, foces=1, voces=1, moces=1, broken=False):
    """Create (or reuse) a test PKI; return its manifest (pki.json)."""
    return pki_module.make_pki(directory, foces=foces, voces=voces, moces=moces, broken=broken)


def load_pki(directory):
    with open(os.path.join(directory, "pki.json"), encoding="utf-8") as handle:
        return json.load(handle)


class Sandbox:
    """A `dms-sandbox serve --detach` of our own, stopped by its state directory (never by name)."""

    def __init__(self, state_dir, pki_dir, registration_delay=3, ttl=3600, extra_args=()):
        self.state_dir = state_dir
        self.pki_dir = pki_dir
        self.registration_delay = registration_delay
        self.ttl = ttl
        self.extra_args = list(extra_args)
        self.info = None

    def start(self, timeout=60):
        os.makedirs(self.state_dir, exist_ok=True)
        ready_file = os.path.join(self.state_dir, "sandbox.json")
        if os.path.exists(ready_file):
            os.unlink(ready_file)
        command = [sys.executable, "-m", "dms_sandbox", "serve", "--state", self.state_dir, "--pki", self.pki_dir,
                   "--detach", "--ttl", str(self.ttl), "--registration-delay", str(self.registration_delay)]
        subprocess.run(command + self.extra_args, check=True, stdout=subprocess.DEVNULL, timeout=timeout)
        deadline = time.monotonic() + timeout
        while not os.path.exists(ready_file):
            if time.monotonic() > deadline:
                raise FleetError("the sandbox did not write %s within %ss" % (ready_file, timeout))
            time.sleep(0.2)
        with open(ready_file, encoding="utf-8") as handle:
            self.info = json.load(handle)
        return self.info

    def stop(self):
        subprocess.run([sys.executable, "-m", "dms_sandbox", "stop", "--state", self.state_dir],
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    def _admin(self, method, path, body=None):
        return AdminClient(self.info).call(method, path, body)

    def counters(self):
        return self._admin("GET", "/counters")

    def reset_counters(self):
        """Zero every counter (accounts and registrations stay): what a run does is counted from here."""
        return self._admin("POST", "/reset-counters")

    def account(self, user_id):
        """The account as the sandbox holds it (GET /accounts/<id>): states and timestamps, no secrets."""
        return self._admin("GET", "/accounts/" + user_id)

    def set_faults(self, service, **faults):
        return self._admin("POST", "/faults", dict(faults, service=service))

    def add_notification(self, cvr, message, service=None):
        """A notification the gateway's Notification query lists for the company ``cvr``."""
        return self._admin("POST", "/notifications", {"cvr": cvr, "message": message, "service": service})

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


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


def portal_totals(counters):
    """Sum the per-account portal counters (logins, registrations requested, writes)."""
    totals = {"accounts": 0, "logins_ok": 0, "logins_failed": 0, "registrations_requested": 0, "writes": 0}
    for account in (counters or {}).get("accounts", {}).values():
        totals["accounts"] += 1
        for key in ("logins_ok", "logins_failed", "registrations_requested", "writes"):
            totals[key] += int(account.get(key, 0) or 0)
    by_service = (counters or {}).get("requests_by_service", {})
    totals["portal_requests"] = int(by_service.get("portal", 0) or 0)
    totals["gateway_requests"] = int(by_service.get("gateway", 0) or 0)
    totals["gateway_accepted"] = int((counters or {}).get("gateway", {}).get("accepted", 0) or 0)
    return totals


class Fleet:
    """A simulated fleet: an inventory of local-connection hosts, one directory each, and its runs."""

    def __init__(self, root, collection_root, sandbox_info, pki_manifest, forks=20):
        self.root = os.path.abspath(root)
        self.collection_root = os.path.abspath(collection_root)
        self.sandbox = sandbox_info
        self.pki = pki_manifest
        self.forks = forks
        self.inventory_dir = os.path.join(self.root, "inventory")
        self.hosts_dir = os.path.join(self.root, "hosts")
        self.vault_password_file = os.path.join(self.root, "demo-vault-password.txt")
        self.hosts = {}

    # -- inventory ------------------------------------------------------------------------------
    def host_base_dir(self, host):
        return os.path.join(self.hosts_dir, host, "etc", "dkcustoms", "dms")

    def write_inventory(self, assignment, group_vars=None, host_vars=None, vault_vars=None):
        """ASSIGNMENT: {host: entity name in the PKI}. Secrets go into an ansible-vault file.
        HOST_VARS: {host: {variable: value}} added to the hosts (e.g. rotation_certificate_path).
        GROUP_VARS and VAULT_VARS: more variables for the group, in the clear and in the vault file."""
        os.makedirs(self.inventory_dir, exist_ok=True)
        group_dir = os.path.join(self.inventory_dir, "group_vars", "dms_integration_hosts")
        os.makedirs(group_dir, exist_ok=True)
        self.hosts = dict(assignment)
        hosts = {}
        for host, entity in sorted(assignment.items()):
            hosts[host] = {"certificate_path": self.pki["entities"][entity]["p12"],
                           "certificate_base_dir": self.host_base_dir(host)}
            hosts[host].update((host_vars or {}).get(host, {}))
        inventory = {"dms_integration_hosts": {"hosts": hosts, "vars": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}
        _write_json_as_yaml(os.path.join(self.inventory_dir, "hosts.yml"), inventory)
        public = {
            "certificate_passphrase": "{{ vault_certificate_passphrase }}",
            "certificate_keystore_passphrase": "{{ vault_keystore_passphrase }}",
            "registration_password": "{{ vault_portal_password }}",
            "registration_portal_url": self.sandbox["portal_url"],
            "registration_ca_path": self.sandbox["ca_bundle"],
            "registration_email": "integration@example.invalid",
            "registration_interfaces": ["AS4"],
            "connectivity_url": self.sandbox["gateway_url"],
            "connectivity_ca_path": self.sandbox["ca_bundle"],
            "connectivity_receipt_signer": self.sandbox["gateway_certificate"],
        }
        public.update(group_vars or {})
        _write_json_as_yaml(os.path.join(group_dir, "main.yml"), public)
        with open(self.vault_password_file, "w", encoding="utf-8") as handle:
            handle.write(DEMO_VAULT_PASSWORD + "\n")
        os.chmod(self.vault_password_file, 0o600)
        vault_file = os.path.join(group_dir, "vault.yml")
        secrets = {
            "vault_certificate_passphrase": self.pki["passphrase"],
            "vault_keystore_passphrase": DEMO_KEYSTORE_PASSPHRASE,
            "vault_portal_password": DEMO_PORTAL_PASSWORD,
        }
        secrets.update(vault_vars or {})
        _write_json_as_yaml(vault_file, secrets)
        subprocess.run([_tool("ansible-vault"), "encrypt", "--vault-password-file", self.vault_password_file,
                        vault_file], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       env=self.env())
        with open(os.path.join(self.root, "ansible.cfg"), "w", encoding="utf-8") as handle:
            handle.write("[defaults]\nforks = %d\nhost_key_checking = False\nretry_files_enabled = False\n"
                         "interpreter_python = %s\ncollections_path = %s\n" % (
                             self.forks, sys.executable, self.collection_root))

    def env(self, **extra):
        env = dict(os.environ)
        env.update({
            "ANSIBLE_CONFIG": os.path.join(self.root, "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": self.collection_root,
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "PATH": os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
        })
        env.update(extra)
        return env

    # -- runs -----------------------------------------------------------------------------------
    def playbook_command(self, playbook, *args, forks=None):
        return [_tool("ansible-playbook"), "-i", self.inventory_dir, "--vault-password-file",
                self.vault_password_file, "--forks", str(forks or self.forks), playbook] + list(args)

    def run(self, playbook, *args, forks=None, on_line=None, timeout=3600):
        """Run a playbook (FQCN like dkcustoms.dms.onboard, or a path); return a PlaybookRun."""
        command = self.playbook_command(playbook, *args, forks=forks)
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=self.root, env=self.env(), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, bufsize=1)
        lines = []
        try:
            for line in process.stdout:
                lines.append(line)
                if on_line is not None:
                    on_line(line.rstrip("\n"), time.monotonic() - started)
            process.wait(timeout=timeout)
        finally:
            if process.poll() is None:
                process.kill()
        seconds = time.monotonic() - started
        output = "".join(lines)
        return PlaybookRun(process.returncode, parse_recap(output), seconds, output, count_tasks(output), self.hosts)

    def onboard(self, *args, **kwargs):
        return self.run("dkcustoms.dms.onboard", *args, **kwargs)

    def ping_playbook(self, tasks):
        """A playbook of TASKS ansible.builtin.ping tasks over the same hosts: the floor to compare with."""
        path = os.path.join(self.root, "ping-%d.yml" % tasks)
        body = ["---", "- name: Ping floor", "  hosts: dms_integration_hosts", "  gather_facts: false",
                "  tasks:"]
        for number in range(tasks):
            body += ["    - name: Ping %d" % number, "      ansible.builtin.ping:"]
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(body) + "\n")
        return path

    def tree_digest(self, host):
        """{relative path: bytes or link target} of everything under the host's directory."""
        result = {}
        base = os.path.join(self.hosts_dir, host)
        for folder, dirs, files in os.walk(base):
            for name in dirs + files:
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, base)
                if os.path.islink(path):
                    result[rel] = "-> " + os.readlink(path)
                elif os.path.isfile(path):
                    with open(path, "rb") as handle:
                        result[rel] = handle.read()
        return result


def _tool(name):
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    return candidate if os.path.exists(candidate) else (shutil.which(name) or name)


def _write_json_as_yaml(path, data):
    """JSON is YAML; it keeps this module free of a YAML dependency."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("---\n" + json.dumps(data, indent=2, sort_keys=True) + "\n")


def parse_recap(output):
    recap = {}
    in_recap = False
    for line in output.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap:
            match = RECAP_LINE.match(line.strip())
            if match:
                recap[match.group("host")] = match.groupdict()
    return recap


def count_tasks(output):
    return sum(1 for line in output.splitlines() if TASK_LINE.match(line))


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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dms_sandbox.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--collection-root", required=True,
                        help="directory holding ansible_collections/dkcustoms/dms (make build's BUILD_ROOT)")
    parser.add_argument("--out", required=True, help="output directory (recreated, except its pki/)")
    parser.add_argument("--registration-delay", type=float, default=4, help="sandbox registration delay, seconds")
    parser.add_argument("--forks", type=int, default=13)
    args = parser.parse_args(argv)

    out = os.path.abspath(args.out)
    for name in ("inventory", "hosts", "sandbox", "report", "report-check"):
        shutil.rmtree(os.path.join(out, name), ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    print("== making the test PKI in %s/pki" % out, flush=True)
    manifest = make_pki(os.path.join(out, "pki"), foces=1, voces=4, moces=1)
    sandbox = Sandbox(os.path.join(out, "sandbox"), os.path.join(out, "pki"),
                      registration_delay=args.registration_delay, ttl=1800)
    print("== starting the sandbox (registration delay %ss)" % args.registration_delay, flush=True)
    info = sandbox.start()
    failures = []
    try:
        print("   portal %s, gateway %s" % (info["portal_url"], info["gateway_url"]), flush=True)
        fleet = Fleet(out, args.collection_root, info, manifest, forks=args.forks)
        assignment = demo_assignment()
        fleet.write_inventory(assignment)
        print("== fleet: %d hosts (%s), inventory %s, demo vault password in %s" % (
            len(assignment), ", ".join("%d on %s" % (list(assignment.values()).count(e), e)
                                       for e in sorted(set(assignment.values()))),
            fleet.inventory_dir, fleet.vault_password_file), flush=True)
        report_dir = os.path.join(out, "report")
        for cvr in sorted({manifest["entities"][entity]["cvr"] for entity in assignment.values()}):
            sandbox.add_notification(cvr, "demo: declaration accepted for CVR %s" % cvr)
        print("== gateway: one notification per company, for the connection test's Notification query", flush=True)

        print("\n== run 1: onboarding", flush=True)
        first = fleet.onboard("-e", "onboarding_report_dir=%s" % report_dir, on_line=PhasePrinter())
        if not first.ok:
            failures.append("run 1 failed (return code %s); full output in %s" % (
                first.returncode, _save(out, "run1.log", first.output)))
        _save(out, "run1.log", first.output)
        print("   %.1fs; report: %s" % (first.seconds, os.path.join(report_dir, "report.html")), flush=True)
        first_report = _load_json(os.path.join(report_dir, "report.json"))
        print("   connection test: %s" % probe_summary(first_report), flush=True)
        if any(h.get("connectivity_probe") != "notification" or h.get("answer_signature") != "verified"
               for h in (first_report or {}).get("hosts", [])):
            failures.append("not every host's connection test was a verified notification query: %s"
                            % probe_summary(first_report))

        print("\n== run 2: the same again must change nothing", flush=True)
        second = fleet.onboard("-e", "onboarding_report_dir=%s" % report_dir, on_line=PhasePrinter())
        _save(out, "run2.log", second.output)
        for host in sorted(assignment):
            result = second.recap.get(host)
            print("   %-14s changed=%s failed=%s" % (host, result and result["changed"], result and result["failed"]))
        if not second.ok or second.changed_hosts():
            failures.append("run 2 was not changed=0 for every host: %s" % second.recap)

        totals = portal_totals(sandbox.counters())
        print("\n== portal: %(accounts)d accounts, %(registrations_requested)d registrations requested, "
              "%(writes)d writes, %(logins_ok)d logins, %(portal_requests)d requests in all; "
              "gateway: %(gateway_accepted)d messages accepted" % totals, flush=True)
        if totals["registrations_requested"] != len(set(assignment.values())):
            failures.append("expected one registration per distinct certificate (%d), the portal saw %d" % (
                len(set(assignment.values())), totals["registrations_requested"]))
        print("\n== report: %s" % os.path.join(report_dir, "report.html"), flush=True)
    finally:
        print("== stopping the sandbox", flush=True)
        sandbox.stop()
    if failures:
        for failure in failures:
            print("DEMO FAILED: " + failure, file=sys.stderr)
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
