"""Jobs for main.py. RQ workers import them by dotted name, so they live in a module of their own."""

import time

from rq import get_current_job


def multiply(left, right):
    return left * right


def flaky(counter_key, failures_before_success):
    """Fails its first FAILURES_BEFORE_SUCCESS attempts, counting attempts in Redis itself."""
    connection = get_current_job().connection
    attempt = connection.incr(counter_key)
    if attempt <= failures_before_success:
        raise RuntimeError(f"attempt {attempt} fails on purpose")
    return attempt


def always_fails():
    raise ValueError("this job always fails")


def stamp():
    """Returns the time at which it ran, to check that a delayed job did not run early."""
    return time.time()


def concatenate(*parts):
    return "".join(parts)
