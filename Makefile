# Two commands for a fresh machine:  `make demo`  and  `make test`.
# Both create (or reuse) a virtual environment in .venv with torch==2.13.0 (CPU build).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: demo test clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test,engine]'
	$(PY) -m lstmkit._engine || echo "lstmkit: the fast engine did not build; layers will use the reference loops"
	touch $@

demo: $(VENV)/.installed
	$(PY) -m lstmkit.demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
