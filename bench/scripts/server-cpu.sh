#!/usr/bin/env bash
# Requests per second, p50 latency and the server's CPU per request (utime+stime from
# /proc/PID/stat around the run) of redis-benchmark against redis-server and one or more Ember
# builds, each in its default configuration, unpinned, as `make run` starts it (Ember: one shard
# per core, its default busy polling), redis-benchmark unpinned too, over 100,000 random keys.
# The servers alternate within each round; prints every run, then the medians.
#
#   CLIENTS=50 PIPELINE=16 TESTS=get bash bench/scripts/server-cpu.sh [ROUNDS] [REQUESTS] NAME=BINARY[:ARGS]...
#
# CLIENTS (default 50), PIPELINE (default 16), TESTS (default get,set) and BENCH_ARGS (more
# options, e.g. "-k 0") go to redis-benchmark; FILL=1 (the default) SETs the keys first, so
# that GETs find values. PIN=1 pins each server to CPU 0 (Ember with one shard and no busy
# polling, `--threads 1 --busy-poll-us 0`) and redis-benchmark to CPU 1: issue 11's per-request
# cost. ARGS (after a colon, spaces as commas) are added to Ember's command line, e.g.
# one-shard=target/release/ember:--threads,1.
# With two cores and a client that needs one, this is where the hop between two shards shows:
# bench/RESULTS.md "Twenty-fourth session".
set -euo pipefail
rounds=${1:-3}
requests=${2:-2000000}
shift 2 || true
[ $# -gt 0 ] || set -- "ember=target/release/ember"
clients=${CLIENTS:-50}
pipeline=${PIPELINE:-16}
tests=${TESTS:-get,set}
fill=${FILL:-1}
bench_args=${BENCH_ARGS:-}
server_cpu=() client_cpu=() pinned_args=""
if [ "${PIN:-0}" = 1 ]; then
    server_cpu=(taskset -c 0) client_cpu=(taskset -c 1) pinned_args="--threads 1 --busy-poll-us 0"
fi
port=${PORT:-7990}
hz=$(getconf CLK_TCK)
results=$(mktemp)
trap 'rm -f "$results"' EXIT
run() { # run NAME SPEC TEST
    local name=$1 spec=$2 test=$3 pid binary args
    port=$((port + 1))
    if [ "$spec" = redis ]; then
        "${server_cpu[@]}" redis-server --port "$port" --save '' --appendonly no >/dev/null 2>&1 &
    else
        binary=${spec%%:*}
        args=""
        [ "$binary" != "$spec" ] && args=$(echo "${spec#*:}" | tr ',' ' ')
        # shellcheck disable=SC2086
        "${server_cpu[@]}" "$binary" --port "$port" --bind 127.0.0.1 $pinned_args $args \
            >/dev/null 2>&1 &
    fi
    pid=$!
    for _ in $(seq 200); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
    if [ "$fill" = 1 ]; then
        "${client_cpu[@]}" redis-benchmark -p "$port" -t set -n 200000 -r 100000 -P 16 -q \
            >/dev/null 2>&1
    fi
    local before after line
    before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    # shellcheck disable=SC2086
    line=$("${client_cpu[@]}" redis-benchmark -p "$port" -c "$clients" -P "$pipeline" \
        -n "$requests" -r 100000 -t "$test" $bench_args --csv 2>/dev/null | tail -1)
    after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    local rps p50 cpu
    rps=$(echo "$line" | cut -d, -f2 | tr -d '"')
    p50=$(echo "$line" | cut -d, -f5 | tr -d '"')
    cpu=$(echo "scale=3; ($after - $before) * 1000000 / $hz / $requests" | bc)
    echo "$round $name $test $rps $p50 $cpu" | tee -a "$results" >&2
}
echo "start $(date -u '+%Y-%m-%d %H:%M UTC') load $(cut -d' ' -f1-3 /proc/loadavg)" \
    "(-c $clients -P $pipeline)" >&2
for round in $(seq "$rounds"); do
    for test in ${tests//,/ }; do
        run redis redis "$test"
        for spec in "$@"; do run "${spec%%=*}" "${spec#*=}" "$test"; done
    done
done
echo "end $(date -u '+%Y-%m-%d %H:%M UTC') load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "| server | test | requests/s | p50 ms | server CPU us per request |"
echo "|---|---|---:|---:|---:|"
for name in redis "${@%%=*}"; do
    for test in ${tests//,/ }; do
        awk -v n="$name" -v t="$test" '$2 == n && $3 == t {print $4, $5, $6}' "$results" | python3 -c '
import statistics, sys
rows = [list(map(float, line.split())) for line in sys.stdin]
rps, p50, cpu = (statistics.median(column) for column in zip(*rows))
print(f"| '"$name"' | '"$test"' | {rps:,.0f} | {p50:.3f} | {cpu:.2f} |")'
    done
done
