#!/usr/bin/env bash
# Both servers at a base revision against the working tree, on the request
# paths a front-end change touches.
#
#   bench/scripts/servers-compare.sh BASE [ROUNDS] [WORKLOAD...]
#
# Workloads (default: all), each on a fresh data directory (durability none),
# preloaded, 16 connections unless named, 3 s after a 0.5 s warm-up:
#   get        gets of 100-byte values (10,000 keys)
#   set        sets of 100-byte values
#   mget       multi-gets of 10 keys, 100-byte values
#   large-get  gets of 64 KiB values (1,000 keys): the zero-copy path
#   get-512    gets of 100-byte values over 512 connections
#
# Builds server-threadpool, server-eventloop and loadgen (release) at BASE in
# a temporary git worktree and from the working tree, then in interleaved
# rounds (old new twin, twin new old, ...) starts each server on core 0 and
# drives it from core 1 with the working tree's loadgen; the twin is the
# old build run again, an A/A pair that measures the noise. Prints, per
# round, ops/s, the server's CPU microseconds per request (user + system
# from /proc/<pid>/stat over warm-up and measurement) and loadgen's own CPU
# use (near 100 % means the client, not the server, bounded the rate); then
# per server and workload the median and min-max of the per-round ratios
# new/old, and the noise floor: the largest distance from 1 of a twin/old
# ratio. A difference is real only when every round's ratio lies beyond
# the floor on the same side. Run it on a quiet machine.
set -euo pipefail
export LC_ALL=C

usage="usage: servers-compare.sh BASE [ROUNDS] [WORKLOAD...]"
base=${1:?$usage}
shift
rounds=3
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
	rounds=$1
	shift
fi
workloads=("$@")
[[ ${#workloads[@]} -eq 0 ]] && workloads=(get set mget large-get get-512)

# The loadgen flags of a workload: key space and values, then the mix.
workload_flags() {
	case $1 in
	get) echo "--keys 10000 --value-size 100 --connections 16 --mix get=1" ;;
	set) echo "--keys 10000 --value-size 100 --connections 16 --mix set=1" ;;
	mget) echo "--keys 10000 --value-size 100 --connections 16 --mix mget=1 --mget-keys 10" ;;
	large-get) echo "--keys 1000 --value-size 65536 --connections 16 --mix get=1" ;;
	get-512) echo "--keys 10000 --value-size 100 --connections 512 --mix get=1" ;;
	*)
		echo "unknown workload $1 (get, set, mget, large-get, get-512)" >&2
		return 1
		;;
	esac
}
for w in "${workloads[@]}"; do workload_flags "$w" >/dev/null; done

# shellcheck source=bench/scripts/revision.sh
source "$(dirname "$0")/revision.sh"
revision_setup "$base"
pids=()
kill_servers() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
revision_cleanup_hooks+=(kill_servers)
revision_build_both server-threadpool server-eventloop loadgen
loadgen="$work/new/loadgen"
ticks=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

for ((r = 1; r <= rounds; r++)); do
	if ((r % 2)); then order=(old new twin); else order=(twin new old); fi
	for workload in "${workloads[@]}"; do
		read -ra flags <<<"$(workload_flags "$workload")"
		for which in "${order[@]}"; do
			for server in server-eventloop server-threadpool; do
				data=$(mktemp -d "$work/data.XXXX")
				build=$which
				[[ $which == twin ]] && build=old
				taskset -c 0 "$work/$build/$server" --listen 127.0.0.1:0 --data-dir "$data" \
					--log-level warn --durability none >"$data/out" 2>&1 &
				pid=$!
				pids+=("$pid")
				for _ in $(seq 100); do grep -q "listening on" "$data/out" && break; sleep 0.1; done
				addr=$(sed -n 's/^listening on \([^ ,]*\).*/\1/p' "$data/out" | head -1)
				taskset -c 1 "$loadgen" run --server "$addr" "${flags[@]}" --preload \
					--duration 0.2s --quiet >/dev/null
				before=$(cpu_ticks "$pid")
				taskset -c 1 "$loadgen" run --server "$addr" "${flags[@]}" \
					--warmup 0.5s --duration 3s --quiet --out "$data/lg" >/dev/null
				after=$(cpu_ticks "$pid")
				kill "$pid"
				wait "$pid" 2>/dev/null || true
				python3 - "$data/lg/summary.json" "$before" "$after" "$ticks" \
					"$r" "$workload" "$which" "$server" >>"$work/rows" <<'PY'
import json, sys
path, before, after, ticks, r, workload, which, server = sys.argv[1:]
s = json.load(open(path))
n = s["total"]["completed"] + s["warmup_completed"]
us = (int(after) - int(before)) / int(ticks) / max(n, 1) * 1e6
cpu = s.get("client_cpu") or {}
client = (cpu.get("user_s", 0) + cpu.get("system_s", 0)) / max(cpu.get("wall_s", 0), 1e-9)
print(r, workload, which, server, round(s["throughput_ops_per_s"]), round(us, 2), round(client * 100))
PY
				tail -1 "$work/rows" | awk '{printf "round %s %-9s %-4s %-18s %8d ops/s %7.2f us CPU/request, loadgen CPU %s%%\n", $1, $2, $3, $4, $5, $6, $7}' >&2
				rm -rf "$data"
			done
		done
	done
done

echo
echo "new/old: base ${base_rev:0:12} vs working tree, $rounds rounds (each with an A/A twin of the base), server on core 0, loadgen on core 1"
python3 - "$work/rows" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
by, client, order = {}, {}, []
for r, workload, which, server, ops, us, cpu in rows:
    by.setdefault((workload, server, r), {})[which] = (float(ops), float(us))
    client.setdefault((workload, server), []).append(int(cpu))
    if (workload, server) not in order:
        order.append((workload, server))
for workload, server in order:
    rounds = [v for (w, s, _), v in by.items() if w == workload and s == server and "new" in v and "old" in v]
    for i, name in ((0, "ops/s"), (1, "CPU/request")):
        ratios = [v["new"][i] / v["old"][i] for v in rounds]
        twins = [v["twin"][i] / v["old"][i] for v in rounds if "twin" in v]
        if not ratios:
            continue
        lo, hi = min(ratios), max(ratios)
        floor = max((abs(1 - t) for t in twins), default=0.0)
        if lo > 1 + floor or hi < 1 - floor:
            verdict = "every round beyond the floor: a difference"
        else:
            verdict = "no clear difference"
        print(f"{workload:<9} {server:<18} {name:<12} median {statistics.median(ratios):.2f}x  "
              f"min-max {lo:.2f}-{hi:.2f}  A/A floor {floor * 100:.0f} %  ({len(ratios)} rounds; {verdict})")
    c = client[(workload, server)]
    print(f"{workload:<9} {server:<18} loadgen CPU {min(c)}-{max(c)} %")
PY
