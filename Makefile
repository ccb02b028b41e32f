# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# a .venv made before the distribution was renamed weir-sim still has the old "weir" one: drop it
	$(BIN)/python -m pip uninstall --quiet --yes weir 2>/dev/null || true
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/weir demo

# -n auto: one pytest worker per core (pytest-xdist); plain `pytest` still runs in one process
test: $(STAMP)
	$(BIN)/python -m pytest -n auto

# run.py last: its "weir/bare-simpy throughput ratio" is make bench's last line, for scripts.
# scale.py: how cost grows (the README's sizing table). beam_compare.py compares with Apache Beam only where apache-beam is installed (never a dependency).
bench: $(STAMP)
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/beam_compare.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/costs.py
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info
