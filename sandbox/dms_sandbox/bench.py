"""`make bench`: fleet onboarding against the sandbox beside a floor of ansible.builtin.ping tasks.

    python -m dms_sandbox.bench --collection-root BUILD_ROOT --out bench-output [--sizes 50,200]

For each fleet size N: a fresh sandbox with a registration delay, N local-connection hosts over K distinct
certificates (half FOCES, half VOCES, hosts assigned round robin), `dkcustoms.dms.onboard` run twice
(first run, then the idempotent re-run), and a playbook of as many `ansible.builtin.ping` tasks as the
first run executed, over the same hosts and forks: Ansible's own cost of that many tasks, the floor.
Prints the ratios and the portal's request counts; writes OUT/bench.json.
"""

import argparse
import json
import os
import shutil
import sys

from dms_sandbox.fleet import Fleet, Sandbox, make_pki, portal_totals


def assignment(size, entities):
    return {"bench-%03d" % number: entities[number % len(entities)] for number in range(size)}


def bench_size(size, args, manifest, entities):
    root = os.path.join(args.out, "fleet-%d" % size)
    shutil.rmtree(root, ignore_errors=True)
    sandbox = Sandbox(os.path.join(root, "sandbox"), os.path.join(args.out, "pki"),
                      registration_delay=args.registration_delay, ttl=7200)
    info = sandbox.start()
    try:
        fleet = Fleet(root, args.collection_root, info, manifest, forks=args.forks)
        hosts = assignment(size, entities)
        fleet.write_inventory(hosts)
        report = "onboarding_report_dir=%s" % os.path.join(root, "report")
        print("-- %d hosts, %d certificates, forks %d, registration delay %ss" % (
            size, len(set(hosts.values())), args.forks, args.registration_delay), flush=True)
        first = fleet.onboard("-e", report)
        print("   onboarding, first run: %.1fs (rc %d)" % (first.seconds, first.returncode), flush=True)
        after_first = portal_totals(sandbox.counters())
        second = fleet.onboard("-e", report)
        print("   onboarding, re-run:    %.1fs (rc %d, hosts changed: %d)" % (
            second.seconds, second.returncode, len(second.changed_hosts())), flush=True)
        after_second = portal_totals(sandbox.counters())
        ping = fleet.run(fleet.ping_playbook(first.tasks))
        print("   %d ping tasks:         %.1fs (rc %d)" % (first.tasks, ping.seconds, ping.returncode), flush=True)
    finally:
        sandbox.stop()
    for name, run in (("first", first), ("second", second), ("ping", ping)):
        with open(os.path.join(root, "%s.log" % name), "w", encoding="utf-8") as handle:
            handle.write(run.output)
    return {
        "hosts": size,
        "certificates": len(set(hosts.values())),
        "forks": args.forks,
        "registration_delay_s": args.registration_delay,
        "tasks_per_run": first.tasks,
        "onboard_first_s": round(first.seconds, 1),
        "onboard_rerun_s": round(second.seconds, 1),
        "ping_floor_s": round(ping.seconds, 1),
        "ratio_first_to_floor": round(first.seconds / ping.seconds, 2),
        "ratio_rerun_to_floor": round(second.seconds / ping.seconds, 2),
        "first_ok": first.ok,
        "rerun_changed_hosts": len(second.changed_hosts()),
        "portal_after_first": after_first,
        "portal_rerun_only": {key: after_second[key] - after_first.get(key, 0)
                              for key in after_second if isinstance(after_second[key], int)},
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dms_sandbox.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--collection-root", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--sizes", default="50,200", help="comma-separated fleet sizes")
    parser.add_argument("--certificates", type=int, default=10, help="distinct certificates in the fleet")
    parser.add_argument("--registration-delay", type=float, default=10)
    parser.add_argument("--forks", type=int, default=50)
    args = parser.parse_args(argv)
    args.out = os.path.abspath(args.out)
    os.makedirs(args.out, exist_ok=True)

    foces = (args.certificates + 1) // 2
    voces = args.certificates - foces
    print("== test PKI: %d FOCES + %d VOCES" % (foces, voces), flush=True)
    manifest = make_pki(os.path.join(args.out, "pki"), foces=foces, voces=voces, moces=0)
    entities = ["foces-%02d" % n for n in range(1, foces + 1)] + ["voces-%02d" % n for n in range(1, voces + 1)]

    results = [bench_size(int(size), args, manifest, entities) for size in args.sizes.split(",")]
    with open(os.path.join(args.out, "bench.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)

    print("\n%6s %5s %6s %9s %9s %9s %8s %8s %9s %7s %7s %9s" % (
        "hosts", "certs", "tasks", "onboard", "re-run", "ping", "ratio", "re/ping", "registr.", "logins", "writes",
        "requests"))
    for r in results:
        portal = r["portal_after_first"]
        print("%6d %5d %6d %8.1fs %8.1fs %8.1fs %7.2fx %7.2fx %9d %7d %7d %9d" % (
            r["hosts"], r["certificates"], r["tasks_per_run"], r["onboard_first_s"], r["onboard_rerun_s"],
            r["ping_floor_s"], r["ratio_first_to_floor"], r["ratio_rerun_to_floor"],
            portal["registrations_requested"], portal["logins_ok"], portal["writes"], portal["portal_requests"]))
    print("re-run portal requests (logins/writes/registrations): %s" % [
        r["portal_rerun_only"] for r in results])
    print("results: %s" % os.path.join(args.out, "bench.json"))
    failed = [r for r in results if not r["first_ok"] or r["rerun_changed_hosts"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
