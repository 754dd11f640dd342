"""The portal's second API shape (`--portal-api variant`) over HTTPS, driven as a browser would: other
paths, camelCase fields in a data envelope, a cookie session whose state-changing calls need the
X-XSRF-TOKEN header, errors as {"errors": [...]}; the rules are the default portal's."""

import time

import requests

API = "/rest/v2"
NEW_PASSWORD = "Variant-Password-2026"


class VariantBrowser:
    """One browser of the variant: a client certificate, a cookie jar, the XSRF header on writes."""

    def __init__(self, box, name):
        self.box = box
        self.user_id = box.pki["entities"][name]["portal_user_id"]
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = box.info["ca_bundle"]
        entity = box.pki["entities"][name]
        self.session.cert = (entity["cert"], entity["key"])

    def call(self, method, path, body=None, xsrf=True):
        headers = {}
        if xsrf and self.session.cookies.get("XSRF-TOKEN"):
            headers["X-XSRF-TOKEN"] = self.session.cookies["XSRF-TOKEN"]
        return self.session.request(method, self.box.info["portal_url"] + path, json=body, headers=headers,
                                    timeout=30)

    def logon(self, password=None):
        return self.call("POST", API + "/auth/logon", {"username": self.user_id, "password": password or self.user_id})


def _error(answer):
    errors = answer.json()["errors"]
    assert len(errors) == 1
    return errors[0]


def test_the_guide_in_the_variant_shape(sandbox):
    box = sandbox("--portal-api", "variant", registration_delay=2)
    assert box.info["portal_api"] == "variant"
    browser = VariantBrowser(box, "foces-01")

    me = browser.call("GET", API + "/me")
    assert me.status_code == 200
    assert me.json()["data"]["userId"] == browser.user_id and me.json()["data"]["accountState"] == "NEW"

    logon = browser.logon()
    assert logon.status_code == 200 and logon.json()["data"]["mustChangePassword"] is True
    assert "token" not in logon.text  # the session is in the cookie, not in the answer
    set_cookies = logon.raw.headers.getlist("Set-Cookie")
    assert any(c.startswith("SESSION=") and "HttpOnly" in c and "Secure" in c for c in set_cookies)
    assert any(c.startswith("XSRF-TOKEN=") and "HttpOnly" not in c for c in set_cookies)  # the page reads it

    # A state-changing call without the XSRF header is refused and changes nothing.
    change = {"oldPassword": browser.user_id, "newPassword": NEW_PASSWORD}
    refused = browser.call("POST", API + "/auth/password", change, xsrf=False)
    assert refused.status_code == 403 and _error(refused)["code"] == "CSRF_TOKEN_INVALID"
    assert box.account_counters(browser.user_id)["account_state"] == "new"
    assert _error(browser.call("GET", API + "/certificate"))["code"] == "PASSWORD_EXPIRED"
    assert browser.call("POST", API + "/auth/password", change).status_code == 204

    overview = browser.call("GET", API + "/certificate").json()["data"]
    assert overview["registration"]["status"] == "NOT_REGISTERED" and overview["gatewayUser"] is None
    assert overview["accountState"] == "ACTIVE" and overview["contactEmail"] is None
    missing = browser.call("GET", API + "/certificate/credentials")
    assert missing.status_code == 409 and _error(missing)["code"] == "CERTIFICATE_NOT_REGISTERED"

    updated = browser.call("PATCH", API + "/certificate", {"seNumber": "12345678"})
    assert updated.status_code == 200 and updated.json()["data"]["seNumber"] == "12345678"
    registered = browser.call("POST", API + "/certificate/registration", {})
    assert registered.status_code == 202
    assert registered.json() == {"data": {"registration": {"status": "PENDING"}}}
    again = browser.call("POST", API + "/certificate/registration", {})
    assert again.status_code == 409 and _error(again)["code"] == "REGISTRATION_PENDING"
    assert _error(again)["meta"] == {"registrationStatus": "PENDING"}

    deadline = time.time() + 20
    while browser.call("GET", API + "/certificate").json()["data"]["registration"]["status"] != "REGISTERED":
        assert time.time() < deadline
        time.sleep(0.2)
    overview = browser.call("PATCH", API + "/certificate", {"interfaces": ["AS4"]}).json()["data"]
    assert overview["interfaces"] == ["AS4"] and overview["gatewayUser"]
    credentials = browser.call("GET", API + "/certificate/credentials").json()["data"]
    assert credentials["username"] == overview["gatewayUser"] and len(credentials["password"]) >= 12

    counters = box.account_counters(browser.user_id)
    assert counters["registrations_requested"] == 1 and counters["writes"] == 4  # password, SE, request, interfaces

    assert browser.call("POST", API + "/auth/logoff").status_code == 204
    assert browser.session.cookies.get("SESSION") is None  # expired by the answer
    assert _error(browser.call("GET", API + "/certificate"))["code"] == "UNAUTHENTICATED"


def test_errors_in_the_variant_shape(sandbox):
    box = sandbox("--portal-api", "variant")
    browser = VariantBrowser(box, "foces-02")
    wrong = browser.logon("Not-The-Password-1")
    assert wrong.status_code == 401
    assert _error(wrong)["code"] == "BAD_CREDENTIALS" and _error(wrong)["meta"] == {"attemptsRemaining": 4}
    assert "Not-The-Password-1" not in wrong.text

    assert browser.logon().status_code == 200
    two = browser.call("PATCH", API + "/certificate", {"seNumber": "12345678", "contactEmail": "a@example.dk"})
    assert two.status_code == 400 and _error(two)["code"] == "BAD_REQUEST"
    assert box.account_counters(browser.user_id)["writes"] == 0

    # The XSRF token of another session does not do.
    other = VariantBrowser(box, "foces-03")
    assert other.logon().status_code == 200
    browser.session.cookies.set("XSRF-TOKEN", other.session.cookies["XSRF-TOKEN"], domain="127.0.0.1",
                                path="/PortalCertApp")
    change = {"oldPassword": browser.user_id, "newPassword": NEW_PASSWORD}
    stolen = browser.call("POST", API + "/auth/password", change)
    assert stolen.status_code == 403 and _error(stolen)["code"] == "CSRF_TOKEN_INVALID"


def test_each_shape_answers_only_its_own_paths(sandbox):
    variant = sandbox("--portal-api", "variant")
    browser = VariantBrowser(variant, "foces-04")
    default_path = browser.call("GET", "/api/whoami")
    assert default_path.status_code == 404 and _error(default_path)["code"] == "NOT_FOUND"
    wrong_method = browser.call("DELETE", API + "/me")
    assert wrong_method.status_code == 405 and _error(wrong_method)["code"] == "METHOD_NOT_ALLOWED"

    default = sandbox()
    assert default.info["portal_api"] == "default"
    assert default.client("foces-04").get(API + "/me").json()["error"] == "not_found"


def test_injected_faults_answer_in_the_variant_shape(sandbox):
    box = sandbox("--portal-api", "variant", "--portal-error-rate", "1")
    answer = VariantBrowser(box, "foces-05").call("GET", API + "/me")
    assert answer.status_code == 503 and _error(answer)["code"] == "SERVICE_UNAVAILABLE"
