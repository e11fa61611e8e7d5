# slsrelay — the two commands: `make run` and `make test`.
GO        ?= go
PKGS      := ./...
# Packages with concurrency run under the race detector.
RACE_PKGS := ./engine/... ./wal/... ./shardwriter/... ./bench/... ./cmd/...
FUZZTIME  ?= 30s
# staticcheck, pinned, run through `go run` so nothing needs installing and
# the project's go.mod does not require it.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build run test test-race vet lint deps fuzz bench bench-go clean

all: build

build:
	$(GO) build -o bin/ ./cmd/...

# Starts the relay on its embedded default: listeners on localhost, the SLS
# stand-in in-process, data under ./data.
run: build
	./bin/slsrelay -config configs/local.yaml

# Installs what the tests need from Debian's packages: kcat (librdkafka's
# CLI, for the client tests) and haproxy (the TCP load balancer the fleet
# test puts in front of three relays). Idempotent: installs only what is
# missing, and runs apt-get update only then.
DEB_DEPS := kcat:kcat haproxy:haproxy
deps:
	@missing=; for d in $(DEB_DEPS); do \
	  command -v $${d%%:*} >/dev/null 2>&1 || PATH="$$PATH:/usr/sbin:/sbin" command -v $${d%%:*} >/dev/null 2>&1 || missing="$$missing $${d##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing from Debian's packages for the tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

test: deps vet lint
	$(GO) test -count=1 $(PKGS)
	$(GO) test -count=1 -race $(RACE_PKGS)

vet:
	$(GO) vet $(PKGS)

# Fails on any staticcheck finding.
lint:
	$(GO) run $(STATICCHECK) $(PKGS)

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# The bench harness: steady, burst, old-clients and sasl-ssl against every
# target (relay end to end, relay ack path, ack-only endpoint, kfake, plain
# file) for BENCH_DURATION each, plus a shortened SLS outage. Writes the
# table, JSON and HTML report under bench/out/.
BENCH_DURATION ?= 12s
bench:
	$(GO) build -o bin/slsbench ./cmd/slsbench
	./bin/slsbench -standard -duration $(BENCH_DURATION) -out bench/out

# The Go benchmarks (ack path, WAL append, conversion).
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./engine/ ./wal/... ./shardwriter/

clean:
	rm -rf bin data
