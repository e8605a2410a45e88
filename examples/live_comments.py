#!/usr/bin/env python3
"""Live comments: S subscribers on one channel (a live event's comment stream), one publisher
sending M comments, each stamped with its send time; every subscriber receives every comment and
the script reports delivery latency (publish to receipt) at p50/p99/max and the deliveries per
second. Raw RESP over non-blocking sockets, so thousands of subscribers fit in one process.

    python3 examples/live_comments.py [--port 6379] [--subscribers 1000] [--messages 200]

Works against Ember and Redis alike. Exit status 0 when every subscriber got every comment in
publish order.
"""
import argparse
import resource
import selectors
import socket
import time


def encode(*args):
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


class Subscriber:
    """One connection and the messages it has read (parsed from RESP2 pushes)."""

    def __init__(self, port, channel):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(encode("SUBSCRIBE", channel))
        self.buffer = b""
        self.confirmed = False
        self.received = []  # (sequence, latency seconds)
        self.sock.setblocking(False)

    def feed(self, now):
        try:
            chunk = self.sock.recv(1 << 16)
        except BlockingIOError:
            return
        self.buffer += chunk
        while True:
            frame = self._frame()
            if frame is None:
                return
            kind = frame[0]
            if kind == b"subscribe":
                self.confirmed = True
            elif kind == b"message":
                sequence, sent = frame[2].split(b":")
                self.received.append((int(sequence), now - float(sent)))

    def _frame(self):
        """One `*3` push from the buffer, or None when incomplete."""
        buffer = self.buffer
        if not buffer.startswith(b"*"):
            return None
        at = buffer.find(b"\r\n")
        if at < 0:
            return None
        count, at = int(buffer[1:at]), at + 2
        items = []
        for _ in range(count):
            end = buffer.find(b"\r\n", at)
            if end < 0:
                return None
            header = buffer[at:end]
            if header.startswith(b":"):
                items.append(header[1:])
                at = end + 2
                continue
            length = int(header[1:])
            start = end + 2
            if len(buffer) < start + length + 2:
                return None
            items.append(buffer[start:start + length])
            at = start + length + 2
        self.buffer = buffer[at:]
        return items


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--channel", default="live:event-42:comments")
    options = parser.parse_args()
    # One socket per subscriber: raise the soft limit on open files as far as the hard one allows.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = options.subscribers + 64
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    selector = selectors.DefaultSelector()
    subscribers = []
    for _ in range(options.subscribers):
        subscriber = Subscriber(options.port, options.channel)
        selector.register(subscriber.sock, selectors.EVENT_READ, subscriber)
        subscribers.append(subscriber)
    deadline = time.time() + 30
    while not all(s.confirmed for s in subscribers) and time.time() < deadline:
        for key, _ in selector.select(timeout=0.1):
            key.data.feed(time.time())
    publisher = socket.create_connection(("127.0.0.1", options.port))
    expected = options.subscribers * options.messages
    started = time.time()
    for sequence in range(options.messages):
        publisher.sendall(encode("PUBLISH", options.channel, f"{sequence}:{time.time():.6f}"))
        publisher.recv(64)  # its count of receivers
        for key, _ in selector.select(timeout=0):
            key.data.feed(time.time())
    deadline = time.time() + 60
    while sum(len(s.received) for s in subscribers) < expected and time.time() < deadline:
        for key, _ in selector.select(timeout=0.1):
            key.data.feed(time.time())
    elapsed = time.time() - started
    latencies = [latency for s in subscribers for _, latency in s.received]
    in_order = all([seq for seq, _ in s.received] == list(range(options.messages))
                   for s in subscribers)
    ok = len(latencies) == expected and in_order
    print(f"{options.subscribers} subscribers x {options.messages} comments: "
          f"{len(latencies)} of {expected} delivered in {elapsed:.2f} s "
          f"({len(latencies) / elapsed:,.0f} deliveries/s); latency p50 "
          f"{percentile(latencies, 0.5) * 1000:.2f} ms, p99 {percentile(latencies, 0.99) * 1000:.2f} ms, "
          f"max {max(latencies) * 1000:.2f} ms -> {'all in order' if ok else 'LOST OR OUT OF ORDER'}")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
