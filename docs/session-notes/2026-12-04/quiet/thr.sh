#!/bin/bash
# thr.sh "ember args" P : per-thread CPU of ember and the client during one GET run
port=23411
/work/main/target/release/ember --port $port --bind 127.0.0.1 $1 >/dev/null 2>&1 &
pid=$!
for i in $(seq 100); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-benchmark -p $port -t set -P $2 -n 200000 -r 100000 -q >/dev/null
snap() { for t in /proc/$pid/task/*; do echo "$(cat $t/comm) $(awk '{print $14+$15}' $t/stat)"; done; }
snap > a.txt; s=$(date +%s.%N)
/usr/bin/time -f "client cpu %U+%S wall %e" redis-benchmark -p $port -t get -P $2 -n ${3:-2000000} -r 100000 -q 2>&1 | tr '\r' '\n' | tail -2
e=$(date +%s.%N); snap > b.txt
paste a.txt b.txt | awk -v w=$(echo "$e-$s"|bc) '{d=$4-$2; if (d>0) printf "%s %.0f%%\n", $1, d/w}'
kill $pid; wait $pid 2>/dev/null
