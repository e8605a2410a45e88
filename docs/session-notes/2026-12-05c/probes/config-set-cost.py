# usage (repository root): python3 docs/session-notes/2026-12-05c/probes/config-set-cost.py SERVER [ARGS...]
# What CONFIG SET maxmemory, SET and DBSIZE cost in used_memory after the hit-ratio harness's
# baseline (e.g. target/release/ember --threads 1 --save "", or redis-server --save "" --appendonly no).
import sys
sys.path.insert(0, 'bench/scripts/maxmemory')
from servers import start
proc, r = start(sys.argv[1:])
r.config_set("maxmemory", 0); r.flushall(); r.config_resetstat()
r.get("w"); r.set("w","x"); r.dbsize(); r.config_get("maxmemory"); r.flushall()
r.info("stats"); r.info("stats"); r.info("stats")
def mem(): return r.info("memory")["used_memory"]
base = mem()
for step in range(3):
    r.config_set("maxmemory", 0); m = mem(); print("config set:", m - base); base = m
r.set("a", b"v"*1024); m = mem(); print("set:", m-base); base = m
r.execute_command("DBSIZE"); m = mem(); print("dbsize:", m-base)
proc.terminate(); proc.wait()
