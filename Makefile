VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench chaos soak fuzz clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/assoc-ingest dev

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: install
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) || \
		(echo "wrk is needed: apt-get install wrk" >&2; exit 1)
	$(PY) -m bench

chaos: install
	$(PY) -m bench.chaos

soak: install
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk) || \
		(echo "wrk is needed: apt-get install wrk" >&2; exit 1)
	$(PY) -m bench.soak

fuzz: install
	FUZZ_PROFILE=deep $(PY) -m pytest tests/fuzz
	$(PY) -m bench.fuzz

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
