# dkcustoms.dms — set-up, tests, demo and benchmarks. Everything is installed into .venv from the
# package index by this file; nothing by hand.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
# ansible-test wants the collection at ansible_collections/<namespace>/<name>: a copy of the
# collection content (the sandbox and the pytest suites stay out) is made there.
BUILD_ROOT := $(CURDIR)/.build
COLL := $(BUILD_ROOT)/ansible_collections/dkcustoms/dms
PKI := $(BUILD_ROOT)/pki
# JUnit reports of the pytest suites; .ci/check-skips.py prints their skips and, under CI=true, fails on
# any skip tests/README.md does not allow.
REPORTS := $(BUILD_ROOT)/test-reports
export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(BUILD_ROOT)
export ANSIBLE_NOCOLOR := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: all venv build pki sanity units integration sandbox-tests fleet-tests lint changelog-lint test demo bench clean

all: test

$(BIN)/.installed: requirements.txt sandbox/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e sandbox
	touch $@

venv: $(BIN)/.installed

# Copy of the tracked and untracked-but-not-ignored collection files into the ansible_collections tree.
build: venv
	rm -rf $(COLL) && mkdir -p $(COLL)
	git ls-files -z --cached --others --exclude-standard \
	  | grep -zv -E '^(sandbox/|tests/sandbox/|tests/fleet/|\.ci/|Makefile$$|requirements\.txt$$)' \
	  | while IFS= read -r -d '' f; do [ -e "$$f" ] && printf '%s\0' "$$f"; done \
	  | xargs -0 cp --parents -t $(COLL)
	# The copy gets its own git repository: ansible-test lists files through git, and inside this
	# repository's ignored .build it would otherwise see none.
	cd $(COLL) && git init -q . && git add -A

pki: venv
	dms-sandbox pki --out $(PKI) --foces 24 --voces 8 --moces 2 --broken >/dev/null

sanity: build
	cd $(COLL) && ansible-test sanity --venv --python 3.11 --requirements --color no

units: build pki
	cd $(COLL) && DMS_PKI_DIR=$(PKI) PYTHONPATH=$(BUILD_ROOT) python -m pytest -q -p no:cacheprovider \
	  --junitxml=$(REPORTS)/units.xml tests/unit
	python .ci/check-skips.py units $(REPORTS)/units.xml

integration: build pki
	printf 'dms_pki_dir: %s\ndms_ci: "%s"\n' "$(PKI)" "$${CI:-}" > $(COLL)/tests/integration/integration_config.yml
	cd $(COLL) && ansible-test integration --local --python 3.11 --color no $(TARGETS)

sandbox-tests: venv pki
	DMS_PKI_DIR=$(PKI) python -m pytest -q -p no:cacheprovider -n 2 --junitxml=$(REPORTS)/sandbox.xml tests/sandbox
	python .ci/check-skips.py sandbox-tests $(REPORTS)/sandbox.xml

fleet-tests: build pki
	DMS_PKI_DIR=$(PKI) python -m pytest -q -p no:cacheprovider --junitxml=$(REPORTS)/fleet.xml tests/fleet
	python .ci/check-skips.py fleet-tests $(REPORTS)/fleet.xml

lint: build
	cd $(COLL) && ansible-lint --profile production roles playbooks

changelog-lint: venv
	antsibull-changelog lint

test: venv sanity units changelog-lint lint sandbox-tests integration fleet-tests

demo: build
	python -m dms_sandbox.demo --collection-root $(BUILD_ROOT) --out $(CURDIR)/demo-output

bench: build
	python -m dms_sandbox.bench --collection-root $(BUILD_ROOT) --out $(CURDIR)/bench-output

clean:
	rm -rf $(BUILD_ROOT) demo-output bench-output
