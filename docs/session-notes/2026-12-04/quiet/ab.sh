#!/bin/bash
# ab.sh P N "args1" "args2" ... : alternating GET runs, prints rps per variant
P=$1; N=$2; shift 2
port=23500
for r in 1 2 3; do for a in "$@"; do
  port=$((port+1))
  if [ "$a" = redis ]; then redis-server --port $port --save '' --appendonly no >/dev/null 2>&1 & else /work/main/target/release/ember --port $port --bind 127.0.0.1 $a >/dev/null 2>&1 & fi
  pid=$!
  for i in $(seq 100); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.05; done
  redis-benchmark -p $port -t set -P 16 -n 200000 -r 100000 -q >/dev/null
  rps=$(redis-benchmark -p $port -t get -P $P -n $N -r 100000 --csv 2>/dev/null | tr -d '"' | awk -F, '$1=="GET"{print $2}')
  echo "$r [$a] $rps"
  kill $pid; wait $pid 2>/dev/null
done; done
uptime
