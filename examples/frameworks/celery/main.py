#!/usr/bin/env python3
"""Celery against a Redis-compatible server, used as both broker and result backend.

Starts a real worker (`celery -A app worker`, thread pool), then: 100 tasks whose results are
read with .get(); a group; a chord (a group whose results feed a callback, which Celery's Redis
backend joins with counters in the server); a task that fails twice and succeeds on its third
try through self.retry(countdown=1); a task that always fails, whose .get() raises its error; a
task sent with countdown=2 that must not run before then. Exits non-zero with a message on the
first wrong result.

    python3 examples/frameworks/celery/main.py --url redis://127.0.0.1:6379/0
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

TASK_COUNT = 100
COUNTDOWN_SECONDS = 2
# Bounds every wait for a result, so that a server that loses a message fails instead of hanging.
RESULT_TIMEOUT_SECONDS = 60
WORKER_START_TIMEOUT_SECONDS = 60
WORKER_CONCURRENCY = 4


def fail(message):
    print(f"celery example: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def start_worker(url):
    here = os.path.dirname(os.path.abspath(__file__))
    environment = dict(os.environ, CELERY_EXAMPLE_URL=url)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [here, environment.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "celery", "-A", "app", "worker", "--pool=threads",
               f"--concurrency={WORKER_CONCURRENCY}", "--loglevel=WARNING", "--without-gossip",
               "--without-mingle", "--without-heartbeat"]
    # The worker's output goes to a file that check_worker_log reads when it stops.
    log = tempfile.TemporaryFile(mode="w+")
    worker = subprocess.Popen(command, env=environment, cwd=here, stdout=log, stderr=subprocess.STDOUT)
    worker.log = log
    return worker



def stop_worker(worker):
    worker.terminate()
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    check_worker_log(worker)

def check_worker_log(worker):
    """Echoes the worker's log and fails on an error reply that the framework caught and logged.

    Frameworks survive some failed commands (dramatiq logs a failed acknowledgement and goes on),
    so the results alone could hide a server that answers a command with an error.
    """
    worker.log.seek(0)
    text = worker.log.read()
    sys.stderr.write(text)
    for line in text.splitlines():
        if "ResponseError" in line:
            fail(f"the worker got an error reply from the server: {line.strip()}")

def wait_for_worker(app, worker):
    deadline = time.time() + WORKER_START_TIMEOUT_SECONDS
    while time.time() < deadline:
        if worker.poll() is not None:
            fail(f"the worker exited with {worker.returncode} before it answered a ping")
        # A broadcast over the broker's pub/sub, answered by each running worker.
        if app.control.ping(timeout=1.0):
            return
    fail(f"no worker answered a ping within {WORKER_START_TIMEOUT_SECONDS}s")


def check_many_tasks(tasks):
    results = [tasks.add.delay(index, index) for index in range(TASK_COUNT)]
    for index, result in enumerate(results):
        value = result.get(timeout=RESULT_TIMEOUT_SECONDS)
        if value != 2 * index:
            fail(f"add({index}, {index}) returned {value!r}")
        if result.state != "SUCCESS":
            fail(f"task {index} is {result.state} after its result came")
    print(f"celery example: {TASK_COUNT} tasks returned the right results")


def check_group_and_chord(tasks):
    from celery import chord, group

    values = group(tasks.add.s(index, 1) for index in range(10))().get(timeout=RESULT_TIMEOUT_SECONDS)
    if values != [index + 1 for index in range(10)]:
        fail(f"the group returned {values!r}")
    value = chord(tasks.add.s(index, index) for index in range(20))(tasks.total.s()).get(
        timeout=RESULT_TIMEOUT_SECONDS)
    if value != sum(2 * index for index in range(20)):
        fail(f"the chord returned {value!r}, expected {sum(2 * index for index in range(20))}")
    print("celery example: a group and a chord returned the right results")


def check_retry(tasks):
    value = tasks.flaky.delay(2).get(timeout=RESULT_TIMEOUT_SECONDS)
    if value != 2:
        fail(f"the retried task succeeded after {value!r} retries, expected 2")
    print("celery example: a task that failed twice succeeded on its third try")


def check_failure(tasks):
    result = tasks.always_fails.delay()
    try:
        result.get(timeout=RESULT_TIMEOUT_SECONDS)
    except ValueError as error:
        if "this task always fails" not in str(error):
            fail(f"the failing task raised {error!r}")
    else:
        fail("the failing task's .get() did not raise")
    if result.state != "FAILURE":
        fail(f"the failing task is {result.state}, expected FAILURE")
    print("celery example: a failing task's error reached the caller")


def check_countdown(tasks):
    sent_at = time.time()
    ran_at = tasks.stamp.apply_async(countdown=COUNTDOWN_SECONDS).get(timeout=RESULT_TIMEOUT_SECONDS)
    if ran_at < sent_at + COUNTDOWN_SECONDS - 0.1:
        fail(f"a task with countdown={COUNTDOWN_SECONDS} ran {ran_at - sent_at:.2f}s after sending")
    print(f"celery example: a task with countdown={COUNTDOWN_SECONDS} ran {ran_at - sent_at:.2f}s after sending")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    os.environ["CELERY_EXAMPLE_URL"] = args.url
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import app as tasks

    # Tasks left on the queue by an earlier, interrupted run would be taken for this run's.
    tasks.app.control.purge()
    worker = start_worker(args.url)
    try:
        wait_for_worker(tasks.app, worker)
        check_many_tasks(tasks)
        check_group_and_chord(tasks)
        check_retry(tasks)
        check_failure(tasks)
        check_countdown(tasks)
    finally:
        stop_worker(worker)
    print("celery example: all checks passed")


if __name__ == "__main__":
    main()
