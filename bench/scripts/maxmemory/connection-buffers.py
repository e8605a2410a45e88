# usage (from the repository root): python3 bench/scripts/maxmemory/connection-buffers.py EMBER_BINARY [warm]
# The hit-ratio harness's pattern on one connection, without a limit: used_memory at the baseline,
# after 30 keys of 1 KiB set in two pipelines of 15, and after 20 pipelines of 64 GETs; "non-key"
# is how far memory no key owns moved after the keys were set (Redis and Ember side by side).
# With "warm", one pipeline of 15 SETs and one of 64 GETs run before the baseline.
import sys
from servers import start

warm = len(sys.argv) > 2


def measure(cmd, label):
    proc, r = start(cmd)
    v = b"v" * 1024

    def pipe(cmds):
        p = r.pipeline(transaction=False)
        for c in cmds:
            p.execute_command(*c)
        return p.execute()

    r.config_set("maxmemory", 0); r.flushall(); r.config_resetstat()
    r.get("w"); r.set("w", "x"); r.dbsize(); r.config_get("maxmemory")
    if warm:
        pipe([("SET", "w", v)] * 15); pipe([("GET", "w")] * 64)
    r.flushall(); r.info("memory"); r.info("stats")
    base = r.info("memory")["used_memory"]
    pipe([("SET", "key:%d" % i, v) for i in range(15)]); pipe([("SET", "key:%d" % i, v) for i in range(15, 30)])
    keys = r.info("memory")["used_memory"]
    for _ in range(20):
        pipe([("GET", "key:%d" % i) for i in range(64)])
    after = r.info("memory")["used_memory"]
    print(f"{label}: baseline {base}, 30 keys +{keys - base} ({(keys - base) / 30:.0f} a key), "
          f"after the GETs +{after - base} (non-key {after - keys:+d})")
    proc.terminate(); proc.wait()


sys.path.insert(0, ".")
measure(["redis-server", "--save", "", "--appendonly", "no"], "redis-server")
measure([sys.argv[1], "--threads", "1", "--busy-poll-us", "0", "--save", ""], "ember")
