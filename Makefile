# studio-nb — every entry point a newcomer needs. `make help` lists them.
#
# The virtual environment lives in .venv at the repo root. Installs go through
# constraints.txt (torch==2.13.0, the CPU build). llama-cpp-python is never built or
# picked by pip itself: studio_nb/llama_build.py compiles it once per machine with
# portable flags (no -march=native; ~4 min on 2 cores) into a wheelhouse keyed by the
# flags (~/.cache/studio-nb/wheels), so later setups take seconds and a foreign wheel in
# pip's cache is never used.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.studio-nb-installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: help setup system-deps demo test test-fast run bench llama-rebuild clean

help:
	@echo "make demo   set everything up, then answer a sample question through the full pipeline"
	@echo "make test   set everything up, then run every test (kernel, services, operators, Jupyter, browser, Ray)"
	@echo "make run    set everything up, then start JupyterLab with the Studio page on 127.0.0.1"
	@echo "make bench  run every benchmark in bench/ (~25 min), write bench/results/summary.{json,md}"

$(STAMP): pyproject.toml constraints.txt studio_nb/llama_build.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel
	$(PY) -m studio_nb.llama_build
	$(PIP) install -c constraints.txt -e '.[all,test]'
	@# editable installs skip data-files, so place the auto-enable file ourselves
	install -D -m 644 jupyter-config/jupyter_server_config.d/jupyter_ext.json \
	  $(VENV)/etc/jupyter/jupyter_server_config.d/jupyter_ext.json
	touch $(STAMP)

# Debian packages the browser and event-bus tests need (Chromium for Playwright, Redis).
system-deps:
	@missing=""; \
	for b in /usr/bin/chromium /usr/bin/chromedriver /usr/bin/redis-server; do \
	  test -x $$b || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver redis-server >/dev/null; \
	fi

setup: $(STAMP) system-deps

demo: setup
	$(VENV)/bin/studio-nb demo

test: setup
	$(PY) -m pytest tests notebooks --nbval --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg

test-fast: setup
	$(PY) -m pytest -m "not slow"

run: setup
	$(VENV)/bin/studio-nb serve

bench: setup
	$(PY) bench/run_all.py

# Compile llama-cpp-python again with the portable flags and reinstall it (what
# `studio-nb doctor` suggests after an "Illegal instruction").
llama-rebuild: $(STAMP)
	$(PY) -m studio_nb.llama_build --rebuild

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
