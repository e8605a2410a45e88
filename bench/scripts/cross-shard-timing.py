#!/usr/bin/env python3
"""What SLOWLOG and INFO commandstats say about commands that waited for another shard.

One connection puts its shard to sleep (DEBUG SLEEP 0.2); a connection on the other shard
pipelines 20 GETs of keys spread over both shards meanwhile, then an MGET of them. In Redis
(one thread) those commands wait too, but only the sleep is slow: the slow log holds DEBUG
SLEEP alone and the commands' usec_per_call stays at their execution time. Prints the slow
log and the GET and MGET statistics.

    PYTHONPATH=.deps/python-redis python3 bench/scripts/cross-shard-timing.py PORT

Needs a server with at least two shards (Ember's default on two or more cores) started with
`--enable-debug-command yes`; against a one-shard server or redis-server it says so, since
nothing can run while the sleep lasts.
"""
import sys
import threading
import time

import redis


def main():
    port = int(sys.argv[1])
    conns = [redis.Redis(port=port) for _ in range(8)]
    for conn in conns:
        conn.ping()
    keys = [f"timing:{i}" for i in range(20)]
    for key in keys:
        conns[0].set(key, "v")
    admin = conns[0]
    admin.config_set("slowlog-log-slower-than", 10000)

    def sleep(seconds):
        conns[0].execute_command("DEBUG", "SLEEP", seconds)

    def blocked_by_sleep(other):
        sleeper = threading.Thread(target=sleep, args=("0.3",))
        sleeper.start()
        time.sleep(0.05)
        started = time.time()
        other.ping()
        waited = time.time() - started
        sleeper.join()
        return waited > 0.1

    # A connection the sleep does not block: on the other shard.
    other = next((conn for conn in conns[1:] if not blocked_by_sleep(conn)), None)
    if other is None:
        sys.exit("every connection waited for the sleep: one shard (or redis-server)")
    admin.slowlog_reset()
    admin.config_resetstat()
    sleeper = threading.Thread(target=sleep, args=("0.2",))
    sleeper.start()
    time.sleep(0.05)
    pipe = other.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
    pipe.mget(keys)
    started = time.time()
    pipe.execute()
    print(f"pipeline of 20 GETs and an MGET took {time.time() - started:.3f} s")
    sleeper.join()
    print("slow log (us, command):")
    for entry in admin.slowlog_get(50):
        print(f"  {entry['duration']} {entry['command'].decode()}")
    stats = admin.info("commandstats")
    for command in ("get", "mget"):
        print(f"cmdstat_{command}: {stats.get('cmdstat_' + command)}")


if __name__ == "__main__":
    main()
