# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""HTTPS sessions for the portal and the gateway.  Knows no Ansible (unit-testable, reusable).

Public API (private to this collection, but stable for its modules):

``create_session(ssl_context, timeout, policy=None)``
    A ``requests.Session`` (``DmsSession``) that uses ``ssl_context`` (server verified against
    ``ca_path`` or the system trust store, client certificate presented) for every request, applies
    ``timeout``, and retries transient failures as ``policy`` (``_opt_connection.RetryPolicy``, the one
    definition of "transient") says.  Which exceptions count as a dropped or refused connection, and
    which surely were not sent, is decided here (it takes the transport's exception types).
    It sends only to ``https://`` URLs, never follows a redirect (a 3xx raises ``RedirectError``:
    a redirect would carry the request body, passwords included, to wherever it points), and
    reads at most ``max_answer_bytes`` (1 MiB) of any answer (more raises ``AnswerTooLargeError``).
    Modules build it with ``_opt_connection.Connection.session``.
``client_cert_from_bundle(bundle)``
    ``(chain_pem_bytes, private_key)`` from anything with ``certificate``, ``private_key``, ``chain``
    attributes (``_oces.Bundle``).
``create_ssl_context(ca_path=None, validate_certs=True, client_cert=None)``
    The ``ssl.SSLContext`` the session uses; also usable for raw TLS probes.
``HttpError`` and its subclasses ``TLSHandshakeError`` (with the specific ``TLSVerificationError``
and ``ClientCertificateError``), ``UnreachableError``, ``RequestTimeoutError``, ``HTTPStatusError``,
``RedirectError``, ``AnswerTooLargeError``, ``InsecureURLError``
    Classified failures.  ``str(exc)`` names the cause and the fix and never contains a secret
    (no request bodies, headers or key material are ever put into a message).
``origin(url)``
    ``scheme://host:port`` of a URL, for messages (never a path, query string or user info).
``error_from_response(response, what)``
    ``HTTPStatusError`` for a non-2xx answer, with the JSON ``error`` code and ``detail`` parsed.
"""

from __future__ import annotations

import os
import re
import secrets
import ssl
import tempfile
from collections import namedtuple
from urllib.parse import urljoin, urlsplit

from ansible_collections.dkcustoms.dms.plugins.module_utils import _deps
from ansible_collections.dkcustoms.dms.plugins.module_utils._errors import DmsError

# The transport adapter hook this file uses to hand requests its SSL context (ca_path and the client
# certificate) exists from requests 2.32.2 on; older versions never call it and would silently verify
# against certifi and present no client certificate, so an older requests counts as missing.  The floor
# is higher still (2.32.2 itself fails verification against ca_path): the one floor is _deps's.
REQUESTS_REQUIREMENT = _deps.LIBRARIES["requests"][1]

try:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.exceptions import NewConnectionError
except ImportError as _exc:  # pragma: no cover - reported by the module (_deps.require)
    requests = None
    HTTPAdapter = object
    NewConnectionError = ()
    REQUESTS_IMPORT_ERROR = _exc
else:
    REQUESTS_IMPORT_ERROR = None if not _deps.too_old("requests") else ImportError(
        "requests %s is too old: %s is needed (older versions ignore ca_path and the client "
        "certificate)" % (getattr(requests, "__version__", "?"), REQUESTS_REQUIREMENT))
HAS_REQUESTS = REQUESTS_IMPORT_ERROR is None

try:
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - reported by the module (_deps.require)
    serialization = None

# Portal and gateway answers are small JSON or SOAP documents; anything bigger is not the service.
DEFAULT_MAX_ANSWER_BYTES = 1024 * 1024
_READ_CHUNK = 64 * 1024
USER_AGENT = "dkcustoms.dms"

ClientCert = namedtuple("ClientCert", ["chain_pem", "private_key"])
RetryEvent = namedtuple("RetryEvent", ["method", "path", "reason", "delay"])


class _Resend(Exception):
    """One attempt ended transiently: send again (after ``Retry-After`` if the answer gave one)."""

    def __init__(self, reason, retry_after=None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class HttpError(DmsError):
    """A classified HTTP/TLS failure; the message names the cause and the fix; ``reason`` is ``kind``."""

    kind = "http_error"

    def __init_subclass__(cls, kind=None, **kwargs):
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls.kind = kind

    def __init__(self, message, url=None):
        super().__init__(message, reason=self.kind)
        self.url = url

    def amend(self, message):
        """Replace the message (adding what the retries saw)."""
        self.msg = message
        self.args = (message,)


# The classified failures; ``kind`` (= ``reason``) tells them apart in a playbook.
class TLSHandshakeError(HttpError, kind="tls_handshake"):
    """The TLS handshake failed (base of the two specific cases below)."""


class TLSVerificationError(TLSHandshakeError, kind="tls_verification_failed"):
    """The server certificate is not trusted (wrong CA, wrong host name, expired ...)."""


class ClientCertificateError(TLSHandshakeError, kind="client_certificate"):
    """The client certificate could not be loaded, or the server refused it."""


class UnreachableError(HttpError, kind="unreachable"):
    """No answer: no connection, or it dropped."""


class RequestTimeoutError(HttpError, kind="timeout"):
    """No answer within the timeout."""


class RedirectError(HttpError, kind="redirect"):
    """A 3xx answer: redirects are never followed (the body, passwords included, would go along)."""


class AnswerTooLargeError(HttpError, kind="answer_too_large"):
    """The answer is larger than the session reads (``max_answer_bytes``)."""


class InsecureURLError(HttpError, kind="insecure_url"):
    """A URL that is not ``https://``: nothing is sent in clear text."""


class HTTPStatusError(HttpError, kind="http_status"):
    """A non-2xx answer (after retries, for transient statuses)."""

    def __init__(self, message, url=None, status=None, error_code=None, detail=None, body=None):
        super().__init__(message, url=url)
        self.status = status
        self.error_code = error_code
        self.detail = detail
        self.body = body if body is not None else {}


def origin(url):
    """scheme://host:port of ``url``: messages name the service, never a path, a query string or
    user:password@ (any of which may hold a secret)."""
    parts = urlsplit(url or "")
    host = parts.hostname or ""
    if ":" in host:
        host = "[%s]" % host
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme and host:
        return "%s://%s%s" % (parts.scheme, host, ":%d" % port if port else "")
    # Not a URL with a host: the text up to its first path, query or fragment, without user info.
    return re.split(r"[/?#]", url or "", maxsplit=1)[0].rsplit("@", 1)[-1][:100] or repr(url or "")


_origin = origin  # the name earlier code used


def _path(url):
    return urlsplit(url or "").path or "/"


def client_cert_from_bundle(bundle):
    """``ClientCert`` (leaf + chain as PEM, key object) from an ``_oces.Bundle``-like object."""
    pem = bundle.certificate.public_bytes(serialization.Encoding.PEM)
    for cert in bundle.chain or ():
        pem += cert.public_bytes(serialization.Encoding.PEM)
    return ClientCert(pem, bundle.private_key)


def _load_client_cert(context, client_cert):
    """Load an in-memory certificate chain and key into ``context``.

    The ``ssl`` module loads client keys only from files.  So that no usable key ever touches the
    disk, the key is written PKCS#8-*encrypted* with a random one-time password that exists only in
    this process's memory, to a 0600 temp file that is deleted right after loading.  Anyone who
    reads the file in that window gets ciphertext only.
    """
    chain_pem, private_key = client_cert
    one_time_password = secrets.token_urlsafe(32).encode("ascii")
    encrypted_key = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_time_password),
    )
    fd, path = tempfile.mkstemp(prefix="dms-client-", suffix=".pem")  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(chain_pem + b"\n" + encrypted_key)
        context.load_cert_chain(path, password=one_time_password)
    except ssl.SSLError as exc:
        raise ClientCertificateError(
            "The client certificate could not be loaded for TLS (%s). Fix: give a certificate and "
            "the private key that belongs to it." % reason_of(exc)
        ) from None
    finally:
        os.unlink(path)


def create_ssl_context(ca_path=None, validate_certs=True, client_cert=None):
    """TLS 1.2+ client context: server verified against ``ca_path`` (file or directory) or the
    system trust store, unless ``validate_certs`` is false; optional client certificate."""
    if validate_certs:
        context = ssl.create_default_context()
        if ca_path:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            try:
                if os.path.isdir(ca_path):
                    context.load_verify_locations(capath=ca_path)
                else:
                    context.load_verify_locations(cafile=ca_path)
            except (ssl.SSLError, OSError) as exc:
                raise TLSVerificationError(
                    "ca_path %s could not be read as PEM CA certificates (%s). Fix: give a PEM file "
                    "with the CA certificate(s) that issued the server certificate."
                    % (ca_path, reason_of(exc))
                ) from None
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if client_cert is not None:
        _load_client_cert(context, client_cert)
    return context


class _ContextAdapter(HTTPAdapter):
    """Transport adapter that uses one prepared ``SSLContext`` for every HTTPS pool.

    requests would otherwise re-apply its own CA bundle (certifi) and file-based client certificate
    settings per request; the context already holds exactly what was configured.
    """

    def __init__(self, ssl_context, **kwargs):
        self._ssl_context = ssl_context
        super().__init__(**kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, _unused = super().build_connection_pool_key_attributes(request, verify, cert)
        pool_kwargs = {}
        if host_params.get("scheme") == "https":
            pool_kwargs["ssl_context"] = self._ssl_context
            if self._ssl_context.verify_mode == ssl.CERT_NONE:
                pool_kwargs["cert_reqs"] = "CERT_NONE"
                pool_kwargs["assert_hostname"] = False
        return host_params, pool_kwargs

    def cert_verify(self, conn, url, verify, cert):
        """Everything is in the SSL context; keep requests from adding certifi or cert files."""


def exception_chain(exc):
    """``exc`` and the exceptions behind it (cause, context, a wrapped ``args[0]`` or ``reason``)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        reason = getattr(exc, "reason", None)
        nxt = exc.__cause__ or exc.__context__
        if nxt is None and exc.args and isinstance(exc.args[0], BaseException):
            nxt = exc.args[0]
        if nxt is None and isinstance(reason, BaseException):
            nxt = reason
        exc = nxt


def _own_words(exc):
    """What one exception says about itself, or None (an errno, a wrapped exception say nothing)."""
    reason = getattr(exc, "reason", None)
    if isinstance(exc, ssl.SSLError) and getattr(exc, "verify_message", None):
        return "%s: %s" % (exc.reason or "SSL error", exc.verify_message)
    if isinstance(reason, str) and reason:
        return reason
    if getattr(exc, "strerror", None):
        return str(exc.strerror)
    if exc.args and isinstance(exc.args[0], str):
        return exc.args[0]
    return None


def reason_of(exc):
    """The innermost library reason of an exception, on one line, without request data."""
    texts = [text for text in map(_own_words, exception_chain(exc)) if text]
    return " ".join((texts[-1] if texts else type(exc).__name__).split())[:300]


def _chain_text(exc):
    return " | ".join("%s %s" % (type(item).__name__, item) for item in exception_chain(exc)).lower()


def snippet(body, limit=160):
    """The start of an answer's body on one line, for a message (an answer never holds our secrets)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


# TLS alerts by which a server asks for, or refuses, our client certificate, by what they mean.
ALERT_NONE_SENT = ("certificate required",)
ALERT_UNKNOWN_CA = ("unknown ca",)
ALERT_REJECTED = ("bad certificate", "certificate unknown", "access denied", "handshake failure",
                  "certificate expired", "certificate revoked", "unsupported certificate")
CLIENT_CERT_ALERTS = ALERT_NONE_SENT + ALERT_UNKNOWN_CA + ALERT_REJECTED


def client_certificate_alert(text):
    """The alert about our client certificate that ``text`` (an error's words) names, or None."""
    text = text.lower().replace("_", " ")
    for alert in CLIENT_CERT_ALERTS:
        if "alert " + alert in text:
            return alert
    return None


def classify_exception(exc, url, timeout):
    """Turn a requests/urllib3/ssl exception into an ``HttpError`` whose message names the fix."""
    service = origin(url)
    text = _chain_text(exc)
    if "certificate verify failed" in text or "hostname mismatch" in text or "doesn't match" in text:
        return TLSVerificationError(
            "TLS verification of the server certificate of %s failed (%s). Fix: set ca_path to the "
            "CA bundle that issued the server certificate and use the host name in its "
            "subjectAltName; validate_certs=false only for throw-away tests." % (service, reason_of(exc)),
            url=url,
        )
    if client_certificate_alert(text):
        return ClientCertificateError(
            "%s refused the TLS client certificate during the handshake (%s). Fix: present an OCES3 "
            "certificate from a CA the service trusts, unexpired, with its private key."
            % (service, reason_of(exc)),
            url=url,
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return RequestTimeoutError(
            "%s did not answer within %s seconds. Fix: check that the service is up and reachable "
            "from this host, or raise timeout." % (service, timeout),
            url=url,
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return TLSHandshakeError(
            "The TLS handshake with %s failed (%s). Fix: a server that refuses the client "
            "certificate often just closes the connection: present an OCES3 certificate from a CA "
            "it trusts; otherwise check that the URL is the HTTPS service (TLS 1.2 or later)."
            % (service, reason_of(exc)),
            url=url,
        )
    if any(word in text for word in ("closed connection", "connection reset", "connection aborted",
                                     "remotedisconnected", "broken pipe")):
        return UnreachableError(
            "%s dropped the connection without answering (%s). Fix: the service is overloaded or "
            "restarting - retry later or raise retries; if it persists, check proxies and firewalls "
            "between this host and the service." % (service, reason_of(exc)),
            url=url,
        )
    return UnreachableError(
        "%s is unreachable (%s). Fix: check the URL, DNS, firewall and proxy settings, and that the "
        "service is running." % (service, reason_of(exc)),
        url=url,
    )


def _is_retryable_exception(exc):
    """Dropped/refused connections and connect timeouts: nothing (or nothing complete) was
    processed.  Not TLS failures (retrying cannot fix them) nor read timeouts (the server may be
    working on it; a repeat would double the load on an already slow service)."""
    if isinstance(exc, requests.exceptions.SSLError):
        text = _chain_text(exc)
        # A reset during the TLS handshake is a dropped connection, not a certificate problem.
        return ("reset" in text or "eof" in text) and not client_certificate_alert(text)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.Timeout):
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        return not client_certificate_alert(_chain_text(exc))
    return False


def _surely_not_sent(exc):
    """True when the request cannot have reached the service: the connection or the TLS handshake
    never completed.  A connection dropped after the request was sent is not such a case."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.SSLError):
        return _is_retryable_exception(exc)  # a reset during the handshake: nothing was sent
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError)
    return False


def _require_https(url):
    """Refuse anything but https: neither a request body nor a client certificate goes out in clear."""
    parts = urlsplit(url or "")
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise InsecureURLError(
            "%s is not an https:// URL; nothing was sent. Fix: give the service's https:// address "
            "(the portal and the gateway are only reached over verified TLS)." % origin(url),
            url=url)


def _redirect_error(response, method, url):
    """``RedirectError`` naming where the redirect points (its origin only: no path, no query)."""
    location = response.headers.get("Location")
    target = origin(urljoin(url, location)) if location else "nowhere (no Location header)"
    response.close()
    return RedirectError(
        "%s %s at %s answered HTTP %d, a redirect to %s. Redirects are never followed (the request, "
        "passwords included, would go along), so nothing was sent there. Fix: give the service's "
        "own https:// address as the URL option (portal_url / url), or have the proxy or load "
        "balancer in between pass requests on instead of redirecting them."
        % (method, _path(url), origin(url), response.status_code, target),
        url=url)


def _too_large(method, url, limit, what):
    return AnswerTooLargeError(
        "%s %s at %s sent an answer larger than %d bytes (%s); it was not read further. Fix: the "
        "portal and the gateway answer with small documents - check that the URL points at the "
        "service and not at a proxy, a download or another service." % (
            method, _path(url), origin(url), limit, what),
        url=url)


class DmsSession(requests.Session if HAS_REQUESTS else object):
    """``requests.Session`` with a default timeout, the retries of a ``RetryPolicy`` and classified errors.

    Without a ``policy`` every request is sent once and every answer returned as it is (for AS4 an
    HTTP 500 is the gateway's answer, and a resend needs a new message: the caller retries).
    ``stats`` counts ``attempts`` (HTTP requests sent, retries included) and ``retries``;
    ``retry_events`` lists each retry (method, path, reason, delay) for debug output.
    """

    def __init__(self, timeout, policy=None, max_answer_bytes=DEFAULT_MAX_ANSWER_BYTES):
        super().__init__()
        self.timeout = timeout
        self.policy = policy
        self.max_answer_bytes = max_answer_bytes
        self.stats = {"attempts": 0, "retries": 0}
        self.retry_events = []
        self.headers["User-Agent"] = USER_AGENT
        self.trust_env = False  # no netrc credentials or env CA bundles slipping in

    def _wait(self, method, url, reason, delay):
        self.stats["retries"] += 1
        self.retry_events.append(RetryEvent(method, _path(url), reason, round(delay, 2)))
        self.policy.sleep(delay)

    def request(self, method, url, replay_safe=True, **kwargs):
        """Send with the policy's retries.  Returns the response, its body already read (at most
        ``max_answer_bytes``), for every status that is not transient and not a redirect (the caller
        decides what a 4xx means); raises ``HttpError`` subclasses otherwise.

        ``replay_safe=False`` is for requests that must not reach the service twice, such as a
        logon (a second failed attempt counts towards a lockout): see ``RetryPolicy``."""
        _require_https(url)
        kwargs.setdefault("timeout", self.timeout)
        kwargs["allow_redirects"] = False
        kwargs["stream"] = True  # read by _read_capped, never whole
        limit = self.policy.limit(replay_safe) if self.policy is not None else 0
        attempt = 0
        while True:
            self.stats["attempts"] += 1
            try:
                response = self._send(method, url, attempt, attempt < limit, replay_safe, **kwargs)
            except _Resend as resend:
                self._wait(method, url, resend.reason, self.policy.delay(attempt, resend.retry_after))
                attempt += 1
                continue
            if self.policy is None or not self.policy.is_transient(response.status_code, replay_safe):
                return response
            raise self._exhausted(response, attempt + 1)

    def _send(self, method, url, attempt, may_resend, replay_safe, **kwargs):
        """One attempt: the answer, or ``_Resend`` when it is transient and ``may_resend``."""
        try:
            response = super().request(method, url, **kwargs)
            self._read_capped(response, method, url)
        except requests.exceptions.RequestException as exc:
            retryable = _is_retryable_exception(exc) if replay_safe else _surely_not_sent(exc)
            if may_resend and retryable:
                raise _Resend(type(exc).__name__) from None
            error = classify_exception(exc, url, kwargs["timeout"])
            if attempt:
                error.amend("%s (after %d attempts)" % (error.msg, attempt + 1))
            raise error from None
        if 300 <= response.status_code <= 399:
            raise _redirect_error(response, method, url)
        if may_resend and self.policy.is_transient(response.status_code, replay_safe):
            response.close()
            raise _Resend("HTTP %d" % response.status_code, response.headers.get("Retry-After"))
        return response

    def _read_capped(self, response, method, url):
        """Read the body in chunks, giving up (and closing the connection) past the limit, so a
        hostile or broken peer cannot make this process hold an answer of any size."""
        limit = self.max_answer_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            response.close()
            raise _too_large(method, url, limit, "it announced %s bytes" % declared)
        chunks, size = [], 0
        for chunk in response.iter_content(_READ_CHUNK):
            size += len(chunk)
            if size > limit:
                response.close()
                raise _too_large(method, url, limit, "more than that arrived")
            chunks.append(chunk)
        # What Response.content does after reading; setting it lets .content and .json() serve
        # the capped body.
        response._content = b"".join(chunks)  # pylint: disable=protected-access
        response._content_consumed = True  # pylint: disable=protected-access

    @staticmethod
    def _exhausted(response, attempts):
        base = error_from_response(response, "%s %s" % (response.request.method, _path(response.url)))
        base.amend("%s; still failing after %d attempts. Fix: the service is overloaded or in maintenance; "
                   "retry later or raise retries." % (base.msg, attempts))
        return base


def _json_body(response):
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def error_from_response(response, what):
    """``HTTPStatusError`` for ``response``; the message holds the status, the service's error code
    and its ``detail`` sentence (the portal's details never echo request data)."""
    body = _json_body(response)
    code = body.get("error") if isinstance(body.get("error"), str) else None
    detail = body.get("detail") if isinstance(body.get("detail"), str) else None
    message = "%s at %s answered HTTP %d" % (what, origin(response.url), response.status_code)
    if code:
        message += " %s" % code
    if detail:
        message += ": %s" % detail[:300]
    return HTTPStatusError(message, url=response.url, status=response.status_code,
                           error_code=code, detail=detail, body=body)


def create_session(ssl_context, timeout, policy=None, max_answer_bytes=DEFAULT_MAX_ANSWER_BYTES):
    """A ``DmsSession`` that uses ``ssl_context`` (``create_ssl_context``) for every HTTPS request and
    retries as ``policy`` (an ``_opt_connection.RetryPolicy``) says; no policy: one attempt each."""
    session = DmsSession(timeout, policy=policy, max_answer_bytes=max_answer_bytes)
    session.verify = ssl_context.verify_mode != ssl.CERT_NONE
    session.mount("https://", _ContextAdapter(ssl_context))
    session.ssl_context = ssl_context
    return session
