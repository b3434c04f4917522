#!/usr/bin/env bash
# Compares engine-bench at a base revision with the working tree.
#
#   engine/bench/compare.sh BASE [ROUNDS] [-- engine-bench flags]
#
# Builds engine-bench (release) at BASE, in a temporary git worktree, and
# from the working tree, then runs the two binaries in interleaved rounds
# (old new, new old, ...) so drift of the machine hits both alike, and
# prints per workload the median and the min-max of the per-round ratios
# new/old of ops/s. A ratio is noise unless the range clearly excludes 1.
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
	if ((r % 2)); then order=(old new); else order=(new old); fi
	for which in "${order[@]}"; do
		echo "round $r/$rounds: $which" >&2
		"$work/$which/engine-bench" --dir "$work/data" "${flags[@]}" >"$work/$which.$r.out"
		rm -rf "$work/data"
	done
	join <(rates "$work/old.$r.out" | sort) <(rates "$work/new.$r.out" | sort) |
		awk '$2 > 0 { printf "%s %.4f\n", $1, $3 / $2 }' >>"$work/ratios"
done

echo
echo "engine-bench new/old ops/s: base ${base_rev:0:12} vs working tree, $rounds rounds, flags: ${flags[*]}"
printf '%-36s %8s %17s\n' workload median min-max
sort -k1,1 -k2,2g "$work/ratios" | awk '
	function flush() {
		if (n == 0) return
		m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		printf "%-36s %8.3f %8.3f-%.3f\n", name, m, v[1], v[n]
	}
	$1 != name { flush(); name = $1; n = 0 }
	{ v[++n] = $2 }
	END { flush() }'
