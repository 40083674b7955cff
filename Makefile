# Everything a fresh clone needs is installed by these targets: nothing is assumed
# on the machine beyond python3.11, python3.13 (pyenv), node/npm.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
LOCALSTACK_VENV := $(TOOLS)/localstack-venv
AZURITE_DIR := $(TOOLS)/azurite
BUF_DIR := $(TOOLS)/buf
BUF := $(BUF_DIR)/node_modules/.bin/buf
PROTO_SRC := $(wildcard protos/bucketvault/v1/*.proto)
PROTO_OUT := src/bucketvault/v1
ADDR ?= 127.0.0.1:50051
DATA_DIR ?= .bucketvault

.PHONY: all venv proto run demo test test-fast lint docs bench fuzz soak emulators localstack azurite buf browser clean

all: proto

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

proto: $(PROTO_OUT)/.generated

$(PROTO_OUT)/.generated: $(PROTO_SRC) $(VENV)/.installed
	rm -rf $(PROTO_OUT) && mkdir -p $(PROTO_OUT)
	$(BIN)/python -m grpc_tools.protoc -Iprotos \
		--plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy --plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc \
		--python_out=src --grpc_python_out=src --mypy_out=src --mypy_grpc_out=src $(PROTO_SRC)
	echo '"""Generated from protos/bucketvault/v1 by `make proto`; do not edit."""' > $(PROTO_OUT)/__init__.py
	touch $@

# LocalStack verifies SigV4 presigned URLs; it needs Python 3.13 and its own venv.
localstack: $(LOCALSTACK_VENV)/.installed

$(LOCALSTACK_VENV)/.installed:
	PYENV_VERSION=3.13.0 python3.13 -m venv $(LOCALSTACK_VENV)
	$(LOCALSTACK_VENV)/bin/python -m pip install -q --disable-pip-version-check \
		'localstack-core[runtime]==2026.3.0' 'cbor2<6' 'pyopenssl<25' 'cryptography<45' \
		service_identity 'joserfc<1.3'
	touch $@

# Azurite 3.37.0 exactly: older versions reject the current SDK's user-delegation SAS.
azurite: $(AZURITE_DIR)/.installed

$(AZURITE_DIR)/.installed:
	mkdir -p $(AZURITE_DIR)
	cd $(AZURITE_DIR) && (test -f package.json || echo '{"private": true}' > package.json) \
		&& npm install --silent --no-audit --no-fund azurite@3.37.0
	touch $@

emulators: localstack azurite

# buf lints the protos and checks them for breaking changes (make lint; tests/packaging).
buf: $(BUF_DIR)/.installed

$(BUF_DIR)/.installed:
	mkdir -p $(BUF_DIR)
	cd $(BUF_DIR) && (test -f package.json || echo '{"private": true}' > package.json) \
		&& npm install --silent --no-audit --no-fund @bufbuild/buf@1.75.0
	touch $@

# Headless Chromium renders a stable link in an <img> (tests/aws/test_links.py): Debian's
# package, installed only when missing (needs root, as CI has).
browser:
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q --no-install-recommends chromium)

run: proto
	$(BIN)/bucketvault serve --listen $(ADDR) --data-dir $(DATA_DIR)

# The whole product on loopback through the CLI (README, "The demo"): stand-ins, the
# service, one credential per cloud, signed URLs fetched, a rotation, the audit verified.
demo: proto emulators
	@start=$$(date +%s); PYTHONPATH=src $(BIN)/python -m bucketvault.testing.demo; code=$$?; \
		echo "make demo: $$(( $$(date +%s) - start )) s in total"; exit $$code

test: proto emulators buf browser
	$(BIN)/python -m pytest

# The suite without the slow LocalStack peer; for quick local loops only.
test-fast: proto
	$(BIN)/python -m pytest -m 'not localstack'

# The README's table of error reasons, generated from src/bucketvault/reasons.py.
docs: proto
	PYTHONPATH=src $(BIN)/python -m bucketvault.reasons --write README.md

lint: proto buf
	$(BUF) lint
	# Against the last commit: what the working tree changes in the contract must not break it.
	$(BUF) breaking --against '.git#ref=HEAD'
	$(BIN)/ruff check src tests bench setup.py
	$(BIN)/ruff format --check src tests bench setup.py
	$(BIN)/mypy
	$(BIN)/hadolint --failure-threshold info deploy/Dockerfile
	$(BIN)/kubernetes-validate --quiet --strict -k 1.31.0 deploy/kubernetes/*.yaml

# A longer run of the parser fuzzer than the suite's bounded one (FUZZ_SECONDS=300).
FUZZ_SECONDS ?= 300
fuzz: proto
	PYTHONPATH=src $(BIN)/python -m bucketvault.testing.fuzz --seconds $(FUZZ_SECONDS) --corpus .fuzz-corpus

# A bounded loopback load run (SOAK_SECONDS=600): zero errors, RSS growth under 10%, audit
# verifies afterwards; a 30-second version runs in the suite (tests/core/test_soak.py).
SOAK_SECONDS ?= 600
soak: proto
	SOAK_SECONDS=$(SOAK_SECONDS) PYTHONPATH=src $(BIN)/python -m bucketvault.testing.soak

# Installs what it needs: the Azure scenario registers a shared key against Azurite.
bench: proto azurite
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(TOOLS) $(PROTO_OUT) .pytest_cache .mypy_cache .ruff_cache
