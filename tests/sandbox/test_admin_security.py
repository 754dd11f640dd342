"""The admin API needs the token from sandbox.json and a loopback Host (security review, issue 10, item 17):
another local user cannot unlock accounts or change faults, and a web page cannot reach it by DNS
rebinding (its requests name the page's host)."""

import os
import stat
import socket

import pytest
import requests

from dms_sandbox.adminclient import AdminClient, admin_headers

CALLS = [("GET", "/health"), ("GET", "/counters"), ("GET", "/faults"), ("POST", "/faults"), ("POST", "/mpc"),
         ("POST", "/reset-counters"), ("GET", "/accounts/CVR_12345678_UI_x"),
         ("POST", "/accounts/CVR_12345678_UI_x/unlock")]


def _raw(info, method, path, headers):
    session = requests.Session()
    session.trust_env = False
    return session.request(method, info["admin_url"] + path, headers=headers, json={}, timeout=10)


def test_sandbox_json_is_private_and_holds_a_random_token(sandbox):
    first, second = sandbox(), sandbox()
    path = os.path.join(first.state, "sandbox.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(first.info["admin_token"]) >= 32 and first.info["admin_token"] != second.info["admin_token"]


@pytest.mark.parametrize("method,path", CALLS)
def test_every_call_needs_the_token(sandbox, method, path):
    box = sandbox()
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": box.info["admin_token"]},
                    {"Authorization": "Bearer " + box.info["admin_token"][:-1]}):
        answer = _raw(box.info, method, path, headers)
        assert answer.status_code == 401, (headers, answer.text)
        assert answer.json()["error"] == "admin_token_required"
        assert box.info["admin_token"] not in answer.text


def test_faults_and_unlocks_without_the_token_change_nothing(sandbox):
    box = sandbox()
    before = box.admin("GET", "/faults").json()
    refused = _raw(box.info, "POST", "/faults", {})
    assert refused.status_code == 401
    session = requests.Session()
    session.trust_env = False
    assert session.post(box.info["admin_url"] + "/faults", json={"portal": {"maintenance": True}},
                        timeout=10).status_code == 401
    assert box.admin("GET", "/faults").json() == before


@pytest.mark.parametrize("host", ["attacker.example:%(port)d", "attacker.example", "127.0.0.1:1",
                                  "localhost", "127.0.0.2:%(port)d", ""])
def test_a_foreign_host_header_is_refused_even_with_the_token(sandbox, host):
    """DNS rebinding: a page on attacker.example resolves its name to 127.0.0.1; the browser then sends
    Host: attacker.example:<port>."""
    box = sandbox()
    port = int(box.info["admin_url"].rsplit(":", 1)[1])
    request = ("GET /counters HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n"
               % (host % {"port": port}, box.info["admin_token"])).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
    assert b"host_not_allowed" in answer and b'"accounts"' not in answer


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_loopback_host_with_the_token_is_served(sandbox, name):
    box = sandbox()
    info = dict(box.info, admin_url=box.info["admin_url"].replace("127.0.0.1", name))
    assert AdminClient(info).call("GET", "/health") == {"ok": True}
    assert _raw(info, "GET", "/counters", admin_headers(info)).status_code == 200


def test_the_token_never_reaches_the_log(sandbox):
    box = sandbox()
    token = box.info["admin_token"]
    box.admin("GET", "/counters")
    _raw(box.info, "GET", "/counters", {"Authorization": "Bearer " + token + "x"})
    box.stop()
    log = box.log()
    assert "/counters" in log and token not in log
