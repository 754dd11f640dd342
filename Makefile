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

.PHONY: all venv build pki sanity units integration sandbox-tests fleet-tests ecosystem-tests docs prerequisites-lock lint changelog-lint test demo bench clean

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
	  | grep -zv -E '^(sandbox/|tests/sandbox/|tests/fleet/|tests/ecosystem/|\.ci/|Makefile$$|requirements\.txt$$)' \
	  | while IFS= read -r -d '' f; do [ -e "$$f" ] && printf '%s\0' "$$f"; done \
	  | xargs -0 cp --parents -t $(COLL)
	# The copy gets its own git repository: ansible-test lists files through git, and inside this
	# repository's ignored .build it would otherwise see none.
	cd $(COLL) && git init -q . && git add -A

pki: venv
	dms-sandbox pki --out $(PKI) --foces 24 --voces 8 --moces 2 --broken >/dev/null

sanity: build
	cd $(COLL) && ansible-test sanity --venv --python 3.11 --requirements --color no 2>&1 | tee $(BUILD_ROOT)/sanity.log
	# A sanity test skipped for a missing program did not run: fail (.ci/run installs what sanity needs).
	if grep -E 'Required program "[^"]+" not found|Skipping sanity test .* due to missing' $(BUILD_ROOT)/sanity.log; then \
	  echo 'ansible-test sanity skipped a test for a missing program. Fix: install it (see .ci/run).' >&2; exit 1; fi

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

# Two pytest-xdist workers: each test has its own sandbox and fleet; the report tests share one worker.
fleet-tests: build pki
	DMS_PKI_DIR=$(PKI) python -m pytest -q -p no:cacheprovider -n 2 --dist loadgroup --durations=0 \
	  --junitxml=$(REPORTS)/fleet.xml tests/fleet
	python .ci/check-skips.py fleet-tests $(REPORTS)/fleet.xml

# The fleet report in headless Chromium (part of fleet-tests too); screenshots in tests/output/.
.PHONY: report-tests
report-tests: build pki
	DMS_PKI_DIR=$(PKI) python -m pytest -q -p no:cacheprovider tests/fleet/test_report.py
# Execution environment (ansible-builder), module docs (antsibull-docs lint, ansible-doc), missing libraries,
# and the prerequisites role into a fresh virtual environment (needs the package index; pip's cache is reused).
ecosystem-tests: build pki
	DMS_PKI_DIR=$(PKI) python -m pytest -q -p no:cacheprovider -n 2 --junitxml=$(REPORTS)/ecosystem.xml tests/ecosystem
	python .ci/check-skips.py ecosystem-tests $(REPORTS)/ecosystem.xml

# HTML docs (.build/docs-site/build/html): every module, filter and role (antsibull-docs), README, the guides
# under docs/, the role READMEs and the examples (Markdown through myst-parser). Built offline: no intersphinx
# inventory is fetched, so references into docs.ansible.com stay plain text (ref.ref warnings suppressed;
# references inside the collection are checked by antsibull-docs lint-collection-docs in ecosystem-tests);
# JSON examples with comments are shown unhighlighted. Every other Sphinx warning fails the build.
DOCS_SITE := $(BUILD_ROOT)/docs-site
docs: build
	rm -rf $(DOCS_SITE) && mkdir -p -m 700 $(DOCS_SITE)
	antsibull-docs sphinx-init --use-current --squash-hierarchy --fail-on-error --project dkcustoms.dms \
	  --title dkcustoms.dms --copyright 'dkcustoms.dms developers' --dest-dir $(DOCS_SITE) dkcustoms.dms >/dev/null
	printf '%s\n' "extensions.append('myst_parser')" "intersphinx_mapping = {}" "myst_heading_anchors = 3" \
	  "suppress_warnings = ['ref.ref', 'misc.highlighting_failure']" "exclude_patterns = ['example-files']" \
	  >> $(DOCS_SITE)/conf.py
	mkdir -p -m 700 $(DOCS_SITE)/rst
	cd $(DOCS_SITE) && antsibull-docs --config-file antsibull-docs.cfg collection --cleanup everything \
	  --fail-on-error --use-current --squash-hierarchy --dest-dir rst dkcustoms.dms >/dev/null
	cd $(COLL) && cp --parents README.md docs/*.md roles/*/README.md examples/inventory/README.md $(DOCS_SITE)/rst/
	cd $(COLL) && cp -r examples $(DOCS_SITE)/rst/example-files
	{ printf '# Examples\n\nThe files under `examples/` in the collection.\n'; \
	  cd $(COLL) && find examples -type f ! -name README.md | sort | while read -r f; do \
	    printf '\n## %s\n\n```{literalinclude} example-files/%s\n:language: yaml\n```\n' "$$f" "$${f#examples/}"; done; \
	} > $(DOCS_SITE)/rst/examples.md
	{ printf '\n.. toctree::\n   :maxdepth: 1\n   :caption: Guides\n\n'; \
	  printf '   %s\n' README docs/architecture \
	    $$(cd $(COLL) && ls docs/*.md | sed 's/\.md$$//' | grep -v '^docs/architecture$$') \
	    $$(cd $(COLL) && ls roles/*/README.md | sed 's/\.md$$//') examples/inventory/README examples; \
	} >> $(DOCS_SITE)/rst/index.rst
	sphinx-build -M html $(DOCS_SITE)/rst $(DOCS_SITE)/build -c $(DOCS_SITE) -W --keep-going -q
	@echo "Docs: $(DOCS_SITE)/build/html/index.html"

# The role dkcustoms.dms.prerequisites's lock: every package pinned, every file's hash, Python 3.9 and later.
prerequisites-lock: venv
	cd roles/prerequisites/files && uv pip compile --quiet --universal --python-version 3.9 --generate-hashes \
	  --no-header --annotation-style line -o requirements-venv.txt requirements-venv.in

lint: build
	cd $(COLL) && ansible-lint --profile production roles playbooks

changelog-lint: venv
	antsibull-changelog lint

test: venv sanity units changelog-lint lint sandbox-tests integration fleet-tests ecosystem-tests docs

demo: build
	python -m dms_sandbox.demo --collection-root $(BUILD_ROOT) --out $(CURDIR)/demo-output

bench: build
	python -m dms_sandbox.bench --collection-root $(BUILD_ROOT) --out $(CURDIR)/bench-output

clean:
	rm -rf $(BUILD_ROOT) demo-output bench-output
