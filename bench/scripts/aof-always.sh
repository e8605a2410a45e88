#!/bin/bash
# `appendfsync always` at pipeline 1: Ember builds and redis-server side by side, alternating.
#
#   bash bench/scripts/aof-always.sh BINARY...        (ROUNDS=3 N=100000 EXTRA="--threads 1")
#
# Each round starts every Ember build given, then redis-server, each with `--appendonly yes
# --appendfsync always` in a fresh directory under /tmp (a real disk here, not tmpfs), and runs
# `redis-benchmark -t set,incr -P 1 -n N -c 50 -d 16 -r 100000` against it. EXTRA goes to Ember
# only. Prints each run's requests per second.
set -euo pipefail
rounds=${ROUNDS:-3}
requests=${N:-100000}
work=$(mktemp -d /tmp/aof-always.XXXXXX)
trap 'rm -rf "$work"' EXIT
port=$((20000 + $$ % 20000))
for round in $(seq "$rounds"); do
    for server in "$@" redis; do
        dir=$(mktemp -d "$work/dir.XXXX")
        port=$((port + 1))
        if [ "$server" = redis ]; then
            redis-server --port "$port" --bind 127.0.0.1 --save "" --dir "$dir" --appendonly yes \
                --appendfsync always --auto-aof-rewrite-percentage 0 >/dev/null 2>&1 &
        else
            # shellcheck disable=SC2086
            "$server" --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes \
                --appendfsync always --auto-aof-rewrite-percentage 0 ${EXTRA:-} >/dev/null 2>&1 &
        fi
        pid=$!
        for _ in $(seq 100); do
            redis-cli -p "$port" ping >/dev/null 2>&1 && break
            sleep 0.05
        done
        rates=$(redis-benchmark -p "$port" -t set,incr -P 1 -n "$requests" -c 50 -d 16 -r 100000 --csv |
            tr -d '"' | awk -F, '/^(SET|INCR)/ { printf "%s %s  ", $1, $2 }')
        echo "round $round $(basename "$server"): $rates"
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        rm -rf "$dir"
    done
done
