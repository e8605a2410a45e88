# usage (repository root): python3 docs/session-notes/2026-12-05c/probes/harness-replay.py SERVER [ARGS...]
# The hit-ratio harness in Python (Zipf 1.2, 100,000 keys, 200,000 requests, 0.1% = 42,860 bytes
# above the baseline; batches of GETs that end at a repeated key, SETs of the misses 15 at a
# time), then used_memory, keys held and jemalloc's per-size-class change (MEMORY MALLOC-STATS).
import sys, random, bisect, itertools
sys.path.insert(0, 'bench/scripts/maxmemory')
from servers import start
import redis
cmd = sys.argv[1:]
proc, r = start(cmd)
port = r.connection_pool.connection_kwargs['port']
o = redis.Redis(port=port); o.ping()
v = b"v"*1024
N = 100000; skew = 1.2
cum = list(itertools.accumulate(1/(i+1)**skew for i in range(N)))
rng = random.Random(1)
trace = [bisect.bisect_left(cum, rng.random()*cum[-1]) for _ in range(200000)]
# load the working set as the harness does
for s in range(0, N, 15):
    p = r.pipeline(transaction=False)
    for i in range(s, min(N, s+15)): p.set("k:%d" % i, v)
    p.execute()
r.flushall()
r.config_set("maxmemory", 0); r.flushall(); r.config_resetstat()
r.get("w"); r.set("w", "x"); r.dbsize(); r.config_get("maxmemory"); r.flushall()
r.info("stats"); r.info("stats"); r.info("stats")
base = r.info("memory")["used_memory"]
def bins():
    o.execute_command("MEMORY", "PURGE")  # the shard's thread cache back to its arena first
    text = o.execute_command("MEMORY", "MALLOC-STATS").decode()
    out = {}; section = None; merged = False
    for line in text.splitlines():
        if line.startswith("Merged arenas stats"): merged = True
        elif line.startswith("Destroyed arenas stats") or line.startswith("arenas["): merged = False
        if not merged: continue
        t = line.split()
        if t and t[0] in ("bins:", "large:"): section = t[0]; continue
        if section and t and t[0].isdigit() and len(t) > 3:
            out[(section, int(t[0]))] = int(t[2])
    return out
bins(); b0 = bins()
budget = 42860
r.config_set("maxmemory", base + budget)
hits = 0
idx = 0; b = 0
while idx < len(trace):
    batch = []; seen = set()
    while idx < len(trace) and len(batch) < 64 and trace[idx] not in seen:
        seen.add(trace[idx]); batch.append(trace[idx]); idx += 1
    b += 1
    p = r.pipeline(transaction=False)
    for k in batch: p.get("k:%d" % k)
    res = p.execute()
    miss = []
    for k, x in zip(batch, res):
        if x is None:
            if k not in miss: miss.append(k)
        else: hits += 1
    for s in range(0, len(miss), 15):
        p = r.pipeline(transaction=False)
        for k in miss[s:s+15]: p.set("k:%d" % k, v)
        try: p.execute()
        except redis.exceptions.OutOfMemoryError:
            print("OOM at batch", b, "used-base", o.info("memory")["used_memory"]-base, "keys", o.dbsize(), o.info("stats")["evicted_keys"]); raise
used = r.info("memory")["used_memory"]; n = r.dbsize()
print(f"hit ratio {hits/len(trace):.4f}; end: used-base {used-base}, {n} keys, non-key {used-base-n*1121}")
print("observer sees", o.info("memory")["used_memory"] - base)
o.config_set("maxmemory", 0)  # the report itself must not evict
bins(); b1 = bins()
for k in sorted(set(b0) | set(b1)):
    d = b1.get(k, 0) - b0.get(k, 0)
    if d: print("  ", k, d)
tc = o.execute_command("MEMORY", "MALLOC-STATS").decode()
print([l for l in tc.splitlines() if 'tcache' in l][:6])
r.close()
import time; time.sleep(0.2)
print("after the client closed:", o.info("memory")["used_memory"] - base, o.dbsize())
o.flushall(); print("after flushall:", o.info("memory")["used_memory"] - base)
proc.terminate(); proc.wait()
