"""The dramatiq application of main.py: Redis broker, Redis result backend, Redis rate limiter.

The worker (`dramatiq app`) and the client import this module; both read the server's address
from DRAMATIQ_EXAMPLE_URL and the broker's namespace from DRAMATIQ_EXAMPLE_NAMESPACE.
"""

import os
import time

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.rate_limits import ConcurrentRateLimiter
from dramatiq.rate_limits.backends import RedisBackend as RateLimiterBackend
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend as ResultBackend

URL = os.environ["DRAMATIQ_EXAMPLE_URL"]
NAMESPACE = os.environ["DRAMATIQ_EXAMPLE_NAMESPACE"]
ATTEMPTS_KEY = f"{NAMESPACE}:attempts"
COUNTER_KEY = f"{NAMESPACE}:counter"
# Backoffs in milliseconds: short, so that retries do not stretch the run.
RETRY_BACKOFF_MIN_MS = 100
RETRY_BACKOFF_MAX_MS = 500

broker = RedisBroker(url=URL, namespace=NAMESPACE)
broker.add_middleware(Results(backend=ResultBackend(url=URL, namespace=f"{NAMESPACE}-results")))
dramatiq.set_broker(broker)
client = redis.Redis.from_url(URL)
# A mutex across workers: at most one holder of "counter" at a time.
counter_mutex = ConcurrentRateLimiter(RateLimiterBackend(url=URL), f"{NAMESPACE}-counter", limit=1)


@dramatiq.actor(store_results=True)
def add(left, right):
    return left + right


@dramatiq.actor(store_results=True, max_retries=3, min_backoff=RETRY_BACKOFF_MIN_MS,
                max_backoff=RETRY_BACKOFF_MAX_MS)
def flaky(failures_before_success):
    attempt = client.incr(ATTEMPTS_KEY)
    if attempt <= failures_before_success:
        raise RuntimeError(f"attempt {attempt} fails on purpose")
    return attempt


@dramatiq.actor(store_results=True, max_retries=0)
def always_fails():
    raise ValueError("this task always fails")


@dramatiq.actor(store_results=True)
def stamp():
    return time.time()


# A message that finds the mutex taken raises RateLimitExceeded, which dramatiq retries later.
@dramatiq.actor(store_results=True, max_retries=1000, min_backoff=10, max_backoff=100)
def locked_increment():
    with counter_mutex.acquire():
        value = int(client.get(COUNTER_KEY) or 0)
        time.sleep(0.005)
        client.set(COUNTER_KEY, value + 1)
        return value + 1
