#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: portal_registration
short_description: Register an OCES3 certificate on the UFST certificate portal, idempotently
version_added: 0.1.0
description:
  - Does what the DMS onboarding guide describes as browser steps on the UFST certificate portal, as one
    re-runnable task - log on with the certificate, change the initial password, press
    C(Register certificate), wait until the registration is complete, set SE-number, e-mail and
    interfaces, and keep the gateway user and password.
  - Logs on with O(password). Only when the portal reports the account as never used (C(new)) does it
    log on with the initial password (the user id) and change it to O(password). A run never makes more
    than two logon attempts, and none at all when the portal reports the account as locked.
  - Requests the registration only when the portal says the certificate is not registered. A certificate
    registered already (for example for ICS, Manifest or Export/Transit) is not registered again. When
    several hosts request it at the same moment the portal accepts one; the others see it in progress.
  - Changes SE-number, e-mail and interfaces only where they differ from the requested values.
  - Reads the gateway user from the portal (it is never computed) and, when asked, stores the gateway
    user and password in O(gateway_credentials_dest) (mode C(0600)).
  - Transient faults (dropped connections, HTTP 5xx, HTTP 429 with C(Retry-After)) are retried with
    bounded backoff; see O(retries).
  - "For fleets: run it with O(wait=false) for every certificate first (each returns at once with
    RV(registration_status=in_progress)), then once more with O(wait=true); the portal works on all
    registrations at the same time, so N certificates take about one registration delay, not N."
  - How the portal's API looks (paths, request and answer fields, errors, session) comes from a portal
    API profile; the built-in one is the model of the collection's C(docs/portal-api.md). Another
    profile is given with O(portal_api_profile) or O(portal_api_profile_content) and is validated
    before any request is sent.
author:
  - dkcustoms.dms developers (@dkcustoms)
requirements:
  - jmespath >= 1.0 (on the host the module runs on)
  - PyYAML, to read a O(portal_api_profile) written in YAML (a JSON file needs none)
extends_documentation_fragment:
  - dkcustoms.dms.attributes
  - dkcustoms.dms.attributes.files
  - dkcustoms.dms.certificate_source
  - dkcustoms.dms.connection
attributes:
  check_mode:
    support: full
    details: Check mode only reads - it logs on (which the portal does not count as a change) only
      when the account is in use, and makes no change on the portal or on disk. For a never-used
      account it reports the full first-run change without logging on.
  diff_mode:
    support: full
    details: The diff shows the portal-side settings (registration status, SE-number, e-mail,
      interfaces, gateway user), never a password.
  idempotent:
    support: full
  safe_file_operations:
    support: full
options:
  portal_url:
    description:
      - Base URL of the certificate portal; the paths of the portal API profile are appended to it.
      - Default the profile's base URL for O(environment); the built-in profile's are
        C(https://secureftp.gatewaytest.skat.dk/PortalCertApp) for O(environment=test) and
        C(https://secureftpgateway.skat.dk/PortalCertApp) for O(environment=production).
      - Must be an C(https://) URL; any other scheme is refused before anything is sent. Redirects are
        never followed - a redirecting answer fails the run and names where it pointed.
    type: str
  portal_api_profile:
    description:
      - Path of a portal API profile (YAML or JSON) that describes the portal's API in place of the
        built-in one; the collection's C(docs/portal-api.md) says how to write one.
      - The file is read on the host the module runs on (the C(dkcustoms.dms.registration) role runs
        it on the controller). To run it elsewhere without copying the file, use
        O(portal_api_profile_content).
      - It is validated before any request is sent; a mistake fails the task naming the call and field.
    type: path
  portal_api_profile_content:
    description:
      - The portal API profile itself, as data, for example
        C("{{ lookup('ansible.builtin.file', 'portal-api.yml') | from_yaml }}").
    type: dict
  password:
    description:
      - The portal password the account is to have. On a never-used account the initial password is
        changed to this.
      - At least 12 characters, not containing the user id. Hosts that share a certificate must use the
        same password. Keep it in ansible-vault.
    type: str
    required: true
  se_number:
    description:
      - SE-number to register (exactly 8 digits), for companies that declare under an SE-number.
      - An empty string clears it. Left unchanged when not given.
    type: str
  email:
    description:
      - Contact e-mail address on the portal. Left unchanged when not given.
    type: str
  interfaces:
    description:
      - Gateway interfaces to enable. Set once the registration is complete (the portal refuses it
        before); with O(wait=false) and a registration in progress they are set on a later run.
    type: list
    elements: str
    choices: [AS4, FTPS]
    default: [AS4]
  wait:
    description:
      - Wait until the registration is complete (polling with backoff up to O(wait_timeout)).
      - With V(false) the module returns as soon as the registration is requested
        (RV(registration_status=in_progress)); run it again with V(true) to finish.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for the registration to complete before failing. The registration continues on
        the portal; a later run picks it up.
    type: int
    default: 900
  gateway_credentials_dest:
    description:
      - "File on the managed host to store the gateway user and password in, as JSON
        C({\"gateway_password\": ..., \"gateway_user\": ...}) (the layout M(dkcustoms.dms.gateway_credentials)
        writes), mode C(0600) from its first byte, written atomically and only when its content differs."
      - Written once the registration is complete, and only from an answer that holds both a gateway
        user and a gateway password; an answer of another shape fails the run and leaves the file as it was.
    type: path
  return_gateway_password:
    description:
      - Return the gateway password in RV(gateway_password). Use C(no_log) on the task when enabled.
    type: bool
    default: false
notes:
  - The portal has no public API; the built-in portal API profile is the model in the collection's
    C(docs/portal-api.md), which also says how to write a profile from what a browser's developer tools
    show, and how to try it with C(--check) before anything is written.
  - The account locks after repeated failed logons and only a person can unlock it. A wrong O(password)
    costs one failed attempt per run.
  - Runs for the same certificate on the same host are serialised around the first password change, with a
    lock file in a private directory of the user (C(<temp dir>/dkcustoms-dms-<uid>), mode C(0700)); a run
    waits at most 5 minutes for it. Across hosts, let one host per certificate talk to the portal (the
    C(dkcustoms.dms.registration) role does).
  - The portal's answers are checked before they are used - the account state must be known and the user
    id must be the presented certificate's, or no logon is attempted; answers larger than 1 MiB are not read.
  - A logon is sent again at most once, and only when the portal surely did not process it (no
    connection, HTTP 429 or 503), so a proxy's error cannot cost more than one extra attempt towards
    the lockout.
seealso:
  - name: Onboarding and registration
    description: How registration works and how to run it for a fleet.
    link: https://github.com/dkcustoms/dkcustoms.dms/blob/main/docs/registration.md
"""

EXAMPLES = r"""
- name: Register the system certificate on the test portal and keep the gateway credentials
  dkcustoms.dms.portal_registration:
    certificate_path: /etc/dms/foces.p12
    certificate_passphrase: "{{ vault_foces_passphrase }}"
    password: "{{ vault_portal_password }}"
    se_number: "12345678"
    email: integration@example.dk
    interfaces: [AS4]
    gateway_credentials_dest: /etc/dms/gateway-credentials.json

- name: Fleet - request all registrations first ...
  dkcustoms.dms.portal_registration:
    certificate_content: "{{ lookup('ansible.builtin.file', 'files/' ~ inventory_hostname ~ '.p12.b64') }}"
    certificate_passphrase: "{{ vault_foces_passphrase }}"
    password: "{{ vault_portal_password }}"
    environment: production
    wait: false
  delegate_to: localhost

- name: Fleet - ... then wait for them (the waits overlap)
  dkcustoms.dms.portal_registration:
    certificate_content: "{{ lookup('ansible.builtin.file', 'files/' ~ inventory_hostname ~ '.p12.b64') }}"
    certificate_passphrase: "{{ vault_foces_passphrase }}"
    password: "{{ vault_portal_password }}"
    environment: production
    wait: true
    wait_timeout: 1800
    return_gateway_password: true
  delegate_to: localhost
  register: registration
  no_log: true
"""

RETURN = r"""
portal_user_id:
  description: The portal user id of the certificate (C(CVR_<cvr>_UI_<uuid>)), as the portal reports it.
  returned: always
  type: str
  sample: CVR_12345678_UI_175a859d-ed76-45af-828f-3a69691a7157
account_state:
  description: The account state at the end of the run (C(new), C(active) or C(locked)).
  returned: always
  type: str
  sample: active
registration_status:
  description:
    - C(registered) or C(in_progress) (C(not_registered) is never left behind by a run).
    - In check mode, the status the run would lead to.
  returned: always
  type: str
  sample: registered
gateway_user:
  description: The gateway user as the portal shows it; null until the registration is complete.
  returned: always
  type: str
  sample: CVR_12345678_UR_175a859d-ed76-45af-828f-3a69691a7157
gateway_password:
  description: The gateway password.
  returned: when O(return_gateway_password=true) and the registration is complete
  type: str
actions:
  description:
    - What was done (or, in check mode, would be done), in order. Possible items
      C(password_changed), C(registration_requested), C(se_number_updated), C(email_updated),
      C(interfaces_updated), C(gateway_credentials_written).
  returned: always
  type: list
  elements: str
  sample: [password_changed, registration_requested, interfaces_updated]
gateway_credentials_dest:
  description: The credentials file, when O(gateway_credentials_dest) is set.
  returned: when O(gateway_credentials_dest) is set
  type: str
  sample: /etc/dms/gateway-credentials.json
settings:
  description: The portal-side settings at the end of the run (predicted in check mode).
  returned: always
  type: dict
  sample:
    registration_status: registered
    se_number: "12345678"
    email: integration@example.dk
    interfaces: [AS4]
    gateway_user: CVR_12345678_UR_175a859d-ed76-45af-828f-3a69691a7157
http:
  description: Requests sent to the portal (retries included) and how many were transient-failure retries.
  returned: always
  type: dict
  sample: {attempts: 6, retries: 1}
"""

import contextlib
import errno
import hashlib
import os
import random
import stat
import tempfile
import time

try:
    import fcntl
    HAS_FCNTL = True
except ImportError:  # pragma: no cover - not POSIX
    HAS_FCNTL = False

from ansible.module_utils.common.text.converters import to_bytes, to_native

from ansible_collections.dkcustoms.dms.plugins.module_utils import (
    _client_cert, _deps, _files, _gateway_credentials, _identity, _module, _oces, _opt_certificate)
from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_client as portal
from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_profile

LIBRARIES = ("cryptography", "requests", "jmespath")
WAIT_FIRST_DELAY = 1.0
WAIT_MAX_DELAY = 30.0
# How long a run waits for another run on this host to finish the first logon of the same account.
FIRST_LOGON_LOCK_TIMEOUT = 300
LOCK_POLL_INTERVAL = 0.2


class RegistrationFailed(Exception):
    """Fail the module with this message (names the cause and the fix)."""


def lock_directory():
    """This user's private directory for first-logon locks (not the shared temp directory itself,
    where another local user could plant a symlink or hold a lock of the same name)."""
    return os.path.join(tempfile.gettempdir(), "dkcustoms-dms-%d" % os.geteuid())


def _private_directory(path):
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise RegistrationFailed("The lock directory %s cannot be created (%s). Nothing was sent. Fix: "
                                 "make the temporary directory writable for this user."
                                 % (path, os.strerror(exc.errno) if exc.errno else exc)) from None
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise RegistrationFailed(
            "The lock directory %s is not a private directory of this user (it must be a directory, not "
            "a link, owned by uid %d, mode 0700). Nothing was sent. Fix: remove it - another user may "
            "have made it to interfere - and run again." % (path, os.geteuid()))
    return path


def _open_lock_file(path):
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise RegistrationFailed("The lock file %s is a symbolic link; it was not followed. Nothing "
                                     "was sent. Fix: remove the link and run again." % path) from None
        raise RegistrationFailed("The lock file %s cannot be opened (%s). Nothing was sent. Fix: check "
                                 "the permissions of %s." % (path, os.strerror(exc.errno) if exc.errno
                                                             else exc, os.path.dirname(path))) from None


@contextlib.contextmanager
def first_logon_lock(base_url, user_id, timeout=FIRST_LOGON_LOCK_TIMEOUT, directory=None):
    """Serialise the first logon + password change of one account among the runs on this host.

    Twenty runs for one never-used certificate would otherwise all log on with the initial password
    and all but one would fail the password change - each failure counts towards the lockout.
    The lock is a file in this user's private directory, opened without following links, and the
    wait for it ends after ``timeout`` seconds with an error instead of hanging the run.
    """
    if not HAS_FCNTL:
        yield
        return
    folder = _private_directory(directory or lock_directory())
    digest = hashlib.sha256(to_bytes("%s|%s" % (base_url, user_id))).hexdigest()[:24]
    path = os.path.join(folder, "portal-%s.lock" % digest)
    fd = _open_lock_file(path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RegistrationFailed(
                        "Another run on this host has held the first-logon lock of %s for more than %d "
                        "seconds; no logon was attempted. Fix: let the other portal_registration run "
                        "finish (or stop it: fuser %s names it), then run again."
                        % (user_id, timeout, path)) from None
                time.sleep(LOCK_POLL_INTERVAL)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class Registration:
    """One run: log on, register, wait, settle the settings, store the credentials."""

    def __init__(self, module, client):
        self.module = module
        self.params = module.params
        self.client = client
        self.actions = []
        self.logins = 0
        self.working_password = None
        self.user_id = None
        self.account_state = None

    # -- who the certificate is ------------------------------------------------------------------
    def who_am_i(self):
        """The portal's whoami, trusted only for the certificate this run presents: a portal that
        names another user must not get a logon (it would get that user's password)."""
        whoami = self.client.whoami()
        if self.user_id is not None and whoami["user_id"] != self.user_id:
            raise RegistrationFailed("The portal now names the certificate %s, before %s. No logon was "
                                     "attempted. Fix: check portal_url." % (whoami["user_id"], self.user_id))
        return whoami

    # -- logging on ------------------------------------------------------------------------------
    def _login(self, password):
        self.logins += 1
        return self.client.login(self.user_id, password)

    def _refused(self, exc):
        remaining = exc.attempts_remaining
        return RegistrationFailed(
            "The portal refused the password for %s%s. No further logon was attempted. Fix: set "
            "password to the account's current portal password (a person can reset it on the "
            "portal); more wrong attempts lock the account."
            % (self.user_id, "" if remaining is None else
               " (%s attempts left before the account locks)" % remaining))

    def log_on(self):
        """Log on with at most two attempts; returns True once logged on."""
        password = self.params["password"]
        if self.account_state == "new":
            with first_logon_lock(self.client.base_url, self.user_id):
                # Another run on this host may have done the first logon while we waited.
                self.account_state = self.who_am_i()["account_state"]
                if self.account_state == "new":
                    return self._first_logon(password)
                if self.account_state == "locked":
                    raise RegistrationFailed(portal.locked_message(self.user_id))
        return self._logon_with(password)

    def _first_logon(self, password):
        """Initial password (the user id), then change it.  A never-used account cannot have been
        given `password` yet, so trying it first would only spend a failed attempt."""
        try:
            self._login(self.user_id)
        except portal.InvalidCredentials:
            # Used in the meantime (another host changed the password): second and last attempt.
            return self._logon_with(password)
        except portal.AccountLocked:
            raise RegistrationFailed(portal.locked_message(self.user_id)) from None
        try:
            self.client.change_password(self.user_id, password)
        except portal.InvalidCredentials:
            # Another host changed it between our logon and our change.
            self.client.logout()
            return self._logon_with(password)
        except portal.ValidationFailed as exc:
            raise RegistrationFailed(
                "The portal refused password as the new password (%s). The account is still new and "
                "nothing else was changed. Fix: choose a portal password the portal accepts."
                % to_native(exc)) from None
        self.actions.append("password_changed")
        self.account_state = "active"
        self.working_password = password
        return True

    def _logon_with(self, password):
        """Log on with ``password``; a refusal or a lockout ends the run with the fix."""
        try:
            self._login(password)
        except portal.InvalidCredentials as exc:
            raise self._refused(exc) from None
        except portal.AccountLocked:
            raise RegistrationFailed(portal.locked_message(self.user_id)) from None
        self.account_state = "active"
        self.working_password = password
        return True

    def relogin_after_expiry(self):
        """Sessions expire after 15 minutes; a long wait logs on again with the password that
        worked in this run (no risk of a failed attempt)."""
        self._login(self.working_password)

    def call(self, method, *args):
        try:
            return getattr(self.client, method)(*args)
        except portal.SessionExpired:
            self.relogin_after_expiry()
            return getattr(self.client, method)(*args)

    # -- registration ----------------------------------------------------------------------------
    def wait_for_registration(self, overview):
        deadline = time.monotonic() + self.params["wait_timeout"]
        delay = WAIT_FIRST_DELAY
        while overview.get("registration_status") == "in_progress":
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RegistrationFailed(
                    "The registration of %s is still in progress after %d seconds. It continues on the "
                    "portal. Fix: run again later, or raise wait_timeout (production registrations take "
                    "minutes)." % (self.user_id, self.params["wait_timeout"]))
            time.sleep(min(remaining, delay * random.uniform(0.8, 1.0)))
            delay = min(WAIT_MAX_DELAY, delay * 2)
            overview = self.call("overview")
        return overview

    # -- settings --------------------------------------------------------------------------------
    def wanted_changes(self, overview):
        """[(action, client method, value)] for the settings that differ."""
        changes = []
        se_number = self.params["se_number"]
        if se_number is not None and (se_number or None) != overview.get("se_number"):
            changes.append(("se_number_updated", "set_se_number", se_number or None))
        email = self.params["email"]
        if email is not None and (email or None) != overview.get("email"):
            changes.append(("email_updated", "set_email", email or None))
        interfaces = sorted(set(self.params["interfaces"]))
        if overview.get("registration_status") == "registered" and interfaces != overview.get("interfaces"):
            changes.append(("interfaces_updated", "set_interfaces", interfaces))
        return changes

    @staticmethod
    def predicted(overview, changes):
        after = dict(overview)
        for action, dummy, value in changes:
            after[{"se_number_updated": "se_number", "email_updated": "email",
                   "interfaces_updated": "interfaces"}[action]] = value
        return after


def store_credentials(module, run, credentials):
    """The credentials file, through the collection's one layout and atomic 0600 writer."""
    if _gateway_credentials.install(module, module.params["gateway_credentials_dest"], credentials):
        run.actions.append("gateway_credentials_written")


def certificate_mismatch(bundle, user_id):
    """Why the portal's user id is not the presented certificate's, or None."""
    info = _oces.classify(bundle.certificate)
    parsed = _identity.parse_portal_user_id(user_id)  # whoami checked its form
    if info["cvr"] == parsed["cvr"] and (info["uuid"] or "").lower() == parsed["uuid"]:
        return None
    own = _oces.portal_user_id_of(info) or "a certificate without an OCES3 identity"
    return ("The portal says the presented certificate is %s, but it is %s. No logon was attempted (the "
            "password would go to an account that is not this certificate's). Fix: check that portal_url "
            "is the UFST certificate portal and that the certificate options name the certificate to "
            "register." % (user_id, own))


def fresh_account_overview(whoami):
    """What a never-used account looks like: nobody has logged on, so nothing was set or requested
    (registering needs a logon, and a logon on a new account forces the password change first)."""
    return {"user_id": whoami.get("user_id"), "registration_status": "not_registered",
            "se_number": None, "email": None, "interfaces": [], "gateway_user": None}


def check_mode_run(module, run, whoami):
    """Predict without writing: log on only when the account is in use."""
    if run.account_state == "new":
        run.actions.append("password_changed")
        overview = fresh_account_overview(whoami)
    else:
        run.log_on()
        overview = run.client.overview()
    before = portal.settings_of(overview)
    after_overview = dict(overview)
    if overview["registration_status"] == "not_registered":
        run.actions.append("registration_requested")
        after_overview["registration_status"] = "in_progress"
    if after_overview["registration_status"] == "in_progress" and module.params["wait"]:
        # Assume the registration completes, so that the later steps are predicted too.
        after_overview["registration_status"] = "registered"
    changes = run.wanted_changes(after_overview)
    run.actions.extend(action for action, dummy, dummy2 in changes)
    after = portal.settings_of(run.predicted(after_overview, changes))
    dest = module.params["gateway_credentials_dest"]
    if dest:
        if overview["registration_status"] == "registered":
            # _files only predicts in check mode: content and mode are compared, nothing is written.
            store_credentials(module, run, run.call("gateway_credentials"))
        elif after["registration_status"] == "registered":
            run.actions.append("gateway_credentials_written")
    return before, after, after["registration_status"], overview.get("gateway_user"), None


def real_run(module, run):
    run.log_on()
    overview = run.call("overview")
    before = portal.settings_of(overview)
    if overview.get("registration_status") == "not_registered":
        requested, status = run.call("request_registration")
        if requested:
            run.actions.append("registration_requested")
        overview = run.call("overview") if status != "in_progress" else dict(overview, registration_status=status)
    if overview.get("registration_status") == "in_progress" and module.params["wait"]:
        overview = run.wait_for_registration(run.call("overview"))
    for action, method, value in run.wanted_changes(overview):
        overview = run.call(method, value)
        run.actions.append(action)
    credentials = None
    registered = overview.get("registration_status") == "registered"
    if registered and (module.params["gateway_credentials_dest"] or module.params["return_gateway_password"]):
        credentials = run.call("gateway_credentials")
        if module.params["gateway_credentials_dest"]:
            store_credentials(module, run, credentials)
    after = portal.settings_of(overview)
    gateway_user = overview.get("gateway_user") or (credentials or {}).get("gateway_user")
    return before, after, overview.get("registration_status"), gateway_user, credentials


def argument_spec():
    own = {
        "argument_spec": {
            "portal_url": {"type": "str"},
            "portal_api_profile": {"type": "path"},
            "portal_api_profile_content": {"type": "dict"},
            "password": {"type": "str", "required": True, "no_log": True},
            "se_number": {"type": "str"},
            "email": {"type": "str"},
            "interfaces": {"type": "list", "elements": "str", "choices": list(portal.INTERFACES),
                           "default": ["AS4"]},
            "wait": {"type": "bool", "default": True},
            "wait_timeout": {"type": "int", "default": 900},
            "gateway_credentials_dest": {"type": "path"},
            "return_gateway_password": {"type": "bool", "default": False, "no_log": False},
        },
        "mutually_exclusive": [("portal_api_profile", "portal_api_profile_content")],
    }
    return _client_cert.merge_specs(_client_cert.connection_spec(), own)


def validate_params(module):
    params = module.params
    if not params["interfaces"]:
        module.fail_json(msg="interfaces is empty. Fix: give AS4 and/or FTPS.")
    if params["wait_timeout"] < 0:
        module.fail_json(msg="wait_timeout must be 0 or more seconds. Fix: set wait_timeout.")
    se_number = params["se_number"]
    if se_number and not (len(se_number) == 8 and se_number.isdigit()):
        module.fail_json(msg="se_number must be exactly 8 digits (or an empty string to clear it). "
                             "Fix: correct se_number.")
    dest = params["gateway_credentials_dest"]
    if dest:
        try:
            if os.path.isdir(dest):
                raise _files.FileError("gateway_credentials_dest %s is a directory. Fix: give a file "
                                       "path." % dest)
            if not module.check_mode:
                _files.check_writable(os.path.dirname(os.path.abspath(dest)))
        except _files.FileError as exc:
            module.fail_json(msg=to_native(exc))


def load_profile(module):
    """The portal API profile to use, validated (the task fails here, before any request)."""
    params = module.params
    try:
        if params["portal_api_profile"]:
            return _portal_profile.load(path=params["portal_api_profile"])
        if params["portal_api_profile_content"] is not None:
            return _portal_profile.load(content=params["portal_api_profile_content"],
                                        source="given in portal_api_profile_content")
        return _portal_profile.default_profile()
    except _portal_profile.ProfileError as exc:
        module.fail_json(msg=to_native(exc), reason="invalid_profile")


def portal_base_url(module, profile):
    """portal_url, or the profile's base URL for the environment; https only (checked before anything
    is sent: the logon carries the portal password)."""
    if not module.params["portal_url"] and module.params["environment"] not in profile.base_urls:
        module.fail_json(msg="The portal API profile %s names no base URL for environment %s. Fix: set "
                             "portal_url, or add base_urls.%s to the profile."
                         % (profile.name, module.params["environment"], module.params["environment"]))
    try:
        return portal.check_base_url(_client_cert.base_url(module, "portal_url", profile.base_urls))
    except portal.PortalError as exc:
        module.fail_json(msg=to_native(exc), reason=exc.code)
    return None  # not reached


def main():
    module = _module.DmsModule(groups=[_opt_certificate.CERTIFICATE_SOURCE], **argument_spec())
    _deps.require(module, *LIBRARIES)
    validate_params(module)
    profile = load_profile(module)
    base_url = portal_base_url(module, profile)
    with module.failing_on_errors():
        bundle = _opt_certificate.read_certificate(module, require_key=True)
    session = _client_cert.create_session_for(module, bundle)
    client = portal.PortalClient(session, base_url, profile)
    run = Registration(module, client)
    result = {"changed": False, "actions": run.actions}
    try:
        whoami = run.who_am_i()
        mismatch = certificate_mismatch(bundle, whoami["user_id"])
        if mismatch:
            raise RegistrationFailed(mismatch)
        run.user_id = whoami["user_id"]
        run.account_state = whoami["account_state"]
        result["portal_user_id"] = run.user_id
        if run.account_state == "locked":
            raise RegistrationFailed(portal.locked_message(run.user_id))
        problem = portal.password_problem(module.params["password"], run.user_id)
        if problem and run.account_state == "new":
            raise RegistrationFailed("password cannot become the portal password: %s. Nothing was "
                                     "sent. Fix: choose a password of at least %d characters that does "
                                     "not contain the user id." % (problem, portal.MIN_PASSWORD_LENGTH))
        if module.check_mode:
            before, after, status, gateway_user, credentials = check_mode_run(module, run, whoami)
        else:
            before, after, status, gateway_user, credentials = real_run(module, run)
    except RegistrationFailed as exc:
        client.logout()
        module.fail_json(msg=to_native(exc), actions=run.actions, http=dict(session.stats), **_ids(result))
    except portal.PortalError as exc:
        client.logout()
        module.fail_json(msg=to_native(exc), reason=exc.code, actions=run.actions,
                         http=dict(session.stats), **_ids(result))
    except _files.FileError as exc:
        client.logout()
        module.fail_json(msg=to_native(exc), actions=run.actions, http=dict(session.stats), **_ids(result))
    client.logout()
    result.update({
        "changed": bool(run.actions),
        "account_state": run.account_state,
        "registration_status": status,
        "gateway_user": gateway_user,
        "settings": after,
        "http": dict(session.stats),
    })
    if module.params["gateway_credentials_dest"]:
        result["gateway_credentials_dest"] = module.params["gateway_credentials_dest"]
    if module.params["return_gateway_password"] and credentials:
        result["gateway_password"] = credentials["gateway_password"]
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    module.exit_json(**result)


def _ids(result):
    return {"portal_user_id": result.get("portal_user_id")} if result.get("portal_user_id") else {}


if __name__ == "__main__":
    main()
