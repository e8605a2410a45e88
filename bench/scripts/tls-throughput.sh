#!/usr/bin/env bash
# TLS throughput with Redis's own tool: redis-benchmark --tls -t set,get at pipeline 1 and 16
# (50 connections, N requests) against Ember's tls-port and a TLS redis-server, and, for the cost
# of TLS itself, against both servers' plain ports. Certificates are made with openssl (RSA 2048,
# no client certificates: tls-auth-clients no). Each server runs alone pinned to CPU 0,
# redis-benchmark pinned to CPU 1; ROUNDS rounds alternate the servers; the medians are printed.
# Usage: bench/scripts/tls-throughput.sh [ROUNDS] [REQUESTS] [EMBER_BINARY]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"
requests="${2:-50000}"
ember="${3:-./target/release/ember}"
[ -x "$ember" ] || { echo "build Ember first: cargo build --release --bin ember"; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is not installed"; exit 1; }
dir="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 2 \
    -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$dir/server.key" -out "$dir/server.csr" \
    -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$dir/server.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -out "$dir/server.crt" -days 2 -extfile "$dir/server.ext" 2>/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { # wait_ready PORT
    for _ in $(seq 1 200); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "server on port $1 did not start"; return 1
}
tls_server_args=(--tls-cert-file "$dir/server.crt" --tls-key-file "$dir/server.key"
    --tls-ca-cert-file "$dir/ca.crt" --tls-auth-clients no)
results="$dir/results"
: >"$results"
measure() { # measure SERVER PORT TLS(yes|no)
    local server="$1" port="$2" tls="$3" flags=()
    [ "$tls" = yes ] && flags=(--tls --cacert "$dir/ca.crt")
    for pipeline in 1 16; do
        taskset -c 1 redis-benchmark -p "$port" "${flags[@]}" -c 50 -n "$requests" -t set,get \
            -P "$pipeline" -q | tr '\r' '\n' | grep -E "requests per second" |
            while read -r line; do
                test="${line%%:*}"
                rps="$(echo "$line" | sed -E 's/^[A-Z]+: ([0-9.]+) requests per second.*/\1/')"
                echo "$server tls=$tls $test P$pipeline $rps" | tee -a "$results"
            done
    done
}
run_server() { # run_server NAME COMMAND...: starts it with a plain and a TLS port, measures both
    local name="$1"; shift
    local port tls_port
    port="$(free_port)"
    tls_port="$(free_port)"
    taskset -c 0 "$@" --port "$port" --tls-port "$tls_port" "${tls_server_args[@]}" \
        >/dev/null 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait_ready "$port"
    measure "$name" "$tls_port" yes
    measure "$name" "$port" no
    kill "$pid"; wait "$pid" 2>/dev/null || true
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $requests requests per run, $rounds rounds"
for round in $(seq 1 "$rounds"); do
    echo "== round $round"
    run_server ember "$ember" --bind 127.0.0.1 --threads 1 --busy-poll-us 0
    run_server redis redis-server --bind 127.0.0.1 --save "" --appendonly no
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== medians (requests per second)"
python3 - "$results" <<'EOF'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    server, tls, test, pipeline, rps = line.split()
    runs[(test, pipeline, tls, server)].append(float(rps))
print("| test | pipeline | transport | Ember | Redis | Ember / Redis |")
print("|---|---:|---|---:|---:|---:|")
for test in ("SET", "GET"):
    for pipeline in ("P1", "P16"):
        for tls in ("tls=yes", "tls=no"):
            ember = statistics.median(runs[(test, pipeline, tls, "ember")])
            redis = statistics.median(runs[(test, pipeline, tls, "redis")])
            transport = "TLS" if tls == "tls=yes" else "plain"
            print(f"| {test} | {pipeline[1:]} | {transport} | {ember:,.0f} | {redis:,.0f} | {ember / redis:.2f}x |")
EOF
