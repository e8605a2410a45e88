use proptest::prelude::*;

use super::*;

#[test]
fn set_and_get_bits() {
    let mut bytes = Vec::new();
    let cases: &[(u64, bool, bool, &[u8])] = &[
        // (offset, value, old, bytes after)
        (7, true, false, &[0x01]),
        (0, true, false, &[0x81]),
        (7, true, true, &[0x81]),
        (7, false, true, &[0x80]),
        (17, true, false, &[0x80, 0x00, 0x40]),
    ];
    for (offset, value, old, after) in cases {
        assert_eq!(
            set_bit(&mut bytes, *offset, *value),
            *old,
            "offset {offset}"
        );
        assert_eq!(bytes, *after, "offset {offset}");
        assert_eq!(get_bit(&bytes, *offset), *value);
    }
    assert!(!get_bit(&bytes, 1000));
}

/// Redis's documentation and test-suite cases for BITCOUNT.
#[test]
fn bit_count_as_redis() {
    let foobar = b"foobar";
    let cases: &[(&str, Option<(i64, i64, Unit)>, u64)] = &[
        ("whole", None, 26),
        ("first byte", Some((0, 0, Unit::Byte)), 4),
        ("second byte", Some((1, 1, Unit::Byte)), 6),
        ("bits 5..30", Some((5, 30, Unit::Bit)), 17),
        ("last byte by negatives", Some((-1, -1, Unit::Byte)), 4),
        ("negatives reversed", Some((-1, -2, Unit::Byte)), 0),
        ("past the end", Some((10, 20, Unit::Byte)), 0),
        ("clamped end", Some((0, 1000, Unit::Byte)), 26),
        ("start after end", Some((3, 1, Unit::Byte)), 0),
        ("single bit", Some((1, 1, Unit::Bit)), 1),
        ("last bits", Some((-3, -1, Unit::Bit)), 1),
    ];
    for (name, range, expected) in cases {
        assert_eq!(bit_count(foobar, *range), *expected, "{name}");
    }
    assert_eq!(bit_count(b"", Some((0, -1, Unit::Byte))), 0);
}

/// Redis's documentation and test-suite cases for BITPOS.
#[test]
fn bit_position_as_redis() {
    let ones = [0xffu8, 0xf0, 0x00];
    let cases: &[(&str, &[u8], bool, Option<i64>, Option<i64>, Unit, i64)] = &[
        ("first zero", &ones, false, None, None, Unit::Byte, 12),
        (
            "first one from byte 2",
            &[0x00, 0xff, 0xf0],
            true,
            Some(2),
            None,
            Unit::Byte,
            16,
        ),
        (
            "first one, bit range",
            &[0x00, 0xff, 0xf0],
            true,
            Some(2),
            Some(-1),
            Unit::Byte,
            16,
        ),
        (
            "bits 7..15",
            &[0x00, 0xff, 0xf0],
            true,
            Some(7),
            Some(15),
            Unit::Bit,
            8,
        ),
        (
            "no one at all",
            &[0x00, 0x00],
            true,
            None,
            None,
            Unit::Byte,
            -1,
        ),
        (
            "all ones, no end: padding",
            &[0xff, 0xff],
            false,
            None,
            None,
            Unit::Byte,
            16,
        ),
        (
            "all ones, start only",
            &[0xff, 0xff],
            false,
            Some(1),
            None,
            Unit::Byte,
            16,
        ),
        (
            "all ones, end given",
            &[0xff, 0xff],
            false,
            Some(0),
            Some(-1),
            Unit::Byte,
            -1,
        ),
        (
            "empty range",
            &[0xff, 0xff],
            false,
            Some(2),
            Some(1),
            Unit::Byte,
            -1,
        ),
        (
            "bit mode zero",
            &[0xff, 0xfe],
            false,
            Some(3),
            None,
            Unit::Bit,
            15,
        ),
        (
            "bit mode zero, end inside",
            &[0xff, 0xfe],
            false,
            Some(3),
            Some(14),
            Unit::Bit,
            -1,
        ),
        ("empty string", &[], false, None, None, Unit::Byte, -1),
    ];
    for (name, bytes, bit, start, end, unit, expected) in cases {
        assert_eq!(
            bit_position(bytes, *bit, *start, *end, *unit),
            *expected,
            "{name}"
        );
    }
}

#[test]
fn bit_op_as_redis() {
    let cases: &[(BitOp, &[&[u8]], &[u8])] = &[
        (BitOp::And, &[b"\xff\x0f", b"\x0f"], b"\x0f\x00"),
        (BitOp::Or, &[b"\x01", b"\x02\x04"], b"\x03\x04"),
        (BitOp::Xor, &[b"\xff", b"\x0f", b"\x01"], b"\xf1"),
        (BitOp::Not, &[b"\x0f\xf0"], b"\xf0\x0f"),
        (BitOp::And, &[b"", b"\xff"], b"\x00"),
        (BitOp::Or, &[], b""),
        // Redis 8.2's four: X is the first input, Y the others.
        (
            BitOp::Diff,
            &[b"\xf0\xaa", b"\x30", b"\x0f\x02"],
            b"\xc0\xa8",
        ),
        (BitOp::Diff1, &[b"\xf0", b"\x3c", b"\x01\x80"], b"\x0d\x80"),
        (BitOp::AndOr, &[b"\xf0\xff", b"\x30", b"\x81"], b"\xb0\x00"),
        (BitOp::One, &[b"\xff", b"\x0f", b"\x03\x01"], b"\xf0\x01"),
        (BitOp::One, &[b"\x5a"], b"\x5a"),
        (BitOp::Diff, &[b"", b"\xff"], b"\x00"),
    ];
    for (op, inputs, expected) in cases {
        assert_eq!(bit_op(*op, inputs), *expected, "{op:?} {inputs:?}");
    }
}

#[test]
fn bitfield_arguments() {
    let cases: &[(&str, Result<FieldType, BitfieldError>)] = &[
        (
            "i8",
            Ok(FieldType {
                signed: true,
                bits: 8,
            }),
        ),
        (
            "u63",
            Ok(FieldType {
                signed: false,
                bits: 63,
            }),
        ),
        (
            "i64",
            Ok(FieldType {
                signed: true,
                bits: 64,
            }),
        ),
        ("u64", Err(BitfieldError::InvalidType)),
        ("i0", Err(BitfieldError::InvalidType)),
        ("x8", Err(BitfieldError::InvalidType)),
        ("i", Err(BitfieldError::InvalidType)),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_bitfield_type(text.as_bytes()), *expected, "{text}");
    }
    let u8_type = FieldType {
        signed: false,
        bits: 8,
    };
    assert_eq!(parse_bitfield_offset(b"#3", u8_type, 1 << 32), Ok(24));
    assert_eq!(parse_bitfield_offset(b"100", u8_type, 1 << 32), Ok(100));
    assert_eq!(
        parse_bitfield_offset(b"-1", u8_type, 1 << 32),
        Err(BitfieldError::InvalidOffset)
    );
    assert_eq!(
        parse_bitfield_offset(b"#x", u8_type, 1 << 32),
        Err(BitfieldError::InvalidOffset)
    );
    assert_eq!(
        parse_bitfield_offset(b"9", u8_type, 8),
        Err(BitfieldError::InvalidOffset)
    );
}

/// Redis's BITFIELD documentation and test cases.
#[test]
fn bitfield_as_redis() {
    let i8_type = parse_bitfield_type(b"i8").unwrap();
    let u2 = parse_bitfield_type(b"u2").unwrap();
    let u8_type = parse_bitfield_type(b"u8").unwrap();
    let mut bytes = Vec::new();
    assert_eq!(
        bitfield_set(&mut bytes, 0, i8_type, -100, Overflow::Wrap),
        Some(0)
    );
    assert_eq!(bitfield_get(&bytes, 0, i8_type), -100);
    assert_eq!(bitfield_get(&bytes, 0, u8_type), 156);
    // "BITFIELD overflow wrap / sat / fail" from the docs: u2 at 102 incremented by 1 four times.
    let mut wrap = Vec::new();
    let mut sat = Vec::new();
    let mut fail = Vec::new();
    let expected: [(i64, i64, Option<i64>); 4] = [
        (1, 1, Some(1)),
        (2, 2, Some(2)),
        (3, 3, Some(3)),
        (0, 3, None),
    ];
    for (wrapped, saturated, failed) in expected {
        assert_eq!(
            bitfield_increment(&mut wrap, 102, u2, 1, Overflow::Wrap),
            Some(wrapped)
        );
        assert_eq!(
            bitfield_increment(&mut sat, 102, u2, 1, Overflow::Sat),
            Some(saturated)
        );
        assert_eq!(
            bitfield_increment(&mut fail, 102, u2, 1, Overflow::Fail),
            failed
        );
    }
    assert_eq!(fail.len(), 13, "FAIL still grows the string");
    let cases: &[(&str, FieldType, i64, Overflow, Option<i64>)] = &[
        // (name, type, value SET, overflow, value read back; None for a refused SET)
        ("u8 -1 wraps", u8_type, -1, Overflow::Wrap, Some(255)),
        ("u8 256 wraps", u8_type, 256, Overflow::Wrap, Some(0)),
        ("u8 256 saturates", u8_type, 256, Overflow::Sat, Some(255)),
        (
            "u8 -1 saturates high",
            u8_type,
            -1,
            Overflow::Sat,
            Some(255),
        ),
        ("i8 128 wraps", i8_type, 128, Overflow::Wrap, Some(-128)),
        (
            "i8 -129 saturates",
            i8_type,
            -129,
            Overflow::Sat,
            Some(-128),
        ),
        ("i8 200 fails", i8_type, 200, Overflow::Fail, None),
        // Checked with redis-cli: BITFIELD u SET u63 0 -1 GET u63 0 answers 0 9223372036854775807.
        (
            "u63 -1 wraps",
            FieldType {
                signed: false,
                bits: 63,
            },
            -1,
            Overflow::Wrap,
            Some(i64::MAX),
        ),
    ];
    for (name, field, value, overflow, expected) in cases {
        let mut bytes = Vec::new();
        let old = bitfield_set(&mut bytes, 5, *field, *value, *overflow);
        assert_eq!(
            old.map(|_| bitfield_get(&bytes, 5, *field)),
            *expected,
            "{name}"
        );
    }
    let i64_type = parse_bitfield_type(b"i64").unwrap();
    let mut bytes = Vec::new();
    bitfield_set(&mut bytes, 3, i64_type, i64::MAX, Overflow::Wrap);
    assert_eq!(
        bitfield_increment(&mut bytes, 3, i64_type, 1, Overflow::Wrap),
        Some(i64::MIN)
    );
    assert_eq!(
        bitfield_increment(&mut bytes, 3, i64_type, -1, Overflow::Sat),
        Some(i64::MIN)
    );
    bitfield_set(&mut bytes, 3, i64_type, i64::MAX, Overflow::Wrap);
    assert_eq!(
        bitfield_increment(&mut bytes, 3, i64_type, 1, Overflow::Sat),
        Some(i64::MAX)
    );
    assert_eq!(
        bitfield_increment(&mut bytes, 3, i64_type, 1, Overflow::Fail),
        None
    );
}

proptest! {
    /// Bit counts and positions against a bit-by-bit model; proptest prints the failing seed.
    #[test]
    fn counts_and_positions_match_a_bit_model(
        bytes in proptest::collection::vec(any::<u8>(), 0..12),
        start in -120i64..120,
        end in -120i64..120,
        bit in any::<bool>(),
    ) {
        let bits: Vec<bool> = (0..bytes.len() as u64 * 8).map(|at| get_bit(&bytes, at)).collect();
        let total = bits.len() as i64;
        let clamp = |value: i64| if value < 0 { (total + value).max(0) } else { value };
        let (first, last) = (clamp(start), clamp(end).min(total - 1));
        let in_range = |at: i64| at >= first && at <= last;
        let expected_count = if start < 0 && end < 0 && start > end {
            0
        } else {
            (0..total).filter(|&at| in_range(at) && bits[at as usize]).count() as u64
        };
        prop_assert_eq!(bit_count(&bytes, Some((start, end, Unit::Bit))), expected_count);
        let expected_position = (0..total)
            .find(|&at| in_range(at) && bits[at as usize] == bit)
            .unwrap_or(-1);
        prop_assert_eq!(bit_position(&bytes, bit, Some(start), Some(end), Unit::Bit), expected_position);
    }

    /// A field written then read gives the fitted value back, and leaves other bits alone.
    #[test]
    fn bitfield_round_trips(offset in 0u64..100, bits in 1u32..=64, signed in any::<bool>(), value in any::<i64>()) {
        let field = FieldType { signed: signed || bits == 64, bits };
        let mut bytes = vec![0xa5; 20];
        let before = bytes.clone();
        bitfield_set(&mut bytes, offset, field, value, Overflow::Wrap).unwrap();
        let read = bitfield_get(&bytes, offset, field);
        let modulus = 1i128 << bits;
        let raw = (if field.signed { i128::from(value) } else { i128::from(value as u64) }).rem_euclid(modulus);
        let (_, max) = super::bitfield::tests_limits(field);
        let expected = if raw > max { raw - modulus } else { raw };
        prop_assert_eq!(i128::from(read), expected);
        for at in 0..before.len() as u64 * 8 {
            if at < offset || at >= offset + u64::from(bits) {
                prop_assert_eq!(get_bit(&bytes, at), get_bit(&before, at));
            }
        }
    }
}
