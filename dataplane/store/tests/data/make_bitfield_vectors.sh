#!/usr/bin/env bash
# Regenerates bitfield_redis.txt: random BITFIELD commands (GET / SET / INCRBY, signed and
# unsigned widths, # offsets, OVERFLOW WRAP / SAT / FAIL) against a real redis-server, with
# the reply and the string (hex) after each, for tests/bitfield_redis.rs. Lines:
# "BITFIELD k ARGS... = REPLY|HEX". One redis-cli over a unix socket; commands run under pcall.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="$(mktemp -d)"
sock="$dir/redis.sock"
redis-server --port 0 --unixsocket "$sock" --save '' --appendonly no --dir "$dir" \
    --daemonize no >"$dir/log" 2>&1 &
pid=$!
trap 'kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
# Widths stop at 53 bits: replies pass through Lua numbers (doubles) in the probe below.
awk 'function type() { return (rand() < 0.5 ? "i" : "u") (1 + int(rand() * 52)) }
     function offset() { return (rand() < 0.3 ? "#" int(rand() * 6) : int(rand() * 80)) }
     function number(r) { r = rand(); if (r < 0.2) return int(rand() * 10) - 5;
                           if (r < 0.6) return int((rand() - 0.5) * 2 ^ int(rand() * 40));
                           if (r < 0.8) return (rand() < 0.5 ? "-" : "") "9223372036854775807"; return int(rand() * 2 ^ 20) }
     BEGIN { srand(17);
       for (round = 0; round < 25; round++) {
         print "DEL k";
         for (op = 0; op < 30; op++) {
           line = "BITFIELD k"; n = 1 + int(rand() * 3);
           for (i = 0; i < n; i++) {
             r = rand();
             if (r < 0.2) line = line " OVERFLOW " (rand() < 0.34 ? "WRAP" : (rand() < 0.5 ? "SAT" : "FAIL"));
             if (r < 0.45) line = line " GET " type() " " offset();
             else if (r < 0.75) line = line " SET " type() " " offset() " " number();
             else line = line " INCRBY " type() " " offset() " " number()
           }
           print line
         }
       } }' >"$dir/script"
probe="local r = redis.pcall(unpack(ARGV)); local out = {};
if type(r) == 'table' and r.err then out = {r.err} else for i = 1, #r do out[i] = r[i] == false and 'nil' or string.format('%d', r[i]) end end;
local v = redis.call('GET', KEYS[1]) or ''; local hex = {};
for i = 1, #v do hex[i] = string.format('%02x', string.byte(v, i)) end;
return table.concat(out, ' ') .. '|' .. table.concat(hex)"
probe=$(printf '%s' "$probe" | tr '\n' ' ')
awk -v probe="$probe" '/^DEL / { print; next } { printf "EVAL \"%s\" 1 k %s\n", probe, $0 }' "$dir/script" |
    redis-cli -s "$sock" >"$dir/replies"
out="$here/bitfield_redis.txt"
{
    echo "# $(redis-server --version | cut -d' ' -f1-3); regenerate with make_bitfield_vectors.sh"
    paste -d'\t' "$dir/script" "$dir/replies" | awk -F'\t' '/^DEL / { print "DEL k = reset"; next } { print $1 " = " $2 }'
} >"$out"
echo "wrote $out"
