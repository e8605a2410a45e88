#!/usr/bin/env bash
# Issue 15's figures, with Redis's own tool where a server is measured:
#  1. BF.ADD / BF.EXISTS on Ember against redis-server running a Lua-scripted Bloom filter
#     (bench/scripts/lua-bloom.lua: k = 7 bit positions by double hashing over SHA1, SETBIT /
#     GETBIT, called with EVALSHA), 1,000,000 capacity at 1%; ROUNDS alternating rounds,
#     median per test and the ratio. Each server alone on CPU 0 (Ember with one shard),
#     redis-benchmark on CPU 1.
#  2. CL.THROTTLE decisions per second on one core (`ember --threads 1`), 100,000 keys.
#  3. FILTER.CHECK messages per second per core, 10,000 rules, 100-byte messages: in-process
#     (the automaton alone, a #[ignore] test of the server crate) and through the server.
#  4. The p99 latency an attached filter adds to PUBLISH (100-byte messages, no match): p99
#     of PUBLISH with no filter, then with a MASK filter of 10,000 rules attached.
#
#   bash bench/scripts/protection.sh [ROUNDS]
#   (EMBER=path/to/ember, default target/release/ember; build: cargo build --release --bin ember)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"
ember="${EMBER:-./target/release/ember}"
[ -x "$ember" ] || { echo "build Ember first: cargo build --release --bin ember"; exit 1; }
requests="${REQUESTS:-200000}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {
    for _ in $(seq 1 200); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "server on port $1 did not start" >&2
    return 1
}
pid=""
port=""
start_server() { # start_server COMMAND...: on CPU 0, sets $pid and $port
    port=$(free_port)
    taskset -c 0 "$@" --port "$port" >/dev/null 2>&1 &
    pid=$!
    wait_ready "$port"
}
stop_server() { kill "$pid"; wait "$pid" 2>/dev/null || true; }
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null || true' EXIT
# rps ARGS...: redis-benchmark's requests per second for one custom command.
rps() {
    taskset -c 1 redis-benchmark -p "$port" -n "$requests" -c 50 -q "$@" | tr '\r' '\n' \
        | grep "requests per second" | tail -1 | sed -E 's/^.*: ([0-9.]+) requests per second.*/\1/'
}
# p99 ARGS...: redis-benchmark's p99 latency (ms) for one custom command.
p99() {
    taskset -c 1 redis-benchmark -p "$port" -n "$requests" -c 50 "$@" | tr '\r' '\n' \
        | awk '/latency summary/ {getline; getline; print $5; exit}'
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
message=$(python3 -c 'print(("live comment number __rand_int__ hello everyone great game tonight " * 3)[:100])')

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); commit $(git rev-parse --short HEAD); $ember"
echo
echo "== 1. BF.ADD / BF.EXISTS: Ember against redis-server with a Lua Bloom filter, -c 50, $requests requests, -r 1000000"
lua=bench/scripts/lua-bloom.lua
declare -A results
for round in $(seq 1 "$rounds"); do
    start_server "$ember" --threads 1 --busy-poll-us 0
    redis-cli -p "$port" BF.RESERVE bf 0.01 1000000 >/dev/null
    for pipeline in 1 16; do
        results[ember_add_$pipeline]+="$(rps -P "$pipeline" -r 1000000 BF.ADD bf item:__rand_int__) "
        results[ember_exists_$pipeline]+="$(rps -P "$pipeline" -r 1000000 BF.EXISTS bf item:__rand_int__) "
    done
    stop_server
    start_server redis-server --save '' --appendonly no
    add_sha=$(redis-cli -p "$port" SCRIPT LOAD "$(sed 's/__MODE__/add/' "$lua")")
    exists_sha=$(redis-cli -p "$port" SCRIPT LOAD "$(sed 's/__MODE__/exists/' "$lua")")
    for pipeline in 1 16; do
        results[redis_add_$pipeline]+="$(rps -P "$pipeline" -r 1000000 EVALSHA "$add_sha" 1 bf item:__rand_int__) "
        results[redis_exists_$pipeline]+="$(rps -P "$pipeline" -r 1000000 EVALSHA "$exists_sha" 1 bf item:__rand_int__) "
    done
    stop_server
done
for test in add exists; do
    for pipeline in 1 16; do
        e=$(echo "${results[ember_${test}_$pipeline]}" | tr ' ' '\n' | grep . | median)
        r=$(echo "${results[redis_${test}_$pipeline]}" | tr ' ' '\n' | grep . | median)
        echo "BF.$test -P $pipeline: ember [${results[ember_${test}_$pipeline]}] median $e; redis+Lua [${results[redis_${test}_$pipeline]}] median $r; ratio $(python3 -c "print(f'{$e/$r:.2f}x')")"
    done
done

echo
echo "== 2. CL.THROTTLE decisions per second, ember --threads 1 on one core, 100,000 keys"
start_server "$ember" --threads 1 --busy-poll-us 0
for pipeline in 1 16; do
    echo "CL.THROTTLE -P $pipeline: $(rps -P "$pipeline" -r 100000 CL.THROTTLE user:__rand_int__ 100 1000 60) decisions/s"
done

echo
echo "== 3. FILTER.CHECK, 10,000 rules, 100-byte messages"
cargo test -q -p ember-server --lib scan_throughput -- --ignored --nocapture 2>/dev/null | grep "in-process" || echo "(in-process figure: cargo test did not run)"
python3 - "$port" <<'EOF'
import random, socket, sys
port = int(sys.argv[1])
rng = random.Random(7)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(5, 10))) for _ in range(10000)]
s = socket.create_connection(("127.0.0.1", port))
def cmd(*args):
    out = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() for x in args))
    s.sendall(out)
    s.recv(65536)
for start in range(0, 10000, 1000):
    cmd("FILTER.ADD", "words", *words[start:start + 1000])
EOF
echo "FILTER.INFO: $(redis-cli -p "$port" FILTER.INFO words | head -4 | tr "\n" " ")"
for pipeline in 1 16; do
    echo "FILTER.CHECK through the server -P $pipeline: $(rps -P "$pipeline" -r 1000000 FILTER.CHECK words "$message") messages/s"
done

echo
echo "== 4. PUBLISH p99 (ms), 100-byte messages, -c 50, no subscriber, with and without an attached filter"
echo "PUBLISH without filter: p99 $(p99 -r 1000000 PUBLISH live "$message") ms"
redis-cli -p "$port" FILTER.ATTACH live words MASK >/dev/null
echo "PUBLISH with a 10,000-rule MASK filter: p99 $(p99 -r 1000000 PUBLISH live "$message") ms"
redis-cli -p "$port" FILTER.DETACH live >/dev/null
echo "PUBLISH without filter again: p99 $(p99 -r 1000000 PUBLISH live "$message") ms"
stop_server
