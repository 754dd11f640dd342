"""The fleet harness: a sandbox of our own, a simulated fleet of local-connection hosts, and its playbook runs.

`make demo` (dms_sandbox.demo), `make bench` (dms_sandbox.bench) and the fleet tests (tests/fleet) drive it.
Each simulated host is an inventory host with `ansible_connection: local` and a directory of its own (its
`certificate_base_dir`); its secrets go into an ansible-vault file, as a real inventory keeps them.
"""

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
        group_dir = os.path.join(self.inventory_dir, "group_vars", "dms_integration_hosts")
        os.makedirs(group_dir, exist_ok=True)
        self.hosts = dict(assignment)
        inventory = {"dms_integration_hosts": {"hosts": self._host_entries(assignment, host_vars or {}), "vars": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}
        _write_json_as_yaml(os.path.join(self.inventory_dir, "hosts.yml"), inventory)
        _write_json_as_yaml(os.path.join(group_dir, "main.yml"), dict(self._public_group_vars(), **(group_vars or {})))
        self._write_vault(os.path.join(group_dir, "vault.yml"), vault_vars or {})
        self._write_ansible_cfg()

    def _host_entries(self, assignment, host_vars):
        """Each host's certificate and directory, plus its HOST_VARS."""
        hosts = {}
        for host, entity in sorted(assignment.items()):
            hosts[host] = {"certificate_path": self.pki["entities"][entity]["p12"],
                           "certificate_base_dir": self.host_base_dir(host)}
            hosts[host].update(host_vars.get(host, {}))
        return hosts

    def _public_group_vars(self):
        """The group's variables in the clear: the sandbox's addresses, the secrets by vault reference."""
        return {
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

    def _write_vault(self, vault_file, vault_vars):
        """The secrets, and VAULT_VARS, encrypted with ansible-vault under the demo vault password."""
        with open(self.vault_password_file, "w", encoding="utf-8") as handle:
            handle.write(DEMO_VAULT_PASSWORD + "\n")
        os.chmod(self.vault_password_file, 0o600)
        secrets = {
            "vault_certificate_passphrase": self.pki["passphrase"],
            "vault_keystore_passphrase": DEMO_KEYSTORE_PASSPHRASE,
            "vault_portal_password": DEMO_PORTAL_PASSWORD,
        }
        secrets.update(vault_vars)
        _write_vault_file(vault_file, secrets, DEMO_VAULT_PASSWORD)

    def _write_ansible_cfg(self):
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
            # The runs start in the fleet's directory; PWD says so too, as a shell would, so defaults built
            # on it (onboarding_report_dir) land there and not in the directory the harness was started from.
            "PWD": self.root,
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
        run = PlaybookRun(process.returncode, parse_recap(output), seconds, output, count_tasks(output), self.hosts)
        _log_timing(self.root, playbook, args, run)
        return run

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


def _log_timing(root, playbook, args, run):
    """With DMS_FLEET_TIMINGS=FILE, one JSON line per playbook run: where the fleet tests' time goes."""
    path = os.environ.get("DMS_FLEET_TIMINGS")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"fleet": root, "playbook": playbook, "args": list(args), "hosts": len(run.hosts),
                                     "tasks": run.tasks, "seconds": round(run.seconds, 1)}) + "\n")


def _tool(name):
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    return candidate if os.path.exists(candidate) else (shutil.which(name) or name)


def _write_vault_file(path, data, password):
    """DATA as an ansible-vault file, encrypted by Ansible's own vault library (what `ansible-vault encrypt`
    runs) in this process: a fleet test rewrites its inventory often, an ansible-vault start each time adds up."""
    from ansible.parsing.vault import VaultLib, VaultSecret  # only where a fleet runs, Ansible is installed

    plaintext = ("---\n" + json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")
    ciphertext = VaultLib([("default", VaultSecret(password.encode("utf-8")))]).encrypt(plaintext)
    with open(path, "wb") as handle:
        handle.write(ciphertext)


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
