#!/usr/bin/env python3
# What a blocked pop costs when a push serves it: one client waits in BRPOP, another pushes,
# and the time from the push's send to the waiter's reply is taken, ROUNDS times, on fresh
# keys spread over the shards. Also the throughput of a queue with waiters: WORKERS threads
# loop on BRPOP while one producer pipelines LPUSHes. Usage:
#   python3 wake-latency.py PORT ROUNDS [WORKERS ITEMS]
import socket, statistics, sys, threading, time
port = int(sys.argv[1]); rounds = int(sys.argv[2])
def conn():
    s = socket.create_connection(("127.0.0.1", port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1); return s
def cmd(*a):
    out = b"*%d\r\n" % len(a)
    for x in a:
        x = x.encode() if isinstance(x, str) else x
        out += b"$%d\r\n%s\r\n" % (len(x), x)
    return out
def read_reply(s):
    data = b""
    while not data.endswith(b"\r\n") or data.count(b"\r\n") < expected_lines(data):
        chunk = s.recv(4096)
        if not chunk: raise EOFError
        data += chunk
    return data
def expected_lines(data):
    if data.startswith(b"*"):
        n = int(data[1:data.index(b"\r\n")])
        return 1 + 2 * n if n > 0 else 1
    if data.startswith(b"$"):
        return 2 if not data.startswith(b"$-1") else 1
    return 1
pusher = conn(); waiter = conn()
lat = []
for i in range(rounds):
    key = "wq%d" % (i % 64)
    waiter.sendall(cmd("BRPOP", key, "0"))
    # Wait until it is blocked: CLIENT LIST would cost more; a short pause is enough here.
    time.sleep(0.0005)
    t0 = time.perf_counter()
    pusher.sendall(cmd("LPUSH", key, "x")); read_reply(pusher)
    read_reply(waiter)
    lat.append((time.perf_counter() - t0) * 1e6)
lat.sort()
print("wake latency us: p50 %.1f p90 %.1f p99 %.1f (n=%d)" % (lat[len(lat)//2], lat[len(lat)*9//10], lat[len(lat)*99//100], len(lat)))
if len(sys.argv) > 3:
    workers = int(sys.argv[3]); items = int(sys.argv[4])
    got = [0] * workers
    def work(w):
        s = conn()
        while True:
            s.sendall(cmd("BRPOP", "jobs", "1"))
            r = read_reply(s)
            if r.startswith(b"*-1"): break
            got[w] += 1
    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads: t.start()
    time.sleep(0.2)
    p = conn(); t0 = time.perf_counter(); batch = 50
    for i in range(0, items, batch):
        p.sendall(b"".join(cmd("LPUSH", "jobs", "j") for _ in range(batch)))
        n = 0
        while n < batch:
            n += p.recv(65536).count(b"\r\n")
    while sum(got) < items and time.perf_counter() - t0 < 60: time.sleep(0.001)
    dt = time.perf_counter() - t0
    print("queue: %d items through %d waiting workers in %.2f s: %.0f items/s" % (sum(got), workers, dt, sum(got) / dt))
    for t in threads: t.join()
