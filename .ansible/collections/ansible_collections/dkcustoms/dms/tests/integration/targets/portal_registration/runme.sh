#!/usr/bin/env bash
# portal_registration against a sandbox of its own, once per shape of the portal API (default, variant). Every playbook runs at -vvvv into one log, which
# is scanned for secrets at the end (passwords, passphrases, gateway passwords, PKCS#12 content).
set -eux -o pipefail

export ANSIBLE_ROLES_PATH=..
OUT="${OUTPUT_DIR:?OUTPUT_DIR is set by ansible-test}"
LOG="${OUT}/portal_registration-vvvv.log"
SECRETS="${OUT}/secrets.yml"
: > "${LOG}"

# Random secrets per run (a file, not the command line): the log scan then means something.
( umask 077; python - "${SECRETS}" <<'PY'
import secrets, sys
with open(sys.argv[1], "w") as handle:
    handle.write("portal_password: 'Pw-%s'\n" % secrets.token_urlsafe(16))
    handle.write("wrong_password: 'Wrong-%s'\n" % secrets.token_urlsafe(16))
PY
)

stop_sandbox() {
    dms-sandbox stop --state "${OUT}/sandbox" || true
}
trap stop_sandbox EXIT

# Script targets do not get integration_config.yml (dms_pki_dir) from ansible-test: pass it on.
CONFIG=()
if [ -f ../../integration_config.yml ]; then
    CONFIG=(-e @../../integration_config.yml)
fi

run() {
    ansible-playbook -vvvv -e "output_dir=${OUT}" "${CONFIG[@]}" -e "@${SECRETS}" "$@" 2>&1 | tee -a "${LOG}"
}

# The profiles shipped with the collection (examples/portal-api-profiles): the variant's is the
# profile the variant shape is reached with, the default's the template the bad-profile test breaks.
PROFILES="$(ansible-galaxy collection list dkcustoms.dms --format json \
    | python -c 'import json, sys; print(next(iter(json.load(sys.stdin))))')/dkcustoms/dms/examples/portal-api-profiles"
test -f "${PROFILES}/sandbox-variant.yml"

# Every test runs against both shapes of the portal API the sandbox serves: the default one with the
# built-in profile, and the variant with its profile - the same tasks, no other change.
for shape in default variant; do
    SHAPE=(-e "portal_api=${shape}" -e "profiles_dir=${PROFILES}")
    # The sandbox set-up is not under test: its own log (setup_sandbox prints pki.json, passphrase
    # included, when it sets the dms_pki fact). It starts from an empty state directory.
    ansible-playbook -e "output_dir=${OUT}" "${CONFIG[@]}" "${SHAPE[@]}" setup.yml "$@" > "${OUT}/setup-${shape}.log" 2>&1 \
        || { cat "${OUT}/setup-${shape}.log"; exit 1; }
    run tests.yml -i inventory.local "${SHAPE[@]}" "$@"
    ANSIBLE_FORKS=20 run concurrent.yml -i inventory.concurrent "${SHAPE[@]}" "$@"
done

python check_log.py "${LOG}" "${SECRETS}" "${OUT}"
