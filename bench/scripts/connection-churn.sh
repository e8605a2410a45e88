#!/usr/bin/env bash
# A new connection per request (`redis-benchmark -k 0`, as a client without a connection pool
# runs): each server pinned to core 0 (Ember with one shard and no busy polling), redis-benchmark
# pinned to core 1, 10 clients, PING. Prints each run's requests (connections) per second, p50
# latency (from the request's send to its reply; the accept is part of it) and server CPU per
# connection (utime+stime from /proc/PID/stat), then the medians. The servers alternate within
# each round (bench/scripts/server-cpu.sh does the runs).
#
#   bench/scripts/connection-churn.sh [ROUNDS] [REQUESTS] NAME=BINARY...
#
# e.g. bench/scripts/connection-churn.sh 3 20000 before=/tmp/ember-old after=target/release/ember
set -euo pipefail
rounds=${1:-3}
requests=${2:-20000}
shift 2 || true
PIN=1 CLIENTS=10 PIPELINE=1 FILL=0 TESTS=ping_mbulk BENCH_ARGS="-k 0" \
    exec bash "$(dirname "$0")/server-cpu.sh" "$rounds" "$requests" "$@"
