# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one connection: its options, their validation, the service URL, the session, the retry policy.

Owns: the option group ``connection`` (``environment``, ``ca_path``, ``validate_certs``, ``timeout``,
``retries``; documented by the doc fragment ``dkcustoms.dms.connection``), ``Connection`` (those options,
validated once), ``resolve_url`` (an explicit URL option or the environment's default) and ``RetryPolicy``
(the one definition of a transient HTTP status, of backoff and of ``Retry-After``, and of which requests
may be sent again).  Knows Ansible: no (plain values in, ``ConnectionOptionError`` out); a module uses::

    module = DmsModule({...own options...}, groups=(_opt_connection.group(), ...))
    with module.failing_on_errors():
        connection = _opt_connection.Connection.from_params(module.params)
        for warning in connection.warnings():
            module.warn(warning)
        session = connection.session(bundle)        # _http.DmsSession presenting the bundle
"""

from __future__ import annotations

import email.utils
import os
import random
import time
from collections import namedtuple
from urllib.parse import urlsplit

from ansible_collections.dkcustoms.dms.plugins.module_utils import _http
from ansible_collections.dkcustoms.dms.plugins.module_utils._errors import DmsError
from ansible_collections.dkcustoms.dms.plugins.module_utils._module import OptionGroup

ENVIRONMENTS = ("test", "production")
DEFAULT_TIMEOUT = 30
DEFAULT_RETRIES = 5
OPTIONS = ("environment", "ca_path", "validate_certs", "timeout", "retries")


class ConnectionOptionError(DmsError):
    """A connection option that cannot work; the message names the option and the fix."""

    reason = "invalid_option"


def group(default_timeout=DEFAULT_TIMEOUT, default_retries=DEFAULT_RETRIES):
    """The option group ``connection`` (a module may choose its own defaults for timeout and retries)."""
    return OptionGroup("connection", {
        "environment": {"type": "str", "default": "test", "choices": list(ENVIRONMENTS)},
        "ca_path": {"type": "path"},
        "validate_certs": {"type": "bool", "default": True},
        "timeout": {"type": "int", "default": default_timeout},
        "retries": {"type": "int", "default": default_retries},
    })


class RetryPolicy:
    """When a request is sent again, and after how long.

    Transient: HTTP 429 and the 5xx answers of a busy or restarting service or proxy (500, 502, 503, 504),
    and a connection that dropped or was refused (the transport decides which exceptions those are).
    A request that must not reach the service twice (``replay_safe=False``: a logon, whose failure counts
    towards the lockout) is sent again only after an answer that says it was not processed (429, 503) or
    a connection that never opened, and at most ``MAX_REPLAY_UNSAFE_RESENDS`` times.  A service whose own
    answers come as HTTP 500 (AS4: the ebMS error signal) names it in ``answer_statuses``.
    The delay is the server's ``Retry-After`` (capped at ``retry_after_max``) or an exponential backoff
    with jitter, which spreads a fleet's retries apart.
    """

    TRANSIENT_STATUSES = frozenset((429, 500, 502, 503, 504))
    NOT_PROCESSED_STATUSES = frozenset((429, 503))
    MAX_REPLAY_UNSAFE_RESENDS = 1

    def __init__(self, retries=DEFAULT_RETRIES, backoff_base=0.5, backoff_max=10.0, retry_after_max=60.0,
                 answer_statuses=(), sleep=time.sleep):
        self.retries = max(0, int(retries))
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self.answer_statuses = frozenset(answer_statuses)
        self.sleep = sleep

    def limit(self, replay_safe=True):
        """How many times a request may be sent again."""
        return self.retries if replay_safe else min(self.retries, self.MAX_REPLAY_UNSAFE_RESENDS)

    def is_transient(self, status, replay_safe=True):
        """Whether an answer with HTTP ``status`` is worth sending the request again."""
        if status in self.answer_statuses:
            return False
        return status in (self.TRANSIENT_STATUSES if replay_safe else self.NOT_PROCESSED_STATUSES)

    def delay(self, attempt, retry_after=None):
        """Seconds to wait before resend number ``attempt + 1`` (``retry_after``: the header's value)."""
        seconds = parse_retry_after(retry_after)
        if seconds is not None:
            return min(seconds, self.retry_after_max)
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** attempt))
        return random.uniform(ceiling / 2.0, ceiling)


def parse_retry_after(value, now=None):
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None`` if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def resolve_url(url, environment, defaults, option="url"):
    """``url`` or the default for ``environment``, without a trailing slash; an https URL with a host."""
    if not url and environment not in defaults:
        raise ConnectionOptionError("%s is not set and there is no default for environment %s. Fix: set %s."
                                    % (option, environment, option))
    resolved = (url or defaults[environment]).rstrip("/")
    parts = urlsplit(resolved)
    if parts.scheme != "https" or not parts.hostname:
        raise ConnectionOptionError(
            "%s must be an https:// URL with a host name, not %s. Fix: give the service's https:// base URL, "
            "e.g. %s." % (option, _http.origin(resolved), sorted(defaults.values())[-1] if defaults
                          else "https://host:port"))
    return resolved


class Connection(namedtuple("Connection", OPTIONS)):
    """The connection options, validated: build it with ``from_params``."""

    __slots__ = ()

    @classmethod
    def from_params(cls, params):
        """The options of ``params`` (a module's), or ``ConnectionOptionError`` naming the one that is wrong."""
        connection = cls(**{name: params.get(name) for name in OPTIONS})
        if connection.timeout is None or connection.timeout <= 0:
            raise ConnectionOptionError("timeout must be a positive number of seconds. Fix: set timeout >= 1.")
        if connection.retries is None or connection.retries < 0:
            raise ConnectionOptionError("retries must be 0 or more. Fix: set retries >= 0.")
        if connection.ca_path and not os.path.exists(connection.ca_path):
            raise ConnectionOptionError(
                "ca_path %s does not exist on the managed host. Fix: copy the CA bundle there or correct "
                "ca_path." % connection.ca_path)
        return connection

    def warnings(self):
        """What the user should hear about these options (never a reason to stop)."""
        if self.validate_certs:
            return []
        return ["validate_certs=false: the server is not verified, so the client certificate and any "
                "credentials go to whoever answers. Use it only for throw-away tests."]

    def policy(self, answer_statuses=(), sleep=time.sleep):
        """The ``RetryPolicy`` for ``retries``."""
        return RetryPolicy(self.retries, answer_statuses=answer_statuses, sleep=sleep)

    def ssl_context(self, bundle=None):
        """The ``ssl.SSLContext`` of these options, presenting ``bundle`` (an ``_oces.Bundle``) if given."""
        client_cert = _http.client_cert_from_bundle(bundle) if bundle is not None else None
        return _http.create_ssl_context(ca_path=self.ca_path, validate_certs=self.validate_certs,
                                        client_cert=client_cert)

    def session(self, bundle=None, policy=None):
        """An ``_http.DmsSession`` with these options (``policy``: default ``self.policy()``),
        presenting ``bundle`` if given; ``_http.HttpError`` (a ``DmsError``) when TLS cannot be set up."""
        return _http.create_session(self.ssl_context(bundle), timeout=self.timeout,
                                    policy=policy if policy is not None else self.policy())
