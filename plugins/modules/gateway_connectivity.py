#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gateway_connectivity
short_description: Layered connection test to the DMS AS4 gateway, ending in the reference client's read-only query
version_added: 0.1.0
description:
  - Step 3 of the DMS onboarding guide, "Testing network connection DMS", run from the integration host
    itself (the network path that matters is that host's).
  - Checks, in order, C(dns), C(tcp), C(tls), C(client_certificate), C(authentication) and C(as4), and
    says which layer fails and what to do about it. Each layer in RV(layers) has a status
    (V(pass), V(fail) or V(skipped)), its duration, a detail and a hint.
  - The AS4 message is laid out and signed exactly as SKAT's reference client (skat/simple-as4-client)
    does it - the UsernameToken (PasswordDigest) alone in a C(wsse:Security) header with C(S12:role="ebms"),
    the signature (RSA-SHA256, exclusive C14N, SHA-256, IssuerSerial) in the default C(wsse:Security)
    header over the SOAP Body, C(eb:Messaging) and the UsernameToken.
  - The default O(probe=notification) is the reference client's own connectivity check, a Notification
    query without payload that reads nothing off any queue; its answer (SOAP with attachments) is read
    with the attachments reported.
  - The answer is classified - a receipt or a user message answering ours (its signature checked, see
    RV(answer_signature), its RefToMessageId and, for a receipt, its NonRepudiationInformation digests
    compared with the message sent), an ebMS error signal, a SOAP fault, or something that is not AS4 at
    all.
  - The module reports C(changed) only when it writes O(receipt_signer_pin_file). See
    C(docs/connectivity.md) in the collection for the layers, the hints and why a pull needs
    O(allow_dequeue).
author:
  - dkcustoms.dms developers (@dkcustoms)
requirements:
  - cryptography >= 42.0 (on the managed host)
  - lxml (on the managed host)
  - signxml >= 4.0 (on the managed host)
extends_documentation_fragment:
  - dkcustoms.dms.attributes
  - dkcustoms.dms.attributes.files
  - dkcustoms.dms.certificate_source
  - dkcustoms.dms.connection
attributes:
  check_mode:
    support: full
    details:
      - O(probe=notification) and O(probe=ping) run in full; neither changes anything on the gateway.
      - A O(probe=pull) stops after the C(client_certificate) layer in check mode, because a pull can
        take a waiting message.
      - O(receipt_signer_pin_file) is not written in check mode; C(changed) says whether it would be.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - The pin file is written once, on the first success; later runs compare with it.
      - A O(probe=pull) with O(allow_dequeue=true) may take a message from the gateway.
  safe_file_operations:
    support: full
options:
  url:
    description:
      - Base URL of the AS4 gateway; the module addresses C(<url>/exchange/<gateway_user>).
      - Defaults by O(environment) - V(test) C(https://secureftpgatewaytest.skat.dk:6384),
        V(production) C(https://secureftpgateway.skat.dk:6384).
    type: str
  gateway_user:
    description:
      - The gateway user the certificate portal shows after registration (for example
        C(CVR_12345678_UI_<uuid>)). Read it from the portal, for example with
        M(dkcustoms.dms.portal_registration); do not compute it.
    type: str
    required: true
  gateway_password:
    description:
      - The gateway password the certificate portal shows. Sent only as a WS-Security PasswordDigest;
        never logged or returned.
    type: str
    required: true
  tls_client_certificate:
    description:
      - Present the signing certificate as TLS client certificate as well.
      - SKAT's reference client does not, so the gateway most likely does not require it; set it when
        the C(client_certificate) layer reports that the server requires one.
    type: bool
    default: false
  receipt_signer:
    description:
      - PEM file with the certificate that must have signed the gateway's answers (the gateway's
        signing certificate) or the CA that issued it.
      - With it, RV(answer_signature) is V(verified) only when the answer's signature verifies with that
        certificate (or one the CA issued directly), and a failure otherwise.
      - A gateway that names its signing certificate by issuer and serial number (as Holodeck B2B does)
        can only be checked against the certificate itself, not against its CA.
      - Without it (and without O(receipt_signer_pin_file)), the answer's origin is not checked;
        RV(answer_signature) is then V(not_checked) and a warning says so.
    type: path
  receipt_signer_subject:
    description:
      - Subject (RFC 4514, for example C(CN=SKAT OIO Gateway Test,O=Skatteforvaltningen,C=DK)) the answer's
        signing certificate must have. Narrows a CA in O(receipt_signer) down to one signer.
    type: str
  receipt_signer_fingerprint:
    description:
      - SHA-256 fingerprint (hex, colons allowed) the answer's signing certificate must have. Narrows a CA in
        O(receipt_signer) down to one certificate.
    type: str
  receipt_signer_pin_file:
    description:
      - Trust on first use, like SSH's C(known_hosts). A file on the managed host with one line per gateway
        URL and the SHA-256 fingerprint of the certificate that signs its answers.
      - On the first successful run over verified TLS (O(validate_certs=true)) the fingerprint of the
        certificate the answer carries is stored (mode 0600, written atomically); later runs require
        answers signed by that certificate and fail otherwise, with a hint on how to accept a
        legitimately renewed one (delete that gateway's line).
      - Needs answers that carry their signing certificate (a BinarySecurityToken); otherwise give
        O(receipt_signer).
    type: path
  from_party:
    description:
      - The From PartyId of user messages. Defaults to C(<gateway_user>_AS4), as the reference client sends it.
    type: str
  from_party_type:
    description:
      - The C(type) attribute of the From PartyId; empty to leave it out.
    type: str
    default: string
  to_party:
    description:
      - The To PartyId of user messages.
    type: str
    default: SKAT-MFT-AS4
  to_party_type:
    description:
      - The C(type) attribute of the To PartyId; empty to leave it out.
    type: str
    default: string
  probe:
    description:
      - V(notification) sends what SKAT's reference client sends to check connectivity - a user message
        without payload on O(notification_service), action C(Notification), with the MessageProperties
        C(lang), C(submitterId) (the CVR read from the certificate), C(dateFrom) and C(dateTo) (a window of
        O(notification_window_minutes) ending now). The gateway answers it with the notifications of that
        window; nothing is taken off any queue.
      - V(ping) sends the ebMS3 test service/action. A standard gateway answers it with a signed receipt
        without delivering anything, but nothing public shows that the DMS gateway serves it.
      - V(pull) sends a PullRequest on O(mpc) and counts EBMS:0006 EmptyMessagePartitionChannel as
        success. A pull cannot peek - it takes a waiting message - so it is refused unless
        O(allow_dequeue=true).
    type: str
    choices: [notification, ping, pull]
    default: notification
  notification_service:
    description:
      - The service of O(probe=notification). The reference client's examples use C(DMS.Import) and
        C(DMS.Export2).
    type: str
    choices: [DMS.Import, DMS.Import2, DMS.Export2]
    default: DMS.Import
  notification_window_minutes:
    description:
      - Length of the C(dateFrom)-C(dateTo) window of O(probe=notification), ending now. The dates are
        written as the reference client writes them (C(2022-03-22T12:30:00.000), no zone), in Danish time
        (C(Europe/Copenhagen); UTC where the host has no time zone data).
    type: int
    default: 5
  mpc:
    description:
      - Message partition channel of O(probe=pull). Defaults to the reference client's
        C(urn:fdc:dk.skat.mft.DMS/import2/response), on which customs answers wait.
    type: str
  allow_dequeue:
    description:
      - Allow O(probe=pull). A waiting message is taken from the gateway and is then no longer
        there for the application that should process it; its message id is returned in
        RV(answer.pulled_message_id) and a warning names it.
      - Set it only for a dedicated test MPC, or when you accept that.
    type: bool
    default: false
  key_reference:
    description:
      - How the signature names the signing certificate. V(issuer_serial) (issuer and serial number, as
        the reference client does) or V(binary_security_token) (the certificate travels in the message).
    type: str
    choices: [issuer_serial, binary_security_token]
    default: issuer_serial
  layers:
    description:
      - The layers to check. The checks run in order up to the deepest layer named here; the layers
        before it run as well, because each needs the one before. Layers after it are V(skipped).
    type: list
    elements: str
    choices: [dns, tcp, tls, client_certificate, authentication, as4]
    default: [dns, tcp, tls, client_certificate, authentication, as4]
  fail_on_error:
    description:
      - Fail the task when the test does not end in RV(result=SUCCESS). With V(false) the result is only
        returned, for example to collect a fleet report.
    type: bool
    default: true
  retries:
    description:
      - How many times the AS4 message is rebuilt and sent again after a transient failure (dropped
        connection, HTTP 429, 502, 503, 504). Every attempt is a new message with a new nonce;
        a message is never resent as it was (the gateway would rightly refuse the replayed nonce).
    type: int
    default: 2
notes:
  - The connection to the gateway is tested from the managed host; DNS, routing, firewalls and proxies
    are those of that host.
  - A O(probe=pull) that takes a message does not report C(changed); the taken message id is in
    RV(answer.pulled_message_id) and in a warning.
seealso:
  - module: dkcustoms.dms.portal_registration
  - module: dkcustoms.dms.oces_certificate_info
"""

EXAMPLES = r"""
- name: Test the connection to the DMS test gateway with the reference client's Notification query
  dkcustoms.dms.gateway_connectivity:
    environment: test
    certificate_path: /etc/dkcustoms/dms/current/foces.p12
    certificate_passphrase: "{{ vault_foces_passphrase }}"
    gateway_user: "{{ registration.gateway_user }}"
    gateway_password: "{{ vault_gateway_password }}"
    receipt_signer: /etc/dkcustoms/dms/gateway-signing.pem

- name: Pin the gateway's answer signer on first use instead (like SSH known_hosts)
  dkcustoms.dms.gateway_connectivity:
    certificate_path: /etc/dkcustoms/dms/current/foces.p12
    certificate_passphrase: "{{ vault_foces_passphrase }}"
    gateway_user: "{{ registration.gateway_user }}"
    gateway_password: "{{ vault_gateway_password }}"
    notification_service: DMS.Export2
    receipt_signer_pin_file: /etc/dkcustoms/dms/gateway-signers

- name: Only the network layers (no credentials used), record the result without failing
  dkcustoms.dms.gateway_connectivity:
    url: https://secureftpgatewaytest.skat.dk:6384
    certificate_path: /etc/dkcustoms/dms/current/cert.pem
    private_key_path: /etc/dkcustoms/dms/current/key.pem
    gateway_user: "{{ registration.gateway_user }}"
    gateway_password: "{{ vault_gateway_password }}"
    layers: [dns, tcp, tls]
    fail_on_error: false
  register: network

- name: Prove transport, authentication and signature with a pull on a dedicated, empty test MPC
  dkcustoms.dms.gateway_connectivity:
    certificate_path: /etc/dkcustoms/dms/current/cert.pem
    private_key_path: /etc/dkcustoms/dms/current/key.pem
    gateway_user: "{{ registration.gateway_user }}"
    gateway_password: "{{ vault_gateway_password }}"
    probe: pull
    mpc: urn:example:connectivity-test
    allow_dequeue: true
"""

RETURN = r"""
ok:
  description: Whether every layer that ran passed.
  returned: always
  type: bool
  sample: true
result:
  description:
    - V(SUCCESS), or what failed - V(DNS_ERROR), V(CONNECT_ERROR), V(TLS_ERROR), V(CLIENT_CERT_REJECTED),
      V(AUTH_FAILED), V(AS4_ERROR) (ebMS error signal or SOAP fault), V(INVALID_SIGNAL) (an answer whose
      signature is invalid or by another signer, or that does not answer the message sent) or V(NO_SIGNAL)
      (no AS4 answer).
  returned: always
  type: str
  sample: SUCCESS
failed_layer:
  description: The first layer that failed, or V(null).
  returned: always
  type: str
  sample: authentication
answer_signature:
  description:
    - What the answer's signature proved. V(verified) - it verifies with a certificate you trust
      (O(receipt_signer), or the one pinned in O(receipt_signer_pin_file)). V(not_checked) - nothing to
      check it against (the success stands, with a warning that the answer's origin is unproven; error
      signals are never signed). V(invalid) - it does not verify or is by another signer (then
      RV(result=INVALID_SIGNAL)). V(null) when no answer came.
  returned: always
  type: str
  sample: verified
pin:
  description: What was done with O(receipt_signer_pin_file), or V(null) without one.
  returned: always
  type: dict
  contains:
    path:
      description: The pin file.
      type: str
      sample: /etc/dkcustoms/dms/gateway-signers
    fingerprint_sha256:
      description: The fingerprint pinned for this gateway (hex), or V(null) when there is none yet.
      type: str
      sample: 3f1c...
    written:
      description: Whether this run stored it (would store it, in check mode).
      type: bool
      sample: false
notification:
  description: The query O(probe=notification) sent, or V(null) for the other probes.
  returned: always
  type: dict
  contains:
    service:
      description: The service.
      type: str
      sample: DMS.Import
    submitter_id:
      description: The CVR sent as C(submitterId), read from the certificate.
      type: str
      sample: "12345678"
    date_from:
      description: C(dateFrom) as sent.
      type: str
      sample: "2026-03-22T12:30:00.000"
    date_to:
      description: C(dateTo) as sent.
      type: str
      sample: "2026-03-22T12:35:00.000"
    time_zone:
      description: The time zone the dates are written in.
      type: str
      sample: Europe/Copenhagen
layers:
  description: One entry per layer, in order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: C(dns), C(tcp), C(tls), C(client_certificate), C(authentication) or C(as4).
      type: str
      sample: tls
    status:
      description: V(pass), V(fail) or V(skipped).
      type: str
      sample: pass
    duration_ms:
      description: Time the layer took, in milliseconds.
      type: int
      sample: 12
    detail:
      description: What was found.
      type: str
      sample: TLSv1.3 TLS_AES_256_GCM_SHA384; server certificate CN=... verified
    hint:
      description: What to do about a failure (V(null) when the layer passed).
      type: str
      sample: Set ca_path to the CA bundle that issued the gateway's certificate.
ebms_error:
  description: The ebMS error of the answer (also the EBMS:0006 warning of an empty pull), or V(null).
  returned: always
  type: dict
  contains:
    code:
      description: The ebMS error code.
      type: str
      sample: EBMS:0101
    severity:
      description: V(failure) or V(warning).
      type: str
      sample: failure
    short_description:
      description: The ebMS short description.
      type: str
      sample: FailedAuthentication
    category:
      description: The ebMS category.
      type: str
      sample: Processing
    ref_to_message_in_error:
      description: The message id the error refers to.
      type: str
      sample: 4c0e54a4-09f9-4b7e-9a43-4d3f1f1d0f0e
    description:
      description: The C(eb:Description) text.
      type: str
      sample: "FailedAuthentication: UsernameToken: password digest does not match the gateway password"
    detail:
      description: The C(eb:ErrorDetail) text.
      type: str
      sample: "UsernameToken: password digest does not match the gateway password"
message_id:
  description: The MessageId of the message sent (a bare UUID, as the reference client writes it), or
    V(null) when none was sent.
  returned: always
  type: str
  sample: 4c0e54a4-09f9-4b7e-9a43-4d3f1f1d0f0e
answer:
  description: The classified answer of the gateway, or V(null) when none came.
  returned: always
  type: dict
  contains:
    kind:
      description: V(receipt), V(response) (a user message answering ours), V(empty_pull), V(user_message)
        (a pulled message), V(error), V(soap_fault) or V(not_as4).
      type: str
      sample: response
    http_status:
      description: HTTP status of the answer.
      type: int
      sample: 200
    answer_signature:
      description: As RV(answer_signature).
      type: str
      sample: verified
    signer:
      description: Subject of the certificate whose signature verified, or V(null).
      type: str
      sample: CN=SKAT OIO Gateway Test,...
    signer_fingerprint_sha256:
      description: SHA-256 fingerprint (hex) of that certificate, or V(null).
      type: str
      sample: 3f1c...
    problems:
      description: Why the answer cannot be trusted (empty when it can).
      type: list
      elements: str
      sample: []
    attachments:
      description: The attachments of a C(multipart/related) answer, first one first. Never more than a
        short preview of their content.
      type: list
      elements: dict
      contains:
        content_id:
          description: The part's Content-ID.
          type: str
        content_type:
          description: The part's media type.
          type: str
        size:
          description: Size in bytes.
          type: int
        signed:
          description: Whether the answer's signature covers it (V(null) when the signature was not evaluated).
          type: bool
        status:
          description: Code and message of a DMS status document (C(urn:dk:skat:mft:DMS.declaration.status:1)), or V(null).
          type: dict
        preview:
          description: At most 200 characters of a textual attachment, whitespace collapsed; V(null) otherwise.
          type: str
    pulled_message_id:
      description: MessageId of a message a pull took from the gateway.
      type: str
      sample: null
    original_message_id:
      description: The first message property of a pulled message, which the reference client reads as the
        id of the original message it answers.
      type: str
      sample: null
    properties:
      description: The MessageProperties of a user message in the answer (values shortened to 200 characters).
      type: dict
      sample: {}
    security_fault:
      description: The WS-Security fault code of a SOAP fault (for example C(FailedAuthentication)), or V(null).
      type: str
      sample: null
endpoint:
  description: The URL the message was posted to.
  returned: always
  type: str
  sample: https://secureftpgatewaytest.skat.dk:6384/exchange/CVR_12345678_UI_...
gateway_user:
  description: The gateway user tested.
  returned: always
  type: str
  sample: CVR_12345678_UI_4b56...
probe:
  description: The probe used.
  returned: always
  type: str
  sample: notification
"""

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.dkcustoms.dms.plugins.module_utils import (
    _as4, _client_cert, _connectivity, _deps, _files, _module, _opt_certificate)


def _argument_spec():
    own = {
        "argument_spec": {
            "url": {"type": "str"},
            "gateway_user": {"type": "str", "required": True},
            "gateway_password": {"type": "str", "required": True, "no_log": True},
            "tls_client_certificate": {"type": "bool", "default": False},
            "receipt_signer": {"type": "path"},
            "receipt_signer_subject": {"type": "str"},
            "receipt_signer_fingerprint": {"type": "str"},
            "receipt_signer_pin_file": {"type": "path"},
            "from_party": {"type": "str"},
            "from_party_type": {"type": "str", "default": _as4.DEFAULT_PARTY_TYPE},
            "to_party": {"type": "str", "default": _as4.DEFAULT_TO_PARTY},
            "to_party_type": {"type": "str", "default": _as4.DEFAULT_PARTY_TYPE},
            "probe": {"type": "str", "default": "notification", "choices": list(_as4.PROBES)},
            "notification_service": {"type": "str", "default": "DMS.Import",
                                     "choices": list(_as4.NOTIFICATION_SERVICES)},
            "notification_window_minutes": {"type": "int", "default": 5},
            "mpc": {"type": "str"},
            "allow_dequeue": {"type": "bool", "default": False},
            "key_reference": {"type": "str", "default": "issuer_serial", "choices": list(_as4.KEY_REFERENCES)},
            "layers": {"type": "list", "elements": "str", "default": list(_connectivity.LAYERS),
                       "choices": list(_connectivity.LAYERS)},
            "fail_on_error": {"type": "bool", "default": True},
        },
        "required_by": {"receipt_signer_subject": ("receipt_signer",),
                        "receipt_signer_fingerprint": ("receipt_signer",)},
    }
    spec = _client_cert.merge_specs(_client_cert.connection_spec(default_retries=2), own)
    return spec


def _receipt_signers(module):
    path = module.params["receipt_signer"]
    if not path:
        return []
    try:
        with open(path, "rb") as handle:
            return _as4.load_certificates(handle.read())
    except (IOError, OSError) as exc:
        module.fail_json(msg="Cannot read receipt_signer %s (%s). Fix: give the path of a PEM file with "
                             "the gateway's signing certificate or its CA on the managed host."
                             % (path, to_native(exc.strerror or exc)))
    except ValueError:
        module.fail_json(msg="receipt_signer %s holds no PEM certificate. Fix: give the gateway's signing "
                             "certificate (or its CA) in PEM." % path)
    return []  # not reached


def _read_pins(module):
    """(text of the pin file or None, {url: fingerprint})."""
    path = module.params["receipt_signer_pin_file"]
    if not path:
        return None, {}
    try:
        text = _files.read_file(path)
        text = text.decode("utf-8") if text is not None else None
        return text, _connectivity.parse_pins(text)
    except (_files.FileError, _connectivity.PinFileError) as exc:
        module.fail_json(msg="receipt_signer_pin_file %s: %s" % (path, to_native(exc)))
    except UnicodeDecodeError:
        module.fail_json(msg="receipt_signer_pin_file %s is not a text file. Fix: point the option at the "
                             "pin file this module writes, or at a path where none exists yet." % path)
    return None, {}  # not reached


def _signer_policy(module, url, pins):
    params = module.params
    subject = fingerprint = None
    if params["receipt_signer_subject"]:
        subject = _as4.parse_name(params["receipt_signer_subject"])
        if subject is None:
            module.fail_json(msg="receipt_signer_subject %r is not an RFC 4514 name. Fix: write it like "
                                 "CN=SKAT OIO Gateway Test,O=Skatteforvaltningen,C=DK."
                                 % params["receipt_signer_subject"])
    if params["receipt_signer_fingerprint"]:
        try:
            fingerprint = _as4.parse_fingerprint(params["receipt_signer_fingerprint"])
        except ValueError as exc:
            module.fail_json(msg="receipt_signer_fingerprint: %s. Fix: give the SHA-256 fingerprint of the "
                                 "gateway's signing certificate (openssl x509 -noout -fingerprint -sha256)." % exc)
    return _as4.SignerPolicy(_receipt_signers(module), subject=subject, fingerprint=fingerprint,
                             pinned=pins.get(url))


def _layers(module):
    layers = module.params["layers"]
    if not layers:
        module.fail_json(msg="layers is empty. Fix: name at least one of %s."
                             % ", ".join(_connectivity.LAYERS))
    if module.params["probe"] == "pull" and module.check_mode:
        # A pull can take a waiting message: in check mode stop before anything is sent.
        deepest = max(_connectivity.LAYERS.index(name) for name in layers)
        if deepest > _connectivity.LAYERS.index("client_certificate"):
            module.warn("check mode: the pull is not sent (it could take a waiting message); the layers "
                        "authentication and as4 are skipped")
            return [name for name in layers if _connectivity.LAYERS.index(name) <= 3] or ["client_certificate"]
    return layers


def _check_params(module):
    params = module.params
    if params["probe"] == "pull" and not params["allow_dequeue"]:
        module.fail_json(
            msg="probe=pull would take a message waiting on MPC %s (an ebMS3 PullRequest cannot peek), "
                "so nothing was sent. Fix: use probe=notification (read-only, the default), or set "
                "allow_dequeue: true if %s is a dedicated test MPC or you accept that a waiting message is "
                "taken from the gateway." % (params["mpc"] or _as4.DEFAULT_MPC, params["mpc"] or "the MPC"))
    if params["timeout"] <= 0:
        module.fail_json(msg="timeout must be a positive number of seconds. Fix: set timeout >= 1.")
    if params["notification_window_minutes"] < 1:
        module.fail_json(msg="notification_window_minutes must be 1 or more. Fix: set a window of at least "
                             "1 minute (the reference client's example uses 5).")


def _store_pin(module, pin_text, candidate):
    """Write the first-use pin through the collection's one file writer; (written, fingerprint)."""
    path = module.params["receipt_signer_pin_file"]
    content = _connectivity.add_pin(pin_text, candidate["url"], candidate["fingerprint_sha256"],
                                    candidate["subject"])
    try:
        _files.write_file(module, path, content.encode("utf-8"), mode=0o600)
    except _files.FileError as exc:
        module.fail_json(msg="receipt_signer_pin_file %s: %s" % (path, to_native(exc)))
    return True


def main():
    module = _module.DmsModule(groups=[_opt_certificate.CERTIFICATE_SOURCE], **_argument_spec())
    _deps.require(module, "cryptography", "requests", "lxml", "signxml")
    params = module.params
    _check_params(module)
    with module.failing_on_errors():
        bundle = _opt_certificate.read_certificate(module, require_key=True)
    url = _client_cert.base_url(module, "url", _connectivity.DEFAULT_URLS)
    pin_text, pins = _read_pins(module)
    try:
        settings = _connectivity.Settings(
            url=url, gateway_user=params["gateway_user"], gateway_password=params["gateway_password"],
            certificate=bundle.certificate, private_key=bundle.private_key, chain=bundle.chain,
            ca_path=params["ca_path"], validate_certs=params["validate_certs"],
            tls_client_certificate=params["tls_client_certificate"], timeout=params["timeout"],
            retries=params["retries"], probe=params["probe"], mpc=params["mpc"],
            signer_policy=_signer_policy(module, url, pins), from_party=params["from_party"],
            to_party=params["to_party"], from_party_type=params["from_party_type"],
            to_party_type=params["to_party_type"], key_reference=params["key_reference"],
            layers=_layers(module), notification_service=params["notification_service"],
            notification_window_minutes=params["notification_window_minutes"],
            pin_file=params["receipt_signer_pin_file"])
        report = _connectivity.run_checks(settings)
    except (ValueError, _as4.As4Error) as exc:
        module.fail_json(msg="%s" % to_native(exc))
    for warning in report["warnings"]:
        module.warn(warning)
    pin = None
    if params["receipt_signer_pin_file"]:
        candidate = report["pin"]
        written = _store_pin(module, pin_text, candidate) if candidate else False
        pinned = pins.get(url)
        pin = {"path": params["receipt_signer_pin_file"], "written": written,
               "fingerprint_sha256": candidate["fingerprint_sha256"] if candidate else
               (pinned.hex() if pinned is not None else None)}
    result = dict(changed=bool(pin and pin["written"]), gateway_user=params["gateway_user"],
                  probe=params["probe"], ok=report["ok"], result=report["result"],
                  failed_layer=report["failed_layer"], layers=report["layers"], ebms_error=report["ebms_error"],
                  message_id=report["message_id"], answer=report["answer"], endpoint=report["endpoint"],
                  answer_signature=report["answer_signature"], notification=report["notification"], pin=pin)
    if not report["ok"] and params["fail_on_error"]:
        failed = [layer for layer in report["layers"] if layer["status"] == "fail"][0]
        module.fail_json(msg="Gateway connection test failed at layer %s (%s): %s Fix: %s"
                             % (failed["name"], report["result"], failed["detail"], failed["hint"]),
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
