#!/usr/bin/env python3
"""Live comment screening before fan-out: a word filter attached to a pub/sub channel.

Banned words go into a server-wide filter (case and full-width folding, so "ＳＰＡＭ" and
"Spam" match "spam"); FILTER.ATTACH makes PUBLISH to `live:masked` mask them and PUBLISH to
`live:strict` drop the message. A subscriber checks what it receives, and FILTER.ADD while
running applies to the next message.

    python3 examples/comment_filter.py --port 6379
"""

import argparse
import sys
import time

import redis


def check(condition, message):
    if not condition:
        print("FAILED: " + message)
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6379)
    args = parser.parse_args()
    r = redis.Redis(host=args.host, port=args.port)
    dropped_before = r.info("protection")["filter_dropped_messages"]
    try:  # a word added by an earlier run
        r.execute_command("FILTER.DEL", "banned", "goal")
    except redis.ResponseError:
        pass
    r.execute_command("FILTER.ADD", "banned", "spam", "scam", "坏人")
    r.execute_command("FILTER.ATTACH", "live:masked", "banned", "MASK")
    r.execute_command("FILTER.ATTACH", "live:strict", "banned", "DROP")
    found = r.execute_command("FILTER.CHECK", "banned", "no SPAM here")
    check(found == [[b"spam", 3, 7]], "FILTER.CHECK %r" % found)

    sub = r.pubsub()
    sub.subscribe("live:masked", "live:strict")
    for _ in range(2):
        sub.get_message(timeout=1)
    r.publish("live:masked", "great game, ＳＰＡＭ below")
    r.publish("live:masked", "他是坏人")
    check(r.publish("live:strict", "buy cheap scam now") == 0, "a DROP filter delivers nothing")
    r.publish("live:strict", "what a goal")
    r.execute_command("FILTER.ADD", "banned", "goal")
    r.publish("live:masked", "what a goal")
    received = []
    deadline = time.time() + 5
    while len(received) < 4 and time.time() < deadline:
        message = sub.get_message(timeout=0.5)
        if message and message["type"] == "message":
            received.append((message["channel"].decode(), message["data"].decode()))
    expected = [
        ("live:masked", "great game, **** below"),
        ("live:masked", "他是**"),
        ("live:strict", "what a goal"),
        ("live:masked", "what a ****"),
    ]
    for channel, text in received:
        print("%s: %s" % (channel, text))
    check(received == expected, "received %r" % received)
    dropped = r.info("protection")["filter_dropped_messages"] - dropped_before
    check(dropped == 1, "INFO counts the dropped message (%d)" % dropped)
    r.execute_command("FILTER.DETACH", "live:masked")
    r.execute_command("FILTER.DETACH", "live:strict")
    r.execute_command("FILTER.DEL", "banned", "spam", "scam", "坏人", "goal")
    print("comment_filter: masked and dropped before fan-out")


if __name__ == "__main__":
    main()
