'use strict';
// A Node.js application's cache as it is usually written today: cache-manager in front of a
// Keyv store backed by Redis (@keyv/redis, on node-redis), with a namespace. Reads, writes,
// many at once, TTLs, wrap() computing a value once for concurrent callers, wrap()'s background
// refresh, deletes and clearing the namespace (SCAN with MATCH) while other keys stay.
// Exits 1 with a message on any wrong result or any error the stores report.
//
//   REDIS_PORT=6379 node examples/frameworks/node-cache/main.js
//
// ci/test-frameworks-js-ruby.sh runs it against redis-server and against Ember, with
// cache-manager, keyv and @keyv/redis installed by ci/setup-frameworks-js-ruby.sh.

const { createCache } = require('cache-manager');
const { Keyv } = require('keyv');
const { default: KeyvRedis } = require('@keyv/redis');
const { createClient } = require('redis');

const host = process.env.REDIS_HOST || '127.0.0.1';
const port = Number(process.env.REDIS_PORT || 6379);
const RUN_TIMEOUT_MS = 60_000;
// A run-specific namespace keeps the program's keys apart from anything else in the database.
const namespace = `node-cache-example-${process.pid}-${Date.now()}`;
const PRODUCT_COUNT = 50;
// Short enough that the example waits little for entries to expire.
const SHORT_TTL_MS = 400;
const LONG_TTL_MS = 60_000;
// wrap() refreshes an entry in the background once less than this much of its TTL is left.
const REFRESH_THRESHOLD_MS = 500;
const CONCURRENT_CALLERS = 10;

function fail(message) {
  console.error(`node cache example: FAIL: ${message}`);
  process.exit(1);
}

function check(condition, message) {
  if (!condition) fail(message);
}

function deepEqual(left, right) {
  return JSON.stringify(left) === JSON.stringify(right);
}

const sleep = (milliseconds) => new Promise((resolve) => setTimeout(resolve, milliseconds));

async function main() {
  const timer = setTimeout(() => fail(`no result after ${RUN_TIMEOUT_MS} ms`), RUN_TIMEOUT_MS);
  const storeErrors = [];
  const url = `redis://${host}:${port}`;
  const keyv = new Keyv({ store: new KeyvRedis(url), namespace, useKeyPrefix: false });
  keyv.on('error', (error) => storeErrors.push(String(error)));
  const cache = createCache({ stores: [keyv] });
  // A plain client to look at what the store left in Redis, and a key outside the namespace.
  const redis = createClient({ url });
  await redis.connect();
  const outsideKey = `${namespace}-outside`;
  await redis.set(outsideKey, 'kept');

  const product = { id: 7, name: 'kettle', tags: ['kitchen', 'steel'], price: 24.5 };
  await cache.set('product:7', product, LONG_TTL_MS);
  check(deepEqual(await cache.get('product:7'), product), `get gave ${JSON.stringify(await cache.get('product:7'))}`);
  check((await cache.get('product:missing')) === undefined, 'get of a missing key is not undefined');
  const expiresAt = await cache.ttl('product:7');
  check(expiresAt > Date.now() && expiresAt <= Date.now() + LONG_TTL_MS, `ttl gave ${expiresAt}`);
  const storedKeys = await redis.keys(`${namespace}:*`);
  check(storedKeys.length === 1 && storedKeys[0].includes('product:7'), `keys in Redis: ${JSON.stringify(storedKeys)}`);
  const redisTtlMs = await redis.pTTL(storedKeys[0]);
  check(redisTtlMs > 0 && redisTtlMs <= LONG_TTL_MS, `the stored key's PTTL is ${redisTtlMs}`);
  console.log('node cache example: get/set/ttl: ok');

  const entries = Array.from({ length: PRODUCT_COUNT }, (_, index) => ({
    key: `product:${index}`, value: { id: index, stock: index * 3 }, ttl: LONG_TTL_MS,
  }));
  await cache.mset(entries);
  const names = entries.map((entry) => entry.key).concat(['product:none']);
  const found = await cache.mget(names);
  check(deepEqual(found, entries.map((entry) => entry.value).concat([undefined])),
    `mget gave ${JSON.stringify(found).slice(0, 200)}`);
  check(await cache.mdel(['product:1', 'product:2']), 'mdel returned false');
  check((await cache.get('product:1')) === undefined && (await cache.get('product:3')) !== undefined, 'mdel');
  check(await cache.del('product:3'), 'del returned false');
  console.log('node cache example: mset/mget/mdel: ok');

  await cache.set('token', 'abc', SHORT_TTL_MS);
  check((await cache.get('token')) === 'abc', 'an entry with a TTL is not readable at once');
  await sleep(SHORT_TTL_MS + 200);
  check((await cache.get('token')) === undefined, 'an expired entry is still read');
  console.log('node cache example: expiry: ok');

  // Concurrent callers of wrap() share one computation.
  let computed = 0;
  const compute = async () => { computed += 1; await sleep(50); return { total: 1234 }; };
  const results = await Promise.all(Array.from({ length: CONCURRENT_CALLERS }, () => cache.wrap('report', compute, LONG_TTL_MS)));
  check(results.every((result) => deepEqual(result, { total: 1234 })), `wrap gave ${JSON.stringify(results)}`);
  check(computed === 1, `wrap computed ${computed} times for ${CONCURRENT_CALLERS} concurrent callers`);
  check(deepEqual(await cache.wrap('report', compute, LONG_TTL_MS), { total: 1234 }) && computed === 1, 'wrap of a cached value');
  // Past the refresh threshold, wrap() serves the cached value and refreshes it behind.
  let version = 0;
  const versioned = async () => { version += 1; return version; };
  check((await cache.wrap('versioned', versioned, REFRESH_THRESHOLD_MS * 2, REFRESH_THRESHOLD_MS)) === 1, 'first wrap');
  await sleep(REFRESH_THRESHOLD_MS + 100);
  check((await cache.wrap('versioned', versioned, REFRESH_THRESHOLD_MS * 2, REFRESH_THRESHOLD_MS)) === 1, 'wrap did not serve the cached value');
  const refreshDeadline = Date.now() + 5_000;
  while ((await cache.get('versioned')) !== 2) {
    check(Date.now() < refreshDeadline, `no background refresh: the entry is ${await cache.get('versioned')}`);
    await sleep(20);
  }
  console.log('node cache example: wrap: ok');

  check(await cache.clear(), 'clear returned false');
  const left = await redis.keys(`${namespace}:*`);
  check(left.length === 0, `clear left ${left.length} keys: ${JSON.stringify(left.slice(0, 5))}`);
  check((await redis.get(outsideKey)) === 'kept', 'clear removed a key outside its namespace');
  await redis.del(outsideKey);
  console.log('node cache example: clear: ok');

  check(storeErrors.length === 0, `the store reported errors: ${storeErrors.join('; ')}`);
  await cache.disconnect();
  await redis.quit();
  clearTimeout(timer);
  console.log('node cache example: all checks passed');
  process.exit(0);
}

main().catch((error) => fail(error && error.stack ? error.stack : String(error)));
