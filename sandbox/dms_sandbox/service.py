"""`dms-sandbox serve | stop | status`: run the portal + gateway sandbox over a state directory.

Files in --state DIR: sandbox.db (all state, SQLite), sandbox.pid (written at start), sandbox.json
(written once every port accepts connections, removed on a clean stop), sandbox.log (--detach only),
pki/ (only when no --pki is given).
"""

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time

from dms_sandbox import faults as faults_module
from dms_sandbox.portal import SESSION_LIFETIME_S

READY_FILE = "sandbox.json"
PID_FILE = "sandbox.pid"
LOCK_FILE = "sandbox.lock"
LOG_FILE = "sandbox.log"
DETACH_READY_TIMEOUT_S = 180
EXIT_NOT_RUNNING = 3


def add_subcommands(subparsers):
    serve = subparsers.add_parser(
        "serve", help="run the certificate portal and the AS4 gateway (HTTPS) plus the admin API",
        description="Run the certificate portal and AS4 gateway sandbox on free loopback ports; write "
                    "STATE/sandbox.json once they accept connections. SIGTERM stops it cleanly.")
    serve.add_argument("--state", required=True, help="state directory (SQLite database, sandbox.json, log)")
    serve.add_argument("--pki", help="test PKI directory holding pki.json (default: make one under STATE/pki)")
    serve.add_argument("--detach", action="store_true",
                       help="run in the background; return once it is ready and print sandbox.json")
    serve.add_argument("--ttl", type=float, default=0, metavar="SECONDS",
                       help="stop by itself after this many seconds (0: run until stopped)")
    serve.add_argument("--client-ca", action="append", default=[], metavar="FILE",
                       help="also accept client certificates from the CA(s) in FILE (repeatable)")
    serve.add_argument("--require-client-cert-gateway", action="store_true",
                       help="the gateway requires a TLS client certificate (default: checked when presented)")
    serve.add_argument("--serve-test-service", action="store_true",
                       help="the gateway answers the ebMS3 test service with a receipt (default: EBMS:0010, as "
                            "nothing public shows the DMS gateway serving it)")
    serve.add_argument("--answer-key-reference", choices=("issuer_serial", "binary_security_token"),
                       default="issuer_serial",
                       help="how the gateway's signed answers name its certificate: issuer and serial number (as "
                            "Holodeck B2B does; default) or a BinarySecurityToken carrying it")
    serve.add_argument("--gateway-user-form", choices=("UI", "UR"), default="UI",
                       help="form of the gateway user the portal issues: CVR_<cvr>_UI_<uuid> (default) or the "
                            "CVR_<cvr>_UR_<uuid> of the guide's screenshot")
    serve.add_argument("--portal-api", choices=("default", "variant"), default="default",
                       help="shape of the portal's API: the default one of docs/portal-api.md, or a second test "
                            "shape (other paths, camelCase fields in a data envelope, cookie session with an "
                            "X-XSRF-TOKEN header, other error bodies) that the collection reaches only through "
                            "a profile")
    serve.add_argument("--session-lifetime", type=float, default=SESSION_LIFETIME_S, metavar="SECONDS",
                       help="portal session lifetime (default %d)" % SESSION_LIFETIME_S)
    faults_module.add_arguments(serve)
    serve.set_defaults(func=serve_command)

    stop = subparsers.add_parser("stop", help="stop the sandbox of a state directory (SIGTERM, then SIGKILL)")
    stop.add_argument("--state", required=True, help="state directory of the sandbox")
    stop.add_argument("--timeout", type=float, default=15, help="seconds to wait before SIGKILL (default 15)")
    stop.set_defaults(func=stop_command)

    status = subparsers.add_parser("status", help="print sandbox.json if the sandbox runs (exit 3 if not)")
    status.add_argument("--state", required=True, help="state directory of the sandbox")
    status.set_defaults(func=status_command)


# -- process bookkeeping -----------------------------------------------------------------------------------
def _read_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _write_json_atomically(path, document):
    """Mode 0600 from the first byte: sandbox.json holds the admin API's token."""
    temporary = "%s.%d.tmp" % (path, os.getpid())
    _remove(temporary)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.replace(temporary, path)


def _is_sandbox_process(pid):
    """True when PID is a live (not zombie) dms-sandbox serve process."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            cmdline = handle.read().replace(b"\0", b" ")
    except OSError:
        return True  # no /proc: trust kill(0)
    return b"serve" in cmdline and (b"dms-sandbox" in cmdline or b"dms_sandbox" in cmdline)


def _lock_is_held(state):
    """True when a live process holds STATE/sandbox.lock (the kernel drops it when that process dies)."""
    try:
        handle = open(os.path.join(state, LOCK_FILE), "a+b")  # pylint: disable=consider-using-with
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        handle.close()  # closing also releases a lock we just took
    return False


def running_pid(state):
    """PID of the sandbox serving STATE, or None.

    The lock file says whether one runs (no stale pid file or reused pid can fool it); the pid file says
    which process it is."""
    if not _lock_is_held(state):
        return None
    for _ in range(50):  # the pid file follows the lock within moments
        try:
            with open(os.path.join(state, PID_FILE), encoding="utf-8") as handle:
                pid = int(handle.read().strip() or 0)
        except (OSError, ValueError):
            pid = None
        if pid and _is_sandbox_process(pid):
            return pid
        time.sleep(0.1)
    return None


def _take_lock(state, args):
    """Hold STATE/sandbox.lock for the life of this process; refuse when another sandbox holds it."""
    handle = open(os.path.join(state, LOCK_FILE), "a+b")  # pylint: disable=consider-using-with
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ValueError("another sandbox already serves %s; stop it with `dms-sandbox stop --state %s` or use "
                         "another --state" % (state, args.state)) from None
    return handle


def _remove(*paths):
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


# -- serve -------------------------------------------------------------------------------------------------
def _load_pki(args, state):
    if args.pki:
        directory = os.path.abspath(args.pki)
        manifest_path = directory if directory.endswith(".json") else os.path.join(directory, "pki.json")
        manifest = _read_json(manifest_path)
        if manifest is None:
            raise ValueError("no readable pki.json at %s; make one with `dms-sandbox pki --out %s` or leave out "
                             "--pki" % (manifest_path, args.pki))
        manifest["_dir"] = os.path.dirname(manifest_path)
        return manifest
    from dms_sandbox import pki  # pylint: disable=import-outside-toplevel
    directory = os.path.join(state, "pki")
    manifest = pki.make_pki(directory, foces=1, voces=1, moces=1, broken=True)
    manifest["_dir"] = directory
    return manifest


def _child_argv(args):
    """The same `serve` command line without --detach (with absolute paths)."""
    argv = ["serve", "--state", os.path.abspath(args.state)]
    if args.pki:
        argv += ["--pki", os.path.abspath(args.pki)]
    if args.ttl:
        argv += ["--ttl", repr(args.ttl)]
    for path in args.client_ca:
        argv += ["--client-ca", os.path.abspath(path)]
    if args.require_client_cert_gateway:
        argv.append("--require-client-cert-gateway")
    if args.serve_test_service:
        argv.append("--serve-test-service")
    argv += ["--answer-key-reference", args.answer_key_reference]
    argv += ["--gateway-user-form", args.gateway_user_form, "--session-lifetime", repr(args.session_lifetime),
             "--portal-api", args.portal_api]
    for service in faults_module.SERVICES:
        for name, (kind, _default, _help) in faults_module.FIELDS.items():
            value = getattr(args, "fault_%s_%s" % (service, name), None)
            if value is None or value is False:
                continue
            if name == "registration_delay_s":
                argv += ["--registration-delay", repr(float(value))]
            elif name == "registration_stuck":
                argv.append("--registration-stuck")
            elif kind is bool:
                argv.append("--%s-%s" % (service, name.replace("_", "-")))
            else:
                argv += ["--%s-%s" % (service, name.replace("_", "-")), str(value)]
    return argv


def _detach(args, state):
    log_path = os.path.join(state, LOG_FILE)
    command = [sys.executable, "-c", "import sys; from dms_sandbox.cli import main; sys.exit(main())"]
    command += _child_argv(args)
    with open(log_path, "ab") as log, open(os.devnull, "rb") as devnull:
        child = subprocess.Popen(command, stdin=devnull, stdout=log, stderr=log,  # pylint: disable=consider-using-with
                                 start_new_session=True, close_fds=True)
    deadline = time.time() + DETACH_READY_TIMEOUT_S
    while time.time() < deadline:
        ready = _read_json(os.path.join(state, READY_FILE))
        if ready and ready.get("pid") == child.pid:
            print(json.dumps(ready, indent=1, sort_keys=True))
            return 0
        if child.poll() is not None:
            raise ValueError("the sandbox exited (status %s) before it was ready; see %s"
                             % (child.returncode, log_path))
        time.sleep(0.1)
    child.terminate()
    raise ValueError("the sandbox was not ready after %d s; see %s" % (DETACH_READY_TIMEOUT_S, log_path))


def serve_command(args):
    state = os.path.abspath(args.state)
    os.makedirs(state, mode=0o700, exist_ok=True)  # it holds gateway passwords
    other = running_pid(state)
    if other and other != os.getpid():
        raise ValueError("a sandbox (pid %d) already serves %s; stop it with `dms-sandbox stop --state %s` or use "
                         "another --state" % (other, state, args.state))
    faults = faults_module.from_arguments(args)  # bad fault flags fail here, before anything starts
    if args.detach:
        return _detach(args, state)
    return _serve(args, state, faults)


def _serve(args, state, faults):
    from dms_sandbox.server import Sandbox, log  # pylint: disable=import-outside-toplevel
    ready_path, pid_path = os.path.join(state, READY_FILE), os.path.join(state, PID_FILE)
    lock = _take_lock(state, args)  # noqa: held until the process ends
    _remove(ready_path)
    with open(pid_path, "w", encoding="utf-8") as handle:
        handle.write("%d\n" % os.getpid())
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    sandbox = None
    try:
        manifest = _load_pki(args, state)
        sandbox = Sandbox(state, manifest, faults, client_ca_files=args.client_ca,
                          require_client_cert_gateway=args.require_client_cert_gateway,
                          gateway_user_form=args.gateway_user_form, session_lifetime_s=args.session_lifetime,
                          serve_test_service=args.serve_test_service, answer_key_reference=args.answer_key_reference,
                          portal_api=args.portal_api)
        ready = sandbox.start()
        ready["started_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        ready["expires_at"] = (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + args.ttl))
                               if args.ttl else None)
        _write_json_atomically(ready_path, ready)
        log("ready: portal %(portal_url)s, gateway %(gateway_url)s, admin %(admin_url)s" % ready)
        deadline = time.time() + args.ttl if args.ttl else None
        while not stop.wait(0.5):
            if deadline and time.time() >= deadline:
                log("--ttl of %s s reached; stopping" % args.ttl)
                break
        log("stopping")
    finally:
        _remove(ready_path)
        if sandbox is not None:
            sandbox.stop()
        _remove(pid_path)
        lock.close()
    return 0


# -- stop / status -----------------------------------------------------------------------------------------
def stop_command(args):
    state = os.path.abspath(args.state)
    pid = running_pid(state)
    if pid is None:
        _remove(os.path.join(state, READY_FILE), os.path.join(state, PID_FILE))
        print(json.dumps({"stopped": False, "running": False, "state": state}))
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + args.timeout
    while time.time() < deadline and _is_sandbox_process(pid):
        time.sleep(0.1)
    killed = False
    if _is_sandbox_process(pid):
        os.kill(pid, signal.SIGKILL)
        killed = True
        while _is_sandbox_process(pid):
            time.sleep(0.1)
        _remove(os.path.join(state, READY_FILE), os.path.join(state, PID_FILE))
    print(json.dumps({"stopped": True, "pid": pid, "killed": killed, "state": state}))
    return 0


def status_command(args):
    state = os.path.abspath(args.state)
    pid = running_pid(state)
    ready = _read_json(os.path.join(state, READY_FILE))
    if pid is None:
        print(json.dumps({"running": False, "state": state}))
        return EXIT_NOT_RUNNING
    document = dict(ready or {}, running=True, ready=bool(ready and ready.get("pid") == pid), pid=pid)
    print(json.dumps(document, indent=1, sort_keys=True))
    return 0
