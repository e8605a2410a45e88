#!/usr/bin/env bash
# One client sending one request at a time (`redis-benchmark -c 1 -P 1`, as a web request that
# reads a few cache keys in turn), over 100,000 random keys, nothing set first: with Ember's
# default two shards half the requests are for the other shard's keys, so this measures a hop
# between shards at light load. Each server runs in its default configuration, unpinned, as
# `make run` starts it; prints each run's requests per second, p50 latency and server CPU per
# request, then the medians (bench/scripts/server-cpu.sh does the runs).
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
CLIENTS=1 PIPELINE=1 FILL=0 exec bash "$(dirname "$0")/server-cpu.sh" "$rounds" "$requests" "$@"
