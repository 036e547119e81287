# Corridor: every target installs what it needs first (venv, packages) and stops what it starts.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install tools test lint unit integration e2e demo bench bench-tools soak fuzz clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@$(BIN)/python -c "from stream.core.engine import warm_up; print(f'engine kernels compiled in {warm_up():.1f} s')"
	@rm -f $(VENV)/.installed-* && touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The e2e dashboard test scrapes a real Prometheus, the dispatcher-map test drives a headless Chromium
# (both Debian packages; CI runs as root).
tools:
	@command -v prometheus >/dev/null 2>&1 || (apt-get update && apt-get install -y --no-install-recommends prometheus) \
		|| { echo "make tools: cannot install prometheus (apt-get install prometheus, as root)" >&2; exit 1; }
	@command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y --no-install-recommends chromium) \
		|| { echo "make tools: cannot install chromium (apt-get install chromium, as root)" >&2; exit 1; }

# Coverage counts the processes the tests start too (pyproject: patch = subprocess). The compiled
# kernels' tests then run once more as plain Python (NUMBA_DISABLE_JIT), so that the report shows
# which kernel lines they reach; numpy's scalar warnings are what compiled code does silently there.
KERNEL_TESTS = tests/unit/test_kernels.py tests/unit/test_grid.py tests/unit/test_eventindex.py \
	tests/unit/test_alert_book.py tests/unit/test_engine_lifecycle.py tests/unit/test_engine_rules.py \
	tests/unit/test_match_geometry.py tests/unit/test_engine_index_property.py
COV = --cov=stream --cov=schemas --cov=agents

test: install tools bench-tools lint
	$(BIN)/python -m pytest -q -p no:cacheprovider $(COV) --cov-report= tests
	NUMBA_DISABLE_JIT=1 $(BIN)/python -m pytest -q -p no:cacheprovider -W "ignore::RuntimeWarning" \
		$(COV) --cov-append --cov-report=term:skip-covered $(KERNEL_TESTS)

unit: install
	$(BIN)/python -m pytest -q tests/unit

integration: install
	$(BIN)/python -m pytest -q tests/integration

e2e: install
	$(BIN)/python -m pytest -q tests/e2e

demo: install
	$(BIN)/corridor demo --duration 45

# make bench measures PostGIS as a peer (Debian's postgresql + postgis; CI runs as root) and needs psycopg.
bench-tools: install
	@ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 \
		|| (command -v apt-get >/dev/null 2>&1 && apt-get update && apt-get install -y --no-install-recommends postgresql postgis postgresql-15-postgis-3) \
		|| { echo "make bench-tools: cannot install PostgreSQL + PostGIS (apt-get install postgresql postgis, as root)" >&2; exit 1; }
	@$(BIN)/python -c "import psycopg" 2>/dev/null || $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'

bench: install bench-tools
	$(BIN)/corridor bench all

soak: install
	$(BIN)/corridor bench soak --events 250000 --routes 2000

# Coverage-guided fuzzing of the feed parsers (atheris), FUZZ_SECONDS per format; not part of test/CI.
# Findings are saved as .state/fuzz/<format>-crash-*; corpora grow in .state/fuzz/<format>/ from the samples.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= cifs datex2 ais native
fuzz: install
	@$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,fuzz]'
	@mkdir -p .state/fuzz
	@for fmt in $(FUZZ_TARGETS); do \
		echo "fuzz $$fmt for $(FUZZ_SECONDS) s"; \
		$(BIN)/python tests/fuzz/seeds.py $$fmt .state/fuzz/$$fmt || exit 1; \
		$(BIN)/python tests/fuzz/fuzz_feeds.py $$fmt -max_total_time=$(FUZZ_SECONDS) -max_len=16384 \
			-rss_limit_mb=2048 -artifact_prefix=.state/fuzz/$$fmt- -print_final_stats=1 .state/fuzz/$$fmt || exit 1; \
	done

clean:
	rm -rf $(VENV) .state .pytest_cache .mypy_cache .ruff_cache .coverage
