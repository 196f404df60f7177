# CNNSlicer: two commands on a fresh Debian machine.
#   make run   installs what is missing, builds in release, opens the shipped default
#   make test  installs what is missing, builds and runs the test suite
#   make test-targets  the numeric tests under every vector target this CPU can run
#   make fuzz  the fuzz campaign over every input format, longer (FUZZ_SECONDS, FUZZ_SEED)
SHELL := /bin/bash
SWIFT ?= swift
APT_PACKAGES := pkg-config libsdl2-dev libsdl2-ttf-dev libsdl2-image-dev \
                libopenblas-dev zlib1g-dev fonts-dejavu-core dataset-fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
RELEASE_BIN := .build/release/cnnslicer
# The torchvision test (Tests/SlicerEngineTests/TorchvisionTests.swift) exports the
# ImageNet architectures with Debian's PyTorch and checks them against ONNX Runtime.
TEST_APT_PACKAGES := python3-torch python3-torchvision python3-pip
TEST_PYTHON := /usr/bin/python3

.PHONY: deps test-deps build release run test test-targets fuzz bench bench-deps clean

# Quick when everything is present: one dpkg-query, no apt-get.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product cnnslicer

run: release
	$(RELEASE_BIN)

# Best effort: without them (no network) the torchvision test skips and says why.
test-deps: deps
	@missing=$$(for p in $(TEST_APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing) || \
	        echo "warning: could not install $$missing; the torchvision test will be skipped"; \
	fi
	@$(TEST_PYTHON) -c 'import onnx, onnxruntime' 2>/dev/null || \
	    $(SUDO) $(TEST_PYTHON) -m pip install -q --break-system-packages onnx onnxruntime || \
	    echo "warning: could not install onnx/onnxruntime for $(TEST_PYTHON); the torchvision test will be skipped"

test: deps test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# The numeric test targets, built for each vector target Package.swift can choose
# (CNNSLICER_TARGET_CPU) that this machine can execute, each in its own scratch
# path so that the builds do not overwrite one another. TARGETS="haswell znver5"
# picks some; a target this CPU cannot run is skipped with a note.
NUMERIC_TESTS := ^(SlicerEngineTests|SlicerDataTests|SlicerInfoTests|SlicerCARTests)\.
TARGETS ?= $(shell tools/vector_targets.sh)
test-targets: deps
	@runnable=" $$(tools/vector_targets.sh | tr '\n' ' ') "; failed=""; \
	for t in $(TARGETS); do \
	    case "$$runnable" in *" $$t "*) ;; *) echo "== $$t: this CPU cannot run it, skipped"; continue;; esac; \
	    echo "== $$t: build"; \
	    if CNNSLICER_TARGET_CPU=$$t $(SWIFT) build --build-tests --scratch-path .build-$$t && \
	       echo "== $$t: test" && \
	       CNNSLICER_TARGET_CPU=$$t $(SWIFT) test --skip-build --scratch-path .build-$$t --filter '$(NUMERIC_TESTS)'; \
	    then echo "== $$t: passed"; else echo "== $$t: FAILED"; failed="$$failed $$t"; fi; \
	done; \
	if [ -n "$$failed" ]; then echo "test-targets failed on:$$failed"; exit 1; fi; echo "test-targets: all passed"

# The fuzz campaign of Tests/CLITests/FuzzTests.swift for FUZZ_SECONDS (default
# 15 minutes) with a new seed each run (FUZZ_SEED=n repeats one); `make test`
# runs it for a minute with a fixed seed. Findings are kept under $TMPDIR.
FUZZ_SECONDS ?= 900
fuzz: deps
	$(SWIFT) build --build-tests
	seed=$${FUZZ_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; echo "fuzz seed $$seed"; \
	CNNSLICER_FUZZ_SECONDS=$(FUZZ_SECONDS) CNNSLICER_FUZZ_SEED=$$seed $(SWIFT) test --skip-build --filter CLITests.FuzzTests

# Peers for the benchmark: PyTorch from Debian (torchvision exports the
# ImageNet models), ONNX Runtime from PyPI.
bench-deps: deps
	@for p in python3-torch python3-torchvision; do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || \
	    (DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$p); done
	@python3 -c 'import onnxruntime' 2>/dev/null || python3 -m pip install -q onnxruntime

bench: release bench-deps
	python3 tools/bench.py

clean:
	rm -rf .build
