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

# Engine micro-benchmark (KingDB's db_bench workloads); pass flags with
# ENGINE_BENCH_ARGS, e.g. ENGINE_BENCH_ARGS="--num 100000" for a quick run.
ENGINE_BENCH_ARGS ?=
bench-engine:
	$(CARGO) run --release -p engine --bin engine-bench -- $(ENGINE_BENCH_ARGS)

# engine-bench at BASE (a git revision) against the working tree: both
# built, run in interleaved rounds with an A/A twin of the base, median and
# range of the ratios new/old and the twin's noise floor
# per workload, e.g. make bench-engine-compare BASE=main ENGINE_ROUNDS=5
# ENGINE_BENCH_ARGS="--num 200000". Needs a quiet machine.
ENGINE_ROUNDS ?= 5
.PHONY: bench-engine-compare
bench-engine-compare:
	$(if $(BASE),,$(error BASE=<git rev> is required))
	CARGO=$(CARGO) bash engine/bench/compare.sh $(BASE) $(ENGINE_ROUNDS) -- $(ENGINE_BENCH_ARGS)

# Offline tool over a data directory no server has open, e.g.
# make kvtool ARGS="verify /var/lib/kv" (verify, stats, compact, dump [--values]).
.PHONY: kvtool
kvtool:
	$(CARGO) run --release -p engine --bin kvtool -- $(ARGS)

# kill -9 crash test of the engine, many more iterations than `make test`.
CRASH_ITERATIONS ?= 300
crash-loop:
	CRASH_ITERATIONS=$(CRASH_ITERATIONS) $(CARGO) test --release -p engine --test crash

# Power-loss tests (root, loop devices, mkfs.ext4): the store on ext4 on a
# loop device, frozen at a random moment, the device copied, the copy
# mounted and every acknowledged write checked. First the engine alone (a
# writer process; every third cycle a close under durability `none`), then
# through the front-ends under load over the wire, each cut server's disk
# restarted by the next front-end. `make test` runs 3 cycles of each (and
# says when they are skipped).
POWERLOSS_CYCLES ?= 30
.PHONY: powerloss
powerloss:
	POWERLOSS_CYCLES=$(POWERLOSS_CYCLES) $(CARGO) test --release -p engine --test powerloss
	POWERLOSS_CYCLES=$(POWERLOSS_CYCLES) $(CARGO) test --release -p testkit --test powerloss -- --nocapture

# The memcached conformance suite: checked against memcached itself and the
# in-process service; `make conformance ADDR=host:port` also runs it against a
# live server (note: its flush_all cases empty that server).
conformance:
	$(CARGO) test -p service --test conformance_memcached --test conformance_in_process
	$(if $(ADDR),$(CARGO) run -p testkit --bin conformance -- $(ADDR))

# The hostile-client suite against both front-ends and memcached (when
# installed): one line per attack with the well-behaved client's errors and
# p99, the server's memory growth, and pass/fail. HOSTILE_SECONDS= per attack.
# `make test` runs a short version against both front-ends.
HOSTILE_SECONDS ?= 5
.PHONY: hostile
hostile:
	$(CARGO) build --release -p server-threadpool -p server-eventloop -p testkit
	HOSTILE_SECONDS=$(HOSTILE_SECONDS) $(or $(CARGO_TARGET_DIR),target)/release/hostile

# Three servers (both front-ends) on 127.0.0.11-13 behind nutcracker (ketama,
# auto_eject_hosts): placement, conformance through the proxy, loadgen
# --verify, a backend killed under load and brought back. `make test` runs
# the same tests smaller; both need nutcracker (apt-get install nutcracker).
.PHONY: cluster-test
cluster-test:
	CLUSTER_TEST_LONG=1 $(CARGO) test -p bench --test cluster -- --nocapture

# Every front-end with 10,000 concurrent connections, each doing a set and a
# get (`make test` runs the same test with 1,000).
load-10k:
	LOAD_CONNECTIONS=10000 $(CARGO) test -p testkit --test load -- --nocapture

# server-eventloop vs memcached: memcaslap throughput at 8/64/512 connections
# (ratios) and resident memory per idle connection at 10,000 connections.
.PHONY: bench-eventloop
bench-eventloop:
	bash server-eventloop/bench/memcaslap.sh

# server-threadpool vs memcached: memcaslap throughput (90% get, 32-byte
# values) at 1/8/64/150 connections, server and client on different cores;
# prints ops/s of each and the ratio. CONNS=, DURATION=, WORKERS= change it.
.PHONY: bench-threadpool
bench-threadpool:
	bash server-threadpool/bench/memcaslap.sh

# loadgen vs memcaslap against one memcached (1 client thread, 50 connections,
# get/set 9:1, 32-byte values; server and client on different cores): the
# median request rate and client CPU per request of memcaslap, of loadgen
# under the same load, and of loadgen with DEEP (8) requests in flight per
# connection in classic and meta protocol, with ratios. ROUNDS=, DURATION=.
.PHONY: bench-loadgen
bench-loadgen:
	$(CARGO) build --release -p loadgen
	LOADGEN=$(or $(CARGO_TARGET_DIR),target)/release/loadgen bash loadgen/bench/memcaslap.sh

# Protocol decoder fuzzing. `fuzz` runs the cargo-fuzz target for FUZZ_TIME
# seconds (cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable
# toolchain accept them). `fuzz-ci` checks the same invariants from a plain
# test binary with FUZZ_CASES generated inputs per property.
FUZZ_TIME ?= 60
FUZZ_CASES ?= 20000
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	mkdir -p fuzz/corpus/decode_request
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run decode_request \
		corpus/decode_request seeds/decode_request -- -max_total_time=$(FUZZ_TIME)

fuzz-ci:
	PROTOCOL_FUZZ_CASES=$(FUZZ_CASES) $(CARGO) test --release -p protocol --test fuzz_ci

# Request parsing speed (small get, 100-byte set), in requests/s.
.PHONY: bench-protocol
bench-protocol:
	$(CARGO) bench -p protocol --bench parse

# Benchmark matrix (bench/): front-end x connections x workload, each cell on a
# fresh server; raw outputs and a generated REPORT.md with SVG charts land in
# results/<run-id>/ (results/latest points at the newest). Change the matrix
# with FRONTENDS=, CONNECTIONS=, WORKLOADS=, DURATION= and WARMUP= (seconds per
# cell), ROUNDS= (repetitions, front-end order alternating), LOADS= (open-loop
# percentages); results/README.md describes them.
BENCH_FLAGS = $(if $(FRONTENDS),--frontends $(FRONTENDS)) \
	$(if $(CONNECTIONS),--connections $(CONNECTIONS)) \
	$(if $(WORKLOADS),--workloads $(WORKLOADS)) \
	$(if $(DURATION),--duration $(DURATION)) \
	$(if $(WARMUP),--warmup $(WARMUP)) \
	$(if $(ROUNDS),--rounds $(ROUNDS)) \
	$(if $(LOADS),--loads $(LOADS))
bench:
	$(CARGO) build --release -p bench -p loadgen
	$(CARGO) run --release -q -p bench -- run --preset default $(BENCH_FLAGS)

bench-full:
	$(CARGO) build --release -p bench -p loadgen
	$(CARGO) run --release -q -p bench -- run --preset full $(BENCH_FLAGS)

# 1, 2 and 3 server-eventloop backends on 127.0.0.11-13, driven directly by
# loadgen with ketama and through nutcracker: throughput, latency and the
# proxy's CPU per request, by the same method and report as `make bench`
# (same flags). On one machine the backends share the server cores, and the
# report says what that can and cannot show. Needs nutcracker.
.PHONY: bench-cluster
bench-cluster:
	$(CARGO) build --release -p bench -p loadgen
	$(CARGO) run --release -q -p bench -- run --preset cluster $(BENCH_FLAGS)

# Both servers at BASE (a git revision) against the working tree on the
# request paths a front-end change touches (small gets, sets, multi-gets,
# 64 KiB gets, 512 connections): ops/s, server CPU per request and loadgen's
# CPU, interleaved rounds, the median and min-max of the ratios new/old.
# ROUNDS= (default 3), WORKLOADS= (default all; see the script).
.PHONY: bench-servers-compare bench-large-gets
bench-servers-compare:
	$(if $(BASE),,$(error BASE=<git rev> is required))
	CARGO=$(CARGO) bash bench/scripts/servers-compare.sh $(BASE) $(or $(ROUNDS),3) $(WORKLOADS)

# The same, on 64 KiB gets only.
bench-large-gets:
	$(MAKE) bench-servers-compare WORKLOADS=large-get

# Re-render a run's REPORT.md and charts from its raw outputs:
# make report RUN=results/<run-id> (default: results/latest).
report:
	$(CARGO) run --release -q -p bench -- report $(or $(RUN),results/latest)

# Two runs point by point: make compare A=results/<before> B=results/<after>
# writes results/compare_<a>_vs_<b>.md (faster, slower, no clear difference).
.PHONY: compare
compare:
	@test -n "$(A)" -a -n "$(B)" || { echo "usage: make compare A=results/<run> B=results/<run>"; exit 2; }
	$(CARGO) run --release -q -p bench -- compare $(A) $(B)

clean:
	$(CARGO) clean
