#!/usr/bin/env python3
"""How often a command sent on a fresh connection runs after a command sent later on an open one.

    PYTHONPATH=.deps/python-redis python3 bench/scripts/connection-order.py PORT [TRIES]

Each try opens a connection, sends RPUSH order rd on it without waiting, then RPUSH order r on an
open connection (waiting for its reply), and counts the tries where `r` came first. Redis's TCL
tests that send a blocking command on a new deferring client and change the key at once from
another assume the first order.
"""
import socket, sys, time, redis
port=int(sys.argv[1]); n=int(sys.argv[2]) if len(sys.argv)>2 else 200
r=redis.Redis(port=port)
viol=0
for i in range(n):
    r.delete('order')
    s=socket.create_connection(('127.0.0.1',port))
    s.sendall(b"*3\r\n$5\r\nRPUSH\r\n$5\r\norder\r\n$2\r\nrd\r\n")
    r.rpush('order','r')
    s.recv(100); s.close()
    if r.lrange('order',0,-1)[0]!=b'rd': viol+=1
    time.sleep(0.003 if i%2 else 0.0)
print(port, 'new connection ran second:', viol, 'of', n)
