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

bench_name=bench-loadgen bench_status=1
# shellcheck source=SCRIPTDIR/../../bench/scripts/memcaslap-common.sh
. "$(dirname "$0")/../../bench/scripts/memcaslap-common.sh"
need_tools memcached memcaslap taskset "$LOADGEN"
set_pins "$SERVER_CORE" "$CLIENT_CORE"
OUT=${OUT:-$work/loadgen}

start_memcached "$MEMCACHED_THREADS" 4096

echo "memcached 127.0.0.1:$mc_port (pid $mc_pid, $MEMCACHED_THREADS thread(s), core $SERVER_CORE); clients on core $CLIENT_CORE; ${DURATION}s per run, $ROUNDS rounds"

measure_memcaslap() {
    run_memcaslap "$mc_port" 50 "${DURATION}s"
    rate=$(memcaslap_stat TPS)
    [ -n "$rate" ] || { cat "$work/run.out" >&2; bench_fail "no TPS from memcaslap"; }
}

# run_loadgen DEPTH ROUND: output in $OUT/pipeline-DEPTH-ROUND.
run_loadgen() {
    local dir="$OUT/pipeline-$1-$2"
    "${pin_client[@]}" "$LOADGEN" run --server "127.0.0.1:$mc_port" --threads 1 \
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
    measure_memcaslap
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
