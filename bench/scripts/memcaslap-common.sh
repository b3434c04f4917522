# shellcheck shell=bash
# Helpers shared by the memcaslap benchmarks (loadgen/bench/memcaslap.sh,
# server-eventloop/bench/memcaslap.sh, server-threadpool/bench/memcaslap.sh).
# Sourced, not run: the sourcing script has already done `set -euo pipefail`
# and may set, before sourcing,
#   bench_name     prefix of its error messages (default "bench")
#   bench_status   exit status when setup fails (default 2)
#   bench_hint     appended to "<tool> not found" messages
# Sourcing creates the scratch directory $work and the EXIT trap that stops
# every server listed in $pids (only those: the ones the script started).

bench_name=${bench_name:-bench}
bench_status=${bench_status:-2}
bench_hint=${bench_hint:-}

bench_fail() { echo "$bench_name: $*" >&2; exit "$bench_status"; }

need_tools() { # need_tools <command or path>...
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || bench_fail "$tool not found${bench_hint:+ ($bench_hint)}"
    done
}

# On 2+ cores, servers default to CPU 0 and clients to the others; sets $cpus.
default_cpus() {
    cpus=$(nproc)
    if [ "$cpus" -ge 2 ]; then
        SERVER_CPUS=${SERVER_CPUS:-0}
        CLIENT_CPUS=${CLIENT_CPUS:-1-$((cpus - 1))}
    fi
}

cpu_count() { # counts the CPUs in a taskset list such as "0", "0-3" or "0,2"
    local n=0 part parts
    IFS=, read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        if [[ $part == *-* ]]; then n=$((n + ${part#*-} - ${part%-*} + 1)); else n=$((n + 1)); fi
    done
    echo "$n"
}

# set_pins <server cpu list> <client cpu list>: sets the command prefixes
# pin_server and pin_client (empty without taskset or without a list).
# Arrays, not a function: a server started through a function that runs in
# a subshell (`pin ... &`) would leave $! holding the subshell's PID. With
# the prefix, taskset execs the server, so $! is the server's own PID: what
# is stopped at the end and what /proc/<pid> figures are read from.
set_pins() {
    pin_server=() pin_client=()
    if command -v taskset >/dev/null; then
        if [ -n "$1" ]; then pin_server=(taskset -c "$1"); fi
        if [ -n "$2" ]; then pin_client=(taskset -c "$2"); fi
    fi
}

work=$(mktemp -d)
pids=() # servers started by the script; each `cmd &` line appends its $!
cleanup() {
    local pid
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
    bench_fail "no free port found"
}
wait_listening() {
    for _ in $(seq 1 100); do
        if ! port_is_free "$1"; then return; fi
        sleep 0.1
    done
    bench_fail "nothing listens on port $1"
}

# start_memcached <threads> <max connections>: memcached on a free loopback
# port, pinned to the server CPUs; sets mc_port and mc_pid. Call it directly,
# never in $(...) or a pipeline: the `&` below then runs in the script's own
# shell, $! is memcached's PID and the PID lands in this shell's $pids.
start_memcached() {
    local as_user=()
    if [ "$(id -u)" -eq 0 ]; then as_user=(-u nobody); fi
    mc_port=$(free_port)
    "${pin_server[@]}" memcached "${as_user[@]}" -l 127.0.0.1 -p "$mc_port" -U 0 \
        -t "$1" -c "$2" -m 1024 >"$work/memcached.log" 2>&1 &
    mc_pid=$!
    pids+=("$mc_pid")
    wait_listening "$mc_port"
}

# The load: 16-byte keys, 32-byte values, get/set 9:1.
cat >"$work/load.cfg" <<'CFG'
key
16 16 1
value
32 32 1
cmd
0 0.1
1 0.9
CFG

# run_memcaslap <port> <connections> <duration>: one memcaslap run, one
# thread, pinned to the client CPUs; output in $work/run.out.
run_memcaslap() {
    "${pin_client[@]}" memcaslap -s "127.0.0.1:$1" -F "$work/load.cfg" -t "$3" \
        -T 1 -c "$2" >"$work/run.out" 2>&1 || true
}
# memcaslap_stat <field>: the number after "<field>:" on the summary line of
# the last run ("Run time: 5.0s Ops: 192237 TPS: 38448 Net_rate: 2.9M/s");
# empty if the run printed none.
memcaslap_stat() {
    awk -v f="$1:" '/TPS:/ { for (i = 1; i < NF; i++) if ($i == f) v = $(i + 1) } END { print v }' "$work/run.out"
}

# CPU time a process has used (all its threads), in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# shellcheck disable=SC2034 # used by the sourcing script
ticks_per_s=$(getconf CLK_TCK)
