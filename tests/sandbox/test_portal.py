"""The certificate portal over HTTPS: the guide's manual procedure and every rule of docs/portal-api.md."""

import time

import pytest
import requests

NEW_PASSWORD = "Sandbox-Password-2026"  # what conftest.PortalClient.activate() sets


def test_full_manual_procedure_of_the_guide(sandbox):
    box = sandbox(registration_delay=3)
    browser = box.client("foces-01")
    user_id = browser.user_id

    # Select the certificate: the portal shows whose it is.
    whoami = browser.get("/api/whoami")
    assert whoami.status_code == 200
    assert whoami.json()["user_id"] == user_id
    assert whoami.json()["account_state"] == "new"
    assert whoami.json()["legal_identifier"] == "CVR_" + box.pki["entities"]["foces-01"]["cvr"]

    # First logon with the user id as password forces a password change.
    logon = browser.logon()
    assert logon.status_code == 200 and logon.json()["password_change_required"] is True
    assert browser.get("/api/certificate").json()["error"] == "password_change_required"
    assert browser.post("/api/session/password", {"current_password": user_id,
                                                  "new_password": NEW_PASSWORD}).status_code == 204

    overview = browser.get("/api/certificate").json()
    assert overview["registration_status"] == "not_registered"
    assert overview["gateway_user"] is None
    assert overview["type"] == "CVR"
    assert overview["account"] == "UI_" + box.pki["entities"]["foces-01"]["uuid"]
    assert browser.get("/api/certificate/gateway-credentials").json()["error"] == "not_registered"

    # SE-number before registering, as the guide says; then "Register certificate".
    assert browser.put("/api/certificate/se-number", {"se_number": "12345678"}).json()["se_number"] == "12345678"
    started = time.time()
    register = browser.post("/api/certificate/registration", {})
    assert register.status_code == 202 and register.json() == {"registration_status": "in_progress"}

    # "Refresh" until registered (registration delay 1 s in this sandbox).
    statuses = []
    while time.time() - started < 20:
        statuses.append(browser.get("/api/certificate").json()["registration_status"])
        if statuses[-1] == "registered":
            break
        time.sleep(0.2)
    assert statuses[0] == "in_progress" and statuses[-1] == "registered"
    assert time.time() - started >= 2.9

    assert browser.put("/api/certificate/email", {"email": "do-not-write@skat.dk"}).json()["email"] == \
        "do-not-write@skat.dk"
    overview = browser.put("/api/certificate/interfaces", {"interfaces": ["AS4"]}).json()
    assert overview["interfaces"] == ["AS4"]
    assert overview["gateway_user"] == user_id  # UI form by default

    credentials = browser.get("/api/certificate/gateway-credentials")
    assert credentials.status_code == 200
    assert credentials.json()["gateway_user"] == overview["gateway_user"]
    assert len(credentials.json()["gateway_password"]) >= 16

    assert browser.delete("/api/session").status_code == 204
    assert browser.get("/api/certificate").json()["error"] == "invalid_session"

    counters = box.account_counters(user_id)
    assert counters["logins_ok"] == 1 and counters["logins_failed"] == 0
    assert counters["registrations_requested"] == 1
    assert counters["registration_status"] == "registered"
    assert counters["writes"] == 5  # password, SE-number, registration, e-mail, interfaces


def test_forced_password_change_comes_before_everything(sandbox):
    box = sandbox()
    browser = box.client("foces-01")
    browser.logon()
    for method, path, body in (("GET", "/api/certificate", None), ("POST", "/api/certificate/registration", {}),
                               ("PUT", "/api/certificate/se-number", {"se_number": "12345678"}),
                               ("GET", "/api/certificate/gateway-credentials", None)):
        answer = browser.call(method, path, body)
        assert (answer.status_code, answer.json()["error"]) == (403, "password_change_required"), path
    weak = {"short": "Short-1", "contains the user id": "x" + browser.user_id,
            "same as current": browser.user_id}
    for reason, password in weak.items():
        answer = browser.post("/api/session/password", {"current_password": browser.user_id,
                                                        "new_password": password})
        assert (answer.status_code, answer.json()["error"]) == (400, "weak_password"), reason
    assert box.account_counters(browser.user_id)["writes"] == 0
    browser.post("/api/session/password", {"current_password": browser.user_id, "new_password": NEW_PASSWORD})
    assert browser.get("/api/certificate").status_code == 200
    # The user id is never a valid password again.
    again = box.client("foces-01")
    assert again.logon().status_code == 401
    answer = again.logon(NEW_PASSWORD)
    assert answer.status_code == 200 and answer.json()["password_change_required"] is False


def test_lockout_after_five_failures_only_a_person_unlocks(sandbox):
    box = sandbox()
    browser = box.client("foces-01").activate()
    remaining = []
    for _ in range(4):
        answer = browser.logon("wrong-password-123")
        assert answer.status_code == 401 and answer.json()["error"] == "invalid_credentials"
        remaining.append(answer.json()["attempts_remaining"])
    assert remaining == [4, 3, 2, 1]
    fifth = browser.logon("wrong-password-123")
    assert (fifth.status_code, fifth.json()["error"]) == (423, "account_locked")
    # Locked: even the right password fails, the existing session stops working, whoami shows it.
    assert browser.logon(NEW_PASSWORD).status_code == 423
    assert browser.get("/api/certificate").status_code == 423
    assert browser.get("/api/whoami").json()["account_state"] == "locked"
    counters = box.account_counters(browser.user_id)
    assert counters["locked"] is True and counters["logins_failed"] == 6
    # Nothing the client can do lifts it; a person can.
    time.sleep(0.5)
    assert browser.logon(NEW_PASSWORD).status_code == 423
    assert box.admin("POST", "/accounts/%s/unlock" % browser.user_id).status_code == 200
    assert browser.logon(NEW_PASSWORD).status_code == 200
    assert box.account_counters(browser.user_id)["locked"] is False


def test_failures_must_be_in_a_row_to_lock(sandbox):
    box = sandbox()
    browser = box.client("foces-01").activate()
    for _ in range(4):
        assert browser.logon("wrong-password-123").status_code == 401
    assert browser.logon(NEW_PASSWORD).status_code == 200
    for _ in range(4):
        assert browser.logon("wrong-password-123").status_code == 401
    assert box.account_counters(browser.user_id)["locked"] is False


def test_new_account_locks_too_and_unlock_keeps_it_new(sandbox):
    box = sandbox()
    browser = box.client("voces-01")
    for _ in range(5):
        browser.logon("not-the-user-id")
    assert browser.logon().status_code == 423
    box.admin("POST", "/accounts/%s/unlock" % browser.user_id)
    answer = browser.logon()
    assert answer.status_code == 200 and answer.json()["password_change_required"] is True


def test_logon_as_another_user_than_the_certificate(sandbox):
    box = sandbox()
    browser = box.client("foces-01")
    other = box.pki["entities"]["foces-02"]["portal_user_id"]
    answer = browser.post("/api/session", {"user_id": other, "password": other})
    assert (answer.status_code, answer.json()["error"]) == (403, "user_mismatch")


def test_se_number_must_be_8_digits(sandbox):
    box = sandbox()
    browser = box.client("foces-01").activate()
    for value in ["1234567", "123456789", "1234567a", "12 45678", 12345678, " 12345678", "\u0661" * 8]:
        answer = browser.put("/api/certificate/se-number", {"se_number": value})
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_se_number"), value
    assert box.account_counters(browser.user_id)["writes"] == 1  # the password change only
    assert browser.get("/api/certificate").json()["se_number"] is None


def test_se_number_set_and_cleared(sandbox):
    box = sandbox()
    browser = box.client("foces-01").activate()
    assert browser.put("/api/certificate/se-number", {"se_number": "87654321"}).json()["se_number"] == "87654321"
    assert browser.put("/api/certificate/se-number", {"se_number": None}).json()["se_number"] is None


def test_email_must_be_one_address(sandbox):
    box = sandbox()
    browser = box.client("foces-01").activate()
    for value in ["not-an-address", "a@b", "one@example.dk,two@example.dk", "x y@example.dk", 7]:
        answer = browser.put("/api/certificate/email", {"email": value})
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_email"), value
    assert browser.put("/api/certificate/email", {"email": "it@example.dk"}).json()["email"] == "it@example.dk"
    assert browser.put("/api/certificate/email", {"email": None}).json()["email"] is None


def test_interfaces_only_once_registered_and_only_known_ones(sandbox):
    box = sandbox()
    browser = box.client("foces-01").activate()
    answer = browser.put("/api/certificate/interfaces", {"interfaces": ["AS4"]})
    assert (answer.status_code, answer.json()["error"]) == (409, "not_registered")
    browser.register_and_wait()
    for bad in ([], ["SFTP"], ["AS4", "AS4"], "AS4", None):
        answer = browser.put("/api/certificate/interfaces", {"interfaces": bad})
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_interfaces"), bad
    assert browser.put("/api/certificate/interfaces", {"interfaces": ["FTPS", "AS4"]}).json()["interfaces"] == \
        ["AS4", "FTPS"]


def test_registration_status_transitions_and_conflicts(sandbox):
    # Held (registration_stuck) while the in-progress answers are checked, so a slow machine cannot race it.
    box = sandbox("--registration-stuck", registration_delay=0.5)
    browser = box.client("foces-01").activate()
    assert browser.get("/api/certificate").json()["registration_status"] == "not_registered"
    assert browser.post("/api/certificate/registration", {}).status_code == 202
    second = browser.post("/api/certificate/registration", {})
    assert second.status_code == 409
    assert second.json()["error"] == "registration_in_progress"
    assert second.json()["registration_status"] == "in_progress"
    assert browser.get("/api/certificate").json()["registration_status"] == "in_progress"
    assert browser.get("/api/certificate/gateway-credentials").status_code == 409
    assert browser.put("/api/certificate/interfaces", {"interfaces": ["AS4"]}).status_code == 409
    box.set_faults(portal={"registration_stuck": False})
    assert browser.wait_registered()["registration_status"] == "registered"
    third = browser.post("/api/certificate/registration", {})
    assert (third.status_code, third.json()["error"]) == (409, "already_registered")
    assert box.account_counters(browser.user_id)["registrations_requested"] == 1


def test_stuck_registration_never_completes_until_released(sandbox):
    box = sandbox("--registration-stuck", registration_delay=0.2)
    browser = box.client("foces-01").activate()
    browser.post("/api/certificate/registration", {})
    time.sleep(1)
    assert browser.get("/api/certificate").json()["registration_status"] == "in_progress"
    assert box.account_counters(browser.user_id)["registration_status"] == "in_progress"
    box.set_faults(portal={"registration_stuck": False})
    assert browser.get("/api/certificate").json()["registration_status"] == "registered"


def test_ur_form_of_the_guide_screenshot(sandbox):
    box = sandbox("--gateway-user-form", "UR")
    browser = box.client("foces-01").activate()
    overview = browser.register_and_wait()
    entity = box.pki["entities"]["foces-01"]
    assert overview["gateway_user"] == "CVR_%s_UR_%s" % (entity["cvr"], entity["uuid"])
    assert overview["account"] == "UR_" + entity["uuid"]
    assert overview["user_id"] == entity["portal_user_id"]  # the logon user id keeps the UI form


def test_client_certificate_is_required(sandbox):
    box = sandbox()
    answer = box.client(None).get("/api/whoami")
    assert (answer.status_code, answer.json()["error"]) == (401, "client_certificate_required")


def _tls_refused(browser):
    with pytest.raises(requests.exceptions.ConnectionError):
        browser.get("/api/whoami")


@pytest.mark.parametrize("name", ["broken.unknown_ca", "broken.expired", "broken.not_yet_valid"])
def test_untrusted_or_invalid_client_certificates_fail_the_handshake(sandbox, name):
    box = sandbox()
    assert box.client("foces-01").get("/api/whoami").status_code == 200  # the sandbox itself is fine
    _tls_refused(box.client(name))


def test_client_ca_adds_an_issuing_ca(sandbox, pki):
    box = sandbox("--client-ca", pki["unknown_ca_bundle"])
    answer = box.client("broken.unknown_ca").get("/api/whoami")
    assert answer.status_code == 200
    assert answer.json()["user_id"] == pki["broken"]["unknown_ca"]["portal_user_id"]


def test_trusted_certificate_that_is_not_oces3(sandbox):
    box = sandbox()
    answer = box.client("broken.non_oces").get("/api/whoami")
    assert (answer.status_code, answer.json()["error"]) == (403, "not_oces3")


def test_oces2_certificate_is_refused_as_such(sandbox, pki):
    box = sandbox()
    _tls_refused(box.client("broken.oces2"))  # TRUST2408 is not trusted
    trust2408 = pki["root_ca"]["cert"].replace("root.pem", "trust2408.pem")
    box = sandbox("--client-ca", trust2408)
    answer = box.client("broken.oces2").get("/api/whoami")
    assert (answer.status_code, answer.json()["error"]) == (403, "not_oces3")
    assert "OCES2" in answer.json()["detail"]


def test_session_is_bound_to_its_certificate(sandbox):
    box = sandbox()
    alice = box.client("foces-01").activate()
    mallory = box.client("foces-02")
    mallory.session.headers["Authorization"] = alice.session.headers["Authorization"]
    answer = mallory.get("/api/certificate")
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_session")
    assert box.client("foces-02").get("/api/certificate").json()["error"] == "not_logged_on"


def test_session_expires(sandbox):
    box = sandbox("--session-lifetime", "3")
    browser = box.client("foces-01").activate()  # the password change worked with the fresh token
    time.sleep(3.2)
    answer = browser.get("/api/certificate")
    assert (answer.status_code, answer.json()["error"]) == (401, "session_expired")


def test_unknown_paths_and_methods(sandbox):
    box = sandbox()
    browser = box.client("foces-01")
    assert browser.get("/api/nothing").status_code == 404
    assert browser.call("DELETE", "/api/whoami").status_code == 405
    answer = browser.call("POST", "/api/session", data=b"{not json", headers={"Content-Type": "application/json"})
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_json")
