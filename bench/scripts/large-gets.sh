#!/usr/bin/env bash
# Both servers at a base revision against the working tree, on reads of
# large values: the cost of a reply of one 64 KiB value.
#
#   bench/scripts/large-gets.sh BASE [ROUNDS]
#
# Builds server-threadpool, server-eventloop and loadgen (release) at BASE in
# a temporary git worktree and from the working tree, then in interleaved
# rounds (old new, new old, ...) starts each server on core 0 with a fresh
# data directory (durability none), preloads 1,000 values of 64 KiB, and
# drives it from core 1 with 16 connections of gets for 3 s. Prints, per
# server and round, ops/s and the server's CPU microseconds per request
# (user + system from /proc/<pid>/stat over warm-up and measurement), then
# the median and min-max of the per-round ratios new/old. The working
# tree's loadgen drives both. Run it on a quiet machine.
set -euo pipefail
export LC_ALL=C

base=${1:?usage: large-gets.sh BASE [ROUNDS]}
rounds=${2:-3}
root=$(git rev-parse --show-toplevel)
cargo=${CARGO:-cargo}
work=$(mktemp -d)
tree="$work/base-tree"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

base_rev=$(git -C "$root" rev-parse --verify "$base^{commit}")
git -C "$root" worktree add --detach "$tree" "$base_rev" >/dev/null
# Each tree builds into a target directory of its own: cargo names the
# artifacts of workspace members by their path inside the workspace, so two
# trees sharing one directory would take each other's builds for fresh.
build() {
	(cd "$1" && CARGO_TARGET_DIR="$3" "$cargo" build --release --quiet \
		-p server-threadpool -p server-eventloop -p loadgen)
	mkdir -p "$2"
	cp "$3/release/server-threadpool" "$3/release/server-eventloop" \
		"$3/release/loadgen" "$2/"
}
echo "building the servers at ${base_rev:0:12} and at the working tree" >&2
build "$tree" "$work/old" "$work/target-base"
build "$root" "$work/new" "${CARGO_TARGET_DIR:-$root/target}"
loadgen="$work/new/loadgen"
ticks=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

for ((r = 1; r <= rounds; r++)); do
	if ((r % 2)); then order=(old new); else order=(new old); fi
	for which in "${order[@]}"; do
		for server in server-eventloop server-threadpool; do
			data=$(mktemp -d "$work/data.XXXX")
			taskset -c 0 "$work/$which/$server" --listen 127.0.0.1:0 --data-dir "$data" \
				--log-level warn --durability none >"$data/out" 2>&1 &
			pid=$!
			pids+=("$pid")
			for _ in $(seq 100); do grep -q "listening on" "$data/out" && break; sleep 0.1; done
			addr=$(sed -n 's/^listening on \([^ ,]*\).*/\1/p' "$data/out" | head -1)
			taskset -c 1 "$loadgen" run --server "$addr" --keys 1000 --value-size 65536 \
				--mix get=1 --preload --connections 16 --duration 0.2s --quiet >/dev/null
			before=$(cpu_ticks "$pid")
			taskset -c 1 "$loadgen" run --server "$addr" --keys 1000 --value-size 65536 \
				--mix get=1 --connections 16 --warmup 0.5s --duration 3s --quiet \
				--out "$data/lg" >/dev/null
			after=$(cpu_ticks "$pid")
			kill "$pid"
			wait "$pid" 2>/dev/null || true
			python3 - "$data/lg/summary.json" "$before" "$after" "$ticks" "$r" "$which" "$server" \
				>>"$work/rows" <<'PY'
import json, sys
path, before, after, ticks, r, which, server = sys.argv[1:]
s = json.load(open(path))
n = s["total"]["completed"] + s["warmup_completed"]
us = (int(after) - int(before)) / int(ticks) / max(n, 1) * 1e6
print(r, which, server, round(s["throughput_ops_per_s"]), round(us, 2))
PY
			tail -1 "$work/rows" | awk '{printf "round %s %-4s %-18s %8d ops/s %7.2f us CPU/request\n", $1, $2, $3, $4, $5}' >&2
			rm -rf "$data"
		done
	done
done

echo
echo "64 KiB gets, new/old: base ${base_rev:0:12} vs working tree, $rounds rounds"
python3 - "$work/rows" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for r, which, server, ops, us in rows:
    by.setdefault((server, r), {})[which] = (float(ops), float(us))
for server in ("server-eventloop", "server-threadpool"):
    for i, name in ((0, "ops/s"), (1, "CPU/request")):
        ratios = [v["new"][i] / v["old"][i] for (s, _), v in by.items() if s == server and len(v) == 2]
        if ratios:
            print(f"{server:<18} {name:<12} median {statistics.median(ratios):.2f}x  "
                  f"min-max {min(ratios):.2f}-{max(ratios):.2f}  ({len(ratios)} rounds)")
PY
