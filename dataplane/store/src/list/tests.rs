use std::collections::VecDeque;

use proptest::prelude::*;

use super::*;

const LIMITS: ListLimits = ListLimits {
    listpack_size: LISTPACK_SIZE_DEFAULT,
};

fn list_of(elements: &[&str]) -> ListValue {
    let mut list = ListValue::new();
    let elements: Vec<&[u8]> = elements.iter().map(|e| e.as_bytes()).collect();
    list.push(End::Back, &elements, &LIMITS);
    list
}

fn strings(found: Vec<&[u8]>) -> Vec<String> {
    found
        .into_iter()
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .collect()
}

#[test]
fn push_order_as_redis() {
    let mut list = ListValue::new();
    list.push(End::Front, &[&b"a"[..], b"b", b"c"], &LIMITS);
    list.push(End::Back, &[&b"x"[..], b"y"], &LIMITS);
    assert_eq!(strings(list.range(0, -1)), ["c", "b", "a", "x", "y"]);
    assert_eq!(
        list.pop_many(End::Back, 3, &LIMITS),
        vec![b"y".to_vec(), b"x".to_vec(), b"a".to_vec()]
    );
    assert_eq!(list.pop_many(End::Front, 10, &LIMITS).len(), 2);
    assert!(list.is_empty());
    assert_eq!(list.pop(End::Front, &LIMITS), None);
}

#[test]
fn pop_into_shows_what_pop_takes() {
    let elements: Vec<String> = (0..1_000).map(|i| format!("element-{i}")).collect();
    let names: Vec<&str> = elements.iter().map(String::as_str).collect();
    let (mut shown, mut popped) = (list_of(&names), list_of(&names));
    for end in [End::Front, End::Back]
        .into_iter()
        .cycle()
        .take(elements.len())
    {
        let mut seen = Vec::new();
        assert!(shown.pop_into(end, &LIMITS, |element| seen = element.to_vec()));
        assert_eq!(Some(seen), popped.pop(end, &LIMITS));
        assert_eq!(shown.len(), popped.len());
        assert_eq!(shown.listpack_bytes(), popped.listpack_bytes());
    }
    assert!(shown.is_empty());
    assert!(!shown.pop_into(End::Front, &LIMITS, |_| panic!("nothing to show")));
}

/// LRANGE / LTRIM index normalisation, named cases over a list of five.
#[test]
fn ranges_as_redis() {
    let cases: &[(&str, i64, i64, &[&str])] = &[
        ("all", 0, -1, &["a", "b", "c", "d", "e"]),
        ("middle", 1, 3, &["b", "c", "d"]),
        ("negative", -2, -1, &["d", "e"]),
        ("start before head", -100, 1, &["a", "b"]),
        ("stop past tail", 3, 100, &["d", "e"]),
        ("start past tail", 5, 10, &[]),
        ("start after stop", 3, 1, &[]),
        ("both before head", -100, -50, &[]),
    ];
    for (name, start, stop, expected) in cases {
        let list = list_of(&["a", "b", "c", "d", "e"]);
        assert_eq!(
            strings(list.range(*start, *stop)),
            *expected,
            "{name}: range"
        );
        let mut trimmed = list.clone();
        trimmed.trim(*start, *stop, &LIMITS);
        assert_eq!(strings(trimmed.range(0, -1)), *expected, "{name}: trim");
        assert_eq!(trimmed.len(), expected.len(), "{name}: trim len");
    }
}

#[test]
fn index_set_insert() {
    let mut list = list_of(&["a", "b", "c"]);
    assert_eq!(list.get(-1), Some(&b"c"[..]));
    assert_eq!(list.get(3), None);
    assert_eq!(list.set(1, b"B", &LIMITS), Ok(()));
    assert_eq!(list.set(-4, b"x", &LIMITS), Err(ListError::IndexOutOfRange));
    assert_eq!(list.insert(b"B", b"before", false, &LIMITS), Some(4));
    assert_eq!(list.insert(b"c", b"after", true, &LIMITS), Some(5));
    assert_eq!(list.insert(b"zz", b"x", true, &LIMITS), None);
    assert_eq!(
        strings(list.range(0, -1)),
        ["a", "before", "B", "c", "after"]
    );
    assert_eq!(
        ListError::IndexOutOfRange.to_string(),
        "ERR index out of range"
    );
}

#[test]
fn lrem_counts_as_redis() {
    let cases: &[(&str, i64, usize, &[&str])] = &[
        ("all", 0, 3, &["b", "c"]),
        ("two from head", 2, 2, &["b", "c", "a"]),
        ("two from tail", -2, 2, &["a", "b", "c"]),
        ("more than there are", 10, 3, &["b", "c"]),
    ];
    for (name, count, removed, left) in cases {
        let mut list = list_of(&["a", "b", "a", "c", "a"]);
        assert_eq!(list.remove(b"a", *count, &LIMITS), *removed, "{name}");
        assert_eq!(strings(list.range(0, -1)), *left, "{name}");
    }
}

#[test]
fn lpos_as_redis() {
    // Redis's documentation example: a b c 1 2 3 c c.
    let list = list_of(&["a", "b", "c", "1", "2", "3", "c", "c"]);
    let query = |rank, count, maxlen| PositionQuery {
        rank,
        count,
        maxlen,
    };
    let cases: &[(&str, PositionQuery, &[usize])] = &[
        ("first", query(1, 1, 0), &[2]),
        ("rank 2", query(2, 1, 0), &[6]),
        ("from tail", query(-1, 1, 0), &[7]),
        ("count 2", query(1, 2, 0), &[2, 6]),
        ("count all", query(1, 0, 0), &[2, 6, 7]),
        ("rank -1 count all", query(-1, 0, 0), &[7, 6, 2]),
        ("maxlen 2 misses", query(1, 0, 2), &[]),
        ("maxlen 3 finds", query(1, 0, 3), &[2]),
        ("rank past matches", query(4, 1, 0), &[]),
    ];
    for (name, query, expected) in cases {
        assert_eq!(list.positions(b"c", *query).unwrap(), *expected, "{name}");
    }
    assert_eq!(
        list.positions(b"c", query(0, 1, 0)),
        Err(ListError::RankZero)
    );
}

#[test]
fn moves() {
    let mut source = list_of(&["a", "b", "c"]);
    let mut destination = list_of(&["x"]);
    assert_eq!(
        source.move_to(End::Back, &mut destination, End::Front, &LIMITS),
        Some(b"c".to_vec())
    );
    assert_eq!(strings(destination.range(0, -1)), ["c", "x"]);
    assert_eq!(
        source.rotate(End::Front, End::Back, &LIMITS),
        Some(b"a".to_vec())
    );
    assert_eq!(strings(source.range(0, -1)), ["b", "a"]);
}

/// Redis 7.2's encodings: (name, setting, elements, expected).
#[test]
fn encodings_as_redis() {
    let long = "x".repeat(100);
    let numbers: Vec<String> = (0..200).map(|n| n.to_string()).collect();
    let cases: Vec<(&str, i64, Vec<&str>, &str)> = vec![
        ("small", -2, vec!["a", "b"], "listpack"),
        (
            "count limit reached",
            4,
            vec!["a", "b", "c", "d"],
            "listpack",
        ),
        (
            "count limit passed",
            4,
            vec!["a", "b", "c", "d", "e"],
            "quicklist",
        ),
        // 80 elements of 100 bytes: 80 x 103 + 7 = 8247 bytes, past 8 KB.
        ("size passed", -2, vec![long.as_str(); 80], "quicklist"),
        ("size kept", -2, vec![long.as_str(); 79], "listpack"),
        ("4 KB setting", -1, vec![long.as_str(); 40], "quicklist"),
        (
            "integers pack small",
            -2,
            numbers.iter().map(String::as_str).collect(),
            "listpack",
        ),
    ];
    for (name, setting, elements, expected) in cases {
        let limits = ListLimits {
            listpack_size: setting,
        };
        let mut list = ListValue::new();
        for element in &elements {
            list.push(End::Back, &[element.as_bytes()], &limits);
        }
        assert_eq!(list.encoding_name(), expected, "{name}");
    }
    // Shrinking to half the limit turns a quicklist back into a listpack.
    let limits = ListLimits { listpack_size: 4 };
    let mut list = list_of(&[]);
    list.push(End::Back, &[&b"a"[..], b"b", b"c", b"d", b"e"], &limits);
    assert_eq!(list.encoding_name(), "quicklist");
    list.pop(End::Front, &limits);
    list.pop(End::Front, &limits);
    assert_eq!(list.encoding_name(), "quicklist");
    list.pop(End::Front, &limits);
    assert_eq!(list.encoding_name(), "listpack");
}

#[derive(Debug, Clone)]
enum Op {
    Push(bool, u16, usize),
    Pop(bool, usize),
    Set(i64, u16),
    Insert(u16, u16, bool),
    Remove(u16, i64),
    Trim(i64, i64),
}

fn element(value: u16) -> Vec<u8> {
    // Some long elements so that nodes fill and split.
    if value % 7 == 0 {
        vec![b'a' + (value % 26) as u8; 300 + value as usize]
    } else {
        format!("e{}", value % 40).into_bytes()
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), any::<u16>(), 1usize..30).prop_map(|(f, v, n)| Op::Push(f, v, n)),
        2 => (any::<bool>(), 0usize..20).prop_map(|(f, n)| Op::Pop(f, n)),
        1 => (-50i64..50, any::<u16>()).prop_map(|(i, v)| Op::Set(i, v)),
        1 => (any::<u16>(), any::<u16>(), any::<bool>()).prop_map(|(p, v, a)| Op::Insert(p, v, a)),
        1 => (any::<u16>(), -3i64..3).prop_map(|(v, c)| Op::Remove(v, c)),
        1 => (-60i64..60, -60i64..60).prop_map(|(s, e)| Op::Trim(s, e)),
    ]
}

proptest! {
    /// Against a VecDeque model; proptest prints the failing seed and case.
    #[test]
    fn matches_a_deque_model(ops in proptest::collection::vec(op(), 1..120)) {
        let mut list = ListValue::new();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        for op in ops {
            match op {
                Op::Push(front, value, n) => {
                    let elements: Vec<Vec<u8>> =
                        (0..n).map(|i| element(value.wrapping_add(i as u16))).collect();
                    let refs: Vec<&[u8]> = elements.iter().map(Vec::as_slice).collect();
                    let end = if front { End::Front } else { End::Back };
                    list.push(end, &refs, &LIMITS);
                    for e in elements {
                        if front { model.push_front(e) } else { model.push_back(e) }
                    }
                }
                Op::Pop(front, n) => {
                    let end = if front { End::Front } else { End::Back };
                    let expected: Vec<Vec<u8>> = (0..n)
                        .map_while(|_| if front { model.pop_front() } else { model.pop_back() })
                        .collect();
                    prop_assert_eq!(list.pop_many(end, n, &LIMITS), expected);
                }
                Op::Set(index, value) => {
                    let position = if index < 0 { model.len() as i64 + index } else { index };
                    let result = list.set(index, &element(value), &LIMITS);
                    if (0..model.len() as i64).contains(&position) {
                        model[position as usize] = element(value);
                        prop_assert_eq!(result, Ok(()));
                    } else {
                        prop_assert_eq!(result, Err(ListError::IndexOutOfRange));
                    }
                }
                Op::Insert(pivot, value, after) => {
                    let pivot = element(pivot);
                    let result = list.insert(&pivot, &element(value), after, &LIMITS);
                    match model.iter().position(|e| *e == pivot) {
                        Some(at) => {
                            model.insert(at + usize::from(after), element(value));
                            prop_assert_eq!(result, Some(model.len()));
                        }
                        None => prop_assert_eq!(result, None),
                    }
                }
                Op::Remove(value, count) => {
                    let target = element(value);
                    let mut budget = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
                    let mut kept: Vec<Vec<u8>> = Vec::new();
                    let mut removed = 0;
                    let ordered: Vec<Vec<u8>> = if count < 0 {
                        model.iter().rev().cloned().collect()
                    } else {
                        model.iter().cloned().collect()
                    };
                    for e in ordered {
                        if e == target && budget > 0 { budget -= 1; removed += 1; } else { kept.push(e); }
                    }
                    if count < 0 { kept.reverse(); }
                    model = kept.into();
                    prop_assert_eq!(list.remove(&target, count, &LIMITS), removed);
                }
                Op::Trim(start, stop) => {
                    list.trim(start, stop, &LIMITS);
                    let kept: Vec<Vec<u8>> = match normalize_range(start, stop, model.len()) {
                        Some((s, e)) => model.range(s..=e).cloned().collect(),
                        None => Vec::new(),
                    };
                    model = kept.into();
                }
            }
            prop_assert_eq!(list.len(), model.len());
            let all: Vec<&[u8]> = list.range(0, -1);
            prop_assert!(all.iter().copied().eq(model.iter().map(Vec::as_slice)));
            prop_assert!(list.iter().rev().eq(model.iter().rev().map(Vec::as_slice)));
            if !model.is_empty() {
                prop_assert_eq!(list.get(-1), model.back().map(Vec::as_slice));
                let middle = model.len() / 2;
                prop_assert_eq!(list.get(middle as i64), Some(model[middle].as_slice()));
            }
            let expected_bytes: usize = redis_size::LISTPACK_EMPTY_BYTES
                + model.iter().map(|e| redis_size::entry_bytes(e)).sum::<usize>();
            prop_assert_eq!(list.listpack_bytes(), expected_bytes);
        }
    }
}

#[test]
fn a_one_node_list_is_one_allocation_of_its_size_class() {
    assert_eq!(std::mem::size_of::<ListValue>(), 16);
    let mut list = ListValue::new();
    assert_eq!(list.heap_len(), 0);
    let elements: Vec<Vec<u8>> = (0..10)
        .map(|i| format!("member:{i:06}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = elements.iter().map(Vec::as_slice).collect();
    list.push(End::Back, &refs, &LIMITS);
    // 4 bytes of body length, 12 header bytes (the node's count and the list's counters),
    // then 10 x (1 + 13): 156 bytes, in jemalloc's class of 160 (as an exact 152 was).
    let class = crate::compact::size_class(4 + 12 + 10 * 14);
    assert_eq!(class, 160);
    assert_eq!(list.heap_len(), class);
    assert_eq!(list.listpack_bytes(), 7 + 10 * 15);
    // Growing to two nodes and back keeps the counters.
    let long = vec![b'x'; 3000];
    list.push(End::Front, &[&long[..]], &LIMITS);
    assert_eq!((list.len(), list.encoding_name()), (11, "listpack"));
    assert_eq!(list.pop(End::Front, &LIMITS), Some(long));
    assert_eq!(list.heap_len(), class);
    assert_eq!(list.listpack_bytes(), 7 + 10 * 15);
    assert_eq!(list.range(0, -1), refs);
    assert_eq!(list.pop_many(End::Back, 20, &LIMITS).len(), 10);
    assert!(list.is_empty());
    assert_eq!(list.listpack_bytes(), 7);
    list.push(End::Front, &[&b"again"[..]], &LIMITS);
    assert_eq!((list.len(), list.get(0)), (1, Some(&b"again"[..])));
}
