'use strict';
// A BullMQ job queue as an application would write it: a queue of arithmetic jobs, a worker
// that runs them, QueueEvents that report each result, a job that fails once and succeeds on
// its retry, a delayed job, prioritised jobs, a parent job that sums its children, what an
// operator does with a queue (workers, logs, retries, cleaning, a job scheduler, metrics, a
// rate limit), and a stalled job that another run recovers.
// Every result is checked; any wrong one ends the program with exit code 1 and a message.
//
//   REDIS_PORT=6379 node examples/frameworks/bullmq/main.js
//   BULLMQ_CLIENT=node-redis REDIS_PORT=6379 node examples/frameworks/bullmq/main.js
//
// ci/test-frameworks-js-ruby.sh runs it against redis-server and against Ember, with bullmq,
// ioredis and node-redis installed by ci/setup-frameworks-js-ruby.sh (NODE_PATH points at them).

const { Queue, Worker, QueueEvents, FlowProducer } = require('bullmq');
const IORedis = require('ioredis');

// Which client library BullMQ talks through: ioredis (BullMQ's usual one) or node-redis (the
// `redis` package, which BullMQ 6 also takes). Both speak RESP2 here: BullMQ 6.7 does not read
// RESP3's replies (its QueueEvents fails on XREAD's map reply against redis-server too).
const CLIENTS = ['ioredis', 'node-redis'];
const client = process.env.BULLMQ_CLIENT || 'ioredis';

const host = process.env.REDIS_HOST || '127.0.0.1';
const port = Number(process.env.REDIS_PORT || 6379);
// The whole program takes a few seconds; past this something hangs, and the run fails.
const RUN_TIMEOUT_MS = 90_000;
// Enough jobs that several are in every state at once while the worker runs concurrently.
const SQUARE_JOB_COUNT = 200;
const WORKER_CONCURRENCY = 8;
// The delayed job must not run before this; long enough to tell from an immediate run.
const DELAY_MS = 700;
// The flaky job's retry waits this long (fixed backoff), so its retry goes through the
// delayed set as well.
const RETRY_BACKOFF_MS = 200;
const PRIORITY_JOB_COUNT = 12;
const FLOW_CHILD_COUNT = 5;
// removeOnComplete's count: how many completed jobs the queue keeps.
const KEEP_COMPLETED_COUNT = 3;
// The limiter lets this many jobs run per window; with the jobs of queueManagement the run
// spans a few windows, so a limiter that does nothing is seen.
const RATE_LIMIT_MAX = 3;
const RATE_LIMIT_DURATION_MS = 300;
const SCHEDULER_EVERY_MS = 200;
const SCHEDULER_RUN_COUNT = 3;
// The stalled job's lock lasts STALL_LOCK_MS and is not renewed; the check runs every
// STALL_CHECK_INTERVAL_MS, and the first run outlasts both by far.
const STALL_LOCK_MS = 500;
const STALL_CHECK_INTERVAL_MS = 300;
const STALLED_FIRST_RUN_MS = 4_000;

// A run-specific queue prefix keeps the program's keys apart from anything else in the
// database and from an earlier run that was stopped half-way.
const prefix = `bullmq-example-${process.pid}-${Date.now()}`;

function connection() {
  if (client === 'ioredis') {
    // BullMQ's workers block on the connection (BZPOPMIN, XREAD BLOCK); it asks for no retry
    // limit per request.
    return new IORedis({ host, port, maxRetriesPerRequest: null });
  }
  const { createClient } = require('redis');
  return createClient({ socket: { host, port } });
}

function fail(message) {
  console.error(`bullmq example: FAIL: ${message}`);
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

async function squaresAndRetries(opened) {
  const queueName = 'squares';
  const queue = new Queue(queueName, { connection: connection(), prefix });
  const events = new QueueEvents(queueName, { connection: connection(), prefix });
  opened.push(queue, events);
  await events.waitUntilReady();

  // Results as QueueEvents reports them (from the queue's event stream).
  const completedEvents = new Map();
  events.on('completed', ({ jobId, returnvalue }) => completedEvents.set(jobId, returnvalue));

  let flakyAttempts = 0;
  const startedAt = new Map();
  const worker = new Worker(
    queueName,
    async (job) => {
      startedAt.set(job.id, Date.now());
      if (job.name === 'flaky') {
        flakyAttempts += 1;
        if (job.attemptsMade === 0) throw new Error('first attempt fails on purpose');
        return { attempt: job.attemptsMade + 1 };
      }
      if (job.name === 'delayed') return { delayed: true, value: job.data.value };
      await job.updateProgress(50);
      return { square: job.data.x * job.data.x };
    },
    { connection: connection(), prefix, concurrency: WORKER_CONCURRENCY },
  );
  opened.push(worker);
  // The worker reports each failed attempt, the one that will be retried included.
  const failedAttempts = [];
  worker.on('failed', (job, error) => failedAttempts.push({ jobId: job.id, reason: error.message }));

  const bulk = [];
  for (let x = 0; x < SQUARE_JOB_COUNT; x += 1) {
    bulk.push({ name: 'square', data: { x }, opts: { removeOnComplete: false } });
  }
  const jobs = await queue.addBulk(bulk);
  check(jobs.length === SQUARE_JOB_COUNT, `addBulk returned ${jobs.length} jobs`);
  const ids = new Set(jobs.map((job) => job.id));
  check(ids.size === SQUARE_JOB_COUNT, `addBulk gave ${ids.size} distinct ids`);

  const flaky = await queue.add(
    'flaky',
    {},
    { attempts: 3, backoff: { type: 'fixed', delay: RETRY_BACKOFF_MS } },
  );
  const delayedAddedAt = Date.now();
  const delayed = await queue.add('delayed', { value: 'later' }, { delay: DELAY_MS });
  check((await delayed.getState()) === 'delayed', `delayed job is ${await delayed.getState()}`);

  // waitUntilFinished resolves with the return value, read through the event stream.
  const flakyResult = await flaky.waitUntilFinished(events, 30_000);
  check(deepEqual(flakyResult, { attempt: 2 }), `flaky job returned ${JSON.stringify(flakyResult)}`);
  check(flakyAttempts === 2, `flaky job ran ${flakyAttempts} times, expected 2`);
  const delayedResult = await delayed.waitUntilFinished(events, 30_000);
  check(deepEqual(delayedResult, { delayed: true, value: 'later' }),
    `delayed job returned ${JSON.stringify(delayedResult)}`);
  const delayMeasuredMs = startedAt.get(delayed.id) - delayedAddedAt;
  check(delayMeasuredMs >= DELAY_MS - 50, `delayed job ran after ${delayMeasuredMs} ms, before its ${DELAY_MS} ms delay`);

  await waitFor(async () => completedEvents.size >= SQUARE_JOB_COUNT + 2, 60_000,
    `${SQUARE_JOB_COUNT + 2} completed events (have ${completedEvents.size})`);

  for (const job of jobs) {
    const expected = { square: job.data.x * job.data.x };
    // The event carries the return value as the worker stored it...
    const fromEvent = completedEvents.get(job.id);
    check(deepEqual(fromEvent, expected), `event for job ${job.id}: ${JSON.stringify(fromEvent)}`);
    // ...and the job hash holds it too.
    const stored = await queue.getJob(job.id);
    check(stored !== undefined && stored !== null, `job ${job.id} is gone`);
    check(deepEqual(stored.returnvalue, expected), `job ${job.id} returnvalue ${JSON.stringify(stored.returnvalue)}`);
    check(stored.progress === 50, `job ${job.id} progress ${JSON.stringify(stored.progress)}`);
    check(stored.finishedOn >= stored.processedOn, `job ${job.id} finished before it started`);
  }
  check(failedAttempts.length === 1 && failedAttempts[0].jobId === flaky.id,
    `failed attempts ${JSON.stringify(failedAttempts)}`);
  const flakyStored = await queue.getJob(flaky.id);
  check(flakyStored.attemptsMade === 2, `flaky attemptsMade ${flakyStored.attemptsMade}`);

  const counts = await queue.getJobCounts('completed', 'failed', 'waiting', 'active', 'delayed');
  check(deepEqual(counts, { completed: SQUARE_JOB_COUNT + 2, failed: 0, waiting: 0, active: 0, delayed: 0 }),
    `job counts ${JSON.stringify(counts)}`);
  const completedPage = await queue.getCompleted(0, 9);
  check(completedPage.length === 10, `getCompleted(0, 9) gave ${completedPage.length} jobs`);

  await worker.close();
  await events.close();
  await queue.obliterate({ force: true });
  await queue.close();
  console.log(`bullmq example: ${SQUARE_JOB_COUNT} squares, retry, delay: ok`);
}

async function priorities(opened) {
  const queueName = 'priorities';
  const queue = new Queue(queueName, { connection: connection(), prefix });
  opened.push(queue);
  // Jobs are added while the queue is paused, so that the worker sees them all at once and
  // must take them by priority (1 is the highest), ties in the order they were added.
  await queue.pause();
  const added = [];
  const jobs = [];
  for (let index = 0; index < PRIORITY_JOB_COUNT; index += 1) {
    const priority = (index * 7) % 4 + 1;
    added.push({ index, priority });
    jobs.push(await queue.add('prioritised', { index }, { priority }));
  }
  // The last job moves up to priority 1, behind the jobs already there (it was added last).
  await jobs[PRIORITY_JOB_COUNT - 1].changePriority({ priority: 1 });
  added[PRIORITY_JOB_COUNT - 1].priority = 1;
  const perPriority = await queue.getCountsPerPriority([1, 2, 3, 4]);
  const expectedPerPriority = {};
  for (const priority of [1, 2, 3, 4]) {
    expectedPerPriority[priority] = added.filter((job) => job.priority === priority).length;
  }
  check(deepEqual(perPriority, expectedPerPriority),
    `getCountsPerPriority ${JSON.stringify(perPriority)}, expected ${JSON.stringify(expectedPerPriority)}`);
  // Jobs with a priority wait in the queue's prioritized set, not in its wait list.
  const counts = await queue.getJobCounts('prioritized', 'waiting', 'active');
  check(deepEqual(counts, { prioritized: PRIORITY_JOB_COUNT, waiting: 0, active: 0 }),
    `job counts while paused ${JSON.stringify(counts)}`);
  check(await queue.isPaused(), 'queue is not paused');
  const order = [];
  const worker = new Worker(queueName, async (job) => { order.push(job.data.index); return job.data.index; },
    { connection: connection(), prefix, concurrency: 1, autorun: true });
  opened.push(worker);
  await queue.resume();
  await waitFor(async () => order.length === PRIORITY_JOB_COUNT, 30_000, 'every prioritised job');
  const expected = [...added].sort((a, b) => a.priority - b.priority || a.index - b.index).map((job) => job.index);
  check(deepEqual(order, expected), `priority order ${JSON.stringify(order)}, expected ${JSON.stringify(expected)}`);
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  console.log('bullmq example: priorities: ok');
}

async function flows(opened) {
  const parentQueueName = 'reports';
  const childQueueName = 'parts';
  const flowProducer = new FlowProducer({ connection: connection(), prefix });
  opened.push(flowProducer);
  const childWorker = new Worker(childQueueName, async (job) => {
    if (job.data.amount < 0) throw new Error('negative amount');
    return job.data.amount * 10;
  },
    { connection: connection(), prefix, concurrency: 2 });
  const parentWorker = new Worker(parentQueueName, async (job) => {
    const childValues = await job.getChildrenValues();
    return Object.values(childValues).reduce((sum, value) => sum + value, 0);
  }, { connection: connection(), prefix });
  opened.push(childWorker, parentWorker);
  const parentEvents = new QueueEvents(parentQueueName, { connection: connection(), prefix });
  opened.push(parentEvents);
  await parentEvents.waitUntilReady();

  const children = [];
  for (let amount = 1; amount <= FLOW_CHILD_COUNT; amount += 1) {
    children.push({ name: 'part', queueName: childQueueName, data: { amount } });
  }
  const tree = await flowProducer.add({ name: 'report', queueName: parentQueueName, data: {}, children });
  check(tree.children.length === FLOW_CHILD_COUNT, `flow has ${tree.children.length} children`);
  const total = await tree.job.waitUntilFinished(parentEvents, 30_000);
  const expected = 10 * (FLOW_CHILD_COUNT * (FLOW_CHILD_COUNT + 1)) / 2;
  check(total === expected, `parent job returned ${total}, expected ${expected}`);

  const flow = await flowProducer.getFlow({ id: tree.job.id, queueName: parentQueueName });
  check(flow.children.length === FLOW_CHILD_COUNT, `getFlow found ${flow.children.length} children`);
  const dependencies = await tree.job.getDependenciesCount();
  check(dependencies.processed === FLOW_CHILD_COUNT && dependencies.unprocessed === 0,
    `dependency counts ${JSON.stringify(dependencies)}`);

  // A child that fails with failParentOnFailure fails its parent; one that fails with
  // ignoreDependencyOnFailure lets its parent run, which sees the failure.
  const failingTree = await flowProducer.add({
    name: 'report', queueName: parentQueueName, data: {},
    children: [{ name: 'part', queueName: childQueueName, data: { amount: -1 }, opts: { failParentOnFailure: true } }],
  });
  const tolerantTree = await flowProducer.add({
    name: 'report', queueName: parentQueueName, data: {},
    children: [
      { name: 'part', queueName: childQueueName, data: { amount: -1 }, opts: { ignoreDependencyOnFailure: true } },
      { name: 'part', queueName: childQueueName, data: { amount: 4 } },
    ],
  });
  await waitFor(async () => (await failingTree.job.getState()) === 'failed', 20_000, 'the parent of a failed child to fail');
  const tolerantTotal = await tolerantTree.job.waitUntilFinished(parentEvents, 20_000);
  check(tolerantTotal === 40, `the parent with an ignored failed child returned ${tolerantTotal}`);
  const ignored = await tolerantTree.job.getIgnoredChildrenFailures();
  check(Object.keys(ignored).length === 1, `ignored child failures ${JSON.stringify(ignored)}`);

  await childWorker.close();
  await parentWorker.close();
  await parentEvents.close();
  await flowProducer.close();
  for (const name of [parentQueueName, childQueueName]) {
    const queue = new Queue(name, { connection: connection(), prefix });
    await queue.obliterate({ force: true });
    await queue.close();
  }
  console.log('bullmq example: flow parent/children: ok');
}

// What an operator does with a queue: see its workers, read job logs, retry failed jobs,
// promote a delayed one, deduplicate, keep only the last completed jobs, clean, run a job
// scheduler, read metrics and stay under a rate limit.
async function queueManagement(opened) {
  const queueName = 'chores';
  const queue = new Queue(queueName, { connection: connection(), prefix });
  const events = new QueueEvents(queueName, { connection: connection(), prefix });
  opened.push(queue, events);
  await events.waitUntilReady();
  const completedIds = [];
  events.on('completed', ({ jobId }) => completedIds.push(jobId));

  // Jobs added while the queue is paused wait for the worker.
  await queue.pause();
  const first = await queue.add('chore', { label: 'deduplicated' }, { deduplication: { id: 'nightly' } });
  const second = await queue.add('chore', { label: 'dropped' }, { deduplication: { id: 'nightly' } });
  check(second.id === first.id, `a deduplicated add made job ${second.id} beside ${first.id}`);
  check((await queue.getDeduplicationJobId('nightly')) === first.id, 'getDeduplicationJobId');
  const failing = await queue.add('fails-once', {}, { attempts: 1 });
  const promoted = await queue.add('chore', { label: 'promoted' }, { delay: 60_000 });
  const kept = [];
  for (let index = 0; index < KEEP_COMPLETED_COUNT + 4; index += 1) {
    kept.push(await queue.add('chore', { label: `kept-${index}` }, { removeOnComplete: { count: KEEP_COMPLETED_COUNT } }));
  }
  await first.updateData({ label: 'updated' });

  let failingRuns = 0;
  const labels = [];
  const worker = new Worker(queueName, async (job) => {
    if (job.name === 'fails-once') {
      failingRuns += 1;
      if (failingRuns === 1) throw new Error('fails on its first run');
    }
    if (job.name === 'tick') return 'tick';
    await job.log(`ran ${job.data.label}`);
    labels.push(job.data.label);
    return job.data.label;
  }, {
    connection: connection(), prefix, concurrency: 1, metrics: { maxDataPoints: 60 },
    limiter: { max: RATE_LIMIT_MAX, duration: RATE_LIMIT_DURATION_MS },
  });
  opened.push(worker);
  await worker.waitUntilReady();
  // BullMQ finds its workers with CLIENT LIST, by the connection names it gave them.
  await waitFor(async () => (await queue.getWorkersCount()) === 1, 10_000, 'getWorkersCount() to be 1');
  const workers = await queue.getWorkers();
  check(workers.length === 1 && workers[0].name === queueName, `getWorkers gave ${JSON.stringify(workers)}`);

  const resumedAt = Date.now();
  await queue.resume();
  const runCount = 1 + 1 + kept.length;
  await waitFor(async () => labels.length + failingRuns >= runCount, 30_000, `${runCount} runs (have ${labels.length + failingRuns})`);
  const elapsedMs = Date.now() - resumedAt;
  // The limiter lets RATE_LIMIT_MAX jobs through per window.
  const windowsNeeded = Math.ceil(runCount / RATE_LIMIT_MAX) - 1;
  check(elapsedMs >= windowsNeeded * RATE_LIMIT_DURATION_MS * 0.9,
    `${runCount} jobs ran in ${elapsedMs} ms despite a limit of ${RATE_LIMIT_MAX} per ${RATE_LIMIT_DURATION_MS} ms`);
  check(labels[0] === 'updated', `the deduplicated job ran with ${labels[0]}`);

  await waitFor(async () => (await queue.getFailedCount()) === 1, 10_000, 'one failed job');
  const [failed] = await queue.getFailed();
  check(failed.id === failing.id && failed.failedReason === 'fails on its first run', `failed job ${JSON.stringify(failed)}`);
  await queue.retryJobs({ state: 'failed' });
  await failing.waitUntilFinished(events, 10_000);
  check(failingRuns === 2, `the failed job ran ${failingRuns} times after retryJobs`);

  check((await promoted.getState()) === 'delayed', 'the delayed job is not delayed');
  await promoted.promote();
  const promotedValue = await promoted.waitUntilFinished(events, 10_000);
  check(promotedValue === 'promoted', `the promoted job returned ${promotedValue}`);
  // (The first job's logs went with it: removeOnComplete's count trims the whole completed set.)
  const logs = await queue.getJobLogs(promoted.id);
  check(deepEqual(logs, { logs: ['ran promoted'], count: 1 }), `job logs ${JSON.stringify(logs)}`);

  // removeOnComplete keeps only the last KEEP_COMPLETED_COUNT of those jobs.
  const completedJobs = await queue.getJobs(['completed'], 0, -1, true);
  const keptLeft = completedJobs.filter((job) => String(job.data.label).startsWith('kept-'));
  check(keptLeft.length === KEEP_COMPLETED_COUNT, `${keptLeft.length} kept jobs left, expected ${KEEP_COMPLETED_COUNT}`);

  // A job scheduler adds a job every SCHEDULER_EVERY_MS until it is removed.
  const ticksBefore = completedIds.length;
  await queue.upsertJobScheduler('ticker', { every: SCHEDULER_EVERY_MS }, { name: 'tick', data: {} });
  check((await queue.getJobSchedulersCount()) === 1, 'getJobSchedulersCount after upsert');
  await waitFor(async () => completedIds.length - ticksBefore >= SCHEDULER_RUN_COUNT, 20_000, `${SCHEDULER_RUN_COUNT} scheduled ticks`);
  check(await queue.removeJobScheduler('ticker'), 'removeJobScheduler returned false');
  check((await queue.getJobSchedulersCount()) === 0, 'getJobSchedulersCount after remove');

  const metrics = await queue.getMetrics('completed');
  const completedCount = await queue.getCompletedCount();
  check(metrics.meta.count >= completedCount, `metrics count ${metrics.meta.count} below ${completedCount} completed jobs`);

  const cleaned = await queue.clean(0, 1000, 'completed');
  check(cleaned.length === completedCount, `clean removed ${cleaned.length} of ${completedCount} completed jobs`);
  check((await queue.getCompletedCount()) === 0, 'completed jobs left after clean');

  await worker.close();
  await events.close();
  await queue.obliterate({ force: true });
  await queue.close();
  console.log('bullmq example: queue management: ok');
}

// A worker that stops renewing its job's lock (as one that hangs or dies does): the job's lock
// key expires, the stalled-job check finds the job and moves it back to wait, and the job runs
// again. This leans on key expiry inside BullMQ's scripts.
async function stalledJobs(opened) {
  const queueName = 'stalls';
  const queue = new Queue(queueName, { connection: connection(), prefix });
  const events = new QueueEvents(queueName, { connection: connection(), prefix });
  opened.push(queue, events);
  await events.waitUntilReady();
  const stalledIds = [];
  events.on('stalled', ({ jobId }) => stalledIds.push(jobId));
  let runs = 0;
  const worker = new Worker(queueName, async () => {
    runs += 1;
    if (runs === 1) {
      await new Promise((resolve) => setTimeout(resolve, STALLED_FIRST_RUN_MS));
      return 'late';
    }
    return 'recovered';
  }, {
    connection: connection(), prefix, concurrency: 2, skipLockRenewal: true,
    lockDuration: STALL_LOCK_MS, stalledInterval: STALL_CHECK_INTERVAL_MS, maxStalledCount: 1,
  });
  opened.push(worker);
  // The first run's completion comes after its lock is gone; the worker reports that as an
  // error, which is what should happen.
  worker.on('error', () => {});
  const job = await queue.add('hangs-first', {});
  const value = await job.waitUntilFinished(events, 20_000);
  check(value === 'recovered', `the stalled job returned ${JSON.stringify(value)}`);
  check(deepEqual(stalledIds, [job.id]), `stalled events for ${JSON.stringify(stalledIds)}`);
  check(runs === 2, `the stalled job ran ${runs} times`);
  await worker.close(true);
  await events.close();
  await queue.obliterate({ force: true });
  await queue.close();
  console.log('bullmq example: stalled job recovery: ok');
}

async function main() {
  if (!CLIENTS.includes(client)) fail(`BULLMQ_CLIENT=${client}: expected one of ${CLIENTS.join(', ')}`);
  console.log(`bullmq example: client ${client}`);
  const timer = setTimeout(() => fail(`no result after ${RUN_TIMEOUT_MS} ms`), RUN_TIMEOUT_MS);
  const opened = [];
  try {
    for (const step of [squaresAndRetries, priorities, flows, queueManagement, stalledJobs]) {
      const stepStartedAt = Date.now();
      await step(opened);
      console.log(`bullmq example: ${step.name} took ${Date.now() - stepStartedAt} ms`);
    }
  } catch (error) {
    fail(error && error.stack ? error.stack : String(error));
  }
  clearTimeout(timer);
  // Anything a failed step left open would keep node running.
  await Promise.allSettled(opened.map((item) => item.close()));
  console.log('bullmq example: all checks passed');
  process.exit(0);
}

main();
