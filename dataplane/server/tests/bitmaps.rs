//! Bitmap commands through the `redis` crate against a two-shard ember, side by side with a
//! real redis-server: replies, errors, WRONGTYPE, bitmaps as ordinary strings (GET, SET,
//! APPEND, SETRANGE see the same bytes), and BITOP over keys on both shards.

mod common;
mod family_compare;

use common::{run, show, Ember};
use ember_store::slot::{key_slot, shard_of_slot};
use family_compare::{compare_args, ArgCase};

/// Redis 7.0 (the oracle) looks the key up before it reads BITCOUNT's and BITPOS's range; 7.2
/// reads the range first. Cases here give valid ranges on missing keys, so both agree. Not
/// OBJECT ENCODING after a bit write: Redis says "raw", the store keeps "int" / "embstr" (the
/// known difference listed in tests/commands.rs for APPEND and SETRANGE).
const SIDE_BY_SIDE: &[ArgCase] = arg_cases! {
    "setbit getbit" => [["SETBIT", "b", "7", "1"], ["GET", "b"], ["GETBIT", "b", "7"], ["GETBIT", "b", "6"], ["GETBIT", "b", "100"], ["SETBIT", "b", "7", "0"], ["SETBIT", "b", "0", "1"], ["SETBIT", "b", "0", "1"], ["STRLEN", "b"], ["SETBIT", "b", "20", "1"], ["STRLEN", "b"], ["GETBIT", "missing", "3"], ["EXISTS", "missing"]],
    "setbit errors" => [["SETBIT", "b", "8", "2"], ["SETBIT", "b", "8", "x"], ["SETBIT", "b", "8", "-1"], ["SETBIT", "b", "-1", "1"], ["SETBIT", "b", "x", "1"], ["SETBIT", "b", "#1", "1"], ["SETBIT", "b", "4294967296", "1"], ["GETBIT", "b", "4294967296"], ["GETBIT", "b", "-1"], ["EXISTS", "b"], ["SETBIT", "b", "1"]],
    "bitmaps are strings" => [["SET", "s", "a"], ["GETBIT", "s", "1"], ["SETBIT", "s", "6", "1"], ["GET", "s"], ["APPEND", "s", "x"], ["BITCOUNT", "s"], ["SETRANGE", "s", "3", "z"], ["SETBIT", "s", "23", "1"], ["GET", "s"], ["SET", "n", "5"], ["SETBIT", "n", "7", "0"], ["GET", "n"], ["INCR", "n"], ["SETBIT", "n", "6", "1"], ["GET", "n"], ["SET", "e", "v", "EX", "100"], ["SETBIT", "e", "1", "1"], ["TTL", "e"]],
    "bitcount" => [["SET", "s", "foobar"], ["BITCOUNT", "s"], ["BITCOUNT", "s", "0", "0"], ["BITCOUNT", "s", "1", "1"], ["BITCOUNT", "s", "1", "1", "BYTE"], ["BITCOUNT", "s", "5", "30", "BIT"], ["BITCOUNT", "s", "-1", "-1"], ["BITCOUNT", "s", "-3", "-1", "bit"], ["BITCOUNT", "s", "2", "1"], ["BITCOUNT", "s", "-1", "-2"], ["BITCOUNT", "s", "0", "100"], ["BITCOUNT", "missing"], ["BITCOUNT", "missing", "0", "10"], ["BITCOUNT", "s", "0"], ["BITCOUNT", "s", "0", "1", "FOO"], ["BITCOUNT", "s", "x", "1"], ["BITCOUNT", "s", "0", "1", "BIT", "x"]],
    "bitpos" => [["SET", "s", "abc"], ["BITPOS", "s", "0"], ["BITPOS", "s", "1"], ["BITPOS", "s", "1", "1"], ["BITPOS", "s", "0", "1", "2"], ["BITPOS", "s", "1", "9", "20", "BIT"], ["BITPOS", "s", "0", "-1"], ["BITPOS", "s", "1", "-1", "-1", "BYTE"], ["BITPOS", "s", "1", "5", "2"], ["BITPOS", "missing", "0"], ["BITPOS", "missing", "1"], ["BITPOS", "s", "2"], ["BITPOS", "s", "x"], ["BITPOS", "s", "1", "x"], ["BITPOS", "s", "1", "0", "1", "FOO"], ["SETBIT", "z", "7", "0"], ["BITPOS", "z", "1"], ["BITPOS", "z", "0", "0", "-1"]],
    "bitop" => [["SET", "a", "foof"], ["SET", "b", "bar"], ["BITOP", "AND", "d", "a", "b"], ["GET", "d"], ["BITOP", "or", "d", "a", "b"], ["GET", "d"], ["BITOP", "XOR", "d", "a", "b", "a"], ["GET", "d"], ["BITOP", "NOT", "d", "b"], ["GET", "d"], ["BITOP", "AND", "d", "a"], ["GET", "d"], ["BITOP", "NOT", "d", "a", "b"], ["BITOP", "FOO", "d", "a"], ["BITOP", "AND", "d", "missing", "other"], ["EXISTS", "d"], ["SET", "d", "x", "EX", "100"], ["BITOP", "OR", "d", "a"], ["TTL", "d"]],
    "bitop wrongtype" => [["SET", "a", "foof"], ["SADD", "s", "x"], ["BITOP", "AND", "d", "a", "s"], ["EXISTS", "d"], ["SADD", "d2", "x"], ["BITOP", "OR", "d2", "a"], ["TYPE", "d2"], ["SETBIT", "s", "1", "1"], ["GETBIT", "s", "1"], ["BITCOUNT", "s"], ["BITPOS", "s", "1"], ["BITFIELD", "s", "GET", "u8", "0"], ["BITFIELD_RO", "s", "GET", "u8", "0"]],
    "bitfield" => [["BITFIELD", "f", "SET", "u8", "0", "255", "GET", "u8", "0"], ["GET", "f"], ["BITFIELD", "f", "INCRBY", "u8", "0", "10"], ["BITFIELD", "f", "OVERFLOW", "SAT", "INCRBY", "u8", "0", "300", "OVERFLOW", "FAIL", "INCRBY", "i8", "0", "200"], ["BITFIELD", "f", "GET", "i16", "#1", "GET", "u4", "4"], ["BITFIELD", "f", "SET", "i5", "#3", "-7", "GET", "i5", "#3"], ["BITFIELD", "f", "INCRBY", "i64", "0", "1"], ["GET", "f"], ["BITFIELD", "f"], ["BITFIELD", "missing", "GET", "u8", "0"], ["EXISTS", "missing"], ["BITFIELD", "fail", "OVERFLOW", "FAIL", "SET", "u2", "100", "9"], ["GET", "fail"]],
    "bitfield errors" => [["SET", "f", "x"], ["BITFIELD", "f", "GET", "u64", "0"], ["BITFIELD", "f", "GET", "x", "0"], ["BITFIELD", "f", "GET", "i0", "0"], ["BITFIELD", "f", "GET", "u8", "-1"], ["BITFIELD", "f", "GET", "u8", "#-1"], ["BITFIELD", "f", "GET", "u8", "4294967296"], ["BITFIELD", "f", "OVERFLOW", "FOO"], ["BITFIELD", "f", "FOO"], ["BITFIELD", "f", "GET", "u8"], ["BITFIELD", "f", "SET", "u8", "0", "x"], ["BITFIELD", "f", "SET", "u8", "0"], ["BITFIELD_RO", "f", "GET", "u8", "0"], ["BITFIELD_RO", "f", "SET", "u8", "0", "1"], ["BITFIELD_RO", "f", "INCRBY", "u8", "0", "1", "GET", "u8", "0"], ["GET", "f"]],
};

#[test]
fn bitmap_replies_match_redis_server() {
    compare_args(SIDE_BY_SIDE);
}

/// The first key `prefix0`, `prefix1`... that the two-shard ember keeps on `shard`.
fn key_on_shard(prefix: &str, shard: usize) -> String {
    (0..)
        .map(|index| format!("{prefix}{index}"))
        .find(|key| shard_of_slot(key_slot(key.as_bytes()), 2) == shard)
        .expect("some key lands on each shard")
}

/// BITOP with its destination and sources spread over both shards: the scratch path holds them,
/// runs there, and writes the result back where it lives.
#[test]
fn bitop_across_shards() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let (first, second) = (key_on_shard("a", 0), key_on_shard("b", 1));
    let destination = key_on_shard("d", 1);
    let _: () = redis::cmd("SET")
        .arg(&first)
        .arg("foof")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(&second)
        .arg("bar")
        .query(&mut con)
        .unwrap();
    // "foof" is 66 6f 6f 66, "bar" 62 61 72 and a zero byte of padding.
    let cases: &[(&str, &[u8])] = &[
        ("AND", b"\x62\x61\x62\x00"),
        ("OR", b"\x66\x6f\x7f\x66"),
        ("XOR", b"\x04\x0e\x1d\x66"),
    ];
    for (op, expected) in cases {
        let len: i64 = redis::cmd("BITOP")
            .arg(op)
            .arg(&destination)
            .arg(&first)
            .arg(&second)
            .query(&mut con)
            .unwrap();
        assert_eq!(len, 4, "{op}");
        let value: Vec<u8> = redis::cmd("GET").arg(&destination).query(&mut con).unwrap();
        assert_eq!(value, *expected, "{op}");
    }
    // A result of no bytes deletes a destination on the other shard.
    let len: i64 = redis::cmd("BITOP")
        .arg("AND")
        .arg(&destination)
        .arg(key_on_shard("missing", 0))
        .query(&mut con)
        .unwrap();
    assert_eq!(len, 0);
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&destination)
        .query(&mut con)
        .unwrap();
    assert_eq!(exists, 0);
}

/// Offsets past `proto-max-bulk-len` are refused as Redis refuses them, whatever it is set to.
#[test]
fn offsets_follow_proto_max_bulk_len() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("proto-max-bulk-len")
        .arg("1mb")
        .query(&mut con)
        .unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["SETBIT", "b", "8388607", "1"], "(integer) 0"),
        (&["STRLEN", "b"], "(integer) 1048576"),
        (
            &["SETBIT", "b", "8388608", "1"],
            "(error) ERR bit offset is not an integer or out of range",
        ),
        (
            &["GETBIT", "b", "8388608"],
            "(error) ERR bit offset is not an integer or out of range",
        ),
        (&["BITFIELD", "b", "GET", "u8", "8388600"], "[(integer) 1]"),
        (
            &["BITFIELD", "b", "GET", "u8", "8388608"],
            "(error) ERR bit offset is not an integer or out of range",
        ),
    ];
    for (command, expected) in cases {
        let args: Vec<&[u8]> = command.iter().map(|arg| arg.as_bytes()).collect();
        assert_eq!(show(&run(&mut con, &args)), *expected, "{command:?}");
    }
}
