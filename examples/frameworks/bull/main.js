'use strict';
// A Bull (v4, BullMQ's predecessor, still widely deployed) job queue as an application would
// write it: 200 jobs whose results come back through the queue's global events (Redis
// pub/sub), a job that fails once and succeeds on its retry, a delayed job, prioritised jobs, a
// repeatable job, and the queue's getters and clean-up. Every result is checked; any wrong one
// ends the program with exit code 1 and a message.
//
//   REDIS_PORT=6379 node examples/frameworks/bull/main.js
//
// ci/test-frameworks-js-ruby.sh runs it against redis-server and against Ember, with bull
// installed by ci/setup-frameworks-js-ruby.sh (NODE_PATH points at it).

const Queue = require('bull');

const host = process.env.REDIS_HOST || '127.0.0.1';
const port = Number(process.env.REDIS_PORT || 6379);
// The whole program takes a few seconds; past this something hangs, and the run fails.
const RUN_TIMEOUT_MS = 90_000;
const SQUARE_JOB_COUNT = 200;
const WORKER_CONCURRENCY = 8;
// The delayed job must not run before this; long enough to tell from an immediate run.
const DELAY_MS = 700;
const RETRY_BACKOFF_MS = 200;
// How long after its failed attempt the retried job may finish: the backoff and a little work,
// with room for a loaded machine, and well under the 5 s of one BRPOPLPUSH timeout.
const RETRY_FINISH_DEADLINE_MS = 4_000;
const PRIORITY_JOB_COUNT = 12;
const REPEAT_EVERY_MS = 300;
const REPEAT_LIMIT = 3;

// A run-specific prefix keeps the program's keys apart from anything else in the database.
const prefix = `bull-example-${process.pid}-${Date.now()}`;

function fail(message) {
  console.error(`bull example: FAIL: ${message}`);
  process.exit(1);
}

function check(condition, message) {
  if (!condition) fail(message);
}

function deepEqual(left, right) {
  return JSON.stringify(left) === JSON.stringify(right);
}

// Resolves when `predicate` holds, polling; rejects after `timeoutMs` with `what`.
async function waitFor(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function newQueue(name, opened) {
  const queue = new Queue(name, { redis: { host, port }, prefix });
  opened.push(queue);
  return queue;
}

async function squaresAndRetries(opened) {
  const queue = newQueue('squares', opened);
  await queue.isReady();
  // Global events reach every process through Redis pub/sub; the result comes as JSON text.
  const completedEvents = new Map();
  queue.on('global:completed', (jobId, result) => completedEvents.set(String(jobId), JSON.parse(result)));
  const failedAttempts = [];
  queue.on('failed', (job, error) => failedAttempts.push({ jobId: String(job.id), reason: error.message, at: Date.now() }));

  let flakyAttempts = 0;
  const startedAt = new Map();
  queue.process(WORKER_CONCURRENCY, async (job) => {
    startedAt.set(String(job.id), Date.now());
    if (job.data.kind === 'flaky') {
      flakyAttempts += 1;
      if (job.attemptsMade === 0) throw new Error('first attempt fails on purpose');
      return { attempt: job.attemptsMade + 1 };
    }
    if (job.data.kind === 'delayed') return { delayed: true };
    await job.progress(50);
    return { square: job.data.x * job.data.x };
  });

  const jobs = await queue.addBulk(
    Array.from({ length: SQUARE_JOB_COUNT }, (_, x) => ({ data: { kind: 'square', x } })),
  );
  check(jobs.length === SQUARE_JOB_COUNT, `addBulk returned ${jobs.length} jobs`);
  const flaky = await queue.add({ kind: 'flaky' }, { attempts: 3, backoff: { type: 'fixed', delay: RETRY_BACKOFF_MS } });
  const delayedAddedAt = Date.now();
  const delayed = await queue.add({ kind: 'delayed' }, { delay: DELAY_MS });
  check(await delayed.isDelayed(), 'the delayed job is not delayed');

  // job.finished() resolves through the global events too.
  const flakyResult = await flaky.finished();
  check(deepEqual(flakyResult, { attempt: 2 }), `flaky job returned ${JSON.stringify(flakyResult)}`);
  check(flakyAttempts === 2, `flaky job ran ${flakyAttempts} times`);
  // The retry waits RETRY_BACKOFF_MS in the delayed set, then an idle worker, blocked in
  // BRPOPLPUSH, takes it: Bull's workers pipeline several BRPOPLPUSH on one connection, and
  // a server that holds the first one's reply until the others time out (5 s each) makes the
  // retry late by many seconds.
  const retryMs = Date.now() - failedAttempts[0].at;
  check(retryMs < RETRY_FINISH_DEADLINE_MS, `the retry finished ${retryMs} ms after the failed attempt`);
  const delayedResult = await delayed.finished();
  check(deepEqual(delayedResult, { delayed: true }), `delayed job returned ${JSON.stringify(delayedResult)}`);
  const delayMeasuredMs = startedAt.get(String(delayed.id)) - delayedAddedAt;
  check(delayMeasuredMs >= DELAY_MS - 50, `delayed job ran after ${delayMeasuredMs} ms, before its ${DELAY_MS} ms delay`);

  await waitFor(async () => completedEvents.size >= SQUARE_JOB_COUNT + 2, 60_000,
    `${SQUARE_JOB_COUNT + 2} global:completed events (have ${completedEvents.size})`);
  for (const job of jobs) {
    const expected = { square: job.data.x * job.data.x };
    check(deepEqual(completedEvents.get(String(job.id)), expected),
      `event for job ${job.id}: ${JSON.stringify(completedEvents.get(String(job.id)))}`);
    const stored = await queue.getJob(job.id);
    check(stored && deepEqual(stored.returnvalue, expected), `job ${job.id} returnvalue ${JSON.stringify(stored && stored.returnvalue)}`);
    check(stored.progress() === 50, `job ${job.id} progress ${stored.progress()}`);
  }
  check(failedAttempts.length === 1 && failedAttempts[0].jobId === String(flaky.id),
    `failed attempts ${JSON.stringify(failedAttempts)}`);
  const counts = await queue.getJobCounts();
  check(deepEqual(counts, { waiting: 0, active: 0, completed: SQUARE_JOB_COUNT + 2, failed: 0, delayed: 0, paused: 0 }),
    `job counts ${JSON.stringify(counts)}`);
  const cleaned = await queue.clean(0, 'completed');
  check(cleaned.length === SQUARE_JOB_COUNT + 2, `clean removed ${cleaned.length} jobs`);
  check((await queue.getCompletedCount()) === 0, 'completed jobs left after clean');
  await queue.obliterate({ force: true });
  await queue.close();
  console.log(`bull example: ${SQUARE_JOB_COUNT} squares, retry (finished ${retryMs} ms after its failure), delay: ok`);
}

async function priorities(opened) {
  const queue = newQueue('priorities', opened);
  await queue.isReady();
  await queue.pause();
  const added = [];
  for (let index = 0; index < PRIORITY_JOB_COUNT; index += 1) {
    const priority = (index * 7) % 4 + 1;
    added.push({ index, priority });
    await queue.add({ index }, { priority });
  }
  const counts = await queue.getJobCounts();
  check(counts.paused === PRIORITY_JOB_COUNT && counts.waiting === 0, `job counts while paused ${JSON.stringify(counts)}`);
  const order = [];
  queue.process(1, async (job) => { order.push(job.data.index); });
  await queue.resume();
  await waitFor(async () => order.length === PRIORITY_JOB_COUNT, 30_000, 'every prioritised job');
  const expected = [...added].sort((a, b) => a.priority - b.priority || a.index - b.index).map((job) => job.index);
  check(deepEqual(order, expected), `priority order ${JSON.stringify(order)}, expected ${JSON.stringify(expected)}`);
  await queue.obliterate({ force: true });
  await queue.close();
  console.log('bull example: priorities: ok');
}

async function repeatable(opened) {
  const queue = newQueue('ticks', opened);
  await queue.isReady();
  const ticks = [];
  queue.process(async (job) => { ticks.push(job.timestamp); return ticks.length; });
  await queue.add({}, { repeat: { every: REPEAT_EVERY_MS, limit: REPEAT_LIMIT } });
  const repeatJobs = await queue.getRepeatableJobs();
  check(repeatJobs.length === 1 && repeatJobs[0].every === REPEAT_EVERY_MS, `repeatable jobs ${JSON.stringify(repeatJobs)}`);
  await waitFor(async () => ticks.length >= REPEAT_LIMIT, 20_000, `${REPEAT_LIMIT} repeated runs`);
  await queue.removeRepeatableByKey(repeatJobs[0].key);
  check((await queue.getRepeatableJobs()).length === 0, 'the repeatable job is still there');
  await queue.obliterate({ force: true });
  await queue.close();
  console.log('bull example: repeatable job: ok');
}

async function main() {
  const timer = setTimeout(() => fail(`no result after ${RUN_TIMEOUT_MS} ms`), RUN_TIMEOUT_MS);
  const opened = [];
  try {
    for (const step of [squaresAndRetries, priorities, repeatable]) {
      const stepStartedAt = Date.now();
      await step(opened);
      console.log(`bull example: ${step.name} took ${Date.now() - stepStartedAt} ms`);
    }
  } catch (error) {
    fail(error && error.stack ? error.stack : String(error));
  }
  clearTimeout(timer);
  await Promise.allSettled(opened.map((queue) => queue.close()));
  console.log('bull example: all checks passed');
  process.exit(0);
}

main();
