# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The registration worksheet: what a person does in the browser for one certificate.  Knows no Ansible.

Used by the filter ``registration_worksheet`` (the registration role's worksheet entries, which the
fleet report and its Markdown worksheet show).  This is the ONLY place that knows the certificate
portal's address as a person opens it in a browser (the guide's login page lives under it); the
portal API's base URLs belong to the portal client.

``WorksheetError(ValueError)``
    Bad input; the message names the problem and the fix.
``PORTAL_WEB_URLS``
    ``{environment: URL}``: test as the guide shows it, production the same path on the production
    host the guide names (model: the guide shows only the test address).
``portal_web_url(environment, override=None) -> str``
    ``override`` when given, else the environment's address.
``credentials_path(variable, portal_user_id) -> str``
    The inventory variable path of a certificate's gateway credentials,
    ``registration_manual_credentials["CVR_..._UI_..."]``.
``entry(certificate, method, environment, ...) -> dict``
    One worksheet entry for a certificate that is not registered yet (``method="portal"``, seen in
    check mode) or whose gateway credentials are not in the inventory yet (``method="manual"``).
    Plain data (text, lists of text): title, steps, the portal address, the certificate's identity,
    the settings to choose, and where the gateway user and password go afterwards.  Never a secret:
    the first-logon password is the portal user id itself, which is public (it is in the certificate).
"""

from __future__ import annotations

import json

PORTAL_WEB_URLS = {
    "test": "https://secureftp.gatewaytest.skat.dk/PortalCertApp/",
    "production": "https://secureftpgateway.skat.dk/PortalCertApp/",
}
METHODS = ("portal", "manual")
KIND = "register_certificate"
TITLES = {
    "manual": "Register the certificate on the portal and put its gateway credentials in the inventory",
    "portal": "Not registered yet: register it by hand, or let the next run without --check do it",
}


class WorksheetError(ValueError):
    """Input the worksheet cannot be made from; the message says what is wrong and the fix."""


def portal_web_url(environment, override=None):
    if override:
        return override
    try:
        return PORTAL_WEB_URLS[environment]
    except KeyError:
        raise WorksheetError("environment %r is not one of %s. Fix: set registration_environment to test or "
                             "production." % (environment, ", ".join(sorted(PORTAL_WEB_URLS)))) from None


def credentials_path(variable, portal_user_id):
    # json.dumps quotes the key the way Jinja2 and YAML both read it.
    return "%s[%s]" % (variable, json.dumps(portal_user_id))


def credentials_yaml(variable, portal_user_id):
    """The lines to add to the vault file (placeholders in angle brackets, nothing secret)."""
    return "\n".join([
        "%s:" % variable,
        "  %s:" % json.dumps(portal_user_id),
        '    gateway_user: "<Gateway user, as the portal shows it>"',
        '    gateway_password: "<Gateway password: press show>"',
    ])


def _required(certificate, key):
    value = certificate.get(key) if isinstance(certificate, dict) else None
    if not value:
        raise WorksheetError("The certificate has no %s, so no worksheet entry can name it. Fix: pass the "
                             "certificate role's certificate_summary or an oces_certificate_info result of an "
                             "OCES3 certificate." % key)
    return str(value)


def _settings_step(email, interfaces):
    what = ['e-mail: %s ("Update e-mail")' % email] if email else []
    what.append("interfaces: tick %s, nothing else" % " and ".join(interfaces))
    return "Set %s." % "; ".join(what)


def _steps(method, url, user_id, common_name, se_number, email, interfaces, path, password_variable):
    steps = [
        "Install the certificate (%s) in the browser of a computer you trust: import its PKCS#12 file; "
        "the onboarding guide's appendix 8.1 shows how." % common_name,
        "Open %s and choose that certificate when the browser asks. The portal must say \"Selected "
        "certificate is for user: %s\"; if it names another user, choose another certificate." % (url, user_id),
    ]
    if method == "manual":
        steps.append("Log on. The first time, the password is the user id itself (%s); the portal then asks "
                     "for a new password: choose one and keep it in your password manager (the automation does "
                     "not need it)." % user_id)
    else:
        steps.append("Log on. The first time, the password is the user id itself (%s); the portal then asks "
                     "for a new password: enter the value of %s (from the vault), so that the automation can "
                     "log on for this certificate later. Another password makes its next run fail its logon, "
                     "and failed logons lock the account." % (user_id, password_variable))
    steps += [
        ("SE-number: %s. Press \"Register certificate\"." % se_number) if se_number else
        "Leave SE-number empty. Press \"Register certificate\".",
        "The registration completes in a few minutes: press \"Refresh\" until the page says \"Your "
        "certificate is registered and ready for use\". (If it says so at once, the certificate was registered "
        "before - for Told ICS, Manifest or Export/Transit, say - and must not be registered again: go on.)",
        _settings_step(email, interfaces),
    ]
    if method == "manual":
        steps += [
            "Press \"show\" beside Gateway password. Put Gateway user and Gateway password in the inventory's "
            "vault as %s.gateway_user and .gateway_password (ansible-vault edit on the vault file; the lines "
            "to add are below). Never put them in a file that is not encrypted." % path,
            "Log out, then run the playbook again: it installs the credentials on every host of this "
            "certificate and tests the gateway connection.",
        ]
    else:
        steps += [
            "Log out and run the playbook again without --check: it logs on with %s, reads the gateway "
            "credentials and installs them on every host of this certificate. (To keep the automation off the "
            "portal for this certificate instead, put the gateway user and password in the vault as %s and set "
            "registration_method: manual for its hosts.)" % (password_variable, path),
        ]
    return steps


def entry(certificate, method, environment, portal_url=None, se_number="", email="", interfaces=("AS4",),
          credentials_variable="registration_manual_credentials", password_variable="registration_password"):
    """A worksheet entry for CERTIFICATE (a dict with portal_user_id, common_name, certificate_type,
    not_after, fingerprint_sha256, cvr; the certificate role's certificate_summary or an
    oces_certificate_info result)."""
    if method not in METHODS:
        raise WorksheetError("method %r is not one of %s. Fix: set registration_method to portal or manual."
                             % (method, ", ".join(METHODS)))
    user_id = _required(certificate, "portal_user_id")
    interfaces = [str(name) for name in (interfaces or [])]
    if not interfaces:
        raise WorksheetError("interfaces is empty. Fix: set registration_interfaces (AS4 for DMS).")
    se_number = str(se_number or "")
    email = str(email or "")
    url = portal_web_url(environment, portal_url)
    common_name = str(certificate.get("common_name") or certificate.get("subject") or user_id)
    path = credentials_path(credentials_variable, user_id)
    return {
        "kind": KIND,
        "method": method,
        "title": TITLES[method],
        "environment": environment,
        "portal_url": url,
        "portal_user_id": user_id,
        "first_logon_password": "the portal user id, %s (the portal then asks for a new password)" % user_id,
        "common_name": common_name,
        "certificate_type": certificate.get("certificate_type"),
        "cvr": certificate.get("cvr"),
        "not_after": certificate.get("not_after"),
        "fingerprint_sha256": certificate.get("fingerprint_sha256"),
        "se_number": se_number,
        "email": email,
        "interfaces": interfaces,
        "credentials_variable": path,
        "credentials_yaml": credentials_yaml(credentials_variable, user_id),
        "steps": _steps(method, url, user_id, common_name, se_number, email, interfaces, path,
                        password_variable),
    }
