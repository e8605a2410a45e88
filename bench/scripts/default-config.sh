#!/usr/bin/env bash
# Issue 11's "as a user runs it" goal: Ember in its default configuration (no options: one
# shard per core, the io_uring driver, busy polling) and redis-server, both unpinned, driven by
# `redis-benchmark -t set,get -P 16` and `-P 1` with its defaults (50 connections, 3-byte
# values) and -r 100000. The servers alternate for ROUNDS rounds; prints every figure and the
# medians with Ember / Redis (the median of the per-round ratios).
#
#   bash bench/scripts/default-config.sh [ROUNDS] [REQUESTS_P1] [REQUESTS_P16] [NAME=BINARY...]
#   (EMBER=path/to/ember, default target/release/ember; each NAME=BINARY is another Ember build
#   run in every round beside it, e.g. after=target/release/ember with EMBER=/tmp/ember-before)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
n1=${2:-300000}
n16=${3:-2000000}
shift 3 || shift $#
others=("$@")
ember=${EMBER:-target/release/ember}
[ -x "$ember" ] || { echo "build first: cargo build --release --bin ember" >&2; exit 1; }
# The client's CPU is read by GNU time (Debian's `time` package), not the shell's keyword.
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time: apt-get install time" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {
    for _ in $(seq 1 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "server on port $1 did not start" >&2; return 1
}
results=$(mktemp)
clients=$(mktemp)
client_cpu=$(mktemp)
trap 'rm -f "$results" "$clients" "$client_cpu"' EXIT
run() { # run NAME ROUND COMMAND...
    local name=$1 round=$2; shift 2
    local port; port=$(free_port)
    "$@" --port "$port" >/dev/null 2>&1 &
    local pid=$!
    wait_ready "$port"
    for P in 16 1; do
        local n=$n1; [ "$P" = 16 ] && n=$n16
        /usr/bin/time -f "%P" -o "$client_cpu" \
            redis-benchmark -p "$port" -t set,get -P "$P" -n "$n" -r 100000 --csv 2>/dev/null \
            | tr -d '"' | awk -F, -v s="$name" -v r="$round" -v p="$P" \
                '$1=="SET" || $1=="GET" {print r, s, "P" p, $1, $2}' | tee -a "$results"
        echo "$round $name P$P $(tr -d '%' <"$client_cpu")" | tee -a "$clients"
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
}
echo "start $(date -u '+%Y-%m-%d %H:%M UTC') load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
    run ember "$round" "$ember" --bind 127.0.0.1
    for spec in "${others[@]}"; do run "${spec%%=*}" "$round" "${spec#*=}" --bind 127.0.0.1; done
    run redis "$round" redis-server --bind 127.0.0.1 --save "" --appendonly no
done
echo "end $(date -u '+%Y-%m-%d %H:%M UTC') load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" "$clients" ember "${others[@]%%=*}" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
clients = [line.split() for line in open(sys.argv[2])]
print("| case | server | Ember req/s | Redis req/s | Ember / Redis (median of rounds) |")
print("|---|---|---:|---:|---:|")
for case in ("P16 SET", "P16 GET", "P1 SET", "P1 GET"):
    p, t = case.split()
    by = {}
    for r, s, pp, tt, v in rows:
        if pp == p and tt == t:
            by.setdefault(s, {})[r] = float(v)
    rd = by.get("redis", {})
    for name in sys.argv[3:]:
        e = by.get(name, {})
        ratios = [e[r] / rd[r] for r in e if r in rd and rd[r] > 0]
        print(f"| {case} | {name} | {statistics.median(e.values()):,.0f} "
              f"| {statistics.median(rd.values()):,.0f} | {statistics.median(ratios):.2f}x |")
print()
print("redis-benchmark's own CPU (one thread: 100% is its whole core; near it, the client is the")
print("limit and no server can be much faster than another), median of rounds, SET and GET runs together:")
print()
print("| server | P16 client CPU | P1 client CPU |")
print("|---|---:|---:|")
for name in ["redis"] + sys.argv[3:]:
    cells = []
    for p in ("P16", "P1"):
        values = [float(v) for r, s, pp, v in clients if s == name and pp == p]
        cells.append(f"{statistics.median(values):.0f}%" if values else "-")
    print(f"| {name} | {cells[0]} | {cells[1]} |")
PY
