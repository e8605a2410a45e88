#!/usr/bin/env bash
# The ceiling of issue 11's benchmarks on this machine: `ember-bench ceiling-server`, a RESP
# server that stores nothing and answers every request with a fixed reply of the right shape,
# run through the same scripts as Ember and redis-server, in the same rounds:
#   - default-config.sh (the default configuration, unpinned, redis-benchmark -t set,get at
#     pipeline 1 and 16): the ceiling with one thread a core, with one thread, and with one
#     thread that never sleeps (`--spin yes`: the client's sends wake no one);
#   - ops-per-cpu.sh (one thread pinned to core 0, redis-benchmark on core 1, ops per server
#     CPU-second): the ceiling with epoll (Redis's loop) and with io_uring;
#   - multikey.sh (MGET of 32 keys, MSET of 8 keys, 50 clients): the ceiling, then Ember.
# Where the ceiling does not reach a goal, a server that does real work can reach it only by
# making the client's own side cheaper (see src/ceiling.rs).
#
#   bash bench/scripts/ceiling.sh [ROUNDS]        (build first: cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
ember=${EMBER:-target/release/ember}
bench=${EMBER_BENCH:-target/release/ember-bench}
for binary in "$ember" "$bench"; do
    [ -x "$binary" ] || { echo "build first: cargo build --release (no $binary)" >&2; exit 1; }
done
bench=$(realpath "$bench")
wrappers=$(mktemp -d)
trap 'rm -rf "$wrappers"' EXIT
printf '#!/bin/sh\nexec %q ceiling-server "$@"\n' "$bench" >"$wrappers/ceiling"
printf '#!/bin/sh\nexec %q ceiling-server --threads 1 "$@"\n' "$bench" >"$wrappers/ceiling-1"
printf '#!/bin/sh\nexec %q ceiling-server --threads 1 --spin yes "$@"\n' "$bench" \
    >"$wrappers/ceiling-spin"
chmod +x "$wrappers/ceiling" "$wrappers/ceiling-1" "$wrappers/ceiling-spin"

echo "## Default configuration (bench/scripts/default-config.sh $rounds 300000 2000000)"
EMBER=$ember bash bench/scripts/default-config.sh "$rounds" 300000 2000000 \
    ceiling="$wrappers/ceiling" ceiling-1-thread="$wrappers/ceiling-1" \
    ceiling-spin="$wrappers/ceiling-spin"

echo "## Ops per server CPU-second (bench/scripts/ops-per-cpu.sh $rounds 300000 2000000)"
bash bench/scripts/ops-per-cpu.sh "$rounds" 300000 2000000 ember="$ember" \
    ceiling-epoll="$wrappers/ceiling-1:--value-size,16" \
    ceiling-uring="$wrappers/ceiling-1:--value-size,16,--io-uring,yes"

echo "## Multi-key (bench/scripts/multikey.sh 3 200000, the ceiling and Ember alternating)"
for _ in $(seq "$(( (rounds + 1) / 2 ))"); do
    EMBER_BIN="$wrappers/ceiling" EMBER_ARGS="--value-size 16" \
        bash bench/scripts/multikey.sh 3 200000 2>/dev/null | tail -2 | sed 's/^/ceiling /'
    EMBER_BIN=$ember bash bench/scripts/multikey.sh 3 200000 2>/dev/null | tail -2 \
        | sed 's/^/ember /'
done
