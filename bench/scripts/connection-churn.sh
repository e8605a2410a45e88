#!/usr/bin/env bash
# A new connection per request (`redis-benchmark -k 0`, as a client without a connection pool
# runs): each server pinned to core 0 (Ember with one shard and no busy polling), redis-benchmark
# pinned to core 1, 10 clients, PING. Prints each run's requests per second, p50 latency (from
# the request's send to its reply; the accept is part of it) and server CPU per connection
# (utime+stime from /proc/PID/stat), then the medians. The servers alternate within each round.
#
#   bench/scripts/connection-churn.sh [ROUNDS] [REQUESTS] NAME=BINARY...
#
# e.g. bench/scripts/connection-churn.sh 3 20000 before=/tmp/ember-old after=target/release/ember
set -euo pipefail
rounds=${1:-3}
requests=${2:-20000}
shift 2 || true
[ $# -gt 0 ] || set -- "ember=target/release/ember"
port=${PORT:-7890}
hz=$(getconf CLK_TCK)
results=$(mktemp)
trap 'rm -f "$results"' EXIT
run() { # run NAME BINARY
    local name=$1 binary=$2 pid
    port=$((port + 1))
    if [ "$binary" = redis ]; then
        taskset -c 0 redis-server --port "$port" --save '' --appendonly no >/dev/null 2>&1 &
    else
        taskset -c 0 "$binary" --port "$port" --threads 1 --busy-poll-us 0 >/dev/null 2>&1 &
    fi
    pid=$!
    for _ in $(seq 200); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
    local before after line
    before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    line=$(taskset -c 1 redis-benchmark -p "$port" -c 10 -n "$requests" -k 0 -t ping_mbulk --csv 2>/dev/null | tail -1)
    after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    local rps p50 cpu
    rps=$(echo "$line" | cut -d, -f2 | tr -d '"')
    p50=$(echo "$line" | cut -d, -f5 | tr -d '"')
    cpu=$(echo "scale=1; ($after - $before) * 1000000 / $hz / $requests" | bc)
    echo "$round $name $rps $p50 $cpu" | tee -a "$results" >&2
}
echo "start $(date -u '+%Y-%m-%d %H:%M UTC') load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq "$rounds"); do
    run redis redis
    for spec in "$@"; do run "${spec%%=*}" "${spec#*=}"; done
done
echo "end $(date -u '+%Y-%m-%d %H:%M UTC') load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "| server | connections/s | p50 ms | server CPU us per connection |"
echo "|---|---:|---:|---:|"
for name in redis "${@%%=*}"; do
    awk -v n="$name" '$2 == n {print $3, $4, $5}' "$results" | python3 -c '
import statistics, sys
rows = [list(map(float, line.split())) for line in sys.stdin]
rps, p50, cpu = (statistics.median(column) for column in zip(*rows))
print(f"| '"$name"' | {rps:,.0f} | {p50:.3f} | {cpu:.1f} |")'
done
