#!/usr/bin/env bash
# CPU of an idle server: starts BINARY (ember, with EXTRA arguments, or redis-server) on PORT,
# lets it settle 2 s, then reports utime+stime (/proc/PID/stat ticks) and the voluntary context
# switches of all its threads over SECONDS with no client connected.
#
#   bash bench/scripts/idle-cpu.sh target/release/ember 7132 [SECONDS]
#   EXTRA="--busy-poll-us 0" bash bench/scripts/idle-cpu.sh target/release/ember 7133
#   bash bench/scripts/idle-cpu.sh redis-server 7134
set -euo pipefail
binary=$1; port=$2; seconds=${3:-10}
if [[ "$(basename "$binary")" == redis-server* ]]; then
    "$binary" --port "$port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
else
    # shellcheck disable=SC2086 # EXTRA is a list of arguments
    "$binary" --port "$port" --bind 127.0.0.1 ${EXTRA:-} >/dev/null 2>&1 &
fi
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
switches() {
    local total=0 task
    for task in /proc/"$pid"/task/*; do
        total=$((total + $(awk '/^voluntary_ctxt_switches/{print $2}' "$task/status")))
    done
    echo "$total"
}
sleep 2
ticks_before=$(awk '{print $14 + $15}' "/proc/$pid/stat"); switches_before=$(switches)
sleep "$seconds"
ticks_after=$(awk '{print $14 + $15}' "/proc/$pid/stat"); switches_after=$(switches)
ticks=$((ticks_after - ticks_before))
python3 -c "print(f'$binary ${EXTRA:-}: {$ticks} ticks in $seconds s ({$ticks * 100 / $(getconf CLK_TCK) / $seconds:.1f}% of a core), {($switches_after - $switches_before) / $seconds:.0f} wake-ups/s')"
