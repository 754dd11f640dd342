# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the gateway connection test sends and whom it trusts: ``Probe``, read from the module's options.

Owns: ``Probe`` (the gateway URL and user, the message to send, the layers to run, who may sign the
answer), ``probe_from_params`` (every gateway_connectivity option that is not the certificate or the
connection, validated: pull without allow_dequeue, the notification window, the layers, receipt_signer
and its subject / fingerprint, the pin file) and the pin file's text (``parse_pins`` / ``add_pin``: one
``<gateway url> sha256:<hex>`` line per gateway, like SSH's known_hosts; writing it is the module's job,
through ``_files.write_file``).
Knows Ansible: no (``ProbeOptionError`` out; the module turns it into ``fail_json``).
"""

from __future__ import annotations

from collections import namedtuple
from urllib.parse import quote

from ansible_collections.dkcustoms.dms.plugins.module_utils import _as4, _files, _oces
from ansible_collections.dkcustoms.dms.plugins.module_utils._errors import DmsError

LAYERS = ("dns", "tcp", "tls", "client_certificate", "authentication", "as4")
DEFAULT_URLS = {"test": "https://secureftpgatewaytest.skat.dk:6384",
                "production": "https://secureftpgateway.skat.dk:6384"}
PIN_FILE_HEADER = ("# Gateway answer signers pinned by dkcustoms.dms.gateway_connectivity (trust on first use).\n"
                   "# One line per gateway: <gateway url> sha256:<fingerprint of the certificate that signs its answers>.\n"
                   "# To accept a legitimately renewed certificate, delete its gateway's line; the next run pins it.\n")


class ProbeOptionError(DmsError):
    """A gateway_connectivity option that cannot work; the message names it and the fix."""

    reason = "invalid_option"


class PinFileError(ProbeOptionError):
    """The pin file cannot be read; the message names the line and the fix."""


_PROBE_FIELDS = ("url", "gateway_user", "gateway_password", "tls_client_certificate", "kind", "mpc",
                 "signer_policy", "from_party", "to_party", "from_party_type", "to_party_type", "key_reference",
                 "layers", "notification_service", "notification_window_minutes", "pin_file")
_PROBE_DEFAULTS = (False, "notification", _as4.DEFAULT_MPC, None, None, _as4.DEFAULT_TO_PARTY,
                   _as4.DEFAULT_PARTY_TYPE, _as4.DEFAULT_PARTY_TYPE, "issuer_serial", LAYERS, "DMS.Import", 5, None)


class Probe(namedtuple("Probe", _PROBE_FIELDS, defaults=_PROBE_DEFAULTS)):
    """One connection test's what and whom (immutable).  ``kind``: notification | ping | pull;
    ``signer_policy``: an ``_as4.SignerPolicy`` (who may sign the answers); ``pin_file`` (the path, for
    hints) asks for the answer's signer to be offered for pinning."""

    __slots__ = ()

    @property
    def endpoint(self):
        return "%s/exchange/%s" % (self.url, quote(self.gateway_user, safe=""))

    @property
    def last_layer(self):
        """Checks run up to the deepest layer asked for; each needs the ones before it."""
        return max(LAYERS.index(name) for name in self.layers)

    @property
    def policy(self):
        return self.signer_policy or _as4.SignerPolicy()

    def submitter_id(self, certificate):
        """The CVR the notification query sends as submitterId: read from the certificate."""
        cvr = _oces.classify(certificate).get("cvr")
        if not cvr:
            raise ProbeOptionError(
                "The certificate %s carries no CVR (organizationIdentifier NTRDK-<8 digits>), which the "
                "notification probe sends as submitterId. Fix: use the OCES3 certificate registered for "
                "the gateway user, or choose probe: ping or pull." % certificate.subject.rfc4514_string())
        return cvr


# --- the module's options ----------------------------------------------------------------------------

def check_options(params):
    """Refuse option combinations that cannot work, before anything is read or sent."""
    if params["probe"] == "pull" and not params["allow_dequeue"]:
        mpc = params["mpc"] or _as4.DEFAULT_MPC
        raise ProbeOptionError(
            "probe=pull would take a message waiting on MPC %s (an ebMS3 PullRequest cannot peek), "
            "so nothing was sent. Fix: use probe=notification (read-only, the default), or set "
            "allow_dequeue: true if %s is a dedicated test MPC or you accept that a waiting message is "
            "taken from the gateway." % (mpc, params["mpc"] or "the MPC"))
    if params["notification_window_minutes"] < 1:
        raise ProbeOptionError("notification_window_minutes must be 1 or more. Fix: set a window of at least "
                               "1 minute (the reference client's example uses 5).")
    if not params["layers"]:
        raise ProbeOptionError("layers is empty. Fix: name at least one of %s." % ", ".join(LAYERS))


def layers_to_run(params, check_mode):
    """(the layers, a warning or None): in check mode a pull is not sent (it could take a waiting message)."""
    layers = params["layers"]
    deepest = max(LAYERS.index(name) for name in layers)
    if params["probe"] != "pull" or not check_mode or deepest <= LAYERS.index("client_certificate"):
        return layers, None
    kept = [name for name in layers if LAYERS.index(name) <= LAYERS.index("client_certificate")]
    return kept or ["client_certificate"], ("check mode: the pull is not sent (it could take a waiting message); "
                                            "the layers authentication and as4 are skipped")


def _receipt_signers(path):
    if not path:
        return []
    try:
        with open(path, "rb") as handle:
            return _as4.load_certificates(handle.read())
    except (IOError, OSError) as exc:
        raise ProbeOptionError("Cannot read receipt_signer %s (%s). Fix: give the path of a PEM file with the "
                               "gateway's signing certificate or its CA on the managed host."
                               % (path, exc.strerror or exc)) from None
    except ValueError:
        raise ProbeOptionError("receipt_signer %s holds no PEM certificate. Fix: give the gateway's signing "
                               "certificate (or its CA) in PEM." % path) from None


def signer_policy(params, pinned=None):
    """The ``_as4.SignerPolicy`` of receipt_signer, receipt_signer_subject, receipt_signer_fingerprint."""
    subject = fingerprint = None
    if params["receipt_signer_subject"]:
        subject = _as4.parse_name(params["receipt_signer_subject"])
        if subject is None:
            raise ProbeOptionError("receipt_signer_subject %r is not an RFC 4514 name. Fix: write it like "
                                   "CN=SKAT OIO Gateway Test,O=Skatteforvaltningen,C=DK."
                                   % params["receipt_signer_subject"])
    if params["receipt_signer_fingerprint"]:
        try:
            fingerprint = _as4.parse_fingerprint(params["receipt_signer_fingerprint"])
        except ValueError as exc:
            raise ProbeOptionError("receipt_signer_fingerprint: %s. Fix: give the SHA-256 fingerprint of the "
                                   "gateway's signing certificate (openssl x509 -noout -fingerprint -sha256)."
                                   % exc) from None
    return _as4.SignerPolicy(_receipt_signers(params["receipt_signer"]), subject=subject,
                             fingerprint=fingerprint, pinned=pinned)


def probe_from_params(params, url, layers, pins):
    """The ``Probe`` of gateway_connectivity's options (``url`` resolved, ``layers`` from ``layers_to_run``,
    ``pins`` from ``read_pins``)."""
    return Probe(url=url, gateway_user=params["gateway_user"], gateway_password=params["gateway_password"],
                 tls_client_certificate=params["tls_client_certificate"], kind=params["probe"],
                 mpc=params["mpc"] or _as4.DEFAULT_MPC, signer_policy=signer_policy(params, pins.get(url)),
                 from_party=params["from_party"], to_party=params["to_party"],
                 from_party_type=params["from_party_type"], to_party_type=params["to_party_type"],
                 key_reference=params["key_reference"], layers=tuple(layers),
                 notification_service=params["notification_service"],
                 notification_window_minutes=params["notification_window_minutes"],
                 pin_file=params["receipt_signer_pin_file"])


# --- the pin file (trust on first use) ----------------------------------------------------------------

def read_pins(path):
    """(text of the pin file or None, {url: fingerprint}); no path: (None, {})."""
    if not path:
        return None, {}
    try:
        data = _files.read_file(path)
        text = data.decode("utf-8") if data is not None else None
    except _files.FileError as exc:
        raise PinFileError("receipt_signer_pin_file %s: %s" % (path, exc)) from None
    except UnicodeDecodeError:
        raise PinFileError("receipt_signer_pin_file %s is not a text file. Fix: point the option at the pin "
                           "file this module writes, or at a path where none exists yet." % path) from None
    try:
        return text, parse_pins(text)
    except PinFileError as exc:
        raise PinFileError("receipt_signer_pin_file %s: %s" % (path, exc.msg)) from None


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
                               % (number, exc)) from None
    return pins


def add_pin(text, url, fingerprint_hex, subject):
    """The pin file's text with a line for ``url`` added (the file's header first when it is new)."""
    text = text or PIN_FILE_HEADER
    if not text.endswith("\n"):
        text += "\n"
    comment = " ".join((subject or "").split())[:300]
    return text + "# %s\n%s sha256:%s\n" % (comment, url.rstrip("/"), fingerprint_hex.lower())
