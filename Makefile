# The two quick-start commands are `make serve` and `make test`; .ci/run calls `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# `make serve PORT=9000`; other serve flags through ARGS, e.g. ARGS='--config my.toml --quiet'.
HOST ?= 127.0.0.1
PORT ?= 8080
ARGS ?=

.PHONY: serve test lint bench fuzz clean screenshot

# `make serve` installs only what the emulator needs; the test extra (linters, schemathesis,
# playwright, ...) comes with the first `make test`, `lint`, `bench` or `fuzz`.
TEST_TOOLS := $(VENV)/.test-tools

$(BIN)/pisano-mock: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_TOOLS): $(BIN)/pisano-mock pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

serve: $(BIN)/pisano-mock
	$(BIN)/pisano-mock serve --host $(HOST) --port $(PORT) $(ARGS)

test: $(TEST_TOOLS) lint
	$(BIN)/python -m pytest

# The README's picture of the inspector page, taken by its browser test (needs chromium).
screenshot: $(TEST_TOOLS)
	PISANO_MOCK_SCREENSHOT=$(CURDIR)/docs/inspector.png $(BIN)/python -m pytest -q -p no:randomly \
		tests/test_inspector_browser.py -k screenshot

lint: $(TEST_TOOLS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# compare.py: issue 9's table (WireMock, bare app, emulator on memory and Redis; needs wrk, java,
# npm, redis-server); servers.py: gunicorn vs granian vs Werkzeug. BENCH_ARGS=--quick: a smoke run.
BENCH_ARGS ?=
bench: $(TEST_TOOLS)
	$(BIN)/python bench/compare.py $(BENCH_ARGS)
	$(BIN)/python bench/servers.py $(BENCH_ARGS)
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/contract_overhead.py
	$(BIN)/python bench/soak_memory.py

# schemathesis against /openapi.json, >= 10,000 cases (README, "The admin API"); CI runs a few
# hundred of them in tests/test_openapi.py. FUZZ_EXAMPLES is per operation.
FUZZ_EXAMPLES ?= 2000
FUZZ_SEED ?= 1
fuzz: $(TEST_TOOLS)
	$(BIN)/python -m tests.fuzz_openapi --max-examples $(FUZZ_EXAMPLES) --seed $(FUZZ_SEED)

clean:
	rm -rf $(VENV) build dist *.egg-info
