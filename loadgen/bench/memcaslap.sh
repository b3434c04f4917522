#!/usr/bin/env bash
# Highest closed-loop request rate of loadgen vs memcaslap against one memcached,
# same load for both: one client thread, 50 connections, get/set 9:1, 16-byte
# keys, 32-byte values. memcached and the client run on different cores.
#
# memcaslap keeps one request in flight per connection, so the like-for-like
# figure is loadgen with --pipeline 1. A second loadgen run with DEEP requests
# in flight per connection shows the highest rate loadgen itself reaches.
#
# Environment: LOADGEN (binary), DURATION (seconds, 10), SERVER_CORE (0),
# CLIENT_CORE (1), MEMCACHED_THREADS (1), PIPELINE (1), DEEP (8; 0 skips),
# OUT (directory for loadgen's outputs; a temporary one by default).
set -euo pipefail

LOADGEN=${LOADGEN:-target/release/loadgen}
DURATION=${DURATION:-10}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
MEMCACHED_THREADS=${MEMCACHED_THREADS:-1}
PIPELINE=${PIPELINE:-1}
DEEP=${DEEP:-8}

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

echo "memcached 127.0.0.1:$port (pid $mc_pid, $MEMCACHED_THREADS thread(s), core $SERVER_CORE); clients on core $CLIENT_CORE; ${DURATION}s each"
taskset -c "$CLIENT_CORE" memcaslap -s "127.0.0.1:$port" -T 1 -c 50 -t "${DURATION}s" \
    -F "$work/memcaslap.cfg" >"$work/memcaslap.txt" 2>&1
ms_rate=$(grep -o 'TPS: [0-9]*' "$work/memcaslap.txt" | tail -1 | awk '{print $2}')
[ -n "$ms_rate" ] || { cat "$work/memcaslap.txt" >&2; echo "bench-loadgen: no TPS from memcaslap" >&2; exit 1; }

# run_loadgen DEPTH: runs loadgen, leaves its output in $OUT/pipeline-DEPTH.
run_loadgen() {
    local dir="$OUT/pipeline-$1"
    taskset -c "$CLIENT_CORE" "$LOADGEN" run --server "127.0.0.1:$port" --threads 1 \
        --connections 50 --pipeline "$1" --duration "${DURATION}s" --warmup 1s \
        --keys 100000 --key-size 16 --value-size 32 --mix get=90,set=10 --preload \
        --quiet --out "$dir" >"$work/loadgen-$1.txt"
    rate=$(grep -m1 '"throughput_ops_per_s"' "$dir/summary.json" | tr -dc '0-9.')
    p99=$(grep -m1 '"p99"' "$dir/summary.json" | sed 's/[^:]*: *//; s/,//')
}

printf 'memcaslap:             %.0f ops/s\n' "$ms_rate"
run_loadgen "$PIPELINE"
printf 'loadgen (pipeline %s):  %.0f ops/s, p99 %s us\n' "$PIPELINE" "$rate" "$p99"
awk -v a="$rate" -v b="$ms_rate" 'BEGIN { printf "ratio loadgen/memcaslap, same load: %.2f\n", a / b }'
if [ "$DEEP" -gt 0 ]; then
    run_loadgen "$DEEP"
    printf 'loadgen (pipeline %s):  %.0f ops/s, p99 %s us\n' "$DEEP" "$rate" "$p99"
    awk -v a="$rate" -v b="$ms_rate" 'BEGIN { printf "ratio loadgen/memcaslap, highest rate: %.2f\n", a / b }'
fi
