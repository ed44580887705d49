# Two commands do all the set-up on a fresh machine (Python 3.11+, pip, make):
#   make demo   creates .venv if missing, installs crossgroup, runs the end-to-end demo
#   make test   same bootstrap, then lint and the test suite
# Re-running is fast: the install step reruns only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo-output

.PHONY: install demo test test-slow test-midnight faketime lint format bench clean browser

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench,spark,dp]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/crossgroup demo --out $(DEMO_OUT)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

# The benchmark harness (benchmarks/README.md): SCALE = S (50k persons), M (1M) or L (10M).
SCALE ?= S
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --scale $(SCALE)

# The report's browser check needs headless Chromium (Debian package `chromium`, as root).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

test: lint browser
	CROSSGROUP_REQUIRE_BROWSER=1 $(BIN)/python -m pytest

# The tests marked slow (1M-person utility target, kill -9 at every twentieth, long fuzzing):
# excluded from `make test`, each has a smaller counterpart that runs there.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

# The suite with the clock at today's MIDNIGHT_AT UTC (default 23:59:59) when pytest starts,
# so it crosses midnight UTC: libfaketime (Debian package `libfaketime`) shifts the clock of
# pytest and of every subprocess it starts (LD_PRELOAD and FAKETIME are inherited), by one
# fixed offset so they all agree. MIDNIGHT_TESTS narrows it, e.g. to tests/rights, and an
# earlier MIDNIGHT_AT puts midnight inside a module's fixtures rather than in collection.
MIDNIGHT_AT    ?= 23:59:59
MIDNIGHT_TESTS ?= tests
faketime:
	@ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libfaketime)

test-midnight: $(STAMP) faketime
	@offset=$$(( $$(date -u -d "$$(date -u +%F) $(MIDNIGHT_AT)" +%s) - $$(date -u +%s) )); \
	lib=$$(ls /usr/lib/*/faketime/libfaketime.so.1 | head -1); \
	echo "clock at $$(date -u +%F) $(MIDNIGHT_AT) UTC (offset $$offset s, $$lib)"; \
	LD_PRELOAD=$$lib FAKETIME=$$(printf '%+d' $$offset) $(BIN)/python -m pytest $(MIDNIGHT_TESTS)

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache .hypothesis
