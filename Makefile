# Two commands do all set-up on a fresh clone:
#   make report   - create .venv, install, build build/report.html and build/report.pdf
#   make test     - create .venv, install, run the test suite
#   (make test-kernels - the engine's bit-identity tests again under other ATen CPU kernels; CI runs it)
# Options: PROFILE=smoke|cpu|full (default: full with CUDA, else cpu), DEVICE=auto|cpu|cuda, ARGS="..."

VENV ?= .venv
PYTHON ?= python3
PROFILE ?=
DEVICE ?= auto
ARGS ?=

# Offline copies of the data sets beside the clone are used when nothing else is set.
ifeq ($(REPORTGEN_DATA_DIR),)
ifneq ($(wildcard ../shared/datasets/fashion-mnist),)
export REPORTGEN_DATA_DIR := $(abspath ../shared/datasets)
endif
endif

PROFILE_ARG := $(if $(PROFILE),--profile $(PROFILE),)

.PHONY: report test test-kernels bench clean clean-cache install
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,ray]'
	touch $@

report: $(VENV)/.installed
	$(VENV)/bin/reportgen build $(PROFILE_ARG) --device $(DEVICE) $(ARGS)

test: $(VENV)/.installed
	$(VENV)/bin/pytest -q $(ARGS)

# The engine's bit-identity tests once per ATen kernel family (vectorised AVX2, scalar default), so
# kernel variety is exercised on any one machine; `make test` runs them with the machine's best.
KERNEL_TESTS ?= tests/test_lockstep.py tests/test_stacked_ops.py tests/test_runner.py
test-kernels: $(VENV)/.installed
	for capability in default avx2; do \
		echo "ATEN_CPU_CAPABILITY=$$capability"; \
		ATEN_CPU_CAPABILITY=$$capability $(VENV)/bin/pytest -q $(KERNEL_TESTS) || exit 1; \
	done

bench: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks.engine $(ARGS)

# The run cache (.reportgen/cache beside the spec) survives `make clean`: retraining costs minutes to hours.
clean:
	rm -rf build

clean-cache:
	rm -rf .reportgen/cache
