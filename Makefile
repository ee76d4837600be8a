# The two commands of the README: `make demo` and `make test`.
# Both create .venv and install everything on a fresh machine, from the committed lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
NODEPS := requirements-nodeps.txt
# The extras the lock holds and `make` installs (not `tensorrt`: it needs a GPU).
EXTRAS := test sklearn torch dev ray feast

.PHONY: demo demo-rollout test check format lint install lock bench validate clean sysdeps

# Debian packages: Triton's Python-backend stub links the system libpython of the same
# version (libpython3.11 on Debian 12); the rollout checks and their tests query a real
# Prometheus (the package also brings promtool, which tests the alert rules); nginx
# balances gRPC over a fleet of replicas in the fleet tests. Installed only when missing.
PYVER = $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
APT_PACKAGES = $(shell ldconfig -p | grep -q "libpython$(PYVER).so.1.0" || echo "libpython$(PYVER)") \
	$(shell command -v prometheus >/dev/null || echo prometheus) \
	$(shell command -v nginx >/dev/null || test -x /usr/sbin/nginx || echo nginx)

sysdeps:
	@if [ -n "$(strip $(APT_PACKAGES))" ]; then \
		echo "installing Debian packages: $(strip $(APT_PACKAGES))"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	fi

# Every package at the version the lock pins (pip, setuptools and torch's CPU build
# included), the references whose metadata is stale (requirements-nodeps.txt), then
# tritonab itself, editable, without resolving anything again; `pip check` must find
# nothing but the stale pin it was told about.
$(STAMP): $(LOCK) $(NODEPS) pyproject.toml
	$(MAKE) --no-print-directory sysdeps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -r $(NODEPS)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check | grep -v -e "^gbstats " -e "^No broken requirements" | (! grep .)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

# A local canary to watch (about a minute): live table, then out/demo-rollout/rollout.png.
demo-rollout: $(STAMP)
	$(BIN)/tritonab rollout demo --out out/demo-rollout

# Format, lint and types first: a suite that passes on unchecked code does not land.
# The README's blocks run too (tests/docs/readme.py): Python by pytest-markdown-docs, bash
# by the plugin, in a copy of the checkout, against one session Triton and Prometheus.
test: check
	$(BIN)/tritonab validate model_repository --target embedded
	$(BIN)/python -m pytest -q
	$(BIN)/python -m pytest -q -p tests.docs.readme --markdown-docs README.md

check: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint: check

validate: $(STAMP)
	$(BIN)/tritonab validate model_repository --target embedded

# Not in CI (shared machines are noisy): run on a quiet machine, twice.
bench: $(STAMP)
	$(BIN)/python perf/bench/run_all.py

# Resolve pyproject.toml's ranges again and pin the result (commit it with the change
# to pyproject.toml). Needs no installed project, only pip-tools.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/pip-compile || $(BIN)/python -m pip install --quiet "pip-tools>=7.4,<8"
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --strip-extras --allow-unsafe \
		$(addprefix --extra ,$(EXTRAS)) --no-emit-index-url --no-emit-find-links \
		--no-emit-trusted-host --output-file $(LOCK) pyproject.toml

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
