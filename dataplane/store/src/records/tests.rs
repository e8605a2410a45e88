use std::collections::HashMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::*;

/// A value of a length drawn from 0..40, so that rewrites change the record's size (and
/// sometimes its length's varint) as often as they keep it.
fn value_of(rng: &mut SmallRng) -> Vec<u8> {
    let len = rng.gen_range(0..40);
    (0..len).map(|_| rng.gen_range(b'a'..=b'z')).collect()
}

fn check_against_model(table: &RecordTable<true>, model: &HashMap<Vec<u8>, Vec<u8>>, seed: u64) {
    assert_eq!(table.len(), model.len(), "seed {seed}");
    let stored: HashMap<Vec<u8>, Vec<u8>> = table
        .iter()
        .map(|(key, value)| (key.to_vec(), value.to_vec()))
        .collect();
    assert_eq!(&stored, model, "seed {seed}");
    for (at, (key, value)) in table.iter().enumerate() {
        assert_eq!(table.position(key), Some(at), "seed {seed}");
        assert_eq!(table.get(at), (key, value), "seed {seed}");
        assert_eq!(table.key(at), key, "seed {seed}");
    }
    assert!(
        table.dead_len() < DEAD_LEN_MIN
            || table.dead_len() * DEAD_SHARE_DIVISOR < table.arena_len(),
        "seed {seed}: compaction keeps dead bytes within their share"
    );
}

/// Seeded random inserts, overwrites, deletes, growth and shrinkage against a `HashMap`; the
/// seed of a failure is in its message.
#[test]
fn pairs_match_a_map_model() {
    for seed in 0..40u64 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut table = RecordTable::<true>::with_capacity(0, 0);
        let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        // Key spaces from a few keys (many overwrites) to thousands (growth).
        let keys = [4, 64, 2_000][seed as usize % 3];
        for step in 0..6_000 {
            let key = format!("key-{}", rng.gen_range(0..keys)).into_bytes();
            match rng.gen_range(0..10) {
                0..=4 => {
                    let value = value_of(&mut rng);
                    match table.position(&key) {
                        Some(at) => table.set_value(at, &value),
                        None => {
                            let at = table.push(&key, &value);
                            assert_eq!(at, table.len() - 1, "seed {seed}");
                        }
                    }
                    model.insert(key, value);
                }
                5..=7 => {
                    let found = table.position(&key);
                    assert_eq!(found.is_some(), model.contains_key(&key), "seed {seed}");
                    if let Some(at) = found {
                        table.swap_remove(at);
                        model.remove(&key);
                    }
                }
                8 => {
                    // A run of deletes, so the table shrinks and compacts.
                    for _ in 0..rng.gen_range(0..50) {
                        if table.len() == 0 {
                            break;
                        }
                        let at = rng.gen_range(0..table.len());
                        let key = table.key(at).to_vec();
                        table.swap_remove(at);
                        assert!(model.remove(&key).is_some(), "seed {seed}");
                    }
                }
                _ => {
                    let added = table.insert(&key, b"fresh");
                    assert_eq!(added, !model.contains_key(&key), "seed {seed}");
                    model.entry(key).or_insert_with(|| b"fresh".to_vec());
                }
            }
            if step % 500 == 0 {
                check_against_model(&table, &model, seed);
            }
        }
        check_against_model(&table, &model, seed);
        let copy = table.clone();
        check_against_model(&copy, &model, seed);
    }
}

/// Keys only: the same model, with a set.
#[test]
fn keys_match_a_set_model() {
    for seed in 0..20u64 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut table = RecordTable::<false>::with_capacity(0, 0);
        let mut model: HashMap<Vec<u8>, usize> = HashMap::new();
        for _ in 0..5_000 {
            let key = format!("member-{}", rng.gen_range(0..1_500)).into_bytes();
            if rng.gen_bool(0.6) {
                assert_eq!(
                    table.insert(&key, b""),
                    !model.contains_key(&key),
                    "seed {seed}"
                );
                model.insert(key, 0);
            } else if let Some(at) = table.position(&key) {
                table.swap_remove(at);
                assert!(model.remove(&key).is_some(), "seed {seed}");
            } else {
                assert!(!model.contains_key(&key), "seed {seed}");
            }
        }
        assert_eq!(table.len(), model.len(), "seed {seed}");
        for (key, value) in table.iter() {
            assert!(value.is_empty() && model.contains_key(key), "seed {seed}");
        }
    }
}

/// Named cases of where a rewrite puts the record and what it leaves dead.
#[test]
fn rewrites_in_place_at_the_end_or_anew() {
    let mut table = RecordTable::<true>::with_capacity(4, 16);
    table.push(b"a", b"1");
    table.push(b"b", b"2");
    let arena_len = table.arena_len();
    // Same length: in place.
    table.set_value(0, b"9");
    assert_eq!((table.arena_len(), table.dead_len()), (arena_len, 0));
    // The last record in the arena grows where it is.
    table.set_value(1, b"22");
    assert_eq!((table.arena_len(), table.dead_len()), (arena_len + 1, 0));
    // Any other record is written again at the end; its old 4 bytes are dead.
    table.set_value(0, b"99");
    assert_eq!((table.arena_len(), table.dead_len()), (arena_len + 6, 4));
    assert_eq!(
        (table.get(0), table.get(1)),
        ((&b"a"[..], &b"99"[..]), (&b"b"[..], &b"22"[..]))
    );
    // Removing the last record of the arena gives its bytes back (the dead ones stay).
    table.swap_remove(0);
    assert_eq!((table.arena_len(), table.dead_len()), (9, 4));
    table.swap_remove(0);
    assert_eq!((table.arena_len(), table.len()), (0, 0));
}

#[test]
fn compaction_keeps_every_record() {
    let mut table = RecordTable::<true>::with_capacity(0, 0);
    for at in 0..1_000 {
        table.push(format!("field:{at:06}").as_bytes(), b"value:000000");
    }
    let full = table.arena_len();
    // 1 + 12 + 1 + 12 bytes a record.
    assert_eq!(full, 1_000 * 26);
    for at in (0..1_000).step_by(2) {
        let position = table.position(format!("field:{at:06}").as_bytes()).unwrap();
        table.swap_remove(position);
    }
    assert!(table.arena_len() < full, "compacted: {}", table.arena_len());
    assert!(table.dead_len() * DEAD_SHARE_DIVISOR < table.arena_len());
    for at in 0..1_000 {
        let found = table.position(format!("field:{at:06}").as_bytes());
        assert_eq!(found.is_some(), at % 2 == 1, "field {at}");
    }
}
