# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""_portal_profile: loading and validating profiles (every mistake named by call and field before any
request), filling in templates, reading answers and errors."""

from __future__ import annotations

import copy
import json
import os
import sys

import pytest
import yaml

from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_profile as profiles
from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_profile_default

sys.path.insert(0, os.path.dirname(__file__))
import _portal_sandbox as shapes  # noqa: E402  pylint: disable=wrong-import-position

DEFAULT = _portal_profile_default.PROFILE


def _broken(change):
    """The built-in profile with ``change(document)`` applied; the ProfileError message."""
    document = copy.deepcopy(DEFAULT)
    change(document)
    with pytest.raises(profiles.ProfileError) as failed:
        profiles.load(content=document)
    return str(failed.value)


def _variant():
    with open(shapes.VARIANT_PROFILE, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


# -- the shipped profiles ----------------------------------------------------------------------------
def test_the_yaml_template_is_the_built_in_profile():
    with open(os.path.join(shapes.PROFILES_DIR, "default.yml"), encoding="utf-8") as handle:
        assert yaml.safe_load(handle) == DEFAULT


def test_the_shipped_profiles_load():
    assert profiles.default_profile().name == "default"
    assert profiles.default_profile().session.kind == "bearer"
    variant = profiles.load(path=shapes.VARIANT_PROFILE)
    assert variant.name == "sandbox-variant" and variant.session.kind == "cookie"
    assert variant.base_urls == {} and variant.source == shapes.VARIANT_PROFILE


def test_a_json_file_loads_too(tmp_path):
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(_variant()))
    assert profiles.load(path=str(path)).name == "sandbox-variant"


# -- validation: every problem named by its place ------------------------------------------------------
@pytest.mark.parametrize("change, expected", [
    (lambda d: d["calls"].update(loginn=d["calls"]["login"]), "calls.loginn: unknown call"),
    (lambda d: d["calls"].pop("overview"), "calls.overview: missing call"),
    (lambda d: d["calls"]["overview"]["answer"].update(registration_status="data.["),
     "calls.overview.answer.registration_status: 'data.[' is not a valid jmespath expression"),
    (lambda d: d["calls"]["gateway_credentials"]["answer"].pop("gateway_password"),
     "calls.gateway_credentials.answer.gateway_password: missing field"),
    (lambda d: d["calls"]["whoami"]["answer"].update(colour="colour"),
     "calls.whoami.answer.colour: unknown field"),
    (lambda d: d["calls"]["whoami"].pop("answer"), "calls.whoami.answer: missing"),
    (lambda d: d["session"].update(type="jwt"), "session.type: unknown session type 'jwt'"),
    (lambda d: d["session"].pop("token"), "session.token: missing"),
    (lambda d: d["calls"]["login"]["body"].update(password="{pasword}"),
     "calls.login.body: unknown placeholder {pasword} (this call's are {user_id}, {password})"),
    (lambda d: d["calls"]["overview"].update(path="/api/{se_number}"),
     "calls.overview.path: unknown placeholder {se_number}"),
    (lambda d: d["calls"]["whoami"].update(path="/api/who{ami"), "calls.whoami.path: unbalanced"),
    (lambda d: d["calls"]["whoami"].update(path="api/whoami"), "calls.whoami.path: must start with /"),
    (lambda d: d["calls"]["logout"].update(method="REMOVE"), "calls.logout.method: 'REMOVE' is not one of"),
    (lambda d: d["calls"]["logout"].update(verb="DELETE"), "calls.logout.verb: unknown key"),
    (lambda d: d["errors"].pop("code"), "errors.code: missing"),
    (lambda d: d["errors"].update(codes={"LOCKED": "locked_out"}), "errors.codes.LOCKED: unknown meaning"),
    (lambda d: d["errors"].update(statuses={"200": "account_locked"}), "errors.statuses.200: not an HTTP error"),
    (lambda d: d["base_urls"].update(test="http://portal.example"), "base_urls.test: must be an https:// URL"),
    (lambda d: d["base_urls"].update(staging="https://portal.example"), "base_urls.staging: unknown environment"),
    (lambda d: d.update(profile_format=2), "profile_format: this collection reads format 1"),
    (lambda d: d.update(sesion={}), "sesion: unknown key"),
    (lambda d: d["calls"]["whoami"]["answer"].update(
        account_state={"expression": "state", "values": {"N": "fresh"}}),
     "calls.whoami.answer.account_state.values.N: 'fresh' is not one of new, active, locked"),
    (lambda d: d["calls"]["whoami"]["answer"].update(account_state={"values": {}}),
     "calls.whoami.answer.account_state.expression: missing"),
])
def test_each_mistake_is_named_by_call_and_field(change, expected):
    message = _broken(change)
    assert expected in message
    assert message.startswith("The portal API profile given as data is not valid: ")
    assert message.endswith("Fix: %s" % profiles.FIX_PROFILE)


def test_every_problem_is_listed_at_once():
    def change(document):
        document["calls"].pop("logout")
        document["calls"]["overview"]["answer"]["email"] = "data.["
    message = _broken(change)
    assert "calls.logout: missing call" in message and "calls.overview.answer.email" in message


def test_cookie_session_needs_a_cookie_and_one_csrf_source():
    def change(document):
        document["session"] = {"type": "cookie", "csrf": {"header": "X-CSRF", "cookie": "C", "answer": "t"}}
    message = _broken(change)
    assert "session.cookie: missing" in message and "session.csrf: give exactly one of cookie" in message


def test_a_file_that_is_not_a_profile(tmp_path):
    bad_yaml = tmp_path / "bad.yml"
    bad_yaml.write_text("calls: [unclosed\n")
    with pytest.raises(profiles.ProfileError, match="is not valid YAML"):
        profiles.load(path=str(bad_yaml))
    with pytest.raises(profiles.ProfileError, match="Cannot read the portal API profile"):
        profiles.load(path=str(tmp_path / "missing.yml"))
    listing = tmp_path / "list.yml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(profiles.ProfileError, match="is not a mapping"):
        profiles.load(path=str(listing))


# -- using a profile -----------------------------------------------------------------------------------
def test_templates_fill_values_as_they_are_or_as_text():
    document = copy.deepcopy(DEFAULT)
    document["calls"]["set_interfaces"]["path"] = "/users/{user_id}/interfaces"
    document["calls"]["set_interfaces"]["body"] = {"list": "{interfaces}", "note": "for {user_id}", "n": 1}
    document["calls"]["set_se_number"]["body"] = {"se": "{se_number}", "text": "SE {se_number}"}
    profile = profiles.load(content=document)
    request = profile.request("set_interfaces", user_id="CVR_1 /x", interfaces=["AS4"])
    assert request == ("PUT", "/users/CVR_1%20%2Fx/interfaces", {"list": ["AS4"], "note": "for CVR_1 /x", "n": 1})
    assert profile.request("set_se_number", user_id="u", se_number=None).body == {"se": None, "text": "SE "}
    assert profile.request("whoami").body is None
    assert profile.describe("set_interfaces") == "PUT /users/{user_id}/interfaces"


def test_answers_are_read_mapped_and_checked():
    variant = profiles.load(content=_variant())
    overview = variant.read_answer("overview", {"data": {
        "registration": {"status": "PENDING"}, "seNumber": "", "contactEmail": "a@example.dk",
        "interfaces": None, "accountState": "ACTIVE", "gatewayUser": None}})
    assert overview["registration_status"] == "in_progress" and overview["account_state"] == "active"
    assert overview["se_number"] is None and overview["interfaces"] == [] and overview["email"] == "a@example.dk"
    with pytest.raises(profiles.AnswerError) as unknown_state:
        variant.read_answer("overview", {"data": {"registration": {"status": "WAITING"}}})
    assert "field registration_status (expression data.registration.status) gave a string 'WAITING'" in \
        str(unknown_state.value)
    with pytest.raises(profiles.AnswerError) as missing:
        variant.read_answer("whoami", {"data": {"accountState": "NEW"}})
    assert missing.value.call == "whoami" and missing.value.field == "user_id"


def test_a_secret_in_a_wrong_place_is_never_shown():
    secret = "Gateway-Secret-Value-42"
    default = profiles.default_profile()
    for answer in ({"gateway_user": "u", "gateway_password": [secret]},
                   {"gateway_user": {"x": secret}, "gateway_password": secret}):
        with pytest.raises(profiles.AnswerError) as wrong:
            default.read_answer("gateway_credentials", answer)
        assert secret not in str(wrong.value)
    with pytest.raises(profiles.AnswerError) as state:  # a state that is not a word is not shown either
        default.read_answer("whoami", {"user_id": "u", "account_state": [secret]})
    assert secret not in str(state.value)


def test_errors_are_mapped_by_code_then_by_status():
    variant = profiles.load(content=_variant())
    failure = variant.read_error(401, {"errors": [{"code": "BAD_CREDENTIALS", "message": "wrong\n password",
                                                   "meta": {"attemptsRemaining": 3}}]})
    assert failure == ("invalid_credentials", "wrong password", 3, None)
    pending = variant.read_error(409, {"errors": [{"code": "REGISTRATION_PENDING",
                                                   "meta": {"registrationStatus": "PENDING"}}]})
    assert pending.code == "registration_in_progress" and pending.registration_status == "in_progress"
    assert variant.read_error(418, {"errors": [{"code": "TEAPOT"}]}).code == "TEAPOT"  # unmapped: as it is
    assert variant.read_error(502, "<html>bad gateway</html>") == (None, None, None, None)

    document = copy.deepcopy(DEFAULT)
    document["errors"]["statuses"] = {423: "account_locked", "401": "session_expired"}
    by_status = profiles.load(content=document)
    assert by_status.read_error(423, None).code == "account_locked"        # no body at all
    assert by_status.read_error(401, {"error": "ODD"}).code == "session_expired"  # a code we do not know
    assert by_status.read_error(401, {"error": "invalid_credentials"}).code == "invalid_credentials"
    assert by_status.read_error(401, {"error": "x", "attempts_remaining": "3"}).attempts_remaining is None


def test_session_headers():
    bearer = profiles.default_profile().session
    assert bearer.token({"token": "t0k"}) == "t0k"
    assert bearer.headers("GET", token="t0k") == {"Authorization": "Bearer t0k"}
    assert bearer.headers("GET") == {}
    cookie = profiles.load(content=_variant()).session
    assert cookie.csrf_header == "X-XSRF-TOKEN" and cookie.csrf_cookie == "XSRF-TOKEN"
    assert cookie.headers("PATCH", csrf="c5") == {"X-XSRF-TOKEN": "c5"}
    assert cookie.headers("GET", csrf="c5") == {}  # only state-changing calls carry it
