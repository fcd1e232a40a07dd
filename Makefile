# Octo - one entry point for set-up, demo and tests.
#   make demo   install what is missing, then run the main job on the virtual board
#   make test   same set-up, then lint + the whole test suite (what CI runs)
#   make tflm   TFLM + CMSIS-NN library for side-by-side runs (cached in ~/.cache/octo/tflm; needs $(TFLM_DIR))
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
DEB_PKGS := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm espeak-ng
# Only for TFLM builds (C++ headers and libstdc++ for arm-none-eabi; the second is a 313 MB download).
TFLM_DEB_PKGS := libstdc++-arm-none-eabi-dev libstdc++-arm-none-eabi-newlib
# A TensorFlow Lite Micro tree with CMSIS-NN (host_tools/board/tflm_build.py has the same default).
TFLM_DIR ?= $(abspath $(CURDIR)/../shared/third_party/tflm)
export PLATFORMIO_CORE_DIR := $(CURDIR)/.pio-core
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup demo test lint pytest firmware lock clean distclean

setup: deb-deps $(VENV)/.stamp $(PLATFORMIO_CORE_DIR)/packages/tool-scons/package.json

# Debian packages: install only what is missing; sudo only when not root.
# $(call missing_debs,PACKAGES): shell that adds the PACKAGES not installed to $$missing.
missing_debs = for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done;
# Shell that installs the packages in $$missing, if any.
define install_missing_debs
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" -eq 0 ]; then SUDO=""; \
	  elif command -v sudo >/dev/null; then SUDO="sudo"; \
	  else echo "octo: error: need root or sudo to install Debian packages:$$missing" >&2; exit 1; fi; \
	  echo "Installing Debian packages:$$missing"; \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

.PHONY: deb-deps tflm-deps tflm-deps-if-present tflm
deb-deps:
	@missing=""; \
	$(call missing_debs,$(DEB_PKGS)) \
	command -v gcc >/dev/null || missing="$$missing gcc"; \
	command -v $(PYTHON) >/dev/null || missing="$$missing python3"; \
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	$(install_missing_debs)

tflm-deps: deb-deps
	@missing=""; \
	$(call missing_debs,$(TFLM_DEB_PKGS)) \
	$(install_missing_debs)

# For `make test`: the TFLM packages only when there is a TFLM tree (its tests are skipped otherwise).
tflm-deps-if-present:
	@if [ -d "$(TFLM_DIR)" ]; then $(MAKE) --no-print-directory tflm-deps; \
	else echo "octo: note: no TFLM tree at $(TFLM_DIR); TFLM side-by-side tests will be skipped"; fi

tflm: setup tflm-deps
	TFLM_DIR="$(TFLM_DIR)" $(VPY) -m host_tools.board.tflm_build

# Virtualenv with the pinned dependency tree; rebuilt only when the pins change.
$(VENV)/.stamp: requirements.lock pyproject.toml
	@[ -x $(VPY) ] || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(VPY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

# PlatformIO's core package tool-scons, seeded from PyPI's scons (offline builds).
$(PLATFORMIO_CORE_DIR)/packages/tool-scons/package.json: $(VENV)/.stamp
	$(VPY) -m host_tools.board.pio seed

demo: setup
	$(VENV)/bin/octo demo

lint: setup
	$(VENV)/bin/ruff check host_tools converter models tests bench
	$(VPY) -m host_tools.board.gen_pio --check

pytest: setup tflm-deps-if-present
	$(VPY) -m pytest -q

test: lint pytest

firmware: setup
	$(VENV)/bin/octo build --board virtual-m4

# Re-pin: resolve pyproject's direct pins (+dev) in a scratch venv and freeze.
lock:
	rm -rf /tmp/octo-lock-venv && $(PYTHON) -m venv /tmp/octo-lock-venv
	/tmp/octo-lock-venv/bin/pip install -q ".[dev]"
	{ echo "# Pinned Python dependencies of Octo (pip freeze of a working install). \`make\` installs exactly these."; \
	  echo "# Regenerate: make lock"; /tmp/octo-lock-venv/bin/pip freeze --exclude-editable | grep -v '^octo-tinyml'; } > requirements.lock

clean:
	rm -rf firmware/.pio build .pytest_cache .ruff_cache

distclean: clean
	rm -rf $(VENV) $(PLATFORMIO_CORE_DIR)
