# Set-up, run and test of the mesh. `make run` and `make test` start from a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?=
BENCH_ARGS ?=
CHAOS_ARGS ?=

.PHONY: help install proto proto-check proto-lint migrate run demo test lint bench chaos services deploy-test clean

help:
	@echo "make run      set up, migrate and start the six processes (gateway on :8000)"
	@echo "make run DEMO=1  the same, then seed the demo shop (accounts, catalog, past orders)"
	@echo "make demo     seed the demo shop into the mesh \`make run\` started (development only)"
	@echo "make test     set up and run the whole test suite"
	@echo "make lint     ruff, mypy (strict on meshkit) and buf lint"
	@echo "make proto    regenerate ecommerce/ from proto/"
	@echo "make migrate  apply database migrations of every service"
	@echo "make bench    measure every hot path against baselines (BENCH_ARGS=--quick: < 5 min)"
	@echo "make chaos    kill processes and cut dependencies under load, check every order (~12 min)"
	@echo "make services start PostgreSQL, RabbitMQ and Redis here (installs them if absent)"
	@echo "make deploy-test  build the images, run the compose stack and shop through it"

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@# Bytecode for `python -OO` (how services run), once here rather than on every start. A
	@# file that does not compile is left to import time, as it would be without this step.
	-@$(PY) -m compileall -qq -j 0 -o 2 $$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

proto: install
	$(PY) scripts/gen_protos.py

proto-check: install
	$(PY) scripts/gen_protos.py --check

proto-lint: install
	$(PY) scripts/lint_protos.py

migrate: install
	@$(PY) -m localmesh.migrate

# DEMO=1 (or yes, true): once the mesh is ready, the launcher seeds the demo shop into it.
# The launcher migrates every database before it starts the services.
run: install proto
	$(PY) -m localmesh.launcher $(if $(filter 1 yes true,$(DEMO)),--demo)

demo: install
	$(PY) -m demo

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy meshkit localmesh demo gateway user_service product_service order_service payment_service notification_service bench chaos tests
	$(PY) scripts/lint_protos.py

bench: install
	$(PY) -m bench $(BENCH_ARGS)

# Not part of `make test`: minutes long, and it needs PostgreSQL, RabbitMQ and Redis.
chaos: install
	$(PY) -m chaos $(CHAOS_ARGS)

services:
	bash deployments/local/ensure-services.sh

# Needs Docker or podman with compose v2 (CONTAINER_CLI and COMPOSE choose); skipped without.
deploy-test: install
	DEPLOY_TEST=1 $(PY) -m pytest tests/deployments/test_stack.py -s -v $(PYTEST_ARGS)

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
