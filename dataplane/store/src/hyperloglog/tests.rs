use proptest::prelude::*;

use super::sparse::{self, Opcode};
use super::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The sparse body (after the header) of a value with the given registers raised in order.
fn body_after(raises: &[(usize, u8)], sparse_bytes_max: usize) -> HyperLogLog {
    let mut hll = HyperLogLog::new();
    for &(index, run) in raises {
        hll.set_at_least(index, run, sparse_bytes_max).unwrap();
    }
    hll
}

#[test]
fn new_value_matches_redis() {
    // PFADD on a missing key with no elements, as redis-server 7.0.15 wrote it.
    assert_eq!(
        hex(HyperLogLog::new().as_bytes()),
        "48594c4c0100000000000000000000807fff"
    );
    assert_eq!(HyperLogLog::new().count(), Ok(0));
}

/// Sparse edits, named cases: the registers raised in order and the body that must result.
#[test]
fn sparse_edits() {
    let cases: &[(&str, &[(usize, u8)], &str)] = &[
        ("first register", &[(0, 1)], "807ffe"),
        ("last register", &[(16383, 3)], "7ffe88"),
        (
            "middle, short zero runs",
            &[(64, 2)],
            "3f84", /* ZERO 64, VAL 2 */
        ),
        ("zero run of 65 before", &[(65, 1)], "4040807fbd"), // XZERO 65, VAL 1, XZERO 16318
        ("neighbours merge", &[(10, 2), (11, 2)], "0985"),
        ("a value does not go down", &[(10, 5), (10, 2)], "0990"),
        (
            "raise inside a run splits it",
            &[(10, 2), (11, 2), (12, 2), (11, 4)],
            "09848c84",
        ),
    ];
    for (name, raises, body_prefix) in cases {
        let hll = body_after(raises, SPARSE_BYTES_MAX_DEFAULT);
        let body = hex(&hll.as_bytes()[HEADER_LEN..]);
        assert!(body.starts_with(body_prefix), "{name}: body {body}");
        let registers = hll.registers().unwrap();
        let mut expected = [0u8; REGISTER_COUNT];
        for &(index, run) in raises.iter() {
            expected[index] = expected[index].max(run);
        }
        assert!(registers.iter().eq(expected.iter()), "{name}: registers");
    }
}

#[test]
fn sparse_turns_dense_on_big_values_and_size() {
    let mut hll = HyperLogLog::new();
    assert_eq!(hll.set_at_least(5, 32, 3000), Ok(true));
    assert_eq!(hll.encoding(), HllEncoding::Sparse);
    assert_eq!(hll.set_at_least(6, 33, 3000), Ok(true));
    assert_eq!(hll.encoding(), HllEncoding::Dense);
    assert_eq!(hll.as_bytes().len(), DENSE_LEN);
    assert_eq!(&hll.registers().unwrap()[4..8], &[0, 32, 33, 0]);
    // A limit smaller than the first split turns the value dense at the first add.
    let mut small = HyperLogLog::new();
    assert_eq!(small.set_at_least(100, 1, 18), Ok(true));
    assert_eq!(small.encoding_name(), "dense");
}

#[test]
fn validity_as_redis() {
    let dense = body_after(&[(1, 40)], 3000).into_bytes();
    let mut wrong_encoding = HyperLogLog::new().into_bytes();
    wrong_encoding[ENCODING_OFFSET] = 2;
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("new", HyperLogLog::new().into_bytes(), true),
        ("dense", dense.clone(), true),
        ("dense cut short", dense[..DENSE_LEN - 1].to_vec(), false),
        (
            "header only",
            HyperLogLog::new().into_bytes()[..HEADER_LEN].to_vec(),
            true,
        ),
        ("too short", b"HYLL".to_vec(), false),
        (
            "wrong magic",
            b"HYLX\x01\0\0\0\0\0\0\0\0\0\0\0".to_vec(),
            false,
        ),
        ("unknown encoding", wrong_encoding, false),
        (
            "plain string",
            b"hello world, a plain value".to_vec(),
            false,
        ),
    ];
    for (name, bytes, valid) in cases {
        assert_eq!(is_hyperloglog(&bytes), valid, "{name}");
        assert_eq!(HyperLogLog::from_bytes(bytes).is_ok(), valid, "{name}");
    }
    assert_eq!(
        HllError::NotHyperLogLog.to_string(),
        "WRONGTYPE Key is not a valid HyperLogLog string value."
    );
}

#[test]
fn corrupted_sparse_values_are_reported() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("no opcodes", Vec::new()),
        ("too few registers", vec![0x7f, 0xfe]),
        ("too many registers", vec![0x7f, 0xff, 0x00]),
        ("values past the end", vec![0x7f, 0xfe, 0x83]),
    ];
    for (name, body) in cases {
        let mut bytes = HyperLogLog::new().into_bytes()[..HEADER_LEN].to_vec();
        bytes.extend_from_slice(&body);
        let mut hll = HyperLogLog::from_bytes(bytes).unwrap();
        assert_eq!(hll.count(), Err(HllError::Corrupted), "{name}: count");
        assert_eq!(hll.registers().err(), Some(HllError::Corrupted), "{name}");
        assert_eq!(hll.clone().to_dense(), Err(HllError::Corrupted), "{name}");
        let clean = HyperLogLog::new();
        assert_eq!(
            HyperLogLog::count_union(&[&clean, &hll]),
            Err(HllError::Corrupted)
        );
    }
    assert_eq!(
        HllError::Corrupted.to_string(),
        "INVALIDOBJ Corrupted HLL object detected"
    );
}

#[test]
fn opcode_decoding() {
    let cases: &[(&[u8], Opcode)] = &[
        (&[0x00], Opcode::Zero { run: 1 }),
        (&[0x3f], Opcode::Zero { run: 64 }),
        (&[0x40, 0x00], Opcode::Xzero { run: 1 }),
        (&[0x7f, 0xff], Opcode::Xzero { run: 16384 }),
        (&[0x80], Opcode::Val { value: 1, run: 1 }),
        (&[0xff], Opcode::Val { value: 32, run: 4 }),
    ];
    for (bytes, opcode) in cases {
        assert_eq!(sparse::decode(bytes, 0), *opcode, "{bytes:02x?}");
    }
}

#[test]
fn cache_is_written_and_invalidated() {
    let mut hll = HyperLogLog::new();
    assert_eq!(hll.cached_count(), None);
    hll.add(b"x", 3000).unwrap();
    assert_eq!(hll.count(), Ok(1));
    assert_eq!(hll.cached_count(), Some(1));
    assert_eq!(hll.add(b"x", 3000), Ok(false));
    assert_eq!(hll.cached_count(), Some(1));
    assert_eq!(hll.add(b"y", 3000), Ok(true));
    assert_eq!(hll.cached_count(), None);
}

/// Counts of distinct elements stay within a few standard errors (0.81%) of the truth.
#[test]
fn estimates_are_accurate() {
    for size in [10usize, 1_000, 20_000, 200_000] {
        let mut hll = HyperLogLog::new();
        for element in 0..size {
            hll.add(format!("element:{element}").as_bytes(), 3000)
                .unwrap();
        }
        let count = hll.count().unwrap() as f64;
        let error = (count - size as f64).abs() / size as f64;
        assert!(error < 0.03, "size {size}: count {count}");
    }
}

proptest! {
    /// Sparse editing against a plain register array; a dense twin must agree on every
    /// register and on the count, and merging must equal the maxima. proptest prints the seed.
    #[test]
    fn sparse_matches_a_register_model(
        raises in proptest::collection::vec((0usize..REGISTER_COUNT, 1u8..=34), 0..300),
        sparse_bytes_max in prop_oneof![Just(40usize), Just(300), Just(3000)],
    ) {
        let mut model = [0u8; REGISTER_COUNT];
        let mut hll = HyperLogLog::new();
        let mut dense = HyperLogLog::new();
        dense.to_dense().unwrap();
        for &(index, run) in &raises {
            let grows = run > model[index];
            model[index] = model[index].max(run);
            prop_assert_eq!(hll.set_at_least(index, run, sparse_bytes_max), Ok(grows));
            prop_assert_eq!(dense.set_at_least(index, run, sparse_bytes_max), Ok(grows));
            prop_assert!(hll.as_bytes().len() <= sparse_bytes_max.max(DENSE_LEN));
        }
        prop_assert!(hll.registers().unwrap().iter().eq(model.iter()));
        prop_assert!(dense.registers().unwrap().iter().eq(model.iter()));
        prop_assert_eq!(hll.count(), dense.count());
        let mut merged = HyperLogLog::new();
        merged.merge(&[&hll, &dense], sparse_bytes_max).unwrap();
        prop_assert!(merged.registers().unwrap().iter().eq(model.iter()));
    }
}

proptest! {
    /// A PFADD of many elements through the opcode index writes the very bytes of adding them
    /// one by one (Redis's bytes), in batches on a value that grows, through the promotion to
    /// dense; and says alike whether a register grew.
    #[test]
    fn adding_all_at_once_writes_the_bytes_of_adding_one_by_one(
        batches in proptest::collection::vec(
            proptest::collection::vec(0u32..5_000, 0..700),
            1..4,
        ),
        sparse_bytes_max in prop_oneof![Just(300usize), Just(3000), Just(12000)],
    ) {
        let mut one_by_one = HyperLogLog::new();
        let mut at_once = HyperLogLog::new();
        for batch in &batches {
            let elements: Vec<Vec<u8>> =
                batch.iter().map(|element| format!("e:{element}").into_bytes()).collect();
            let mut grew = false;
            for element in &elements {
                grew |= one_by_one.add(element, sparse_bytes_max).unwrap();
            }
            let grew_at_once = at_once
                .add_all(elements.iter().map(Vec::as_slice), sparse_bytes_max)
                .unwrap();
            prop_assert_eq!(grew_at_once, grew);
            prop_assert_eq!(hex(at_once.as_bytes()), hex(one_by_one.as_bytes()));
        }
    }
}

/// The same on the elements Redis's own vectors use (tests/hyperloglog_redis.rs), many at once.
#[test]
fn adding_all_at_once_matches_on_large_batches() {
    for (count, sparse_bytes_max) in [(2_000usize, 3000usize), (5_000, 20_000), (300, 3000)] {
        let elements: Vec<Vec<u8>> = (0..count)
            .map(|element| format!("e:{element}").into_bytes())
            .collect();
        let mut one_by_one = HyperLogLog::new();
        for element in &elements {
            one_by_one.add(element, sparse_bytes_max).unwrap();
        }
        let mut at_once = HyperLogLog::new();
        at_once
            .add_all(elements.iter().map(Vec::as_slice), sparse_bytes_max)
            .unwrap();
        assert_eq!(
            hex(at_once.as_bytes()),
            hex(one_by_one.as_bytes()),
            "{count} elements"
        );
    }
}
