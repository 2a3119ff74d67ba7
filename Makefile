# The two commands of the README (`make run`, `make test`) build the virtual
# environment themselves; everything else is for maintainers and CI.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROTOS := $(wildcard protos/cagw/v1/*.proto)

.PHONY: run test bench bench-smoke protos check-generated buf-lint buf-breaking typecheck clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/cagw serve $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The simulator and the gateway as separate processes, load from a third (docs/performance.md).
# ARGS passes options through, e.g. `make bench ARGS="--runs 5 --pending 10000 --pending-wait 100"`.
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(ARGS)

# Tiny sizes, seconds: fails only when the harness breaks or a figure is missing from the JSON.
bench-smoke: $(STAMP)
	$(BIN)/python -m benchmarks --smoke --out build/bench/smoke.json --work build/bench/smoke-work

# Regenerates generated/ from protos/. google/api/*.proto come from the
# installed googleapis-common-protos package, never from a network registry.
protos: $(STAMP)
	$(BIN)/python tools/genprotos.py generated

# Fails when generated/ is not what `make protos` would write.
check-generated: $(STAMP)
	$(BIN)/python tools/genprotos.py --check generated

# buf reads a descriptor set (with imports) built by protoc, so it needs no
# remote registry; only files under cagw/ are linted.
build/cagw.binpb: $(PROTOS) $(STAMP)
	$(BIN)/python tools/genprotos.py --descriptor-set $@

buf-lint: build/cagw.binpb
	$(BIN)/buf lint build/cagw.binpb --path cagw

# Compares the contract with the one on main (or AGAINST=<git ref>).
AGAINST ?= main
buf-breaking: build/cagw.binpb
	$(BIN)/python tools/genprotos.py --descriptor-set build/against.binpb --git-ref $(AGAINST)
	$(BIN)/buf breaking build/cagw.binpb --against build/against.binpb --path cagw

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf build .pytest_cache .mypy_cache
