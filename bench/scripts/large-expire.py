#!/usr/bin/env python3
"""What a large value's expiry costs the server: the active expire cycle that removes it, as the
latency monitor records it, and the longest a PING waited meanwhile.

    PYTHONPATH=.deps/python-redis python3 bench/scripts/large-expire.py PORT [MEMBERS]

For a sorted set, a set, a hash and a list of MEMBERS members (default 1,000,000) in turn: fills
`big`, gives it a 20 ms TTL and leaves it to the active expiry while a client PINGs once a
millisecond for 400 ms; prints the `expire-cycle` event's worst duration (LATENCY LATEST,
`latency-monitor-threshold 1`) and the slowest PING. Run it against ember and redis-server side by
side, with `lazyfree-lazy-expire` no and yes (CONFIG SET before the run).
"""
import sys
import time

import redis

from big_values import KINDS, fill

port = int(sys.argv[1])
members = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
r = redis.Redis(port=port)
r.config_set("latency-monitor-threshold", 1)
lazy = r.config_get("lazyfree-lazy-expire").get("lazyfree-lazy-expire", "?")
for kind in KINDS:
    fill(r, "big", kind, members)
    r.execute_command("LATENCY", "RESET")
    r.pexpire("big", 20)
    slowest = 0.0
    until = time.time() + 0.4
    while time.time() < until:
        began = time.time()
        r.ping()
        slowest = max(slowest, time.time() - began)
        time.sleep(0.001)
    worst_ms = 0
    for event in r.execute_command("LATENCY", "LATEST"):
        name = event[0].decode() if isinstance(event[0], bytes) else event[0]
        if name == "expire-cycle":
            worst_ms = event[3]
    print(f"{kind:5} of {members} members, lazyfree-lazy-expire {lazy}: "
          f"expire-cycle {worst_ms} ms, slowest PING {slowest * 1000:.1f} ms, "
          f"left: {r.exists('big')}")
