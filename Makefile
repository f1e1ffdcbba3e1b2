# jts.tiered_storage — developer entry points. The two that matter (README.md):
#   make lab    build and boot the lab VM, run site.yml then lifecycle.yml, print the health report
#   make test   linters, unit, functional, sanity and Molecule tests on the lab VM
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV      ?= .venv
PY        := $(VENV)/bin/python
BIN       := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
LAB       := $(PY) tools/lab.py
LAB_NAME  ?= lab
LAB_NAME_ARG = $(if $(filter-out lab,$(LAB_NAME)), LAB_NAME=$(LAB_NAME))
# The lab's layout (inventories/lab); the Molecule scenario `layouts` runs `make lab` with its own.
LAB_INVENTORY ?= inventories/lab
BUILD     ?= build
COLL_DIR  := $(BUILD)/ansible_collections/jts/tiered_storage
HOST_PACKAGES := qemu-system-x86 qemu-utils debootstrap rsync zstd btrfs-progs xfsprogs \
                 e2fsprogs openssh-client util-linux procps iproute2 python3-venv acl attr prometheus fio

.PHONY: help deps venv lint ruff ansible-lint unit functional sanity doc molecule test lab lab-down lab-ssh bench clean \
        lab-image-background

help:
	@sed -n 's/^#  //p' $(MAKEFILE_LIST) | head -5
	@echo "targets: deps venv lint unit functional sanity doc molecule test lab lab-down lab-ssh bench clean"

deps:  ## Debian packages the lab and the functional tests need on this machine
	@missing=$$(for p in $(HOST_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

venv: $(VENV)/.installed

lint: ruff ansible-lint

ruff: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

ansible-lint: venv
	$(BIN)/ansible-lint

unit: venv
	$(BIN)/pytest -q tests/unit tests/lab

# Each file on one of FUNCTIONAL_JOBS workers (loadfile: a file's module fixtures, e.g. its
# PostgreSQL cluster, are made once); most of the layer waits on subprocesses, not on the CPU.
FUNCTIONAL_JOBS ?= 2
functional: venv deps
	$(BIN)/pytest -q -n $(FUNCTIONAL_JOBS) --dist loadfile --durations=15 tests/functional

doc: venv
	@for m in plugins/modules/*.py; do n=$$(basename $$m .py); \
	  $(BIN)/ansible-doc jts.tiered_storage.$$n > /dev/null || { echo "ansible-doc failed for $$n"; exit 1; }; \
	  echo "ansible-doc jts.tiered_storage.$$n: ok"; done

sanity: venv
	rm -rf $(BUILD) && mkdir -p $(BUILD)
	$(BIN)/ansible-galaxy collection build --force --output-path $(BUILD) .
	$(BIN)/ansible-galaxy collection install --force --no-deps -p $(BUILD) $(BUILD)/jts-tiered_storage-*.tar.gz
	@if tar -tzf $(BUILD)/jts-tiered_storage-*.tar.gz | grep -E '(\.venv/|__pycache__|\.qcow2$$|\.img$$|\.pytest_cache)'; then \
	  echo "collection tarball holds files it must not"; exit 1; fi
	@pipver=$$($(PY) -c "import re,ansible_test,pathlib; p=pathlib.Path(ansible_test.__file__).parent/'_internal/python_requirements.py'; print(re.search(r\"pip='([0-9.]+)'\", p.read_text()).group(1))"); \
	  cache=$$HOME/.ansible/test/cache/get_pip_$${pipver//./_}.py; \
	  [ -f "$$cache" ] || { mkdir -p "$$(dirname "$$cache")" && cp tools/ansible_test_get_pip.py "$$cache"; }
	cd $(COLL_DIR) && git init -q . && git add -A >/dev/null && \
	  $(CURDIR)/$(BIN)/ansible-test sanity --python 3.11 --test validate-modules --test compile --test import \
	    --test yamllint --test shebang --test line-endings --test symlinks

# default: the lab layout, every side effect; layouts: `make lab` from a VM that is not up yet
# with another layout (directory mode, then another VG and LVs), the nightly run from its unit.
molecule: venv deps
	cd $(CURDIR) && $(BIN)/molecule test --scenario-name default
	cd $(CURDIR) && $(BIN)/molecule test --scenario-name layouts

# The lab image (debootstrap, 2-3 min from nothing, much of it downloading) is built in the
# background while lint, unit and the functional layer run. lab.py's build lock makes
# Molecule's create wait for this build, and build the image itself if this one failed (the log
# says why). A cached image makes it a no-op.
LAB_IMAGE_LOG ?= .cache/lab-image-build.log
lab-image-background: venv deps
	@mkdir -p $(dir $(LAB_IMAGE_LOG))
	@nohup $(LAB) build > $(LAB_IMAGE_LOG) 2>&1 < /dev/null &
	@echo "Building the lab image in the background (log: $(LAB_IMAGE_LOG))"
# The image build starts first, in the background; then the fast layers, so a lint or unit
# failure does not wait for the VM; Molecule last.
test: lab-image-background lint unit functional doc sanity molecule
	@echo "Lint, unit, functional, doc, sanity and Molecule layers passed."

# The inventory path is asked for after `up` has made the VM, by the shell at run time: a make
# variable would be expanded before the recipe's first line runs (tests/lab checks `make -n lab`).
lab: venv deps
	$(LAB) up --name $(LAB_NAME)
	inv=$$($(LAB) inventory-path --name $(LAB_NAME)); \
	  $(BIN)/ansible-playbook -i $(LAB_INVENTORY) -i "$$inv" playbooks/site.yml && \
	  $(BIN)/ansible-playbook -i $(LAB_INVENTORY) -i "$$inv" playbooks/lifecycle.yml
	@echo; echo "Health report of the lab VM (jts-storage-check; exit 0 OK, 1 WARNING, 2 CRITICAL):"
	@rc=0; $(LAB) ssh --name $(LAB_NAME) -- jts-storage-check --report || rc=$$?; \
	  if [ $$rc -gt 1 ]; then echo "The lab's storage is not healthy (jts-storage-check exit $$rc)."; exit $$rc; fi
	@echo
	@echo "Lab VM '$(LAB_NAME)' is up."
	@echo "  log in:   $(LAB) ssh --name $(LAB_NAME)     (or: make lab-ssh$(LAB_NAME_ARG))"
	@echo "  stop it:  $(LAB) down --name $(LAB_NAME)    (or: make lab-down$(LAB_NAME_ARG))"

lab-ssh: venv
	$(LAB) ssh --name $(LAB_NAME)

lab-down: venv
	$(LAB) down --name $(LAB_NAME)

bench: venv deps
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(BUILD) .pytest_cache .ruff_cache
