"""State survives: SIGKILL mid-registration, restart on the same state directory, nothing lost."""

import signal
import time

NEW_PASSWORD = "Sandbox-Password-2026"  # what conftest.PortalClient.activate() sets


def test_sigkill_mid_registration_keeps_everything_and_still_completes(sandbox):
    box = sandbox(registration_delay=3)
    bob = box.client("voces-01")
    for _ in range(5):
        bob.logon("wrong-password-123")  # locked
    alice = box.client("foces-01").activate()
    token = alice.session.headers["Authorization"]
    alice.put("/api/certificate/se-number", {"se_number": "11223344"})
    box.admin("POST", "/mpc", {"gateway_user": alice.user_id, "mpc": "urn:test:mpc"})
    # The registration request is the last thing before the kill: it is certainly pending then.
    assert alice.post("/api/certificate/registration", {}).json() == {"registration_status": "in_progress"}

    assert box.stop(signal.SIGKILL) == -signal.SIGKILL
    box.start()  # same state directory; ports may differ, sandbox.json says which

    alice = box.client("foces-01")
    alice.session.headers["Authorization"] = token  # sessions survive too
    overview = alice.get("/api/certificate").json()
    assert overview["se_number"] == "11223344"
    assert overview["registration_status"] in ("in_progress", "registered")
    deadline = time.time() + 20
    while overview["registration_status"] != "registered" and time.time() < deadline:
        time.sleep(0.2)
        overview = alice.get("/api/certificate").json()
    assert overview["registration_status"] == "registered"
    assert alice.get("/api/certificate/gateway-credentials").status_code == 200

    fresh = box.client("foces-01")
    assert fresh.logon().status_code == 401  # the password change was kept: the user id no longer works
    assert fresh.logon(NEW_PASSWORD).status_code == 200
    assert bob.logon().status_code == 423  # the lockout was kept
    counters = box.counters()
    assert counters["accounts"][alice.user_id]["registrations_requested"] == 1
    assert counters["accounts"][bob.user_id]["locked"] is True
    assert counters["gateway"]["waiting"] == {alice.user_id: {"urn:test:mpc": 1}}


def test_registration_completes_after_a_restart_even_when_due_while_down(sandbox):
    box = sandbox(registration_delay=1)
    alice = box.client("foces-01").activate()
    alice.post("/api/certificate/registration", {})
    box.stop(signal.SIGKILL)
    time.sleep(1.2)  # the registration falls due while nothing runs
    box.start()
    assert box.account_counters(alice.user_id)["registration_status"] == "registered"
