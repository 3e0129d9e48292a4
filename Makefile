# Two commands do all set-up: `make lab` opens the tutorials, `make test` runs every test.
# Both create .venv when missing and are quick the second time (pip runs only when pyproject changes).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tpslab-installed

.PHONY: lab test mini setup student site demo bench clean

# `make lab TORCH=cpu`: PyTorch's CPU-only build (on Linux, PyPI's torch is the CUDA build, several GB).
TORCH ?=
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

$(STAMP): pyproject.toml constraints.txt setup.py tpslab/_partfile.c
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# decord 0.6 and decord2 both install the package `decord`: a venv that has decord 0.6 loses both
	@# (uninstalling one breaks the other), and decord2 comes back clean with tpslab below.
	@if $(PY) -m pip show decord >/dev/null 2>&1; then $(PY) -m pip uninstall --quiet -y decord decord2; fi
	$(if $(filter cpu,$(TORCH)),$(PY) -m pip install --quiet -c constraints.txt torch --index-url $(TORCH_CPU_INDEX))
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

# Generates the embedded mini dataset into the cache folder on first use; reuses it afterwards.
mini: setup
	$(PY) -m tpslab mini

# JupyterLab refuses to start as root unless told (containers, CI machines): say so only then.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: mini
	cd notebooks && ../$(PY) -m jupyter lab $(LAB_ARGS) 01_explore_data.ipynb

NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))

# Unit tests (tests/, from pyproject's testpaths), then the slow ones (`-m slow`: several processes, real
# kills, the browser, statistical runs; tests/test_notebooks.py runs each learners' version up to its first
# exercise check, which must fail), every notebook under nbval in fast mode, then the
# exercise run: every notebook again in fast mode, each exercise check run before its solution (the
# learners' version: it must fail), with a wrong answer (it must fail) and with the solution (it must
# pass), the pages rendered into build/site-fast and checked for their figures.
# nbval is a plugin only for the notebook line (pyproject's addopts leave it out: ~5 s of start-up).
# The unit tests run in parallel (pytest-xdist: one worker per core, at most 4, a test file per worker at a
# time); the slow tests and the notebooks one at a time (-n 0): they start processes of their own.
test: mini
	$(PY) -m pytest
	$(PY) -m pytest -m slow -n 0
	TPSLAB_FAST=1 $(PY) -m pytest -n 0 -p nbval --nbval-lax notebooks
	$(PY) -m tpslab.teaching site build/site-fast $(NOTEBOOKS) --fast

# The learners' version of every notebook (the solution cells left out) in build/student/.
student: setup
	$(PY) -m tpslab.teaching student build/student $(NOTEBOOKS)

# The tutorials as web pages with their outputs and figures, executed in full: build/site/index.html
# (exercises checked as in `make test`; run time and peak memory of each notebook on the index page).
site: mini
	$(PY) -m tpslab.teaching site build/site $(NOTEBOOKS)

demo: site

# Every benchmark in its quick mode (each under a minute); the full runs take their --quick off.
bench: mini
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b --quick || exit 1; done

clean:
	rm -rf build .pytest_cache tpslab/*.so tpslab/*.pyd
