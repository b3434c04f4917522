#!/usr/bin/env bash
# Highest closed-loop request rate of loadgen vs memcaslap against one memcached,
# same load for both: one client thread, 50 connections, get/set 9:1, 16-byte
# keys, 32-byte values. memcached and the client run on different cores.
#
# memcaslap keeps one request in flight per connection, so the like-for-like
# figure is loadgen with --pipeline 1. A second loadgen run with DEEP requests
# in flight per connection shows the highest rate loadgen itself reaches.
#
# The three runs are repeated ROUNDS times, interleaved so that other load on
# the machine falls on all of them alike, and the best rate of each is compared.
#
# Environment: LOADGEN (binary), DURATION (seconds, 10), ROUNDS (3),
# SERVER_CORE (0), CLIENT_CORE (1), MEMCACHED_THREADS (1), PIPELINE (1),
# DEEP (8; 0 skips), OUT (directory for loadgen's outputs; temporary by default).
set -euo pipefail

LOADGEN=${LOADGEN:-target/release/loadgen}
DURATION=${DURATION:-10}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
MEMCACHED_THREADS=${MEMCACHED_THREADS:-1}
PIPELINE=${PIPELINE:-1}
DEEP=${DEEP:-8}
ROUNDS=${ROUNDS:-3}

for tool in memcached memcaslap taskset "$LOADGEN"; do
    command -v "$tool" >/dev/null || { echo "bench-loadgen: $tool not found" >&2; exit 1; }
done

work=$(mktemp -d)
OUT=${OUT:-$work/loadgen}
mc_pid=
cleanup() {
    if [ -n "$mc_pid" ]; then kill "$mc_pid" 2>/dev/null || true; wait "$mc_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=
for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 20000))
    if port_free "$candidate"; then port=$candidate; break; fi
done
[ -n "$port" ] || { echo "bench-loadgen: no free port" >&2; exit 1; }

user_flag=()
[ "$(id -u)" = 0 ] && user_flag=(-u nobody)
taskset -c "$SERVER_CORE" memcached -l 127.0.0.1 -p "$port" -U 0 -t "$MEMCACHED_THREADS" \
    -m 1024 -c 4096 "${user_flag[@]}" &
mc_pid=$!
for _ in $(seq 1 100); do
    port_free "$port" || break
    sleep 0.05
done

cat >"$work/memcaslap.cfg" <<'CFG'
key
16 16 1
value
32 32 1
cmd
0 0.1
1 0.9
CFG

echo "memcached 127.0.0.1:$port (pid $mc_pid, $MEMCACHED_THREADS thread(s), core $SERVER_CORE); clients on core $CLIENT_CORE; ${DURATION}s per run, $ROUNDS rounds"

run_memcaslap() {
    taskset -c "$CLIENT_CORE" memcaslap -s "127.0.0.1:$port" -T 1 -c 50 -t "${DURATION}s" \
        -F "$work/memcaslap.cfg" >"$work/memcaslap.txt" 2>&1
    rate=$(grep -o 'TPS: [0-9]*' "$work/memcaslap.txt" | tail -1 | awk '{print $2}')
    [ -n "$rate" ] || { cat "$work/memcaslap.txt" >&2; echo "bench-loadgen: no TPS from memcaslap" >&2; exit 1; }
}

# run_loadgen DEPTH ROUND: output in $OUT/pipeline-DEPTH-ROUND.
run_loadgen() {
    local dir="$OUT/pipeline-$1-$2"
    taskset -c "$CLIENT_CORE" "$LOADGEN" run --server "127.0.0.1:$port" --threads 1 \
        --connections 50 --pipeline "$1" --duration "${DURATION}s" --warmup 1s \
        --keys 100000 --key-size 16 --value-size 32 --mix get=90,set=10 --preload \
        --quiet --out "$dir" >"$work/loadgen.txt"
    rate=$(grep -m1 '"throughput_ops_per_s"' "$dir/summary.json" | tr -dc '0-9.')
    p99=$(grep -m1 '"p99"' "$dir/summary.json" | sed 's/[^:]*: *//; s/,//')
}

max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }
best_ms=0
best_lg=0
best_deep=0
for round in $(seq 1 "$ROUNDS"); do
    run_memcaslap
    best_ms=$(max "$best_ms" "$rate")
    printf 'round %s: memcaslap %.0f ops/s' "$round" "$rate"
    run_loadgen "$PIPELINE" "$round"
    best_lg=$(max "$best_lg" "$rate")
    printf ', loadgen pipeline %s %.0f ops/s (p99 %s us)' "$PIPELINE" "$rate" "$p99"
    if [ "$DEEP" -gt 0 ]; then
        run_loadgen "$DEEP" "$round"
        best_deep=$(max "$best_deep" "$rate")
        printf ', loadgen pipeline %s %.0f ops/s (p99 %s us)' "$DEEP" "$rate" "$p99"
    fi
    echo
done

printf 'memcaslap best:              %.0f ops/s\n' "$best_ms"
printf 'loadgen best, pipeline %s:    %.0f ops/s\n' "$PIPELINE" "$best_lg"
awk -v a="$best_lg" -v b="$best_ms" 'BEGIN { printf "ratio loadgen/memcaslap, same load (one request in flight per connection): %.2f\n", a / b }'
if [ "$DEEP" -gt 0 ]; then
    printf 'loadgen best, pipeline %s:    %.0f ops/s\n' "$DEEP" "$best_deep"
    awk -v a="$best_deep" -v b="$best_ms" 'BEGIN { printf "ratio loadgen/memcaslap, highest rate: %.2f\n", a / b }'
fi
