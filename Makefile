# Developer entry points. `make run` starts a demo; `make test` is what CI runs.

PYTHON ?= $(or $(shell command -v python3.11 2>/dev/null),$(shell command -v python3 2>/dev/null))
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LINT_PATHS := idp devtools clients tests benchmarks packaging
TRANSLATIONS := idp/translations
PO_FILES := $(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/messages.po)

LOCK := requirements.lock

AGENT_DIST := dist/agent
AGENT_BUNDLE := $(AGENT_DIST)/ukey-agent-linux-$(shell uname -m)

.PHONY: venv run test translations extract lock clean agent-dist agent-dist-check screenshots

# venv: the virtualenv with the project and its dev tools, every package pinned and checked
# against its hash in $(LOCK); reinstalls only when the lock or pyproject.toml changes.
venv: $(STAMP)

$(STAMP): $(LOCK) pyproject.toml
	@test -n "$(PYTHON)" || { echo "python3.11 or python3 not found" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --require-hashes -r $(LOCK)
	$(BIN)/python -m devtools.argon2_build $(LOCK)  # argon2 with AVX2 where the CPU has it
	$(BIN)/python -m pip install --no-deps -e .
	touch $@

# lock: pin the dependencies of pyproject.toml (with dev extras) and their hashes anew, after
# changing a dependency there; commit the result. uv resolves for every platform at once.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra agent-dist --generate-hashes --universal \
		--python-version 3.11 --output-file $(LOCK)
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --universal --python-version 3.11 \
		--constraint $(LOCK) --output-file requirements-runtime.lock

# run: set up the embedded dev instance (database, keys, demo RP and data), then start it all.
run: venv translations
	$(BIN)/idp-dev setup
	$(BIN)/idp-dev run

# test: lint, formatting, type-check, then the whole suite in parallel.
test: venv translations
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n auto -p no:cacheprovider

# translations: compile every catalog (.po) to .mo; nothing to do while there is none.
translations: venv
ifneq ($(PO_FILES),)
	$(BIN)/pybabel compile -d $(TRANSLATIONS) -f
else
	@echo "translations: no .po catalogs under $(TRANSLATIONS), nothing to compile"
endif

# extract: collect messages into messages.pot and merge them into the existing catalogs.
extract: venv
	$(BIN)/pybabel extract -w 100 -F babel.cfg -k _l -o $(TRANSLATIONS)/messages.pot .
ifneq ($(PO_FILES),)
	$(BIN)/pybabel update -w 100 --ignore-obsolete -d $(TRANSLATIONS) -i $(TRANSLATIONS)/messages.pot
else
	@echo "extract: no catalogs yet; start one with: $(BIN)/pybabel init -d $(TRANSLATIONS) -i $(TRANSLATIONS)/messages.pot -l <locale>"
endif

# agent-dist: the UKey agent (客户端工具) as one self-contained file for this system, built with
# PyInstaller from packaging/ukey-agent.spec into $(AGENT_DIST)/; the provider serves that
# directory (IDP_AGENT_DIST_DIR). Windows: packaging/build-agent-windows.ps1 (docs/ukey.md §6).
agent-dist: venv
	$(BIN)/pyinstaller --noconfirm --clean --distpath $(AGENT_DIST) --workpath build/agent \
		packaging/ukey-agent.spec

# agent-dist-check: start the built bundle as a download would (stamped, no options, temporary
# HOME), read /status from a SoftHSM2 token and sign a challenge.
agent-dist-check: venv
	@test -f $(AGENT_BUNDLE) || { echo "$(AGENT_BUNDLE) not found: run make agent-dist" >&2; exit 1; }
	$(BIN)/python -m tests.agent.bundle_smoke $(AGENT_BUNDLE)

# screenshots: every page type in both languages, at desktop and phone width, as PNG files in
# docs/screenshots/ (taken by the accessibility test in headless Chromium; needs chromium).
screenshots: venv translations
	mkdir -p docs/screenshots
	IDP_TEST_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest -p no:cacheprovider -q \
		tests/browser/test_accessibility.py -k every_page

# clean: remove caches and build output (keeps .venv and the dev instance).
clean:
	find idp devtools clients tests benchmarks -name __pycache__ -type d -prune -exec rm -rf {} +
	find $(TRANSLATIONS) -name '*.mo' -delete
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info test-results
