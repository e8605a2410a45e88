#!/usr/bin/env python3
"""used_memory per idle connection: opens N connections that each send one PING, then reads
used_memory at once and after WAIT seconds of idleness.

    PYTHONPATH=.deps/python-redis python3 bench/scripts/idle-connection-memory.py PORT [N] [WAIT]

Run it against ember and redis-server side by side (each freshly started).
"""
import socket
import sys
import time

import redis

port = int(sys.argv[1])
count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
wait_s = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
r = redis.Redis(port=port)


def used():
    return r.info("memory")["used_memory"]


before = used()
sockets = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"PING\r\n")
    sockets.append(s)
for s in sockets:
    s.recv(100)
time.sleep(0.5)
print(f"port {port}: {(used() - before) / count:,.0f} bytes per connection after its PING")
time.sleep(wait_s)
print(f"port {port}: {(used() - before) / count:,.0f} bytes per connection after {wait_s:g} s idle")
