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

.PHONY: all build venv compat-upstream board-deps image demo test test-short test-python bench fuzz proto proto-python proto-check lint fmt clean

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

## test: vet and the whole test suite with the race detector: the root module,
## the SDK module, and the out-of-tree driver example (which requires the SDK only);
## the QEMU board's end-to-end test uses the image `make image` builds
test: build image venv test-python
	$(GO) vet ./...
	cd sdk && $(GO) vet ./... && $(GO) test -race -count=1 ./...
	cd examples/vendor-driver && $(GO) vet ./... && $(GO) test -race -count=1 ./...
	JUMPWIRE_BOARD_IMAGE="$(BOARD_IMAGE)" JUMPWIRE_REQUIRE_PYTHON=1 $(GO) test -race -count=1 -timeout 20m ./...

## test-python: the Python plugin host's own tests and lint
test-python: venv
	$(VENV)/bin/ruff check python examples/python-driver
	$(VENV)/bin/ruff format --check python examples/python-driver
	$(VENV)/bin/python -m pytest -q python/tests
	PYTHONPATH=examples/python-driver $(VENV)/bin/python -m pytest -q -p no:cacheprovider examples/python-driver/tests

## abuse: the fault and abuse suite at full size (make test runs it small)
abuse:
	$(GO) test -count=1 -timeout 20m -run '^TestAbuse$$' ./exporter -abuse.long -v

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

## lint: golangci-lint v2 with the linters in .golangci.yml
lint:
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.6.2 run ./...

fmt:
	gofmt -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

clean:
	rm -rf $(BIN) $(VENV)
