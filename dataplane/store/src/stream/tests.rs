use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

const LIMITS: StreamLimits = StreamLimits {
    node_bytes_max: NODE_BYTES_MAX_DEFAULT,
    node_entries_max: NODE_ENTRIES_MAX_DEFAULT,
};

fn id(ms: u64, seq: u64) -> StreamId {
    StreamId::new(ms, seq)
}

fn stream_of(ids: &[(u64, u64)]) -> StreamValue {
    let mut stream = StreamValue::new();
    for &(ms, seq) in ids {
        stream
            .add(AddId::Explicit(id(ms, seq)), &[&b"f"[..], b"v"], 0, &LIMITS)
            .unwrap();
    }
    stream
}

fn ids(entries: &[StreamEntry]) -> Vec<StreamId> {
    entries.iter().map(|entry| entry.id).collect()
}

#[test]
fn id_parsing_as_redis() {
    let cases: &[(&str, Result<StreamId, StreamError>)] = &[
        ("1-2", Ok(id(1, 2))),
        ("5", Ok(id(5, 0))),
        (
            "18446744073709551615-18446744073709551615",
            Ok(StreamId::MAX),
        ),
        ("+7-1", Ok(id(7, 1))),
        ("007-1", Ok(id(7, 1))),
        ("-", Err(StreamError::InvalidId)),
        ("+", Err(StreamError::InvalidId)),
        ("1-*", Err(StreamError::InvalidId)),
        ("a-1", Err(StreamError::InvalidId)),
        ("1-", Err(StreamError::InvalidId)),
        ("-1", Err(StreamError::InvalidId)),
        ("18446744073709551616-0", Err(StreamError::InvalidId)),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_id(text.as_bytes(), 0), *expected, "{text}");
    }
    let add_cases: &[(&str, Result<AddId, StreamError>)] = &[
        ("*", Ok(AddId::Auto)),
        ("5-*", Ok(AddId::AutoSeq(5))),
        ("5-3", Ok(AddId::Explicit(id(5, 3)))),
        ("5", Ok(AddId::Explicit(id(5, 0)))),
        ("*-1", Err(StreamError::InvalidId)),
    ];
    for (text, expected) in add_cases {
        assert_eq!(parse_add_id(text.as_bytes()), *expected, "{text}");
    }
    let bound_cases: &[(&str, bool, Result<StreamId, StreamError>)] = &[
        ("-", true, Ok(StreamId::MIN)),
        ("+", false, Ok(StreamId::MAX)),
        ("5", true, Ok(id(5, 0))),
        ("5", false, Ok(id(5, u64::MAX))),
        ("(5-1", true, Ok(id(5, 2))),
        ("(5-0", false, Ok(id(4, u64::MAX))),
        ("(0-0", false, Err(StreamError::InvalidEnd)),
        (
            "(18446744073709551615-18446744073709551615",
            true,
            Err(StreamError::InvalidStart),
        ),
        ("(-", true, Err(StreamError::InvalidId)),
    ];
    for (text, is_start, expected) in bound_cases {
        assert_eq!(
            parse_range_bound(text.as_bytes(), *is_start),
            *expected,
            "{text}"
        );
    }
}

/// (name, last id before, requested, now, result)
type AddCase = (
    &'static str,
    Option<(u64, u64)>,
    AddId,
    u64,
    Result<StreamId, StreamError>,
);

#[test]
fn add_ids_as_redis() {
    // (name, last id before, requested, now, result)
    let cases: &[AddCase] = &[
        ("auto on empty", None, AddId::Auto, 10, Ok(id(10, 0))),
        (
            "auto, clock behind",
            Some((20, 3)),
            AddId::Auto,
            10,
            Ok(id(20, 4)),
        ),
        (
            "auto, clock ahead",
            Some((20, 3)),
            AddId::Auto,
            30,
            Ok(id(30, 0)),
        ),
        (
            "auto, sequence full",
            Some((20, u64::MAX)),
            AddId::Auto,
            10,
            Ok(id(21, 0)),
        ),
        (
            "ms-* same ms",
            Some((20, 3)),
            AddId::AutoSeq(20),
            0,
            Ok(id(20, 4)),
        ),
        (
            "ms-* later ms",
            Some((20, 3)),
            AddId::AutoSeq(25),
            0,
            Ok(id(25, 0)),
        ),
        (
            "ms-* earlier ms",
            Some((20, 3)),
            AddId::AutoSeq(19),
            0,
            Err(StreamError::IdTooSmall),
        ),
        (
            "ms-* sequence full",
            Some((20, u64::MAX)),
            AddId::AutoSeq(20),
            0,
            Err(StreamError::IdTooSmall),
        ),
        ("0-* on empty", None, AddId::AutoSeq(0), 0, Ok(id(0, 1))),
        (
            "explicit equal",
            Some((20, 3)),
            AddId::Explicit(id(20, 3)),
            0,
            Err(StreamError::IdTooSmall),
        ),
        (
            "explicit 0-0",
            None,
            AddId::Explicit(id(0, 0)),
            0,
            Err(StreamError::IdZero),
        ),
        (
            "exhausted",
            Some((u64::MAX, u64::MAX)),
            AddId::Auto,
            0,
            Err(StreamError::Exhausted),
        ),
    ];
    for (name, before, requested, now_ms, expected) in cases {
        let mut stream = StreamValue::new();
        if let Some((ms, seq)) = before {
            stream
                .add(
                    AddId::Explicit(id(*ms, *seq)),
                    &[&b"f"[..], b"v"],
                    0,
                    &LIMITS,
                )
                .unwrap();
        }
        let got = stream.add(*requested, &[&b"f"[..], b"v"], *now_ms, &LIMITS);
        assert_eq!(got, *expected, "{name}");
    }
    assert_eq!(
        StreamError::IdTooSmall.to_string(),
        "ERR The ID specified in XADD is equal or smaller than the target stream top item"
    );
}

#[test]
fn ranges_with_counts() {
    let stream = stream_of(&[(1, 0), (2, 0), (3, 0), (4, 0), (5, 0)]);
    let cases: &[(&str, StreamId, StreamId, usize, &[u64])] = &[
        ("all", StreamId::MIN, StreamId::MAX, 0, &[1, 2, 3, 4, 5]),
        ("count", StreamId::MIN, StreamId::MAX, 2, &[1, 2]),
        ("inner", id(2, 0), id(4, 0), 0, &[2, 3, 4]),
        ("empty interval", id(4, 0), id(2, 0), 0, &[]),
        ("between ids", id(2, 1), id(2, 5), 0, &[]),
    ];
    for (name, start, end, count, expected) in cases {
        let forward: Vec<u64> = ids(&stream.range(*start, *end, *count))
            .iter()
            .map(|i| i.ms)
            .collect();
        assert_eq!(forward, *expected, "{name}");
        let backward: Vec<u64> = ids(&stream.rev_range(*start, *end, *count))
            .iter()
            .map(|i| i.ms)
            .collect();
        let mut reversed: Vec<u64> = if *count == 0 {
            expected.to_vec()
        } else {
            ids(&stream.range(*start, *end, 0))
                .iter()
                .map(|i| i.ms)
                .collect()
        };
        reversed.reverse();
        reversed.truncate(if *count == 0 { usize::MAX } else { *count });
        assert_eq!(backward, reversed, "{name} reversed");
    }
    assert_eq!(
        stream.get(id(3, 0)).unwrap().fields,
        vec![b"f".to_vec(), b"v".to_vec()]
    );
}

#[test]
fn delete_keeps_bookkeeping() {
    let mut stream = stream_of(&[(1, 0), (2, 0), (3, 0)]);
    assert_eq!(stream.delete(&[id(1, 0), id(9, 9), id(2, 0)]), 2);
    let info = stream.info();
    assert_eq!(
        (
            info.length,
            info.max_deleted_entry_id,
            info.recorded_first_entry_id,
            info.entries_added
        ),
        (1, id(2, 0), id(3, 0), 3)
    );
    assert_eq!(stream.delete(&[id(3, 0)]), 1);
    assert_eq!(stream.info().recorded_first_entry_id, StreamId::MIN);
    assert_eq!(stream.info().last_generated_id, id(3, 0));
}

/// IDs at the ends of the range and gaps of every width, with entries deleted from the middle
/// and the end of a block before more are appended: each ID is stored against the one
/// before it, so a deletion rewrites what follows and an append after a deleted tail is
/// stored against the last live entry.
#[test]
fn ids_of_any_gap_survive_deletes_and_appends() {
    let wide = [
        (0, 1),
        (0, 2),
        (31, 2),
        (32, 2),
        (63, 0),
        (4096, u64::MAX / 2),
        (u64::MAX / 2, 0),
        (u64::MAX / 2, 9),
    ];
    let mut stream = StreamValue::new();
    for &(ms, seq) in &wide {
        stream
            .add(AddId::Explicit(id(ms, seq)), &[&b"f"[..], b"v"], 0, &LIMITS)
            .unwrap();
    }
    let expected: Vec<StreamId> = wide.iter().map(|&(ms, seq)| id(ms, seq)).collect();
    assert_eq!(
        ids(&stream.range(StreamId::MIN, StreamId::MAX, 0)),
        expected
    );
    // From the middle, then the tail; then appends after the deleted tail.
    assert_eq!(stream.delete(&[id(32, 2), id(u64::MAX / 2, 9)]), 2);
    for (ms, seq) in [(u64::MAX / 2 + 1, 0), (u64::MAX, u64::MAX)] {
        stream
            .add(AddId::Explicit(id(ms, seq)), &[&b"g"[..], b"w"], 0, &LIMITS)
            .unwrap();
    }
    let all = stream.range(StreamId::MIN, StreamId::MAX, 0);
    let expected = [
        id(0, 1),
        id(0, 2),
        id(31, 2),
        id(63, 0),
        id(4096, u64::MAX / 2),
        id(u64::MAX / 2, 0),
        id(u64::MAX / 2 + 1, 0),
        id(u64::MAX, u64::MAX),
    ];
    assert_eq!(ids(&all), expected);
    assert_eq!(all[5].fields, [b"f".to_vec(), b"v".to_vec()]);
    assert_eq!(all[7].fields, [b"g".to_vec(), b"w".to_vec()]);
    assert!(stream.contains(id(63, 0)) && !stream.contains(id(32, 2)));
    let reversed = stream.rev_range(id(31, 2), id(u64::MAX / 2 + 1, 0), 0);
    assert_eq!(
        ids(&reversed),
        [
            expected[6],
            expected[5],
            expected[4],
            expected[3],
            expected[2]
        ]
    );
}

/// A block of 100 entries a millisecond apart with 12-byte values, as
/// `bench/scripts/collection_memory.py` writes them: one byte of ID, one of length and the
/// value each, 1,400 bytes in all (jemalloc's 1,536-byte class).
#[test]
fn appended_entries_take_fourteen_bytes() {
    let mut stream = StreamValue::new();
    for i in 0..100u64 {
        let value = format!("value:{i:06}");
        stream
            .add(
                AddId::Explicit(id(i + 1, 1)),
                &[&b"field"[..], value.as_bytes()],
                0,
                &LIMITS,
            )
            .unwrap();
    }
    let (_, block) = stream.blocks.first_key_value().unwrap();
    assert_eq!(stream.blocks.len(), 1);
    assert_eq!(block.data.len(), 1400);
    assert_eq!(std::mem::size_of::<Block>(), 88);
}

/// Redis's own cases from its stream tests, with 10 entries per block.
#[test]
fn trimming_as_redis() {
    let small = StreamLimits {
        node_bytes_max: 4096,
        node_entries_max: 10,
    };
    let mut stream = StreamValue::new();
    for ms in 1..=100 {
        stream
            .add(
                AddId::Explicit(id(ms, 0)),
                &[&b"xitem"[..], b"v"],
                0,
                &small,
            )
            .unwrap();
    }
    let approximate = |max_len, limit| TrimOptions {
        strategy: TrimStrategy::MaxLen(max_len),
        approximate: true,
        limit,
    };
    // "XADD with LIMIT consecutive calls": 71, then 62.
    stream
        .add(AddId::Auto, &[&b"xitem"[..], b"v"], 1000, &small)
        .unwrap();
    stream.trim(approximate(55, Some(30)), &small);
    assert_eq!(stream.len(), 71);
    stream
        .add(AddId::Auto, &[&b"xitem"[..], b"v"], 1001, &small)
        .unwrap();
    stream.trim(approximate(55, Some(30)), &small);
    assert_eq!(stream.len(), 62);
    // An approximate trim without LIMIT removes whole blocks only.
    let mut stream = stream_of(&(1..=250).map(|ms| (ms, 0)).collect::<Vec<_>>());
    assert_eq!(stream.trim(approximate(120, None), &LIMITS), 100);
    assert_eq!(stream.len(), 150);
    let exact = TrimOptions {
        strategy: TrimStrategy::MaxLen(120),
        approximate: false,
        limit: None,
    };
    assert_eq!(stream.trim(exact, &LIMITS), 30);
    assert_eq!(
        stream.range(StreamId::MIN, StreamId::MAX, 1)[0].id,
        id(131, 0)
    );
    let min_id = TrimOptions {
        strategy: TrimStrategy::MinId(id(200, 0)),
        approximate: false,
        limit: None,
    };
    assert_eq!(stream.trim(min_id, &LIMITS), 69);
    assert_eq!(stream.info().recorded_first_entry_id, id(200, 0));
    let everything = TrimOptions {
        strategy: TrimStrategy::MaxLen(0),
        approximate: false,
        limit: None,
    };
    stream.trim(everything, &LIMITS);
    assert!(stream.is_empty());
    assert_eq!(stream.info().recorded_first_entry_id, StreamId::MIN);
}

#[test]
fn set_id_as_redis() {
    let cases: &[(
        &str,
        StreamId,
        Option<u64>,
        Option<StreamId>,
        Result<(), StreamError>,
    )] = &[
        ("forward", id(10, 0), None, None, Ok(())),
        ("equal to top", id(3, 0), None, None, Ok(())),
        (
            "below top",
            id(2, 0),
            None,
            None,
            Err(StreamError::SetIdBelowTop),
        ),
        (
            "entries added too small",
            id(10, 0),
            Some(2),
            None,
            Err(StreamError::SetIdEntriesAddedTooSmall),
        ),
        (
            "entries added ok",
            id(10, 0),
            Some(7),
            Some(id(5, 0)),
            Ok(()),
        ),
        (
            "below max deleted",
            id(10, 0),
            None,
            Some(id(11, 0)),
            Err(StreamError::SetIdBelowMaxDeleted),
        ),
    ];
    for (name, last, added, max_deleted, expected) in cases {
        let mut stream = stream_of(&[(1, 0), (2, 0), (3, 0)]);
        assert_eq!(
            stream.set_id(*last, *added, *max_deleted),
            *expected,
            "{name}"
        );
        if expected.is_ok() {
            assert_eq!(stream.last_id(), *last, "{name}");
        }
    }
    let mut stream = stream_of(&[(1, 0)]);
    stream.set_id(id(10, 0), Some(7), Some(id(5, 0))).unwrap();
    let info = stream.info();
    assert_eq!(
        (info.entries_added, info.max_deleted_entry_id),
        (7, id(5, 0))
    );
    assert_eq!(
        stream.add(AddId::Explicit(id(9, 0)), &[&b"f"[..], b"v"], 0, &LIMITS),
        Err(StreamError::IdTooSmall)
    );
}

#[derive(Debug, Clone)]
enum Op {
    /// Value length, the gap kind before the new ID (see [`next_id`]), whether the field name
    /// differs from the block's first entry's.
    Add(u8, u8, bool),
    Delete(u16),
    TrimMaxLen(u16, bool),
    TrimMinId(u16, bool),
}

/// The ID after `last` for gap kind `gap`: the same millisecond (the sequence repeated, one
/// up, or far up), or one, 31, 32 or thousands of milliseconds later with sequence 0 or
/// `last`'s: every case of a block's one-byte ID and its continuations.
fn next_id(last: StreamId, gap: u8) -> StreamId {
    match gap % 8 {
        0 => id(last.ms, last.seq + 1),
        1 => id(last.ms, last.seq + 1000),
        2 => id(last.ms + 1, last.seq),
        3 => id(last.ms + 1, 0),
        4 => id(last.ms + 31, last.seq),
        5 => id(last.ms + 32, 3),
        6 => id(last.ms + 5000, last.seq),
        _ => id(last.ms + 1 + u64::from(gap), 0),
    }
}

proptest! {
    /// Entries against a BTreeMap model under adds, deletes and trims, with small blocks so
    /// that boundaries are crossed often; proptest prints the failing seed and case.
    #[test]
    fn matches_an_ordered_map(
        ops in proptest::collection::vec(prop_oneof![
            4 => (any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(n, g, f)| Op::Add(n, g, f)),
            2 => any::<u16>().prop_map(Op::Delete),
            1 => (0u16..200, any::<bool>()).prop_map(|(n, a)| Op::TrimMaxLen(n, a)),
            1 => (0u16..400, any::<bool>()).prop_map(|(n, a)| Op::TrimMinId(n, a)),
        ], 1..200),
        node_entries_max in 1usize..12,
    ) {
        let limits = StreamLimits { node_bytes_max: 200, node_entries_max };
        let mut stream = StreamValue::new();
        let mut model: BTreeMap<StreamId, Vec<Vec<u8>>> = BTreeMap::new();
        let mut last = id(1, 0);
        let mut next_ms = 1;
        for op in ops {
            match op {
                Op::Add(size, gap, other_field) => {
                    let value = vec![b'x'; usize::from(size) % 40];
                    let field: &[u8] = if other_field { b"g" } else { b"f" };
                    let next = next_id(last, gap);
                    let added = stream.add(AddId::Explicit(next), &[field, &value], 0, &limits).unwrap();
                    model.insert(added, vec![field.to_vec(), value]);
                    last = next;
                    next_ms = next.ms + 1;
                }
                Op::Delete(at) => {
                    // Mostly a present entry (the model's at an index), sometimes an absent ID.
                    let target = match model.keys().nth(usize::from(at) % (model.len() + 1)) {
                        Some(&present) => present,
                        None => id(u64::from(at) % (next_ms + 1), 7),
                    };
                    let expected = usize::from(model.remove(&target).is_some());
                    prop_assert_eq!(stream.delete(&[target]), expected);
                }
                Op::TrimMaxLen(max_len, approximate) => {
                    let options = TrimOptions { strategy: TrimStrategy::MaxLen(usize::from(max_len)), approximate, limit: None };
                    let removed = stream.trim(options, &limits);
                    for _ in 0..removed {
                        model.pop_first();
                    }
                    if !approximate {
                        prop_assert!(model.len() <= usize::from(max_len));
                    }
                }
                Op::TrimMinId(min_ms, approximate) => {
                    let min_id = id(u64::from(min_ms) * (next_ms / 400 + 1), 0);
                    let options = TrimOptions { strategy: TrimStrategy::MinId(min_id), approximate, limit: None };
                    let removed = stream.trim(options, &limits);
                    for _ in 0..removed {
                        let (first, _) = model.pop_first().unwrap();
                        prop_assert!(first < min_id);
                    }
                    if !approximate {
                        prop_assert!(model.keys().next().is_none_or(|&first| first >= min_id));
                    }
                }
            }
            prop_assert_eq!(stream.len(), model.len());
            let all = stream.range(StreamId::MIN, StreamId::MAX, 0);
            prop_assert!(all.iter().map(|e| (&e.id, &e.fields)).eq(model.iter()));
            let reversed = stream.rev_range(StreamId::MIN, StreamId::MAX, 0);
            prop_assert!(reversed.iter().map(|e| e.id).eq(model.keys().rev().copied()));
            let first = model.keys().next().copied().unwrap_or(StreamId::MIN);
            prop_assert_eq!(stream.info().recorded_first_entry_id, first);
        }
    }
}
