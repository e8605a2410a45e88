# Hit ratio through four servers at equal bytes (issue 14 item 7): Redis allkeys-lru and
# allkeys-lfu, Ember allkeys-lfu and allkeys-tinylfu, every trace at 0.1%, 1%, 10% and 30% (SIZES=0.1,1 for some).
# Run from the repository root after `cargo build --release`; logs and JSON go to $OUT.
set -u
E=${EMBER:-target/release/ember}
B=${EMBER_BENCH:-target/release/ember-bench}
OUT=${OUT:-/tmp/ember-hitratio}
mkdir -p "$OUT"
redis-server --port 24217 --bind 127.0.0.1 --save "" --appendonly no --maxmemory-policy allkeys-lru --daemonize yes --pidfile "$OUT/r1.pid"
redis-server --port 24218 --bind 127.0.0.1 --save "" --appendonly no --maxmemory-policy allkeys-lfu --daemonize yes --pidfile "$OUT/r2.pid"
$E --port 24219 --threads 1 --busy-poll-us 0 --save "" --maxmemory-policy allkeys-lfu > "$OUT/e1.log" 2>&1 & e1=$!
$E --port 24220 --threads 1 --busy-poll-us 0 --save "" --maxmemory-policy allkeys-tinylfu > "$OUT/e2.log" 2>&1 & e2=$!
sleep 2
date
$B hitratio --keys 100000 --requests 500000 --value-size 1024 --seed 1 --sizes ${SIZES:-0.1,1,10,30} \
  --server 127.0.0.1:24217,127.0.0.1:24218,127.0.0.1:24219,127.0.0.1:24220 \
  --label redis:allkeys-lru,redis:allkeys-lfu,ember:allkeys-lfu,ember:allkeys-tinylfu --json "$OUT/servers.json"
echo rc=$?
date
kill "$e1" "$e2" "$(cat "$OUT/r1.pid")" "$(cat "$OUT/r2.pid")"
