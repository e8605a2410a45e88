#!/usr/bin/env bash
# Operations per server CPU-second (issue 11's per-request cost): each server pinned to core 0
# with one shard and no busy polling, redis-benchmark pinned to core 1, 50 connections, 16-byte
# values, SET and GET at pipeline 1 and 16. Server CPU is utime+stime from /proc/PID/stat
# before and after each run. The servers alternate within every round; prints one line per run
# and the medians (with each server's median ratio to Redis, of the per-round ratios).
#
#   bench/scripts/ops-per-cpu.sh [ROUNDS] [REQUESTS_P1] [REQUESTS_P16] NAME=BINARY[:ARGS]...
#
# e.g. bench/scripts/ops-per-cpu.sh 3 300000 2000000 before=/tmp/ember-old after=target/release/ember
# KEYS=N (default 0: redis-benchmark's one key) spreads the requests over N keys (`-r N`), each
# server first given them by a pipelined SET run, so that lookups miss the CPU's caches as they
# do in a real keyspace.
# ARGS (after a colon, spaces as commas) are added to `--threads 1 --busy-poll-us 0`, e.g.
# epoll=target/release/ember:--io-uring,no
set -euo pipefail
rounds=${1:-3}
n1=${2:-300000}
n16=${3:-2000000}
shift 3 || true
[ $# -gt 0 ] || set -- "ember=target/release/ember"
port=${PORT:-7790}
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

start() { # start NAME: sets pid (each start on a port of its own, so that a server still
    # closing its listener never makes the next one fail to bind)
    local name=$1 spec
    port=$((port + 1))
    if [ "$name" = redis ]; then
        taskset -c 0 redis-server --port "$port" --save '' --appendonly no >/dev/null 2>&1 &
    else
        for spec in "${servers[@]}"; do
            [ "${spec%%=*}" = "$name" ] || continue
            local binary=${spec#*=} extra=""
            if [[ $binary == *:* ]]; then extra=${binary#*:}; binary=${binary%%:*}; fi
            # shellcheck disable=SC2086
            taskset -c 0 "$binary" --port "$port" --threads 1 --busy-poll-us 0 ${extra//,/ } >/dev/null 2>&1 &
        done
    fi
    pid=$!
    for _ in $(seq 600); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.05; done
    echo "$name did not start on port $port" >&2
    exit 1
}

servers=("$@")
names=(redis)
for spec in "${servers[@]}"; do names+=("${spec%%=*}"); done
results=$(mktemp)
echo "start $(date -u '+%Y-%m-%d %H:%M UTC') load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq "$rounds"); do
    for name in "${names[@]}"; do
        start "$name"
        spread=()
        if [ "${KEYS:-0}" -gt 0 ]; then
            spread=(-r "$KEYS")
            taskset -c 1 redis-benchmark -p "$port" -c 50 -n $((KEYS * 4)) -d 16 -t set -P 16 "${spread[@]}" >/dev/null 2>&1
        fi
        for P in 1 16; do
            for t in set get; do
                n=$n1; [ "$P" = 16 ] && n=$n16
                before=$(cpu_ticks "$pid")
                rps=$(taskset -c 1 redis-benchmark -p "$port" -c 50 -n "$n" -d 16 -t "$t" -P "$P" "${spread[@]}" --csv 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"')
                after=$(cpu_ticks "$pid")
                ops=$(echo "$n * $hz / ($after - $before)" | bc)
                echo "$round $name P$P $t $rps $ops $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$results" >&2
            done
        done
        kill "$pid"; wait "$pid" 2>/dev/null || true
    done
done
echo "end $(date -u '+%Y-%m-%d %H:%M UTC') load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '| case | Redis ops/CPU-s |'; for n in "${names[@]:1}"; do printf ' %s ops/CPU-s (x Redis) |' "$n"; done; echo
printf '|---|---:|'; for _ in "${names[@]:1}"; do printf -- '---:|'; done; echo
for P in 1 16; do
    for t in set get; do
        redis=$(awk -v c="P$P" -v t="$t" '$2=="redis" && $3==c && $4==t {print $6}' "$results" | median)
        printf '| P%s %s | %s |' "$P" "${t^^}" "$redis"
        for n in "${names[@]:1}"; do
            ops=$(awk -v s="$n" -v c="P$P" -v t="$t" '$2==s && $3==c && $4==t {print $6}' "$results" | median)
            ratio=$(for r in $(seq "$rounds"); do
                awk -v r="$r" -v s="$n" -v c="P$P" -v t="$t" '$1==r && $3==c && $4==t && ($2==s || $2=="redis") {v[$2]=$6} END {if (v["redis"] > 0) printf "%.3f\n", v[s] / v["redis"]}' "$results"
            done | median)
            printf ' %s (%.2fx) |' "$ops" "$ratio"
        done
        echo
    done
done
rm -f "$results"
