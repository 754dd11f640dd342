# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The layered gateway connection test.  Knows no Ansible.

Layers, in order (``LAYERS``): ``dns``, ``tcp``, ``tls``, ``client_certificate``,
``authentication``, ``as4``.  Each yields ``{name, status (pass|fail|skipped), duration_ms,
detail, hint}``; the first failure names ``failed_layer`` and ``result`` and the later layers are
``skipped``.  dns, tcp and tls use raw ``socket`` / ``ssl`` so that the three are told apart (a
single HTTP library call would blur them into "connection error"); the AS4 message goes out with
the collection's requests session (``_http``).  See docs/connectivity.md.

The report also says what the answer's signature proved (``answer_signature``) and, when a pin file
is used, offers the signer to pin (``pin``).  ``parse_pins`` / ``add_pin`` read and extend the pin
file's text (one ``<gateway url> sha256:<hex>`` line per gateway, like SSH's known_hosts); writing
it is the module's job (``_files.write_file``).
"""

from __future__ import annotations

import datetime
import socket
import ssl
import time
from urllib.parse import quote, urlsplit

from ansible_collections.dkcustoms.dms.plugins.module_utils import _as4, _http, _oces, _opt_connection

try:
    from cryptography import x509
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - reported by the module
    HAS_CRYPTOGRAPHY = False

HAS_REQUESTS = _http.HAS_REQUESTS

LAYERS = ("dns", "tcp", "tls", "client_certificate", "authentication", "as4")
RESULTS = ("SUCCESS", "DNS_ERROR", "CONNECT_ERROR", "TLS_ERROR", "CLIENT_CERT_REJECTED", "AUTH_FAILED",
           "AS4_ERROR", "INVALID_SIGNAL", "NO_SIGNAL")
LAYER_RESULT = {"dns": "DNS_ERROR", "tcp": "CONNECT_ERROR", "tls": "TLS_ERROR",
                "client_certificate": "CLIENT_CERT_REJECTED", "authentication": "AUTH_FAILED"}
DEFAULT_URLS = {"test": "https://secureftpgatewaytest.skat.dk:6384",
                "production": "https://secureftpgateway.skat.dk:6384"}
EXPIRY_WARNING_DAYS = 30

# OpenSSL X509_V_ERR_* codes that ssl.SSLCertVerificationError.verify_code carries.
_V_ERR_EXPIRED = 10
_V_ERR_NOT_YET_VALID = 9
_V_ERR_HOSTNAME = (62, 64)  # host name, IP address mismatch
_V_ERR_UNKNOWN_CA = (2, 18, 19, 20, 21, 27)

# TLS alerts by which a server refuses (or asks for) our client certificate.
_ALERT_NONE_SENT = ("certificate required", "certificate_required")
_ALERT_UNKNOWN_CA = ("unknown ca", "unknown_ca")
_ALERT_REJECTED = ("bad certificate", "certificate unknown", "access denied", "handshake failure",
                   "certificate expired", "certificate revoked", "unsupported certificate",
                   "bad_certificate", "certificate_unknown", "access_denied", "handshake_failure")


class Settings:
    """Everything a run needs.  ``certificate``/``private_key``/``chain`` are cryptography objects;
    ``signer_policy`` an ``_as4.SignerPolicy`` (who may sign the gateway's answers); ``pin_file`` (the
    path, for hints) asks for the signer's fingerprint to be offered for pinning (``report["pin"]``)."""

    def __init__(self, url, gateway_user, gateway_password, certificate, private_key, chain=None,
                 ca_path=None, validate_certs=True, tls_client_certificate=False, timeout=30,
                 retries=2, probe="notification", mpc=_as4.DEFAULT_MPC, signer_policy=None,
                 from_party=None, to_party=_as4.DEFAULT_TO_PARTY, from_party_type=_as4.DEFAULT_PARTY_TYPE,
                 to_party_type=_as4.DEFAULT_PARTY_TYPE, key_reference="issuer_serial", layers=LAYERS,
                 notification_service="DMS.Import", notification_window_minutes=5, pin_file=None):
        self.url = url.rstrip("/")
        self.gateway_user = gateway_user
        self.gateway_password = gateway_password
        self.certificate = certificate
        self.private_key = private_key
        self.chain = chain or []
        self.ca_path = ca_path
        self.validate_certs = validate_certs
        self.tls_client_certificate = tls_client_certificate
        self.timeout = timeout
        self.retries = max(0, int(retries))
        if probe not in _as4.PROBES:
            raise ValueError("probe must be one of %s, not %r." % (", ".join(_as4.PROBES), probe))
        self.probe = probe
        self.mpc = mpc or _as4.DEFAULT_MPC
        self.signer_policy = signer_policy or _as4.SignerPolicy()
        self.from_party = from_party or "%s_AS4" % gateway_user
        self.to_party = to_party
        self.from_party_type = from_party_type
        self.to_party_type = to_party_type
        self.key_reference = key_reference
        self.layers = layers or LAYERS
        self.notification_service = notification_service
        self.notification_window_minutes = int(notification_window_minutes)
        self.pin_file = pin_file

    @property
    def pin_signer(self):
        return bool(self.pin_file)

    @property
    def endpoint(self):
        return "%s/exchange/%s" % (self.url, quote(self.gateway_user, safe=""))

    @property
    def last_layer(self):
        """Checks run up to the deepest layer asked for; each needs the ones before it."""
        return max(LAYERS.index(name) for name in self.layers)

    def submitter_id(self):
        """The CVR the notification query sends as submitterId: read from the certificate."""
        cvr = _oces.classify(self.certificate).get("cvr")
        if not cvr:
            raise ValueError(
                "The certificate %s carries no CVR (organizationIdentifier NTRDK-<8 digits>), which the "
                "notification probe sends as submitterId. Fix: use the OCES3 certificate registered for "
                "the gateway user, or choose probe: ping or pull." % self.certificate.subject.rfc4514_string())
        return cvr


class LayerSkipped(Exception):
    """Raised inside a layer check that cannot be judged; the message says why."""


class LayerFailed(Exception):
    """Raised inside a layer check: ``detail`` says what happened, ``hint`` what to do."""

    def __init__(self, detail, hint, result=None):
        super().__init__(detail)
        self.detail = detail
        self.hint = hint
        self.result = result


class Run:
    """State shared by the layer checks of one run."""

    def __init__(self, settings):
        self.settings = settings
        parts = urlsplit(settings.url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("url must be an https:// URL with a host name, not %r. Fix: give the gateway's "
                             "base URL, e.g. https://secureftpgatewaytest.skat.dk:6384." % settings.url)
        self.host = parts.hostname
        self.port = parts.port or 443
        if settings.probe == "notification":
            settings.submitter_id()  # a certificate without a CVR fails here, before anything is sent
        self.addresses = []      # getaddrinfo results
        self.reachable = None    # sockaddr tuple that accepted TCP
        self.tls_alert = None    # alert text seen in the plain TLS handshake, if the server refused
        self.probe_status = None  # HTTP status of the GET probe in the client_certificate layer
        self.probe_body = b""
        self.message = None
        self.response = None
        self.post_error = None
        self.answer = None
        self.notification = None  # the _as4.NotificationQuery of the last message sent
        self.warnings = []


def _ms(start):
    return int(round((time.monotonic() - start) * 1000))


def _reason(exc):
    text = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:300]


def _alert_text(exc):
    """'unknown ca' etc. from an ssl error, or None when it is not a TLS alert from the peer."""
    text = ("%s %s" % (getattr(exc, "reason", "") or "", exc)).lower().replace("_", " ")
    if "alert" not in text and "certificate required" not in text:
        return None
    for needle in _ALERT_NONE_SENT + _ALERT_UNKNOWN_CA + _ALERT_REJECTED:
        if needle.replace("_", " ") in text:
            return needle.replace("_", " ")
    return "alert"


# --- dns ------------------------------------------------------------------------------------

def check_dns(run):
    try:
        infos = socket.getaddrinfo(run.host, run.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise LayerFailed(
            "%s does not resolve (%s)" % (run.host, _reason(exc)),
            "Check the host name in url (test: secureftpgatewaytest.skat.dk, production: "
            "secureftpgateway.skat.dk) and this host's resolver (/etc/resolv.conf, /etc/hosts); "
            "'getent hosts %s' on the host shows what it resolves to. Where outbound traffic must "
            "go through a proxy, the gateway name may need an entry in the internal DNS." % run.host)
    seen = []
    for family, socktype, proto, _canon, sockaddr in infos:
        if sockaddr[0] not in [entry[4][0] for entry in seen]:
            seen.append((family, socktype, proto, _canon, sockaddr))
    run.addresses = seen
    return "%s resolves to %s" % (run.host, ", ".join(entry[4][0] for entry in seen))


# --- tcp ------------------------------------------------------------------------------------

def check_tcp(run):
    outcomes = []
    for family, socktype, proto, _canon, sockaddr in run.addresses:
        sock = socket.socket(family, socktype, proto)
        sock.settimeout(run.settings.timeout)
        try:
            sock.connect(sockaddr)
            outcomes.append("%s: connected" % sockaddr[0])
            if run.reachable is None:
                run.reachable = (family, socktype, proto, sockaddr)
        except socket.timeout:
            outcomes.append("%s: timed out after %ss" % (sockaddr[0], run.settings.timeout))
        except ConnectionRefusedError:
            outcomes.append("%s: refused" % sockaddr[0])
        except OSError as exc:
            outcomes.append("%s: %s" % (sockaddr[0], _reason(exc)))
        finally:
            sock.close()
    detail = "port %d: %s" % (run.port, "; ".join(outcomes))
    if run.reachable is not None:
        return detail
    if all(item.endswith("refused") for item in outcomes):
        hint = ("Nothing accepts connections on port %d (connection refused, answered at once): check "
                "the port in url (the DMS gateway uses 6384) and that the service runs; a local "
                "firewall that rejects also looks like this." % run.port)
    elif any("timed out" in item for item in outcomes):
        hint = ("Packets to port %d are dropped (no answer within %ss): a firewall between this host "
                "and the gateway blocks it. Ask for outbound TCP to %s port %d to be opened, or set "
                "the proxy route; raise timeout only on a slow link."
                % (run.port, run.settings.timeout, ", ".join(a[4][0] for a in run.addresses), run.port))
    else:
        hint = "No address of %s accepts TCP on port %d: check routing and firewalls from this host." % (
            run.host, run.port)
    raise LayerFailed(detail, hint)


# --- tls ------------------------------------------------------------------------------------

def _connect(run):
    family, socktype, proto, sockaddr = run.reachable
    sock = socket.socket(family, socktype, proto)
    sock.settimeout(run.settings.timeout)
    sock.connect(sockaddr)
    return sock


def _peer_certificate_unverified(run):
    """The server certificate without verifying it, to say *what* failed verification."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with context.wrap_socket(_connect(run), server_hostname=run.host) as tls:
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


def _trust_source(run):
    return "ca_path %s" % run.settings.ca_path if run.settings.ca_path else "the system trust store"


def _verification_failure(run, exc):
    cert = _peer_certificate_unverified(run)
    subject = cert.subject.rfc4514_string() if cert is not None else "?"
    code = getattr(exc, "verify_code", None)
    message = getattr(exc, "verify_message", None) or _reason(exc)
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
            "server certificate is for %s, not %s (%s)" % (names, run.host, message),
            "The host in url is not a name in the server certificate. Use the gateway's own name "
            "(one of: %s) in url, not an IP address or an alias; if those names look foreign, a proxy "
            "or another service answers on this address." % names)
    if code in _V_ERR_UNKNOWN_CA or code is None:
        issuer = cert.issuer.rfc4514_string() if cert is not None else "?"
        return LayerFailed(
            "server certificate %s, issued by %s, is not trusted by %s (%s)"
            % (subject, issuer, _trust_source(run), message),
            "Set ca_path to the CA bundle that issued the gateway's certificate (issuer above). If "
            "the issuer is your organisation's proxy CA, a TLS-intercepting proxy sits in between: "
            "exempt the gateway from inspection (the client certificate and signature cannot pass "
            "through it) or add that CA to ca_path.")
    return LayerFailed("server certificate of %s does not verify (%s)" % (run.host, message),
                       "Check ca_path and the server certificate chain (openssl s_client -connect "
                       "%s:%d -showcerts)." % (run.host, run.port))


def check_tls(run):
    settings = run.settings
    try:
        context = _http.create_ssl_context(ca_path=settings.ca_path, validate_certs=settings.validate_certs)
    except _http.HttpError as exc:
        raise LayerFailed(str(exc), "Give ca_path as a readable PEM file or directory of CA certificates.")
    try:
        with context.wrap_socket(_connect(run), server_hostname=run.host) as tls:
            version, cipher = tls.version(), tls.cipher()[0]
            der = tls.getpeercert(binary_form=True)
    except ssl.SSLCertVerificationError as exc:
        raise _verification_failure(run, exc)
    except ssl.SSLError as exc:
        alert = _alert_text(exc)
        if alert:
            # The server certificate was verified before the server refused us for lack of a client
            # certificate (TLS 1.2 sends CertificateRequest after its Certificate).
            run.tls_alert = alert
            return ("server certificate verified against %s; the server then ended the handshake "
                    "(alert: %s), see client_certificate" % (_trust_source(run), alert))
        raise LayerFailed("TLS handshake with %s:%d failed (%s)" % (run.host, run.port, _reason(exc)),
                          "The port does not speak TLS 1.2+ as expected: check that url is the "
                          "gateway's https URL (not plain HTTP, not another service on that port).")
    except (OSError, socket.timeout) as exc:
        raise LayerFailed("TLS handshake with %s:%d failed (%s)" % (run.host, run.port, _reason(exc)),
                          "The server closed or stalled the connection during the TLS handshake: a "
                          "firewall or proxy that filters TLS, or a service that is not the gateway.")
    detail = "%s %s" % (version, cipher)
    if not settings.validate_certs:
        run.warnings.append("validate_certs is false: the gateway's identity was not checked")
        return detail + "; server certificate NOT verified (validate_certs: false)"
    cert = x509.load_der_x509_certificate(der)
    days = (_not_after(cert) - datetime.datetime.now(datetime.timezone.utc)).days
    detail += "; server certificate %s verified against %s, host %s matches, valid until %s (%d days)" % (
        cert.subject.rfc4514_string(), _trust_source(run), run.host,
        _not_after(cert).strftime("%Y-%m-%d"), days)
    if days < EXPIRY_WARNING_DAYS:
        warning = ("the gateway's TLS certificate expires in %d days (%s): expect a new certificate "
                   "and, if you pin it, update ca_path in time" % (days, _not_after(cert).strftime("%Y-%m-%d")))
        run.warnings.append(warning)
        detail += "; WARNING: " + warning
    return detail


# --- client_certificate -----------------------------------------------------------------------

class _BundleView:
    def __init__(self, settings):
        self.certificate = settings.certificate
        self.private_key = settings.private_key
        self.chain = settings.chain


def _http_probe(run, context):
    """GET the endpoint over raw TLS: the handshake plus one exchange shows a client-certificate
    refusal that TLS 1.3 only reports after the handshake.  GET is answered 405/404 by the
    gateway and never processed as a message."""
    path = urlsplit(run.settings.endpoint).path
    request = ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nConnection: close\r\n\r\n"
               % (path, run.host, _http.USER_AGENT)).encode("ascii")
    with context.wrap_socket(_connect(run), server_hostname=run.host) as tls:
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


def _listen_for_alert(run, context, wait=2.0):
    """Handshake again and read first: raises the server's alert as ``ssl.SSLError`` if it sends one."""
    with context.wrap_socket(_connect(run), server_hostname=run.host) as tls:
        tls.settimeout(min(wait, run.settings.timeout))
        try:
            tls.recv(1)
        except socket.timeout:
            return


def _refusal(run, alert, presented):
    subject = run.settings.certificate.subject.rfc4514_string()
    issuer = run.settings.certificate.issuer.rfc4514_string()
    if alert in _ALERT_NONE_SENT or not presented:
        return LayerFailed(
            "TLS: the server requires a client certificate and none was sent (alert: %s)" % alert,
            "The gateway wants the certificate in the TLS handshake too: set "
            "tls_client_certificate: true (the signing certificate is then presented).")
    if alert in _ALERT_UNKNOWN_CA:
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


def check_client_certificate_tls(run):
    settings = run.settings
    presented = bool(settings.tls_client_certificate)
    try:
        client_cert = (_http.client_cert_from_bundle(_BundleView(settings)) if presented else None)
        context = _http.create_ssl_context(ca_path=settings.ca_path, validate_certs=settings.validate_certs,
                                           client_cert=client_cert)
    except _http.HttpError as exc:
        raise LayerFailed(str(exc), "Give a certificate with the private key that belongs to it.")
    try:
        try:
            run.probe_status, run.probe_body = _http_probe(run, context)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError):
            # A TLS 1.3 server that refuses us sends its alert after the handshake; when our request
            # crossed it, the connection reset can swallow the alert.  Listen before speaking.
            _listen_for_alert(run, context)
            raise
    except ssl.SSLError as exc:
        alert = _alert_text(exc) or run.tls_alert
        if alert:
            raise _refusal(run, alert, presented)
        raise LayerFailed("TLS: handshake %s a client certificate failed (%s)"
                          % ("with" if presented else "without", _reason(exc)),
                          "The server ended the handshake; when it requires a client certificate, "
                          "set tls_client_certificate: true with the registered OCES3 certificate.")
    except (OSError, socket.timeout) as exc:
        if run.tls_alert:
            raise _refusal(run, run.tls_alert, presented)
        raise LayerFailed("TLS: the connection broke %s a client certificate (%s)"
                          % ("with" if presented else "without", _reason(exc)),
                          "A server that refuses a client certificate often just closes the "
                          "connection: set tls_client_certificate: true if the gateway requires "
                          "one, and use the registered OCES3 certificate.")
    subject = settings.certificate.subject.rfc4514_string()
    shown = ("certificate %s presented" % subject if presented
             else "no client certificate presented (tls_client_certificate: false)")
    if run.probe_status == 403:
        # Not a verdict on the certificate by itself: a gateway or a proxy may refuse GET for reasons
        # of its own. The message below decides (a 403 to it fails this layer).
        return "TLS: %s; the GET probe was answered HTTP 403 (%s), so the message decides" % (
            shown, _snippet(run.probe_body))
    if presented:
        return "TLS: %s and accepted" % shown
    return "TLS: %s and none required" % shown


def _snippet(body, limit=160):
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


# --- the AS4 exchange --------------------------------------------------------------------------


def _notification_query(settings):
    date_from, date_to, zone = _as4.notification_window(settings.notification_window_minutes)
    return _as4.NotificationQuery(settings.submitter_id(), date_from, date_to,
                                  service=settings.notification_service, zone=zone)


def _post_once(run, session):
    settings = run.settings
    run.notification = _notification_query(settings) if settings.probe == "notification" else None
    run.message = _as4.build_request(
        settings.probe, settings.gateway_user, settings.gateway_password, settings.certificate,
        settings.private_key, mpc=settings.mpc, from_party=settings.from_party, to_party=settings.to_party,
        from_party_type=settings.from_party_type, to_party_type=settings.to_party_type,
        key_reference=settings.key_reference, notification=run.notification)
    run.response, run.post_error = None, None
    try:
        run.response = session.post(settings.endpoint, data=run.message.to_bytes(),
                                    headers={"Content-Type": _as4.CONTENT_TYPE}, timeout=settings.timeout)
    except _http.HttpError as exc:
        run.post_error = exc


def send_message(run, sleep=time.sleep):
    """POST a freshly built and signed message.  A transient failure is retried with a *new*
    message: resending the same one would reuse its nonce, which the gateway refuses as a replay."""
    settings = run.settings
    client_cert = (_http.client_cert_from_bundle(_BundleView(settings))
                   if settings.tls_client_certificate else None)
    context = _http.create_ssl_context(ca_path=settings.ca_path, validate_certs=settings.validate_certs,
                                       client_cert=client_cert)
    # No policy in the session: for AS4 an HTTP 500 is an answer (the ebMS error signal), and a retry
    # needs a new message (a new nonce), so this loop retries.
    session = _http.create_session(context, settings.timeout)
    policy = _opt_connection.RetryPolicy(settings.retries, answer_statuses=(500,), sleep=sleep)
    try:
        for attempt in range(policy.limit() + 1):
            _post_once(run, session)
            transient = (isinstance(run.post_error, _http.UnreachableError)
                         or (run.response is not None and policy.is_transient(run.response.status_code)))
            if not transient or attempt == policy.limit():
                break
            retry_after = run.response.headers.get("Retry-After") if run.response is not None else None
            policy.sleep(policy.delay(attempt, retry_after))
    finally:
        session.close()


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


def check_client_certificate_signer(run, tls_detail):
    """The second half of client_certificate: the gateway's verdict on our signing certificate."""
    answer = run.answer
    subject = run.settings.certificate.subject.rfc4514_string()
    if run.response is not None and run.response.status_code == 403:
        raise LayerFailed("%s; the message was refused with HTTP 403 (%s)"
                          % (tls_detail, _snippet(run.response.content)), _HTTP_403_HINT)
    if isinstance(run.post_error, _http.ClientCertificateError):
        raise LayerFailed("%s; %s" % (tls_detail, run.post_error),
                          "Use the registered OCES3 certificate from a CA the gateway trusts.")
    signer_refused = answer is not None and (
        (answer.kind == "error" and _is_signer_refusal(answer.ebms_error))
        or (answer.kind == "soap_fault" and answer.security_fault in _SIGNER_FAULTS))
    if signer_refused:
        raise LayerFailed("%s; signer %s refused: %s" % (tls_detail, subject, answer.detail),
                          _SIGNER_HINT % run.settings.gateway_user)
    if answer is not None and not _refused_before_signature(answer):
        return "%s; signer %s accepted by the gateway" % (tls_detail, subject)
    return "%s; signer not yet judged (the gateway stopped before the signature check)" % tls_detail


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


def check_authentication(run):
    settings = run.settings
    if run.post_error is not None:
        raise LayerSkipped("not judged: the message got no answer")
    status = run.response.status_code
    if status == 404:
        raise LayerFailed(
            "the gateway does not know gateway user %s (HTTP 404 at /exchange/%s)"
            % (settings.gateway_user, settings.gateway_user),
            "Use the gateway user the certificate portal shows (read it, do not compute it); the "
            "registration must be complete and the AS4 interface ticked (dkcustoms.dms."
            "portal_registration with interfaces [AS4]).")
    if status == 401:
        raise LayerFailed("the gateway answered HTTP 401 (%s)" % _snippet(run.response.content), _AUTH_HINT)
    answer = run.answer
    if answer.kind == "error" and answer.ebms_error["code"] == "EBMS:0101":
        raise LayerFailed("UsernameToken (PasswordDigest) refused: %s" % answer.detail, _AUTH_HINT)
    if answer.kind == "error" and answer.ebms_error["code"] == "EBMS:0103":
        raise LayerFailed("security header refused: %s" % answer.detail, _POLICY_HINT)
    if answer.kind == "soap_fault" and answer.security_fault in _AUTH_FAULTS:
        hint = _AUTH_HINT if answer.security_fault in ("FailedAuthentication", "InvalidSecurityToken",
                                                       "SecurityTokenUnavailable", "MessageExpired") else _POLICY_HINT
        raise LayerFailed("WS-Security fault %s: %s" % (answer.security_fault, answer.detail), hint)
    return "user %s known (HTTP %d); UsernameToken (PasswordDigest) accepted" % (settings.gateway_user, status)


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


def _probe_summary(run):
    query = run.notification
    if query is not None:
        return "%s Notification for submitterId %s, %s to %s (%s)" % (
            query.service, query.submitter_id, query.date_from, query.date_to, query.zone)
    if run.settings.probe == "pull":
        return "PullRequest on %s" % run.settings.mpc
    return "ebMS3 test service"


def check_as4(run):
    answer = run.answer
    if run.post_error is not None:
        raise LayerFailed("POST %s got no answer: %s" % (run.settings.endpoint, run.post_error),
                          "The probes reached the gateway but the message got no answer: check "
                          "proxies between this host and the gateway, and raise timeout on a slow "
                          "link.", result="NO_SIGNAL")
    if answer.kind == "error":
        code = answer.ebms_error["code"]
        raise LayerFailed("ebMS error signal %s" % answer.detail,
                          _EBMS_HINTS.get(code, "The gateway answered with an ebMS error: act on its "
                                                "description above."), result="AS4_ERROR")
    if answer.kind == "soap_fault":
        raise LayerFailed(answer.detail, "The gateway answered with a SOAP fault instead of an ebMS "
                          "signal: report the text above to the gateway operator.", result="AS4_ERROR")
    if answer.kind == "not_as4":
        raise LayerFailed(
            "not an AS4 answer: %s" % answer.detail,
            "Something other than the AS4 gateway answered (an HTML proxy or captive portal page, a "
            "load balancer, another web server): check url (port 6384, path /exchange/<gateway user>) "
            "and any HTTP proxy between this host and the gateway.", result="NO_SIGNAL")
    if answer.problems:
        hint = _INVALID_HINT
        if run.settings.signer_policy.pinned is not None and any("pinned" in p for p in answer.problems):
            hint += _PIN_HINT % (run.settings.url, run.settings.pin_file or "the pin file")
        raise LayerFailed("%s (%s), but: %s" % (answer.detail, _probe_summary(run), "; ".join(answer.problems)),
                          hint, result="INVALID_SIGNAL")
    detail = "%s: %s" % (_probe_summary(run), answer.detail)
    attachments = answer.as_dict()["attachments"]
    if attachments:
        listed = "; ".join(_attachment_summary(a) for a in attachments)
        detail += "; %d attachment%s (%s)" % (len(attachments), "" if len(attachments) == 1 else "s", listed)
    if answer.kind == "receipt":
        detail += "; RefToMessageId and NonRepudiationInformation digests match"
    if answer.original_message_id:
        detail += "; original message %s" % answer.original_message_id
    detail += "; answer signature %s%s" % (
        answer.answer_signature.replace("_", " "), " (signed by %s)" % answer.signer if answer.signer else "")
    if answer.kind == "user_message":
        run.warnings.append("the pull took the waiting message %s from %s (allow_dequeue: true); "
                            "it is no longer on the gateway" % (answer.pulled_message_id, run.settings.mpc))
    if answer.answer_signature == "not_checked":
        run.warnings.append("the answer's origin is unproven: its signature was not checked against a "
                            "certificate you trust; set receipt_signer (the gateway's signing certificate) "
                            "or receipt_signer_pin_file")
    run.warnings.extend(answer.warnings)
    return detail


def pin_candidate(run, report_ok):
    """The signer to pin after a success verified by TLS, or None (see receipt_signer_pin_file)."""
    settings, answer = run.settings, run.answer
    if not (settings.pin_signer and report_ok and answer is not None and answer.signer_certificate is not None):
        return None
    if settings.signer_policy.pinned is not None:
        return None
    if not settings.validate_certs:
        run.warnings.append("the gateway's answer signer was not pinned: TLS was not verified "
                            "(validate_certs: false)")
        return None
    return {"url": settings.url, "fingerprint_sha256": answer.signer_fingerprint, "subject": answer.signer}


# --- orchestration -----------------------------------------------------------------------------

def _layer(name, status, duration_ms=0, detail="", hint=None):
    return {"name": name, "status": status, "duration_ms": duration_ms, "detail": detail, "hint": hint}


def run_checks(settings):
    """Run the layers; return the report dict (ok, result, failed_layer, layers, ...)."""
    run = Run(settings)
    layers = []
    failure = {}

    def attempt(name, check, *args):
        if failure or LAYERS.index(name) > settings.last_layer:
            reason = "an earlier layer failed" if failure else "not requested (layers)"
            layers.append(_layer(name, "skipped", detail=reason))
            return None
        start = time.monotonic()
        try:
            detail = check(run, *args)
        except LayerSkipped as exc:
            layers.append(_layer(name, "skipped", _ms(start), str(exc)))
            return None
        except LayerFailed as exc:
            layers.append(_layer(name, "fail", _ms(start), exc.detail, exc.hint))
            failure.update(layer=name, result=exc.result or LAYER_RESULT.get(name, "AS4_ERROR"))
            return None
        layers.append(_layer(name, "pass", _ms(start), detail))
        return detail

    attempt("dns", check_dns)
    attempt("tcp", check_tcp)
    attempt("tls", check_tls)
    # client_certificate is judged twice: in TLS now, as the message's signer once it was sent.
    tls_detail = None
    start = time.monotonic()
    if not failure and settings.last_layer >= LAYERS.index("client_certificate"):
        try:
            tls_detail = check_client_certificate_tls(run)
        except LayerFailed as exc:
            layers.append(_layer("client_certificate", "fail", _ms(start), exc.detail, exc.hint))
            failure.update(layer="client_certificate", result="CLIENT_CERT_REJECTED")
    tls_ms = _ms(start)
    if not failure and settings.last_layer >= LAYERS.index("authentication"):
        post_start = time.monotonic()
        send_message(run)
        post_ms = _ms(post_start)
        classify_start = time.monotonic()
        if run.response is not None:
            run.answer = _as4.classify_answer(run.response.status_code, run.response.headers.get("Content-Type"),
                                              run.response.content, run.message, settings.signer_policy)
        classify_ms = _ms(classify_start)
    else:
        post_ms = classify_ms = 0
    if tls_detail is not None:
        if run.message is None:
            unsent = tls_detail.replace("so the message decides", "not judged further: no message was sent")
            layers.append(_layer("client_certificate", "pass", tls_ms, unsent))
        else:
            attempt_detail = None
            try:
                attempt_detail = check_client_certificate_signer(run, tls_detail)
            except LayerFailed as exc:
                layers.append(_layer("client_certificate", "fail", tls_ms, exc.detail, exc.hint))
                failure.update(layer="client_certificate", result="CLIENT_CERT_REJECTED")
            if attempt_detail is not None:
                layers.append(_layer("client_certificate", "pass", tls_ms, attempt_detail))
    elif not failure:
        layers.append(_layer("client_certificate", "skipped", detail="not requested (layers)"))
    elif not any(layer["name"] == "client_certificate" for layer in layers):
        layers.append(_layer("client_certificate", "skipped", detail="an earlier layer failed"))
    attempt("authentication", check_authentication)
    if layers[-1]["name"] == "authentication" and layers[-1]["status"] != "skipped":
        layers[-1]["duration_ms"] = post_ms
    attempt("as4", check_as4)
    if layers[-1]["status"] != "skipped":
        layers[-1]["duration_ms"] += classify_ms  # verifying the answer's signature is the as4 layer's work

    answer = run.answer
    query = run.notification
    return {
        "ok": not failure,
        "answer_signature": answer.answer_signature if answer is not None else None,
        "pin": pin_candidate(run, not failure),
        "notification": ({"service": query.service, "submitter_id": query.submitter_id,
                          "date_from": query.date_from, "date_to": query.date_to, "time_zone": query.zone}
                         if query is not None else None),
        "result": failure.get("result", "SUCCESS"),
        "failed_layer": failure.get("layer"),
        "layers": layers,
        "ebms_error": answer.ebms_error if answer is not None else None,
        "message_id": run.message.message_id if run.message is not None else None,
        "answer": answer.as_dict() if answer is not None else None,
        "endpoint": settings.endpoint,
        "warnings": run.warnings,
    }


# --- the pin file (trust on first use) -------------------------------------------------------------

PIN_FILE_HEADER = ("# Gateway answer signers pinned by dkcustoms.dms.gateway_connectivity (trust on first use).\n"
                   "# One line per gateway: <gateway url> sha256:<fingerprint of the certificate that signs its answers>.\n"
                   "# To accept a legitimately renewed certificate, delete its gateway's line; the next run pins it.\n")


class PinFileError(ValueError):
    """The pin file cannot be read; the message names the line and the fix."""


def parse_pins(text):
    """``{gateway url: fingerprint bytes}`` from the pin file's text (comments and blank lines skipped)."""
    pins = {}
    for number, line in enumerate((text or "").splitlines(), 1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        fields = content.split()
        try:
            if len(fields) != 2 or not fields[1].lower().startswith("sha256:"):
                raise ValueError("expected '<gateway url> sha256:<hex>'")
            pins[fields[0].rstrip("/")] = _as4.parse_fingerprint(fields[1])
        except ValueError as exc:
            raise PinFileError("line %d of the pin file cannot be read (%s). Fix: correct or delete that line."
                               % (number, exc))
    return pins


def add_pin(text, url, fingerprint_hex, subject):
    """The pin file's text with a line for ``url`` added (the file's header first when it is new)."""
    text = text or PIN_FILE_HEADER
    if not text.endswith("\n"):
        text += "\n"
    comment = " ".join((subject or "").split())[:300]
    return text + "# %s\n%s sha256:%s\n" % (comment, url.rstrip("/"), fingerprint_hex.lower())
