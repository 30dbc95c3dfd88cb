# Kiln's two commands for a fresh machine: `make run` and `make test`. Both install what is missing first.

GO      ?= go
DATA    ?= .data
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
GOFILES := $(shell find . -name '*.go' -not -path './.data/*' 2>/dev/null)

.PHONY: all deps build run test fuzz bench proto clean

all: build

## deps: install Debian's runc (buildkitd's OCI worker), containernetworking-plugins, iptables and iproute2 (the builds'
## isolated network and the firewall around it) and busybox-static (the examples' base image) if missing.
deps:
	@missing=""; \
	for p in runc containernetworking-plugins iptables iproute2 busybox-static; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

## build: bin/kiln, and bin/buildkitd and bin/buildctl from the BuildKit version pinned in go.mod.
build: bin/kiln bin/buildkitd bin/buildctl examples/base/busybox

bin/kiln: $(GOFILES) go.mod go.sum
	$(GO) build -o $@ ./cmd/kiln

bin/buildkitd: go.mod go.sum
	$(GO) build -o $@ github.com/moby/buildkit/cmd/buildkitd

bin/buildctl: go.mod go.sum
	$(GO) build -o $@ github.com/moby/buildkit/cmd/buildctl

examples/base/busybox: | deps
	cp /bin/busybox $@

## run: build everything and start Kiln with embedded NATS, registry and buildkitd; data in $(DATA).
run: deps build
	bin/kiln serve --data-dir $(DATA)

## test: the same set-up, then every test, end-to-end included, then each fuzzer briefly (CI runs this through
## .ci/run).
test: deps build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=3s

## fuzz: run each fuzzer (Go's native fuzzing, func FuzzX in a _test.go file) for FUZZTIME; what one finds is
## written under its package's testdata/fuzz/FuzzX, where later runs (and go test) replay it.
FUZZTIME ?= 1m
fuzz:
	@$(GO) test -list '^Fuzz' $$($(GO) list ./... | grep -v '/e2e') | awk '/^Fuzz/ { n[++c] = $$1 } /^ok/ { for (i = 1; i <= c; i++) print $$2, n[i]; c = 0 }' | \
	while read -r pkg fuzzer; do \
		echo "fuzz: $$pkg $$fuzzer for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fuzzer\$$" -fuzztime $(FUZZTIME) "$$pkg" || exit 1; \
	done

## bench: measure Kiln against raw buildctl on the same buildkitd and registry; writes BENCHMARKS.md.
bench: deps build
	$(GO) run ./e2e/benchmark -out BENCHMARKS.md

## proto: regenerate proto/kiln.pb.go (needs protoc: apt-get install protobuf-compiler).
proto:
	protoc --plugin=protoc-gen-go=$$($(GO) tool -n protoc-gen-go) --go_out=. --go_opt=paths=source_relative proto/kiln.proto

clean:
	rm -rf bin examples/base/busybox
