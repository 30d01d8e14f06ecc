# Set-up and every task a new user runs. The virtualenv is built with Python 3.10, the one Python that full TFX
# installs on here; PYTHON may point at another interpreter.
PYTHON ?= $(shell PYENV_VERSION=$$(pyenv latest 3.10 2>/dev/null) pyenv which python3.10 2>/dev/null || command -v python3.10)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup browser test demo example bench dataflow-check clean

setup: $(STAMP)

$(STAMP): setup.py constraints.txt
	@test -n "$(PYTHON)" || { echo "Python 3.10 not found: install it (pyenv install 3.10) or run make PYTHON=/path/to/python3.10"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[tfx,test]"
	touch $(STAMP)

# The browser test drives Debian's chromium with its chromedriver; installed here when missing (root, or sudo).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver; }

test: setup browser
	$(BIN)/python -m pytest tests

demo: setup
	$(BIN)/python -m beam_pusher demo

example: setup
	$(BIN)/python examples/penguin/penguin_pipeline.py

bench: setup
	$(BIN)/python benchmarks/run.py

# A Dataflow worker's view, offline: a fresh virtualenv with only Beam and the staged files runs the staged job
# (minutes: it installs Beam), so it is not part of `make test`.
dataflow-check: setup
	$(BIN)/python -m pytest checks -p no:cacheprovider

clean:
	rm -rf $(VENV) build *.egg-info
