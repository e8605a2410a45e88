#!/usr/bin/env bash
# Issue 13's figures against Redis in the same run:
# 1. EVALSHA of the flash-sale stock script (examples/flash_sale.lua) with redis-benchmark at
#    pipeline 1 and 16 (50 connections, 100,000 requests): each server alone pinned to CPU 0
#    (Ember with one shard, --busy-poll-us 0), redis-benchmark pinned to CPU 1.
# 2. PUBLISH fan-out with examples/live_comments.py: one channel with SUBSCRIBERS subscribers,
#    MESSAGES messages; Ember with its default two shards and Redis, both unpinned (the client
#    shares the two cores, so it bounds both servers alike).
# Servers alternate ROUNDS times.
#
#   bash bench/scripts/scenarios-bench.sh [ROUNDS] [SUBSCRIBERS] [MESSAGES]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"; subscribers="${2:-10000}"; messages="${3:-20}"
ember=./target/release/ember
[ -x "$ember" ] || { echo "build Ember first: cargo build --release --bin ember"; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {
    for _ in $(seq 1 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "server on port $1 did not start" >&2; return 1
}
evalsha() { # evalsha NAME PIN COMMAND...
    local name=$1; shift
    local port; port=$(free_port)
    taskset -c 0 "$@" --port "$port" >/dev/null 2>&1 &
    local pid=$!
    wait_ready "$port"
    local sha
    sha=$(redis-cli -p "$port" script load "$(cat examples/flash_sale.lua)")
    for pipeline in 1 16; do
        redis-cli -p "$port" set '{sale}:stock' 1000000000 >/dev/null
        redis-cli -p "$port" del '{sale}:orders' >/dev/null
        local rps
        rps=$(taskset -c 1 redis-benchmark -p "$port" -P "$pipeline" -n 100000 -c 50 -q \
              EVALSHA "$sha" 2 '{sale}:stock' '{sale}:orders' 1 buyer \
              | tr '\r' '\n' | grep "requests per second" | sed -E 's/.*: ([0-9.]+) requests.*/\1/')
        echo "evalsha $name pipeline $pipeline: $rps requests per second"
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
}
fanout() { # fanout NAME COMMAND...
    local name=$1; shift
    local port; port=$(free_port)
    (ulimit -Sn "$(ulimit -Hn)"; exec "$@" --port "$port" >/dev/null 2>&1) &
    local pid=$!
    wait_ready "$port"
    echo "fanout $name: $(python3 examples/live_comments.py --port "$port" \
        --subscribers "$subscribers" --messages "$messages")"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
    evalsha ember "$ember" --bind 127.0.0.1 --threads 1 --busy-poll-us 0
    evalsha redis redis-server --bind 127.0.0.1 --save "" --appendonly no
done
for round in $(seq 1 "$rounds"); do
    fanout ember "$ember" --bind 127.0.0.1 --maxclients 20000
    fanout redis redis-server --bind 127.0.0.1 --save "" --appendonly no --maxclients 20000
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
