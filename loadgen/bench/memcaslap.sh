#!/usr/bin/env bash
# Highest closed-loop request rate of loadgen vs memcaslap against one memcached,
# same load for both: one client thread, 50 connections, get/set 9:1, 16-byte
# keys, 32-byte values. memcached and the client run on different cores.
#
# Each round runs, one after the other:
#   memcaslap            one request in flight per connection (all it can do)
#   loadgen classic 1    the same load: classic get/set, pipeline 1
#   loadgen classic DEEP classic get/set, DEEP requests in flight per connection
#   loadgen meta DEEP    meta mg/ms, DEEP requests in flight per connection
# memcached answers every classic reply with its own write, pipelined or not,
# so the classic runs measure memcached's ceiling as much as the client's; it
# batches meta replies, so the meta run shows the highest rate loadgen reaches.
# Client CPU per request (user + system, from the shell's `times`) compares
# the clients' own cost whichever side is the bottleneck.
#
# The runs are repeated ROUNDS times, interleaved so that other load on the
# machine falls on all of them alike; the report gives the median of each.
#
# Environment: LOADGEN (binary), DURATION (seconds, 10), ROUNDS (3),
# SERVER_CORE (0), CLIENT_CORE (1), MEMCACHED_THREADS (1), DEEP (8),
# OUT (directory for loadgen's outputs; temporary by default).
set -euo pipefail

LOADGEN=${LOADGEN:-target/release/loadgen}
DURATION=${DURATION:-10}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
MEMCACHED_THREADS=${MEMCACHED_THREADS:-1}
DEEP=${DEEP:-8}
ROUNDS=${ROUNDS:-3}

bench_name=bench-loadgen bench_status=1
# shellcheck source=SCRIPTDIR/../../bench/scripts/memcaslap-common.sh
. "$(dirname "$0")/../../bench/scripts/memcaslap-common.sh"
need_tools memcached memcaslap taskset "$LOADGEN"
set_pins "$SERVER_CORE" "$CLIENT_CORE"
OUT=${OUT:-$work/loadgen}

start_memcached "$MEMCACHED_THREADS" 4096

echo "memcached $(memcached -V | awk '{ print $2 }') on 127.0.0.1:$mc_port (pid $mc_pid, $MEMCACHED_THREADS thread(s), core $SERVER_CORE); clients on core $CLIENT_CORE; ${DURATION}s per run, $ROUNDS rounds"

# timed <output file> <command...>: runs the command with its output in the
# file; sets status, and cpu_s to the CPU seconds (user + system) it used.
timed() {
    local out=$1 report
    shift
    report=$({
        status=0
        "$@" >"$out" 2>&1 || status=$?
        echo "$status"
        times
    })
    status=$(sed -n 1p <<<"$report")
    # `times` prints the shell's own user/system times, then its children's.
    cpu_s=$(sed -n 3p <<<"$report" | awk '{
        t = 0
        for (i = 1; i <= 2; i++) { split($i, p, "m"); t += p[1] * 60 + p[2] }
        print t }')
}

# measure NAME: one run of the client NAME; sets rate and cpu_us (client CPU
# per request, in microseconds).
measure() {
    local name=$1 ops
    case $name in
    memcaslap)
        timed /dev/null run_memcaslap "$mc_port" 50 "${DURATION}s"
        rate=$(memcaslap_stat TPS)
        ops=$(memcaslap_stat Ops)
        [ -n "$rate" ] || { cat "$work/run.out" >&2; bench_fail "no TPS from memcaslap"; }
        ;;
    *)
        local protocol=${name%-*} depth=${name#*-} dir="$OUT/$name-$round"
        timed "$work/loadgen.txt" "${pin_client[@]}" "$LOADGEN" run --server "127.0.0.1:$mc_port" \
            --threads 1 --connections 50 --protocol "$protocol" --pipeline "$depth" \
            --duration "${DURATION}s" --warmup 1s --keys 100000 --key-size 16 \
            --value-size 32 --mix get=90,set=10 --preload --quiet --out "$dir"
        [ "$status" -eq 0 ] || { cat "$work/loadgen.txt" >&2; bench_fail "loadgen $name failed"; }
        rate=$(grep -m1 '"throughput_ops_per_s"' "$dir/summary.json" | tr -dc '0-9.')
        # Every request the client sent, warm-up and preload included, for
        # the CPU it used on all of them.
        ops=$(awk -v r="$rate" -v d="$DURATION" 'BEGIN { printf "%.0f", r * d }')
        ops=$((ops + $(grep -m1 '"warmup_completed"' "$dir/summary.json" | tr -dc '0-9') + 100000))
        ;;
    esac
    cpu_us=$(awk -v c="$cpu_s" -v n="$ops" 'BEGIN { printf "%.2f", c * 1e6 / n }')
}

clients=(memcaslap "classic-1" "classic-$DEEP" "meta-$DEEP")
declare -A rates cpus
for round in $(seq 1 "$ROUNDS"); do
    line="round $round:"
    for c in "${clients[@]}"; do
        measure "$c"
        rates[$c]+="$rate "
        cpus[$c]+="$cpu_us "
        line+=$(printf ' %s %.0f ops/s (%s us CPU/op);' "$c" "$rate" "$cpu_us")
    done
    echo "${line%;}"
done

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
base=$(median "${rates[memcaslap]}")
echo
printf '%-22s %12s %10s %16s\n' client "ops/s" "vs memcaslap" "client CPU us/op"
for c in "${clients[@]}"; do
    r=$(median "${rates[$c]}")
    printf '%-22s %12.0f %9.2fx %16s\n' "$c" "$r" "$(awk -v a="$r" -v b="$base" 'BEGIN { print a / b }')" "$(median "${cpus[$c]}")"
done
echo "(medians of $ROUNDS rounds; classic-1 is memcaslap's load, meta-$DEEP the highest rate)"
