# Makefile: the usual entry points. `make test` is what CI runs (.ci/run).

GO ?= go
# Benchmarks: which ones, and how long each runs (see `go help testflag`).
BENCH ?= .
BENCHTIME ?= 1s

.PHONY: test build vet bench demo

# Installs the test peers when root, starts a private PostgreSQL, and runs
# every test with BILDRUM_REQUIRE_EXTERNAL=1. TEST_PACKAGES and GOTESTFLAGS
# narrow or extend the run, e.g.
#   TEST_PACKAGES=./sqlstore/ GOTESTFLAGS='-run TestStore -v' make test
test:
	bash scripts/test.sh

build:
	$(GO) build ./...

vet:
	$(GO) vet ./...

# Benchmarks only (-run '^$$' matches no test). Those that need PostgreSQL
# or a browser skip unless the environment provides them, as in `make test`.
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime=$(BENCHTIME) -benchmem ./...

demo:
	$(GO) run ./cmd/bildrum demo
