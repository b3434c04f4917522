#!/usr/bin/env bash
# Compares engine-bench at a base revision with the working tree.
#
#   engine/bench/compare.sh BASE [ROUNDS] [-- engine-bench flags]
#
# Builds engine-bench (release) at BASE, in a temporary git worktree, and
# from the working tree, then runs them in interleaved rounds (old new
# twin, twin new old, ...) so drift of the machine hits both alike; the
# twin is the old binary run again, an A/A pair that measures the noise.
# Prints per workload the median and the min-max of the per-round ratios
# new/old of ops/s, the A/A floor, and whether every round lies beyond it.
# Default flags: --num 200000. Run it on a quiet machine.
set -euo pipefail
# sort and join must agree on the collation.
export LC_ALL=C

base=${1:?usage: compare.sh BASE [ROUNDS] [-- engine-bench flags]}
shift
rounds=5
if [[ $# -gt 0 && $1 != -- ]]; then
	rounds=$1
	shift
fi
[[ ${1:-} == -- ]] && shift
flags=("$@")
[[ ${#flags[@]} -eq 0 ]] && flags=(--num 200000)

# shellcheck source=bench/scripts/revision.sh
source "$(git rev-parse --show-toplevel)/bench/scripts/revision.sh"
revision_setup "$base"
revision_build_both engine:engine-bench

# Table rows of engine-bench: "| name | durability | threads | ops | ops/s | ...".
# Prints "workload ops/s" per row; a workload with several rows (e.g. value
# sizes) gets "#2", "#3", ... in the order engine-bench prints them.
rates() {
	awk -F'|' 'NF > 6 && $6 ~ /^ *[0-9]+ *$/ {
		gsub(/ /, "", $2); gsub(/ /, "", $3); gsub(/ /, "", $4); gsub(/ /, "", $6)
		w = $2 "/" $3 "/" $4 "t"
		if (++seen[w] > 1) w = w "#" seen[w]
		print w, $6
	}' "$1"
}

for ((r = 1; r <= rounds; r++)); do
	if ((r % 2)); then order=(old new twin); else order=(twin new old); fi
	for which in "${order[@]}"; do
		echo "round $r/$rounds: $which" >&2
		build=$which
		[[ $which == twin ]] && build=old
		"$work/$build/engine-bench" --dir "$work/data" "${flags[@]}" >"$work/$which.$r.out"
		rm -rf "$work/data"
	done
	join <(rates "$work/old.$r.out" | sort) <(rates "$work/new.$r.out" | sort) |
		awk '$2 > 0 { printf "%s %.4f\n", $1, $3 / $2 }' >>"$work/ratios"
	join <(rates "$work/old.$r.out" | sort) <(rates "$work/twin.$r.out" | sort) |
		awk '$2 > 0 { printf "%s %.4f\n", $1, $3 / $2 }' >>"$work/twins"
done

echo
echo "engine-bench new/old ops/s: base ${base_rev:0:12} vs working tree, $rounds rounds (each with an A/A twin of the base), flags: ${flags[*]}"
# Per workload: the median and min-max of new/old, the noise floor (the
# largest distance from 1 of a twin/old ratio), and the verdict: a
# difference only when every round's ratio lies beyond the floor on the
# same side.
python3 - "$work/ratios" "$work/twins" <<'PY'
import statistics, sys
def load(path):
    by = {}
    for line in open(path):
        name, ratio = line.split()
        by.setdefault(name, []).append(float(ratio))
    return by
ratios, twins = load(sys.argv[1]), load(sys.argv[2])
print(f"{'workload':<36} {'median':>8} {'min-max':>13} {'A/A floor':>10}  verdict")
for name in sorted(ratios):
    r = ratios[name]
    lo, hi = min(r), max(r)
    floor = max((abs(1 - t) for t in twins.get(name, [])), default=0.0)
    verdict = "a difference" if lo > 1 + floor or hi < 1 - floor else "no clear difference"
    print(f"{name:<36} {statistics.median(r):8.3f} {lo:6.3f}-{hi:.3f} {floor * 100:9.0f} %  {verdict}")
PY
