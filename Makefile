# Build, test and benchmark entry points. `make test` is what CI runs.
CARGO ?= cargo
RUN ?=

.PHONY: all build release test lint fmt bench bench-full bench-engine report \
        fuzz fuzz-ci crash-loop conformance load-10k clean

all: build

build:
	$(CARGO) build --workspace --all-targets

release:
	$(CARGO) build --workspace --release --bins

test:
	$(CARGO) test --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

bench-engine:
	$(CARGO) run --release -p engine --bin engine-bench

clean:
	$(CARGO) clean
