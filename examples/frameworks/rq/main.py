#!/usr/bin/env python3
"""RQ against a Redis-compatible server, as an application uses it.

Enqueues 200 jobs and runs `rq worker --burst` (the forking worker, as in production) to drain
them, then checks every result; a job that fails twice and succeeds on its third try under
Retry; a job that always fails and ends in the failed-job registry with its traceback; a job
scheduled 2 seconds ahead (enqueue_in) run by a worker with the scheduler; a job that depends on
two others. Exits non-zero with a message on the first wrong result.

    python3 examples/frameworks/rq/main.py --url redis://127.0.0.1:6379/0
"""

import argparse
import datetime
import math
import os
import subprocess
import sys
import time
import uuid

import redis
from rq import Queue, Retry
from rq.job import JobStatus
from rq.registry import FailedJobRegistry

import tasks

JOB_COUNT = 200
# A delayed job must not run before this; the wait after it bounds the test's runtime.
DELAY_SECONDS = 2
WORKER_TIMEOUT_SECONDS = 120


def fail(message):
    print(f"rq example: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def run_burst_worker(url, queue_name, with_scheduler=False):
    """Runs the `rq worker` command line in burst mode, as a deployment's worker would start."""
    command = [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", url, queue_name]
    if with_scheduler:
        command.insert(-1, "--with-scheduler")
    here = os.path.dirname(os.path.abspath(__file__))
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [here, environment.get("PYTHONPATH")]))
    try:
        completed = subprocess.run(command, env=environment, cwd=here, capture_output=True, text=True,
                                   timeout=WORKER_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"").decode(errors="replace") + (expired.stderr or b"").decode(errors="replace")
        fail(f"`rq worker --burst` still ran after {WORKER_TIMEOUT_SECONDS}s; its output:\n{output[-3000:]}")
    if completed.returncode != 0:
        fail(f"`rq worker` exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}")
    output = completed.stdout + completed.stderr
    # RQ survives some failed commands and logs them; the results alone could hide an error reply.
    for line in output.splitlines():
        if "ResponseError" in line:
            fail(f"the worker got an error reply from the server: {line.strip()}")
    return output


def check_many_jobs(connection, url, queue):
    jobs = [queue.enqueue(tasks.multiply, index, 3) for index in range(JOB_COUNT)]
    if queue.count != JOB_COUNT:
        fail(f"queue holds {queue.count} jobs after enqueueing {JOB_COUNT}")
    run_burst_worker(url, queue.name)
    for index, job in enumerate(jobs):
        job.refresh()
        if job.get_status() != JobStatus.FINISHED:
            fail(f"job {index} is {job.get_status()}, expected finished")
        if job.return_value() != index * 3:
            fail(f"job {index} returned {job.return_value()!r}, expected {index * 3}")
    if queue.count != 0:
        fail(f"{queue.count} jobs left in the queue after the burst worker")
    print(f"rq example: {JOB_COUNT} jobs finished with the right results")


def check_retry(connection, url, queue):
    counter_key = f"rq-example:attempts:{uuid.uuid4().hex}"
    job = queue.enqueue(tasks.flaky, counter_key, 2, retry=Retry(max=3))
    run_burst_worker(url, queue.name)
    job.refresh()
    if job.get_status() != JobStatus.FINISHED:
        fail(f"retried job is {job.get_status()}, expected finished")
    if job.return_value() != 3:
        fail(f"retried job returned {job.return_value()!r}, expected attempt 3")
    if int(connection.get(counter_key)) != 3:
        fail(f"the flaky job ran {connection.get(counter_key)!r} times, expected 3")
    connection.delete(counter_key)
    print("rq example: a job that failed twice succeeded on its third try")


def check_failure(connection, url, queue):
    job = queue.enqueue(tasks.always_fails)
    run_burst_worker(url, queue.name)
    job.refresh()
    if job.get_status() != JobStatus.FAILED:
        fail(f"failing job is {job.get_status()}, expected failed")
    registry = FailedJobRegistry(queue=queue)
    if job.id not in registry.get_job_ids():
        fail("the failed job is not in the failed-job registry")
    result = job.latest_result()
    if result is None or "this job always fails" not in (result.exc_string or ""):
        fail(f"the failed job's result does not carry its exception: {result!r}")
    registry.requeue(job.id)
    if job.id not in queue.get_job_ids():
        fail("requeueing the failed job did not put it back on the queue")
    queue.remove(job.id)
    print("rq example: a failing job is in the failed registry with its traceback")


def check_delayed(connection, url, queue):
    enqueued_at = time.time()
    job = queue.enqueue_in(datetime.timedelta(seconds=DELAY_SECONDS), tasks.stamp)
    if job.get_status() != JobStatus.SCHEDULED:
        fail(f"delayed job is {job.get_status()}, expected scheduled")
    if job.id in queue.get_job_ids():
        fail("the delayed job is on the queue before its time")
    # A burst worker with the scheduler moves due jobs onto the queue once, then drains it.
    # rq keeps the due time in whole seconds (its scheduled registry's score is
    # `calendar.timegm`, which drops the fraction), so the job falls due at the second the delay
    # ends in, up to a second early, against Redis as against Ember.
    due = math.floor(enqueued_at + DELAY_SECONDS)
    run_burst_worker(url, queue.name, with_scheduler=True)
    job.refresh()
    # On a loaded machine the worker may start after the job fell due; only a worker that ended
    # before the due time proves that the job waited.
    if time.time() < due and job.get_status() != JobStatus.SCHEDULED:
        fail(f"delayed job ran early: it is {job.get_status()} before its time")
    # Half a second past the due time, so that the scheduler surely sees the job as due.
    remaining = enqueued_at + DELAY_SECONDS + 0.5 - time.time()
    if remaining > 0:
        time.sleep(remaining)
    run_burst_worker(url, queue.name, with_scheduler=True)
    job.refresh()
    if job.get_status() != JobStatus.FINISHED:
        fail(f"delayed job is {job.get_status()} after its time, expected finished")
    ran_at = job.return_value()
    if ran_at < due:
        fail(f"delayed job ran {ran_at - enqueued_at:.2f}s after enqueueing, before its due second")
    print(f"rq example: a job delayed {DELAY_SECONDS}s ran {ran_at - enqueued_at:.2f}s after enqueueing")


def check_dependencies(connection, url, queue):
    first = queue.enqueue(tasks.concatenate, "a", "b")
    second = queue.enqueue(tasks.concatenate, "c", "d")
    joined = queue.enqueue(tasks.concatenate, "e", depends_on=[first, second])
    if joined.get_status() != JobStatus.DEFERRED:
        fail(f"a job waiting on two others is {joined.get_status()}, expected deferred")
    run_burst_worker(url, queue.name)
    for job, expected in ((first, "ab"), (second, "cd"), (joined, "e")):
        job.refresh()
        if job.get_status() != JobStatus.FINISHED or job.return_value() != expected:
            fail(f"job {job.id} is {job.get_status()} with {job.return_value()!r}, expected {expected!r}")
    print("rq example: a job ran after the two it depended on")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    connection = redis.Redis.from_url(args.url)
    # A queue of its own per run, so that leftovers of an earlier run cannot satisfy a check.
    queue = Queue(f"rq-example-{uuid.uuid4().hex[:8]}", connection=connection)
    check_many_jobs(connection, args.url, queue)
    check_retry(connection, args.url, queue)
    check_failure(connection, args.url, queue)
    check_delayed(connection, args.url, queue)
    check_dependencies(connection, args.url, queue)
    print("rq example: all checks passed")


if __name__ == "__main__":
    main()
