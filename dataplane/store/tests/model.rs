//! The keyspace against a plain model (a map of key to value and expiry), under random
//! operations and a moving clock. proptest prints the seed and the shrunk case on failure.

use std::collections::BTreeMap;

use ember_store::{Keyspace, Value};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Insert {
        db: usize,
        key: u8,
        value: u16,
        ttl_ms: Option<u64>,
    },
    Remove {
        db: usize,
        key: u8,
    },
    Get {
        db: usize,
        key: u8,
    },
    Expire {
        db: usize,
        key: u8,
        ttl_ms: Option<u64>,
    },
    Advance {
        ms: u64,
    },
    ExpireCycle {
        keys_max: usize,
    },
    Flush {
        db: usize,
    },
    Swap {
        first: usize,
        second: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let db = 0usize..3;
    prop_oneof![
        (
            db.clone(),
            0u8..20,
            any::<u16>(),
            proptest::option::of(1u64..50)
        )
            .prop_map(|(db, key, value, ttl_ms)| Op::Insert {
                db,
                key,
                value,
                ttl_ms
            }),
        (db.clone(), 0u8..20).prop_map(|(db, key)| Op::Remove { db, key }),
        (db.clone(), 0u8..20).prop_map(|(db, key)| Op::Get { db, key }),
        (db.clone(), 0u8..20, proptest::option::of(1u64..50))
            .prop_map(|(db, key, ttl_ms)| Op::Expire { db, key, ttl_ms }),
        (0u64..30).prop_map(|ms| Op::Advance { ms }),
        (0usize..5).prop_map(|keys_max| Op::ExpireCycle { keys_max }),
        (db.clone()).prop_map(|db| Op::Flush { db }),
        (db.clone(), db).prop_map(|(first, second)| Op::Swap { first, second }),
    ]
}

type Model = Vec<BTreeMap<u8, (u16, Option<u64>)>>;

fn live(model: &Model, db: usize, key: u8, now: u64) -> Option<u16> {
    model[db]
        .get(&key)
        .filter(|(_, at)| at.is_none_or(|at| at > now))
        .map(|(v, _)| *v)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn keyspace_matches_model(ops in proptest::collection::vec(op(), 1..200)) {
        let mut keyspace = Keyspace::new();
        let mut model: Model = vec![BTreeMap::new(); 16];
        let mut now = 1_000u64;
        for op in ops {
            match op {
                Op::Insert { db, key, value, ttl_ms } => {
                    let at = ttl_ms.map(|ttl| now + ttl);
                    let previous = keyspace.insert(db, &[key], Value::Int(value.into()), at, now);
                    prop_assert_eq!(previous.map(|e| e.value), live(&model, db, key, now).map(|v| Value::Int(v.into())));
                    model[db].insert(key, (value, at));
                }
                Op::Remove { db, key } => {
                    let removed = keyspace.remove(db, &[key], now).map(|e| e.value);
                    prop_assert_eq!(removed, live(&model, db, key, now).map(|v| Value::Int(v.into())));
                    model[db].remove(&key);
                }
                Op::Get { db, key } => {
                    let got = keyspace.get(db, &[key], now).map(|e| e.value.clone());
                    prop_assert_eq!(got, live(&model, db, key, now).map(|v| Value::Int(v.into())));
                }
                Op::Expire { db, key, ttl_ms } => {
                    let at = ttl_ms.map(|ttl| now + ttl);
                    let exists = live(&model, db, key, now).is_some();
                    prop_assert_eq!(keyspace.set_expire(db, &[key], at, now), exists);
                    if exists {
                        model[db].get_mut(&key).unwrap().1 = at;
                    }
                }
                Op::Advance { ms } => now += ms,
                Op::ExpireCycle { keys_max } => {
                    keyspace.expire_cycle(now, keys_max);
                }
                Op::Flush { db } => {
                    keyspace.flush_database(db);
                    model[db].clear();
                }
                Op::Swap { first, second } => {
                    keyspace.swap_databases(first, second);
                    model.swap(first, second);
                }
            }
            for db in 0..3 {
                let live_count = model[db].keys().filter(|k| live(&model, db, **k, now).is_some()).count();
                let stored = keyspace.len(db);
                // Stored keys include expired ones not yet removed, never fewer than the live ones.
                prop_assert!(stored >= live_count);
                prop_assert_eq!(keyspace.keys_matching(db, b"*", now).len(), live_count);
            }
        }
        keyspace.expire_cycle(u64::MAX, usize::MAX);
        for (db, map) in model.iter().enumerate() {
            let forever = map.values().filter(|(_, at)| at.is_none()).count();
            prop_assert_eq!(keyspace.len(db), forever);
        }
    }
}
