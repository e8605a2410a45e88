#!/usr/bin/env bash
# Regenerates bitmap_redis.txt: BITCOUNT and BITPOS answers of a real redis-server over
# deterministic random strings, for tests/bitmap_redis.rs. Lines: "HEX COMMAND ARGS... = ANSWER"
# (HEX is "-" for the empty string; the key is implied). Talks over a private unix socket.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="$(mktemp -d)"
sock="$dir/redis.sock"
redis-server --port 0 --unixsocket "$sock" --save '' --appendonly no --dir "$dir" \
    --daemonize no >"$dir/log" 2>&1 &
pid=$!
trap 'kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
cli() { redis-cli -s "$sock" "$@"; }
# Strings biased towards 0x00 and 0xff bytes, where BITPOS's edge cases live, and queries.
awk 'BEGIN { srand(7); split("00 ff 0f f0 80 01 a5", bytes, " ");
  for (i = 0; i < 60; i++) {
    len = int(rand() * 6); hex = "";
    for (j = 0; j < len; j++) hex = hex (rand() < 0.7 ? bytes[1 + int(rand() * 7)] : sprintf("%02x", int(rand() * 256)));
    if (hex == "") hex = "-";
    for (q = 0; q < 6; q++) {
      s = int(rand() * 50) - 25; e = int(rand() * 50) - 25; b = int(rand() * 2);
      print hex, "BITCOUNT", s, e, "BIT"; print hex, "BITCOUNT", int(s / 5), int(e / 5), "BYTE";
      print hex, "BITPOS", b, s, e, "BIT"; print hex, "BITPOS", b, int(s / 5), int(e / 5);
      print hex, "BITPOS", b, int(s / 5); print hex, "BITPOS", b
    }
  } }' >"$dir/queries"
out="$here/bitmap_redis.txt"
{
    echo "# $(redis-server --version | cut -d' ' -f1-3); regenerate with make_bitmap_vectors.sh"
    while read -r hex command args; do
        if [ "$hex" = "-" ]; then cli SET k "" >/dev/null; else printf '%s' "$hex" | xxd -r -p | cli -x SET k >/dev/null; fi
        # shellcheck disable=SC2086
        echo "$hex $command $args = $(cli "$command" k $args)"
    done <"$dir/queries"
} >"$out"
echo "wrote $out"
