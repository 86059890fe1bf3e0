# Taquilla. `make run` starts everything in one process; `make test` runs
# the test suite against a real embedded NATS server and a throwaway
# PostgreSQL cluster that the tests start themselves.

GO       ?= go
DATA_DIR ?= ./data
PKGS     := ./...

.PHONY: run build test test-race fuzz bench bench-smoke bench-admit vet lint fmt clean

run: ## start NATS, PostgreSQL, core and edge in one process
	@$(GO) build -o bin/taquilla ./deploy/cmd/taquilla
	@./bin/taquilla run -data-dir $(DATA_DIR)

build:
	$(GO) build -o bin/taquilla ./deploy/cmd/taquilla
	$(GO) build -o bin/loadgen ./bench/cmd/loadgen

test: vet ## vet, then every test with the race detector
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

fuzz: ## run each fuzz target for a short time
	./.ci/fuzz 10s

bench: ## micro-benchmarks of the hot paths
	$(GO) test -run '^$$' -bench . -benchtime 1s ./shared/... ./edge/...

bench-smoke: ## 3,000 fans for one show of 1,000 seats against the whole system
	$(GO) run ./bench/cmd/loadgen smoke

bench-admit: ## the admission controller alone, unthrottled, with its worst one-minute window
	$(GO) run ./bench/cmd/admitrate

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)

lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.7.0 $(PKGS)

clean:
	rm -rf bin
