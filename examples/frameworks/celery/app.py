"""The Celery application of main.py: Redis as broker and as result backend.

The worker (`celery -A app worker`) and the client import this module; both read the server's
address from CELERY_EXAMPLE_URL.
"""

import os
import time

from celery import Celery

app = Celery("example", broker=os.environ["CELERY_EXAMPLE_URL"], backend=os.environ["CELERY_EXAMPLE_URL"])
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # Results stay an hour, as a real deployment keeps them long enough to be read.
    result_expires=3600,
    # Fail fast instead of retrying a lost connection for ever: a hang would hide the error.
    broker_connection_retry_on_startup=False,
    worker_hijack_root_logger=False,
)


@app.task
def add(left, right):
    return left + right


@app.task
def total(numbers):
    return sum(numbers)


@app.task(bind=True, max_retries=3)
def flaky(self, failures_before_success):
    """Fails its first FAILURES_BEFORE_SUCCESS tries; Celery re-sends it a second later each time."""
    if self.request.retries < failures_before_success:
        raise self.retry(exc=RuntimeError(f"try {self.request.retries} fails on purpose"), countdown=1)
    return self.request.retries


@app.task
def always_fails():
    raise ValueError("this task always fails")


@app.task
def stamp():
    """Returns the time at which it ran, to check that a countdown task did not run early."""
    return time.time()
