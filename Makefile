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

# Benchmarks only (-run '^$$' matches no test), with the private PostgreSQL of
# `make test`, so the SQLite and PostgreSQL figures come from the same run.
bench:
	GOTESTFLAGS="-run ^$$ -bench $(BENCH) -benchtime=$(BENCHTIME) -benchmem" bash scripts/test.sh

demo:
	$(GO) run ./cmd/bildrum demo
