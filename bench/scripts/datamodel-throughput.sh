#!/usr/bin/env bash
# Issue 12's throughput check with Redis's own tool: redis-benchmark's LPUSH, LPOP, HSET, ZADD and
# XADD tests plus HGET and ZRANGE as custom commands, at pipeline 1 and 16 (50 connections,
# 100,000 requests, -r 100000), against Ember and redis-server in the same run. Each server runs
# alone, pinned to CPU 0 (Ember with one shard, --busy-poll-us 0), redis-benchmark pinned to
# CPU 1; the servers alternate ROUNDS times and the script prints every figure and the median
# ratio per test. These are single-key tests: every request of a test goes to one key, so one
# shard serves it whatever the shard count.
#
#   bash bench/scripts/datamodel-throughput.sh [ROUNDS]     (build first: cargo build --release)
#
# EMBER_BASELINE=path/to/other/ember adds that binary to every round as "ember-base" (a build
# of the commit before a change), so before and after alternate with Redis in one run;
# REQUESTS sets the requests per test (default 100,000); SETS=1 adds SADD and SISMEMBER (one set
# of up to 100,000 members, so past the listpack class into the hashtable one).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"
requests="${REQUESTS:-100000}"
baseline="${EMBER_BASELINE:-}"
sets="${SETS:-0}"
ember=./target/release/ember
[ -x "$ember" ] || { echo "build Ember first: cargo build --release --bin ember"; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {
    for _ in $(seq 1 200); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "server on port $1 did not start" >&2
    return 1
}
results=$(mktemp)
trap 'rm -f "$results"' EXIT

# bench NAME PORT PIPELINE: one line "NAME TEST PIPELINE RPS" per test.
bench() {
    local name=$1 port=$2 pipeline=$3
    local common=(-p "$port" -P "$pipeline" -n "$requests" -c 50 -r 100000 -q)
    {
        taskset -c 1 redis-benchmark "${common[@]}" -t lpush,lpop,hset,zadd
        taskset -c 1 redis-benchmark "${common[@]}" -t hset >/dev/null
        taskset -c 1 redis-benchmark "${common[@]}" HGET myhash element:__rand_int__ | tr '\r' '\n' | sed -E 's/^.*: ([0-9.]+ requests per second)/HGET: \1/'
        taskset -c 1 redis-benchmark "${common[@]}" -t zadd >/dev/null
        taskset -c 1 redis-benchmark "${common[@]}" ZRANGE myzset 0 9 | tr '\r' '\n' | sed -E 's/^.*: ([0-9.]+ requests per second)/ZRANGE 0 9: \1/'
        taskset -c 1 redis-benchmark "${common[@]}" XADD mystream '*' field __rand_int__ \
            | tr '\r' '\n' | sed -E 's/^.*: ([0-9.]+ requests per second)/XADD: \1/'
        if [ "$sets" = 1 ]; then
            taskset -c 1 redis-benchmark "${common[@]}" -t sadd
            taskset -c 1 redis-benchmark "${common[@]}" SISMEMBER myset element:__rand_int__ \
                | tr '\r' '\n' | sed -E 's/^.*: ([0-9.]+ requests per second)/SISMEMBER: \1/'
        fi
    } | tr '\r' '\n' | grep "requests per second" \
      | sed -E 's/^([^:]+): ([0-9.]+) requests per second.*/\1|\2/' \
      | while IFS='|' read -r test rps; do
            echo "$name|$test|$pipeline|$rps" | tee -a "$results"
        done
}

run() { # run NAME COMMAND...
    local name=$1; shift
    local port; port=$(free_port)
    taskset -c 0 "$@" --port "$port" >/dev/null 2>&1 &
    local pid=$!
    wait_ready "$port"
    for pipeline in 1 16; do
        redis-cli -p "$port" flushall >/dev/null
        bench "$name" "$port" "$pipeline"
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
    echo "== round $round"
    run ember "$ember" --bind 127.0.0.1 --threads 1 --busy-poll-us 0
    if [ -n "$baseline" ]; then
        run ember-base "$baseline" --bind 127.0.0.1 --threads 1 --busy-poll-us 0
    fi
    run redis redis-server --bind 127.0.0.1 --save "" --appendonly no
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" <<'EOF'
import statistics, sys
rows = [line.strip().split("|") for line in open(sys.argv[1]) if line.strip()]
figures = {}
for name, test, pipeline, rps in rows:
    figures.setdefault((test, int(pipeline)), {}).setdefault(name, []).append(float(rps))
base = any("ember-base" in by for by in figures.values())
if base:
    print("| test | pipeline | Ember req/s (median) | before req/s (median) | Redis req/s (median) | Ember / Redis | before / Redis |")
    print("|---|---:|---:|---:|---:|---:|---:|")
else:
    print("| test | pipeline | Ember req/s (median) | Redis req/s (median) | Ember / Redis |")
    print("|---|---:|---:|---:|---:|")
for (test, pipeline), by in sorted(figures.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    e, r = statistics.median(by.get("ember", [0])), statistics.median(by.get("redis", [1]))
    if base:
        b = statistics.median(by.get("ember-base", [0]))
        print(f"| {test} | {pipeline} | {e:,.0f} | {b:,.0f} | {r:,.0f} | {e / r:.2f}x | {b / r:.2f}x |")
    else:
        print(f"| {test} | {pipeline} | {e:,.0f} | {r:,.0f} | {e / r:.2f}x |")
EOF
