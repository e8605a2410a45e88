//! Every policy on small crafted workloads (a table of named cases, each a script of hooks and
//! the victims it must produce), then properties that hold for every policy.

use super::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Copy, Debug)]
enum Step {
    /// Set the clock, in milliseconds.
    At(u64),
    /// A new key of one byte, with an optional absolute expiry.
    Insert(KeyId, Option<u64>),
    Access(KeyId),
    /// A write to an existing key, with its new expiry.
    Update(KeyId, Option<u64>),
    Remove(KeyId),
    /// The next victim must be this (or `None`: nothing evictable).
    Evict(Option<KeyId>),
    /// The next victim may be any key but this one.
    EvictOther(KeyId),
}

use Step::*;

struct Case {
    name: &'static str,
    policy: Policy,
    capacity_bytes: u64,
    steps: Vec<Step>,
}

const MINUTE_MS: u64 = 60_000;

fn inserts(keys: std::ops::RangeInclusive<KeyId>) -> Vec<Step> {
    keys.map(|key| Insert(key, None)).collect()
}

fn evictions(keys: &[KeyId]) -> Vec<Step> {
    keys.iter().map(|&key| Evict(Some(key))).collect()
}

fn cases() -> Vec<Case> {
    let ttl = Some;
    vec![
        Case {
            name: "allkeys-lru evicts the least recently used",
            policy: Policy::AllKeysLru,
            capacity_bytes: 3,
            steps: vec![
                At(0),
                Insert(1, None),
                At(1_000),
                Insert(2, None),
                At(2_000),
                Insert(3, None),
                At(3_000),
                Access(1),
                Evict(Some(2)),
                Evict(Some(3)),
                Evict(Some(1)),
                Evict(None),
            ],
        },
        Case {
            name: "allkeys-lru counts a write as a use",
            policy: Policy::AllKeysLru,
            capacity_bytes: 2,
            steps: vec![
                At(0),
                Insert(1, None),
                At(1_000),
                Insert(2, None),
                At(2_000),
                Update(1, None),
                Evict(Some(2)),
            ],
        },
        Case {
            name: "allkeys-lrm ignores reads: the least recently written goes",
            policy: Policy::AllKeysLrm,
            capacity_bytes: 2,
            steps: vec![
                At(0),
                Insert(1, None),
                At(1_000),
                Insert(2, None),
                At(2_000),
                Access(1),
                Evict(Some(1)),
                Evict(Some(2)),
            ],
        },
        Case {
            name: "allkeys-lrm counts writes",
            policy: Policy::AllKeysLrm,
            capacity_bytes: 2,
            steps: vec![
                At(0),
                Insert(1, None),
                At(1_000),
                Insert(2, None),
                At(2_000),
                Update(1, None),
                Evict(Some(2)),
            ],
        },
        Case {
            name: "allkeys-lfu evicts the least frequently used",
            policy: Policy::AllKeysLfu,
            capacity_bytes: 3,
            steps: vec![
                At(0),
                Insert(1, None),
                Insert(2, None),
                Insert(3, None),
                Access(1),
                Access(1),
                Access(3),
                Access(3),
                Access(3),
                Evict(Some(2)),
            ],
        },
        Case {
            name: "allkeys-lfu counters decay one point per idle minute",
            policy: Policy::AllKeysLfu,
            capacity_bytes: 2,
            steps: vec![
                // Key 1 is read once (counter 6), then idles ten minutes (decays to 0); key 2,
                // read after those minutes, has 1.
                At(0),
                Insert(1, None),
                Access(1),
                Insert(2, None),
                At(10 * MINUTE_MS),
                Access(2),
                Evict(Some(1)),
            ],
        },
        Case {
            name: "allkeys-random with one key evicts it",
            policy: Policy::AllKeysRandom,
            capacity_bytes: 1,
            steps: vec![Insert(1, None), Evict(Some(1)), Evict(None)],
        },
        Case {
            name: "volatile-lru only evicts keys with a TTL",
            policy: Policy::VolatileLru,
            capacity_bytes: 3,
            steps: vec![
                At(0),
                Insert(1, None),
                At(1_000),
                Insert(2, ttl(MINUTE_MS)),
                At(2_000),
                Insert(3, ttl(MINUTE_MS)),
                Evict(Some(2)),
                Evict(Some(3)),
                Evict(None),
            ],
        },
        Case {
            name: "volatile-lru: PERSIST makes a key safe, EXPIRE exposes one",
            policy: Policy::VolatileLru,
            capacity_bytes: 2,
            steps: vec![
                At(0),
                Insert(1, ttl(MINUTE_MS)),
                Insert(2, None),
                Update(1, None),
                Evict(None),
                Update(2, ttl(MINUTE_MS)),
                Evict(Some(2)),
            ],
        },
        Case {
            name: "volatile-lfu only evicts keys with a TTL, least used first",
            policy: Policy::VolatileLfu,
            capacity_bytes: 3,
            steps: vec![
                At(0),
                Insert(1, ttl(MINUTE_MS)),
                Insert(2, ttl(MINUTE_MS)),
                Insert(3, None),
                Access(1),
                Access(1),
                Evict(Some(2)),
                Evict(Some(1)),
                Evict(None),
            ],
        },
        Case {
            name: "volatile-ttl evicts the soonest to expire",
            policy: Policy::VolatileTtl,
            capacity_bytes: 4,
            steps: vec![
                At(0),
                Insert(1, ttl(50_000)),
                Insert(2, ttl(10_000)),
                Insert(3, ttl(30_000)),
                Insert(4, None),
                Evict(Some(2)),
                Evict(Some(3)),
                Evict(Some(1)),
                Evict(None),
            ],
        },
        Case {
            name: "volatile-random never evicts a key without a TTL",
            policy: Policy::VolatileRandom,
            capacity_bytes: 2,
            steps: vec![
                Insert(1, None),
                Insert(2, ttl(MINUTE_MS)),
                Evict(Some(2)),
                Evict(None),
            ],
        },
        Case {
            name: "volatile-lrm evicts the least recently written key with a TTL",
            policy: Policy::VolatileLrm,
            capacity_bytes: 3,
            steps: vec![
                At(0),
                Insert(1, ttl(MINUTE_MS)),
                At(1_000),
                Insert(2, ttl(MINUTE_MS)),
                Insert(3, None),
                At(2_000),
                Access(1),
                Evict(Some(1)),
                Evict(Some(2)),
                Evict(None),
            ],
        },
        Case {
            name: "a deleted key is never a victim (a ghost in Redis's pool)",
            policy: Policy::AllKeysLru,
            capacity_bytes: 2,
            steps: vec![
                At(0),
                Insert(1, None),
                At(1_000),
                Insert(2, None),
                At(2_000),
                Insert(3, None),
                Evict(Some(1)),
                Remove(2),
                Evict(Some(3)),
                Evict(None),
            ],
        },
        Case {
            name: "sieve: the hand clears visited keys and evicts unvisited ones in place",
            policy: Policy::Sieve,
            capacity_bytes: 4,
            steps: vec![
                Insert(1, None),
                Insert(2, None),
                Insert(3, None),
                Insert(4, None),
                Access(1),
                Access(3),
                Evict(Some(2)),
                Evict(Some(4)),
                Evict(Some(1)),
                Evict(Some(3)),
                Evict(None),
            ],
        },
        Case {
            name: "sieve: deleting the key under the hand moves the hand on",
            policy: Policy::Sieve,
            capacity_bytes: 3,
            steps: vec![
                Insert(1, None),
                Insert(2, None),
                Insert(3, None),
                Access(1),
                Evict(Some(2)),
                Remove(3),
                Insert(4, None),
                Evict(Some(1)),
                Evict(Some(4)),
            ],
        },
        Case {
            name: "s3fifo: twice-read keys move to main, once-read go to the ghost, \
                   a ghost key written again skips the small queue",
            policy: Policy::S3Fifo,
            capacity_bytes: 10,
            steps: [
                inserts(1..=10),
                vec![Access(1), Access(1), Access(2), Insert(11, None)],
                evictions(&[2]),
                vec![Insert(2, None)],
                evictions(&[3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2]),
                vec![Evict(None)],
            ]
            .concat(),
        },
        Case {
            name: "s3fifo: main reinserts a read key once per read",
            policy: Policy::S3Fifo,
            capacity_bytes: 10,
            steps: [
                inserts(1..=4),
                (1..=3).flat_map(|key| [Access(key), Access(key)]).collect(),
                // 1, 2 and 3 move to main (counters cleared), 4 was never read.
                evictions(&[4]),
                vec![Access(1)],
                evictions(&[2, 3, 1]),
                vec![Evict(None)],
            ]
            .concat(),
        },
        Case {
            name: "w-tinylfu: a one-hit key loses admission to frequently read keys",
            policy: Policy::WTinyLfu,
            capacity_bytes: 100,
            steps: [
                inserts(1..=100),
                (1..=100)
                    .flat_map(|key| [Access(key), Access(key), Access(key)])
                    .collect(),
                vec![Insert(1_000, None), EvictOther(0), Insert(1_001, None)],
                evictions(&[1_000]),
            ]
            .concat(),
        },
        Case {
            name: "w-tinylfu: a frequently read newcomer is admitted",
            policy: Policy::WTinyLfu,
            capacity_bytes: 100,
            steps: [
                inserts(1..=100),
                (1..=100)
                    .flat_map(|key| [Access(key), Access(key)])
                    .collect(),
                vec![Insert(1_000, None), EvictOther(0)],
                (0..8).map(|_| Access(1_000)).collect(),
                vec![Insert(1_001, None), EvictOther(1_000)],
            ]
            .concat(),
        },
    ]
}

fn config(capacity_bytes: u64) -> PolicyConfig {
    PolicyConfig {
        capacity_bytes,
        expected_entries: capacity_bytes,
        // More samples than keys in every case: the sampled policies then see every key and
        // their choice is exact, so the scripts can name the victim.
        samples: 16,
        ..PolicyConfig::default()
    }
}

#[test]
fn crafted_workloads_evict_what_they_should() {
    for case in cases() {
        let mut policy = case.policy.build(&config(case.capacity_bytes));
        let mut now_ms = 0;
        for (index, &step) in case.steps.iter().enumerate() {
            let info = |expire_at_ms| KeyInfo {
                size_bytes: 1,
                expire_at_ms,
            };
            match step {
                At(ms) => now_ms = ms,
                Insert(key, expiry) => policy.on_insert(key, info(expiry), now_ms),
                Access(key) => policy.on_access(key, now_ms),
                Update(key, expiry) => policy.on_update(key, info(expiry), now_ms),
                Remove(key) => policy.on_remove(key),
                Evict(expected) => assert_eq!(
                    policy.choose_victim(now_ms),
                    expected,
                    "{}: step {index} {step:?}",
                    case.name
                ),
                EvictOther(spared) => {
                    let victim = policy.choose_victim(now_ms);
                    assert!(
                        victim.is_some() && victim != Some(spared),
                        "{}: step {index}: evicted {victim:?}",
                        case.name
                    );
                }
            }
        }
    }
}

#[test]
fn every_policy_has_a_case_and_a_name() {
    let cases = cases();
    for policy in Policy::ALL {
        assert!(
            cases.iter().any(|case| case.policy == policy),
            "{} has no crafted case",
            policy.name()
        );
        assert_eq!(Policy::from_name(policy.name()), Some(policy));
        assert_eq!(policy.build(&config(10)).name(), policy.name());
    }
    assert_eq!(Policy::from_name("ALLKEYS-LRU"), Some(Policy::AllKeysLru));
    assert_eq!(Policy::from_name("noeviction"), None);
}

fn expiry_for(policy: Policy) -> Option<u64> {
    // Volatile policies only see keys with a TTL; a far one that never fires.
    policy.is_volatile().then_some(u64::MAX / 2)
}

#[test]
fn random_policies_spread_their_victims() {
    // 4 keys, refilled after each eviction; each should be the victim about a quarter of the
    // time. 4000 trials: a count outside 800..1200 has odds far below one in a million.
    for policy in [Policy::AllKeysRandom, Policy::VolatileRandom] {
        let mut engine = policy.build(&config(4));
        let info = KeyInfo {
            size_bytes: 1,
            expire_at_ms: expiry_for(policy),
        };
        for key in 0..4 {
            engine.on_insert(key, info, 0);
        }
        let mut counts = [0u32; 4];
        for _ in 0..4_000 {
            let victim = engine.choose_victim(0).expect("a key");
            counts[victim as usize] += 1;
            engine.on_insert(victim, info, 0);
        }
        assert!(
            counts.iter().all(|&count| (800..1_200).contains(&count)),
            "{}: {counts:?}",
            policy.name()
        );
    }
}

#[test]
fn when_everything_fits_only_first_requests_miss() {
    let mut rng = SmallRng::seed_from_u64(11);
    let trace: Vec<KeyId> = (0..5_000).map(|_| rng.gen_range(0..500)).collect();
    let distinct = trace.iter().collect::<std::collections::HashSet<_>>().len() as u64;
    for policy in Policy::ALL {
        let mut cache = SimulatedCache::new(policy.build(&config(500 * 10)), 500 * 10);
        for (index, &key) in trace.iter().enumerate() {
            cache.request(key, 10, expiry_for(policy), index as u64);
        }
        let stats = cache.stats();
        assert_eq!(
            (stats.misses, stats.evictions),
            (distinct, 0),
            "{}",
            policy.name()
        );
    }
}

#[test]
fn seeded_random_operations_keep_every_policy_within_its_bytes() {
    let seed = std::env::var("EMBER_TEST_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0x00c0_ffee_u64);
    println!("seed {seed} (EMBER_TEST_SEED replays it)");
    for policy in Policy::ALL {
        let mut rng = SmallRng::seed_from_u64(seed);
        let capacity_bytes = 2_000;
        let mut cache = SimulatedCache::new(policy.build(&config(capacity_bytes)), capacity_bytes);
        for step in 0..20_000u64 {
            let key = rng.gen_range(0..400);
            let now_ms = step * 50;
            if rng.gen_ratio(1, 10) {
                cache.remove(key);
            } else {
                // Sizes change now and then, which the cache treats as a rewrite.
                let size_bytes = rng.gen_range(1..60);
                cache.request(key, size_bytes, expiry_for(policy), now_ms);
            }
            assert!(
                cache.used_bytes() <= capacity_bytes,
                "{} over its bytes at step {step} (seed {seed})",
                policy.name()
            );
        }
        assert!(cache.stats().evictions > 0, "{} evicted", policy.name());
    }
}

/// Hit ratio on a hot set read in rounds, each followed by a scan of new keys that alone
/// overflows the cache: recency-based policies lose the hot set every round.
fn hot_hit_ratio(policy: Policy) -> f64 {
    let capacity_bytes = 100;
    let policy_config = PolicyConfig {
        // Without decay: a round here lasts minutes of the simulated clock, and Redis's LFU
        // decay (a point a minute) would otherwise erase the counts the test is about.
        lfu_decay_time_minutes: 0,
        ..config(capacity_bytes)
    };
    let mut cache = SimulatedCache::new(policy.build(&policy_config), capacity_bytes);
    let (hot_keys, scan_len, rounds) = (40u64, 120u64, 200u64);
    let mut next_scan_key = 1_000_000;
    let (mut hot_hits, mut hot_reads) = (0u64, 0u64);
    let mut now_ms = 0;
    for round in 0..rounds {
        for key in 0..hot_keys {
            // One request per second, so that the LRU clock (seconds) orders them.
            now_ms += 1_000;
            let hit = cache.request(key, 1, expiry_for(policy), now_ms);
            if round >= rounds / 2 {
                hot_hits += u64::from(hit);
                hot_reads += 1;
            }
        }
        for _ in 0..scan_len {
            now_ms += 1_000;
            cache.request(next_scan_key, 1, expiry_for(policy), now_ms);
            next_scan_key += 1;
        }
    }
    hot_hits as f64 / hot_reads as f64
}

#[test]
fn frequency_policies_keep_a_hot_set_through_scans() {
    // (policy, least and most hot-set hit ratio in the second half). Exact LRU scores 0 here:
    // 160 distinct keys pass between two reads of a hot key in a 100-key cache. Policies that
    // count frequency keep (nearly) the whole hot set. SIEVE judges a key by reads while it is
    // cached, so like LRU it never sees a hot key read twice and cannot learn it. S3-FIFO's
    // ghost does: while the cache first fills, hot keys leave the small queue for the ghost
    // before the scan has pushed 90 keys after them, come back straight into main on their
    // next read, and main's reinsertion keeps them from then on.
    let cases: &[(Policy, f64, f64)] = &[
        (Policy::AllKeysLru, 0.0, 0.35),
        (Policy::AllKeysLrm, 0.0, 0.35),
        (Policy::AllKeysLfu, 0.9, 1.0), // no decay, see hot_hit_ratio
        (Policy::WTinyLfu, 0.9, 1.0),
        (Policy::Sieve, 0.0, 0.35),
        (Policy::S3Fifo, 0.9, 1.0),
    ];
    for &(policy, least, most) in cases {
        let ratio = hot_hit_ratio(policy);
        println!("{}: hot-set hit ratio {ratio:.3}", policy.name());
        assert!(
            (least..=most).contains(&ratio),
            "{}: {ratio:.3} outside {least}..={most}",
            policy.name()
        );
    }
}
