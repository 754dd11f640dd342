"""The sandbox's network side: portal and gateway over HTTPS, the admin API over plain HTTP.

Each service is a `ThreadingHTTPServer` on a loopback port. The TLS handshake happens in the request's
own thread (not in the accept loop, so one slow client blocks nobody) with the context the service's
fault settings choose at that moment (valid, expired or wrong-host server certificate). Client
certificates are requested, not required (CERT_OPTIONAL); a presented one must chain to a trusted
OCES CA or the handshake fails, and its DER goes to the application with the request. Faults are
applied before the application sees the request.
"""

import json
import os
import socket
import ssl
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dms_sandbox import admin as admin_module
from dms_sandbox import portal as portal_module
from dms_sandbox import portal_variant
from dms_sandbox.store import Store

LOOPBACK = "127.0.0.1"
PORTAL_APIS = ("default", "variant")  # the shapes of the portal API (docs/portal-api.md)
MAX_BODY = 10 * 1024 * 1024
HANDSHAKE_TIMEOUT_S = 30


def log(message):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sys.stderr.write("%s dms-sandbox[%d]: %s\n" % (stamp, os.getpid(), message))
    sys.stderr.flush()


def tls_context(cert_file, key_file, client_ca_files):
    """Server context: TLS 1.2+, client certificate requested and verified against client_ca_files."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    context.verify_mode = ssl.CERT_OPTIONAL
    for path in client_ca_files:
        context.load_verify_locations(cafile=path)
    # An issuing CA given with --client-ca is trusted on its own, without its root.
    context.verify_flags |= getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0x80000)  # named in Python 3.10+
    return context


class Service:
    """One listening service: its application, its faults and (for HTTPS) its TLS contexts."""

    def __init__(self, name, app, faults=None, server_certificates=None, client_ca_files=(), count=None,
                 release=None):
        self.name = name
        self.release = release  # called at the end of every connection's thread (closes its database handle)
        self.app = app
        self.faults = faults
        self.server_certificates = server_certificates  # {"valid": {"cert","key"}, "expired": ..., ...} or None
        self.client_ca_files = list(client_ca_files)
        self.count = count
        self._contexts = {}
        self._lock = threading.Lock()
        if server_certificates:
            self.context()  # fail at start, not at the first request, when a file is missing

    @property
    def tls(self):
        return bool(self.server_certificates)

    def context(self):
        kind = self.faults.get("server_certificate") if self.faults else "valid"
        with self._lock:
            if kind not in self._contexts:
                pair = self.server_certificates[kind]
                self._contexts[kind] = tls_context(pair["cert"], pair["key"], self.client_ca_files)
            return self._contexts[kind]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    # SO_REUSEADDR only lets a restarted sandbox take its old port out of TIME_WAIT; on Linux two live
    # listeners still cannot share a port (SO_REUSEPORT stays off).
    allow_reuse_address = True

    def __init__(self, address, service):
        self.service = service
        super().__init__(address, _Handler)

    def finish_request(self, request, client_address):
        if not self.service.tls:
            super().finish_request(request, client_address)
            return
        request.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            connection = self.service.context().wrap_socket(request, server_side=True)
        except (ssl.SSLEOFError, ConnectionError, socket.timeout):
            return  # a port probe or a client that gave up: nothing to report
        except (ssl.SSLError, OSError) as exc:
            # Unknown CA, expired client certificate, a client that rejects our certificate: all end here.
            log("%s: TLS handshake with %s:%d failed: %s" % (self.service.name, client_address[0],
                                                             client_address[1], exc))
            return
        try:
            self.RequestHandlerClass(connection, client_address, self)
        finally:
            try:
                connection.close()
            except OSError:
                pass

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            if self.service.release:
                self.service.release()

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, socket.timeout)):
            return  # clients hang up; not our problem
        log("%s: error while serving %s: %s" % (self.service.name, client_address, traceback.format_exc()))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "DMS-Sandbox"
    sys_version = ""

    def do_GET(self):  # pylint: disable=invalid-name
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def _read_chunked(self):
        chunks, total = [], 0
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65536) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                raise ValueError("request body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        length = int(length)
        if length < 0 or length > MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length)

    def _dispatch(self):
        service = self.server.service
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(413, {"Content-Type": "text/plain"}, b"request body too large or malformed\n")
            return
        if service.count:
            service.count("requests:" + service.name)
        decision = service.faults.decide() if service.faults else None
        if decision is not None and service.count:
            service.count("faults:%s:%s" % (service.name, "dropped" if decision == "drop" else decision[1]))
        if decision == "drop":
            # Hang up without a word, as an overloaded load balancer does.
            self.close_connection = True
            self.log_message('"%s" dropped (fault)', self.requestline)
            return
        if decision is not None:
            status, code, headers = decision
            self._send(status, *self._fault_answer(service, status, code, headers))
            return
        peer = None
        if service.tls:
            peer = self.connection.getpeercert(binary_form=True)
        try:
            status, headers, payload = service.app.handle(self.command, self.path, dict(self.headers.items()),
                                                          body, peer)
        except Exception:  # pylint: disable=broad-except
            log("%s: %s %s failed: %s" % (service.name, self.command, self.path, traceback.format_exc()))
            status, headers, payload = 500, {"Content-Type": "application/json"}, json.dumps(
                {"error": "internal_error", "detail": "the sandbox failed; see its log"}).encode()
        self._send(status, headers, payload)

    @staticmethod
    def _fault_answer(service, status, code, headers):  # pylint: disable=unused-argument
        headers = dict(headers)
        if service.name == "gateway":
            headers["Content-Type"] = "text/plain; charset=utf-8"
            return headers, ("%s (injected fault)\n" % code).encode()
        headers["Content-Type"] = "application/json"
        detail = {"maintenance": "the portal is down for maintenance; try again later",
                  "rate_limited": "too many requests; wait Retry-After seconds",
                  "service_unavailable": "the service is temporarily unavailable; try again"}[code]
        shape = getattr(service.app, "error_document", None)  # the portal's API shape, when it has its own
        document = shape(code, detail) if shape else {"error": code, "detail": detail}
        return headers, json.dumps(document).encode()

    def _send(self, status, headers, payload):
        self.send_response(status)
        for name, value in headers.items():
            for one in value if isinstance(value, list) else [value]:  # a list: the header repeated (Set-Cookie)
                self.send_header(name, one)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        # Paths, methods and statuses only: bodies and headers (tokens, passwords) never reach the log.
        log("%s %s - %s" % (self.server.service.name, self.client_address[0], format % args))


def _bind(service, preferred_port):
    for port in ([preferred_port] if preferred_port else []) + [0]:
        try:
            return _Server((LOOPBACK, port), service)
        except OSError:
            continue
    raise OSError("no free loopback port for the %s" % service.name)


class Sandbox:
    """Portal + gateway + admin API over one state directory and one PKI."""

    def __init__(self, state_dir, pki_manifest, faults, client_ca_files=(), require_client_cert_gateway=False,
                 gateway_user_form="UI", session_lifetime_s=portal_module.SESSION_LIFETIME_S,
                 serve_test_service=False, answer_key_reference="issuer_serial", portal_api="default"):
        self.state_dir = os.path.abspath(state_dir)
        self.pki = pki_manifest
        self.faults = faults
        self.client_ca_files = [self.pki["ca_bundle"]] + [os.path.abspath(p) for p in client_ca_files]
        self.require_client_cert_gateway = require_client_cert_gateway
        self.serve_test_service = serve_test_service
        self.answer_key_reference = answer_key_reference
        self.store = Store(os.path.join(self.state_dir, "sandbox.db"), gateway_user_form=gateway_user_form)
        self.store.registrations_held = lambda: self.faults["portal"].get("registration_stuck")
        self.portal = portal_module.Portal(self.store, faults["portal"], session_lifetime_s=session_lifetime_s)
        if portal_api not in PORTAL_APIS:
            raise ValueError("unknown portal API shape %r; choose one of %s" % (portal_api, ", ".join(PORTAL_APIS)))
        self.portal_api = portal_api
        # The variant is a translation in front of the same portal: its rules live once, in portal.py.
        self.portal_app = portal_variant.PortalVariant(self.portal) if portal_api == "variant" else self.portal
        self.gateway = self._make_gateway()
        self.admin = admin_module.Admin(self.store, faults)
        self.servers = {}
        self._threads = []

    def _make_gateway(self):
        """The AS4 gateway; a sandbox without one does not start (a test would skip what it cannot reach)."""
        from dms_sandbox import gateway  # pylint: disable=import-outside-toplevel
        signing = self.pki["server"]["gateway_signing"]
        with open(signing["cert"], "rb") as handle:
            cert_pem = handle.read()
        with open(signing["key"], "rb") as handle:
            key_pem = handle.read()
        trusted = []
        for path in self.client_ca_files:
            with open(path, "rb") as handle:
                trusted.append(handle.read())
        try:
            return gateway.Gateway(store=self.store, signing_cert_pem=cert_pem, signing_key_pem=key_pem,
                                   trusted_ca_pems=trusted, require_client_cert=self.require_client_cert_gateway,
                                   serve_test_service=self.serve_test_service,
                                   answer_key_reference=self.answer_key_reference)
        except Exception as exc:  # pylint: disable=broad-except
            log("gateway: cannot start: %s" % traceback.format_exc())
            raise ValueError("the AS4 gateway cannot start (%s: %s); the sandbox does not run without it. Fix: "
                             "check server.gateway_signing in the pki.json of %s and the --client-ca files"
                             % (type(exc).__name__, exc, self.pki.get("_dir") or "--pki")) from exc

    def _server_certificates(self):
        server = self.pki["server"]
        return {"valid": {"cert": server["cert"], "key": server["key"]},
                "expired": server["expired"], "wrong_host": server["wrong_host"]}

    def start(self):
        """Bind and serve; return the readiness document (sandbox.json's content)."""
        previous = self.store.meta_get("ports", {})
        certificates = self._server_certificates()
        count, release = self.store.count, self.store.release_thread
        services = {
            "portal": Service("portal", self.portal_app, self.faults["portal"], certificates, self.client_ca_files,
                              count, release),
            "gateway": Service("gateway", self.gateway, self.faults["gateway"], certificates, self.client_ca_files,
                               count, release),
            "admin": Service("admin", self.admin, release=release),
        }
        for name, service in services.items():
            self.servers[name] = _bind(service, previous.get(name))
        self.admin.allow_port(self.servers["admin"].server_address[1])
        for name, server in self.servers.items():
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                      name="serve-" + name, daemon=True)
            thread.start()
            self._threads.append(thread)
        ports = {name: server.server_address[1] for name, server in self.servers.items()}
        self.store.meta_set("ports", ports)
        for port in ports.values():  # readiness means "accepts connections", so check that it does
            with socket.create_connection((LOOPBACK, port), timeout=5):
                pass
        return {
            "portal_url": "https://%s:%d%s" % (LOOPBACK, ports["portal"], portal_module.BASE_PATH),
            "portal_api": self.portal_api,
            "gateway_url": "https://%s:%d" % (LOOPBACK, ports["gateway"]),
            "admin_url": "http://%s:%d" % (LOOPBACK, ports["admin"]),
            "admin_token": self.admin.token,
            "ca_bundle": self.pki["server"]["ca_bundle"],
            "gateway_certificate": self.pki["server"]["gateway_signing"]["cert"],
            "pki_dir": self.pki.get("_dir"),
            "state_dir": self.state_dir,
            "client_ca_files": self.client_ca_files,
            "require_client_cert_gateway": self.require_client_cert_gateway,
            "serve_test_service": self.serve_test_service,
            "answer_key_reference": self.answer_key_reference,
            "gateway_user_form": self.store.gateway_user_form,
            "pid": os.getpid(),
        }

    def stop(self):
        for server in self.servers.values():
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self.store.close()
