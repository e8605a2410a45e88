#!/usr/bin/env python3
"""Django's cache and sessions on django-redis, against a Redis-compatible server.

Configures Django in the script (no project folder), with django_redis.cache.RedisCache as the
default cache and the cache session engine, then goes through the cache API as views use it:
set/get with timeouts, add, get_many/set_many (MGET across keys that Ember keeps on different
shards), delete_many, incr/decr (django-redis runs them as a Lua script), get_or_set, ttl/pttl,
touch, persist/expire, keys/iter_keys/delete_pattern (SCAN with MATCH), versions, cache.lock
from several threads at once, a counter raced by threads, clear(), and a session's life: create,
load, change, expire, delete. Exits non-zero with a message on the first wrong result.

    python3 examples/frameworks/django/main.py --url redis://127.0.0.1:6379/1
"""

import argparse
import sys
import threading
import time

import django
from django.conf import settings

THREAD_COUNT = 8
INCREMENTS_PER_THREAD = 50
LOCKED_SECTIONS_PER_THREAD = 10
BULK_KEY_COUNT = 300


def fail(message):
    print(f"django example: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def expect(label, actual, expected):
    if actual != expected:
        fail(f"{label}: got {actual!r}, expected {expected!r}")


def configure(url):
    settings.configure(
        DEBUG=False,
        SECRET_KEY="example-only-not-secret",
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"],
        CACHES={
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": url,
                "KEY_PREFIX": "example",
                "TIMEOUT": 300,
                "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
            }
        },
        SESSION_ENGINE="django.contrib.sessions.backends.cache",
        SESSION_CACHE_ALIAS="default",
    )
    django.setup()


def check_basics(cache):
    cache.set("greeting", "hello", timeout=60)
    expect("get", cache.get("greeting"), "hello")
    expect("get of a missing key with a default", cache.get("missing", "fallback"), "fallback")
    expect("has_key", cache.has_key("greeting"), True)
    expect("add over an existing key", cache.add("greeting", "other"), False)
    expect("add of a new key", cache.add("fresh", {"nested": [1, 2, 3]}), True)
    expect("a pickled dict", cache.get("fresh"), {"nested": [1, 2, 3]})
    cache.set("greeting", "replaced", nx=True)
    expect("set with nx over an existing key", cache.get("greeting"), "hello")
    cache.set("versioned", "one", version=1)
    cache.set("versioned", "two", version=2)
    expect("version 1", cache.get("versioned", version=1), "one")
    expect("version 2", cache.get("versioned", version=2), "two")
    expect("delete", cache.delete("greeting"), True)
    expect("delete of a missing key", cache.delete("greeting"), False)
    expect("get after delete", cache.get("greeting"), None)
    cache.set("big integer", 2**70)
    expect("an integer past 64 bits", cache.get("big integer"), 2**70)
    cache.set("float", 1.5)
    expect("a float", cache.get("float"), 1.5)


def check_many(cache):
    values = {f"bulk:{index}": index * 7 for index in range(BULK_KEY_COUNT)}
    cache.set_many(values, timeout=120)
    found = cache.get_many(list(values) + ["bulk:absent"])
    expect("get_many", found, values)
    cache.delete_many([f"bulk:{index}" for index in range(0, BULK_KEY_COUNT, 2)])
    found = cache.get_many(list(values))
    expect("get_many after delete_many", found,
           {key: value for key, value in values.items() if int(key.split(":")[1]) % 2 == 1})
    listed = sorted(cache.keys("bulk:*"))
    expect("keys('bulk:*')", listed, sorted(key for key in found))
    iterated = sorted(cache.iter_keys("bulk:*", itersize=25))
    expect("iter_keys('bulk:*')", iterated, listed)
    deleted = cache.delete_pattern("bulk:*", itersize=25)
    expect("delete_pattern's count", deleted, len(listed))
    expect("keys after delete_pattern", cache.keys("bulk:*"), [])


def check_counters(cache):
    cache.set("hits", 10)
    expect("incr", cache.incr("hits"), 11)
    expect("incr by 5", cache.incr("hits", 5), 16)
    expect("decr by 6", cache.decr("hits", 6), 10)
    expect("get of a counter", cache.get("hits"), 10)
    try:
        cache.incr("no such counter")
    except ValueError:
        pass
    else:
        fail("incr of a missing key did not raise ValueError")
    expect("incr with ignore_key_check", cache.incr("new counter", 3, ignore_key_check=True), 3)
    # Past a signed 64-bit integer INCRBY fails; django-redis then reads, adds and writes back.
    cache.set("huge", 2**63 - 1)
    expect("incr past 64 bits", cache.incr("huge"), 2**63)

    cache.set("raced", 0)

    def increment():
        for _ in range(INCREMENTS_PER_THREAD):
            cache.incr("raced")

    threads = [threading.Thread(target=increment) for _ in range(THREAD_COUNT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expect("a counter incremented by threads", cache.get("raced"), THREAD_COUNT * INCREMENTS_PER_THREAD)


def check_expiry(cache):
    cache.set("short", "lived", timeout=1)
    ttl = cache.ttl("short")
    if ttl not in (0, 1):
        fail(f"ttl of a 1s key is {ttl!r}")
    cache.set("long", "lived", timeout=100)
    pttl = cache.pttl("long")
    if not 90_000 < pttl <= 100_000:
        fail(f"pttl of a 100s key is {pttl!r}")
    cache.set("forever", "lived", timeout=None)
    expect("ttl of a key without expiry", cache.ttl("forever"), None)
    expect("ttl of a missing key", cache.ttl("never set"), 0)
    expect("touch", cache.touch("long", 500), True)
    ttl = cache.ttl("long")
    if not 490 < ttl <= 500:
        fail(f"ttl after touch(500) is {ttl!r}")
    expect("touch of a missing key", cache.touch("never set", 10), False)
    expect("persist", cache.persist("long"), True)
    expect("ttl after persist", cache.ttl("long"), None)
    expect("expire", cache.expire("long", 30), True)
    ttl = cache.ttl("long")
    if not 25 < ttl <= 30:
        fail(f"ttl after expire(30) is {ttl!r}")
    cache.set("gone soon", "x", timeout=0)
    expect("a key set with timeout 0", cache.get("gone soon"), None)
    cache.set("tiny", "x", timeout=0.3)
    deadline = time.time() + 5
    while cache.get("tiny") is not None:
        if time.time() > deadline:
            fail("a key set with timeout 0.3 was still there after 5 seconds")
        time.sleep(0.05)
    expect("get_or_set of a new key", cache.get_or_set("computed", lambda: "made", timeout=60), "made")
    expect("get_or_set of an existing key", cache.get_or_set("computed", lambda: "again"), "made")


def check_locks(cache):
    inside = []
    overlap = []
    inside_lock = threading.Lock()

    def worker():
        for _ in range(LOCKED_SECTIONS_PER_THREAD):
            # blocking_timeout bounds the wait, so a lock that is never released fails the check.
            with cache.lock("resource", timeout=10, blocking_timeout=30):
                with inside_lock:
                    inside.append(1)
                    if len(inside) > 1:
                        overlap.append(len(inside))
                time.sleep(0.001)
                with inside_lock:
                    inside.pop()

    threads = [threading.Thread(target=worker) for _ in range(THREAD_COUNT // 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if overlap:
        fail(f"cache.lock let {max(overlap)} threads in at once")
    lock = cache.lock("held", timeout=5)
    expect("acquire", lock.acquire(blocking=False), True)
    expect("second acquire of a held lock", cache.lock("held", timeout=5).acquire(blocking=False), False)
    lock.extend(10)
    lock.release()
    expect("acquire after release", cache.lock("held", timeout=5).acquire(blocking=False), True)


def check_sessions():
    from django.contrib.sessions.backends.cache import SessionStore

    session = SessionStore()
    session["user_id"] = 42
    session["cart"] = ["apple", "pear"]
    session.set_expiry(300)
    session.save()
    key = session.session_key
    if not key:
        fail("a saved session has no key")
    loaded = SessionStore(session_key=key)
    expect("a loaded session's user", loaded["user_id"], 42)
    expect("a loaded session's cart", loaded["cart"], ["apple", "pear"])
    loaded["cart"].append("plum")
    loaded.modified = True
    loaded.save()
    expect("a changed session", SessionStore(session_key=key)["cart"], ["apple", "pear", "plum"])
    expect("exists", SessionStore().exists(key), True)
    loaded.delete()
    expect("exists after delete", SessionStore().exists(key), False)
    expect("a deleted session loads empty", dict(SessionStore(session_key=key).items()), {})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/1")
    args = parser.parse_args()
    configure(args.url)
    from django.core.cache import cache

    cache.clear()
    check_basics(cache)
    check_many(cache)
    check_counters(cache)
    check_expiry(cache)
    check_locks(cache)
    check_sessions()
    cache.clear()
    expect("keys after clear", cache.keys("*"), [])
    print("django example: all checks passed")


if __name__ == "__main__":
    main()
