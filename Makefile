# nodefix — see README.md. Every target runs from a fresh clone.
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# SOURCE_DATE_EPOCH (reproducible builds) fixes the date when it is set.
BUILD_DATE ?= $(shell date -u -d "@$${SOURCE_DATE_EPOCH:-$$(date +%s)}" +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(BUILD_DATE)
export PATH := $(PATH):/usr/local/go/bin
export CGO_ENABLED := 0

.PHONY: all build test lint deps demo bench bench-inventory dist clean playbooks-library man collection

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/nodefix ./cmd/nodefix
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/testfleet ./cmd/testfleet

# The manual page, written by nodefix from its own command-line definitions.
man: build
	$(BIN)/nodefix __man > nodefix.1

# The tests start real sshd nodes in namespaces: run as root. Without root,
# openssh-server, rpm or ansible-core the fleet tests skip with the reason,
# unless NODEFIX_FLEET=required (as .ci/run sets), where they fail.
# One package at a time (-p 1): the fleet tests of two packages at once
# on a 2-core machine slow each other past their connect timeouts.
test:
	$(GO) test -count=1 -p 1 -timeout 60m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# nodefix against a hand-written Ansible playbook (N = 20, 50), against
# OpenSSH's `ssh host true` (N = 20, 50, 100), and its own wall time, CPU
# and peak memory at 10, 100 and 1,000 hosts, all in one run on one
# 100-node simulated fleet; medians of BENCH_RUNS runs. Takes ~25 minutes.
BENCH_RUNS ?= 3
bench: deps build
	$(BIN)/testfleet bench --nodefix $(BIN)/nodefix --runs $(BENCH_RUNS) --out bench-results/bench.md

# Loads a generated 10,000-host INI inventory with nodefix and with the real
# ansible-inventory in one run, and prints how many times faster nodefix is.
bench-inventory:
	@mkdir -p bench-results
	$(GO) test -run '^$$' -bench 'BenchmarkInventory10k' -benchtime 3x -count 1 ./inventory | tee bench-results/inventory.txt
	@awk '$$1 ~ /^BenchmarkInventory10k\/nodefix-list/ {n=$$3} $$1 ~ /^BenchmarkInventory10k\/nodefix-resolve/ {nr=$$3} \
		$$1 ~ /^BenchmarkInventory10k\/ansible-inventory-list/ {a=$$3} $$1 ~ /^BenchmarkInventory10kTemplated\/nodefix-resolve/ {tr=$$3} \
		$$1 ~ /^BenchmarkInventory10kTemplated\/ansible-inventory-list/ {ta=$$3} \
		END {if (n && a && nr && tr && ta) { \
			printf "ansible-inventory --list / nodefix inventory --list, 10,000 hosts: %.1fx faster\n", a/n; \
			printf "templated, 10,000 hosts: ansible-inventory --list / nodefix evaluating every connection and node name: %.1fx faster\n", ta/tr; \
			printf "evaluating every connection and node name, templated / untemplated: %.2fx\n", tr/nr } \
		else {print "bench-inventory: missing a result"; exit 1}}' bench-results/inventory.txt

deps:
	bash .ci/install-deps

clean:
	rm -rf $(BIN) dist bench-results playbooks/library/nodefix nodefix.1

# A simulated fleet of 7 real sshd nodes (kubeasz, kubeadm and k3s
# kubelets, plain hosts) broken as in the incidents: checked, fixed, fixed
# again with nothing changed, then checked with an inventory that is wrong
# about three nodes; torn down at the end.
demo: deps build
	$(BIN)/testfleet demo --nodefix $(BIN)/nodefix

# Static binaries for the nodes (Ansible copies the right one), with checksums.
DIST_PLATFORMS := linux/amd64 linux/arm64
dist:
	rm -rf dist && mkdir -p dist
	for p in $(DIST_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/nodefix-$$os-$$arch ./cmd/nodefix || exit 1; \
	done
	cd dist && sha256sum nodefix-* > SHA256SUMS

# The Ansible binary module: playbooks/remediate.yml and
# kubeasz-post-install.yml find it in their library/ directory under the
# module name nodefix. Static, for this machine's architecture (which every
# node must share; a mixed fleet uses remediate-command.yml and `make dist`).
playbooks-library:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o playbooks/library/nodefix ./cmd/nodefix

# The Ansible collection nodefix.longhorn (sources in playbooks/collection):
# the dist binaries for each node architecture, nodefix's own playbooks and
# a role made of remediate.yml, built with the real ansible-galaxy into
# dist/nodefix-longhorn-<version>.tar.gz (git describe, as a semantic version).
#   ansible-galaxy collection install dist/nodefix-longhorn-*.tar.gz
collection: dist
	$(GO) run ./playbooks/collection/build -dist dist -out dist -version '$(VERSION)'
