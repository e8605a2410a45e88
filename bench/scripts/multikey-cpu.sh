#!/usr/bin/env bash
# Server CPU per multi-key command: Ember (default configuration) and redis-server side by side,
# alternating, each driven by redis-benchmark with 50 clients (MGET of 32 keys, MSET of 8 keys over
# 100k preloaded keys, as bench/scripts/multikey.sh). Reads utime+stime of each server from
# /proc/PID/stat around every run and prints the rate and the server's CPU microseconds per command.
# With PERF=mget or PERF=mset, also records `perf record -g` of Ember during that command's first
# run into /tmp/multikey-ember.perf.data.
#
#   [EMBER_BIN=target/release/ember] [ROUNDS=3] bench/scripts/multikey-cpu.sh [REQUESTS] [EMBER_ARGS...]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-100000}; shift || true
ember=${EMBER_BIN:-target/release/ember}
pe=${EMBER_PORT:-7541}; pr=${REDIS_PORT:-7542}
"$ember" --port "$pe" "$@" >/tmp/multikey-cpu-ember.log 2>&1 & ep=$!
redis-server --port "$pr" --save "" --appendonly no >/dev/null 2>&1 & rp=$!
# Both servers are gone when this returns, so the next run can bind the same ports.
trap 'kill $ep $rp 2>/dev/null || true; wait $ep $rp 2>/dev/null || true' EXIT
for p in $pe $pr; do
    up=
    for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && { up=1; break; }; sleep 0.1; done
    [ -n "$up" ] || { echo "server on $p did not start" >&2; exit 1; }
    redis-benchmark -p "$p" -q -t set -r 100000 -n 400000 -d 16 -P 16 >/dev/null
done
mget=(MGET); for _ in $(seq 32); do mget+=("key:__rand_int__"); done
mset=(MSET); for _ in $(seq 8); do mset+=("key:__rand_int__" "vvvvvvvvvvvvvvvv"); done
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
one() { # one NAME PORT PID ARGS...
    local name=$1 port=$2 pid=$3; shift 3
    local perf_pid=
    if [ "$name" = ember ] && [ "${PERF:-}" = "${1,,}" ]; then
        perf record -F 1999 -g -p "$pid" -o /tmp/multikey-ember.perf.data >/dev/null 2>&1 & perf_pid=$!
        PERF=done
    fi
    local before; before=$(ticks "$pid")
    local rate; rate=$(redis-benchmark -p "$port" -c 50 -n "$n" -r 100000 --csv "$@" | tail -1 | cut -d, -f2 | tr -d '"')
    local after; after=$(ticks "$pid")
    [ -n "$perf_pid" ] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
    local cpu; cpu=$(echo "($after - $before) / $hz" | bc -l)
    printf '%s %s rate=%s cpu_s=%.2f us_cpu_per_op=%.1f load=%s\n' "$name" "$1" "$rate" "$cpu" \
        "$(echo "$cpu * 1000000 / $n" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
}
for _ in $(seq "${ROUNDS:-3}"); do
    one ember "$pe" "$ep" "${mget[@]}"; one redis "$pr" "$rp" "${mget[@]}"
    one redis "$pr" "$rp" "${mset[@]}"; one ember "$pe" "$ep" "${mset[@]}"
done
