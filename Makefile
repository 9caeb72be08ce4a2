# Vigil: `make run` starts the console with a demo; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.lock | cut -c1-12)
PYTEST_ARGS ?= -m "not slow"

.PHONY: venv run test lint migrate clean bench

venv: $(STAMP)

$(STAMP): requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit("Vigil needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

migrate: venv
	$(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py seed_findings
	DEBUG=1 $(BIN)/python manage.py serve

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Prints `bench <name> value= unit= baseline= ratio=` lines; exits 1 when one misses half its target
# (bench.TARGETS). End-to-end lines need DATABASE_URL on PostgreSQL (and use CELERY_BROKER_URL).
bench: venv
	$(BIN)/python -m bench $(if $(BENCH_SIZE),--size $(BENCH_SIZE),)

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache
