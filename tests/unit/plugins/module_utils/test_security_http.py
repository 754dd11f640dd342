# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Security review (issue 10) items of _http and _portal_client, against hostile HTTPS servers on
loopback: redirects (1), https only (2), answer shapes (3, 11), answer size (12), the logon resend
(14) and the requests adapter hook that carries ca_path and the client certificate (10)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc

import pytest

from ansible_collections.dkcustoms.dms.plugins.module_utils import _http, _oces
from ansible_collections.dkcustoms.dms.plugins.module_utils._opt_connection import RetryPolicy
from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_client as portal

sys.path.insert(0, os.path.dirname(__file__))
from _hostile import Sink  # noqa: E402  pylint: disable=wrong-import-position

PASSWORD = "Portal-Password-Secret-77"
USER_ID = "CVR_12345678_UI_175a859d-ed76-45af-828f-3a69691a7157"
BASE_PATH = "/PortalCertApp"


@pytest.fixture
def sink():
    listener = Sink()
    yield listener
    listener.close()


_CLIENT_CERTS = {}


def _client_cert(pki, name="foces-01"):
    """The entity's certificate and key, read once (PKCS#12 decryption is slow)."""
    if name not in _CLIENT_CERTS:
        with open(pki["entities"][name]["p12"], "rb") as handle:
            bundle = _oces.load_bundle(handle.read(), passphrase=pki["passphrase"])
        _CLIENT_CERTS[name] = _http.client_cert_from_bundle(bundle)
    return _CLIENT_CERTS[name]


def _session(pki, ca_path="server", client_cert=None, retries=None):
    """A session as _opt_connection builds it; ``retries=None``: no policy, as _connectivity posts AS4 messages."""
    ca_path = pki["server"]["ca_bundle"] if ca_path == "server" else ca_path
    context = _http.create_ssl_context(ca_path=ca_path, client_cert=client_cert)
    policy = RetryPolicy(retries, sleep=lambda seconds: None) if retries is not None else None
    return _http.create_session(context, 5, policy=policy)


def _portal(pki, server, retries=5):
    return portal.PortalClient(_session(pki, client_cert=_client_cert(pki), retries=retries), server.url + BASE_PATH)


# -- 1. redirects ------------------------------------------------------------------------------------
def test_308_to_plain_http_never_carries_the_logon_there(pki, hostile, sink):
    target = "http://127.0.0.1:%d/steal?user=%s" % (sink.port, USER_ID)
    server = hostile({("POST", BASE_PATH + "/api/session"): (308, {"Location": target}, {})})
    client = _portal(pki, server)

    with pytest.raises(portal.PortalError) as refused:
        client.login(USER_ID, PASSWORD)

    time.sleep(0.3)  # give a re-sent request time to arrive
    assert sink.connections == 0 and sink.received == b""
    assert server.paths() == ["POST %s/api/session" % BASE_PATH]
    message = str(refused.value)
    assert refused.value.code == "redirect"
    assert "HTTP 308" in message and "http://127.0.0.1:%d" % sink.port in message and "Fix:" in message
    assert "steal" not in message and "user=" not in message
    assert PASSWORD not in message and client.token is None


def test_302_answer_is_not_taken_as_the_logon(pki, hostile):
    server = hostile({
        ("POST", BASE_PATH + "/api/session"): (302, {"Location": BASE_PATH + "/elsewhere"}, {}),
        ("GET", BASE_PATH + "/elsewhere"): (200, {}, {"token": "foreign-token", "password_change_required": False}),
    })
    client = _portal(pki, server)

    with pytest.raises(portal.PortalError) as refused:
        client.login(USER_ID, PASSWORD)

    assert refused.value.code == "redirect" and client.token is None
    assert server.paths() == ["POST %s/api/session" % BASE_PATH]


def test_gateway_session_does_not_follow_a_redirect_either(pki, hostile, sink):
    server = hostile({("POST", "/exchange/u"): (307, {"Location": "http://127.0.0.1:%d/x" % sink.port}, b"")})
    session = _session(pki)  # how _connectivity posts AS4 messages

    with pytest.raises(_http.RedirectError):
        session.post(server.url + "/exchange/u", data=b"<soap/>")

    time.sleep(0.3)
    assert sink.connections == 0


# -- 2. https only -------------------------------------------------------------------------------------
def test_portal_url_must_be_https(pki, sink):
    with pytest.raises(portal.PortalError) as refused:
        portal.PortalClient(_session(pki, retries=5), "http://127.0.0.1:%d/PortalCertApp" % sink.port)
    assert refused.value.code == "invalid_portal_url" and "https://" in str(refused.value)
    with pytest.raises(_http.InsecureURLError):
        _session(pki, retries=5).post("http://127.0.0.1:%d/api/session" % sink.port, json={"password": PASSWORD})
    time.sleep(0.3)
    assert sink.connections == 0


# -- 3 and 11. answers of the wrong shape --------------------------------------------------------------
@pytest.mark.parametrize("answer", [{"status": "ok"}, [USER_ID, PASSWORD], {"gateway_user": USER_ID},
                                    {"gateway_user": "", "gateway_password": "x"},
                                    {"gateway_user": USER_ID, "gateway_password": None},
                                    {"gateway_user": 7, "gateway_password": "x"}])
def test_gateway_credentials_of_the_wrong_shape_are_invalid(pki, hostile, answer):
    server = hostile({("GET", BASE_PATH + "/api/certificate/gateway-credentials"): (200, {}, answer)})
    with pytest.raises(portal.PortalError) as invalid:
        _portal(pki, server).gateway_credentials()
    assert invalid.value.code == "invalid_answer" and PASSWORD not in str(invalid.value)


@pytest.mark.parametrize("answer", [{"user_id": USER_ID, "account_state": "suspended"},
                                    {"user_id": USER_ID},
                                    {"account_state": "active"},
                                    {"user_id": "somebody", "account_state": "active"},
                                    [USER_ID]])
def test_whoami_without_a_known_state_and_user_id_is_invalid(pki, hostile, answer):
    server = hostile({("GET", BASE_PATH + "/api/whoami"): (200, {}, answer)})
    with pytest.raises(portal.PortalError) as invalid:
        _portal(pki, server).whoami()
    assert invalid.value.code == "invalid_answer"


@pytest.mark.parametrize("status", ["registred", None, "REGISTERED"])
def test_overview_with_an_unknown_registration_status_is_invalid(pki, hostile, status):
    server = hostile({("GET", BASE_PATH + "/api/certificate"): (200, {}, {"registration_status": status,
                                                                          "interfaces": []})})
    with pytest.raises(portal.PortalError) as invalid:
        _portal(pki, server).overview()
    assert invalid.value.code == "invalid_answer"


# -- 12. answer size -----------------------------------------------------------------------------------
FORTY_MB = 40 * 1024 * 1024


@pytest.mark.parametrize("announce", [False, True], ids=["chunked", "content-length"])
def test_a_40_mb_answer_is_cut_off_at_the_cap_without_growing_memory(pki, hostile, announce):
    server = hostile({("GET", BASE_PATH + "/api/whoami"): lambda handler, body: handler.stream(FORTY_MB, announce=announce)})
    client = _portal(pki, server)
    tracemalloc.start()
    try:
        with pytest.raises(portal.PortalError) as too_large:
            client.whoami()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert too_large.value.code == "answer_too_large"
    assert "larger than %d bytes" % _http.DEFAULT_MAX_ANSWER_BYTES in str(too_large.value)
    # Reading it whole would hold 40 MB (and more while decoding); the cap holds about 1 MB.
    assert peak < 6 * 1024 * 1024, "peak %d bytes" % peak


def test_gateway_answers_are_capped_too(pki, hostile):
    server = hostile({("POST", "/exchange/u"): lambda handler, body: handler.stream(FORTY_MB)})
    session = _session(pki)
    started = time.monotonic()
    with pytest.raises(_http.AnswerTooLargeError):
        session.post(server.url + "/exchange/u", data=b"<soap/>")
    assert time.monotonic() - started < 10
    assert server.httpd.streamed < FORTY_MB  # the client hung up early


def test_an_answer_under_the_cap_is_read_whole(pki, hostile):
    # The fields the client reads come after the padding: they parse only from the whole answer.
    document = {"padding": "x" * 900000, "user_id": USER_ID, "account_state": "active"}
    server = hostile({("GET", BASE_PATH + "/api/whoami"): (200, {}, document)})
    assert _portal(pki, server).whoami() == {"user_id": USER_ID, "account_state": "active",
                                             "common_name": None, "expiry_date": None}


# -- 14. one logon resend at most -------------------------------------------------------------------
@pytest.mark.parametrize("status", [503, 429])
def test_a_logon_is_sent_again_at_most_once(pki, hostile, status):
    answers = [(status, {"Retry-After": "0"}, {"error": "service_unavailable"})] * 3 + \
        [(200, {}, {"token": "t", "password_change_required": False})]

    def scripted(handler, body):
        handler.send(*answers.pop(0))

    server = hostile({("POST", BASE_PATH + "/api/session"): scripted})
    client = _portal(pki, server, retries=5)

    with pytest.raises(portal.PortalError) as failed:
        client.login(USER_ID, PASSWORD)

    assert server.paths() == ["POST %s/api/session" % BASE_PATH] * 2
    assert failed.value.status == status and "after 2 attempts" in str(failed.value)
    assert client.session.stats == {"attempts": 2, "retries": 1}


def test_replay_safe_calls_still_use_every_retry(pki, hostile):
    answers = [(503, {"Retry-After": "0"}, {})] * 3 + [(200, {}, {"user_id": USER_ID, "account_state": "new"})]
    server = hostile({("GET", BASE_PATH + "/api/whoami"): lambda handler, body: handler.send(*answers.pop(0))})
    assert _portal(pki, server, retries=5).whoami()["account_state"] == "new"
    assert len(server.log) == 4


# -- 10. requests hands our SSL context (ca_path, client certificate) to urllib3 -----------------------
def test_the_adapter_hook_carries_ca_path_and_the_client_certificate(pki, hostile, monkeypatch):
    calls = []
    original = _http._ContextAdapter.build_connection_pool_key_attributes

    def spy(self, request, verify, cert=None):
        calls.append(request.url)
        return original(self, request, verify, cert)

    monkeypatch.setattr(_http._ContextAdapter, "build_connection_pool_key_attributes", spy)
    subjects = []

    def whoami(handler, body):
        peer = handler.connection.getpeercert()
        subjects.append(dict(x[0] for x in peer["subject"]) if peer else None)
        handler.send(200, {}, {"user_id": USER_ID, "account_state": "new"})

    server = hostile({("GET", BASE_PATH + "/api/whoami"): whoami})
    # The server certificate is trusted only through ca_path (certifi does not know the test CA) and
    # the server sees the client certificate only if our context reached the connection.
    assert _portal(pki, server).whoami()["account_state"] == "new"
    assert calls and subjects[0]["serialNumber"] == "UI:DK-O:G:%s" % pki["entities"]["foces-01"]["uuid"]
    wrong_ca = _session(pki, ca_path=pki["ca_bundle"])  # the OCES CAs: not the server's
    with pytest.raises(_http.TLSVerificationError):
        wrong_ca.get(server.url + BASE_PATH + "/api/whoami")


def test_a_requests_without_the_adapter_hook_counts_as_missing():
    """requests < 2.32.2 has no build_connection_pool_key_attributes: ca_path and the client
    certificate would be ignored without a word, so the modules must refuse to run with it (both
    through _http and through the modules' library check, _deps)."""
    code = (
        "import requests.adapters\n"
        "del requests.adapters.HTTPAdapter.build_connection_pool_key_attributes\n"
        "from ansible_collections.dkcustoms.dms.plugins.module_utils import _http\n"
        "from ansible_collections.dkcustoms.dms.plugins.module_utils import _deps\n"
        "print(_http.HAS_REQUESTS, _http.REQUESTS_IMPORT_ERROR, _deps.missing(['requests']))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert result.stdout.startswith("False ") and "requests>=2.32.4" in result.stdout
    assert "[('requests', 'installed, but older than requests>=2.32.4')]" in result.stdout


def test_the_requests_floor_is_the_same_everywhere():
    """Every place that states the requests requirement names the version whose hook we use."""
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
    assert _http.REQUESTS_REQUIREMENT == "requests>=2.32.4"
    with open(os.path.join(root, "meta", "ee-requirements.txt"), encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip().startswith("requests")]
    assert lines == ["requests>=2.32.4"]
    with open(os.path.join(root, "plugins", "doc_fragments", "connection.py"), encoding="utf-8") as handle:
        assert "requests >= 2.32.4" in handle.read()
    import requests  # pylint: disable=import-outside-toplevel
    assert tuple(int(part) for part in requests.__version__.split(".")[:3]) >= (2, 32, 4)
