#!/usr/bin/env bash
# Regenerates geo_redis.txt: points added with GEOADD to a real redis-server and what its
# GEOSEARCH answered, for tests/geo_redis.rs to compare with Ember's geo helpers.
# Lines: "point NAME LON LAT SCORE HASH", then "search FROMLON FROMLAT SHAPE... | NAME:DIST ...".
# Talks over a private unix socket, so no port can clash.
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
# 400 deterministic points around Sicily, and a few near the date line and the poles.
awk 'BEGIN { srand(42); for (i = 0; i < 400; i++) printf "%.6f %.6f p%d\n", 15 + (rand() - 0.5) * 8, 37 + (rand() - 0.5) * 6, i;
             printf "179.900000 10.000000 dateline_east\n-179.900000 10.000000 dateline_west\n";
             printf "0.000000 85.000000 north\n0.000000 -85.000000 south\n" }' >"$dir/points"
out="$here/geo_redis.txt"
{
    echo "# $(redis-server --version | cut -d' ' -f1-3); regenerate with make_geo_vectors.sh"
    while read -r lon lat name; do
        cli GEOADD pts "$lon" "$lat" "$name" >/dev/null
        echo "point $name $lon $lat $(cli ZSCORE pts "$name") $(cli GEOHASH pts "$name")"
    done <"$dir/points"
    search() { # FROMLON FROMLAT SHAPE-ARGS...
        local lon=$1 lat=$2; shift 2
        local found
        found=$(cli --no-raw GEOSEARCH pts FROMLONLAT "$lon" "$lat" "$@" ASC WITHDIST |
            awk '/^ *[0-9]+\) 1\) /{gsub(/"/, "", $3); name=$3} /^ +2\) "/{gsub(/"/, "", $2); print name ":" $2}' | tr '\n' ' ')
        echo "search $lon $lat $* | $found"
    }
    search 15 37 BYRADIUS 50 km
    search 15 37 BYRADIUS 200 km
    search 13.5 38 BYRADIUS 30000 m
    search 16 36 BYRADIUS 100 mi
    search 15 37 BYBOX 200 100 km
    search 14 35 BYBOX 300000 300000 ft
    search 179.95 10 BYRADIUS 50 km
    search 0 84.9 BYRADIUS 200 km
    search 15 37 BYRADIUS 3000 km
} >"$out"
echo "wrote $out"
