#!/usr/bin/env bash
# Not part of `make test` (its name keeps it out of ci/test.sh's ci/test-*.sh loop): run it by hand.
# Runs units of Redis 7.0.15's TCL suite against Ember's tls-port (`runtest --tls`), to check that
# TLS connections behave as plain ones: compare a unit's figure with ci/test-redis-tcl.sh's.
# Needs Tcl's TLS package (Debian's tcl-tls) besides ci/setup-redis-tcl.sh's set-up. The suite is
# copied into target/redis-tcl-tls/suite, whose tests/tls/ gets a CA, a server and a client
# certificate made with openssl (the suite's client always presents tests/tls/client.crt).
#
#   bash ci/redis-tcl-over-tls.sh unit/type/list unit/pubsub ...
set -euo pipefail
cd "$(dirname "$0")/.."

suite=".deps/redis-tests/redis-7.0.15"
ember="${EMBER:-target/release/ember}"
tags='-needs:debug -needs:repl -needs:config-maxmemory -needs:reset -large-memory'
[ $# -gt 0 ] || { echo "usage: $0 UNIT..." >&2; exit 2; }
[ -f "$suite/runtest" ] || { echo "the suite is missing ($suite): run ci/setup.sh" >&2; exit 1; }
echo 'package require tls' | tclsh >/dev/null 2>&1 ||
    { echo "Tcl's TLS package is missing: apt-get install tcl-tls" >&2; exit 1; }
[ -x "$ember" ] || cargo build --release --bin ember

work="target/redis-tcl-tls"
rm -rf "$work/suite"
mkdir -p "$work"
cp -rL "$suite" "$work/suite"
certs="$work/suite/tests/tls"
mkdir -p "$certs"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$certs/ca.key" -out "$certs/ca.crt" -days 2 \
    -subj "/CN=Ember TCL CA" 2>/dev/null
for name in server client; do
    openssl req -newkey rsa:2048 -nodes -keyout "$certs/$name.key" -out "$certs/$name.csr" \
        -subj "/CN=$name" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' \
        >"$certs/$name.ext"
    openssl x509 -req -in "$certs/$name.csr" -CA "$certs/ca.crt" -CAkey "$certs/ca.key" \
        -CAcreateserial -out "$certs/$name.crt" -days 2 -extfile "$certs/$name.ext" 2>/dev/null
done

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
server_pid=""
trap '[ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true' EXIT
printf '%-28s %8s %8s %10s\n' unit tls_ok tls_err timeouts
for unit in "$@"; do
    port=$(free_port)
    tls_port=$(free_port)
    log="$work/$(echo "$unit" | tr / _).log"
    rm -rf "$log.dir" && mkdir -p "$log.dir"
    "$ember" --threads 2 --bind 127.0.0.1 --port "$port" --tls-port "$tls_port" --enable-debug-command yes \
        --dir "$log.dir" \
        --tls-cert-file "$certs/server.crt" --tls-key-file "$certs/server.key" \
        --tls-ca-cert-file "$certs/ca.crt" >"$log.server" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    (cd "$work/suite" && timeout 400 ./runtest --host 127.0.0.1 --port "$tls_port" --tls \
        --single "$unit" --singledb --ignore-encoding --ignore-digest --tags "$tags" \
        --clients 1 --timeout 60) >"$log" 2>&1 || true
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    sed -i 's/\x1b\[[0-9;]*m//g' "$log"
    printf '%-28s %8s %8s %10s\n' "$unit" "$(grep -c '^\[ok\]' "$log" || true)" \
        "$(grep -c '^\[err\]' "$log" || true)" "$(grep -c '^\[TIMEOUT\]' "$log" || true)"
done
echo "logs in $work"
