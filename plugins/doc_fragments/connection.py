# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """HTTPS connection settings shared by the modules that talk to the portal or the gateway."""

    DOCUMENTATION = r"""
options:
  environment:
    description:
      - Which DMS environment to talk to when no explicit URL is given.
      - V(test) is the TFE test environment named in the onboarding guide, V(production) the
        production one.
    type: str
    choices: [test, production]
    default: test
  ca_path:
    description:
      - PEM file (or directory of hashed PEM files) with the CA certificates that verify the
        server's TLS certificate. Without it the system trust store is used.
      - It must exist on the managed host; the module fails before anything is sent otherwise.
    type: path
  validate_certs:
    description:
      - Verify the server's TLS certificate and host name.
      - Set to V(false) only for throw-away tests; the client certificate and credentials are then
        sent to whoever answers.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for a connection and for each answer; 1 or more.
    type: int
    default: 30
  retries:
    description:
      - How many times a request is repeated after a transient failure (dropped or refused
        connection, HTTP 429, 500, 502, 503 or 504), with exponential backoff and jitter, honouring
        C(Retry-After) up to 60 seconds.
      - Other answers (401, 403, validation errors, TLS verification failures) are never retried.
      - A request that must not reach the service twice (a portal logon, whose failure counts towards
        the lockout) is sent again at most once, and only when it surely was not processed.
    type: int
    default: 5
notes:
  - Only C(https://) URLs are used. Redirects are never followed (a redirect is an error that names where
    it pointed), and answers larger than 1 MiB are not read.
requirements:
  - requests >= 2.32.4 (on the managed host; older versions would ignore O(ca_path) and the client
    certificate, so the modules refuse to run with them)
"""
