# capjax: `make demo` trains and evaluates the default captioner; `make test`
# runs the test suite. Both create .venv when it is missing and reuse it.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_WORKDIR ?= runs/demo
# Two workers: one per core of the reference machine.
TEST_WORKERS ?= 2

.PHONY: demo flickr8k-demo test install install-test clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip setuptools wheel

$(VENV)/.installed: setup.py | $(PY)
	$(PY) -m pip install -e .
	touch $@

$(VENV)/.installed-test: setup.py | $(PY)
	$(PY) -m pip install -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(PY) -m capjax.main --config=configs/captioning/shapes.py --workdir=$(DEMO_WORKDIR)

# Flickr8k end to end on ../shared/data/flickr8k_1k: weights, features,
# a merge captioner, test metrics (see launch/flickr8k_demo.sh).
flickr8k-demo: $(VENV)/.installed-test
	PY=$(PY) bash launch/flickr8k_demo.sh

test: $(VENV)/.installed-test
	$(PY) -m pytest -n $(TEST_WORKERS) -q tests

clean:
	rm -rf $(VENV) runs
