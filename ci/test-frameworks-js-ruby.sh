#!/usr/bin/env bash
# Runs real Node.js and Ruby frameworks, unchanged, against Ember: the programs in
# examples/frameworks/ (BullMQ through ioredis and through node-redis, Bull, cache-manager with
# Keyv's Redis store, Sidekiq, ActiveSupport's RedisCacheStore through redis-rb's Ruby and
# hiredis parsers) each check their own results and exit non-zero on a wrong one. Each runs
# against a fresh redis-server first, the oracle that the program itself is right, then against
# a fresh Ember in its default configuration (one shard per core, so a job's keys and a
# script's keys live on different shards). Prints a table; fails when Ember fails a program that passed against Redis.
#
#   bash ci/test-frameworks-js-ruby.sh                 # every framework
#   bash ci/test-frameworks-js-ruby.sh bullmq sidekiq  # only these
#
# A framework that is not installed is skipped with a message; with EMBER_REQUIRE_FRAMEWORKS=1
# (the default where CI=true) a skip fails instead. Set-up: ci/setup-frameworks-js-ruby.sh.
# Logs: target/frameworks-js-ruby/<framework>.<server>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

ember="target/release/ember"
results_dir="target/frameworks-js-ruby"
node_modules=".deps/node-frameworks/node_modules"
require_frameworks="${EMBER_REQUIRE_FRAMEWORKS:-$([ "${CI:-}" = true ] && echo 1 || echo 0)}"
# Each program finishes in well under this (the slowest, Sidekiq, in about 15 s); it also has a
# timeout of its own, so this only catches a stuck interpreter.
program_timeout_s=150

frameworks=("$@")
[ ${#frameworks[@]} -gt 0 ] || frameworks=(bullmq bullmq-node-redis bull node-cache sidekiq rails-cache rails-cache-hiredis)

[ -x "$ember" ] || cargo build --release --bin ember
mkdir -p "$results_dir"

# Says why FRAMEWORK cannot run here, or nothing when it can.
missing_reason() {
    case "$1" in
    bullmq | bullmq-node-redis)
        command -v node >/dev/null || { echo "node is not installed"; return; }
        [ -d "$node_modules/bullmq" ] && [ -d "$node_modules/ioredis" ] && [ -d "$node_modules/redis" ] ||
            echo "bullmq/ioredis/redis are not in $node_modules (run ci/setup.sh)"
        ;;
    bull | node-cache)
        command -v node >/dev/null || { echo "node is not installed"; return; }
        local package
        for package in bull cache-manager keyv @keyv/redis; do
            [ -d "$node_modules/$package" ] || { echo "$package is not in $node_modules (run ci/setup.sh)"; return; }
        done
        ;;
    sidekiq)
        command -v sidekiq >/dev/null || { echo "sidekiq is not installed (Debian ruby-sidekiq)"; return; }
        ruby -e 'require "sidekiq"' 2>/dev/null || echo "ruby cannot load sidekiq"
        ;;
    rails-cache)
        ruby -e 'require "active_support"; require "active_support/cache/redis_cache_store"' 2>/dev/null ||
            echo "ruby cannot load ActiveSupport's RedisCacheStore (Debian ruby-activesupport, ruby-redis)"
        ;;
    rails-cache-hiredis)
        ruby -e 'require "active_support"; require "active_support/cache/redis_cache_store"; require "hiredis"' 2>/dev/null ||
            echo "ruby cannot load RedisCacheStore with hiredis (Debian ruby-activesupport, ruby-redis, ruby-hiredis)"
        ;;
    *) echo "no such framework: $1 (bullmq, bullmq-node-redis, bull, node-cache, sidekiq, rails-cache, rails-cache-hiredis)" ;;
    esac
}

# run_program FRAMEWORK PORT LOG: runs FRAMEWORK's example against the server on PORT.
run_program() {
    local framework=$1 port=$2 log=$3
    local url="redis://127.0.0.1:$port/0"
    case "$framework" in
    bullmq)
        NODE_PATH="$node_modules" REDIS_PORT="$port" BULLMQ_CLIENT=ioredis \
            timeout "$program_timeout_s" node examples/frameworks/bullmq/main.js >"$log" 2>&1
        ;;
    bullmq-node-redis)
        NODE_PATH="$node_modules" REDIS_PORT="$port" BULLMQ_CLIENT=node-redis \
            timeout "$program_timeout_s" node examples/frameworks/bullmq/main.js >"$log" 2>&1
        ;;
    bull | node-cache)
        NODE_PATH="$node_modules" REDIS_PORT="$port" \
            timeout "$program_timeout_s" node "examples/frameworks/$framework/main.js" >"$log" 2>&1
        ;;
    sidekiq)
        REDIS_URL="$url" SIDEKIQ_LOG="$log.sidekiq" \
            timeout "$program_timeout_s" ruby examples/frameworks/sidekiq/main.rb >"$log" 2>&1
        ;;
    rails-cache)
        REDIS_URL="$url" timeout "$program_timeout_s" ruby examples/frameworks/rails-cache/main.rb >"$log" 2>&1
        ;;
    rails-cache-hiredis)
        REDIS_DRIVER=hiredis REDIS_URL="$url" \
            timeout "$program_timeout_s" ruby examples/frameworks/rails-cache/main.rb >"$log" 2>&1
        ;;
    esac
}

server_pid=""
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_ready PORT: polls PING until the server answers, for up to 10 s.
wait_ready() {
    local attempt
    for attempt in $(seq 1 100); do
        redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    echo "test-frameworks-js-ruby: server on port $1 did not answer PING" >&2
    return 1
}

# start_server SERVER LOG: starts a fresh SERVER (redis or ember) on a free port, and sets
# server_pid and server_port. (Not called in $(...): a subshell's server_pid would be lost, and
# the server never stopped.)
server_port=""
start_server() {
    local server=$1 log=$2
    server_port=$(free_port)
    if [ "$server" = ember ]; then
        # The default configuration: no --threads, one shard per core.
        # Its own `dir`: no snapshot of another run is loaded.
        rm -rf "$log.dir" && mkdir -p "$log.dir"
        "$ember" --port "$server_port" --bind 127.0.0.1 --dir "$log.dir" >"$log" 2>&1 &
    else
        redis-server --port "$server_port" --bind 127.0.0.1 --save '' --appendonly no >"$log" 2>&1 &
    fi
    server_pid=$!
    wait_ready "$server_port"
}

failures=0
skips=0
table=()
for framework in "${frameworks[@]}"; do
    reason=$(missing_reason "$framework")
    if [ -n "$reason" ]; then
        echo "test-frameworks-js-ruby: skipping $framework: $reason"
        table+=("$framework skipped skipped")
        skips=$((skips + 1))
        continue
    fi
    row="$framework"
    redis_passed=0
    for server in redis ember; do
        log="$results_dir/$framework.$server.log"
        start_server "$server" "$log.server"
        started_s=$SECONDS
        if run_program "$framework" "$server_port" "$log"; then
            verdict=pass
            [ "$server" = ember ] || redis_passed=1
        else
            verdict=FAIL
            echo "test-frameworks-js-ruby: $framework against $server failed; the end of $log:"
            tail -n 20 "$log" | sed 's/^/    /'
            if [ "$server" = ember ] && [ "$redis_passed" = 1 ]; then
                failures=$((failures + 1))
            elif [ "$server" = redis ]; then
                echo "test-frameworks-js-ruby: the $framework program fails against redis-server too: fix the program"
                failures=$((failures + 1))
            fi
        fi
        row="$row $verdict($((SECONDS - started_s))s)"
        stop_server
    done
    table+=("$row")
done

echo
{
    echo "framework redis ember"
    printf '%s\n' "${table[@]}"
} | column -t
echo

if [ "$skips" -gt 0 ] && [ "$require_frameworks" = 1 ]; then
    echo "test-frameworks-js-ruby: $skips framework(s) skipped, and EMBER_REQUIRE_FRAMEWORKS=1"
    failures=$((failures + skips))
fi
if [ "$failures" -gt 0 ]; then
    echo "test-frameworks-js-ruby: $failures failure(s)"
    exit 1
fi
echo "test-frameworks-js-ruby: every framework passed against Ember"
