//! BITFIELD against a real redis-server (tests/data/bitfield_redis.txt, made by
//! tests/data/make_bitfield_vectors.sh): random GET / SET / INCRBY of signed and unsigned
//! fields at bit and `#` offsets under OVERFLOW WRAP / SAT / FAIL; each reply and the string
//! after it must match. Argument errors are the server's: here a command with a malformed
//! number is refused whole, as Redis refuses it before running any op.

use ember_store::bitmap::{
    bitfield_get, bitfield_increment, bitfield_set, parse_bitfield_offset, parse_bitfield_type,
    FieldType, Overflow,
};

/// The largest bit offset Redis accepts with the default 512 MB `proto-max-bulk-len`.
const BITS_MAX: u64 = 512 * 1024 * 1024 * 8 - 1;

enum Op {
    Get(FieldType, u64),
    Set(FieldType, u64, i64),
    Increment(FieldType, u64, i64),
    Overflow(Overflow),
}

fn parse(words: &[&str]) -> Option<Vec<Op>> {
    let mut ops = Vec::new();
    let mut at = 0;
    while at < words.len() {
        let field = |at: usize| {
            let field = parse_bitfield_type(words[at + 1].as_bytes()).unwrap();
            let offset = parse_bitfield_offset(words[at + 2].as_bytes(), field, BITS_MAX).unwrap();
            (field, offset)
        };
        match words[at] {
            "GET" => {
                let (field, offset) = field(at);
                ops.push(Op::Get(field, offset));
                at += 3;
            }
            "SET" | "INCRBY" => {
                let (field, offset) = field(at);
                let value: i64 = words[at + 3].parse().ok()?;
                ops.push(if words[at] == "SET" {
                    Op::Set(field, offset, value)
                } else {
                    Op::Increment(field, offset, value)
                });
                at += 4;
            }
            "OVERFLOW" => {
                ops.push(Op::Overflow(match words[at + 1] {
                    "WRAP" => Overflow::Wrap,
                    "SAT" => Overflow::Sat,
                    _ => Overflow::Fail,
                }));
                at += 2;
            }
            other => panic!("unknown op {other}"),
        }
    }
    Some(ops)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn text(value: Option<i64>) -> String {
    value.map_or_else(|| "nil".to_string(), |v| v.to_string())
}

#[test]
fn same_replies_and_bytes_as_redis() {
    let file = include_str!("data/bitfield_redis.txt");
    let mut bytes: Vec<u8> = Vec::new();
    let mut checked = 0;
    for line in file.lines().filter(|line| !line.starts_with('#')) {
        let (query, expected) = line.split_once(" = ").expect("an answer");
        if query == "DEL k" {
            bytes.clear();
            continue;
        }
        let words: Vec<&str> = query.split_whitespace().collect();
        let reply = match parse(&words[2..]) {
            None => "ERR value is not an integer or out of range".to_string(),
            Some(ops) => {
                let mut overflow = Overflow::Wrap;
                let mut replies = Vec::new();
                for op in ops {
                    match op {
                        Op::Overflow(next) => overflow = next,
                        Op::Get(field, offset) => {
                            replies.push(bitfield_get(&bytes, offset, field).to_string())
                        }
                        Op::Set(field, offset, value) => replies.push(text(bitfield_set(
                            &mut bytes, offset, field, value, overflow,
                        ))),
                        Op::Increment(field, offset, value) => replies.push(text(
                            bitfield_increment(&mut bytes, offset, field, value, overflow),
                        )),
                    }
                }
                replies.join(" ")
            }
        };
        assert_eq!(
            format!("{reply}|{}", hex(&bytes)),
            expected,
            "after {query}"
        );
        checked += 1;
    }
    assert!(checked > 700);
}
