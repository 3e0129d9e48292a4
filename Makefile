# Two commands do all set-up: `make lab` opens the tutorials, `make test` runs every test.
# Both create .venv when missing and are quick the second time (pip runs only when pyproject changes).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tpslab-installed

.PHONY: lab test mini setup demo bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

# Generates the embedded mini dataset into the cache folder on first use; reuses it afterwards.
mini: setup
	$(PY) -m tpslab mini

lab: mini
	cd notebooks && ../$(PY) -m jupyter lab

test: mini
	$(PY) -m pytest

clean:
	rm -rf build .pytest_cache
