#!/usr/bin/env python3
"""dramatiq against a Redis-compatible server: broker, result backend and rate limiter.

dramatiq's Redis broker runs every queue operation as one Lua script (enqueue, fetch, ack, nack,
requeue of dead workers' messages). Starts a real worker (`dramatiq app`, one process, four
threads), then: 100 results; a group and a pipeline; a message that fails twice and succeeds on
its third try; a message that always fails, whose result raises ResultFailure and which lands
in the dead-letter queue; a message delayed 2 seconds that must not run before then; a
read-modify-write serialised by a ConcurrentRateLimiter. Exits non-zero with a message on the
first wrong result.

    python3 examples/frameworks/dramatiq/main.py --url redis://127.0.0.1:6379/0
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid

TASK_COUNT = 100
LOCKED_TASK_COUNT = 30
DELAY_SECONDS = 2
# Bounds every wait for a result, so that a server that loses a message fails instead of hanging.
RESULT_TIMEOUT_MS = 60_000
WORKER_THREADS = 4


def fail(message):
    print(f"dramatiq example: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def start_worker():
    here = os.path.dirname(os.path.abspath(__file__))
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [here, environment.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "dramatiq", "app", "--processes", "1", "--threads",
               str(WORKER_THREADS), "--worker-shutdown-timeout", "5000"]
    # The worker's output goes to a file that check_worker_log reads when it stops.
    log = tempfile.TemporaryFile(mode="w+")
    worker = subprocess.Popen(command, env=environment, cwd=here, stdout=log, stderr=subprocess.STDOUT)
    worker.log = log
    return worker


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


def stop_worker(worker):
    worker.terminate()
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    check_worker_log(worker)


def check_results(app):
    messages = [app.add.send(index, 2) for index in range(TASK_COUNT)]
    for index, message in enumerate(messages):
        value = message.get_result(block=True, timeout=RESULT_TIMEOUT_MS)
        if value != index + 2:
            fail(f"add({index}, 2) returned {value!r}")
    print(f"dramatiq example: {TASK_COUNT} messages returned the right results")


def check_group_and_pipeline(app):
    import dramatiq

    group = dramatiq.group(app.add.message(index, index) for index in range(10)).run()
    values = list(group.get_results(block=True, timeout=RESULT_TIMEOUT_MS))
    if values != [2 * index for index in range(10)]:
        fail(f"the group returned {values}")
    pipeline = dramatiq.pipeline([app.add.message(1, 2), app.add.message(10), app.add.message(100)]).run()
    value = pipeline.get_result(block=True, timeout=RESULT_TIMEOUT_MS)
    if value != 113:
        fail(f"the pipeline returned {value!r}, expected 113")
    print("dramatiq example: a group and a pipeline returned the right results")


def check_retry_and_failure(app):
    from dramatiq.results import ResultFailure

    value = app.flaky.send(2).get_result(block=True, timeout=RESULT_TIMEOUT_MS)
    if value != 3:
        fail(f"the retried message succeeded on attempt {value!r}, expected 3")
    message = app.always_fails.send()
    try:
        message.get_result(block=True, timeout=RESULT_TIMEOUT_MS)
    except ResultFailure as error:
        if "this task always fails" not in str(error):
            fail(f"the failing message's result raised {error!r}")
    else:
        fail("the failing message's result did not raise")
    # dramatiq's dead-letter queue: a sorted set of the broker's own message ids beside a hash
    # from those ids to the message bodies.
    dead_letters = f"{app.NAMESPACE}:default.XQ"
    deadline = time.time() + RESULT_TIMEOUT_MS / 1000
    while app.client.zcard(dead_letters) < 1:
        if time.time() > deadline:
            fail("the failed message is not in the dead-letter queue")
        time.sleep(0.05)
    bodies = app.client.hvals(f"{dead_letters}.msgs")
    if app.client.zcard(dead_letters) != 1 or len(bodies) != 1:
        fail(f"the dead-letter queue holds {app.client.zcard(dead_letters)} ids and {len(bodies)} bodies, expected 1")
    if message.message_id.encode() not in bodies[0]:
        fail(f"the dead-lettered body is not the failed message's: {bodies[0][:200]!r}")
    print("dramatiq example: a message that failed twice succeeded on its third try; "
          "a failure reached the caller and the dead-letter queue")


def check_delay(app):
    sent_at = time.time()
    message = app.stamp.send_with_options(delay=DELAY_SECONDS * 1000)
    ran_at = message.get_result(block=True, timeout=RESULT_TIMEOUT_MS)
    if ran_at < sent_at + DELAY_SECONDS - 0.1:
        fail(f"a message delayed {DELAY_SECONDS}s ran {ran_at - sent_at:.2f}s after sending")
    print(f"dramatiq example: a message delayed {DELAY_SECONDS}s ran {ran_at - sent_at:.2f}s after sending")


def check_mutex(app):
    messages = [app.locked_increment.send() for _ in range(LOCKED_TASK_COUNT)]
    seen = sorted(message.get_result(block=True, timeout=RESULT_TIMEOUT_MS) for message in messages)
    # Each message saw the counter as the one before it left it: no two read the same value.
    if seen != list(range(1, LOCKED_TASK_COUNT + 1)):
        fail(f"messages under the mutex saw the counter values {seen}")
    print(f"dramatiq example: a ConcurrentRateLimiter serialised {LOCKED_TASK_COUNT} increments")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    # A namespace of its own per run, so that leftovers of an earlier run cannot satisfy a check.
    os.environ["DRAMATIQ_EXAMPLE_NAMESPACE"] = f"dramatiq-example-{uuid.uuid4().hex[:8]}"
    os.environ["DRAMATIQ_EXAMPLE_URL"] = args.url
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import app

    worker = start_worker()
    try:
        check_results(app)
        check_group_and_pipeline(app)
        check_retry_and_failure(app)
        check_delay(app)
        check_mutex(app)
    finally:
        stop_worker(worker)
    app.broker.flush_all()
    print("dramatiq example: all checks passed")


if __name__ == "__main__":
    main()
