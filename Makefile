# gatehouse — the targets a developer and CI need. `make help` lists them.
#
# Tools (buf, protoc-gen-go, protoc-gen-go-grpc) are pinned in go.mod's tool
# block and run with `go tool`, so nothing but Go and the module proxy is
# needed.

GO        ?= go
# vtprotobuf: compile go-control-plane's generated vtproto marshalling, which
# the ext_authz codec uses instead of protobuf-go reflection (authz/codec.go;
# docs/performance.md). Without the tag gatehouse behaves the same, slower.
export GOFLAGS += -tags=vtprotobuf
DATA_DIR  ?= ./data
FUZZTIME  ?= 5s
SOAKTIME  ?= 5m
BENCHTIME ?= 1s
PKGS      := ./...

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/gatehouse and bin/whoami
	$(GO) build -o bin/gatehouse ./cmd/gatehouse
	$(GO) build -o bin/whoami ./cmd/whoami

.PHONY: run
run: build ## start the server on ./data (bbolt file, generated keys, admin key in ./data/admin.key)
	./bin/gatehouse serve --data-dir $(DATA_DIR)

.PHONY: test
test: lint proto-check unit allocs fuzz-short ## everything CI runs: lint, generated-code check, unit+e2e tests with -race, allocation budgets, short fuzz

.PHONY: unit
unit: ## go test -race over every package (includes the end-to-end tests)
	$(GO) test -race -count=1 -timeout 10m $(PKGS)

.PHONY: allocs
allocs: ## the Check path's allocation budgets, without -race (the race detector changes allocation counts, so -race skips them)
	$(GO) test -count=1 -run 'AllocBudget|DoesNotAllocate' ./authz ./cmd/gatehouse

.PHONY: lint
lint: ## gofmt, go vet, buf lint
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool buf lint

.PHONY: proto
proto: ## regenerate proto/ Go code from the .proto files
	$(GO) tool buf generate

.PHONY: proto-check
proto-check: ## fail when the committed generated code is stale
	@scripts/proto-check.sh

.PHONY: fuzz-short
fuzz-short: ## run every fuzz target briefly (FUZZTIME, default 5s)
	@scripts/fuzz.sh $(FUZZTIME)

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME=2m each
	@scripts/fuzz.sh $(if $(filter 5s,$(FUZZTIME)),2m,$(FUZZTIME))

.PHONY: bench
bench: ## micro-benchmarks (secret verification, lookups, Check, store batching)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./tokens ./policy ./store ./authz ./admin

.PHONY: soak
soak: ## Checks at concurrency 64 for SOAKTIME (default 5m) while tokens and applications churn; `make test` runs a 3s version
	$(GO) test -count=1 -timeout 0 -run '^TestSoak$$' -v ./cmd/gatehouse -soak $(SOAKTIME)

.PHONY: bench-load
bench-load: ## side-by-side load benchmark vs the floor server, 1k and 1M tokens (~20 min; see docs/performance.md)
	$(GO) run ./bench/run --out bench-load.json

.PHONY: bench-load-short
bench-load-short: ## the same, quick (1k tokens, one round, ~2 min)
	$(GO) run ./bench/run --short --out bench-load-short.json

.PHONY: clean
clean: ## remove build output (never the data dir)
	rm -rf bin

.PHONY: docs
docs: ## regenerate docs/cli.md and docs/api.md
	$(GO) test -count=1 ./cmd/gatehouse -run '^TestCLIReference$$' -update
	$(GO) test -count=1 ./proto/gatehouse/admin/v1 -run '^TestAPIReference$$' -update
