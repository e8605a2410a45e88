#!/usr/bin/env python3
"""Server time of deleting one large value of each type, from SLOWLOG (slowlog-log-slower-than 0).

    PYTHONPATH=.deps/python-redis python3 bench/scripts/large-delete.py PORT DEL|UNLINK [MEMBERS]

Fills `big` with MEMBERS (default 1,000,000) members as a sorted set, a set, a hash and a list in
turn (10,000 per command), deletes it with the given command and prints the wall time the client
saw and the duration the server logged. Run it against ember and redis-server side by side.
"""
import sys
import time

import redis

from big_values import KINDS, fill

port, command = int(sys.argv[1]), sys.argv[2]
members = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
r = redis.Redis(port=port)
r.config_set("slowlog-log-slower-than", 0)
for kind in KINDS:
    fill(r, "big", kind, members)
    r.slowlog_reset()
    began = time.time()
    r.execute_command(command, "big")
    wall_ms = (time.time() - began) * 1000
    entries = [e for e in r.slowlog_get(5) if e["command"].upper().startswith(command.upper().encode())]
    server_us = entries[0]["duration"] if entries else None
    print(f"{kind:5} {command} of {members} members: wall {wall_ms:.1f} ms, server {server_us} us")
