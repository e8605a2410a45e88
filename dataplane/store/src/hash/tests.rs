use std::collections::{BTreeMap, BTreeSet, HashSet};

use proptest::prelude::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;

const LIMITS: HashLimits = HashLimits {
    listpack_entries_max: 128,
    listpack_value_len_max: 64,
};

fn hash_of(pairs: &[(&str, &str)]) -> HashValue {
    let mut hash = HashValue::new();
    for (name, value) in pairs {
        hash.insert(name.as_bytes(), value.as_bytes(), &LIMITS, 0);
    }
    hash
}

#[test]
fn set_get_remove() {
    let mut hash = hash_of(&[("a", "1"), ("b", "2")]);
    assert!(!hash.insert(b"a", b"one", &LIMITS, 0));
    assert_eq!(hash.get(b"a", 0), Some(&b"one"[..]));
    assert_eq!(hash.value_len(b"a", 0), 3);
    assert_eq!(hash.value_len(b"zz", 0), 0);
    assert!(!hash.insert_if_absent(b"a", b"x", &LIMITS, 0));
    assert!(hash.insert_if_absent(b"c", b"3", &LIMITS, 0));
    assert!(hash.remove(b"b"));
    assert!(!hash.remove(b"b"));
    // Packed hashes keep insertion order through deletes, as a listpack does.
    let order: Vec<_> = hash.iter(0).map(|(name, _)| name.to_vec()).collect();
    assert_eq!(order, vec![b"a".to_vec(), b"c".to_vec()]);
    assert_eq!(hash.take(b"c", 0).map(|v| v.to_vec()), Some(b"3".to_vec()));
    assert_eq!(hash.len(), 1);
}

/// Redis's size classes, named cases: (name, field count, longest field, longest value).
#[test]
fn encodings_as_redis() {
    let cases: &[(&str, usize, usize, usize, &str)] = &[
        ("one short field", 1, 1, 1, "listpack"),
        ("128 fields", 128, 5, 5, "listpack"),
        ("129 fields", 129, 5, 5, "hashtable"),
        ("value of 64 bytes", 1, 1, 64, "listpack"),
        ("value of 65 bytes", 1, 1, 65, "hashtable"),
        ("field of 65 bytes", 1, 65, 1, "hashtable"),
    ];
    for &(name, count, field_len, value_len, expected) in cases {
        let mut hash = HashValue::new();
        for at in 0..count {
            let field = format!("{at:0>field_len$}");
            let value = "v".repeat(value_len);
            hash.insert(field.as_bytes(), value.as_bytes(), &LIMITS, 0);
        }
        assert_eq!(hash.encoding_name(), expected, "{name}");
        // Removing fields never converts back.
        let first = hash.iter(0).next().unwrap().0.to_vec();
        hash.remove(&first);
        assert_eq!(hash.encoding_name(), expected, "{name} after a delete");
    }
    let mut hash = hash_of(&[("a", "1")]);
    hash.prepare_for([&b"f"[..], &[b'x'; 65][..]], &LIMITS);
    assert_eq!(hash.encoding_name(), "hashtable");
    let mut volatile = hash_of(&[("a", "1")]);
    volatile.expire_field(b"a", 100, ExpireCondition::Always, 0);
    assert_eq!(volatile.encoding_name(), "listpackex");
    volatile.persist_field(b"a", 0);
    assert_eq!(volatile.encoding_name(), "listpackex");
}

#[test]
fn increments_as_redis() {
    let mut hash = hash_of(&[
        ("n", "10"),
        ("s", "abc"),
        ("f", "1.5"),
        ("big", "9223372036854775807"),
        ("inf", "inf"),
        ("nan", "nan"),
    ]);
    let cases: Vec<(&str, Result<i64, HashError>)> = vec![
        ("n", Ok(15)),
        ("new", Ok(5)),
        ("s", Err(HashError::NotAnInteger)),
        ("f", Err(HashError::NotAnInteger)),
        ("big", Err(HashError::Overflow)),
    ];
    for (field, expected) in cases {
        assert_eq!(
            hash.incr_by(field.as_bytes(), 5, &LIMITS, 0),
            expected,
            "{field}"
        );
    }
    let float_cases: Vec<(&str, f64, Result<&str, HashError>)> = vec![
        ("f", 0.1, Ok("1.6")),
        ("n", 0.5, Ok("15.5")),
        ("fresh", 3.0, Ok("3")),
        ("s", 1.0, Err(HashError::NotAFloat)),
        // An infinity parses (as strtold reads it) but the sum is refused.
        ("inf", 1.0, Err(HashError::NotFinite)),
        ("nan", 1.0, Err(HashError::NotAFloat)),
    ];
    for (field, delta, expected) in float_cases {
        let got = hash.incr_by_float(field.as_bytes(), delta, &LIMITS, 0);
        assert_eq!(
            got.as_deref().map_err(|e| *e),
            expected,
            "{field} + {delta}"
        );
    }
    hash.insert(b"spaced", b" 1", &LIMITS, 0);
    assert_eq!(
        hash.incr_by_float(b"spaced", 1.0, &LIMITS, 0),
        Err(HashError::NotAFloat)
    );
    assert_eq!(
        HashError::Overflow.to_string(),
        "ERR increment or decrement would overflow"
    );
}

#[test]
fn random_fields_as_hrandfield() {
    let mut rng = SmallRng::seed_from_u64(3);
    let mut hash = hash_of(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]);
    let cases: &[(i64, usize, bool)] = &[
        // (count, expected length, distinct)
        (0, 0, true),
        (2, 2, true),
        (4, 4, true),
        (10, 4, true),
        (-10, 10, false),
        (-1, 1, true),
    ];
    for &(count, len, distinct) in cases {
        let found = hash.random_fields(count, &mut rng);
        assert_eq!(found.len(), len, "count {count}");
        if distinct {
            let unique: HashSet<_> = found.iter().collect();
            assert_eq!(unique.len(), len, "count {count}");
        }
    }
    // A due field not yet removed can be picked, as in Redis 7.4.
    hash.expire_field(b"a", 5, ExpireCondition::Always, 0);
    let picked: HashSet<Vec<u8>> = (0..200)
        .map(|_| hash.random_field(&mut rng).unwrap().0.into_owned())
        .collect();
    assert!(picked.contains(&b"a"[..]));
    assert_eq!(hash.len(), 4);
}

#[test]
fn field_expiry_codes_as_redis() {
    // (name, existing expiry of "f", condition, new time, outcome, expiry after)
    type Case = (
        &'static str,
        Option<u64>,
        ExpireCondition,
        u64,
        ExpireOutcome,
        FieldExpiry,
    );
    use ExpireCondition::*;
    use ExpireOutcome::*;
    let cases: Vec<Case> = vec![
        ("set", None, Always, 500, Set, FieldExpiry::At(500)),
        ("nx without ttl", None, Nx, 500, Set, FieldExpiry::At(500)),
        (
            "nx with ttl",
            Some(300),
            Nx,
            500,
            ConditionNotMet,
            FieldExpiry::At(300),
        ),
        (
            "xx without ttl",
            None,
            Xx,
            500,
            ConditionNotMet,
            FieldExpiry::Persistent,
        ),
        ("xx with ttl", Some(300), Xx, 500, Set, FieldExpiry::At(500)),
        (
            "gt without ttl",
            None,
            Gt,
            500,
            ConditionNotMet,
            FieldExpiry::Persistent,
        ),
        ("gt later", Some(300), Gt, 500, Set, FieldExpiry::At(500)),
        (
            "gt equal",
            Some(500),
            Gt,
            500,
            ConditionNotMet,
            FieldExpiry::At(500),
        ),
        ("lt without ttl", None, Lt, 500, Set, FieldExpiry::At(500)),
        ("lt earlier", Some(600), Lt, 500, Set, FieldExpiry::At(500)),
        (
            "lt later",
            Some(300),
            Lt,
            500,
            ConditionNotMet,
            FieldExpiry::At(300),
        ),
        (
            "past deletes",
            None,
            Always,
            100,
            Deleted,
            FieldExpiry::NoField,
        ),
        (
            "now deletes",
            None,
            Always,
            200,
            Deleted,
            FieldExpiry::NoField,
        ),
        (
            "past but refused",
            None,
            Xx,
            100,
            ConditionNotMet,
            FieldExpiry::Persistent,
        ),
    ];
    let now_ms = 200;
    for (name, existing, condition, at_ms, outcome, after) in cases {
        let mut hash = hash_of(&[("f", "v"), ("g", "w")]);
        if let Some(existing) = existing {
            hash.expire_field(b"f", existing, Always, 0);
        }
        assert_eq!(
            hash.expire_field(b"f", at_ms, condition, now_ms),
            outcome,
            "{name}"
        );
        assert_eq!(hash.field_expiry(b"f", now_ms), after, "{name}");
        assert_eq!(
            hash.expire_field(b"zz", at_ms, condition, now_ms),
            NoField,
            "{name}"
        );
    }
    assert_eq!(
        (
            NoField.code(),
            ConditionNotMet.code(),
            Set.code(),
            Deleted.code()
        ),
        (-2, 0, 1, 2)
    );
    let mut hash = hash_of(&[("f", "v"), ("p", "v")]);
    hash.expire_field(b"f", 500, Always, 0);
    assert_eq!(hash.persist_field(b"f", 0), PersistOutcome::Persisted);
    assert_eq!(hash.persist_field(b"p", 0), PersistOutcome::NoExpiry);
    assert_eq!(hash.persist_field(b"zz", 0).code(), -2);
    assert_eq!(hash.volatile_len(), 0);
}

#[test]
fn writes_and_expiry() {
    let mut hash = hash_of(&[("f", "v")]);
    hash.expire_field(b"f", 100, ExpireCondition::Always, 0);
    // HINCRBY keeps the expiry, HSET drops it.
    hash.insert(b"n", b"1", &LIMITS, 0);
    hash.expire_field(b"n", 100, ExpireCondition::Always, 0);
    hash.incr_by(b"n", 1, &LIMITS, 0).unwrap();
    assert_eq!(hash.field_expiry(b"n", 0), FieldExpiry::At(100));
    hash.insert(b"f", b"v2", &LIMITS, 0);
    assert_eq!(hash.field_expiry(b"f", 0), FieldExpiry::Persistent);
    // A due field reads as absent, and a write counts it as new.
    assert_eq!(hash.get(b"n", 100), None);
    assert_eq!(hash.incr_by(b"n", 1, &LIMITS, 100), Ok(1));
    // HSETEX-style writes.
    assert!(hash.set(b"t", b"x", FieldTtl::At(300), &LIMITS, 0));
    assert_eq!(hash.field_expiry(b"t", 0), FieldExpiry::At(300));
    hash.set(b"t", b"y", FieldTtl::Keep, &LIMITS, 0);
    assert_eq!(hash.field_expiry(b"t", 0), FieldExpiry::At(300));
    hash.set(b"t", b"z", FieldTtl::At(10), &LIMITS, 20);
    assert!(!hash.contains(b"t", 20));
}

#[test]
fn active_expiry_is_bounded_and_complete() {
    let mut hash = HashValue::new();
    for at in 0..300 {
        let name = format!("f{at}");
        hash.insert(name.as_bytes(), b"v", &LIMITS, 0);
        if at % 3 == 0 {
            hash.expire_field(name.as_bytes(), 50, ExpireCondition::Always, 0);
        }
    }
    assert_eq!(hash.next_expire_at_ms(), Some(50));
    assert_eq!(hash.remove_expired(49, 1000), 0);
    let mut removed = 0;
    let mut calls = 0;
    while hash.volatile_len() > 0 {
        let step = hash.remove_expired(50, 20);
        assert!(step <= 20);
        removed += step;
        calls += 1;
        assert!(calls < 100, "active expiry does not finish");
    }
    assert_eq!(removed, 100);
    assert_eq!(hash.len(), 200);
    assert_eq!(hash.next_expire_at_ms(), None);
}

/// Redis 7.4's "HSCAN with mostly expired fields return empty result": 1,000 fields, 999 of
/// them due; the walk answers only field1, and some calls answer nothing.
#[test]
fn scan_skips_due_fields_within_its_count() {
    let mut hash = HashValue::new();
    for at in 1..=1000 {
        let name = format!("field{at}");
        hash.insert(name.as_bytes(), format!("value{at}").as_bytes(), &LIMITS, 0);
        if at > 1 {
            hash.expire_field(name.as_bytes(), 1, ExpireCondition::Always, 0);
        }
    }
    let (mut cursor, mut empty_answers, mut found) = (0, 0, Vec::new());
    loop {
        let (next, batch) = hash.scan(cursor, 10, 5);
        if batch.is_empty() {
            empty_answers += 1;
        }
        found.extend(batch.into_iter().map(|(name, _)| name.to_vec()));
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(found, vec![b"field1".to_vec()]);
    assert!(empty_answers > 0);
    assert_eq!(
        hash.len(),
        1000,
        "HLEN counts due fields until they are removed"
    );
}

#[test]
fn scan_of_a_packed_hash_is_one_call() {
    let hash = hash_of(&[("a", "1"), ("b", "2")]);
    let (cursor, found) = hash.scan(0, 1, 0);
    assert_eq!((cursor, found.len()), (0, 2));
}

proptest! {
    /// Against a map model under random writes, deletes and expiries, across both size
    /// classes; proptest prints the seed of a failure.
    #[test]
    fn matches_a_map_model(
        ops in proptest::collection::vec((0u8..4, 0u16..300, 0u64..40), 1..400),
        entries_max in prop_oneof![Just(4usize), Just(128)],
    ) {
        let limits = HashLimits { listpack_entries_max: entries_max, listpack_value_len_max: 64 };
        let mut hash = HashValue::new();
        let mut model: BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)> = BTreeMap::new();
        // Fields whose expiry lapsed: the hash may still store them until something removes them.
        let mut lapsed: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut now_ms = 0;
        for (kind, field, amount) in ops {
            now_ms += 1;
            // Names that share long, short and no prefixes with whichever name is first.
            let name = match field % 3 {
                0 => format!("field-{field}"),
                1 => format!("{field}-f"),
                _ => format!("fi{field}"),
            }
            .into_bytes();
            model.retain(|name, (_, at)| {
                let live = at.is_none_or(|at| at > now_ms);
                if !live {
                    lapsed.insert(name.clone());
                }
                live
            });
            match kind {
                0 => {
                    let value = amount.to_string().into_bytes();
                    let is_new = !model.contains_key(&name);
                    model.insert(name.clone(), (value.clone(), None));
                    lapsed.remove(&name);
                    prop_assert_eq!(hash.insert(&name, &value, &limits, now_ms), is_new);
                }
                1 => {
                    // HDEL answers 1 for a lapsed field still stored, as Redis 7.4 does.
                    let removed = hash.remove(&name);
                    let was_live = model.remove(&name).is_some();
                    let was_lapsed = lapsed.remove(&name);
                    prop_assert!(removed == was_live || (removed && was_lapsed));
                }
                2 => {
                    let at_ms = now_ms + amount;
                    let outcome = hash.expire_field(&name, at_ms, ExpireCondition::Always, now_ms);
                    let expected = match model.get_mut(&name) {
                        None => ExpireOutcome::NoField,
                        Some(_) if amount == 0 => {
                            model.remove(&name);
                            ExpireOutcome::Deleted
                        }
                        Some((_, at)) => {
                            *at = Some(at_ms);
                            ExpireOutcome::Set
                        }
                    };
                    prop_assert_eq!(outcome, expected);
                }
                _ => {
                    hash.remove_expired(now_ms, amount as usize);
                }
            }
            prop_assert_eq!(hash.get(&name, now_ms), model.get(&name).map(|(v, _)| v.as_slice()));
        }
        let live: BTreeMap<Vec<u8>, Vec<u8>> =
            hash.iter(now_ms).map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        let expected: BTreeMap<Vec<u8>, Vec<u8>> =
            model.iter().map(|(n, (v, _))| (n.clone(), v.clone())).collect();
        prop_assert_eq!(hash.live_len(now_ms), expected.len());
        prop_assert_eq!(live, expected);
    }

    /// HSCAN's guarantee with writes between calls: a field present for the whole scan comes
    /// back exactly once.
    #[test]
    fn scan_returns_every_stable_field_once(
        seed in any::<u64>(),
        count in 1usize..20,
    ) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut hash = HashValue::new();
        for at in 0..300 {
            hash.insert(format!("stable-{at}").as_bytes(), b"v", &LIMITS, 0);
        }
        let mut seen: Vec<Vec<u8>> = Vec::new();
        let mut cursor = 0;
        let mut churn = 0u32;
        loop {
            let (next, found) = hash.scan(cursor, count, 0);
            seen.extend(found.iter().map(|(name, _)| name.to_vec()));
            // Churn between calls: add and delete fields that are not "stable".
            for _ in 0..3 {
                churn += 1;
                hash.insert(format!("churn-{churn}").as_bytes(), b"v", &LIMITS, 0);
                let victim = format!("churn-{}", rng.gen_range(1..=churn));
                hash.remove(victim.as_bytes());
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let stable: Vec<_> = seen.iter().filter(|name| name.starts_with(b"stable-")).collect();
        let unique: BTreeSet<_> = stable.iter().collect();
        prop_assert_eq!(stable.len(), 300, "seed {}", seed);
        prop_assert_eq!(unique.len(), 300, "seed {}", seed);
    }
}

#[test]
fn a_packed_hash_is_one_exact_allocation_and_its_counters_survive_the_table() {
    let mut hash = HashValue::new();
    assert_eq!(hash.heap_len(), 0);
    for i in 0..10 {
        let (name, value) = (format!("member:{i:06}"), format!("value:{i:06}"));
        hash.insert(name.as_bytes(), value.as_bytes(), &LIMITS, 0);
    }
    // 16 header bytes, then the first field whole (0 shared, 13 name bytes, 12 value bytes and
    // three lengths), each later one against it (12 shared, one byte of its own): no expiry
    // tag while no field had one.
    assert_eq!(
        hash.heap_len(),
        16 + (2 + 13 + 1 + 12) + 9 * (2 + 1 + 1 + 12)
    );
    assert_eq!(
        hash.expire_field(b"member:000003", 100, ExpireCondition::Always, 0),
        ExpireOutcome::Set
    );
    assert_eq!(
        (hash.volatile_len(), hash.encoding_name()),
        (1, "listpackex")
    );
    // Now every field carries a tag, and the volatile one its 8 bytes of expiry.
    assert_eq!(hash.heap_len(), 16 + 28 + 1 + 9 * (16 + 1) + 8);
    assert_eq!(hash.field_expiry(b"member:000003", 0), FieldExpiry::At(100));
    assert_eq!(
        hash.field_expiry(b"member:000004", 0),
        FieldExpiry::Persistent
    );
    assert_eq!(hash.get(b"member:000009", 0), Some(&b"value:000009"[..]));
    assert_eq!(
        hash.persist_field(b"member:000003", 0),
        PersistOutcome::Persisted
    );
    assert_eq!(
        (hash.volatile_len(), hash.encoding_name()),
        (0, "listpackex")
    );
    assert_eq!(
        hash.expire_field(b"member:000003", 100, ExpireCondition::Always, 0),
        ExpireOutcome::Set
    );
    assert_eq!(hash.remove_expired(50, 100), 0);
    // A long value moves the hash to the table; the counters go with it.
    hash.insert(b"long", &[b'x'; 100], &LIMITS, 0);
    assert_eq!(
        (hash.volatile_len(), hash.encoding_name()),
        (1, "hashtable")
    );
    assert_eq!(hash.remove_expired(100, 100), 1);
    assert_eq!((hash.volatile_len(), hash.len()), (0, 10));
}
