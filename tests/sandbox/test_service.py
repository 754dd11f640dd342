"""The sandbox as a service: readiness file, stop/status, side by side, faults, admin API, gateway port."""

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings

import pytest
import requests

from dms_sandbox.adminclient import AdminClient


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dms_sandbox"] + list(args), capture_output=True, text=True,
                          timeout=120, check=False)


def test_readiness_file_names_everything_a_client_needs(sandbox, pki):
    box = sandbox()
    info = box.info
    assert info["pid"] == box.process.pid
    assert info["portal_url"].startswith("https://127.0.0.1:") and info["portal_url"].endswith("/PortalCertApp")
    assert info["gateway_url"].startswith("https://127.0.0.1:")
    assert info["admin_url"].startswith("http://127.0.0.1:")
    assert info["ca_bundle"] == pki["server"]["ca_bundle"]
    assert info["gateway_certificate"] == pki["server"]["gateway_signing"]["cert"]
    assert os.path.isfile(info["gateway_certificate"])
    assert box.admin("GET", "/health").json() == {"ok": True}


def _tls_1_1_only_client(ca_bundle):
    """A client that speaks TLS 1.1 and nothing else. OpenSSL 3 allows TLS 1.1 (SHA-1 and MD5 in its
    handshake) only at security level 0, so without @SECLEVEL=0 no server, however lax, could accept it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(ca_bundle)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context


def _handshake(context, port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return tls.version()


def _tls_1_1_version_seen_by_a_lax_server(pki, client):
    """The control: the version CLIENT gets from a loopback server (the sandbox's certificate) that allows
    TLS 1.1. Raises ssl.SSLError when this OpenSSL cannot do TLS 1.1 at all."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pki["server"]["cert"], pki["server"]["key"])
    server.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server.minimum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)

        def serve_one():
            connection, _ = listener.accept()
            try:
                with server.wrap_socket(connection, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                connection.close()

        thread = threading.Thread(target=serve_one, daemon=True)
        thread.start()
        try:
            return _handshake(client, listener.getsockname()[1])
        finally:
            thread.join(10)


def test_tls_is_1_2_or_newer(sandbox, pki, unavailable):
    box = sandbox()
    port = int(box.info["portal_url"].split(":")[2].split("/")[0])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(box.info["ca_bundle"])
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    assert _handshake(context, port) == "TLSv1.2"

    try:
        old_client = _tls_1_1_only_client(box.info["ca_bundle"])
        control = _tls_1_1_version_seen_by_a_lax_server(pki, old_client)
    except (ValueError, ssl.SSLError) as exc:
        unavailable("this OpenSSL (%s) cannot speak TLS 1.1 even at @SECLEVEL=0 (%s), so the sandbox's "
                    "refusal of TLS 1.1 cannot be shown" % (ssl.OPENSSL_VERSION, exc))
    assert control == "TLSv1.1"  # this client does speak TLS 1.1 to a server that allows it ...
    with pytest.raises(ssl.SSLError) as refused:
        _handshake(old_client, port)  # ... and the sandbox refuses it
    assert refused.value.reason in ("TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL"), refused.value


def test_sigterm_stops_cleanly_and_removes_the_readiness_file(sandbox):
    box = sandbox()
    assert box.stop(signal.SIGTERM) == 0
    assert not os.path.exists(os.path.join(box.state, "sandbox.json"))
    assert not os.path.exists(os.path.join(box.state, "sandbox.pid"))


def test_status_and_stop_commands(sandbox):
    box = sandbox()
    status = _cli("status", "--state", box.state)
    assert status.returncode == 0 and json.loads(status.stdout)["running"] is True
    stop = _cli("stop", "--state", box.state)
    assert stop.returncode == 0 and json.loads(stop.stdout)["stopped"] is True
    assert box.process.wait(10) == 0
    status = _cli("status", "--state", box.state)
    assert status.returncode == 3 and json.loads(status.stdout)["running"] is False
    assert json.loads(_cli("stop", "--state", box.state).stdout)["stopped"] is False  # idempotent


def test_second_sandbox_on_the_same_state_is_refused(sandbox):
    box = sandbox()
    second = _cli("serve", "--state", box.state, "--pki", box.pki["dir"])
    assert second.returncode != 0 and "already serves" in second.stderr


def test_detach_and_ttl(tmp_path, pki):
    state = str(tmp_path / "detached")
    started = time.time()
    result = _cli("serve", "--state", state, "--pki", pki["dir"], "--detach", "--ttl", "5")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert time.time() - started < 30
    try:
        assert AdminClient(info).request("GET", "/health").json() == {"ok": True}
        deadline = time.time() + 20
        while time.time() < deadline and _cli("status", "--state", state).returncode == 0:
            time.sleep(0.3)
        assert _cli("status", "--state", state).returncode == 3, "--ttl did not stop the sandbox"
    finally:
        _cli("stop", "--state", state)


def test_sandboxes_side_by_side_keep_separate_state(sandbox):
    first, second = sandbox(), sandbox()
    urls = {first.info[key] for key in ("portal_url", "gateway_url", "admin_url")} | \
        {second.info[key] for key in ("portal_url", "gateway_url", "admin_url")}
    assert len(urls) == 6
    first.client("foces-01").activate()
    assert first.account_counters(first.client("foces-01").user_id)["logins_ok"] == 1
    assert second.counters()["accounts"] == {}
    assert second.client("foces-01").get("/api/whoami").json()["account_state"] == "new"


# -- faults -----------------------------------------------------------------------------------------------

def test_error_rate_answers_503(sandbox):
    box = sandbox("--portal-error-rate", "1")
    answer = box.client("foces-01").get("/api/whoami")
    assert (answer.status_code, answer.json()["error"]) == (503, "service_unavailable")
    box.set_faults(portal={"error_rate": 1, "error_status": 500})
    assert box.client("foces-01").get("/api/whoami").status_code == 500
    box.set_faults(portal={"error_rate": 0})
    assert box.client("foces-01").get("/api/whoami").status_code == 200


def test_error_rate_is_a_share(sandbox):
    box = sandbox()
    box.set_faults(portal={"error_rate": 0.5})
    browser = box.client("foces-01")
    statuses = [browser.get("/api/whoami").status_code for _ in range(40)]
    assert 5 <= statuses.count(503) <= 35 and statuses.count(200) + statuses.count(503) == 40


def test_rate_limit_answers_429_with_retry_after(sandbox):
    box = sandbox("--portal-rate-limit-rate", "1", "--portal-retry-after", "7")
    answer = box.client("foces-01").get("/api/whoami")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"
    assert answer.json()["error"] == "rate_limited"
    assert box.counters()["faults"]["portal"] == {"rate_limited": 1}


def test_scripted_faults_answer_the_next_requests_in_order(sandbox):
    box = sandbox("--portal-script", "rate_limit,serve", "--portal-retry-after", "7")
    browser = box.client("foces-01")
    limited = browser.get("/api/whoami")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert browser.get("/api/whoami").status_code == 200
    faults = box.set_faults(portal={"script": ["error", "drop", "rate_limit"], "error_status": 500})
    assert faults["portal"]["script"] == ["error", "drop", "rate_limit"] and faults["gateway"]["script"] == []
    assert browser.get("/api/whoami").status_code == 500
    with pytest.raises(requests.exceptions.ConnectionError):
        browser.get("/api/whoami")
    assert browser.get("/api/whoami").status_code == 429
    assert box.admin("GET", "/faults").json()["portal"]["script"] == []
    assert browser.get("/api/whoami").status_code == 200  # the script is used up and every rate is 0
    assert box.counters()["faults"] == {"portal": {"rate_limited": 2, "service_unavailable": 1, "dropped": 1},
                                        "gateway": {}}


def test_dropped_connections(sandbox):
    box = sandbox()
    box.set_faults(portal={"drop_rate": 1})
    with pytest.raises(requests.exceptions.ConnectionError):
        box.client("foces-01").get("/api/whoami")
    assert box.counters()["requests_by_service"]["portal"] == 1  # it arrived, and got no answer


def test_latency(sandbox):
    box = sandbox()
    browser = box.client("foces-01")
    browser.get("/api/whoami")
    box.set_faults(portal={"latency_ms": 600})
    started = time.time()
    assert browser.get("/api/whoami").status_code == 200
    assert time.time() - started >= 0.6


def test_maintenance_window(sandbox):
    box = sandbox()
    box.set_faults(portal={"maintenance": True, "retry_after": 30})
    answer = box.client("foces-01").get("/api/whoami")
    assert (answer.status_code, answer.json()["error"]) == (503, "maintenance")
    assert answer.headers["Retry-After"] == "30"
    box.set_faults(portal={"maintenance": False, "maintenance_for_s": 2.5})
    answer = box.client("foces-01").get("/api/whoami")
    assert answer.status_code == 503 and 1 <= int(answer.headers["Retry-After"]) <= 3
    time.sleep(2.6)
    assert box.client("foces-01").get("/api/whoami").status_code == 200


@pytest.mark.parametrize("kind", ["expired", "wrong_host"])
def test_bad_server_certificate(sandbox, kind):
    box = sandbox("--portal-server-certificate", kind)
    with pytest.raises(requests.exceptions.SSLError):
        box.client("foces-01").get("/api/whoami")
    # Only the portal's: the gateway still presents a valid one; and the fault can be lifted.
    requests.get(box.info["gateway_url"] + "/", verify=box.info["ca_bundle"], timeout=10)
    box.set_faults(portal={"server_certificate": "valid"})
    assert box.client("foces-01").get("/api/whoami").status_code == 200


def test_gateway_faults_are_separate(sandbox):
    box = sandbox("--gateway-error-rate", "1")
    answer = requests.post(box.info["gateway_url"] + "/exchange/nobody", data=b"<x/>",
                           verify=box.info["ca_bundle"], timeout=10)
    assert answer.status_code == 503
    assert box.client("foces-01").get("/api/whoami").status_code == 200


def test_invalid_faults_are_refused_whole(sandbox):
    box = sandbox()
    for body in ({"portal": {"error_rate": 2}}, {"portal": {"no_such_fault": 1}}, {"mail": {"error_rate": 0.1}},
                 {"gateway": {"registration_stuck": True}}, {"portal": {"server_certificate": "bogus"}},
                 {"portal": {"latency_ms": -1}}, {"portal": {"maintenance": "perhaps"}},
                 {"portal": {"script": ["rate_limit", "explode"]}}, {"portal": {"script": 429}}):
        request = dict(body)
        request.setdefault("gateway", {"latency_ms": 5})  # a valid part, which must not be applied either
        answer = box.admin("POST", "/faults", request)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_faults", body
        faults = box.admin("GET", "/faults").json()
        assert faults["gateway"]["latency_ms"] == 0 and faults["portal"]["error_rate"] == 0


def test_faults_in_the_flat_form(sandbox):
    box = sandbox()
    answer = box.admin("POST", "/faults", {"service": "gateway", "latency_ms": 7})
    assert answer.status_code == 200 and answer.json()["gateway"]["latency_ms"] == 7
    assert answer.json()["portal"]["latency_ms"] == 0
    assert box.admin("POST", "/faults", {"service": "mail", "latency_ms": 7}).status_code == 400


def test_bad_fault_flag_fails_before_starting(tmp_path, pki):
    result = _cli("serve", "--state", str(tmp_path / "s"), "--pki", pki["dir"], "--portal-drop-rate", "3")
    assert result.returncode == 2 and "drop_rate" in result.stderr


# -- admin API ----------------------------------------------------------------------------------------------

def test_admin_mpc_counters_and_reset(sandbox):
    box = sandbox()
    body = {"gateway_user": "CVR_12345678_UI_x", "mpc": "urn:fdc:dk.skat.mft.DMS/import2/response"}
    assert box.admin("POST", "/mpc", body).json()["waiting"] == 1
    assert box.admin("POST", "/mpc", dict(body, message="<a/>")).json()["waiting"] == 2
    assert box.counters()["gateway"]["waiting"] == {body["gateway_user"]: {body["mpc"]: 2}}
    assert box.admin("POST", "/mpc", {"mpc": "x"}).status_code == 400
    box.client("foces-01").activate()
    assert box.counters()["requests"] >= 2
    reset = box.admin("POST", "/reset-counters").json()
    assert reset["requests"] == 0
    assert reset["accounts"][box.pki["entities"]["foces-01"]["portal_user_id"]]["logins_ok"] == 0
    assert reset["gateway"]["waiting"][body["gateway_user"]][body["mpc"]] == 2  # state stays


def test_admin_unknown_account_and_path(sandbox):
    box = sandbox()
    assert box.admin("POST", "/accounts/CVR_00000000_UI_nobody/unlock").status_code == 404
    assert box.admin("GET", "/nothing").status_code == 404


def test_stale_pid_file_never_points_stop_at_another_sandbox(sandbox):
    first, other = sandbox(), sandbox()
    first.stop(signal.SIGKILL)
    with open(os.path.join(first.state, "sandbox.pid"), "w", encoding="utf-8") as handle:
        handle.write("%d\n" % other.process.pid)  # as if the pid had been reused by another sandbox
    assert _cli("status", "--state", first.state).returncode == 3
    assert json.loads(_cli("stop", "--state", first.state).stdout)["stopped"] is False
    assert other.process.poll() is None and other.admin("GET", "/health").status_code == 200
    first.start()  # and the state directory can be served again


def test_chunked_request_bodies_are_read(sandbox):
    box = sandbox()
    browser = box.client("foces-01")
    body = json.dumps({"user_id": browser.user_id, "password": browser.user_id}).encode()
    answer = browser.call("POST", "/api/session", data=iter([body[:10], body[10:]]),
                          headers={"Content-Type": "application/json"})
    assert answer.status_code == 200 and answer.json()["password_change_required"] is True


def test_no_secret_reaches_the_log(sandbox):
    box = sandbox()
    browser = box.client("foces-01").activate()
    token = browser.session.headers["Authorization"][len("Bearer "):]
    browser.register_and_wait()
    password = browser.get("/api/certificate/gateway-credentials").json()["gateway_password"]
    browser.logon("Wrong-Password-Attempt-1")
    for _ in range(60):  # more log after the secrets than a look at the log's tail would cover
        browser.get("/api/whoami")
    box.stop()
    log = box.log()
    assert "/api/certificate/gateway-credentials" in log  # the log is there, and says what was called
    assert log.index("POST /PortalCertApp/api/session/password") < len(log) - 5000
    for secret in (token, password, "Sandbox-Password-2026", "Wrong-Password-Attempt-1"):
        assert secret not in log
