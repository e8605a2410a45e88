#!/usr/bin/env bash
# One hot key's GET throughput with 1 and 2 shards, the local tier off and on: redis-benchmark
# with 50 clients GETs one key (`key:__rand_int__`: redis-benchmark substitutes it only with -r, 16 bytes) from `ember --threads 1`,
# `--threads 2 --hotkey-local-tier-rate 0` and `--threads 2` (the tier on at its default
# rate), alternating the three for ROUNDS rounds. Prints each round and the medians as a
# markdown table with the load average, and checks each run: the key's value is what was set,
# and the tier answered GETs exactly when it is on (a fast wrong run fails).
#
#   [EMBER=target/debug/ember] [EMBER_ARGS="--busy-poll-us 0"] [BENCH_ARGS="-P 16"] \
#       bench/scripts/hot_key_get.sh [ROUNDS] [REQUESTS]
#
# BENCH_ARGS go to redis-benchmark: pipelining (`-P 16`) makes the client's cost per GET small,
# so that on a machine with as many cores as shards the shards, not the client, set the rate.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
requests=${2:-300000}
ember=${EMBER:-target/release/ember}
[ -x "$ember" ] || { echo "build first: cargo build --release --bin ember" >&2; exit 1; }
port=${EMBER_PORT:-7421}
value=vvvvvvvvvvvvvvvv
configs=("--threads 1" "--threads 2 --hotkey-local-tier-rate 0" "--threads 2")
names=("1 shard" "2 shards, tier off" "2 shards, tier on")

wait_ready() { for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.1; done; echo "ember did not start" >&2; exit 1; }
cleanup() { kill "${ember_pid:-}" 2>/dev/null || true; }
trap cleanup EXIT

run() { # run CONFIG: sets rate (requests per second) and hits (GETs the tier answered)
    # SO_REUSEPORT would let a server left running share the port: refuse to start beside one.
    ! redis-cli -p "$port" ping >/dev/null 2>&1 || { echo "port $port is taken" >&2; exit 1; }
    "$ember" --port "$port" ${EMBER_ARGS:-} $1 >/tmp/hot-key-get-ember.log 2>&1 & ember_pid=$!
    wait_ready
    redis-cli -p "$port" SET key:__rand_int__ "$value" >/dev/null
    rate=$(redis-benchmark -p "$port" -c 50 -n "$requests" ${BENCH_ARGS:-} -t get --csv | tail -1 | cut -d, -f2 | tr -d '"')
    [ "$(redis-cli -p "$port" GET key:__rand_int__)" = "$value" ] || { echo "wrong value" >&2; exit 1; }
    hits=$(redis-cli -p "$port" INFO ember | tr -d '\r' | sed -n 's/^local_tier_hits://p')
    hops=$(redis-cli -p "$port" INFO ember | tr -d '\r' | sed -n 's/^cross_shard_hops://p')
    case "$1" in
        "--threads 2") [ "$hits" -gt 0 ] || { echo "tier on but no tier hits" >&2; exit 1; } ;;
        *) [ "$hits" -eq 0 ] || { echo "tier hits ($hits) with the tier off" >&2; exit 1; } ;;
    esac
    kill "$ember_pid"; wait "$ember_pid" 2>/dev/null || true
}

declare -A results hop_shares
for round in $(seq "$rounds"); do
    for index in "${!configs[@]}"; do
        run "${configs[$index]}"
        results[$index]+="$rate "
        hop_shares[$index]+="$(awk -v h="$hops" -v n="$requests" 'BEGIN {printf "%.3f", h / n}') "
        echo "round $round: ${names[$index]}: $rate GET/s (tier hits $hits, hops $hops), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "| configuration | GET/s (median of $rounds) | rounds | cross-shard hops per GET (median) |"
echo "|---|---|---|---|"
for index in "${!configs[@]}"; do
    echo "| ${names[$index]} (\`${configs[$index]}\`) | $(echo "${results[$index]}" | median) | ${results[$index]}| $(echo "${hop_shares[$index]}" | median) |"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
