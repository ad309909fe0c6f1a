# Strata. `make run` starts a standalone broker; `make test` installs what the
# tests need (MinIO, nats-server, gotestsum into .cache/bin) and runs them all.

GO        ?= go
BIN       := bin/strata
TOOLS     := $(CURDIR)/.cache/bin
DATA_DIR  ?= $(CURDIR)/.data

# Pinned tool versions, built from the Go module proxy and cached in .cache/bin.
MINIO_VERSION     := v0.0.0-20260212201848-7aac2a2c5b7c
NATS_VERSION      := v2.15.2
GOTESTSUM_VERSION := v1.13.0
STATICCHECK_VERSION := v0.8.2
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2

export STRATA_MINIO_BIN := $(TOOLS)/minio
export STRATA_NATS_BIN  := $(TOOLS)/nats-server

# Fuzz targets run briefly by `make test` (package:FuzzName, or
# package:FuzzName:COUNTx for a slow target).
FUZZ_TARGETS ?= ./internal/entry:FuzzDecode ./internal/entry:FuzzDecodeMessages ./client:FuzzParseMessageID ./client:FuzzParseDuration ./bookie:FuzzDecodeAdd ./bookie/journal:FuzzDecode ./bookie/journal:FuzzScan ./bookie/index:FuzzDecodeCheckpoint ./bookie/index:FuzzDecodeSegment ./metadata:FuzzDecode ./tiering/segment:FuzzDecodeBatch:300x ./tiering/segment:FuzzVerify:300x ./loadtest:FuzzDecodeHeader ./loadtest/chaos:FuzzParseSchedule ./serving:FuzzDecodeRanges ./serving:FuzzDecodeBatchAcks
# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can
# fail a clean run with "context deadline exceeded" at the deadline on a busy
# machine (golang/go#75804, fixed in Go 1.27). A count has no deadline.
FUZZ_TIME    ?= 10000x

.PHONY: all build run test test-only fuzz bench check proto tools clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/strata

run: build
	$(BIN) standalone --data-dir $(DATA_DIR)

# The fuzz targets run briefly first, so that the test runner's summary is
# the last thing printed.
test: tools
	@$(MAKE) --no-print-directory fuzz
	$(TOOLS)/gotestsum --format pkgname-and-test-fails --format-hide-empty-pkg -- -race -count=1 -timeout 20m ./...

# test-only runs the suite without installing tools (tests that need MinIO or
# nats-server skip unless CI=true).
test-only:
	$(GO) test -race -count=1 ./...

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; count=$${rest#*:}; \
		if [ "$$count" = "$$rest" ]; then count=$(FUZZ_TIME); fi; \
		echo "fuzz $$pkg $$name for $$count"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $$count -fuzzminimizetime 5s $$pkg; \
	done

# bench measures the bookie against the raw disk, then Strata against NATS
# JetStream with the loadtest, and rewrites the generated part of
# docs/benchmarks.md (about 9 minutes).
bench: build tools
	@mkdir -p docs/bench
	$(GO) test -run '^$$' -bench . -benchtime 2s ./bookie/ | tee docs/bench/bookie.txt
	$(GO) test -run '^$$' -bench Floor -benchtime 10s ./loadtest/ | tee docs/bench/floor.txt
	BIN=$(BIN) OUT=docs/bench sh loadtest/scripts/bench-compare.sh
	OUT=docs/bench sh loadtest/scripts/bench-doc.sh

check:
	gofmt -l . | (! grep .) || (echo "gofmt needed on the files above" && exit 1)
	$(GO) vet ./...
	@if [ ! -x $(TOOLS)/staticcheck ]; then GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); fi
	$(TOOLS)/staticcheck ./...

proto:
	@command -v protoc >/dev/null || (echo "protoc missing: apt-get install -y protobuf-compiler" && exit 1)
	@if [ ! -x $(TOOLS)/protoc-gen-go ]; then GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION); fi
	@if [ ! -x $(TOOLS)/protoc-gen-go-grpc ]; then GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION); fi
	PATH=$(TOOLS):$$PATH protoc -I . --go_out=paths=source_relative:. --go-grpc_out=paths=source_relative:. \
		bookie/bookiepb/bookie.proto serving/servingpb/serving.proto

tools: $(TOOLS)/gotestsum $(TOOLS)/minio $(TOOLS)/nats-server

$(TOOLS)/gotestsum:
	GOBIN=$(TOOLS) $(GO) install gotest.tools/gotestsum@$(GOTESTSUM_VERSION)

$(TOOLS)/minio:
	@echo "building MinIO $(MINIO_VERSION) (first time on this machine: about 4 minutes)"
	GOBIN=$(TOOLS) $(GO) install github.com/minio/minio@$(MINIO_VERSION)

$(TOOLS)/nats-server:
	GOBIN=$(TOOLS) $(GO) install github.com/nats-io/nats-server/v2@$(NATS_VERSION)

clean:
	rm -rf bin $(DATA_DIR)
