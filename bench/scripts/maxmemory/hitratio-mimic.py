# usage (from the repository root): python3 bench/scripts/maxmemory/hitratio-mimic.py EMBER_BINARY BUDGET
# The hit-ratio harness's pattern (batches of 64 GETs, SETs of the misses 15 at a time, zipf 1.2 over 100,000
# keys) on one connection, without its dataset load: keys held and used_memory against the limit, Ember and Redis.
import sys, random, bisect
from servers import start
budget=int(sys.argv[2]); N=100000; s_exp=1.2
w=[1/(i**s_exp) for i in range(1,N+1)]; tot=sum(w); cdf=[]; acc=0
for x in w: acc+=x/tot; cdf.append(acc)
random.seed(1)
reqs=[bisect.bisect_left(cdf, random.random()) for _ in range(150000)]
def run(cmd, label):
    proc, r = start(cmd)
    r.config_set('maxmemory-policy', 'allkeys-lfu')
    v=b'x'*1024
    for i in range(50): r.get(b'key:%d'%i); r.set(b'key:%d'%i, v)
    r.config_set('maxmemory', 0); r.flushall()
    base = int(r.info('memory')['used_memory'])
    r.config_set('maxmemory', base + budget)
    r.config_resetstat()
    i=0; samples=[]
    while i < len(reqs):
        batch=[]; seen=set()
        while i < len(reqs) and len(batch)<64 and reqs[i] not in seen:
            seen.add(reqs[i]); batch.append(reqs[i]); i+=1
        pl = r.pipeline(transaction=False)
        for k in batch: pl.get(b'key:%d'%k)
        res = pl.execute()
        miss=[k for k,x in zip(batch,res) if x is None]
        for j in range(0,len(miss),15):
            pl = r.pipeline(transaction=False)
            for k in miss[j:j+15]: pl.set(b'key:%d'%k, v)
            pl.execute()
        if i % 30000 < 64: samples.append((int(r.info('memory')['used_memory'])-base-budget, r.dbsize()))
    used = int(r.info('memory')['used_memory'])
    print(f"{label:8} end: over {used-base-budget:+}, keys {r.dbsize()}, samples {samples}")
    proc.terminate(); proc.wait()
run([sys.argv[1], '--threads', '1', '--busy-poll-us', '0', '--save', ''], 'ember')
run(['redis-server', '--save', '', '--appendonly', 'no'], 'redis')
