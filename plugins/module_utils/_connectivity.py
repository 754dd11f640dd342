# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The layered gateway connection test: ``run_checks(certificate, connection, probe) -> report``.

Layers, in order (``LAYERS``): ``dns``, ``tcp``, ``tls``, ``client_certificate``, ``authentication``,
``as4``.  Each check is a function of what the layer before it found (``check_tcp`` of the addresses
``check_dns`` resolved, ``check_tls`` of the ``Peer`` that accepted TCP, ...) and returns ``Passed``
(its detail, the value the next layer needs, its warnings) or raises ``LayerFailed``; nothing is
shared or changed between them.  dns, tcp and tls use raw ``socket`` / ``ssl`` so that the three are
told apart (a single HTTP library call would blur them into "connection error"); the AS4 message goes
out with the collection's requests session (``_http``), retried as ``_opt_connection.RetryPolicy``
says.  See docs/connectivity.md.

The report is a dict: ``ok``, ``result``, ``failed_layer``, ``layers`` (``{name, status (pass|fail|
skipped), duration_ms, detail, hint}``), ``answer_signature`` (what the answer's signature proved),
``pin`` (the signer to pin, when a pin file is used), ``notification``, ``ebms_error``, ``message_id``,
``answer``, ``endpoint``, ``warnings``.
Knows Ansible: no.  ``DmsError`` (from ``_gateway_probe`` / ``_as4``) when the inputs cannot work.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import time
from collections import namedtuple
from urllib.parse import urlsplit

from ansible_collections.dkcustoms.dms.plugins.module_utils import _as4, _http
from ansible_collections.dkcustoms.dms.plugins.module_utils._gateway_probe import LAYERS, ProbeOptionError

try:
    from cryptography import x509
except ImportError:  # pragma: no cover - reported by the module (_deps.require)
    x509 = None

RESULTS = ("SUCCESS", "DNS_ERROR", "CONNECT_ERROR", "TLS_ERROR", "CLIENT_CERT_REJECTED", "AUTH_FAILED",
           "AS4_ERROR", "INVALID_SIGNAL", "NO_SIGNAL")
LAYER_RESULT = {"dns": "DNS_ERROR", "tcp": "CONNECT_ERROR", "tls": "TLS_ERROR",
                "client_certificate": "CLIENT_CERT_REJECTED", "authentication": "AUTH_FAILED"}
EXPIRY_WARNING_DAYS = 30

# OpenSSL X509_V_ERR_* codes that ssl.SSLCertVerificationError.verify_code carries.
_V_ERR_EXPIRED = 10
_V_ERR_NOT_YET_VALID = 9
_V_ERR_HOSTNAME = (62, 64)  # host name, IP address mismatch
_V_ERR_UNKNOWN_CA = (2, 18, 19, 20, 21, 27)

# What the layers hand on.  Target: where the probe goes; Peer: the address that accepted TCP;
# Exchange: the message sent and what came back (its last attempt).
Target = namedtuple("Target", "host port path")
Peer = namedtuple("Peer", "host port family socktype proto sockaddr timeout path")
Exchange = namedtuple("Exchange", "message notification response post_error answer post_ms classify_ms")


class Passed(namedtuple("Passed", "detail value warnings", defaults=(None, ()))):
    """A layer that passed: what it found (``detail``), what the next layer needs, what to warn about."""

    __slots__ = ()


class LayerSkipped(Exception):
    """Raised inside a layer check that cannot be judged; the message says why."""


class LayerFailed(Exception):
    """Raised inside a layer check: ``detail`` says what happened, ``hint`` what to do."""

    def __init__(self, detail, hint, result=None):
        super().__init__(detail)
        self.detail = detail
        self.hint = hint
        self.result = result


def _ms(start):
    return int(round((time.monotonic() - start) * 1000))


def _alert_text(exc):
    """'unknown ca' etc. from an ssl error, 'alert' for another alert, None when the peer sent none."""
    text = "%s %s" % (getattr(exc, "reason", "") or "", exc)
    return _http.client_certificate_alert(text) or ("alert" if "alert" in text.lower() else None)


def target_of(probe, certificate):
    """Where the probe goes; refuses (before anything is sent) a URL or a certificate that cannot work."""
    parts = urlsplit(probe.url)
    if parts.scheme != "https" or not parts.hostname:
        raise ProbeOptionError("url must be an https:// URL with a host name, not %s. Fix: give the gateway's "
                               "base URL, e.g. https://secureftpgatewaytest.skat.dk:6384." % _http.origin(probe.url))
    if probe.kind == "notification":
        probe.submitter_id(certificate)  # a certificate without a CVR fails here
    return Target(parts.hostname, parts.port or 443, urlsplit(probe.endpoint).path)


# --- dns ------------------------------------------------------------------------------------

def check_dns(target):
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise LayerFailed(
            "%s does not resolve (%s)" % (target.host, _http.reason_of(exc)),
            "Check the host name in url (test: secureftpgatewaytest.skat.dk, production: "
            "secureftpgateway.skat.dk) and this host's resolver (/etc/resolv.conf, /etc/hosts); "
            "'getent hosts %s' on the host shows what it resolves to. Where outbound traffic must "
            "go through a proxy, the gateway name may need an entry in the internal DNS." % target.host)
    addresses = []
    for info in infos:
        if info[4][0] not in [entry[4][0] for entry in addresses]:
            addresses.append(info)
    return Passed("%s resolves to %s" % (target.host, ", ".join(entry[4][0] for entry in addresses)), addresses)


# --- tcp ------------------------------------------------------------------------------------

def _try_connect(info, timeout):
    """(outcome text, connected?) for one resolved address."""
    family, socktype, proto, _canon, sockaddr = info
    sock = socket.socket(family, socktype, proto)
    sock.settimeout(timeout)
    try:
        sock.connect(sockaddr)
        return "%s: connected" % sockaddr[0], True
    except socket.timeout:
        return "%s: timed out after %ss" % (sockaddr[0], timeout), False
    except ConnectionRefusedError:
        return "%s: refused" % sockaddr[0], False
    except OSError as exc:
        return "%s: %s" % (sockaddr[0], _http.reason_of(exc)), False
    finally:
        sock.close()


def _tcp_hint(target, addresses, outcomes, timeout):
    if all(item.endswith("refused") for item in outcomes):
        return ("Nothing accepts connections on port %d (connection refused, answered at once): check "
                "the port in url (the DMS gateway uses 6384) and that the service runs; a local "
                "firewall that rejects also looks like this." % target.port)
    if any("timed out" in item for item in outcomes):
        return ("Packets to port %d are dropped (no answer within %ss): a firewall between this host "
                "and the gateway blocks it. Ask for outbound TCP to %s port %d to be opened, or set "
                "the proxy route; raise timeout only on a slow link."
                % (target.port, timeout, ", ".join(a[4][0] for a in addresses), target.port))
    return "No address of %s accepts TCP on port %d: check routing and firewalls from this host." % (
        target.host, target.port)


def check_tcp(target, addresses, timeout):
    """The first address that accepts TCP, as a ``Peer``."""
    outcomes, peer = [], None
    for info in addresses:
        outcome, connected = _try_connect(info, timeout)
        outcomes.append(outcome)
        if connected and peer is None:
            family, socktype, proto, _canon, sockaddr = info
            peer = Peer(target.host, target.port, family, socktype, proto, sockaddr, timeout, target.path)
    detail = "port %d: %s" % (target.port, "; ".join(outcomes))
    if peer is None:
        raise LayerFailed(detail, _tcp_hint(target, addresses, outcomes, timeout))
    return Passed(detail, peer)


# --- tls ------------------------------------------------------------------------------------

def _connect(peer):
    sock = socket.socket(peer.family, peer.socktype, peer.proto)
    sock.settimeout(peer.timeout)
    sock.connect(peer.sockaddr)
    return sock


def _peer_certificate_unverified(peer):
    """The server certificate without verifying it, to say *what* failed verification."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with context.wrap_socket(_connect(peer), server_hostname=peer.host) as tls:
            der = tls.getpeercert(binary_form=True)
        return x509.load_der_x509_certificate(der) if der else None
    except (OSError, ValueError):
        return None


def _names(cert):
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return [str(name) for name in san.get_values_for_type(x509.DNSName)] + [
            str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        return []


def _not_after(cert):
    return cert.not_valid_after_utc


def _trust_source(connection):
    return "ca_path %s" % connection.ca_path if connection.ca_path else "the system trust store"


def _verification_failure(peer, connection, exc):
    cert = _peer_certificate_unverified(peer)
    subject = cert.subject.rfc4514_string() if cert is not None else "?"
    code = getattr(exc, "verify_code", None)
    message = getattr(exc, "verify_message", None) or _http.reason_of(exc)
    if code in (_V_ERR_EXPIRED, _V_ERR_NOT_YET_VALID):
        when = _not_after(cert).strftime("%Y-%m-%d %H:%M UTC") if cert is not None else "?"
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return LayerFailed(
            "server certificate %s is not valid now (%s; notAfter %s, this host's clock %s)"
            % (subject, message, when, now),
            "The gateway's TLS certificate has expired (or this host's clock is wrong). Check the "
            "clock (timedatectl / NTP); if it is right, nothing on this host can fix it: report it to "
            "the gateway operator (UFST servicedesk) with the dates above.")
    if code in _V_ERR_HOSTNAME:
        names = ", ".join(_names(cert)) if cert is not None else "?"
        return LayerFailed(
            "server certificate is for %s, not %s (%s)" % (names, peer.host, message),
            "The host in url is not a name in the server certificate. Use the gateway's own name "
            "(one of: %s) in url, not an IP address or an alias; if those names look foreign, a proxy "
            "or another service answers on this address." % names)
    if code in _V_ERR_UNKNOWN_CA or code is None:
        issuer = cert.issuer.rfc4514_string() if cert is not None else "?"
        return LayerFailed(
            "server certificate %s, issued by %s, is not trusted by %s (%s)"
            % (subject, issuer, _trust_source(connection), message),
            "Set ca_path to the CA bundle that issued the gateway's certificate (issuer above). If "
            "the issuer is your organisation's proxy CA, a TLS-intercepting proxy sits in between: "
            "exempt the gateway from inspection (the client certificate and signature cannot pass "
            "through it) or add that CA to ca_path.")
    return LayerFailed("server certificate of %s does not verify (%s)" % (peer.host, message),
                       "Check ca_path and the server certificate chain (openssl s_client -connect "
                       "%s:%d -showcerts)." % (peer.host, peer.port))


def _server_certificate_detail(peer, connection, der):
    """What the verified server certificate says, and a warning when it expires soon."""
    cert = x509.load_der_x509_certificate(der)
    days = (_not_after(cert) - datetime.datetime.now(datetime.timezone.utc)).days
    detail = "server certificate %s verified against %s, host %s matches, valid until %s (%d days)" % (
        cert.subject.rfc4514_string(), _trust_source(connection), peer.host,
        _not_after(cert).strftime("%Y-%m-%d"), days)
    if days >= EXPIRY_WARNING_DAYS:
        return detail, ()
    warning = ("the gateway's TLS certificate expires in %d days (%s): expect a new certificate "
               "and, if you pin it, update ca_path in time" % (days, _not_after(cert).strftime("%Y-%m-%d")))
    return detail + "; WARNING: " + warning, (warning,)


def check_tls(peer, connection):
    """The server's certificate, verified; ``value``: the alert if the server then ended the handshake."""
    try:
        context = connection.ssl_context()
    except _http.HttpError as exc:
        raise LayerFailed(str(exc), "Give ca_path as a readable PEM file or directory of CA certificates.")
    try:
        with context.wrap_socket(_connect(peer), server_hostname=peer.host) as tls:
            version, cipher = tls.version(), tls.cipher()[0]
            der = tls.getpeercert(binary_form=True)
    except ssl.SSLCertVerificationError as exc:
        raise _verification_failure(peer, connection, exc)
    except ssl.SSLError as exc:
        alert = _alert_text(exc)
        if alert:
            # The server certificate was verified before the server refused us for lack of a client
            # certificate (TLS 1.2 sends CertificateRequest after its Certificate).
            return Passed("server certificate verified against %s; the server then ended the handshake "
                          "(alert: %s), see client_certificate" % (_trust_source(connection), alert), alert)
        raise LayerFailed("TLS handshake with %s:%d failed (%s)" % (peer.host, peer.port, _http.reason_of(exc)),
                          "The port does not speak TLS 1.2+ as expected: check that url is the "
                          "gateway's https URL (not plain HTTP, not another service on that port).")
    except (OSError, socket.timeout) as exc:
        raise LayerFailed("TLS handshake with %s:%d failed (%s)" % (peer.host, peer.port, _http.reason_of(exc)),
                          "The server closed or stalled the connection during the TLS handshake: a "
                          "firewall or proxy that filters TLS, or a service that is not the gateway.")
    detail = "%s %s" % (version, cipher)
    if not connection.validate_certs:
        return Passed(detail + "; server certificate NOT verified (validate_certs: false)", None,
                      ("validate_certs is false: the gateway's identity was not checked",))
    server, warnings = _server_certificate_detail(peer, connection, der)
    return Passed("%s; %s" % (detail, server), None, warnings)


# --- client_certificate -----------------------------------------------------------------------

def _http_probe(peer, context):
    """GET the endpoint over raw TLS: the handshake plus one exchange shows a client-certificate
    refusal that TLS 1.3 only reports after the handshake.  GET is answered 405/404 by the
    gateway and never processed as a message.  (status, body)."""
    request = ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nConnection: close\r\n\r\n"
               % (peer.path, peer.host, _http.USER_AGENT)).encode("ascii")
    with context.wrap_socket(_connect(peer), server_hostname=peer.host) as tls:
        tls.sendall(request)
        data = b""
        while len(data) < 4096:
            chunk = tls.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _sep, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        raise OSError("no HTTP answer (%r)" % status_line[:60])
    return int(parts[1]), body


def _listen_for_alert(peer, context, wait=2.0):
    """Handshake again and read first: raises the server's alert as ``ssl.SSLError`` if it sends one."""
    with context.wrap_socket(_connect(peer), server_hostname=peer.host) as tls:
        tls.settimeout(min(wait, peer.timeout))
        try:
            tls.recv(1)
        except socket.timeout:
            return


def _refusal(certificate, alert, presented):
    subject = certificate.subject.rfc4514_string()
    issuer = certificate.issuer.rfc4514_string()
    if alert in _http.ALERT_NONE_SENT or not presented:
        return LayerFailed(
            "TLS: the server requires a client certificate and none was sent (alert: %s)" % alert,
            "The gateway wants the certificate in the TLS handshake too: set "
            "tls_client_certificate: true (the signing certificate is then presented).")
    if alert in _http.ALERT_UNKNOWN_CA:
        return LayerFailed(
            "TLS: the server does not trust the CA of our certificate %s (issuer %s; alert: %s)"
            % (subject, issuer, alert),
            "The server trusts other CAs than the one that issued this certificate: use the OCES3 "
            "certificate from MitID Erhverv for this environment (test certificates for test, "
            "production for production).")
    return LayerFailed(
        "TLS: the server rejected our certificate %s (alert: %s)" % (subject, alert),
        "The certificate was refused (expired, revoked, wrong usage or not registered for this "
        "user): check it with dkcustoms.dms.oces_certificate_info and that it is the one registered "
        "on the certificate portal.")


def _probe_with_certificate(peer, context):
    """``_http_probe``; when the connection broke, listen for the alert that the break may have swallowed."""
    try:
        return _http_probe(peer, context)
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError):
        # A TLS 1.3 server that refuses us sends its alert after the handshake; when our request
        # crossed it, the connection reset can swallow the alert.  Listen before speaking.
        _listen_for_alert(peer, context)
        raise


def _tls_refusal(exc, certificate, presented, tls_alert):
    """The LayerFailed for a handshake (with or without our certificate) that did not complete."""
    alert = (_alert_text(exc) if isinstance(exc, ssl.SSLError) else None) or tls_alert
    if alert:
        return _refusal(certificate, alert, presented)
    if isinstance(exc, ssl.SSLError):
        return LayerFailed("TLS: handshake %s a client certificate failed (%s)"
                           % ("with" if presented else "without", _http.reason_of(exc)),
                           "The server ended the handshake; when it requires a client certificate, "
                           "set tls_client_certificate: true with the registered OCES3 certificate.")
    return LayerFailed("TLS: the connection broke %s a client certificate (%s)"
                       % ("with" if presented else "without", _http.reason_of(exc)),
                       "A server that refuses a client certificate often just closes the "
                       "connection: set tls_client_certificate: true if the gateway requires "
                       "one, and use the registered OCES3 certificate.")


def check_client_certificate_tls(peer, connection, certificate, presented, tls_alert):
    """The TLS half of client_certificate: is our certificate (``presented``), or its absence, accepted?
    ``certificate``: the ``_oces.Bundle``; ``tls_alert``: what the tls layer saw."""
    try:
        context = connection.ssl_context(certificate if presented else None)
    except _http.HttpError as exc:
        raise LayerFailed(str(exc), "Give a certificate with the private key that belongs to it.")
    try:
        status, body = _probe_with_certificate(peer, context)
    except (OSError, socket.timeout) as exc:  # ssl.SSLError is an OSError
        raise _tls_refusal(exc, certificate.certificate, presented, tls_alert)
    subject = certificate.certificate.subject.rfc4514_string()
    shown = ("certificate %s presented" % subject if presented
             else "no client certificate presented (tls_client_certificate: false)")
    if status == 403:
        # Not a verdict on the certificate by itself: a gateway or a proxy may refuse GET for reasons
        # of its own. The message below decides (a 403 to it fails this layer).
        return Passed("TLS: %s; the GET probe was answered HTTP 403 (%s), so the message decides" % (
            shown, _http.snippet(body)), status)
    if presented:
        return Passed("TLS: %s and accepted" % shown, status)
    return Passed("TLS: %s and none required" % shown, status)


# --- the AS4 exchange --------------------------------------------------------------------------

def _notification_query(probe, certificate):
    date_from, date_to, zone = _as4.notification_window(probe.notification_window_minutes)
    return _as4.NotificationQuery(probe.submitter_id(certificate), date_from, date_to,
                                  service=probe.notification_service, zone=zone)


def _post_once(session, certificate, probe):
    """(message, notification, response, post_error) of one freshly built and signed message."""
    notification = _notification_query(probe, certificate.certificate) if probe.kind == "notification" else None
    message = _as4.build_request(
        probe.kind, probe.gateway_user, probe.gateway_password, certificate.certificate,
        certificate.private_key, mpc=probe.mpc, from_party=probe.from_party, to_party=probe.to_party,
        from_party_type=probe.from_party_type, to_party_type=probe.to_party_type,
        key_reference=probe.key_reference, notification=notification)
    try:
        response = session.post(probe.endpoint, data=message.to_bytes(),
                                headers={"Content-Type": _as4.CONTENT_TYPE}, timeout=session.timeout)
    except _http.HttpError as exc:
        return message, notification, None, exc
    return message, notification, response, None


def _transient(policy, response, post_error):
    """Worth another message: no connection, or a transient status (for AS4 an HTTP 500 is an answer)."""
    if response is None:
        return isinstance(post_error, _http.UnreachableError)
    return policy.is_transient(response.status_code)


def send_message(connection, certificate, probe, sleep=time.sleep):
    """POST a freshly built and signed message; classify the answer.  A transient failure is retried
    with a *new* message: resending the same one would reuse its nonce, which the gateway refuses as a
    replay.  So the session sends each once (no policy) and this loop follows the connection's policy."""
    presented = certificate if probe.tls_client_certificate else None
    policy = connection.policy(answer_statuses=(500,), sleep=sleep)
    session = _http.create_session(connection.ssl_context(presented), connection.timeout)  # one attempt each
    start = time.monotonic()
    try:
        for attempt in range(policy.limit() + 1):
            message, notification, response, post_error = _post_once(session, certificate, probe)
            if attempt == policy.limit() or not _transient(policy, response, post_error):
                break
            policy.sleep(policy.delay(attempt, response.headers.get("Retry-After") if response is not None else None))
    finally:
        session.close()
    post_ms, start = _ms(start), time.monotonic()
    answer = None
    if response is not None:
        answer = _as4.classify_answer(response.status_code, response.headers.get("Content-Type"),
                                      response.content, message, probe.policy)
    return Exchange(message, notification, response, post_error, answer, post_ms, _ms(start))


# What a refusal is about, from the words WS-Security stacks use (WSS4J: "The signature or decryption
# was invalid", "The security token could not be authenticated or authorized") - never from the
# sandbox's own sentences.
_TOKEN_WORDS = ("usernametoken", "username", "password", "security token", "nonce", "created")
_SIGNER_WORDS = ("signature", "certificate", "x509", "signing")
# WS-Security 1.1 section 12 fault codes, by the layer they belong to.
_SIGNER_FAULTS = ("FailedCheck",)
_AUTH_FAULTS = ("FailedAuthentication", "InvalidSecurityToken", "SecurityTokenUnavailable", "MessageExpired",
                "InvalidSecurity", "UnsupportedSecurityToken", "UnsupportedAlgorithm")


def _is_signer_refusal(ebms):
    """A FailedAuthentication about the signature or its certificate, not about the UsernameToken
    (a wrong password or a registration still in progress belongs to the authentication layer)."""
    text = " ".join(filter(None, (ebms.get("detail"), ebms.get("description")))).lower()
    if ebms.get("code") != "EBMS:0101" or any(word in text for word in _TOKEN_WORDS):
        return False
    return any(word in text for word in _SIGNER_WORDS)


_HTTP_403_HINT = (
    "The gateway (or a proxy in front of it) refused the request itself with HTTP 403, before any AS4 "
    "processing. With tls_client_certificate: false the gateway may want the certificate in the TLS "
    "handshake: set it to true. With true, present the certificate registered for gateway_user (a "
    "trusted OCES3 certificate, valid now). An IP allow-list or a proxy policy answers 403 as well: "
    "ask whoever runs the network path to the gateway.")

_SIGNER_HINT = (
    "The message was signed with a certificate the gateway does not accept for %s. Sign with the "
    "certificate registered on the certificate portal (and its own private key); after a new "
    "certificate, register it first (dkcustoms.dms.portal_registration) and wait for the "
    "registration to complete.")


def check_client_certificate_signer(tls_detail, exchange, certificate, gateway_user):
    """The second half of client_certificate: the gateway's verdict on our signing certificate."""
    if exchange is None:
        return Passed(tls_detail.replace("so the message decides", "not judged further: no message was sent"))
    answer, response = exchange.answer, exchange.response
    subject = certificate.subject.rfc4514_string()
    if response is not None and response.status_code == 403:
        raise LayerFailed("%s; the message was refused with HTTP 403 (%s)"
                          % (tls_detail, _http.snippet(response.content)), _HTTP_403_HINT)
    if isinstance(exchange.post_error, _http.ClientCertificateError):
        raise LayerFailed("%s; %s" % (tls_detail, exchange.post_error),
                          "Use the registered OCES3 certificate from a CA the gateway trusts.")
    signer_refused = answer is not None and (
        (answer.kind == "error" and _is_signer_refusal(answer.ebms_error))
        or (answer.kind == "soap_fault" and answer.security_fault in _SIGNER_FAULTS))
    if signer_refused:
        raise LayerFailed("%s; signer %s refused: %s" % (tls_detail, subject, answer.detail),
                          _SIGNER_HINT % gateway_user)
    if answer is not None and not _refused_before_signature(answer):
        return Passed("%s; signer %s accepted by the gateway" % (tls_detail, subject))
    return Passed("%s; signer not yet judged (the gateway stopped before the signature check)" % tls_detail)


def _refused_before_signature(answer):
    if answer.kind == "error":
        return answer.ebms_error["code"] in ("EBMS:0101", "EBMS:0103")
    return answer.kind == "soap_fault" and answer.security_fault is not None


_AUTH_HINT = (
    "The gateway refused the logon (the UsernameToken with its PasswordDigest). Causes, most likely "
    "first: gateway_password is not the one the certificate portal shows for this certificate (it "
    "changes when the certificate is registered again: read it again, e.g. with "
    "dkcustoms.dms.portal_registration); the registration on the portal has not completed yet (it "
    "takes a few minutes, and until then every logon is refused: wait, Refresh, test again); this "
    "host's clock is more than a few minutes off (the token's Created time: check NTP).")

_POLICY_HINT = (
    "The gateway did not accept the message's WS-Security layout (PolicyNoncompliance). It expects, as "
    "SKAT's reference client sends it, the UsernameToken (PasswordDigest, Nonce, Created) alone in the "
    "wsse:Security header with S12:role=\"ebms\", and the signature (RSA-SHA256, exclusive C14N, "
    "SHA-256, IssuerSerial) in the default wsse:Security header, covering Body, eb:Messaging and the "
    "UsernameToken. This module sends exactly that, so something between this host and the gateway "
    "rewrote the headers, or the gateway's policy changed: compare the detail above with "
    "docs/gateway.md and try key_reference: binary_security_token.")


def check_authentication(exchange, gateway_user):
    if exchange.post_error is not None:
        raise LayerSkipped("not judged: the message got no answer")
    status = exchange.response.status_code
    if status == 404:
        raise LayerFailed(
            "the gateway does not know gateway user %s (HTTP 404 at /exchange/%s)" % (gateway_user, gateway_user),
            "Use the gateway user the certificate portal shows (read it, do not compute it); the "
            "registration must be complete and the AS4 interface ticked (dkcustoms.dms."
            "portal_registration with interfaces [AS4]).")
    if status == 401:
        raise LayerFailed("the gateway answered HTTP 401 (%s)" % _http.snippet(exchange.response.content),
                          _AUTH_HINT)
    answer = exchange.answer
    if answer.kind == "error" and answer.ebms_error["code"] == "EBMS:0101":
        raise LayerFailed("UsernameToken (PasswordDigest) refused: %s" % answer.detail, _AUTH_HINT)
    if answer.kind == "error" and answer.ebms_error["code"] == "EBMS:0103":
        raise LayerFailed("security header refused: %s" % answer.detail, _POLICY_HINT)
    if answer.kind == "soap_fault" and answer.security_fault in _AUTH_FAULTS:
        hint = _AUTH_HINT if answer.security_fault in ("FailedAuthentication", "InvalidSecurityToken",
                                                       "SecurityTokenUnavailable", "MessageExpired") else _POLICY_HINT
        raise LayerFailed("WS-Security fault %s: %s" % (answer.security_fault, answer.detail), hint)
    return Passed("user %s known (HTTP %d); UsernameToken (PasswordDigest) accepted" % (gateway_user, status))


_EBMS_HINTS = {
    "EBMS:0010": ("The gateway does not serve this party, service or action. Check from_party (default "
                  "<gateway user>_AS4) and to_party (SKAT-MFT-AS4); with probe: ping, the ebMS3 test "
                  "service may simply not be configured on the gateway (nothing public says it is): use "
                  "probe: notification, the read-only query SKAT's reference client makes."),
    "EBMS:0003": ("The gateway found a value of the message inconsistent (for the notification query: "
                  "submitterId, dateFrom, dateTo): report the detail above."),
    "EBMS:0009": "The gateway could not read the message headers; report the detail above (a bug here).",
    "EBMS:0004": "The gateway failed to process the message; retry later, report it if it stays.",
}

_INVALID_HINT = (
    "Do not trust this answer: it was altered, is not the gateway's answer to this message, or is signed "
    "by a certificate that is not the one configured. Check receipt_signer (the gateway's signing "
    "certificate, or its CA with receipt_signer_subject / receipt_signer_fingerprint) and whether a "
    "proxy rewrites traffic; repeat the test.")

_PIN_HINT = (
    " If the gateway's signing certificate was legitimately renewed (confirm it with UFST, out of band), "
    "remove the line for %s from %s and run again: the next run verified by TLS pins the new one.")


def _attachment_summary(attachment):
    text = "%s, %d bytes" % (attachment["content_type"], attachment["size"])
    if attachment["status"]:
        text += ", status %s%s" % (attachment["status"]["code"],
                                   ": %s" % attachment["status"]["message"] if attachment["status"]["message"] else "")
    return text


def _probe_summary(exchange, probe):
    query = exchange.notification
    if query is not None:
        return "%s Notification for submitterId %s, %s to %s (%s)" % (
            query.service, query.submitter_id, query.date_from, query.date_to, query.zone)
    if probe.kind == "pull":
        return "PullRequest on %s" % probe.mpc
    return "ebMS3 test service"


def _as4_failure(exchange, probe):
    """The LayerFailed for an answer that is not a good AS4 answer to our message, or None."""
    answer = exchange.answer
    if exchange.post_error is not None:
        return LayerFailed("POST %s got no answer: %s" % (probe.endpoint, exchange.post_error),
                           "The probes reached the gateway but the message got no answer: check "
                           "proxies between this host and the gateway, and raise timeout on a slow "
                           "link.", result="NO_SIGNAL")
    if answer.kind == "error":
        return LayerFailed("ebMS error signal %s" % answer.detail,
                           _EBMS_HINTS.get(answer.ebms_error["code"], "The gateway answered with an ebMS error: "
                                                                      "act on its description above."),
                           result="AS4_ERROR")
    if answer.kind == "soap_fault":
        return LayerFailed(answer.detail, "The gateway answered with a SOAP fault instead of an ebMS "
                           "signal: report the text above to the gateway operator.", result="AS4_ERROR")
    if answer.kind == "not_as4":
        return LayerFailed(
            "not an AS4 answer: %s" % answer.detail,
            "Something other than the AS4 gateway answered (an HTML proxy or captive portal page, a "
            "load balancer, another web server): check url (port 6384, path /exchange/<gateway user>) "
            "and any HTTP proxy between this host and the gateway.", result="NO_SIGNAL")
    if answer.problems:
        hint = _INVALID_HINT
        if probe.policy.pinned is not None and any("pinned" in p for p in answer.problems):
            hint += _PIN_HINT % (probe.url, probe.pin_file or "the pin file")
        return LayerFailed("%s (%s), but: %s" % (answer.detail, _probe_summary(exchange, probe),
                                                 "; ".join(answer.problems)), hint, result="INVALID_SIGNAL")
    return None


def _as4_detail(exchange, probe):
    answer = exchange.answer
    detail = "%s: %s" % (_probe_summary(exchange, probe), answer.detail)
    attachments = answer.as_dict()["attachments"]
    if attachments:
        listed = "; ".join(_attachment_summary(a) for a in attachments)
        detail += "; %d attachment%s (%s)" % (len(attachments), "" if len(attachments) == 1 else "s", listed)
    if answer.kind == "receipt":
        detail += "; RefToMessageId and NonRepudiationInformation digests match"
    if answer.original_message_id:
        detail += "; original message %s" % answer.original_message_id
    return detail + "; answer signature %s%s" % (
        answer.answer_signature.replace("_", " "), " (signed by %s)" % answer.signer if answer.signer else "")


def _as4_warnings(answer, mpc):
    warnings = []
    if answer.kind == "user_message":
        warnings.append("the pull took the waiting message %s from %s (allow_dequeue: true); "
                        "it is no longer on the gateway" % (answer.pulled_message_id, mpc))
    if answer.answer_signature == "not_checked":
        warnings.append("the answer's origin is unproven: its signature was not checked against a "
                        "certificate you trust; set receipt_signer (the gateway's signing certificate) "
                        "or receipt_signer_pin_file")
    return tuple(warnings) + tuple(answer.warnings)


def check_as4(exchange, probe):
    failure = _as4_failure(exchange, probe)
    if failure is not None:
        raise failure
    return Passed(_as4_detail(exchange, probe), None, _as4_warnings(exchange.answer, probe.mpc))


def pin_candidate(probe, connection, answer, ok):
    """(the signer to pin after a success verified by TLS or None, warnings); see receipt_signer_pin_file."""
    if not (probe.pin_file and ok and answer is not None and answer.signer_certificate is not None):
        return None, ()
    if probe.policy.pinned is not None:
        return None, ()
    if not connection.validate_certs:
        return None, ("the gateway's answer signer was not pinned: TLS was not verified (validate_certs: false)",)
    return {"url": probe.url, "fingerprint_sha256": answer.signer_fingerprint, "subject": answer.signer}, ()


# --- orchestration -----------------------------------------------------------------------------

class _Layers:
    """The report's layers as ``run_checks`` records them (local to one run, never handed to a check):
    a check runs only while nothing failed and its layer was asked for."""

    def __init__(self, last_layer):
        self.last_layer = last_layer
        self.entries = {}
        self.failure = None
        self.warnings = []

    def wanted(self, name):
        return self.failure is None and LAYERS.index(name) <= self.last_layer

    def _add(self, name, status, duration_ms=0, detail="", hint=None):
        self.entries[name] = {"name": name, "status": status, "duration_ms": duration_ms, "detail": detail,
                              "hint": hint}

    def run(self, name, check, *args, duration_ms=None, extra_ms=0, record_pass=True):
        """``check(*args)``'s ``Passed``, recorded; None when skipped or failed (recorded as such).
        ``duration_ms`` replaces the measured time, ``extra_ms`` is added to it (work done elsewhere)."""
        if not self.wanted(name):
            if name not in self.entries:
                self._add(name, "skipped", detail="an earlier layer failed" if self.failure else "not requested (layers)")
            return None
        start = time.monotonic()
        try:
            passed = check(*args)
        except LayerSkipped as exc:
            self._add(name, "skipped", _ms(start), str(exc))
            return None
        except LayerFailed as exc:
            self._add(name, "fail", self._took(start, duration_ms, extra_ms), exc.detail, exc.hint)
            self.failure = (name, exc.result or LAYER_RESULT.get(name, "AS4_ERROR"))
            return None
        if record_pass:
            self._add(name, "pass", self._took(start, duration_ms, extra_ms), passed.detail)
        self.warnings.extend(passed.warnings)
        return passed

    @staticmethod
    def _took(start, duration_ms, extra_ms):
        return (duration_ms if duration_ms is not None else _ms(start)) + extra_ms

    def listed(self):
        return [self.entries[name] for name in LAYERS if name in self.entries]


def _report(layers, probe, exchange, pin):
    answer = exchange.answer if exchange is not None else None
    query = exchange.notification if exchange is not None else None
    return {
        "ok": layers.failure is None,
        "answer_signature": answer.answer_signature if answer is not None else None,
        "pin": pin,
        "notification": ({"service": query.service, "submitter_id": query.submitter_id,
                          "date_from": query.date_from, "date_to": query.date_to, "time_zone": query.zone}
                         if query is not None else None),
        "result": layers.failure[1] if layers.failure else "SUCCESS",
        "failed_layer": layers.failure[0] if layers.failure else None,
        "layers": layers.listed(),
        "ebms_error": answer.ebms_error if answer is not None else None,
        "message_id": exchange.message.message_id if exchange is not None else None,
        "answer": answer.as_dict() if answer is not None else None,
        "endpoint": probe.endpoint,
        "warnings": layers.warnings,
    }


def run_checks(certificate, connection, probe):
    """Run the layers for ``certificate`` (an ``_oces.Bundle``: it signs, and is presented in TLS with
    ``probe.tls_client_certificate``) over ``connection`` (``_opt_connection.Connection``); the report."""
    target = target_of(probe, certificate.certificate)
    layers = _Layers(probe.last_layer)
    resolved = layers.run("dns", check_dns, target)
    peer = layers.run("tcp", check_tcp, target, resolved and resolved.value, connection.timeout)
    tls = layers.run("tls", check_tls, peer and peer.value, connection)
    # client_certificate is judged twice: in TLS now, as the message's signer once it was sent.
    start = time.monotonic()
    client_tls = layers.run("client_certificate", check_client_certificate_tls, peer and peer.value, connection,
                            certificate, probe.tls_client_certificate, tls and tls.value, record_pass=False)
    tls_ms = _ms(start)
    exchange = send_message(connection, certificate, probe) if layers.wanted("authentication") else None
    if client_tls is not None:
        layers.run("client_certificate", check_client_certificate_signer, client_tls.detail, exchange,
                   certificate.certificate, probe.gateway_user, duration_ms=tls_ms)
    layers.run("authentication", check_authentication, exchange, probe.gateway_user,
               duration_ms=exchange and exchange.post_ms)
    # verifying the answer's signature (classify_ms) is the as4 layer's work
    layers.run("as4", check_as4, exchange, probe, extra_ms=exchange.classify_ms if exchange else 0)
    pin, warnings = pin_candidate(probe, connection, exchange and exchange.answer, layers.failure is None)
    layers.warnings.extend(warnings)
    return _report(layers, probe, exchange, pin)


# What a module returns of the report (besides its own keys).
RESULT_KEYS = ("ok", "result", "failed_layer", "layers", "ebms_error", "message_id", "answer", "endpoint",
               "answer_signature", "notification")


def failure_message(report):
    """The one-line failure message of a report that is not ok: the failed layer, what happened, the fix."""
    failed = [layer for layer in report["layers"] if layer["status"] == "fail"][0]
    return "Gateway connection test failed at layer %s (%s): %s Fix: %s" % (
        failed["name"], report["result"], failed["detail"], failed["hint"])
