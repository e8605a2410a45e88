#!/usr/bin/env bash
# PUBLISH fan-out with a Rust client (ember-bench fanout): SUBSCRIBERS connections, each
# subscribed to one of CHANNELS channels, read by THREADS threads (epoll), one publisher sending
# MESSAGES rounds (a round: one PUBLISH per channel, written together); deliveries per second,
# publish-to-receipt latency, the server's and the client's CPU time per delivery (utime + stime
# from /proc/PID/stat, from the first PUBLISH to the last delivery) and the share of the
# machine's CPUs busy over that window. Ember with its default shards (two on this machine)
# and redis-server, both unpinned, alternating ROUNDS times; with EMBER_BEFORE=PATH a second
# Ember binary ("before") runs in every round too. Prints every run, then the medians and ratios.
#
#   bash bench/scripts/fanout-compare.sh EMBER_BINARY [ROUNDS] [SUBSCRIBERS] [MESSAGES] [THREADS] [CHANNELS]
#
# The two shapes of issue 13: `... 10000 20 4 1` (one channel, 10,000 subscribers) and
# `... 10000 20 4 1000` (1,000 channels of 10 subscribers).
set -euo pipefail
cd "$(dirname "$0")/../.."
ember=$1; rounds=${2:-3}; subscribers=${3:-10000}; messages=${4:-20}; threads=${5:-4}
channels=${6:-1}
bench=${EMBER_BENCH:-./target/debug/ember-bench}
[ -x "$bench" ] || { echo "build the client first: cargo build -p ember-bench"; exit 1; }
ulimit -Sn "$(ulimit -Hn)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {
    for _ in $(seq 1 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "server on port $1 did not start" >&2; return 1
}
results=$(mktemp)
trap 'rm -f "$results"' EXIT
fanout() { # fanout NAME COMMAND...
    local name=$1; shift
    local port; port=$(free_port)
    "$@" --port "$port" >/dev/null 2>&1 &
    local pid=$!
    wait_ready "$port"
    local output
    output=$("$bench" fanout --port "$port" --subscribers "$subscribers" --channels "$channels" \
        --messages "$messages" --threads "$threads" --server-pid "$pid" --json)
    echo "$name: $(head -n1 <<<"$output")"
    echo "$name $(tail -n1 <<<"$output")" >>"$results"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
    echo "round $round"
    fanout ember "$ember" --bind 127.0.0.1 --maxclients 20000
    if [ -n "${EMBER_BEFORE:-}" ]; then
        fanout before "$EMBER_BEFORE" --bind 127.0.0.1 --maxclients 20000
    fi
    fanout redis redis-server --bind 127.0.0.1 --save "" --appendonly no --maxclients 20000
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, figures = line.split(" ", 1)
    runs.setdefault(name, []).append(json.loads(figures))
keys = ("deliveries_per_s", "server_cpu_us_per_delivery", "server_user_cpu_us_per_delivery",
        "p50_us", "p99_us", "client_cpu_us_per_delivery", "machine_busy")
median = {name: {key: statistics.median(run[key] for run in found) for key in keys}
          for name, found in runs.items()}
print("median of %d rounds: deliveries/s, server cpu us/delivery (all, user), p50 / p99 us, "
      "client cpu us/delivery, machine busy" % len(runs["redis"]))
for name, figures in median.items():
    print("  %-6s %10.0f %8.3f %8.3f %10.0f / %.0f %8.3f %5.0f%%" % (name,
          figures["deliveries_per_s"], figures["server_cpu_us_per_delivery"],
          figures["server_user_cpu_us_per_delivery"], figures["p50_us"], figures["p99_us"],
          figures["client_cpu_us_per_delivery"], figures["machine_busy"] * 100))
def ratios(name, base):
    a, b = median[name], median[base]
    print("%s / %s: deliveries/s %.2fx, server cpu per delivery %.2fx (user %.2fx)" % (
          name, base, a["deliveries_per_s"] / b["deliveries_per_s"],
          a["server_cpu_us_per_delivery"] / b["server_cpu_us_per_delivery"],
          a["server_user_cpu_us_per_delivery"] / max(b["server_user_cpu_us_per_delivery"], 1e-9)))
for name in (n for n in median if n != "redis"):
    ratios(name, "redis")
if "before" in median:
    ratios("ember", "before")
PY
