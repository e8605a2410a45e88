#!/usr/bin/env python3
"""Time of FLUSHALL SYNC and ASYNC of KEYS keys as the client sees it and as the server logs it.

    PYTHONPATH=.deps/python-redis python3 bench/scripts/flushall-time.py PORT [KEYS]

Fills the keys with redis-benchmark (`-t set -r 1000000000 -P 100`), which must be on PATH.
"""
import subprocess
import sys
import time

import redis

port = int(sys.argv[1])
keys = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
r = redis.Redis(port=port)
r.config_set("slowlog-log-slower-than", 0)
for mode in ["SYNC", "ASYNC", "SYNC", "ASYNC"]:
    subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-n", str(keys),
                    "-r", "1000000000", "-P", "100", "-q"], check=True, capture_output=True)
    held = r.dbsize()
    r.slowlog_reset()
    began = time.perf_counter()
    r.execute_command("FLUSHALL", mode)
    client_ms = (time.perf_counter() - began) * 1000
    logged = [e["duration"] for e in r.slowlog_get(10) if e["command"].upper().startswith(b"FLUSHALL")]
    print(f"port {port}: FLUSHALL {mode} of {held} keys: client {client_ms:.1f} ms, server {logged[0] if logged else '?'} us")
