#!/usr/bin/env python3
"""arq (asyncio job queue) against a Redis-compatible server.

arq keeps the queue in a sorted set scored by run time, each job in a string with its own
expiry, and takes a job with a WATCH/MULTI transaction. Starts a real worker
(`arq app.WorkerSettings`), then: 100 results; a job id enqueued twice runs once; a job that
raises Retry twice and succeeds on its third try; a job that always fails, whose result raises
its error; a job deferred by 2 seconds that must not run before then; a long job aborted while
it runs; the results listed through all_job_results. Exits non-zero with a message on the first
wrong result.

    python3 examples/frameworks/arq/main.py --url redis://127.0.0.1:6379/0
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid

JOB_COUNT = 100
DEFER_SECONDS = 2
# Bounds every wait for a result, so that a server that loses a job fails instead of hanging.
RESULT_TIMEOUT_SECONDS = 60


def fail(message):
    print(f"arq example: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def start_worker():
    here = os.path.dirname(os.path.abspath(__file__))
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [here, environment.get("PYTHONPATH")]))
    # The worker's output goes to a file that check_worker_log reads when it stops.
    log = tempfile.TemporaryFile(mode="w+")
    worker = subprocess.Popen([sys.executable, "-m", "arq", "app.WorkerSettings"], env=environment, cwd=here, stdout=log, stderr=subprocess.STDOUT)
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


async def check_results(pool, app):
    jobs = [await pool.enqueue_job("add", index, 5, _queue_name=app.QUEUE) for index in range(JOB_COUNT)]
    for index, job in enumerate(jobs):
        value = await job.result(timeout=RESULT_TIMEOUT_SECONDS)
        if value != index + 5:
            fail(f"add({index}, 5) returned {value!r}")
    print(f"arq example: {JOB_COUNT} jobs returned the right results")
    return jobs


async def check_unique(pool, app):
    from arq.jobs import JobStatus

    job_id = f"unique-{uuid.uuid4().hex}"
    first = await pool.enqueue_job("add", 1, 1, _job_id=job_id, _queue_name=app.QUEUE)
    second = await pool.enqueue_job("add", 2, 2, _job_id=job_id, _queue_name=app.QUEUE)
    if first is None or second is not None:
        fail(f"enqueueing one job id twice gave {first!r} and {second!r}, expected a job and None")
    if await first.result(timeout=RESULT_TIMEOUT_SECONDS) != 2:
        fail("the unique job returned a wrong result")
    if await first.status() != JobStatus.complete:
        fail(f"the unique job is {await first.status()}, expected complete")
    # While its result is kept, the same id is refused again.
    if await pool.enqueue_job("add", 3, 3, _job_id=job_id, _queue_name=app.QUEUE) is not None:
        fail("a finished job's id was accepted again while its result is kept")
    print("arq example: a job id enqueued twice ran once")


async def check_retry_and_failure(pool, app):
    job = await pool.enqueue_job("flaky", 2, _queue_name=app.QUEUE)
    value = await job.result(timeout=RESULT_TIMEOUT_SECONDS)
    if value != 3:
        fail(f"the retried job succeeded on try {value!r}, expected 3")
    job = await pool.enqueue_job("always_fails", _queue_name=app.QUEUE)
    try:
        await job.result(timeout=RESULT_TIMEOUT_SECONDS)
    except ValueError as error:
        if "this job always fails" not in str(error):
            fail(f"the failing job raised {error!r}")
    else:
        fail("the failing job's result did not raise")
    info = await job.result_info()
    if info is None or info.success:
        fail(f"the failing job's stored result is {info!r}")
    print("arq example: a job that failed twice succeeded on its third try; a failure reached the caller")


async def check_defer(pool, app):
    from arq.jobs import JobStatus

    sent_at = time.time()
    job = await pool.enqueue_job("stamp", _defer_by=DEFER_SECONDS, _queue_name=app.QUEUE)
    status = await job.status()
    if time.time() < sent_at + DEFER_SECONDS and status != JobStatus.deferred:
        fail(f"a deferred job is {status} before its time, expected deferred")
    ran_at = await job.result(timeout=RESULT_TIMEOUT_SECONDS)
    if ran_at < sent_at + DEFER_SECONDS - 0.1:
        fail(f"a job deferred by {DEFER_SECONDS}s ran {ran_at - sent_at:.2f}s after sending")
    print(f"arq example: a job deferred by {DEFER_SECONDS}s ran {ran_at - sent_at:.2f}s after sending")


async def check_abort(pool, app):
    from arq.jobs import JobStatus

    job = await pool.enqueue_job("sleeper", 30, _queue_name=app.QUEUE)
    deadline = time.time() + RESULT_TIMEOUT_SECONDS
    while await job.status() != JobStatus.in_progress:
        if time.time() > deadline:
            fail("the long job never started")
        await asyncio.sleep(0.05)
    if not await job.abort(timeout=RESULT_TIMEOUT_SECONDS):
        fail("aborting a running job did not succeed")
    print("arq example: a running job was aborted")


async def check_listing(pool, jobs):
    listed = {result.job_id for result in await pool.all_job_results()}
    missing = [job.job_id for job in jobs if job.job_id not in listed]
    if missing:
        fail(f"all_job_results misses {len(missing)} finished jobs, e.g. {missing[0]}")
    print(f"arq example: all_job_results lists all {len(jobs)} finished jobs")


async def run(url):
    import app
    from arq import create_pool

    pool = await create_pool(app.WorkerSettings.redis_settings, default_queue_name=app.QUEUE)
    worker = start_worker()
    try:
        jobs = await check_results(pool, app)
        await check_unique(pool, app)
        await check_retry_and_failure(pool, app)
        await check_defer(pool, app)
        await check_abort(pool, app)
        await check_listing(pool, jobs)
    finally:
        stop_worker(worker)
        await pool.aclose()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    # A queue of its own per run, so that leftovers of an earlier run cannot satisfy a check.
    os.environ["ARQ_EXAMPLE_QUEUE"] = f"arq-example-{uuid.uuid4().hex[:8]}"
    os.environ["ARQ_EXAMPLE_URL"] = args.url
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    asyncio.run(run(args.url))
    print("arq example: all checks passed")


if __name__ == "__main__":
    main()
