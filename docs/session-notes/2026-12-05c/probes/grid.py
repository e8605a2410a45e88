# usage (repository root): python3 docs/session-notes/2026-12-05c/probes/grid.py OUT/servers.json
# One line per cell of hitratio-servers.sh's JSON: each server's hit ratio, tinylfu against the best Redis.
import json, sys
rows = json.load(open(sys.argv[1]))
rows = rows if isinstance(rows, list) else rows.get('rows', rows)
cells = {}
for r in rows:
    cells.setdefault((r['trace'], r['size_percent']), {})[r['policy']] = (100*r['hits']/(r['hits']+r['misses']), r['keys_held'], r['capacity_bytes'])
for (t, s), c in cells.items():
    best_redis = max(c['redis:allkeys-lru'][0], c['redis:allkeys-lfu'][0])
    t_ = c['ember:allkeys-tinylfu'][0]; l = c['ember:allkeys-lfu'][0]
    print(f"{t:10} {s:5} rlru {c['redis:allkeys-lru'][0]:6.2f} rlfu {c['redis:allkeys-lfu'][0]:6.2f} elfu {l:6.2f} tinylfu {t_:6.2f} diff {t_-best_redis:+6.2f} vs-elfu {t_-l:+6.2f} keys {c['redis:allkeys-lfu'][1]}/{c['ember:allkeys-lfu'][1]}/{c['ember:allkeys-tinylfu'][1]}")
