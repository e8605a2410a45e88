#!/usr/bin/env bash
# One client sending one request at a time (`redis-benchmark -c 1 -P 1`, as a web request that
# reads a few cache keys in turn), over 100,000 random keys: with Ember's default two shards
# half the requests are for the other shard's keys, so this measures a hop between shards at
# light load. Each server runs in its default configuration, unpinned, as `make run` starts it
# (Ember: one shard per core, its default busy polling), redis-benchmark unpinned too. Prints
# each run's requests per second, p50 latency and server CPU per request (utime+stime from
# /proc/PID/stat), then the medians. The servers alternate within each round.
#
#   bench/scripts/one-client.sh [ROUNDS] [REQUESTS] NAME=BINARY[:ARGS]...
#
# e.g. bench/scripts/one-client.sh 3 30000 before=/tmp/ember-old after=target/release/ember
# ARGS (after a colon, spaces as commas) are added to Ember's command line, e.g.
# one-shard=target/release/ember:--threads,1
set -euo pipefail
rounds=${1:-3}
requests=${2:-30000}
shift 2 || true
[ $# -gt 0 ] || set -- "ember=target/release/ember"
port=${PORT:-7990}
hz=$(getconf CLK_TCK)
results=$(mktemp)
trap 'rm -f "$results"' EXIT
run() { # run NAME SPEC TEST
    local name=$1 spec=$2 test=$3 pid binary args
    port=$((port + 1))
    if [ "$spec" = redis ]; then
        redis-server --port "$port" --save '' --appendonly no >/dev/null 2>&1 &
    else
        binary=${spec%%:*}
        args=""
        [ "$binary" != "$spec" ] && args=$(echo "${spec#*:}" | tr ',' ' ')
        # shellcheck disable=SC2086
        "$binary" --port "$port" --bind 127.0.0.1 $args >/dev/null 2>&1 &
    fi
    pid=$!
    for _ in $(seq 200); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
    local before after line
    before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    line=$(redis-benchmark -p "$port" -c 1 -n "$requests" -r 100000 -t "$test" --csv 2>/dev/null | tail -1)
    after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    local rps p50 cpu
    rps=$(echo "$line" | cut -d, -f2 | tr -d '"')
    p50=$(echo "$line" | cut -d, -f5 | tr -d '"')
    cpu=$(echo "scale=1; ($after - $before) * 1000000 / $hz / $requests" | bc)
    echo "$round $name $test $rps $p50 $cpu" | tee -a "$results" >&2
}
echo "start $(date -u '+%Y-%m-%d %H:%M UTC') load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq "$rounds"); do
    for test in get set; do
        run redis redis "$test"
        for spec in "$@"; do run "${spec%%=*}" "${spec#*=}" "$test"; done
    done
done
echo "end $(date -u '+%Y-%m-%d %H:%M UTC') load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "| server | test | requests/s | p50 ms | server CPU us per request |"
echo "|---|---|---:|---:|---:|"
for name in redis "${@%%=*}"; do
    for test in get set; do
        awk -v n="$name" -v t="$test" '$2 == n && $3 == t {print $4, $5, $6}' "$results" | python3 -c '
import statistics, sys
rows = [list(map(float, line.split())) for line in sys.stdin]
rps, p50, cpu = (statistics.median(column) for column in zip(*rows))
print(f"| '"$name"' | '"$test"' | {rps:,.0f} | {p50:.3f} | {cpu:.1f} |")'
    done
done
