#!/usr/bin/env python3
"""Bytes of used_memory per key: writes N keys of 16-byte names and 16-byte values (optionally
with a TTL) to a running server over raw RESP, pipelined 1,000 at a time, and divides the growth
of INFO used_memory by N. Run it against ember and redis-server side by side (issue 14's
"memory per key" goal: at most 0.7x Redis).

    python3 bench/scripts/bytes_per_key.py PORT [N] [--ttl]
"""
import socket
import subprocess
import sys
import time


def used_memory(port):
    info = subprocess.run(["redis-cli", "-p", str(port), "info", "memory"],
                          capture_output=True, text=True, check=True).stdout
    line = next(l for l in info.splitlines() if l.startswith("used_memory:"))
    return int(line.split(":")[1])


def encode(args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def main():
    port = int(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 1_000_000
    ttl = "--ttl" in sys.argv
    before = used_memory(port)
    conn = socket.create_connection(("127.0.0.1", port))
    batch = 1000
    pending = b""
    for i in range(count):
        args = [b"SET", b"key:%012d" % i, b"val:%012d" % i]
        if ttl:
            args += [b"EX", b"100000"]
        pending += encode(args)
        if (i + 1) % batch == 0 or i + 1 == count:
            conn.sendall(pending)
            expected = batch if (i + 1) % batch == 0 else (i + 1) % batch
            pending = b""
            replies = b""
            while replies.count(b"\r\n") < expected:
                replies += conn.recv(65536)
    time.sleep(0.5)
    after = used_memory(port)
    print(f"{count} keys{' with TTL' if ttl else ''}: {(after - before) / count:.1f} bytes/key")


if __name__ == "__main__":
    main()
