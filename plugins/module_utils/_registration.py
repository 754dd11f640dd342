# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Registration on the certificate portal as a plan, and the run that applies it.  Knows no Ansible.

``plan(observed, wanted) -> Plan`` is pure: from what the portal shows about the account (``Observed``:
account state, registration status, SE-number, e-mail, interfaces, gateway user, and whether the
credentials file already holds the gateway credentials) and the settings the task wants (``Wanted``) it
gives the ordered steps and the settings they lead to.  Each step is a small value object that says
when it is needed (``needed(settings)``), what it leads to (``predict``) and how it is done (``run``); the
plan and ``apply`` use the same ``needed``, so check mode (the plan, reported, nothing executed) and a
real run agree, and the plan's before/after is the diff.

``run(client, certificate, wanted, password, credentials_file, check_mode) -> Outcome`` is the whole run:
whoami (checked against the presented certificate before any password goes out), the observation, the
plan, and in a real run ``apply``: log on (``_portal_logon``), then each step still needed on the live
account, waiting with backoff and logging on again when a session expires.  Failures are ``DmsError``s
that carry what was done (``actions``), the HTTP counters and the portal user id as result keys.
"""

from __future__ import annotations

import os
import random
import time
from collections import namedtuple

from ansible_collections.dkcustoms.dms.plugins.module_utils import _files, _gateway_credentials, _identity, _oces
from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_client as portal
from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_logon
from ansible_collections.dkcustoms.dms.plugins.module_utils._errors import DmsError

WAIT_FIRST_DELAY = 1.0
WAIT_MAX_DELAY = 30.0


class RegistrationFailed(DmsError):
    """The run cannot go on (the message names the cause and the fix)."""

    reason = "registration_failed"


# -- what the portal shows, what the task wants ----------------------------------------------------------
Observed = namedtuple("Observed", ["user_id", "account_state", "settings", "credentials_current"])
Observed.__doc__ = """What the portal shows: ``user_id``, ``account_state`` (new|active|locked), ``settings`` (the
``portal.SETTINGS`` of the overview), ``credentials_current`` (True/False: the credentials file holds / does
not hold the portal's gateway credentials; None: not known before the run)."""

Wanted = namedtuple("Wanted", ["se_number", "email", "interfaces", "wait", "wait_timeout",
                               "credentials_dest", "return_gateway_password"])
Wanted.__doc__ = """The task's settings: ``se_number``/``email`` None leaves them, "" clears them;
``interfaces`` a list; ``credentials_dest`` the credentials file or None."""


def never_used(user_id):
    """What a never-used account looks like: nobody has logged on, so nothing was set or requested
    (registering needs a logon, and a logon on a new account forces the password change first)."""
    settings = portal.settings_of({"registration_status": "not_registered", "interfaces": []})
    return Observed(user_id, "new", settings, None)


# -- the steps -------------------------------------------------------------------------------------------
Effect = namedtuple("Effect", ["settings", "changed", "credentials"])


class Step:
    """One step of a plan.  ``action`` is what the result's ``actions`` says when it changed something."""

    action = None

    def needed(self, settings):
        raise NotImplementedError

    def predict(self, settings):
        return settings

    def run(self, account, settings, context):
        """Do it on the live account; the ``Effect`` (the settings after it)."""
        raise NotImplementedError

    def __eq__(self, other):
        return type(self) is type(other) and vars(self) == vars(other)

    __hash__ = None  # compared by value; a value may be a list (interfaces)

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join("%r" % value for value in vars(self).values()))


class ChangePassword(Step):
    """The first logon of a never-used account: the initial password is changed.  ``apply`` does it with
    the logon (``_portal_logon.Account.log_on``), before any other step."""

    action = "password_changed"

    def needed(self, settings):
        return True


class RequestRegistration(Step):
    action = "registration_requested"

    def needed(self, settings):
        return settings["registration_status"] == "not_registered"

    def predict(self, settings):
        return dict(settings, registration_status="in_progress")

    def run(self, account, settings, context):
        # Several hosts may press it at the same moment: the portal accepts one, the others see it requested.
        requested, status = account.call(account.client.request_registration)
        if status == "in_progress":
            return Effect(dict(settings, registration_status=status), requested, None)
        return Effect(portal.settings_of(account.call(account.client.overview)), requested, None)


class WaitForRegistration(Step):
    def __init__(self, timeout):
        self.timeout = timeout

    def needed(self, settings):
        return settings["registration_status"] == "in_progress"

    def predict(self, settings):
        # Assume the registration completes, so that the later steps are planned too.
        return dict(settings, registration_status="registered")

    def run(self, account, settings, context):
        deadline = time.monotonic() + self.timeout
        delay = WAIT_FIRST_DELAY
        overview = account.call(account.client.overview)
        while overview["registration_status"] == "in_progress":
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RegistrationFailed(
                    "The registration of %s is still in progress after %d seconds. It continues on the portal. "
                    "Fix: run again later, or raise wait_timeout (production registrations take minutes)."
                    % (account.user_id, self.timeout), reason="registration_timeout")
            time.sleep(min(remaining, delay * random.uniform(0.8, 1.0)))
            delay = min(WAIT_MAX_DELAY, delay * 2)
            overview = account.call(account.client.overview)
        return Effect(portal.settings_of(overview), False, None)


class _Setting(Step):
    """A portal-side setting that must have ``value``."""

    setting = None

    def __init__(self, value):
        self.value = value

    def needed(self, settings):
        return self.value != settings[self.setting]

    def predict(self, settings):
        return dict(settings, **{self.setting: self.value})

    def run(self, account, settings, context):
        return Effect(portal.settings_of(account.call(self.send, account.client)), True, None)

    def send(self, client):
        raise NotImplementedError


class SetSeNumber(_Setting):
    action = "se_number_updated"
    setting = "se_number"

    def send(self, client):
        return client.set_se_number(self.value)


class SetEmail(_Setting):
    action = "email_updated"
    setting = "email"

    def send(self, client):
        return client.set_email(self.value)


class SetInterfaces(_Setting):
    """Interfaces are set once the registration is complete (the portal refuses it before)."""

    action = "interfaces_updated"
    setting = "interfaces"

    def needed(self, settings):
        return settings["registration_status"] == "registered" and super().needed(settings)

    def send(self, client):
        return client.set_interfaces(self.value)


class StoreCredentials(Step):
    """The gateway user and password into the credentials file (only from a registered certificate)."""

    action = "gateway_credentials_written"

    def needed(self, settings):
        return settings["registration_status"] == "registered"

    def run(self, account, settings, context):
        credentials = account.call(account.client.gateway_credentials)
        return Effect(settings, context.credentials_file.install(credentials), credentials)


# -- the plan --------------------------------------------------------------------------------------------
class Plan(namedtuple("Plan", ["steps", "before", "after"])):
    """The ordered ``steps`` and the settings ``before`` them and ``after`` them (predicted)."""

    __slots__ = ()

    @property
    def actions(self):
        return [step.action for step in self.steps if step.action]


def candidate_steps(wanted, credentials_current=None):
    """Every step the task may need, in the order the portal allows them."""
    steps = [RequestRegistration()]
    if wanted.wait:
        steps.append(WaitForRegistration(wanted.wait_timeout))
    if wanted.se_number is not None:
        steps.append(SetSeNumber(wanted.se_number or None))
    if wanted.email is not None:
        steps.append(SetEmail(wanted.email or None))
    steps.append(SetInterfaces(sorted(set(wanted.interfaces))))
    if wanted.credentials_dest and credentials_current is not True:
        steps.append(StoreCredentials())
    return steps


def plan(observed, wanted):
    """The steps from ``observed`` to ``wanted`` (pure: nothing is sent or written)."""
    if observed.account_state == "locked":
        raise _portal_logon.locked(observed.user_id)
    steps = [ChangePassword()] if observed.account_state == "new" else []
    settings = dict(observed.settings)
    for step in candidate_steps(wanted, observed.credentials_current):
        if step.needed(settings):
            steps.append(step)
            settings = step.predict(settings)
    return Plan(tuple(steps), portal.settings_of(observed.settings), portal.settings_of(settings))


# -- the run ---------------------------------------------------------------------------------------------
Outcome = namedtuple("Outcome", ["user_id", "account_state", "actions", "before", "after", "credentials"])
Context = namedtuple("Context", ["wanted", "credentials_file"])


class CredentialsFile:
    """The credentials file, through the collection's one layout and atomic 0600 writer
    (``_gateway_credentials``/``_files``; in check mode they only compare)."""

    def __init__(self, module, path):
        self.module = module
        self.path = path

    def install(self, credentials):
        """True when the file changed (in check mode: would change); ``_files.FileError`` when it cannot."""
        return _gateway_credentials.install(self.module, self.path, credentials)


def apply(the_plan, account, context, actions):
    """Carry out ``the_plan`` on ``account``, appending to ``actions`` what changed; ``(before, after,
    credentials)`` with the settings as the portal showed them.  An account in use is logged on already
    (``observe``); a never-used one is logged on here, its initial password changed."""
    settings = the_plan.before
    steps = the_plan.steps
    if ChangePassword() in steps:
        if account.log_on():
            actions.append(ChangePassword.action)
        settings = portal.settings_of(account.call(account.client.overview))
        # Planned without a logon; once logged on, plan from what the portal shows (another host may
        # have been first).
        steps = plan(Observed(account.user_id, "active", settings, None), context.wanted).steps
    before, credentials = settings, None
    for step in steps:
        if step.needed(settings):
            effect = step.run(account, settings, context)
            settings, credentials = effect.settings, effect.credentials or credentials
            if effect.changed:
                actions.append(step.action)
    return before, settings, credentials


def certificate_mismatch(certificate, user_id):
    """Why the portal's user id is not the presented certificate's, or None."""
    info = _oces.classify(certificate)
    parsed = _identity.parse_portal_user_id(user_id)  # whoami checked its form
    if info["cvr"] == parsed["cvr"] and (info["uuid"] or "").lower() == parsed["uuid"]:
        return None
    own = _oces.portal_user_id_of(info) or "a certificate without an OCES3 identity"
    return ("The portal says the presented certificate is %s, but it is %s. No logon was attempted (the "
            "password would go to an account that is not this certificate's). Fix: check that portal_url "
            "is the UFST certificate portal and that the certificate options name the certificate to "
            "register." % (user_id, own))


def who_am_i(client, certificate):
    """``(user_id, account_state)`` from whoami, trusted only once it names the presented certificate."""
    whoami = client.whoami()
    mismatch = certificate_mismatch(certificate, whoami["user_id"])
    if mismatch:
        raise RegistrationFailed(mismatch, reason="certificate_mismatch")
    return whoami["user_id"], whoami["account_state"]


def account_for(client, user_id, state, password):
    """The ``_portal_logon.Account`` of a run, unless the account is locked or ``password`` cannot become
    its password (both refused before any logon, so they cost no attempt)."""
    if state == "locked":
        raise _portal_logon.locked(user_id)
    problem = portal.password_problem(password, user_id)
    if problem and state == "new":
        raise RegistrationFailed("password cannot become the portal password: %s. Nothing was sent. Fix: choose "
                                 "a password of at least %d characters that does not contain the user id."
                                 % (problem, portal.MIN_PASSWORD_LENGTH), reason="weak_password")
    return _portal_logon.Account(client, user_id, state, password)


def observe(account, wanted, credentials_file, check_mode):
    """What the portal shows.  Only reads: it logs on (the portal does not count that as a change) only
    when the account is in use; a never-used account is not logged on to in check mode."""
    if account.account_state == "new":
        return never_used(account.user_id)
    account.log_on()
    settings = portal.settings_of(account.call(account.client.overview))
    current = None
    if check_mode and wanted.credentials_dest and settings["registration_status"] == "registered":
        # In check mode the file is only compared (content and mode), nothing is written.
        current = not credentials_file.install(account.call(account.client.gateway_credentials))
    return Observed(account.user_id, account.account_state, settings, current)


def _execute(account, wanted, credentials_file, check_mode, actions):
    """Observe, plan, and (unless in check mode) apply; ``(before, after, credentials)``."""
    observed = observe(account, wanted, credentials_file, check_mode)
    the_plan = plan(observed, wanted)
    if check_mode:
        actions.extend(the_plan.actions)
        return the_plan.before, the_plan.after, None
    before, after, credentials = apply(the_plan, account, Context(wanted, credentials_file), actions)
    registered = after["registration_status"] == "registered"
    if registered and wanted.return_gateway_password and credentials is None:
        credentials = account.call(account.client.gateway_credentials)
    return before, after, credentials


def run(client, certificate, wanted, password, credentials_file=None, check_mode=False):
    """The whole run (see the module docstring); logs out at the end, also after a failure.  A failure
    carries ``actions`` (what was done before it), ``http`` and ``portal_user_id`` as result keys."""
    actions = []
    user_id = None
    try:
        user_id, state = who_am_i(client, certificate)
        account = account_for(client, user_id, state, password)
        before, after, credentials = _execute(account, wanted, credentials_file, check_mode, actions)
    except DmsError as exc:
        exc.details.update(actions=actions, http=dict(client.session.stats))
        if user_id:
            exc.details["portal_user_id"] = user_id
        raise
    finally:
        client.logout()
    return Outcome(account.user_id, account.account_state, actions, before, after, credentials)


def wanted_from(params, check_mode=False):
    """``Wanted`` from the module's options, checked before anything is sent."""
    problem = _option_problem(params)
    if problem:
        raise RegistrationFailed(problem, reason="invalid_option")
    dest = params["gateway_credentials_dest"]
    if dest and not check_mode:
        _files.check_writable(os.path.dirname(os.path.abspath(dest)))
    return Wanted(params["se_number"], params["email"], params["interfaces"], params["wait"],
                  params["wait_timeout"], dest, params["return_gateway_password"])


def _option_problem(params):
    se_number = params["se_number"]
    if not params["interfaces"]:
        return "interfaces is empty. Fix: give AS4 and/or FTPS."
    if params["wait_timeout"] < 0:
        return "wait_timeout must be 0 or more seconds. Fix: set wait_timeout."
    if se_number and not (len(se_number) == 8 and se_number.isdigit()):
        return "se_number must be exactly 8 digits (or an empty string to clear it). Fix: correct se_number."
    if params["gateway_credentials_dest"] and os.path.isdir(params["gateway_credentials_dest"]):
        return "gateway_credentials_dest %s is a directory. Fix: give a file path." % params["gateway_credentials_dest"]
    return None
