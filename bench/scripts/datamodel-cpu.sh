#!/usr/bin/env bash
# Server CPU per request for issue 12's data-model tests, the measure that holds on a shared
# machine where throughput swings with other processes: for each server (Ember, optionally a
# baseline Ember build, redis-server), pinned to CPU 0 (Ember with one shard, --busy-poll-us
# 0), redis-benchmark on CPU 1 runs LPUSH, LPOP, HSET, HGET (after the HSET filled the hash)
# and XADD at pipeline 16, 50 connections, REQUESTS requests, -r 100000; the server's user +
# system CPU is read from /proc/PID/stat around each test. Prints "server test ticks" lines
# (1/100 s) per round and the median per test.
#
#   EMBER_BASELINE=path/to/ember REQUESTS=200000 bash bench/scripts/datamodel-cpu.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"
requests="${REQUESTS:-200000}"
baseline="${EMBER_BASELINE:-}"
ember=./target/release/ember
[ -x "$ember" ] || { echo "build Ember first: cargo build --release --bin ember"; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
results=$(mktemp)
trap 'rm -f "$results"' EXIT

measure() { # measure NAME COMMAND...
    local name=$1; shift
    local port; port=$(free_port)
    taskset -c 0 "$@" --port "$port" >/dev/null 2>&1 &
    local pid=$!
    for _ in $(seq 1 200); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
    local common=(-p "$port" -P 16 -c 50 -n "$requests" -r 100000 -q)
    for test in lpush lpop hset hget xadd; do
        local before; before=$(cpu_ticks "$pid")
        case $test in
            hget) taskset -c 1 redis-benchmark "${common[@]}" HGET myhash element:__rand_int__ >/dev/null ;;
            xadd) taskset -c 1 redis-benchmark "${common[@]}" XADD mystream '*' field __rand_int__ >/dev/null ;;
            *) taskset -c 1 redis-benchmark "${common[@]}" -t "$test" >/dev/null ;;
        esac
        echo "$name $test $(( $(cpu_ticks "$pid") - before ))" | tee -a "$results"
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
    measure ember "$ember" --bind 127.0.0.1 --threads 1 --busy-poll-us 0
    if [ -n "$baseline" ]; then
        measure ember-base "$baseline" --bind 127.0.0.1 --threads 1 --busy-poll-us 0
    fi
    measure redis redis-server --bind 127.0.0.1 --save "" --appendonly no
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" <<'PY'
import statistics, sys
figures = {}
for line in open(sys.argv[1]):
    name, test, ticks = line.split()
    figures.setdefault(test, {}).setdefault(name, []).append(int(ticks))
for test, by in figures.items():
    print(test, " ".join(f"{name}={statistics.median(values)}" for name, values in by.items()))
PY
