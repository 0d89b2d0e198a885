# Liên Thông: the two entry points are `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DATA   ?= ./data
# S3 tests run a throwaway Ceph RADOS Gateway (tests/services/s3/)
APT_PACKAGES := python3-venv python3-dev gcc softhsm2 opensc curl ceph-mon ceph-osd radosgw ceph-common poppler-utils chromium

.PHONY: run run-deps test system-deps venv lint typecheck pytest clean

$(PY):
	$(PYTHON) -m venv $(VENV) || (apt-get update && apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV))
	$(PY) -m pip install -q --upgrade pip

venv: $(PY)
	$(PY) -m pip install -q -e '.[test]'

# The demo signs and seals with SoftHSM2 tokens (softhsm2 + opensc's pkcs11-tool); its guide uses
# curl and python3; gcc/python3-dev build python-pkcs11 where no wheel fits.
RUN_APT_PACKAGES := python3-venv python3-dev gcc softhsm2 opensc curl

run: run-deps venv
	$(VENV)/bin/lienthong demo --data-dir $(DATA)
	$(VENV)/bin/lienthong serve --config $(DATA)/lienthong.toml --data-dir $(DATA)

run-deps:
	@$(call apt_install,$(RUN_APT_PACKAGES))

# $(call apt_install,PACKAGES): apt-get install those not installed yet (nothing without apt).
define apt_install
if command -v apt-get >/dev/null 2>&1; then \
	  missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    apt-get -o DPkg::Lock::Timeout=300 update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $$missing; \
	  fi; \
	fi
endef

system-deps:
	@$(call apt_install,$(APT_PACKAGES))

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy

pytest: venv
	$(VENV)/bin/pytest -q -p no:cacheprovider

test: system-deps venv lint typecheck pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
