"""MIGRATE throughput, Ember and redis-server side by side: each source (Ember with --threads
THREADS, a redis-server) moves N 100-byte strings to one redis-server target, one MIGRATE per key
and then one MIGRATE ... KEYS with all of them; 3 alternating rounds, medians and ratios. Every
run checks that the target holds N keys and the source none.

    PYTHONPATH=.deps/python-redis python3 bench/migrate-vs-redis.py THREADS
"""
import sys, time, statistics, subprocess, socket, redis
def free():
    s=socket.socket(); s.bind(("127.0.0.1",0)); p=s.getsockname()[1]; s.close(); return p
ports={}
procs=[]
ports['target']=free(); procs.append(subprocess.Popen(["redis-server","--port",str(ports['target']),"--save","","--appendonly","no"],stdout=subprocess.DEVNULL))
ports['redis']=free(); procs.append(subprocess.Popen(["redis-server","--port",str(ports['redis']),"--save","","--appendonly","no"],stdout=subprocess.DEVNULL))
ports['ember']=free(); procs.append(subprocess.Popen(["target/debug/ember","--threads",sys.argv[1],"--port",str(ports['ember']),"--bind","127.0.0.1"],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL))
time.sleep(1.5)
N=2000
target=redis.Redis(port=ports['target'])
res={'ember':{'single':[],'keys':[]},'redis':{'single':[],'keys':[]}}
try:
    for rnd in range(3):
        for name in ['ember','redis']:
            src=redis.Redis(port=ports[name])
            for form in ['single','keys']:
                target.flushall(); src.flushall()
                keys=[f"key:{i}" for i in range(N)]
                src.mset({k: b"v"*100 for k in keys})
                t=time.perf_counter()
                if form=='single':
                    for k in keys:
                        assert src.execute_command("MIGRATE","127.0.0.1",ports['target'],k,0,5000)==b"OK"
                else:
                    assert src.execute_command("MIGRATE","127.0.0.1",ports['target'],"",0,5000,"KEYS",*keys)==b"OK"
                dt=time.perf_counter()-t
                assert target.dbsize()==N and src.dbsize()==0
                res[name][form].append(N/dt)
finally:
    for p in procs: p.kill()
for form in ['single','keys']:
    e=statistics.median(res['ember'][form]); r=statistics.median(res['redis'][form])
    print(f"{form}: ember {e:,.0f} keys/s, redis {r:,.0f} keys/s, ratio {e/r:.2f}  (rounds ember {[round(x) for x in res['ember'][form]]}, redis {[round(x) for x in res['redis'][form]]})")
