# PathShare — every target sets itself up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test bench demo lint package clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/pathshare

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

bench: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -s tests/benchmarks \
	  -o addopts="-p no:cacheprovider" -o python_files="bench_*.py"

demo: $(STAMP)
	rm -rf demo-out && $(VENV)/bin/pathshare demo --workdir demo-out

lint: $(STAMP)
	$(VENV)/bin/ruff check deid agreements desktop tests

clean:
	rm -rf $(VENV) build dist bench-results demo-out
