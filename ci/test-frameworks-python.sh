#!/usr/bin/env bash
# Runs real Python job-queue and caching frameworks, unchanged, against Ember in its default
# configuration (one shard per core, so a framework's keys live on different shards), and the same
# programs against redis-server, the oracle that each program is itself right. The programs are
# examples/frameworks/<name>/main.py; each exits non-zero with a message on a wrong result.
# Prints a table framework / redis / ember and fails when an Ember run fails, or when a program
# fails twice against Redis (then the program or the machine is at fault, and proves nothing).
#
#   bash ci/test-frameworks-python.sh              # every framework
#   bash ci/test-frameworks-python.sh rq celery    # only these
#
# Set-up (the frameworks, pinned, in .deps/python-frameworks) is ci/setup-frameworks-python.sh, run
# by `make test`. A framework that is not installed is skipped with a message; with
# EMBER_REQUIRE_FRAMEWORKS=1 (ci/test.sh sets it) that skip is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

ember="target/release/ember"
frameworks_dir=".deps/python-frameworks"
results_dir="target/frameworks-python"
# One program's run, worker start-up included; the slowest takes about 20 s on an idle machine.
program_timeout_s="${EMBER_FRAMEWORK_TIMEOUT_S:-150}"
# Django's cache example calls cache.clear() (FLUSHDB), so it gets a database of its own.
declare -A database=([django]=1)

frameworks=("$@")
if [ ${#frameworks[@]} -eq 0 ]; then
    frameworks=(rq celery django huey arq dramatiq)
fi

[ -x "$ember" ] || cargo build --release --bin ember
mkdir -p "$results_dir"
# The programs' caches go nowhere: nothing lands in the work tree.
export PYTHONDONTWRITEBYTECODE=1

started_pids=()
stop_servers() {
    local pid
    for pid in "${started_pids[@]:-}"; do
        [ -n "$pid" ] || continue
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap stop_servers EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_ready() { # wait_ready PORT PID
    local attempt
    for attempt in $(seq 1 100); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    echo "test-frameworks-python: the server on port $1 did not answer PING" >&2
    return 1
}

ember_port=$(free_port)
rm -rf "$results_dir/ember.dir" && mkdir -p "$results_dir/ember.dir"
"$ember" --port "$ember_port" --bind 127.0.0.1 --dir "$results_dir/ember.dir" \
    >"$results_dir/ember.server.log" 2>&1 &
started_pids+=($!)
wait_ready "$ember_port" "$!"
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    >"$results_dir/redis.server.log" 2>&1 &
started_pids+=($!)
wait_ready "$redis_port" "$!"

# run_program FRAMEWORK SERVER PORT: runs the framework's program against the server on PORT,
# logs to $results_dir, and prints pass or FAIL.
run_program() {
    local name=$1 server=$2 port=$3
    local log="$results_dir/$name.$server.log"
    local url="redis://127.0.0.1:$port/${database[$name]:-0}"
    # SIGINT first: Python then prints where the program waited (a KeyboardInterrupt traceback).
    if PYTHONPATH="$PWD/$frameworks_dir/$name" timeout --signal=INT --kill-after=10 "$program_timeout_s" \
        python3 "examples/frameworks/$name/main.py" --url "$url" >"$log" 2>&1; then
        echo pass
    else
        echo FAIL
    fi
}

status=0
summary="$results_dir/summary.txt"
: >"$summary"
printf '%-10s %-8s %-8s %s\n' framework redis ember seconds | tee -a "$summary"
for name in "${frameworks[@]}"; do
    if [ ! -f "$frameworks_dir/$name/.installed" ] || [ ! -f "examples/frameworks/$name/main.py" ]; then
        printf '%-10s %-8s %-8s %s\n' "$name" missing missing - | tee -a "$summary"
        echo "test-frameworks-python: $name is not installed in $frameworks_dir/$name (run ci/setup.sh)" >&2
        if [ "${EMBER_REQUIRE_FRAMEWORKS:-}" = 1 ]; then
            status=1
        fi
        continue
    fi
    started_at=$SECONDS
    redis_result=$(run_program "$name" redis "$redis_port")
    if [ "$redis_result" != pass ]; then
        # The oracle's run decides nothing when the machine stalled it; one rerun tells a stall
        # from a program that is wrong.
        cp "$results_dir/$name.redis.log" "$results_dir/$name.redis.first.log"
        redis_result=$(run_program "$name" redis "$redis_port")
    fi
    ember_result=$(run_program "$name" ember "$ember_port")
    printf '%-10s %-8s %-8s %s\n' "$name" "$redis_result" "$ember_result" $((SECONDS - started_at)) | tee -a "$summary"
    for server in redis ember; do
        result=$redis_result
        [ "$server" = ember ] && result=$ember_result
        if [ "$result" != pass ]; then
            echo "test-frameworks-python: $name against $server failed; the end of $results_dir/$name.$server.log:" >&2
            tail -n 30 "$results_dir/$name.$server.log" >&2
            status=1
        fi
    done
done
if ! kill -0 "${started_pids[0]}" 2>/dev/null; then
    echo "test-frameworks-python: Ember exited during the run; its log: $results_dir/ember.server.log" >&2
    status=1
fi
echo "test-frameworks-python: summary in $summary, logs in $results_dir"
exit $status
