"""A synthetic fleet for the report: host variables as the roles leave them, rendered by the role's own task.

`synthetic_hostvars()` makes, for any number of hosts, the facts the certificate, registration and
connectivity roles set (certificate_summary, registration_summary, connectivity_summary, and the
registered results the report reads for "changed"): hosts sharing certificates, certificates expired,
inside the rotation window and far from it, failures at every stage and layer, pending registrations,
a worksheet task, warnings and changes. `render_report()` writes them into an inventory and runs a play
that includes `dkcustoms.dms.onboarding` with `tasks_from: report` and `worksheet` - the same tasks and templates as a
real run, without running the roles on hundreds of hosts. The include runs once (the report tasks are
run_once anyway), so Ansible does not start a worker per host for it.
"""

import datetime
import importlib.util
import json
import os
import random
import subprocess
import sys
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LAYERS = ["dns", "tcp", "tls", "client_certificate", "authentication", "as4"]

# (layer, result, detail, hint) as the gateway_connectivity module reports them.
FAILURES = [
    ("dns", "DNS_ERROR", "secureftpgatewaytest.skat.dk does not resolve (Name or service not known)",
     "Check the host name in url and this host's resolver (/etc/resolv.conf, /etc/hosts)."),
    ("tcp", "CONNECT_ERROR", "port 6384: 10.20.30.40: no answer within 10s",
     "Packets to port 6384 are dropped: a firewall between this host and the gateway; ask for port 6384 "
     "to be opened to the gateway's addresses."),
    ("tls", "TLS_ERROR", "server certificate CN=proxy.corp.example, issued by CN=Corp Proxy CA, is not trusted "
     "by ca_path /etc/pki/tls/certs/ca-bundle.crt (unable to get local issuer certificate)",
     "Set ca_path to the CA bundle that issued the gateway's certificate. If the issuer is your "
     "organisation's proxy CA, a TLS-intercepting proxy sits in between."),
    ("client_certificate", "CLIENT_CERT_REJECTED", "TLS: the gateway refused our certificate (HTTP 403: "
     "certificate not registered for this user)",
     "Present the certificate registered for gateway_user (a trusted OCES3 certificate, valid now)."),
    ("authentication", "AUTH_FAILED", "UsernameToken (PasswordDigest) refused: FailedAuthentication: "
     "password digest does not match the gateway password",
     "The gateway refused gateway_user/gateway_password: use the gateway password the certificate portal "
     "issued for this registration (run the registration role again to store it)."),
    # Markup in a detail (here the gateway's own XML) must reach the page as text.
    ("as4", "AS4_ERROR", "ebMS error signal EBMS:0004 (Other): <eb:Description>the receiving MSH could not "
     "process the message</eb:Description>",
     "The gateway answered with an ebMS error: act on its description above."),
]

MOCES_WARNING = ("MOCES (employee) certificate: the DMS onboarding guide recommends a FOCES (system) or VOCES "
                 "(organisation) certificate for system-to-system use.")


def _layers(failure=None):
    """The six layers, passing up to FAILURE's layer, failing there, skipped after."""
    layers, failed = [], False
    for name in LAYERS:
        if failed:
            layers.append({"name": name, "status": "skipped", "duration_ms": 0, "detail": "not run: an earlier "
                           "layer failed", "hint": None})
        elif failure and failure[0] == name:
            layers.append({"name": name, "status": "fail", "duration_ms": 37, "detail": failure[2],
                           "hint": failure[3]})
            failed = True
        else:
            layers.append({"name": name, "status": "pass", "duration_ms": 12, "detail": "%s passed" % name,
                           "hint": None})
    return layers


def _certificates(rng, count):
    """COUNT distinct certificates: mostly VOCES and FOCES, a few MOCES; a few expired, some due, most later."""
    days = [-12, -3, 4, 9, 17, 26, 38, 45, 52, 59]
    days += [rng.randint(61, 1095) for _ in range(count - len(days))]
    certificates = []
    for number, remaining in enumerate(days):
        kind = "MOCES" if number % 11 == 5 else "FOCES" if number % 3 == 0 else "VOCES"
        cvr = "%08d" % rng.randint(10000000, 99999999)
        ident = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        certificates.append({
            "certificate_type": kind, "cvr": cvr, "uuid": ident,
            "portal_user_id": "CVR_%s_UI_%s" % (cvr, ident),
            "fingerprint_sha256": "%064x" % rng.getrandbits(256),
            "days_remaining": remaining,
            "not_after": _date_after(remaining),
            "environment": "test",
            "warnings": [MOCES_WARNING] if kind == "MOCES" else [],
        })
    return certificates


def _date_after(days):
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _owners(rng, certificates, count, extra=()):
    """Which certificate each host has: every certificate at least one host, EXTRA (indexes) one more
    each, a few FOCES on many."""
    foces = [i for i, c in enumerate(certificates) if c["certificate_type"] == "FOCES"][:6]
    owners = (list(range(len(certificates))) + list(extra))[:count]
    while len(owners) < count:
        owners.append(rng.choice(foces) if rng.random() < 0.7 else rng.randrange(len(certificates)))
    rng.shuffle(owners)
    return owners


def _healthy(cert, leader):
    """What the roles leave on a host that was onboarded and connects."""
    return {
        "certificate_summary": dict(cert),
        "registration_summary": {"leader": leader, "portal_user_id": cert["portal_user_id"],
                                 "registration_status": "registered", "gateway_user": cert["portal_user_id"],
                                 "actions": [], "credentials_changed": False},
        "connectivity_summary": {"ok": True, "result": "SUCCESS", "failed_layer": None, "layers": _layers(),
                                 "bundle_dir": "/etc/dkcustoms/dms/current", "gateway_user": cert["portal_user_id"]},
    }


def _worksheet_module():
    """The collection's worksheet code (standard library only), loaded from its file: the synthetic entry
    is exactly what the registration_worksheet filter makes."""
    spec = importlib.util.spec_from_file_location(
        "dms_worksheet", os.path.join(ROOT, "plugins", "module_utils", "_worksheet.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fail_connection(variables, failure):
    variables["connectivity_summary"].update(ok=False, result=failure[1], failed_layer=failure[0],
                                             layers=_layers(failure))


def synthetic_hostvars(count=200, seed=13):
    """{host: variables} for COUNT hosts, the same for the same SEED.

    Certificate 20's registration is in progress and certificate 21's waits for a person (a worksheet
    task): their hosts are pending. Hosts on expired certificates are refused at client_certificate;
    every tenth host fails at another layer; two hosts stop in the registration role and one in the
    certificate role; some carry a long warning, some changed.
    """
    rng = random.Random(seed)
    certificates = _certificates(rng, max(22, count // 3))
    in_progress, waiting = certificates[20]["fingerprint_sha256"], certificates[21]["fingerprint_sha256"]
    leaders, hosts = {}, {}
    for index, owner in enumerate(_owners(rng, certificates, count, extra=(20, 20, 20, 21))):
        host = "dms-%s-%03d" % (rng.choice(["app", "edi", "org", "batch"]), index + 1)
        cert = certificates[owner]
        variables = _healthy(cert, leaders.setdefault(cert["fingerprint_sha256"], host))
        registration = variables["registration_summary"]
        if cert["fingerprint_sha256"] in (in_progress, waiting):
            registration["registration_status"] = "in_progress"
            if cert["fingerprint_sha256"] == waiting:
                registration.update(registration_status="waiting_for_credentials", method="manual", pending=True)
                # A certificate registered by hand (registration_method manual) whose gateway credentials
                # are not in the vault yet, with a long common name; plus a key the template does not know.
                registration["worksheet"] = dict(_worksheet_module().entry(
                    dict(cert, common_name="Testvirksomhed %s - integration platform for customs declarations "
                         "(systemcertifikat)" % cert["cvr"]), "manual", "test", email="integration@example.dk",
                    credentials_variable="vault_registration_manual_credentials"), note="asked for by the EDI team")
            _fail_connection(variables, FAILURES[4])
        elif cert["days_remaining"] < 0:
            _fail_connection(variables, ("client_certificate", "CLIENT_CERT_REJECTED",
                                         "TLS: the gateway refused our certificate (HTTP 403: certificate expired "
                                         "%s)" % cert["not_after"], "Rotate to a valid certificate "
                                         "(playbooks/rotate.yml with rotation_certificate_path)."))
        elif index % 10 == 3:
            _fail_connection(variables, FAILURES[(index // 10) % len(FAILURES)])
        elif index in (16, 116):  # stopped in the registration role: no registration, no connection test
            del variables["registration_summary"], variables["connectivity_summary"]
        elif index == 66:  # stopped in the certificate role: nothing at all
            variables = {}
        if index % 9 == 4 and variables:
            variables["certificate_summary"]["warnings"] = cert["warnings"] + [
                "/etc/dkcustoms/dms/current holds a newer certificate (%s, valid until %s) than the one this "
                "inventory names; it stays active. Point certificate_path at the new certificate once a "
                "rotation has switched to it." % (cert["portal_user_id"], _date_after(700))]
        if index % 11 == 2 and "registration_summary" in variables:
            variables.update(certificate_install={"changed": True}, certificate_link={"changed": True})
            variables["registration_summary"]["credentials_changed"] = True
        hosts[host] = variables
    return hosts


def render_report(collection_root, directory, hostvars, extra_vars=None):
    """Write HOSTVARS as an inventory under DIRECTORY and run the report tasks over it; return report dir."""
    os.makedirs(directory, exist_ok=True)
    report_dir = os.path.join(directory, "report")
    inventory = os.path.join(directory, "hosts.json")
    with open(inventory, "w", encoding="utf-8") as handle:
        json.dump({"synthetic": {"hosts": hostvars, "vars": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}, handle)
    playbook = os.path.join(directory, "report.yml")
    with open(playbook, "w", encoding="utf-8") as handle:
        handle.write("---\n- name: Write the fleet report from synthetic host data\n  hosts: synthetic\n"
                     "  gather_facts: false\n  tasks:\n    - name: Write the fleet report\n"
                     "      ansible.builtin.include_role:\n        name: dkcustoms.dms.onboarding\n"
                     "        tasks_from: report\n      run_once: true\n"
                     "    - name: Write the worksheet\n      ansible.builtin.include_role:\n"
                     "        name: dkcustoms.dms.onboarding\n        tasks_from: worksheet\n      run_once: true\n")
    variables = {"onboarding_report_dir": report_dir}
    variables.update(extra_vars or {})
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collection_root, ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_HOST_KEY_CHECKING="0")
    binary = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    result = subprocess.run([binary, "-i", inventory, playbook, "-e", json.dumps(variables)], cwd=directory,
                            env=env, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise AssertionError("report play failed:\n" + result.stdout[-6000:] + result.stderr[-2000:])
    return report_dir
