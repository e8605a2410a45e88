"""Fills a key with one large value of a type, for the scripts that measure large values
(large-delete.py, large-expire.py)."""

KINDS = ["zset", "set", "hash", "list"]


def fill(r, key, kind, members):
    """Sets `key` (deleted first) to a `kind` of `members` members, 10,000 per command."""
    r.delete(key)
    for start in range(0, members, 10_000):
        batch = [f"member:{j}" for j in range(start, min(start + 10_000, members))]
        if kind == "zset":
            r.zadd(key, {m: j for j, m in enumerate(batch)})
        elif kind == "set":
            r.sadd(key, *batch)
        elif kind == "hash":
            r.hset(key, mapping={m: "v" for m in batch})
        else:
            r.rpush(key, *batch)
