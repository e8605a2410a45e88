use std::collections::VecDeque;

use proptest::prelude::*;
use std::borrow::Cow;

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

fn strings(found: Vec<Cow<'_, [u8]>>) -> Vec<String> {
    found
        .into_iter()
        .map(|e| String::from_utf8_lossy(&e).into_owned())
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
        assert!(shown.pop_into(end, &LIMITS, |head, tail| seen = [head, tail].concat()));
        assert_eq!(Some(seen), popped.pop(end, &LIMITS));
        assert_eq!(shown.len(), popped.len());
        assert_eq!(shown.listpack_bytes(), popped.listpack_bytes());
    }
    assert!(shown.is_empty());
    assert!(!shown.pop_into(End::Front, &LIMITS, |_, _| panic!("nothing to show")));
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
    assert_eq!(list.get(-1).as_deref(), Some(&b"c"[..]));
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
    // Some long elements so that nodes fill and split; elements that share long, short or no
    // prefixes with whatever anchor their node took; integers that share digits (stored in two
    // pieces, Redis's listpack still packs them as integers).
    match value % 7 {
        0 => vec![b'a' + (value % 26) as u8; 300 + value as usize],
        1 => format!("member:{:06}", value % 500).into_bytes(),
        2 => format!("{}", 1000 + value % 300).into_bytes(),
        3 => format!(
            "https://example.com/a/rather/long/shared/path/{}",
            value % 60
        )
        .into_bytes(),
        _ => format!("e{}", value % 40).into_bytes(),
    }
}

/// The node invariants: no empty node, every buffer its size class, anchors within their limit,
/// counts adding up, and nodes under the node limit unless they hold one element (LSET of a
/// longer element included: it moves the element out of a node it would overfill).
fn check_nodes(list: &ListValue) {
    let mut len = 0;
    for node in list.nodes.iter() {
        assert!(node.count() > 0, "no empty node");
        let frame = crate::compact::ClassBuf::<12>::FRAME;
        assert_eq!(
            node.heap_len(),
            crate::compact::size_class(frame + node.body_len())
        );
        assert!(node.count() == 1 || frame + node.body_len() <= node::NODE_BYTES_MAX);
        assert!(node.anchor_bytes().len() <= node::ANCHOR_BYTES_MAX);
        assert!(node.count() <= node::NODE_ELEMENTS_MAX);
        len += node.count();
    }
    assert_eq!(len, list.len());
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
                    if n == 1 {
                        let mut seen = Vec::new();
                        let popped = list.pop_into(end, &LIMITS, |head, tail| seen = [head, tail].concat());
                        prop_assert_eq!(popped, !expected.is_empty());
                        prop_assert_eq!(popped.then_some(seen), expected.first().cloned());
                    } else {
                        prop_assert_eq!(list.pop_many(end, n, &LIMITS), expected);
                    }
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
            check_nodes(&list);
            let all: Vec<Cow<'_, [u8]>> = list.range(0, -1);
            prop_assert!(all.iter().map(|e| &e[..]).eq(model.iter().map(Vec::as_slice)));
            prop_assert!(list.iter().rev().map(Cow::into_owned).eq(model.iter().rev().cloned()));
            if !model.is_empty() {
                prop_assert_eq!(list.get(-1).map(Cow::into_owned), model.back().cloned());
                let middle = model.len() / 2;
                prop_assert_eq!(list.get(middle as i64).map(Cow::into_owned), Some(model[middle].clone()));
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
    // the anchor "member:00000" (1 + 12), then 10 x (1 + 1 + 1): each element's header, its
    // shared length and its last digit. 59 bytes, in jemalloc's class of 64 (160 before front
    // coding, when each element took 1 + 13).
    let class = crate::compact::size_class(4 + 12 + 13 + 10 * 3);
    assert_eq!(class, 64);
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
    assert_eq!(
        (list.len(), list.get(0).as_deref()),
        (1, Some(&b"again"[..]))
    );
}

/// Front coding, named cases: (name, elements pushed at the back, the anchor of the first node,
/// the first node's body bytes).
#[test]
fn elements_are_stored_against_their_nodes_anchor() {
    let long_a = format!("{}-one", "p".repeat(40));
    let long_b = format!("{}-two", "p".repeat(40));
    let cases: Vec<(&str, Vec<&str>, &str, usize)> = vec![
        // A lone element: empty anchor (one byte), the element whole (1 + 5).
        ("one element", vec!["alone"], "", 1 + 6),
        // Sharing nothing: empty anchor, each element as before front coding.
        ("no prefix", vec!["abc", "xyz", "123"], "", 1 + 3 * 4),
        // Sharing one byte saves nothing: stored whole.
        ("one byte shared", vec!["ab", "ac"], "a", 2 + 3 + 3),
        // Sharing two bytes: 1 + 1 + 1 rather than 1 + 3.
        ("short prefix", vec!["abc", "abd"], "ab", 3 + 3 + 3),
        (
            "long prefix",
            vec!["member:000001", "member:000002", "member:000123"],
            "member:00000",
            13 + 3 + 3 + 5,
        ),
        // Past ANCHOR_BYTES_MAX: the anchor is the first 32 bytes.
        (
            "anchor capped",
            vec![long_a.as_str(), long_b.as_str()],
            &long_a[..32],
            33 + 2 * (1 + 1 + 12),
        ),
        // A third element that shares less than the anchor still uses what it shares ("mem" is
        // its two lengths only).
        (
            "less shared later",
            vec!["member:000001", "member:000002", "mem"],
            "member:00000",
            13 + 3 + 3 + 2,
        ),
    ];
    for (name, elements, anchor, body_len) in cases {
        let list = list_of(&elements);
        assert_eq!(strings(list.range(0, -1)), elements, "{name}");
        let node = &list.nodes[0];
        assert_eq!(node.anchor_bytes(), anchor.as_bytes(), "{name}: anchor");
        assert_eq!(node.body_len(), body_len, "{name}: body bytes");
        check_nodes(&list);
    }
}

/// LPUSH adds at the front of the first node without moving its anchor, and pops that take the
/// elements the anchor came from leave it decoding the rest.
#[test]
fn the_anchor_stays_while_both_ends_change() {
    let mut list = ListValue::new();
    let name = |i: usize| format!("member:{i:06}");
    for i in 0..50 {
        list.push(End::Front, &[name(i).as_bytes()], &LIMITS);
    }
    assert_eq!(list.nodes.len(), 1);
    assert_eq!(list.nodes[0].anchor_bytes(), b"member:00000");
    let body_len = list.nodes[0].body_len();
    // The two elements the anchor came from sit at the tail: pop them.
    assert_eq!(list.pop(End::Back, &LIMITS), Some(name(0).into_bytes()));
    assert_eq!(list.pop(End::Back, &LIMITS), Some(name(1).into_bytes()));
    assert_eq!(list.nodes[0].anchor_bytes(), b"member:00000");
    assert_eq!(list.nodes[0].body_len(), body_len - 6);
    // Pushes at both ends keep using it.
    list.push(End::Back, &[&b"member:000999"[..]], &LIMITS);
    list.push(End::Front, &[&b"other"[..]], &LIMITS);
    let expected: Vec<String> = std::iter::once("other".to_string())
        .chain((2..50).rev().map(name))
        .chain(std::iter::once(name(999)))
        .collect();
    assert_eq!(strings(list.range(0, -1)), expected);
    let reversed: Vec<String> = list
        .iter()
        .rev()
        .map(|e| String::from_utf8_lossy(&e).into_owned())
        .collect();
    assert!(reversed.iter().eq(expected.iter().rev()));
    assert_eq!(list.get(-1).as_deref(), Some(name(999).as_bytes()));
    assert_eq!(list.get(1).as_deref(), Some(name(49).as_bytes()));
    // Shared pieces come out of pop_into as two slices.
    let mut pieces = (Vec::new(), Vec::new());
    assert!(list.pop_into(End::Back, &LIMITS, |head, tail| {
        pieces = (head.to_vec(), tail.to_vec())
    }));
    assert_eq!(pieces, (b"member:000".to_vec(), b"999".to_vec()));
    let first = list.range_parts(0, 0);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].parts(), (&b""[..], &b"other"[..]));
    // A node emptied down to one element, then given another, takes their shared prefix.
    let mut small = list_of(&["member:000001", "member:000002"]);
    small.pop(End::Front, &LIMITS);
    small.push(End::Front, &[&b"member:999"[..]], &LIMITS);
    assert_eq!(small.nodes[0].anchor_bytes(), b"member:");
    assert_eq!(strings(small.range(0, -1)), ["member:999", "member:000002"]);
    check_nodes(&small);
}

/// Commands that edit inside a list of many nodes, with elements that share a prefix: the same
/// answers as a plain vector.
#[test]
fn edits_across_nodes_with_shared_prefixes() {
    let name = |i: usize| format!("member:{i:06}").into_bytes();
    let mut list = ListValue::new();
    let mut model: Vec<Vec<u8>> = Vec::new();
    for i in 0..3000 {
        let (end, element) = (if i % 3 == 0 { End::Front } else { End::Back }, name(i));
        list.push(end, &[&element], &LIMITS);
        if end == End::Front {
            model.insert(0, element);
        } else {
            model.push(element);
        }
    }
    assert!(list.nodes.len() > 3, "several nodes: {}", list.nodes.len());
    // LINSERT before and after elements in the middle nodes (splitting full ones).
    for i in (100..3000).step_by(97) {
        let pivot = name(i);
        let inserted = format!("inserted:{i}").into_bytes();
        let at = model.iter().position(|e| *e == pivot).unwrap() + usize::from(i % 2 == 0);
        model.insert(at, inserted.clone());
        assert_eq!(
            list.insert(&pivot, &inserted, i % 2 == 0, &LIMITS),
            Some(model.len())
        );
    }
    check_nodes(&list);
    // LSET across the list, sharing and not sharing the anchors.
    for index in (0..model.len()).step_by(131) {
        let element = if index % 2 == 0 {
            name(90_000 + index)
        } else {
            b"x".to_vec()
        };
        list.set(index as i64, &element, &LIMITS).unwrap();
        model[index] = element;
    }
    // LREM from both ends.
    model.extend([b"x".to_vec(), b"x".to_vec()]);
    list.push(End::Back, &[&b"x"[..], b"x"], &LIMITS);
    assert_eq!(list.remove(b"x", -3, &LIMITS), 3);
    for _ in 0..3 {
        let last = model.iter().rposition(|e| e == b"x").unwrap();
        model.remove(last);
    }
    assert_eq!(list.remove(&name(1), 1, &LIMITS), 1);
    model.retain(|e| *e != name(1));
    assert_eq!(
        strings(list.range(0, -1)),
        strings(model.iter().map(|e| Cow::Borrowed(&e[..])).collect())
    );
    // LTRIM inside the first and last nodes.
    list.trim(7, -12, &LIMITS);
    let model: Vec<Vec<u8>> = model[7..model.len() - 11].to_vec();
    assert_eq!(list.len(), model.len());
    assert!(list.iter().map(Cow::into_owned).eq(model.iter().cloned()));
    assert!(list
        .iter()
        .rev()
        .map(Cow::into_owned)
        .eq(model.iter().rev().cloned()));
    let expected_bytes: usize = redis_size::LISTPACK_EMPTY_BYTES
        + model
            .iter()
            .map(|e| redis_size::entry_bytes(e))
            .sum::<usize>();
    assert_eq!(list.listpack_bytes(), expected_bytes);
    check_nodes(&list);
    let positions = list
        .positions(&model[500], PositionQuery::default())
        .unwrap();
    assert_eq!(positions, [500]);
}

/// Integers stored in two pieces still count as Redis's packed integers.
#[test]
fn shared_digits_count_as_integers() {
    let mut list = list_of(&["12345", "12346", "1234567890123456789", "-5", "-6"]);
    assert_eq!(list.nodes[0].anchor_bytes(), b"1234");
    let expected: usize = redis_size::LISTPACK_EMPTY_BYTES
        + ["12345", "12346", "1234567890123456789", "-5", "-6"]
            .iter()
            .map(|e| redis_size::entry_bytes(e.as_bytes()))
            .sum::<usize>();
    assert_eq!(list.listpack_bytes(), expected);
    list.trim(1, 2, &LIMITS);
    assert_eq!(
        list.listpack_bytes(),
        redis_size::LISTPACK_EMPTY_BYTES
            + redis_size::entry_bytes(b"12346")
            + redis_size::entry_bytes(b"1234567890123456789")
    );
}

/// The figure issue 12 tracks: 1,000 names of 13 bytes take four nodes of at most 256
/// elements, about 1.3 KB each, where they took seven full ones of 2 KB.
#[test]
fn a_thousand_names_share_their_prefix() {
    let elements: Vec<Vec<u8>> = (0..1000)
        .map(|i| format!("member:{i:06}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = elements.iter().map(Vec::as_slice).collect();
    let mut list = ListValue::new();
    list.push(End::Back, &refs, &LIMITS);
    check_nodes(&list);
    assert_eq!(list.nodes.len(), 4);
    assert!(list.heap_len() < 6_200, "{}", list.heap_len());
    for node in list.nodes.iter().take(3) {
        assert_eq!(node.count(), node::NODE_ELEMENTS_MAX);
    }
    // An RPUSH and RPOP at the tail node.
    list.push(End::Back, &[&b"member:001000"[..]], &LIMITS);
    assert_eq!(
        list.pop(End::Back, &LIMITS),
        Some(b"member:001000".to_vec())
    );
    assert_eq!(list.range(0, -1), refs);
    // Tiny elements fill nodes by count, not by bytes.
    let mut tiny = ListValue::new();
    for _ in 0..1000 {
        tiny.push(End::Front, &[&b"x"[..]], &LIMITS);
    }
    check_nodes(&tiny);
    assert_eq!(tiny.nodes.len(), 4);
}
