#!/usr/bin/env bash
# Regenerates hash_redis.txt: random HSET, HSETNX, HDEL, HINCRBY and HINCRBYFLOAT against a
# real redis-server, with the reply, OBJECT ENCODING, HLEN and HGETALL (in order while
# packed, sorted otherwise) after each, for tests/hash_redis.rs. Lines:
# "ENTRIES/VALUE COMMAND ARGS... = REPLY|ENCODING|LENGTH|FIELD=VALUE,..." (the two numbers are
# hash-max-listpack-entries and -value; the key is "h"). One redis-cli over a unix socket.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="$(mktemp -d)"
sock="$dir/redis.sock"
redis-server --port 0 --unixsocket "$sock" --save '' --appendonly no --dir "$dir" \
    --daemonize no >"$dir/log" 2>&1 &
pid=$!
trap 'kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
awk 'function field() { return "f" int(rand() * 12) }
     function value(r) { r = rand(); if (r < 0.3) return int(rand() * 2000) - 1000; if (r < 0.45) return (int(rand() * 2000) - 1000) / 8;
                          if (r < 0.55) return "1e" int(rand() * 5); return sprintf("v%0" int(rand() * 12) "d", 0) }
     BEGIN { srand(3); split("128/64 4/64 128/8 6/6", settings, " ");
       for (round = 0; round < 32; round++) {
         setting = settings[1 + round % 4]; split(setting, limits, "/");
         print setting, "CONFIG SET hash-max-listpack-entries " limits[1]; print setting, "CONFIG SET hash-max-listpack-value " limits[2]; print setting, "DEL h";
         for (op = 0; op < 40; op++) {
           r = rand();
           if (r < 0.4) { n = 1 + int(rand() * 3); line = "HSET h"; for (i = 0; i < n; i++) line = line " " field() " " value() }
           else if (r < 0.5) line = "HSETNX h " field() " " value()
           else if (r < 0.65) line = "HDEL h " field() " " field()
           else if (r < 0.8) line = "HINCRBY h " field() " " (int(rand() * 200) - 100)
           else line = "HINCRBYFLOAT h " field() " " (int(rand() * 2000) - 1000) / 16
           print setting, line
         }
       } }' >"$dir/script"
probe="local r = redis.pcall(unpack(ARGV)); if type(r) == 'table' and r.err then r = r.err end;
local e = redis.call('OBJECT', 'ENCODING', KEYS[1]) or 'none'; local all = redis.call('HGETALL', KEYS[1]);
local pairs_ = {} for i = 1, #all, 2 do pairs_[#pairs_ + 1] = all[i] .. '=' .. all[i + 1] end
if e ~= 'listpack' then table.sort(pairs_) end
return tostring(r) .. '|' .. e .. '|' .. redis.call('HLEN', KEYS[1]) .. '|' .. table.concat(pairs_, ',')"
probe=$(printf '%s' "$probe" | tr '\n' ' ')
cut -d' ' -f2- "$dir/script" |
    awk -v probe="$probe" '/^(CONFIG|DEL) / { print; next } { printf "EVAL \"%s\" 1 h %s\n", probe, $0 }' |
    redis-cli -s "$sock" >"$dir/replies"
out="$here/hash_redis.txt"
{
    echo "# $(redis-server --version | cut -d' ' -f1-3); regenerate with make_hash_vectors.sh"
    paste -d'\t' "$dir/script" "$dir/replies" | awk -F'\t' '/ (CONFIG|DEL) / { next } { print $1 " = " $2 }'
} >"$out"
echo "wrote $out"
