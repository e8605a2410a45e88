#!/usr/bin/env bash
# PUBLISH fan-out with a Rust client (ember-bench fanout): SUBSCRIBERS connections subscribed to
# one channel, read by THREADS threads (epoll), one publisher sending MESSAGES messages one at a
# time; deliveries per second and publish-to-receipt latency. Ember with its default shards
# (two on this machine) and redis-server, both unpinned, alternating ROUNDS times.
#
#   bash bench/scripts/fanout-compare.sh EMBER_BINARY [ROUNDS] [SUBSCRIBERS] [MESSAGES] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/../.."
ember=$1; rounds=${2:-3}; subscribers=${3:-10000}; messages=${4:-20}; threads=${5:-4}
bench=${EMBER_BENCH:-./target/debug/ember-bench}
[ -x "$bench" ] || { echo "build the client first: cargo build -p ember-bench"; exit 1; }
ulimit -Sn "$(ulimit -Hn)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {
    for _ in $(seq 1 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "server on port $1 did not start" >&2; return 1
}
fanout() { # fanout NAME COMMAND...
    local name=$1; shift
    local port; port=$(free_port)
    "$@" --port "$port" >/dev/null 2>&1 &
    local pid=$!
    wait_ready "$port"
    echo "$name: $("$bench" fanout --port "$port" --subscribers "$subscribers" \
        --messages "$messages" --threads "$threads")"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
    fanout ember "$ember" --bind 127.0.0.1 --maxclients 20000
    fanout redis redis-server --bind 127.0.0.1 --save "" --appendonly no --maxclients 20000
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
