#!/usr/bin/env bash
# Where the threads' time goes while redis-benchmark pipelines GETs at a server: for each
# thread of the server and of redis-benchmark, CPU time, time spent runnable but waiting for a
# CPU (the run queue), time slices and context switches over SECONDS, from
# /proc/PID/task/TID/schedstat and status. With two shards and the client on two cores it shows
# which thread waits for which (bench/RESULTS.md "Twenty-fourth session").
#
#   bash bench/scripts/shard-schedstat.sh BINARY [SECONDS] [-- EMBER_ARGS...]
#   (BINARY `redis` runs redis-server instead)
set -euo pipefail
binary=$1
seconds=${2:-2}
shift 2 || shift $#
[ "${1:-}" = "--" ] && shift
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if [ "$binary" = redis ]; then
    redis-server --port "$port" --save '' --appendonly no >/dev/null 2>&1 &
else
    "$binary" --port "$port" --bind 127.0.0.1 "$@" >/dev/null 2>&1 &
fi
server=$!
for _ in $(seq 200); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-benchmark -p "$port" -t set -n 200000 -r 100000 -P 16 -q >/dev/null 2>&1
out=$(mktemp)
trap 'rm -f "$out" "$out.1" "$out.2"' EXIT
redis-benchmark -p "$port" -t get -n 100000000 -r 100000 -P 16 --csv >"$out" 2>&1 &
client=$!
sleep 1
snapshot() {
    for task in /proc/"$server"/task/* /proc/"$client"/task/*; do
        echo "$(cat "$task/comm") $(cat "$task/schedstat")" \
            "$(awk '/ctxt_switches/ {print $2}' "$task/status" | tr '\n' ' ')"
    done
}
snapshot >"$out.1"
sleep "$seconds"
snapshot >"$out.2"
kill "$client" "$server"
wait "$client" "$server" 2>/dev/null || true
echo "| thread | CPU ms | run-queue wait ms | slices | voluntary switches | involuntary switches |"
echo "|---|---:|---:|---:|---:|---:|"
paste "$out.1" "$out.2" | awk '$8 - $2 > 1e6 {
    printf "| %s | %.0f | %.0f | %d | %d | %d |\n", $1, ($8 - $2) / 1e6, ($9 - $3) / 1e6,
        $10 - $4, $11 - $5, $12 - $6 }'
