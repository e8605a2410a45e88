#!/usr/bin/env bash
# Regenerates list_redis.txt: random list commands against a real redis-server with the reply
# and LRANGE 0 -1 after each, for tests/list_redis.rs (Redis 7.0 reports every list as a
# quicklist, so encodings are not compared). Lines: "COMMAND ARGS... = REPLY|ELEMENT,..." with
# the key "k". One redis-cli over a unix socket; every command runs under pcall.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="$(mktemp -d)"
sock="$dir/redis.sock"
redis-server --port 0 --unixsocket "$sock" --save '' --appendonly no --dir "$dir" \
    --daemonize no >"$dir/log" 2>&1 &
pid=$!
trap 'kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
awk 'function v() { return "e" int(rand() * 6) }
     BEGIN { srand(9);
       for (round = 0; round < 30; round++) {
         print "DEL k";
         for (op = 0; op < 40; op++) {
           r = rand();
           if (r < 0.3) { n = 1 + int(rand() * 5); line = (rand() < 0.5 ? "RPUSH" : "LPUSH") " k"; for (i = 0; i < n; i++) line = line " " v() }
           else if (r < 0.4) line = (rand() < 0.5 ? "LPOP" : "RPOP") " k " int(rand() * 4)
           else if (r < 0.5) line = "LPOS k " v() " RANK " (rand() < 0.5 ? 1 + int(rand() * 3) : -1 - int(rand() * 3)) " COUNT " int(rand() * 3) " MAXLEN " int(rand() * 8)
           else if (r < 0.55) line = "LPOS k " v()
           else if (r < 0.63) line = "LREM k " (int(rand() * 5) - 2) " " v()
           else if (r < 0.71) line = "LINSERT k " (rand() < 0.5 ? "BEFORE" : "AFTER") " " v() " " v()
           else if (r < 0.78) line = "LSET k " (int(rand() * 10) - 5) " " v()
           else if (r < 0.84) line = "LTRIM k " (int(rand() * 8) - 3) " " (int(rand() * 10) - 4)
           else if (r < 0.92) line = "LRANGE k " (int(rand() * 10) - 5) " " (int(rand() * 10) - 5)
           else line = "LINDEX k " (int(rand() * 10) - 5)
           print line
         }
       } }' >"$dir/script"
probe="local r = redis.pcall(unpack(ARGV)); if type(r) == 'table' and r.err then r = r.err elseif type(r) == 'table' and r.ok then r = r.ok
elseif type(r) == 'table' then r = '[' .. table.concat(r, ' ') .. ']' elseif r == false then r = 'nil' end;
return tostring(r) .. '|' .. table.concat(redis.call('LRANGE', KEYS[1], 0, -1), ',')"
probe=$(printf '%s' "$probe" | tr '\n' ' ')
awk -v probe="$probe" '/^DEL / { print; next } { printf "EVAL \"%s\" 1 k %s\n", probe, $0 }' "$dir/script" |
    redis-cli -s "$sock" >"$dir/replies"
out="$here/list_redis.txt"
{
    echo "# $(redis-server --version | cut -d' ' -f1-3); regenerate with make_list_vectors.sh"
    paste -d'\t' "$dir/script" "$dir/replies" | awk -F'\t' '/^DEL / { print "DEL k = reset"; next } { print $1 " = " $2 }'
} >"$out"
echo "wrote $out"
