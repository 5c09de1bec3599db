# The README's commands. `make run` and `make test` each install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: run test install protos lint-protos bench profile eval conformance clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The benchmark's extras (its peer, the profiler): not needed by `make test`.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

## Everything locally: gateway, tasks, ai, worker (+ the LLM simulator without OPENAI_API_KEY).
run: $(STAMP)
	$(BIN)/taskmesh up

## The whole test suite (what CI runs).
test: $(STAMP)
	$(BIN)/pytest

## Regenerate the protobuf/gRPC stubs after editing protos/.
protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

lint-protos:
	npx --yes @bufbuild/buf lint

## Throughput, latency, CPU per job and memory of the running system, and of the peer
## (Taskiq) in the same invocation (prints figures). Quick look: make bench ARGS='--runs 1 --jobs 300'
bench: $(BENCH_STAMP)
	$(BIN)/python scripts/bench.py $(ARGS)

## Where the CPU goes: one burst of taskmesh and of the peer under py-spy, top functions per process.
profile: $(BENCH_STAMP)
	$(BIN)/python scripts/bench.py --only profile $(ARGS)

## Evaluate parse-task (the domain's cases and a multilingual set) against OPENAI_BASE_URL /
## OPENAI_MODEL, or the simulator when neither OPENAI_BASE_URL nor OPENAI_API_KEY is set;
## prints pass/fail per case and check, writes eval-report.json.
eval: $(STAMP)
	$(BIN)/taskmesh eval --out eval-report.json

## A real OpenAI-compatible server: builds or finds llama.cpp's llama-server, runs a few jobs
## through the whole system on SmolLM2-135M and prints the table (not part of `make test`).
conformance: $(STAMP)
	$(BIN)/python scripts/conformance.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
