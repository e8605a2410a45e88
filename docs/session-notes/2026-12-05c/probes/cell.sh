#!/bin/bash
# usage (repository root): bash docs/session-notes/2026-12-05c/probes/cell.sh ROUNDS EMBER_BINARY
# zipf-1.2 at 0.1% against fresh redis-server allkeys-lfu and ember allkeys-tinylfu each round.
for i in $(seq 1 $1); do
  $2 --port 24240 --threads 1 --busy-poll-us 0 --save "" --maxmemory-policy allkeys-tinylfu > /dev/null 2>&1 & e=$!
  redis-server --port 24241 --bind 127.0.0.1 --save "" --appendonly no --maxmemory-policy allkeys-lfu --daemonize yes --pidfile /tmp/rc.pid
  sleep 1
  target/release/ember-bench hitratio --keys 100000 --requests 500000 --value-size 1024 --seed 1 --sizes 0.1 --traces zipf-1.2 --server 127.0.0.1:24241,127.0.0.1:24240 --label redis:allkeys-lfu,ember:allkeys-tinylfu 2>&1 | grep "maxmemory" | sed -E 's/.*(redis|ember):allkeys-([a-z]+) .*hit ratio ([0-9.]+), .* ([0-9]+) keys held.*/\1 \2 \3 \4/'
  kill $e $(cat /tmp/rc.pid); sleep 1
done
