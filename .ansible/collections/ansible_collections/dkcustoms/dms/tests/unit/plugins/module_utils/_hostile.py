# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Small hostile servers on loopback for the security tests: a scripted HTTPS server (real TLS with
the test PKI's server certificate) that can redirect, stream huge answers or answer in the wrong
shape, and a plain TCP sink that records whatever reaches it.  They stop with the test."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        self.server.log.append({"method": self.command, "path": path, "body": body})
        route = self.server.routes.get((self.command, path), self.server.default)
        if callable(route):
            route(self, body)
            return
        status, headers, payload = route
        self.send(status, headers, payload)

    def send(self, status, headers=None, payload=None):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def stream(self, total, chunk=64 * 1024, announce=False):
        """Send ``total`` bytes of JSON-looking filler, chunked (or with Content-Length if
        ``announce``); stops quietly when the client hangs up."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if announce:
            self.send_header("Content-Length", str(total))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        block = b"[" + b"1," * (chunk // 2 - 1) + b"1"
        sent = 0
        try:
            while sent < total:
                piece = block[:min(len(block), total - sent)]
                if announce:
                    self.wfile.write(piece)
                else:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                sent += len(piece)
            if not announce:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass
        self.server.streamed = sent
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _answer


class HostileHTTPS:
    """``routes[(method, path)]`` = ``(status, headers, payload)`` or ``callable(handler, body)``."""

    def __init__(self, pki, routes=None, default=(404, {}, {"error": "not_found", "detail": "no"})):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki["server"]["cert"], pki["server"]["key"])
        context.load_verify_locations(pki["ca_bundle"])
        context.verify_mode = ssl.CERT_OPTIONAL
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.routes = dict(routes or {})
        self.httpd.default = default
        self.httpd.log = []
        self.httpd.streamed = 0
        self.port = self.httpd.server_address[1]
        self.url = "https://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    @property
    def routes(self):
        return self.httpd.routes

    @property
    def log(self):
        return self.httpd.log

    def paths(self):
        return ["%s %s" % (entry["method"], entry["path"]) for entry in self.httpd.log]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Sink:
    """A plain TCP listener that accepts connections and records every byte sent to it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.received = b""
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _peer = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            conn.settimeout(1)
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    self.received += data
            except OSError:
                pass
            finally:
                conn.close()

    def close(self):
        self._stop.set()
        self.thread.join(2)
        self.sock.close()
