#!/usr/bin/env bash
# EVALSHA of examples/flash_sale.lua as bench/scripts/scenarios-bench.sh runs it (server pinned to
# CPU 0, Ember one shard with --busy-poll-us 0, redis-benchmark pinned to CPU 1, 50 clients,
# REQUESTS requests, 100,000 by default), for two Ember binaries (before and after a change) and
# redis-server, alternating ROUNDS times. Besides requests per second it prints the server's
# CPU per script (user + system time from /proc/PID/stat around the run, in microseconds per
# EVALSHA), the figure that holds best on a shared machine, and the medians at the end.
#
#   REQUESTS=100000 bash bench/scripts/evalsha-compare.sh BEFORE_EMBER AFTER_EMBER [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
before=$1; after=$2; rounds=${3:-3}
requests=${REQUESTS:-100000}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 1 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)
results=$(mktemp)
trap 'rm -f "$results"' EXIT
evalsha() {
    local name=$1; shift
    local port; port=$(free_port)
    taskset -c 0 "$@" --port "$port" >/dev/null 2>&1 &
    local pid=$!
    wait_ready "$port"
    local sha; sha=$(redis-cli -p "$port" script load "$(cat examples/flash_sale.lua)")
    for pipeline in 1 16; do
        redis-cli -p "$port" set '{sale}:stock' 1000000000 >/dev/null
        redis-cli -p "$port" del '{sale}:orders' >/dev/null
        local rps start ticks us
        start=$(cpu_ticks "$pid")
        rps=$(taskset -c 1 redis-benchmark -p "$port" -P "$pipeline" -n "$requests" -c 50 -q \
              EVALSHA "$sha" 2 '{sale}:stock' '{sale}:orders' 1 buyer \
              | tr '\r' '\n' | grep "requests per second" | sed -E 's/.*: ([0-9.]+) requests.*/\1/')
        ticks=$(( $(cpu_ticks "$pid") - start ))
        us=$(python3 -c "print(f'{$ticks * 1e6 / $ticks_per_second / $requests:.2f}')")
        echo "evalsha $name pipeline $pipeline: $rps req/s, server CPU $us us/script"
        echo "$name $pipeline $rps $us" >>"$results"
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
    evalsha before "$before" --bind 127.0.0.1 --threads 1 --busy-poll-us 0
    evalsha after "$after" --bind 127.0.0.1 --threads 1 --busy-poll-us 0
    evalsha redis redis-server --bind 127.0.0.1 --save "" --appendonly no
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" <<'PY'
import statistics, sys
figures = {}
for line in open(sys.argv[1]):
    name, pipeline, rps, us = line.split()
    figures.setdefault(pipeline, {}).setdefault(name, []).append((float(rps), float(us)))
for pipeline, by in figures.items():
    medians = {name: (statistics.median(r for r, _ in v), statistics.median(u for _, u in v))
               for name, v in by.items()}
    line = ", ".join(f"{name} {rps:,.0f} req/s {us:.2f} us/script" for name, (rps, us) in medians.items())
    print(f"median pipeline {pipeline}: {line}")
    if "redis" in medians:
        for name in ("before", "after"):
            if name in medians:
                rps, us = medians[name]
                print(f"  {name}/redis: throughput {rps / medians['redis'][0]:.2f}x, "
                      f"CPU per script {medians['redis'][1] / us:.2f}x (>1: Ember cheaper)")
PY
