# Callboard: `make demo` runs it on its embedded defaults, `make test` sets up and tests it.
PYTHON ?= python3
VENV ?= .venv
# The VoipNow version the demo's emulator behaves as: 3 or 5 (`make demo VOIPNOW=3`).
VOIPNOW ?= 5
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The versions `make` and CI install (with the dev and emulator extras), and the subset a
# production dashboard installs (neither extra). `make lock` writes both from pyproject.toml.
LOCK := requirements.lock
PRODUCTION_LOCK := requirements-production.lock
COMPILE := pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
	--quiet --custom-compile-command "make lock"

.PHONY: install lock audit demo test lint typecheck pytest bench clean

# Exactly the locked releases, each checked against its hash, then Callboard itself without
# resolving anything; `pip check` fails when pyproject.toml asks for what the lock lacks
# (run `make lock`).
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $(STAMP)

install: $(STAMP)

# Needs only uv (a dev dependency, or bootstrapped here): it must work when pyproject.toml
# has a dependency the lock does not have yet, which `make install` would refuse.
lock:
	test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet "uv>=0.13"; }
	$(BIN)/uv $(COMPILE) --extra dev --extra emulator -o $(LOCK)
	$(BIN)/uv $(COMPILE) --constraint $(LOCK) -o $(PRODUCTION_LOCK)

# Known vulnerabilities in the locked releases (the production lock is a subset of it).
audit: install
	$(BIN)/python .ci/audit.py $(LOCK)

demo: install
	$(BIN)/python manage.py demo --voipnow $(VOIPNOW)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy calls dashboard tests bench

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
