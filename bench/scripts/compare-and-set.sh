#!/usr/bin/env bash
# A compare-and-set of one key, as a command and as a script: Ember's `SET lock tok IFEQ tok`
# (Redis 8.4's form) against the Lua script a Redis 7 user writes for it (GET, compare, SET),
# run by EVALSHA on Ember and on redis-server. Server pinned to CPU 0 (Ember one shard,
# --busy-poll-us 0), redis-benchmark pinned to CPU 1, 50 clients, REQUESTS requests (200,000
# by default), pipelines 1 and 16, servers alternating ROUNDS times (3). Prints requests per
# second and the server's CPU per request (user + system time from /proc/PID/stat), then the
# medians.
#
#   REQUESTS=200000 bash bench/scripts/compare-and-set.sh EMBER [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
ember=$1; rounds=${2:-3}
requests=${REQUESTS:-200000}
script="if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2]) end return false"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 1 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)
results=$(mktemp)
trap 'rm -f "$results"' EXIT
# run NAME CASE PORT PID PIPELINE COMMAND...: one redis-benchmark run, its figures recorded.
run() {
    local name=$1 case=$2 port=$3 pid=$4 pipeline=$5; shift 5
    redis-cli -p "$port" set lock tok >/dev/null
    local start rps ticks us
    start=$(cpu_ticks "$pid")
    rps=$(taskset -c 1 redis-benchmark -p "$port" -P "$pipeline" -n "$requests" -c 50 -q "$@" \
          | tr '\r' '\n' | grep "requests per second" | sed -E 's/.*: ([0-9.]+) requests.*/\1/')
    ticks=$(( $(cpu_ticks "$pid") - start ))
    us=$(python3 -c "print(f'{$ticks * 1e6 / $ticks_per_second / $requests:.2f}')")
    [ "$(redis-cli -p "$port" get lock)" = tok ] || { echo "$name $case: the key changed" >&2; exit 1; }
    echo "$case $name pipeline $pipeline: $rps req/s, server CPU $us us/request"
    echo "$case $name $pipeline $rps $us" >>"$results"
}
server() {
    local name=$1; shift
    local port; port=$(free_port)
    taskset -c 0 "$@" --port "$port" >/dev/null 2>&1 &
    local pid=$!
    wait_ready "$port"
    local sha; sha=$(redis-cli -p "$port" script load "$script")
    for pipeline in 1 16; do
        if [ "$name" = ember ]; then
            run "$name" set-ifeq "$port" "$pid" "$pipeline" SET lock tok IFEQ tok
        fi
        run "$name" evalsha "$port" "$pid" "$pipeline" EVALSHA "$sha" 1 lock tok tok
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq 1 "$rounds"); do
    server ember "$ember" --bind 127.0.0.1 --threads 1 --busy-poll-us 0
    server redis redis-server --bind 127.0.0.1 --save "" --appendonly no
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" <<'PY'
import statistics, sys
figures = {}
for line in open(sys.argv[1]):
    case, name, pipeline, rps, us = line.split()
    figures.setdefault(pipeline, {}).setdefault(f"{name} {case}", []).append((float(rps), float(us)))
for pipeline, by in sorted(figures.items()):
    medians = {key: (statistics.median(r for r, _ in v), statistics.median(u for _, u in v))
               for key, v in by.items()}
    print(f"median pipeline {pipeline}:")
    base = medians.get("redis evalsha")
    for key, (rps, us) in medians.items():
        ratio = f", {rps / base[0]:.2f}x Redis's script, CPU {base[1] / us:.2f}x cheaper" if base and key != "redis evalsha" else ""
        print(f"  {key}: {rps:,.0f} req/s, {us:.2f} us/request{ratio}")
PY
