#!/usr/bin/env bash
# gateway_connectivity against a sandbox of its own plus plain TLS servers (files/test_servers.py) that
# each break one layer. Every playbook runs at -vvvv into one log, scanned for secrets at the end.
set -eux -o pipefail

export ANSIBLE_ROLES_PATH=..
OUT="${OUTPUT_DIR:?OUTPUT_DIR is set by ansible-test}"
LOG="${OUT}/gateway_connectivity-vvvv.log"
SECRETS="${OUT}/secrets.yml"
: > "${LOG}"

( umask 077; python - "${SECRETS}" <<'PY'
import secrets, sys
with open(sys.argv[1], "w") as handle:
    handle.write("portal_password: 'Pw-%s'\n" % secrets.token_urlsafe(16))
PY
)

SERVERS_PID=""
cleanup() {
    if [ -n "${SERVERS_PID}" ]; then kill "${SERVERS_PID}" || true; fi
    dms-sandbox stop --state "${OUT}/sandbox" || true
}
trap cleanup EXIT

CONFIG=()
if [ -f ../../integration_config.yml ]; then
    CONFIG=(-e @../../integration_config.yml)
fi

run() {
    ansible-playbook -vvvv -e "output_dir=${OUT}" "${CONFIG[@]}" -e "@${SECRETS}" "$@" 2>&1 | tee -a "${LOG}"
}

# The fixture's own output (setup_sandbox sets the whole pki.json, passphrase included, as a fact) goes
# to a log of its own: the scan is about what gateway_connectivity and its tasks print.
ansible-playbook -v -e "output_dir=${OUT}" "${CONFIG[@]}" -e "@${SECRETS}" setup.yml "$@" > "${OUT}/setup.log" 2>&1 \
    || { cat "${OUT}/setup.log"; exit 1; }

rm -f "${OUT}/servers.json"
python files/test_servers.py --sandbox "${OUT}/sandbox/sandbox.json" --out "${OUT}/servers.json" --ttl 1200 \
    > "${OUT}/test_servers.log" 2>&1 &
SERVERS_PID=$!
for _ in $(seq 1 100); do [ -f "${OUT}/servers.json" ] && break; sleep 0.2; done
test -f "${OUT}/servers.json" || { cat "${OUT}/test_servers.log"; exit 1; }

run tests.yml "$@"

python check_log.py "${LOG}" "${SECRETS}" "${OUT}"
