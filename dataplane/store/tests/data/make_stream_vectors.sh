#!/usr/bin/env bash
# Regenerates stream_redis.txt: random XADD (with MAXLEN / MINID, = and ~, LIMIT), XDEL, XTRIM,
# XREADGROUP and XACK against a real redis-server, with what XINFO says after each, for
# tests/stream_redis.rs. Lines: "NODE_ENTRIES/NODE_BYTES COMMAND ARGS... = length blocks last-id
# max-deleted-id entries-added first-id group-entries-read group-lag pending last-delivered
# PEL" (the PEL as id/consumer/deliveries, comma separated; "nil" where
# Redis answers nil). The key is "s" and the group "g", created first with MKSTREAM. One
# redis-cli over a unix socket; no command may fail at the top level (redis-cli prints a
# blank line after an error, which would shift the replies), so each runs under pcall.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="$(mktemp -d)"
sock="$dir/redis.sock"
redis-server --port 0 --unixsocket "$sock" --save '' --appendonly no --dir "$dir" \
    --daemonize no >"$dir/log" 2>&1 &
pid=$!
trap 'kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
awk 'function trim(r) { r = rand();
        if (r < 0.5) return "";
        if (r < 0.7) return "MAXLEN " (rand() < 0.5 ? "~ " : "") int(rand() * 40) ;
        if (r < 0.85) return "MAXLEN ~ " int(rand() * 40) " LIMIT " int(rand() * 30);
        return "MINID " (rand() < 0.5 ? "~ " : "= ") int(ms - rand() * 40) }
     function value(r) { r = rand(); if (r < 0.4) return int(rand() * 100000); if (r < 0.5) return -int(rand() * 100000);
                          return sprintf("%s%0" int(rand() * 150) "d", "x", 0) }
     function fields(r) { r = rand(); if (r < 0.6) return "f " value(); if (r < 0.8) return "f " value() " g " value();
                           if (r < 0.9) return "h " value(); return "g " value() " f " value() }
     BEGIN { srand(5); split("5/4096 10/4096 100/4096 100/300 100/1000 7/700", nodes, " ");
       for (round = 0; round < 36; round++) {
         node = nodes[1 + round % 6]; ms = 1; split(node, limits, "/");
         print node, "CONFIG SET stream-node-max-entries " limits[1]; print node, "CONFIG SET stream-node-max-bytes " limits[2]; print node, "DEL s";
         print node, "XGROUP CREATE s g 0 MKSTREAM";
         for (op = 0; op < 60; op++) {
           r = rand();
           if (r < 0.55) { ms += 1 + int(rand() * 3); print node, "XADD s " trim() " " ms "-" (rand() < 0.3 ? "*" : "0") " " fields() }
           else if (r < 0.7) print node, "XDEL s " int(ms - rand() * 30) "-0 " int(ms - rand() * 30) "-0"
           else if (r < 0.8) print node, "XTRIM s " (rand() < 0.5 ? "MAXLEN ~ " int(rand() * 50) : "MINID = " int(ms - rand() * 30))
           else if (r < 0.92) print node, "XREADGROUP GROUP g c" int(rand() * 2) " COUNT " (1 + int(rand() * 6)) " STREAMS s >"
           else if (r < 0.95) print node, "XACK s g " int(ms - rand() * 30) "-0 " int(ms - rand() * 30) "-0"
           else if (r < 0.965) print node, "XCLAIM s g c" int(rand() * 3) " 0 " int(ms - rand() * 30) "-0 " int(ms - rand() * 30) "-0" (rand() < 0.3 ? " JUSTID" : "") (rand() < 0.3 ? " FORCE" : "") (rand() < 0.3 ? " RETRYCOUNT " int(rand() * 5) : "")
           else if (r < 0.98) print node, "XAUTOCLAIM s g c" int(rand() * 3) " 0 " int(ms - rand() * 30) "-0 COUNT " (1 + int(rand() * 4)) (rand() < 0.3 ? " JUSTID" : "")
           else if (r < 0.99) print node, "XREADGROUP GROUP g c" int(rand() * 3) " COUNT " (1 + int(rand() * 4)) " STREAMS s 0"
           else if (r < 0.995) print node, "XGROUP DELCONSUMER s g c" int(rand() * 3)
           else print node, "XGROUP SETID s g " int(ms - rand() * 30) "-0"
         }
       } }' >"$dir/script"
probe="redis.pcall(unpack(ARGV));
local function field(list, name) for i = 1, #list, 2 do if list[i] == name then return list[i + 1] end end end
local function text(v) if v == false or v == nil then return 'nil' end return tostring(v) end
local function pel() local out = {} for _, p in ipairs(redis.call('XPENDING', KEYS[1], 'g', '-', '+', 100000)) do out[#out + 1] = p[1] .. '/' .. p[2] .. '/' .. p[4] end return table.concat(out, ',') end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local group = redis.call('XINFO', 'GROUPS', KEYS[1])[1] or {}
return table.concat({text(field(info, 'length')), text(field(info, 'radix-tree-keys')), text(field(info, 'last-generated-id')),
  text(field(info, 'max-deleted-entry-id')), text(field(info, 'entries-added')), text(field(info, 'recorded-first-entry-id')),
  text(field(group, 'entries-read')), text(field(group, 'lag')), text(field(group, 'pending')), text(field(group, 'last-delivered-id')), pel()}, ' ')"
probe=$(printf '%s' "$probe" | tr '\n' ' ')
cut -d' ' -f2- "$dir/script" |
    awk -v probe="$probe" '/^(CONFIG|DEL|XGROUP CREATE) / { print; next } { printf "EVAL \"%s\" 1 s %s\n", probe, $0 }' |
    redis-cli -s "$sock" >"$dir/replies"
out="$here/stream_redis.txt"
{
    echo "# $(redis-server --version | cut -d' ' -f1-3); regenerate with make_stream_vectors.sh"
    paste -d'\t' "$dir/script" "$dir/replies" | awk -F'\t' '/ (CONFIG|DEL|XGROUP CREATE) / { next } { print $1 " = " $2 }'
} >"$out"
echo "wrote $out"
