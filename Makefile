# deid — the steps CI runs. `make run` and `make test` work on a fresh clone.
SHELL := /bin/bash
GO ?= go
CACHE := $(CURDIR)/.cache
BIN := $(CURDIR)/bin
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(CACHE)/bin/staticcheck-$(STATICCHECK_VERSION)
SEED ?= 42
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build run sample test unit lint fmt-check vet staticcheck bench fuzz golden clean kafka-start kafka-stop docs bench-stages

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/deid ./cmd/deid

## image: the container image deid:$(VERSION) and deid:latest (scripts/image.sh:
## a static binary on scratch, built with podman, which it installs when missing).
.PHONY: image
image:
	VERSION=$(VERSION) bash scripts/image.sh

## sample: the seeded sample input of `make run` (written once per seed).
sample: build
	@if [ ! -f sample/.seed-$(SEED) ]; then \
		rm -rf sample && $(BIN)/deid gen --seed $(SEED) --out sample && touch sample/.seed-$(SEED); \
	fi

## run: the main job on the embedded defaults (file mode) into ./out.
run: sample
	rm -rf out
	$(BIN)/deid run

## test: every test — lint, then unit, end-to-end, privacy invariants, crash
## and real-broker suites with -race (scripts/test.sh starts the broker), and
## deploy/'s checks of the image, the compose file and the manifests.
test: lint
	bash scripts/test.sh

## unit: the fast tier — every package's tests with -short, without the race
## detector and without starting anything: the end-to-end, crash, rebalance
## and broker-restart tests skip, the shared sample is smaller, real-broker
## tests skip. The allocation tests run here (the race detector allocates).
unit:
	$(GO) test -short -count=1 ./...
	cd deploy && $(GO) test -short -count=1 ./...

## kafka-start / kafka-stop: a local single-node Apache Kafka on 127.0.0.1.
kafka-start:
	bash scripts/kafka-local.sh start
kafka-stop:
	bash scripts/kafka-local.sh stop

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd deploy && $(GO) vet ./...

$(STATICCHECK):
	mkdir -p $(CACHE)/bin
	GOBIN=$(CACHE)/bin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(CACHE)/bin/staticcheck $(STATICCHECK)

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...
	cd deploy && $(STATICCHECK) ./...

## bench: deid vs DuckDB vs the decode limit on a cached 2 M-event input
## (scripts/bench.sh; JSON under bench/results/). Measured, never asserted.
## Flags for deid-bench: BENCH_ARGS="--reps 5 --partitions 1 --deid-alt /tmp/deid".
bench:
	bash scripts/bench.sh $(BENCH_ARGS)

## bench-stages: the per-stage Go benchmarks, with allocations.
bench-stages:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## docs: regenerate the data dictionary from the dataset declarations.
docs: build
	$(BIN)/deid describe > docs/datasets.md

## fuzz: a short run of every fuzz target.
fuzz:
	$(GO) test ./transforms/decode -run '^$$' -fuzz FuzzDecode -fuzztime 30s
	$(GO) test ./transforms/decode -run '^$$' -fuzz FuzzFastDecode -fuzztime 30s
	$(GO) test ./transforms/consent -run '^$$' -fuzz FuzzRead -fuzztime 20s
	$(GO) test ./cmd/deid -run '^$$' -fuzz FuzzLoadConfig -fuzztime 30s -fuzzminimizetime 10s

## golden: rewrite the golden end-to-end cases (review the diff).
golden:
	$(GO) test ./cmd/deid -run TestGolden -update

clean:
	rm -rf $(BIN) out sample
