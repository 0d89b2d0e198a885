# Liên Thông: the two entry points are `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
DATA   ?= ./data
# S3 tests run a throwaway Ceph RADOS Gateway (tests/services/s3/); receipt tests read CMS with openssl;
# the monthly report test opens the .xlsx in LibreOffice (soffice --headless --convert-to csv)
APT_PACKAGES := python3-venv python3-dev gcc softhsm2 opensc curl openssl ceph-mon ceph-osd radosgw ceph-common poppler-utils zbar-tools chromium libreoffice-calc-nogui postgresql

# uv uses the machine's python3 (never one it downloads) and the project's .venv.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run run-deps test test-latest system-deps venv lock lint typecheck pytest clean

# Every Python package comes from uv.lock (versions and hashes, test and dev tools included).
# uv itself is bootstrapped with pip from the version and hashes uv.lock holds for it.
$(UV):
	$(PYTHON) -m venv $(VENV) || (apt-get update && apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV))
	$(PYTHON) -c 'import tomllib; p = next(p for p in tomllib.load(open("uv.lock", "rb"))["package"] if p["name"] == "uv"); print("uv==" + p["version"], *("--hash=" + a["hash"] for a in [*p.get("wheels", []), p.get("sdist", {})] if "hash" in a))' > $(VENV)/uv-requirement.txt
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps --require-hashes -r $(VENV)/uv-requirement.txt

# Exactly what uv.lock says (--locked: an uv.lock out of step with pyproject.toml is an error).
$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --quiet --locked --extra test --extra speed --python $(PY)
	touch $@

venv: $(VENV)/.synced

# Refresh uv.lock on purpose: `make lock` after editing pyproject.toml changes only what must;
# `make lock UPGRADE=1` moves every package to its newest release that pyproject.toml allows.
lock: | $(UV)
	$(UV) lock $(if $(UPGRADE),--upgrade)

# The suite against the newest releases pyproject.toml allows, in a throwaway venv (not in CI):
# a breaking release elsewhere shows up here before it reaches uv.lock and users.
LATEST := $(VENV)-latest
test-latest: system-deps | $(UV)
	rm -rf $(LATEST)
	$(UV) venv --quiet --python $(PYTHON) $(LATEST)
	$(UV) pip install --quiet --refresh --python $(LATEST)/bin/python -e '.[test]'
	$(LATEST)/bin/pytest -q -p no:cacheprovider -n $(PYTEST_PROCESSES) --dist loadfile

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

# Two test processes (pytest-xdist), a test file each at a time: most tests wait on one server or
# CLI process, so one pytest alone leaves a core idle. Each process starts its own session
# services (test PKI, SoftHSM2 store, Ceph gateway) on free ports.
PYTEST_PROCESSES ?= 2
pytest: venv
	$(VENV)/bin/pytest -q -p no:cacheprovider -n $(PYTEST_PROCESSES) --dist loadfile

test: system-deps venv lint typecheck pytest

clean:
	rm -rf $(VENV) $(LATEST) .mypy_cache .ruff_cache
