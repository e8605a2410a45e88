#!/usr/bin/env bash
# Multi-key commands side by side: Ember in its default configuration (one shard per core,
# unpinned, as `make run` starts it) and redis-server, both driven by redis-benchmark with 50
# clients: MGET of 32 keys and MSET of 8 keys over 100k preloaded keys, alternating servers for
# ROUNDS rounds. Prints each round and the medians as a markdown table, and checks that MGET
# returns the preloaded values (a fast wrong run fails).
#
#   [EMBER_ARGS="--busy-poll-us 0"] bench/scripts/multikey.sh [ROUNDS] [REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
requests=${2:-200000}
ember=${EMBER_BIN:-target/release/ember}
[ -x "$ember" ] || { echo "build first: cargo build --release --bin ember" >&2; exit 1; }
port_ember=${EMBER_PORT:-7411}
port_redis=${REDIS_PORT:-7412}

start_ember() { "$ember" --port "$port_ember" ${EMBER_ARGS:-} >/tmp/multikey-ember.log 2>&1 & ember_pid=$!; }
start_redis() { redis-server --port "$port_redis" --save "" --appendonly no >/tmp/multikey-redis.log 2>&1 & redis_pid=$!; }
wait_ready() { for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return; sleep 0.1; done; echo "server on $1 did not start" >&2; exit 1; }
cleanup() { kill "${ember_pid:-}" "${redis_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

start_ember; start_redis; wait_ready "$port_ember"; wait_ready "$port_redis"
for port in "$port_ember" "$port_redis"; do
    redis-benchmark -p "$port" -q -t set -r 100000 -n 400000 -d 16 -P 16 >/dev/null
done
mget=(MGET); for _ in $(seq 32); do mget+=("key:__rand_int__"); done
mset=(MSET); for _ in $(seq 8); do mset+=("key:__rand_int__" "vvvvvvvvvvvvvvvv"); done

rate() { # rate PORT ARGS... -> requests per second
    local port=$1; shift
    redis-benchmark -p "$port" -c 50 -n "$requests" -r 100000 --csv "$@" | tail -1 | cut -d, -f2 | tr -d '"'
}
check_values() { # every value of a 32-key MGET is the 16-byte value or nil
    local port=$1 keys=() i
    for i in $(seq 1 32); do keys+=("key:$(printf '%012d' $((i * 2999 % 100000)))"); done
    redis-cli -p "$port" MGET "${keys[@]}" | grep -v '^$' | grep -qv '^vvvvvvvvvvvvvvvv$\|^xxxxxxxxxxxxxxxx$' \
        && { echo "MGET on $port returned a value that was never written" >&2; exit 1; } || true
}

declare -a em_mget em_mset re_mget re_mset
for round in $(seq "$rounds"); do
    em_mget+=("$(rate "$port_ember" "${mget[@]}")"); re_mget+=("$(rate "$port_redis" "${mget[@]}")")
    re_mset+=("$(rate "$port_redis" "${mset[@]}")"); em_mset+=("$(rate "$port_ember" "${mset[@]}")")
    echo "round $round: MGET ember ${em_mget[-1]} redis ${re_mget[-1]}; MSET ember ${em_mset[-1]} redis ${re_mset[-1]}" >&2
done
check_values "$port_ember"; check_values "$port_redis"
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m_em_mget=$(median "${em_mget[@]}"); m_re_mget=$(median "${re_mget[@]}")
m_em_mset=$(median "${em_mset[@]}"); m_re_mset=$(median "${re_mset[@]}")
echo "| command (50 clients) | Ember ops/s (median) | Redis ops/s (median) | Ember/Redis | rounds (Ember / Redis) |"
echo "|---|---:|---:|---:|---|"
printf '| MGET 32 keys | %s | %s | %.2fx | %s / %s |\n' "$m_em_mget" "$m_re_mget" "$(echo "$m_em_mget / $m_re_mget" | bc -l)" "${em_mget[*]}" "${re_mget[*]}"
printf '| MSET 8 keys | %s | %s | %.2fx | %s / %s |\n' "$m_em_mset" "$m_re_mset" "$(echo "$m_em_mset / $m_re_mset" | bc -l)" "${em_mset[*]}" "${re_mset[*]}"
