# Callboard: `make demo` runs it on its embedded defaults, `make test` sets up and tests it.
PYTHON ?= python3
VENV ?= .venv
# The VoipNow version the demo's emulator behaves as: 3 or 5 (`make demo VOIPNOW=3`).
VOIPNOW ?= 5
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,emulator]"
	touch $(STAMP)

install: $(STAMP)

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
