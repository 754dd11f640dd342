"""Many clients at the same moment: every read-modify-write is serialised (one SQLite write transaction)."""

import threading

import requests

CLIENTS = 50


def _in_parallel(box, entity_name, method, path, body_for, headers=None):
    """CLIENTS threads, each with its own TLS connection, released together; returns the answers."""
    entity = box.pki["entities"][entity_name]
    sessions = []
    for _ in range(CLIENTS):
        session = requests.Session()
        session.trust_env = False
        session.verify = box.info["ca_bundle"]
        session.cert = (entity["cert"], entity["key"])
        session.headers.update(headers or {})
        # Connect (TLS handshake with the client certificate) before the barrier, so the calls really collide.
        assert session.get(box.info["portal_url"] + "/api/whoami", timeout=60).status_code == 200
        sessions.append(session)
    barrier = threading.Barrier(CLIENTS)
    answers = [None] * CLIENTS

    def worker(index):
        barrier.wait()
        try:
            answers[index] = sessions[index].request(method, box.info["portal_url"] + path, json=body_for(index),
                                                     timeout=120)
        except requests.RequestException as exc:  # reported below, with the others
            answers[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    errors = [a for a in answers if isinstance(a, Exception)]
    assert not errors, errors[:3]
    return answers


def test_fifty_concurrent_registrations_record_exactly_one(sandbox):
    box = sandbox(registration_delay=30)
    browser = box.client("foces-01").activate()
    answers = _in_parallel(box, "foces-01", "POST", "/api/certificate/registration", lambda i: {},
                           headers={"Authorization": browser.session.headers["Authorization"]})
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [202] + [409] * (CLIENTS - 1)
    assert {a.json()["error"] for a in answers if a.status_code == 409} == {"registration_in_progress"}
    counters = box.account_counters(browser.user_id)
    assert counters["registrations_requested"] == 1
    assert counters["writes"] == 2  # the password change and the one registration


def test_fifty_concurrent_wrong_passwords_lock_after_exactly_five(sandbox):
    box = sandbox()
    user_id = box.client("foces-02").activate().user_id
    answers = _in_parallel(box, "foces-02", "POST", "/api/session",
                           lambda i: {"user_id": user_id, "password": "wrong-password-%d" % i})
    statuses = [a.status_code for a in answers]
    assert statuses.count(401) == 4 and statuses.count(423) == CLIENTS - 4
    remaining = sorted(a.json()["attempts_remaining"] for a in answers if a.status_code == 401)
    assert remaining == [1, 2, 3, 4]
    counters = box.account_counters(user_id)
    assert counters["locked"] is True and counters["logins_failed"] == CLIENTS
