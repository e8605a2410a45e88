#!/usr/bin/env bash
# EVALSHA of examples/flash_sale.lua as bench/scripts/scenarios-bench.sh runs it (server pinned to
# CPU 0, Ember one shard with --busy-poll-us 0, redis-benchmark pinned to CPU 1, 50 clients,
# 100,000 requests), for two Ember binaries (before and after a change) and redis-server,
# alternating ROUNDS times.
#
#   bash bench/scripts/evalsha-compare.sh BEFORE_EMBER AFTER_EMBER [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
before=$1; after=$2; rounds=${3:-3}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 1 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }
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
        local rps
        rps=$(taskset -c 1 redis-benchmark -p "$port" -P "$pipeline" -n 100000 -c 50 -q \
              EVALSHA "$sha" 2 '{sale}:stock' '{sale}:orders' 1 buyer \
              | tr '\r' '\n' | grep "requests per second" | sed -E 's/.*: ([0-9.]+) requests.*/\1/')
        echo "evalsha $name pipeline $pipeline: $rps"
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
