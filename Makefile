# `make run` and `make test` work on a fresh clone: each creates .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test redis lint typecheck bench sandbox clean

# A set-up cut short (Ctrl-C, a lost connection) leaves .venv/.installing behind, or a
# venv without pip: the next run starts over from an empty .venv instead of failing.
$(STAMP): pyproject.toml
	@if [ -e $(VENV)/.installing ] || { [ -d $(VENV) ] && ! $(BIN)/python -m pip --version >/dev/null 2>&1; }; then \
		echo "an earlier set-up of $(VENV) was cut short: starting it over"; rm -rf $(VENV); fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	touch $(VENV)/.installing
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installing
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m framework.cli run config/paper.toml

test: $(STAMP) redis lint typecheck
	$(BIN)/python -m pytest -q -n 4 --dist worksteal

# The Redis tests start their own redis-server (Debian's package); install it if we can.
redis:
	@command -v redis-server >/dev/null 2>&1 || \
		{ command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
		  apt-get update -qq && apt-get install -y -qq redis-server; } || \
		{ echo "make test needs redis-server: sudo apt-get install redis-server"; exit 1; }

lint: $(STAMP)
	$(BIN)/python -m ruff check framework tests bench strategies
	$(BIN)/python -m ruff format --check framework tests bench strategies

typecheck: $(STAMP)
	$(BIN)/python -m mypy

bench: $(STAMP)
	$(BIN)/python bench/lane_cost.py
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/fill_latency.py

sandbox: $(STAMP)
	$(BIN)/python -m framework.cli sandbox --port 8990

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
