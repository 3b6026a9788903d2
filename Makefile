# `make test` and `make demo` each set up their own virtual environment in .venv.
# torch is installed only where the venv has none: the pinned CPU build installs from this machine's
# local index in seconds; GPU users install the torch build they want first and it is kept.
VENV := .venv
PYTHON := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0

.PHONY: install test demo clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py setup.cfg
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install --quiet torch==$(TORCH_VERSION)
	$(PYTHON) -m pip install --quiet -e ".[dev]"
	touch $@

test: install
	$(PYTHON) -m pytest

demo: install
	$(VENV)/bin/reformer-ko demo $(DEMO_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
