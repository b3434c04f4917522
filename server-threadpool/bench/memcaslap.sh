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

cpus=$(nproc)
if [ "$cpus" -ge 2 ]; then
    SERVER_CPUS=${SERVER_CPUS:-0}
    CLIENT_CPUS=${CLIENT_CPUS:-1-$((cpus - 1))}
fi
server_cpu_count() {
    # Counts the CPUs in a taskset list such as "0", "0-3" or "0,2".
    local n=0 part
    IFS=, read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        if [[ $part == *-* ]]; then n=$((n + ${part#*-} - ${part%-*} + 1)); else n=$((n + 1)); fi
    done
    echo "$n"
}
if [ -n "${SERVER_CPUS:-}" ]; then
    MEMCACHED_THREADS=${MEMCACHED_THREADS:-$(server_cpu_count "$SERVER_CPUS")}
else
    MEMCACHED_THREADS=${MEMCACHED_THREADS:-$cpus}
fi

# Command prefixes that pin to the server's and the client's CPUs. Arrays,
# not a function: a server started through a function runs in a subshell,
# and $! would be the subshell's PID rather than the server's.
pin_server=() pin_client=()
if command -v taskset >/dev/null; then
    if [ -n "${SERVER_CPUS:-}" ]; then pin_server=(taskset -c "$SERVER_CPUS"); fi
    if [ -n "${CLIENT_CPUS:-}" ]; then pin_client=(taskset -c "$CLIENT_CPUS"); fi
fi

for tool in memcaslap memcached; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found (apt-get install libmemcached-tools memcached)" >&2; exit 2; }
done

if [ -z "${BIN:-}" ]; then
    (cd "$root" && cargo build --release -q -p server-threadpool)
    BIN=${CARGO_TARGET_DIR:-$root/target}/release/server-threadpool
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 20000))
        if port_is_free "$port"; then echo "$port"; return; fi
    done
    echo "bench: no free port found" >&2
    exit 2
}
wait_listening() {
    for _ in $(seq 1 100); do
        if ! port_is_free "$1"; then return; fi
        sleep 0.1
    done
    echo "bench: nothing listens on port $1" >&2
    exit 2
}

tp_port=$(free_port)
"${pin_server[@]}" "$BIN" --listen "127.0.0.1:$tp_port" --data-dir "$work/data" \
    --threads "$WORKERS" --durability "$DURABILITY" >"$work/threadpool.log" 2>&1 &
tp_pid=$!
pids+=("$tp_pid")
wait_listening "$tp_port"

mc_port=$(free_port)
mc_user=()
[ "$(id -u)" -eq 0 ] && mc_user=(-u nobody)
"${pin_server[@]}" memcached "${mc_user[@]}" -l 127.0.0.1 -p "$mc_port" -U 0 \
    -t "$MEMCACHED_THREADS" -c 4096 -m 1024 >"$work/memcached.log" 2>&1 &
mc_pid=$!
pids+=("$mc_pid")
wait_listening "$mc_port"

cat >"$work/load.cfg" <<'CFG'
key
16 16 1
value
32 32 1
cmd
0 0.1
1 0.9
CFG

# CPU time a process has used (all its threads), in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
ticks_per_s=$(getconf CLK_TCK)

# Prints "<ops/s> <server CPU µs per op>" for one memcaslap run. CPU per
# operation is the steadier figure on a machine shared with other work:
# contention lowers ops/s but barely changes what each operation costs.
measure() { # measure <port> <server pid> <connections>
    local before after
    before=$(cpu_ticks "$2")
    "${pin_client[@]}" memcaslap -s "127.0.0.1:$1" -F "$work/load.cfg" -t "$DURATION" \
        -T 1 -c "$3" >"$work/run.out" 2>&1 || true
    after=$(cpu_ticks "$2")
    awk -v ticks=$((after - before)) -v hz="$ticks_per_s" '
        /TPS:/ { for (i = 1; i < NF; i++) { if ($i == "TPS:") tps = $(i + 1); if ($i == "Ops:") ops = $(i + 1) } }
        END { if (tps == "") tps = 0; printf "%d %.1f\n", tps, (ops > 0 ? ticks / hz * 1e6 / ops : 0) }' "$work/run.out"
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
