#!/usr/bin/env bash
# Throughput of server-threadpool next to memcached 1.6 under the same
# memcaslap load: 90% get / 10% set, 32-byte values, at several connection
# counts. Both servers run at once on free loopback ports, pinned to the same
# core(s); memcaslap runs pinned to the other core(s), so client and server do
# not compete for a CPU. Prints a table of ops/s, their ratio, and the server
# CPU time each operation cost.
#
# Knobs (environment):
#   CONNS="1 8 64 150"    connection counts (memcaslap --concurrency)
#   DURATION=5s           length of each memcaslap run
#   ROUNDS=3              runs per server and connection count, interleaved
#                         (threadpool, memcached, threadpool, ...) so a burst
#                         of other work on the machine hits both; the table
#                         shows the median
#   WORKERS=150           server-threadpool worker threads (KingServer's number)
#   MEMCACHED_THREADS     memcached -t; default: as many as the server's cores,
#                         so both servers get the same CPU to work with
#   DURABILITY=none       server-threadpool --durability (memcached keeps nothing)
#   SERVER_CPUS / CLIENT_CPUS   taskset CPU lists; default 0 / 1 on 2+ cores
#   BIN                   a prebuilt server-threadpool binary (skips the build)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
CONNS=${CONNS:-"1 8 64 150"}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-150}
DURABILITY=${DURABILITY:-none}

bench_hint="apt-get install libmemcached-tools memcached"
# shellcheck source=SCRIPTDIR/../../bench/scripts/memcaslap-common.sh
. "$root/bench/scripts/memcaslap-common.sh"
default_cpus
if [ -n "${SERVER_CPUS:-}" ]; then
    MEMCACHED_THREADS=${MEMCACHED_THREADS:-$(cpu_count "$SERVER_CPUS")}
else
    MEMCACHED_THREADS=${MEMCACHED_THREADS:-$cpus}
fi
set_pins "${SERVER_CPUS:-}" "${CLIENT_CPUS:-}"

need_tools memcaslap memcached

if [ -z "${BIN:-}" ]; then
    (cd "$root" && cargo build --release -q -p server-threadpool)
    BIN=${CARGO_TARGET_DIR:-$root/target}/release/server-threadpool
fi

# The server starts in the background straight from this shell, not through
# a function run in a subshell, so that $! is its own PID (see set_pins).
tp_port=$(free_port)
"${pin_server[@]}" "$BIN" --listen "127.0.0.1:$tp_port" --data-dir "$work/data" \
    --threads "$WORKERS" --durability "$DURABILITY" >"$work/threadpool.log" 2>&1 &
tp_pid=$!
pids+=("$tp_pid")
wait_listening "$tp_port"

start_memcached "$MEMCACHED_THREADS" 4096

# Prints "<ops/s> <server CPU µs per op>" for one memcaslap run. CPU per
# operation is the steadier figure on a machine shared with other work:
# contention lowers ops/s but barely changes what each operation costs.
measure() { # measure <port> <server pid> <connections>
    local before after
    before=$(cpu_ticks "$2")
    run_memcaslap "$1" "$3" "$DURATION"
    after=$(cpu_ticks "$2")
    awk -v tps="$(memcaslap_stat TPS)" -v ops="$(memcaslap_stat Ops)" -v ticks=$((after - before)) -v hz="$ticks_per_s" '
        BEGIN { if (tps == "") tps = 0; printf "%d %.1f\n", tps, (ops > 0 ? ticks / hz * 1e6 / ops : 0) }'
}

echo "memcaslap 90% get / 10% set, 32-byte values, median of $ROUNDS interleaved ${DURATION} runs"
echo "server-threadpool: $WORKERS workers, durability $DURABILITY; memcached: $MEMCACHED_THREADS threads"
echo "server cpus: ${SERVER_CPUS:-any}, client cpus: ${CLIENT_CPUS:-any}"
echo

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

printf '%-12s %16s %16s %7s %14s %14s\n' connections threadpool_ops/s memcached_ops/s ratio tp_cpu_us/op mc_cpu_us/op
for c in $CONNS; do
    tps="" mcs="" tcpu="" mcpu=""
    for _ in $(seq 1 "$ROUNDS"); do
        read -r t u <<<"$(measure "$tp_port" "$tp_pid" "$c")"
        tps="$tps $t" tcpu="$tcpu $u"
        read -r t u <<<"$(measure "$mc_port" "$mc_pid" "$c")"
        mcs="$mcs $t" mcpu="$mcpu $u"
    done
    tp=$(median <<<"$tps")
    mc=$(median <<<"$mcs")
    ratio=$(awk -v a="$tp" -v b="$mc" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    printf '%-12s %16.0f %16.0f %7s %14s %14s\n' "$c" "$tp" "$mc" "$ratio" "$(median <<<"$tcpu")" "$(median <<<"$mcpu")"
done
