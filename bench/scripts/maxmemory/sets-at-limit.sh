# usage (from the repository root): bash bench/scripts/maxmemory/sets-at-limit.sh PORT SERVER [ARGS...]
# SET ops/s of 1 KiB values at a 24 MB limit under allkeys-lru (redis-benchmark -P 16), after a warm-up.
port=$1; shift
"$@" --port $port > /dev/null 2>&1 & pid=$!
sleep 1
redis-cli -p $port config set maxmemory 24mb > /dev/null; redis-cli -p $port config set maxmemory-policy allkeys-lru > /dev/null
redis-benchmark -p $port -t set -d 1024 -n 100000 -r 1000000 -P 16 --csv > /dev/null 2>&1
r=$(redis-benchmark -p $port -t set -d 1024 -n 300000 -r 1000000 -P 16 --csv 2>/dev/null | tail -1 | cut -d, -f2)
e=$(redis-cli -p $port info stats | grep evicted_keys | tr -d '\r')
u=$(redis-cli -p $port info memory | grep "^used_memory:" | tr -d '\r')
echo "$r $e $u"
kill $pid; wait $pid 2>/dev/null
