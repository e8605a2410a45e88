# usage (from the repository root): python3 bench/scripts/maxmemory/footprint-steps.py BINARY PORT
# used_memory growth after each step (a key, a pipeline of large replies, a flush); BINARY may be redis-server.
import sys, time, subprocess
sys.path.insert(0, '.deps/python-redis')
import redis
p=int(sys.argv[2])
cmd = [sys.argv[1], '--threads', '1', '--busy-poll-us', '0', '--port', str(p)] if 'ember' in sys.argv[1] else [sys.argv[1], '--port', str(p), '--save', '']
proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1)
r = redis.Redis(port=p)
def used(): return int(r.info('memory')['used_memory'])
for c in [lambda: r.get('w'), lambda: r.set('w','x'), lambda: r.delete('w'), lambda: r.dbsize()]: c()
last = used()
def step(label, f):
    global last
    f(); time.sleep(0.05); u = used(); print(f'{label:34} {u-last:+}'); last = u
step('nothing', lambda: None)
step('SET 1KiB', lambda: r.set('a', b'x'*1024))
step('DEL', lambda: r.delete('a'))
step('SET 1KiB', lambda: r.set('a', b'x'*1024))
def pipe(n, k):
    pl = r.pipeline(transaction=False)
    for j in range(n): pl.get('a')
    pl.execute()
step('pipeline of 16 GET 1KiB', lambda: pipe(16, 0))
step('pipeline of 64 GET 1KiB', lambda: pipe(64, 0))
step('pipeline of 64 GET 1KiB again', lambda: pipe(64, 0))
step('DEL', lambda: r.delete('a'))
for i in range(5):
    step(f'SET k{i} 1KiB', lambda: r.set(f'k{i}', b'x'*1024))
step('FLUSHALL', lambda: r.flushall())
proc.terminate()
