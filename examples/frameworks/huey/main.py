#!/usr/bin/env python3
"""huey against a Redis-compatible server.

Uses PriorityRedisHuey: the queue is a sorted set (ZADD, BZPOPMIN), the schedule another one
popped by a Lua script, results a hash. Enqueues tasks of three priorities before a one-worker
consumer starts and checks they ran highest first; then, with a four-thread consumer
(`huey_consumer`, as deployed): 100 results, a pipeline (one task's result feeding the next), a
task that fails twice and succeeds on its third try (retries=3, retry_delay=1), a task that
always fails, a task scheduled 2 seconds ahead, and a read-modify-write serialised by
huey.lock_task. Exits non-zero with a message on the first wrong result.

    python3 examples/frameworks/huey/main.py --url redis://127.0.0.1:6379/0
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid

TASK_COUNT = 100
LOCKED_TASK_COUNT = 40
DELAY_SECONDS = 2
# Bounds every wait for a result, so that a server that loses a task fails instead of hanging.
RESULT_TIMEOUT_SECONDS = 60


def fail(message):
    print(f"huey example: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def start_consumer(workers):
    here = os.path.dirname(os.path.abspath(__file__))
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [here, environment.get("PYTHONPATH")]))
    # -n: no periodic tasks; -d/-m: poll the schedule and back off quickly, to keep the run short.
    command = [sys.executable, "-m", "huey.bin.huey_consumer", "app.huey", "-w", str(workers),
               "-k", "thread", "-n", "-d", "0.05", "-m", "0.5", "-q"]
    # The worker's output goes to a file that check_worker_log reads when it stops.
    log = tempfile.TemporaryFile(mode="w+")
    consumer = subprocess.Popen(command, env=environment, cwd=here, stdout=log, stderr=subprocess.STDOUT)
    consumer.log = log
    return consumer


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


def stop_consumer(consumer):
    consumer.terminate()
    try:
        consumer.wait(timeout=30)
    except subprocess.TimeoutExpired:
        consumer.kill()
        consumer.wait()
    check_worker_log(consumer)


def get(result):
    value = result.get(blocking=True, timeout=RESULT_TIMEOUT_SECONDS)
    return value


def check_priorities(app):
    connection = app.huey.storage.conn
    for label, priority in (("low", 1), ("high", 10), ("middle", 5), ("high", 10), ("low", 1)):
        app.huey.enqueue(app.record.s(label, priority=priority))
    if app.huey.pending_count() != 5:
        fail(f"{app.huey.pending_count()} tasks pending after enqueueing 5")
    consumer = start_consumer(workers=1)
    try:
        deadline = time.time() + RESULT_TIMEOUT_SECONDS
        while connection.llen(app.ORDER_KEY) < 5:
            if time.time() > deadline:
                fail(f"only {connection.llen(app.ORDER_KEY)} of 5 prioritised tasks ran")
            time.sleep(0.05)
    finally:
        stop_consumer(consumer)
    order = [label.decode() for label in connection.lrange(app.ORDER_KEY, 0, -1)]
    if order != ["high", "high", "middle", "low", "low"]:
        fail(f"tasks ran in the order {order}, expected highest priority first")
    print("huey example: queued tasks ran highest priority first")


def check_results(app):
    results = [app.add(index, 1) for index in range(TASK_COUNT)]
    for index, result in enumerate(results):
        value = get(result)
        if value != index + 1:
            fail(f"add({index}, 1) returned {value!r}")
    pipeline = app.add.s(1, 2).then(app.add, 10).then(app.add, 100)
    values = [get(result) for result in app.huey.enqueue(pipeline)]
    if values != [3, 13, 113]:
        fail(f"the pipeline returned {values}, expected [3, 13, 113]")
    print(f"huey example: {TASK_COUNT} tasks and a pipeline returned the right results")


def check_retry_and_failure(app):
    from huey.exceptions import TaskException

    value = get(app.flaky(2))
    if value != 3:
        fail(f"the retried task succeeded on attempt {value!r}, expected 3")
    result = app.always_fails()
    try:
        get(result)
    except TaskException as error:
        if "this task always fails" not in str(error.metadata.get("error", "")):
            fail(f"the failing task's error is {error.metadata!r}")
    else:
        fail("the failing task's result did not raise")
    print("huey example: a task that failed twice succeeded on its third try; a failure reached the caller")


def check_schedule(app):
    sent_at = time.time()
    result = app.stamp.schedule(delay=DELAY_SECONDS)
    ran_at = get(result)
    if ran_at < sent_at + DELAY_SECONDS - 0.1:
        fail(f"a task scheduled {DELAY_SECONDS}s ahead ran {ran_at - sent_at:.2f}s after sending")
    print(f"huey example: a task scheduled {DELAY_SECONDS}s ahead ran {ran_at - sent_at:.2f}s after sending")


def check_lock(app):
    counter_key = f"huey-example:counter:{uuid.uuid4().hex}"
    results = [app.locked_increment(counter_key) for _ in range(LOCKED_TASK_COUNT)]
    seen = sorted(get(result) for result in results)
    # Each task saw the counter as the one before it left it: no two read the same value.
    if seen != list(range(1, LOCKED_TASK_COUNT + 1)):
        fail(f"tasks under lock_task saw the counter values {seen}")
    value = int(app.huey.storage.conn.get(counter_key))
    if value != LOCKED_TASK_COUNT:
        fail(f"the locked counter is {value}, expected {LOCKED_TASK_COUNT}")
    print(f"huey example: lock_task serialised {value} increments from four workers")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    # A queue of its own per run, so that leftovers of an earlier run cannot satisfy a check.
    os.environ["HUEY_EXAMPLE_NAME"] = f"huey-example-{uuid.uuid4().hex[:8]}"
    os.environ["HUEY_EXAMPLE_URL"] = args.url
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import app

    check_priorities(app)
    consumer = start_consumer(workers=4)
    try:
        check_results(app)
        check_retry_and_failure(app)
        check_schedule(app)
        check_lock(app)
    finally:
        stop_consumer(consumer)
    app.huey.storage.flush_all()
    print("huey example: all checks passed")


if __name__ == "__main__":
    main()
