"""The arq application of main.py: the worker's settings and its job functions.

The worker (`arq app.WorkerSettings`) and the client import this module; both read the server's
address from ARQ_EXAMPLE_URL and the queue's name from ARQ_EXAMPLE_QUEUE.
"""

import asyncio
import os
import time

from arq import Retry
from arq.connections import RedisSettings

URL = os.environ["ARQ_EXAMPLE_URL"]
QUEUE = os.environ["ARQ_EXAMPLE_QUEUE"]
# Seconds before a retried job runs again: short, so that retries do not stretch the run.
RETRY_DEFER_SECONDS = 0.2


async def add(context, left, right):
    return left + right


async def flaky(context, failures_before_success):
    """Fails its first FAILURES_BEFORE_SUCCESS tries; arq counts tries in job_try."""
    if context["job_try"] <= failures_before_success:
        raise Retry(defer=RETRY_DEFER_SECONDS)
    return context["job_try"]


async def always_fails(context):
    raise ValueError("this job always fails")


async def stamp(context):
    return time.time()


async def sleeper(context, seconds):
    await asyncio.sleep(seconds)
    return "woke"


class WorkerSettings:
    functions = [add, flaky, always_fails, stamp, sleeper]
    redis_settings = RedisSettings.from_dsn(URL)
    queue_name = QUEUE
    max_jobs = 10
    max_tries = 5
    allow_abort_jobs = True
    # Poll the queue often, so that the run stays short.
    poll_delay = 0.1
