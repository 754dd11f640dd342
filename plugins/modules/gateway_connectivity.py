#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) dkcustoms.dms developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gateway_connectivity
short_description: Layered connection test to the DMS AS4 gateway, ending in a signed AS4 ping
version_added: 0.1.0
description:
  - Step 3 of the DMS onboarding guide, "Testing network connection DMS", run from the integration host
    itself (the network path that matters is that host's).
  - Checks, in order, C(dns), C(tcp), C(tls), C(client_certificate), C(authentication) and C(as4), and
    says which layer fails and what to do about it. Each layer in RV(layers) has a status
    (V(pass), V(fail) or V(skipped)), its duration, a detail and a hint.
  - The AS4 message is signed as SKAT's reference client signs it - RSA-SHA256, exclusive C14N, SHA-256
    over the SOAP Body, C(eb:Messaging) and the WS-Security UsernameToken (PasswordDigest) - and the
    answer is classified - a receipt (its signature verified against O(receipt_signer), its
    RefToMessageId and NonRepudiationInformation digests compared with the message sent), an ebMS error
    signal, a SOAP fault, or something that is not AS4 at all.
  - The module never reports C(changed). See C(docs/connectivity.md) in the collection for the layers,
    the hints and why a pull needs O(allow_dequeue).
author:
  - dkcustoms.dms developers (@dkcustoms)
requirements:
  - cryptography >= 42.0 (on the managed host)
  - lxml (on the managed host)
  - signxml >= 4.0 (on the managed host)
extends_documentation_fragment:
  - dkcustoms.dms.attributes
  - dkcustoms.dms.client_certificate
  - dkcustoms.dms.connection
attributes:
  check_mode:
    support: full
    details:
      - A O(probe=ping) runs in full; the gateway does not deliver the ebMS3 test service.
      - A O(probe=pull) stops after the C(client_certificate) layer in check mode, because a pull can
        take a waiting message.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A O(probe=pull) with O(allow_dequeue=true) may take a message from the gateway.
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
      - Without it, an answer's signature is checked only against the certificate the answer carries
        and a warning says so.
    type: path
  from_party:
    description:
      - The From PartyId of the ping. Defaults to C(<gateway_user>_AS4), as the reference client sends it.
    type: str
  from_party_type:
    description:
      - The C(type) attribute of the From PartyId; empty to leave it out.
    type: str
    default: string
  to_party:
    description:
      - The To PartyId of the ping.
    type: str
    default: SKAT-MFT-AS4
  to_party_type:
    description:
      - The C(type) attribute of the To PartyId; empty to leave it out.
    type: str
    default: string
  probe:
    description:
      - V(ping) sends the ebMS3 test service/action, which a standard gateway answers with a signed
        receipt without delivering anything.
      - V(pull) sends a PullRequest on O(mpc) and counts EBMS:0006 EmptyMessagePartitionChannel as
        success. A pull cannot peek - it takes a waiting message - so it is refused unless
        O(allow_dequeue=true).
    type: str
    choices: [ping, pull]
    default: ping
  mpc:
    description:
      - Message partition channel of O(probe=pull). Defaults to the ebMS3 default MPC.
      - Use a channel on which no business message waits.
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
- name: Test the connection to the DMS test gateway
  dkcustoms.dms.gateway_connectivity:
    environment: test
    pkcs12_path: /etc/dkcustoms/dms/current/foces.p12
    pkcs12_passphrase: "{{ vault_foces_passphrase }}"
    gateway_user: "{{ registration.gateway_user }}"
    gateway_password: "{{ vault_gateway_password }}"
    receipt_signer: /etc/dkcustoms/dms/gateway-signing.pem

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
      V(AUTH_FAILED), V(AS4_ERROR) (ebMS error signal or SOAP fault), V(INVALID_SIGNAL) (a receipt or
      signal that does not verify or does not answer the message sent) or V(NO_SIGNAL) (no AS4 answer).
  returned: always
  type: str
  sample: SUCCESS
failed_layer:
  description: The first layer that failed, or V(null).
  returned: always
  type: str
  sample: authentication
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
      sample: 4c0e...@dkcustoms.dms
    description:
      description: The C(eb:Description) text.
      type: str
      sample: "FailedAuthentication: UsernameToken: password digest does not match the gateway password"
    detail:
      description: The C(eb:ErrorDetail) text.
      type: str
      sample: "UsernameToken: password digest does not match the gateway password"
message_id:
  description: The MessageId of the message sent, or V(null) when none was sent.
  returned: always
  type: str
  sample: 4c0e54a4-09f9-4b7e-9a43-4d3f1f1d0f0e@dkcustoms.dms
answer:
  description: The classified answer of the gateway, or V(null) when none came.
  returned: always
  type: dict
  contains:
    kind:
      description: V(receipt), V(empty_pull), V(user_message), V(error), V(soap_fault) or V(not_as4).
      type: str
      sample: receipt
    http_status:
      description: HTTP status of the answer.
      type: int
      sample: 200
    signer:
      description: Subject of the certificate that signed the answer, when it was checked.
      type: str
      sample: CN=SKAT OIO Gateway Test,...
    problems:
      description: Why a receipt or signal cannot be trusted (empty when it can).
      type: list
      elements: str
      sample: []
    pulled_message_id:
      description: MessageId of a message a pull took from the gateway.
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
  sample: ping
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.dkcustoms.dms.plugins.module_utils import _as4, _client_cert, _connectivity, _deps


def _argument_spec():
    own = {
        "argument_spec": {
            "url": {"type": "str"},
            "gateway_user": {"type": "str", "required": True},
            "gateway_password": {"type": "str", "required": True, "no_log": True},
            "tls_client_certificate": {"type": "bool", "default": False},
            "receipt_signer": {"type": "path"},
            "from_party": {"type": "str"},
            "from_party_type": {"type": "str", "default": _as4.DEFAULT_PARTY_TYPE},
            "to_party": {"type": "str", "default": _as4.DEFAULT_TO_PARTY},
            "to_party_type": {"type": "str", "default": _as4.DEFAULT_PARTY_TYPE},
            "probe": {"type": "str", "default": "ping", "choices": ["ping", "pull"]},
            "mpc": {"type": "str"},
            "allow_dequeue": {"type": "bool", "default": False},
            "key_reference": {"type": "str", "default": "issuer_serial", "choices": list(_as4.KEY_REFERENCES)},
            "layers": {"type": "list", "elements": "str", "default": list(_connectivity.LAYERS),
                       "choices": list(_connectivity.LAYERS)},
            "fail_on_error": {"type": "bool", "default": True},
        },
    }
    spec = _client_cert.merge_specs(_client_cert.client_certificate_spec(),
                                    _client_cert.connection_spec(default_retries=2), own)
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


def main():
    module = AnsibleModule(supports_check_mode=True, **_argument_spec())
    _deps.require(module, "cryptography", "requests", "lxml", "signxml")
    params = module.params
    if params["probe"] == "pull" and not params["allow_dequeue"]:
        module.fail_json(
            msg="probe=pull would take a message waiting on MPC %s (an ebMS3 PullRequest cannot peek), "
                "so nothing was sent. Fix: use probe=ping, or set allow_dequeue: true if %s is a dedicated "
                "test MPC or you accept that a waiting message is taken from the gateway."
                % (params["mpc"] or _as4.DEFAULT_MPC, params["mpc"] or "the MPC"))
    if params["timeout"] <= 0:
        module.fail_json(msg="timeout must be a positive number of seconds. Fix: set timeout >= 1.")
    bundle = _client_cert.load_client_certificate(module)
    url = _client_cert.base_url(module, "url", _connectivity.DEFAULT_URLS)
    settings = _connectivity.Settings(
        url=url, gateway_user=params["gateway_user"], gateway_password=params["gateway_password"],
        certificate=bundle.certificate, private_key=bundle.private_key, chain=bundle.chain,
        ca_path=params["ca_path"], validate_certs=params["validate_certs"],
        tls_client_certificate=params["tls_client_certificate"], timeout=params["timeout"],
        retries=params["retries"], probe=params["probe"], mpc=params["mpc"],
        receipt_signers=_receipt_signers(module), from_party=params["from_party"],
        to_party=params["to_party"], from_party_type=params["from_party_type"],
        to_party_type=params["to_party_type"], key_reference=params["key_reference"],
        layers=_layers(module))
    try:
        report = _connectivity.run_checks(settings)
    except (ValueError, _as4.As4Error) as exc:
        module.fail_json(msg="%s" % to_native(exc))
    for warning in report["warnings"]:
        module.warn(warning)
    result = dict(changed=False, gateway_user=params["gateway_user"], probe=params["probe"],
                  ok=report["ok"], result=report["result"], failed_layer=report["failed_layer"],
                  layers=report["layers"], ebms_error=report["ebms_error"],
                  message_id=report["message_id"], answer=report["answer"], endpoint=report["endpoint"])
    if not report["ok"] and params["fail_on_error"]:
        failed = [layer for layer in report["layers"] if layer["status"] == "fail"][0]
        module.fail_json(msg="Gateway connection test failed at layer %s (%s): %s Fix: %s"
                             % (failed["name"], report["result"], failed["detail"], failed["hint"]),
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
