"""The huey application of main.py: a priority queue, result store and schedule in Redis.

The consumer (`huey_consumer app.huey`) and the client import this module; both read the
server's address from HUEY_EXAMPLE_URL and the queue's name from HUEY_EXAMPLE_NAME.
"""

import os
import time

from huey import PriorityRedisHuey
from huey.exceptions import TaskLockedException

# store_intermediate_errors=False: a caller waiting on a retried task sees its final outcome.
huey = PriorityRedisHuey(os.environ["HUEY_EXAMPLE_NAME"], url=os.environ["HUEY_EXAMPLE_URL"],
                         store_intermediate_errors=False)
ORDER_KEY = f"huey-example:{os.environ['HUEY_EXAMPLE_NAME']}:order"
# How long a task waits for the lock that another task holds.
LOCK_WAIT_SECONDS = 30
ATTEMPTS_KEY = f"huey-example:{os.environ['HUEY_EXAMPLE_NAME']}:attempts"


@huey.task()
def add(left, right):
    return left + right


@huey.task()
def record(label):
    """Appends LABEL to a list in Redis, so that the client can see the order tasks ran in."""
    huey.storage.conn.rpush(ORDER_KEY, label)


@huey.task(retries=3, retry_delay=1)
def flaky(failures_before_success):
    attempt = huey.storage.conn.incr(ATTEMPTS_KEY)
    if attempt <= failures_before_success:
        raise RuntimeError(f"attempt {attempt} fails on purpose")
    return attempt


@huey.task()
def always_fails():
    raise ValueError("this task always fails")


@huey.task()
def stamp():
    return time.time()


@huey.task()
def locked_increment(counter_key):
    """Read-modify-write that is only correct because huey's lock (SET NX in Redis) serialises it.

    huey's lock does not wait: a task that finds it taken gets TaskLockedException, so this one
    tries again until LOCK_WAIT_SECONDS pass.
    """
    deadline = time.time() + LOCK_WAIT_SECONDS
    while True:
        try:
            with huey.lock_task("counter"):
                value = int(huey.storage.conn.get(counter_key) or 0)
                time.sleep(0.005)
                huey.storage.conn.set(counter_key, value + 1)
                return value + 1
        except TaskLockedException:
            if time.time() > deadline:
                raise
            time.sleep(0.01)
