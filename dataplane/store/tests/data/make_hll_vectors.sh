#!/usr/bin/env bash
# Regenerates hll_redis.txt: HyperLogLog values written by a real redis-server (GET's bytes, in
# hex) with the PFCOUNT it answered, for tests/hyperloglog_redis.rs to compare with Ember's.
# Each line: NAME COUNT HEX. The elements of "e:N..M" cases are "e:N" up to "e:M-1".
# Needs redis-server and redis-cli; talks over a private unix socket, so no port can clash.
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
elements() { for ((i = $1; i < $2; i++)); do printf 'e:%d\n' "$i"; done; }
pfadd() { # KEY FROM TO: PFADD of e:FROM..e:TO-1 in one call
    local key=$1; shift
    # shellcheck disable=SC2046
    cli PFADD "$key" $(elements "$1" "$2") >/dev/null
}
emit() { # NAME KEY COUNT
    local hex
    hex=$(cli --raw GET "$2" | head -c -1 | xxd -p | tr -d '\n')
    printf '%s %s %s\n' "$1" "$3" "$hex"
}
out="$here/hll_redis.txt"
{
    echo "# $(redis-server --version | cut -d' ' -f1-3); regenerate with make_hll_vectors.sh"
    # GET before PFCOUNT, so these keep the invalid-cache bit that PFADD set.
    cli PFADD empty >/dev/null
    hex=$(cli --raw GET empty | head -c -1 | xxd -p | tr -d '\n')
    echo "empty $(cli PFCOUNT empty) $hex"
    cli PFADD abc a b c >/dev/null
    hex=$(cli --raw GET abc | head -c -1 | xxd -p | tr -d '\n')
    echo "abc_uncounted $(cli PFCOUNT abc) $hex"
    emit abc_counted abc "$(cli PFCOUNT abc)"
    pfadd s1000 0 1000; c=$(cli PFCOUNT s1000); emit e0_1000 s1000 "$c"
    pfadd d5000 0 5000; c=$(cli PFCOUNT d5000); emit e0_5000 d5000 "$c"
    pfadd big 0 100000; c=$(cli PFCOUNT big); emit e0_100000 big "$c"
    cli CONFIG SET hll-sparse-max-bytes 200 >/dev/null
    pfadd s200 0 100; c=$(cli PFCOUNT s200); emit e0_100_max200 s200 "$c"
    pfadd s200b 0 30; c=$(cli PFCOUNT s200b); emit e0_30_max200 s200b "$c"
    cli CONFIG SET hll-sparse-max-bytes 3000 >/dev/null
    cli PFMERGE m1 abc s1000 >/dev/null; c=$(cli PFCOUNT m1); emit merge_abc_e0_1000 m1 "$c"
    cli PFMERGE m2 abc d5000 >/dev/null; c=$(cli PFCOUNT m2); emit merge_abc_e0_5000 m2 "$c"
    c=$(cli PFCOUNT abc s1000 d5000); echo "union_abc_e0_1000_e0_5000 $c -"
} >"$out"
echo "wrote $out"
