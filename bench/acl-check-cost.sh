#!/usr/bin/env bash
# The cost of ACL checks on GET at pipeline 16: the default user against a user with
# `~key:* +@read`, in alternating rounds. Prints each round's throughput and the server's CPU
# time per request (utime+stime from /proc, less disturbed by other load on the machine).
#
#   bash bench/acl-check-cost.sh [ROUNDS]      # EMBER=path/to/ember (default target/release/ember)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-7}"
ember="${EMBER:-target/release/ember}"
port="${PORT:-7413}"
n="${REQUESTS:-1000000}"
"$ember" --threads 2 --port "$port" --bind 127.0.0.1 --busy-poll-us 0 >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$port" ACL SETUSER bench on '>benchpw' '~key:*' '+@read' >/dev/null
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
run() {
    local before after rps
    before=$(cpu)
    rps=$(redis-benchmark -p "$port" -t get -P 16 -c 50 -n "$n" -r 100000 "$@" --csv 2>/dev/null |
        tail -1 | cut -d, -f2 | tr -d '"')
    after=$(cpu)
    echo "$rps $(echo "scale=3; ($after - $before) * 1000000 / $(getconf CLK_TCK) / $n" | bc)"
}
echo "round default_rps default_cpu_us_per_get acl_rps acl_cpu_us_per_get"
for round in $(seq 1 "$rounds"); do
    echo "$round $(run) $(run --user bench -a benchpw)"
done
