# The targets README names. `make test` is what .ci/run calls.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PIP     = $(BIN)/python -m pip

.PHONY: install install-test run test bench reliability clean mutation

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# Editable installs behind stamp files: reinstalled only when pyproject.toml changes.
install: $(VENV)/.installed
install-test: $(VENV)/.installed-test
	@if command -v npm >/dev/null 2>&1 && [ -f tests/kusto/package-lock.json ]; then \
		npm ci --prefix tests/kusto --no-audit --no-fund --loglevel=error; \
	fi

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install -q -e '.[test]'
	touch $@ $(VENV)/.installed

# Run the bot on the embedded SQLite default with demo data. Replies go to the Graph API
# stand-in that `botctl chat` runs on 127.0.0.1:8001, as WhatsApp would deliver them.
run: install
	$(BIN)/botctl migrate up
	$(BIN)/botctl migrate status
	$(BIN)/botctl serve --demo --whatsapp-url http://127.0.0.1:8001

# The whole test suite, with JUnit and coverage reports in reports/, then the release gate:
# the load test at the release note's bar and `botctl checklist` on this repository
# (its Markdown is saved as reports/checklist.md). pytest's exit code is kept, not obeyed at
# once: the gate still runs and its checklist reads the red JUnit, then the target fails.
test: install-test
	mkdir -p reports
	$(BIN)/python -m pytest -q --junitxml=reports/junit.xml \
		--cov=bot_core --cov=migrations --cov=kql --cov=cli --cov=ops \
		--cov-report=xml:reports/coverage.xml --cov-report=term:skip-covered; \
		echo $$? > reports/pytest-exit-code
	PYTEST_EXIT=$$(cat reports/pytest-exit-code) BOTCTL=$(BIN)/botctl .ci/release-gate

BENCHES = cli_startup cold_start idle stages migrate_scale webhook ai_degraded metrics_local

bench: install-test
	for b in $(BENCHES); do echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) reports build *.egg-info

# Fault injection under load (also part of `make test`); prints the table.
reliability: install-test
	$(BIN)/python -m tests.reliability

# Mutation testing of the checkers and the core invariants (not in CI: CPU-heavy, tens of
# minutes); per module the share of reached mutants killed; survivors in reports/mutation/.
MODULES ?=
mutation: install-test
	$(PIP) install -q 'mutmut>=3.3,<4'
	$(BIN)/python .ci/mutation.py $(MODULES)
