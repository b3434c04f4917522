#!/usr/bin/env bash
# server-eventloop next to memcached 1.6 on this machine, in one run:
#
# 1. Throughput under the same memcaslap load (90% get / 10% set, 32-byte
#    values) at several connection counts, server-eventloop in both accept
#    modes and memcached with the same number of threads. All servers run at
#    once on free loopback ports, pinned to the same core(s); memcaslap runs
#    pinned to the other core(s). Prints ops/s and the ratios to memcached.
# 2. Resident memory per idle connection: N connections opened (one round
#    trip each) and left idle; VmRSS from /proc/<pid>/status before and after.
#
# Targets: ratio >= 1.00 at every connection count; <= 16384 bytes per idle
# connection at 10,000 connections.
#
# Knobs (environment):
#   CONNS="8 64 512"      connection counts (memcaslap --concurrency)
#   DURATION=5s           length of each memcaslap run
#   ROUNDS=3              runs per server and connection count, interleaved
#                         (server A, B, C, A, B, C, ...) so that a burst of
#                         other activity on the machine hits all alike; the
#                         table shows the median
#   IDLE=10000            idle connections for the RSS measurement (0: skip)
#   DURABILITY=none       server-eventloop --durability (memcached keeps nothing)
#   SERVER_CPUS / CLIENT_CPUS   taskset CPU lists; default 0 / 1-(n-1) on 2+ cores
#   THREADS               event loops and memcached -t; default: the server CPUs
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
CONNS=${CONNS:-"8 64 512"}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
IDLE=${IDLE:-10000}
DURABILITY=${DURABILITY:-none}

bench_hint="apt-get install libmemcached-tools memcached"
# shellcheck source=SCRIPTDIR/../../bench/scripts/memcaslap-common.sh
. "$root/bench/scripts/memcaslap-common.sh"
default_cpus
THREADS=${THREADS:-$(if [ -n "${SERVER_CPUS:-}" ]; then cpu_count "$SERVER_CPUS"; else echo "$cpus"; fi)}
set_pins "${SERVER_CPUS:-}" "${CLIENT_CPUS:-}"

need_tools memcaslap memcached

target=${CARGO_TARGET_DIR:-$root/target}
(cd "$root" && cargo build --release -q -p server-eventloop --bin server-eventloop --example idle_rss)
BIN=$target/release/server-eventloop
IDLE_RSS=$target/release/examples/idle_rss

# The client side of the idle measurement holds IDLE sockets.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Each server starts in the background straight from a shell that is not a
# subshell (start_eventloop is called directly), so that $! is its own PID.
start_eventloop() { # start_eventloop <name> <accept mode>; sets port_<name> and pid_<name>
    local port
    port=$(free_port)
    "${pin_server[@]}" "$BIN" --listen "127.0.0.1:$port" --data-dir "$work/data-$1" \
        --threads "$THREADS" --accept "$2" --durability "$DURABILITY" \
        --max-connections $((IDLE + 1024)) --log-level warn >"$work/$1.log" 2>&1 &
    pids+=($!)
    printf -v "pid_$1" '%s' "$!"
    wait_listening "$port"
    printf -v "port_$1" '%s' "$port"
}
start_eventloop reuseport reuseport
start_eventloop dispatch dispatch

start_memcached "$THREADS" $((IDLE + 1024))
port_memcached=$mc_port pid_memcached=$mc_pid

# Prints the ops/s of one memcaslap run ("... TPS: 38448 Net_rate: ...").
measure() { # measure <port> <connections>
    local tps
    run_memcaslap "$1" "$2" "$DURATION"
    tps=$(memcaslap_stat TPS)
    echo "${tps:-0}"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

echo "memcaslap 90% get / 10% set, 32-byte values, median of $ROUNDS interleaved ${DURATION} runs"
echo "server-eventloop: $THREADS loop(s), durability $DURABILITY; memcached: $THREADS thread(s)"
echo "server cpus: ${SERVER_CPUS:-any}, client cpus: ${CLIENT_CPUS:-any}"
echo
printf '%-12s %14s %14s %14s %10s %10s\n' connections reuseport dispatch memcached ratio_rp ratio_disp
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)) }'; }
for c in $CONNS; do
    rps="" dps="" mcs=""
    for _ in $(seq 1 "$ROUNDS"); do
        rps+=" $(measure "$port_reuseport" "$c")"
        dps+=" $(measure "$port_dispatch" "$c")"
        mcs+=" $(measure "$port_memcached" "$c")"
    done
    rp=$(median <<<"$rps") dp=$(median <<<"$dps") mc=$(median <<<"$mcs")
    printf '%-12s %14s %14s %14s %10s %10s\n' "$c" "$rp" "$dp" "$mc" "$(ratio "$rp" "$mc")" "$(ratio "$dp" "$mc")"
done

# memcaslap counts a request answered with an error as done: check that each
# server really executed the gets and sets, or the ratio means nothing.
stat_of() { # stat_of <port> <name>
    exec 3<>"/dev/tcp/127.0.0.1/$1"
    printf 'stats\r\nquit\r\n' >&3
    timeout 5 cat <&3 | tr -d '\r' | awk -v n="$2" '$1 == "STAT" && $2 == n { print $3 }'
    exec 3<&-
}
echo
for name in reuseport dispatch memcached; do
    port_var=port_$name
    gets=$(stat_of "${!port_var}" cmd_get)
    sets=$(stat_of "${!port_var}" cmd_set)
    user=$(stat_of "${!port_var}" rusage_user)
    sys=$(stat_of "${!port_var}" rusage_system)
    # Server CPU per operation does not depend on how busy the machine's
    # other cores are, unlike ops/s: the steadier figure on a shared machine.
    per_op=$(awk -v u="${user:-0}" -v s="${sys:-0}" -v g="${gets:-0}" -v t="${sets:-0}" \
        'BEGIN { if (g + t > 0) printf "%.2f", (u + s) * 1e6 / (g + t); else print "-" }')
    echo "$name executed: cmd_get ${gets:-?}, cmd_set ${sets:-?}; server CPU ${per_op} us per operation"
    if [ -n "$CONNS" ] && [ "${gets:-0}" -eq 0 ]; then
        echo "WARNING: $name executed no gets: memcaslap's requests were refused, its ops/s are not comparable" >&2
    fi
done

if [ "$IDLE" -gt 0 ]; then
    echo
    echo "resident memory per idle connection ($IDLE connections)"
    "$IDLE_RSS" --addr "127.0.0.1:$port_reuseport" --pid "$pid_reuseport" --connections "$IDLE" --label server-eventloop
    "$IDLE_RSS" --addr "127.0.0.1:$port_memcached" --pid "$pid_memcached" --connections "$IDLE" --label memcached
fi
