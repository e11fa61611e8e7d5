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

# `slsrelay version` prints what build stamps: the version (git describe,
# or "devel" outside a git checkout), the commit and the build date (UTC).
# Each can be given: make build VERSION=v1.2.0.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

# Starts the relay on its embedded default: listeners on localhost, the SLS
# stand-in in-process, data under ./data.
run: build
	./bin/slsrelay -config configs/local.yaml

# Installs what the tests need from Debian's packages, each only when it is
# missing: kcat (librdkafka's CLI: client tests, shipper properties),
# promtool (Debian ships it in the prometheus package: alert rules),
# systemd-analyze (systemd: the unit's hardening score) and omkafka
# (rsyslog-kafka: the rsyslog config), haproxy (the TCP load balancer
# the fleet test puts in front of three relays), chromium (the admin
# status page rendered headless at a phone's size) and python3-kafka
# (kafka-python, run by Debian's /usr/bin/python3: client, SCRAM and fleet
# tests). Idempotent: the checks run first, and what is missing is
# installed with one apt-get update and one apt-get install, not an update
# per missing package (up to seven on a clean machine).
deps:
	@missing=; services=; \
	$(call need,command -v kcat,kcat,) \
	$(call need,command -v promtool,prometheus,prometheus) \
	$(call need,command -v systemd-analyze,systemd,) \
	$(call need,ls /usr/lib/*/rsyslog/omkafka.so,rsyslog-kafka,$(if $(wildcard /usr/sbin/rsyslogd),,rsyslog)) \
	$(call need,{ test -x /usr/sbin/haproxy || command -v haproxy; },haproxy,haproxy) \
	$(call need,command -v chromium,chromium,) \
	$(call need,/usr/bin/python3 -c 'import kafka',python3-kafka,) \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing for the tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	  if [ -d /run/systemd/system ]; then \
	    for s in $$services; do $$SUDO systemctl disable --now $$s >/dev/null 2>&1 || true; done; \
	  fi; \
	fi

# need CHECK,PACKAGE,SERVICE (a part of deps' shell command) adds PACKAGE
# to the packages to install when the shell command CHECK fails. On a host run by
# systemd, Debian's packages start their daemons: SERVICE (one this
# install brings) is stopped and disabled after the install, as the tests
# need only the package's tools.
define need
{ $(1); } >/dev/null 2>&1 || { missing="$$missing $(2)"; services="$$services $(3)"; };
endef

# go test runs at most -p test binaries at once and builds only in the
# slots they leave free. At the default (GOMAXPROCS: 2 in CI) the longest
# packages ran two by two, and the builds of the rest waited behind them,
# while the machine idled: these tests mostly wait (quotas, outages, child
# processes, timeouts). With 4 slots (or one per CPU, if more) and the
# longest packages named first (go test starts them in the order given,
# each once), the rest runs beside them. The race pass also runs as many
# parallel tests per package: the end-to-end tests of cmd/slsrelay, its
# longest package there, mostly wait too. Measured on 2 cores, under other
# jobs' load: the normal pass 274 s → 142 s, the race pass 356 s → 130 s.
NPROC     := $(shell nproc 2>/dev/null || echo 2)
TEST_P    ?= $(if $(filter 1 2 3,$(NPROC)),4,$(NPROC))
SLOW_PKGS := ./shardwriter/ ./engine/ ./cmd/slsrelay/

test: deps vet lint
	$(GO) test -count=1 -p $(TEST_P) $(SLOW_PKGS) $(PKGS)
	$(GO) test -count=1 -race -p $(TEST_P) -parallel $(TEST_P) $(SLOW_PKGS) $(RACE_PKGS)

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
