# jumpwire: `make demo` to see it run, `make test` to check it.
GO       ?= go
BIN      := bin
PLUGINS  := $(BIN)/plugins
DRIVERS  := $(notdir $(wildcard drivers/*))
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
PYTHON   ?= python3
VENV     := .venv
PYREQS   := $(sort $(wildcard python/requirements*.txt))

.PHONY: all build cross venv compat-upstream board-deps image demo test test-go test-e2e test-python bench-smoke bench abuse fuzz proto proto-python proto-check lint fmt clean

# Every go command builds with -trimpath: the compiled packages do not depend
# on the checkout's path, so another clone finds them in Go's build cache, and
# make build, the tests' own builds (internal/testbin) and go test share them.
GOFLAGS += -trimpath
export GOFLAGS

# Where `make image` puts the demo board's image (kernel, initramfs, disk): a cache, never committed.
BOARD_IMAGE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/jumpwire/board

all: build

## build: the jw CLI and every first-party driver plugin, into bin/ and bin/plugins/
build:
	@mkdir -p $(PLUGINS)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/jw ./cmd/jw
	@for d in $(DRIVERS); do \
		echo "$(GO) build -o $(PLUGINS)/jumpwire-driver-$$d ./drivers/$$d/cmd/jumpwire-driver-$$d"; \
		$(GO) build -ldflags '$(LDFLAGS)' -o $(PLUGINS)/jumpwire-driver-$$d ./drivers/$$d/cmd/jumpwire-driver-$$d || exit 1; \
	done
	$(GO) build -o $(BIN)/jumpwire-demo-board ./examples/board

## venv: the project's Python environment in .venv, from every python/requirements*.txt (pinned);
## it holds upstream Jumpstarter's client (.venv/bin/j) that the compatibility suite runs, and
## the Python plugin host (python/, editable) with the upstream drivers it is tested with
venv: $(VENV)/.installed

$(VENV)/.installed: $(PYREQS) python/pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check $(addprefix -r ,$(PYREQS))
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e python/
	@touch $@

## compat-upstream: the compatibility suite (compat/) against jumpwire and upstream's own exporter
compat-upstream: venv
	$(GO) test -count=1 -v -run TestUpstreamClient ./compat/ -upstream

## board-deps: install qemu-system-x86, cpio and e2fsprogs with apt-get when missing
board-deps:
	@./examples/board-image/install-deps.sh

## image: build the demo board's image from Debian packages into $(BOARD_IMAGE) (once; cached)
image: board-deps
	@./examples/board-image/build.sh "$(BOARD_IMAGE)"

## demo: build, make the board image, and tour a QEMU board: flash, boot, log in, reach its web service
demo: build image
	@PATH="$(CURDIR)/$(BIN):$$PATH" BOARD_IMAGE="$(BOARD_IMAGE)" ./examples/tour.sh examples/qemu-board.yaml

# Recipes run in bash with pipefail: `go test -json | testprogress` fails
# when go test does.
SHELL       := /bin/bash
.SHELLFLAGS := -o pipefail -c

# GOTEST runs go test with the race detector, printing as go test does (each
# package's ok/FAIL line, a failed test's whole output) plus each top-level
# test that takes a second or more, so a long package is not silent. The
# binaries tests run as subprocesses are built once per run, into a directory
# the packages share ($$JUMPWIRE_TESTBIN_DIR, see internal/testbin).
GOTEST = $(GO) test -race -count=1 -json
PROGRESS = $(CURDIR)/$(BIN)/testprogress

## test: vet and the whole test suite with the race detector: the root module
## (whose cmd/jw tests also vet and test the out-of-tree driver example, which
## requires the SDK only) and the SDK module (test-go), with the end-to-end
## suites outside go test (test-e2e) running beside it, their output printed
## after go test's; the QEMU board's end-to-end test uses the image `make
## image` builds. The cross builds (make cross) and the benchmarks' smoke runs
## (make bench-smoke) are CI's, after make test.
test: build image venv $(BIN)/testprogress
	@log=$$(mktemp -t jumpwire-e2e.XXXXXX) && trap 'rm -f "$$log"' EXIT && \
		echo "make test-e2e >$$log (beside test-go; printed when it ends)" && \
		{ $(MAKE) --no-print-directory test-e2e >"$$log" 2>&1 & } && e2e=$$! && \
		$(MAKE) --no-print-directory test-go; gort=$$?; \
		wait $$e2e; e2ert=$$?; \
		echo "--- make test-e2e (exit code $$e2ert):"; cat "$$log"; \
		[ $$gort -eq 0 ] && [ $$e2ert -eq 0 ]

# GOTESTPKGS is the root module's packages, those that run longest first,
# so that with go test's parallelism (GOTESTP packages at once; each long
# package keeps about one core busy, its processes waiting on each other the
# rest of the time) they do not end the run alone.
GOTESTP    ?= 3
GOTESTPKGS  = ./exporter ./compat ./cmd/jw ./...

## test-go: vet and go test of the root and SDK modules
# The SDK's tests take seconds: a hang among them fails within 3 minutes,
# and testprogress prints the goroutines of the test that hung.
test-go: $(BIN)/testprogress
	$(GO) vet ./...
	cd sdk && $(GO) vet ./... && $(GOTEST) -timeout 3m ./... | $(PROGRESS)
	@shared=$$(mktemp -d -t jumpwire-testbin.XXXXXX) && trap 'rm -rf "$$shared"' EXIT && \
		echo "JUMPWIRE_TESTBIN_DIR=$$shared $(GOTEST) -p $(GOTESTP) -timeout 20m $(GOTESTPKGS) | testprogress" && \
		JUMPWIRE_BOARD_IMAGE="$(BOARD_IMAGE)" JUMPWIRE_REQUIRE_PYTHON=1 JUMPWIRE_TESTBIN_DIR=$$shared $(GOTEST) -p $(GOTESTP) -timeout 20m $(GOTESTPKGS) | $(PROGRESS)

$(BIN)/testprogress: internal/testprogress/main.go
	$(GO) build -o $@ ./internal/testprogress

## test-e2e: the end-to-end suites outside go test, each a target added to
## E2E (e.g. E2E += test-python-compat); make test runs them beside test-go
E2E ?=
E2E += test-python
test-e2e: $(E2E)

## bench-smoke: each benchmark's measurements once at tiny scale (CI runs it
## after make test); asserts that they work, never a timing
bench-smoke: build $(BIN)/testprogress
	JUMPWIRE_BENCH_SMOKE=1 $(GOTEST) -run 'Benchmarks?$$' ./bench/ | $(PROGRESS)

## test-python: the Python plugin host's own tests and lint
test-python: venv
	$(VENV)/bin/ruff check python examples/python-driver
	$(VENV)/bin/ruff format --check python examples/python-driver
	$(VENV)/bin/python -m pytest -q python/tests
	PYTHONPATH=examples/python-driver $(VENV)/bin/python -m pytest -q -p no:cacheprovider examples/python-driver/tests

## abuse: the fault and abuse suite at full size (make test runs it small)
abuse:
	$(GO) test -count=1 -timeout 20m -run '^TestAbuse$$' ./exporter -abuse.long -v

## cross: the exporter (jw) and the drivers build for the other Linux targets, and
## jw's client side for macOS and Windows (there, the exporter-side commands say they need
## Linux); on amd64, the host's exit decoding is tested as a 32-bit (386) build, as on arm
CROSS_LINUX  := linux/arm linux/arm64
CROSS_CLIENT := darwin/arm64 windows/amd64
cross:
	@for t in $(CROSS_LINUX); do \
		echo "GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build -o /dev/null ./cmd/jw ./drivers/..."; \
		GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build -o /dev/null ./cmd/jw ./drivers/... || exit 1; \
	done
	@# The client's tests too, on 32-bit arm: an int constant beyond 2^31 compiles only on 64-bit.
	GOOS=linux GOARCH=arm $(GO) vet ./client/...
	@for t in $(CROSS_CLIENT); do \
		echo "GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build -o /dev/null ./cmd/jw ./client/..."; \
		GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build -o /dev/null ./cmd/jw ./client/... || exit 1; \
	done
	@if [ "$$($(GO) env GOHOSTARCH)" = amd64 ]; then \
		mkdir -p $(BIN) && GOARCH=386 CGO_ENABLED=0 $(GO) test -c -o $(BIN)/host-386.test ./host || exit 1; \
		if ! $(BIN)/host-386.test -test.run '^$$' >/dev/null 2>&1; then \
			echo "cross: this kernel runs no 386 binaries; the host's 32-bit exit decoding is not tested here"; \
		else \
			echo "(cd host && ../$(BIN)/host-386.test -test.run 'TestSigchldInfoLayout|TestExit$$|TestKilled$$')"; \
			(cd host && ../$(BIN)/host-386.test -test.run 'TestSigchldInfoLayout|TestExit$$|TestKilled$$') || exit 1; \
		fi; \
	fi

## bench: the performance benchmarks (figures go to docs/PERFORMANCE.md)
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 1 ./bench/

## fuzz: run each fuzz target for FUZZTIME (default 30s); make test replays the corpora in testdata/fuzz
FUZZTIME ?= 30s
# Each target is MODULE-DIR:PACKAGE:NAME (the SDK is a module of its own).
FUZZ     := .:./exporter/config:FuzzParse sdk:.:FuzzDecodeValue sdk:.:FuzzDecodeLikeJSON .:./exporter:FuzzStreamRequest .:./client:FuzzNewTree .:./cmd/jw:FuzzParseArgs sdk:./protocol:FuzzFrame sdk:./protocol:FuzzDecodeMessage .:./plugins:FuzzDescribeAnswer
fuzz:
	@for t in $(FUZZ); do \
		dir=$${t%%:*}; rest=$${t#*:}; pkg=$${rest%%:*}; name=$${rest##*:}; \
		echo "$(GO) -C $$dir test -run '^$$' -fuzz '^'$$name'$$' -fuzztime $(FUZZTIME) $$pkg"; \
		$(GO) -C $$dir test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

## proto: regenerate the committed protobuf code with the generators pinned in go.mod
## (Go) and python/requirements-pyhost.txt (Python)
proto: proto-python
	$(GO) tool buf generate

## proto-python: the Python plugin host's grpcio stubs for plugin.proto
proto-python: venv
	cd python && ../$(VENV)/bin/python -m grpc_tools.protoc -Ijumpwire_pyhost/pb=../proto/plugin/v1 \
		--python_out=. --pyi_out=. --grpc_python_out=. jumpwire_pyhost/pb/plugin.proto

## proto-check: fail if the committed generated code is not what `make proto` makes
proto-check: proto
	@git diff --exit-code -- proto/ python/jumpwire_pyhost/pb || (echo "generated code is stale: run make proto and commit" && exit 1)

LINT = $(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.6.2

## lint: golangci-lint v2 with the linters in .golangci.yml, both modules
lint:
	$(LINT) run ./...
	cd sdk && $(LINT) run --config ../.golangci.yml ./...

fmt:
	gofmt -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

clean:
	rm -rf $(BIN) $(VENV)
