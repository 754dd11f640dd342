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
  - dkcustoms.dms.connection
  - dkcustoms.dms.certificate_source
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

from ansible_collections.dkcustoms.dms.plugins.module_utils import _deps, _opt_certificate, _opt_connection, _registration
from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_client as portal
from ansible_collections.dkcustoms.dms.plugins.module_utils import _portal_profile
from ansible_collections.dkcustoms.dms.plugins.module_utils._module import DmsModule

LIBRARIES = ("cryptography", "requests", "jmespath")

OPTIONS = {
    "portal_url": {"type": "str"},
    "portal_api_profile": {"type": "path"},
    "portal_api_profile_content": {"type": "dict"},
    "password": {"type": "str", "required": True, "no_log": True},
    "se_number": {"type": "str"},
    "email": {"type": "str"},
    "interfaces": {"type": "list", "elements": "str", "choices": list(portal.INTERFACES), "default": ["AS4"]},
    "wait": {"type": "bool", "default": True},
    "wait_timeout": {"type": "int", "default": 900},
    "gateway_credentials_dest": {"type": "path"},
    "return_gateway_password": {"type": "bool", "default": False, "no_log": False},
}


def create_module():
    return DmsModule(OPTIONS, groups=(_opt_certificate.CERTIFICATE_SOURCE, _opt_connection.group()),
                     mutually_exclusive=[("portal_api_profile", "portal_api_profile_content")])


def result_of(module, outcome, http):
    """The module result of a run (no secret unless return_gateway_password asks for it)."""
    params = module.params
    credentials = outcome.credentials or {}
    result = {
        "changed": bool(outcome.actions), "actions": outcome.actions, "portal_user_id": outcome.user_id,
        "account_state": outcome.account_state, "registration_status": outcome.after["registration_status"],
        "gateway_user": outcome.after["gateway_user"] or credentials.get("gateway_user"),
        "settings": outcome.after, "http": http,
    }
    if params["gateway_credentials_dest"]:
        result["gateway_credentials_dest"] = params["gateway_credentials_dest"]
    if params["return_gateway_password"] and credentials:
        result["gateway_password"] = credentials["gateway_password"]
    if module._diff:
        result["diff"] = {"before": outcome.before, "after": outcome.after}
    return result


def main():
    module = create_module()
    _deps.require(module, *LIBRARIES)
    params = module.params
    with module.failing_on_errors():
        wanted = _registration.wanted_from(params, module.check_mode)
        profile = _portal_profile.select(params["portal_api_profile"], params["portal_api_profile_content"])
        base_url = portal.base_url_for(params["portal_url"], params["environment"], profile)
        connection = _opt_connection.Connection.from_params(params)
        bundle = _opt_certificate.read_certificate(module, require_key=True)
        for warning in connection.warnings():
            module.warn(warning)
        session = connection.session(bundle)
        client = portal.PortalClient(session, base_url, profile)
        credentials_file = _registration.CredentialsFile(module, wanted.credentials_dest)
        outcome = _registration.run(client, bundle.certificate, wanted, params["password"], credentials_file,
                                    module.check_mode)
    module.exit_json(**result_of(module, outcome, dict(session.stats)))


if __name__ == "__main__":
    main()
