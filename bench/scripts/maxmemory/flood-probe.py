# usage (from the repository root): python3 bench/scripts/maxmemory/flood-probe.py EMBER_BINARY BUDGET
# 5,000 SETs of 1 KiB over a limit of "used_memory after a warm-up + BUDGET" under allkeys-lru, on Ember
# and on redis-server: how far over the limit each is right after, 50 ms and 350 ms later, and keys held.
import sys, time
from servers import start
def run(cmd, label, policy, budget=int(sys.argv[2]) if len(sys.argv) > 2 else 115_000, n=5000, pipe=12):
    proc, r = start(cmd)
    time.sleep(0.3)
    r.config_set('maxmemory', 0); r.set('warm', 'x'); r.dbsize(); r.flushall()
    base = int(r.info('memory')['used_memory'])
    r.config_set('maxmemory-policy', policy)
    r.config_set('maxmemory', base + budget)
    v = b'x' * 1024
    oom = 0
    for i in range(0, n, pipe):
        pl = r.pipeline(transaction=False)
        for j in range(i, min(n, i + pipe)):
            pl.set(b'key:%d' % j, v)
        for res in pl.execute(raise_on_error=False):
            if isinstance(res, Exception): oom += 1
    out = []
    for t in (0, 0.05, 0.3):
        time.sleep(t)
        out.append((int(r.info('memory')['used_memory']) - base - budget, r.dbsize()))
    proc.terminate(); proc.wait()
    print(f"{label:28} over/keys right after, +50ms, +350ms: {out}  errors {oom}")
ember = sys.argv[1]
for policy in ('allkeys-lru',):
    for _ in range(1):
        run([ember, '--threads', '1', '--busy-poll-us', '0', '--save', ''], f'ember {policy}', policy)
        run(['redis-server', '--save', '', '--appendonly', 'no'], f'redis {policy}', policy)
