# The two commands of the README: `make demo` and `make test`.
# Both create .venv and install everything on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lint validate clean sysdeps

# Debian packages: Triton's Python-backend stub links the system libpython of the same
# version (libpython3.11 on Debian 12); the rollout checks and their tests query a real
# Prometheus. Installed only when missing.
PYVER = $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
APT_PACKAGES = $(shell ldconfig -p | grep -q "libpython$(PYVER).so.1.0" || echo "libpython$(PYVER)") \
	$(shell command -v prometheus >/dev/null || echo prometheus)

sysdeps:
	@if [ -n "$(strip $(APT_PACKAGES))" ]; then \
		echo "installing Debian packages: $(strip $(APT_PACKAGES))"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	fi

$(STAMP): pyproject.toml
	$(MAKE) --no-print-directory sysdeps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/tritonab validate model_repository
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

validate: $(STAMP)
	$(BIN)/tritonab validate model_repository

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
