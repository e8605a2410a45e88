#!/usr/bin/env bash
# Issue 2's check with Redis's own tool: redis-benchmark -t set,get at pipeline 1 and 16
# (50 connections, 100000 requests, its defaults) against Ember and against redis-server, each
# server alone and pinned to CPU 0, redis-benchmark pinned to CPU 1.
# Usage: bench/redis-benchmark.sh [extra redis-benchmark flags]
set -euo pipefail
cd "$(dirname "$0")/.."
ember=./target/release/ember
[ -x "$ember" ] || { echo "build Ember first: cargo build --release --bin ember"; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { # wait_ready PORT
    for _ in $(seq 1 200); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "server on port $1 did not start"; return 1
}
run_against() { # run_against NAME COMMAND...
    local name="$1"; shift
    local port; port="$(free_port)"
    taskset -c 0 "$@" --port "$port" >/dev/null 2>&1 &
    local pid=$!
    wait_ready "$port"
    for pipeline in 1 16; do
        echo "== $name ($*): taskset -c 1 redis-benchmark -p $port -t set,get -P $pipeline -q ${extra[*]}"
        # -q still draws progress with carriage returns; keep the final lines only.
        taskset -c 1 redis-benchmark -p "$port" -t set,get -P "$pipeline" -q "${extra[@]}" \
            | tr '\r' '\n' | grep "requests per second"
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
}
extra=("$@")
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
run_against ember "$ember" --bind 127.0.0.1 --threads 1 --busy-poll-us 0
run_against ember-busy-poll "$ember" --bind 127.0.0.1 --threads 1 --busy-poll-us 50
run_against redis redis-server --bind 127.0.0.1 --save "" --appendonly no
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
