# finpipe: `make demo` runs the main job on samples/, `make test` runs every check.
# Both set up everything on a fresh machine: the virtual environment, RabbitMQ and a
# MongoDB-compatible server (scripts/services.sh installs and starts them, idempotently).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: venv services services-down lint test unit integration demo bench accuracy clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

services:
	scripts/services.sh up

services-down:
	scripts/services.sh down

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

unit: venv
	$(VENV)/bin/pytest tests/unit -q

integration: venv services
	$(VENV)/bin/pytest tests/integration -q

test: venv services lint
	$(VENV)/bin/pytest -q

demo: venv services
	scripts/demo.sh

bench: venv services
	$(PY) bench/run.py

accuracy: venv
	$(PY) bench/accuracy.py --quiet

clean:
	-scripts/services.sh mongo-down
	rm -rf $(VENV) .services .pytest_cache .mypy_cache .ruff_cache
