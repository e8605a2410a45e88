//! Hash commands through the `redis` crate against a two-shard ember: replies and errors
//! side by side with a real redis-server (Redis 7.0: the commands it has), Redis 7.4 / 8.0's
//! per-field expiry and HGETDEL / HGETEX / HSETEX against replies written out as Redis words
//! them (7.0 has none of them), lazy and active field expiry, and a full HSCAN of a big hash.

mod common;
mod family_compare;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{run, show, Ember};
use family_compare::{compare_args, ArgCase};
use redis::Value;

/// 65 bytes: one past `hash-max-listpack-value`'s default.
const LONG: &str = "0123456789012345678901234567890123456789012345678901234567890123x";

const SIDE_BY_SIDE: &[ArgCase] = arg_cases! {
    "hset hget" => [["HSET", "h", "a", "1", "b", "2"], ["HGET", "h", "a"], ["HGET", "h", "x"], ["HGET", "missing", "a"], ["HSET", "h", "a", "3", "c", "4"], ["HGETALL", "h"], ["HLEN", "h"]],
    "hset arity" => [["HSET", "h", "a"], ["HSET", "h", "a", "1", "b"], ["HMSET", "h", "a", "1", "b"], ["HGET", "h"]],
    "hmset hmget" => [["HMSET", "h", "a", "1", "b", "2"], ["HMGET", "h", "a", "x", "b"], ["HMGET", "missing", "a", "b"]],
    "hsetnx" => [["HSETNX", "h", "a", "1"], ["HSETNX", "h", "a", "2"], ["HGET", "h", "a"], ["HSETNX", "h", "b", "3"], ["HGETALL", "h"]],
    "hdel deletes the key with the last field" => [["HSET", "h", "a", "1", "b", "2"], ["HDEL", "h", "a", "x"], ["HDEL", "h", "b", "b"], ["EXISTS", "h"], ["HDEL", "h", "a"], ["TYPE", "h"]],
    "hlen hstrlen hexists" => [["HSET", "h", "a", "hello", "n", "12345"], ["HLEN", "h"], ["HSTRLEN", "h", "a"], ["HSTRLEN", "h", "n"], ["HSTRLEN", "h", "x"], ["HEXISTS", "h", "a"], ["HEXISTS", "h", "x"], ["HLEN", "missing"], ["HEXISTS", "missing", "a"], ["HSTRLEN", "missing", "a"]],
    "hkeys hvals hgetall" => [["HSET", "h", "z", "1", "a", "2", "m", "3"], ["HKEYS", "h"], ["HVALS", "h"], ["HGETALL", "h"], ["HGETALL", "missing"], ["HKEYS", "missing"], ["HVALS", "missing"]],
    "hincrby" => [["HINCRBY", "h", "n", "5"], ["HINCRBY", "h", "n", "-10"], ["HSET", "h", "s", "abc"], ["HINCRBY", "h", "s", "1"], ["HINCRBY", "h", "n", "x"], ["HINCRBY", "h", "n", "1.5"], ["HSET", "h", "big", "9223372036854775807"], ["HINCRBY", "h", "big", "1"], ["HSET", "h", "w", " 1"], ["HINCRBY", "h", "w", "1"], ["HGETALL", "h"]],
    "hincrbyfloat" => [["HINCRBYFLOAT", "h", "f", "1.5"], ["HINCRBYFLOAT", "h", "f", "2.25"], ["HINCRBYFLOAT", "h", "f", "-3.75"], ["HINCRBYFLOAT", "h", "f", "inf"], ["HINCRBYFLOAT", "h", "f", "x"], ["HSET", "h", "s", "abc"], ["HINCRBYFLOAT", "h", "s", "1"], ["HINCRBYFLOAT", "h", "n", "3"], ["HINCRBYFLOAT", "h", "e", "1e3"], ["HGETALL", "h"]],
    "wrongtype" => [["SET", "s", "x"], ["HSET", "s", "a", "1"], ["HGET", "s", "a"], ["HMGET", "s", "a"], ["HLEN", "s"], ["HGETALL", "s"], ["HKEYS", "s"], ["HINCRBY", "s", "a", "1"], ["HINCRBYFLOAT", "s", "a", "1"], ["HDEL", "s", "a"], ["HSETNX", "s", "a", "1"], ["HEXISTS", "s", "a"], ["HSTRLEN", "s", "a"], ["HRANDFIELD", "s"], ["HRANDFIELD", "s", "2"], ["HSCAN", "s", "0"], ["GET", "s"]],
    "string commands on a hash" => [["HSET", "h", "a", "1"], ["GET", "h"], ["INCR", "h"], ["APPEND", "h", "x"], ["SADD", "h", "x"], ["HGET", "h", "a"]],
    "generic commands on a hash" => [["HSET", "h", "a", "1", "b", "2"], ["TYPE", "h"], ["EXISTS", "h"], ["EXPIRE", "h", "100"], ["TTL", "h"], ["RENAME", "h", "g"], ["HGETALL", "g"], ["EXISTS", "h"], ["COPY", "g", "c"], ["HGETALL", "c"], ["HSET", "c", "a", "changed"], ["HGET", "g", "a"], ["TTL", "c"], ["DEL", "g", "c"], ["EXISTS", "g", "c"], ["OBJECT", "ENCODING", "h"]],
    "encodings follow the listpack settings" => [["HSET", "h", "a", "1", "b", "2"], ["OBJECT", "ENCODING", "h"], ["HSET", "l", "a", LONG], ["OBJECT", "ENCODING", "l"], ["CONFIG", "SET", "hash-max-listpack-entries", "2"], ["HSET", "h", "c", "3"], ["OBJECT", "ENCODING", "h"], ["CONFIG", "GET", "hash-max-ziplist-entries"], ["CONFIG", "SET", "hash-max-ziplist-entries", "128"], ["CONFIG", "GET", "hash-max-listpack-entries"], ["HSET", "n", "a", "1", "b", "2", "c", "3"], ["OBJECT", "ENCODING", "n"], ["HDEL", "h", "c"], ["OBJECT", "ENCODING", "h"]],
    "hrandfield of one field" => [["HSET", "h", "a", "1"], ["HRANDFIELD", "h"], ["HRANDFIELD", "h", "1"], ["HRANDFIELD", "h", "-3"], ["HRANDFIELD", "h", "-2", "WITHVALUES"], ["HRANDFIELD", "h", "5", "WITHVALUES"], ["HRANDFIELD", "h", "0"], ["HRANDFIELD", "missing"], ["HRANDFIELD", "missing", "3"], ["HRANDFIELD", "missing", "3", "WITHVALUES"]],
    "hrandfield errors" => [["HSET", "h", "a", "1"], ["HRANDFIELD", "h", "1", "FOO"], ["HRANDFIELD", "h", "x"], ["HRANDFIELD", "h", "1", "WITHVALUES", "x"], ["HRANDFIELD", "h", "-9223372036854775808"], ["HRANDFIELD", "h", "9223372036854775807", "WITHVALUES"]],
    "~hrandfield all fields" => [["HSET", "h", "a", "1", "b", "2", "c", "3"], ["~HRANDFIELD", "h", "10"], ["~HRANDFIELD", "h", "3"]],
    "hscan" => [["HSET", "h", "a", "1", "b", "2", "ab", "3"], ["HSCAN", "h", "0"], ["HSCAN", "h", "0", "MATCH", "a*"], ["HSCAN", "h", "0", "COUNT", "1"], ["HSCAN", "h", "x"], ["HSCAN", "missing", "0"], ["HSCAN", "h", "0", "COUNT", "0"], ["HSCAN", "h", "0", "COUNT", "x"], ["HSCAN", "h", "0", "FOO", "bar"], ["HSCAN", "h", "0", "MATCH"], ["HSCAN", "missing", "x"]],
};

#[test]
fn hash_replies_match_redis_server() {
    compare_args(SIDE_BY_SIDE);
}

/// A named sequence of commands with the reply Redis 7.4 / 8.0 gives each (RESP2; integers in
/// arrays written bare).
struct Exact {
    name: &'static str,
    steps: &'static [(&'static [&'static str], &'static str)],
}

/// A field expiry far away and below Redis's limit: 60,000,000,000,000 ms is in the year 3871.
const EXACT: &[Exact] = &[
    Exact {
        name: "hexpire conditions",
        steps: &[
            (&["HSET", "h", "a", "1", "b", "2"], "2"),
            (
                &["HPEXPIREAT", "h", "60000000000000", "FIELDS", "2", "a", "x"],
                "[1, -2]",
            ),
            (
                &["HPEXPIRETIME", "h", "FIELDS", "3", "a", "b", "x"],
                "[60000000000000, -1, -2]",
            ),
            (&["HEXPIRETIME", "h", "FIELDS", "1", "a"], "[60000000000]"),
            (
                &[
                    "HPEXPIREAT",
                    "h",
                    "60000000000001",
                    "NX",
                    "FIELDS",
                    "2",
                    "a",
                    "b",
                ],
                "[0, 1]",
            ),
            (
                &[
                    "HPEXPIREAT",
                    "h",
                    "60000000000002",
                    "XX",
                    "FIELDS",
                    "1",
                    "a",
                ],
                "[1]",
            ),
            (
                &[
                    "HPEXPIREAT",
                    "h",
                    "60000000000000",
                    "GT",
                    "FIELDS",
                    "1",
                    "a",
                ],
                "[0]",
            ),
            (
                &[
                    "HPEXPIREAT",
                    "h",
                    "60000000000000",
                    "lt",
                    "FIELDS",
                    "1",
                    "a",
                ],
                "[1]",
            ),
            (
                &["HEXPIREAT", "h", "60000000001", "FIELDS", "1", "a"],
                "[1]",
            ),
            (
                &["HPEXPIRETIME", "h", "FIELDS", "1", "a"],
                "[60000000001000]",
            ),
            (&["OBJECT", "ENCODING", "h"], "\"listpackex\""),
        ],
    },
    Exact {
        name: "relative expiry and ttl",
        steps: &[
            (&["HSET", "h", "a", "1", "b", "2"], "2"),
            (&["HEXPIRE", "h", "100", "FIELDS", "1", "a"], "[1]"),
            (&["HTTL", "h", "FIELDS", "2", "a", "b"], "[100, -1]"),
            (&["HPEXPIRE", "h", "100000", "FIELDS", "1", "b"], "[1]"),
            (&["HTTL", "h", "FIELDS", "1", "b"], "[100]"),
            (&["HINCRBY", "h", "a", "1"], "2"),
            (&["HTTL", "h", "FIELDS", "1", "a"], "[100]"),
            (&["HSET", "h", "a", "5"], "0"),
            (&["HTTL", "h", "FIELDS", "1", "a"], "[-1]"),
            (
                &["HPERSIST", "h", "FIELDS", "3", "a", "b", "x"],
                "[-1, 1, -2]",
            ),
            (&["HTTL", "h", "FIELDS", "1", "b"], "[-1]"),
        ],
    },
    Exact {
        name: "a time in the past deletes",
        steps: &[
            (&["HSET", "h", "a", "1", "b", "2"], "2"),
            (&["HPEXPIREAT", "h", "1", "FIELDS", "1", "a"], "[2]"),
            (&["HEXISTS", "h", "a"], "0"),
            (&["HLEN", "h"], "1"),
            (&["HEXPIRE", "h", "0", "FIELDS", "1", "b"], "[2]"),
            (&["EXISTS", "h"], "0"),
        ],
    },
    Exact {
        name: "missing keys",
        steps: &[
            (&["HTTL", "missing", "FIELDS", "2", "a", "b"], "[-2, -2]"),
            (&["HEXPIRE", "missing", "10", "FIELDS", "1", "a"], "[-2]"),
            (&["HPERSIST", "missing", "FIELDS", "1", "a"], "[-2]"),
            (&["HGETDEL", "missing", "FIELDS", "1", "a"], "[(nil)]"),
            (
                &["HGETEX", "missing", "EX", "10", "FIELDS", "1", "a"],
                "[(nil)]",
            ),
            (&["EXISTS", "missing"], "0"),
        ],
    },
    Exact {
        name: "field expiry errors",
        steps: &[
            (&["HSET", "h", "a", "1"], "1"),
            (
                &["HEXPIRE", "h", "10", "FIELDS", "0", "a"],
                "(error) ERR Parameter `numFields` should be greater than 0",
            ),
            (
                &["HEXPIRE", "h", "10", "FIELDS", "2", "a"],
                "(error) ERR The `numfields` parameter must match the number of arguments",
            ),
            (
                &["HEXPIRE", "h", "10", "FOO", "1", "a"],
                "(error) ERR Mandatory argument FIELDS is missing or not at the right position",
            ),
            (
                &["HEXPIRE", "h", "-1", "FIELDS", "1", "a"],
                "(error) ERR invalid expire time, must be >= 0",
            ),
            (
                &["HEXPIRE", "h", "x", "FIELDS", "1", "a"],
                "(error) ERR value is not an integer or out of range",
            ),
            (
                &["HEXPIRE", "h", "99999999999999", "FIELDS", "1", "a"],
                "(error) ERR invalid expire time in 'hexpire' command",
            ),
            (
                &["HPEXPIREAT", "h", "70368744177664", "FIELDS", "1", "a"],
                "(error) ERR invalid expire time in 'hpexpireat' command",
            ),
            (
                &["HTTL", "h", "FIELDS", "0", "a"],
                "(error) ERR Number of fields must be a positive integer",
            ),
            (
                &["HTTL", "h", "FIELDS", "x", "a"],
                "(error) ERR Number of fields must be a positive integer",
            ),
            (
                &["HPERSIST", "h", "FIELD", "1", "a"],
                "(error) ERR Mandatory argument FIELDS is missing or not at the right position",
            ),
            (
                &["HTTL", "h", "FIELDS", "1"],
                "(error) ERR wrong number of arguments for 'httl' command",
            ),
            (&["SET", "s", "x"], "+OK"),
            (
                &["HEXPIRE", "s", "10", "FIELDS", "1", "a"],
                "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
            ),
            (
                &["HTTL", "s", "FOO", "1", "a"],
                "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
            ),
            (
                &["HGETDEL", "s", "FIELDS", "1", "a"],
                "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
            ),
            (
                &["HSETEX", "s", "FIELDS", "1", "a", "1"],
                "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
            ),
        ],
    },
    Exact {
        name: "hgetdel",
        steps: &[
            (&["HSET", "h", "a", "1", "b", "2", "c", "3"], "3"),
            (&["HGETDEL", "h", "FIELDS", "2", "a", "x"], "[\"1\", (nil)]"),
            (&["HLEN", "h"], "2"),
            (&["HGETDEL", "h", "FIELDS", "2", "b", "c"], "[\"2\", \"3\"]"),
            (&["EXISTS", "h"], "0"),
            (
                &["HGETDEL", "h", "FIELDS", "0", "a"],
                "(error) ERR Number of fields must be a positive integer",
            ),
            (
                &["HGETDEL", "h", "FIELDS", "2", "a"],
                "(error) ERR The `numfields` parameter must match the number of arguments",
            ),
            (
                &["HGETDEL", "h", "FOO", "1", "a"],
                "(error) ERR Mandatory argument FIELDS is missing or not at the right position",
            ),
        ],
    },
    Exact {
        name: "hgetex",
        steps: &[
            (&["HSET", "h", "a", "1", "b", "2"], "2"),
            (
                &["HGETEX", "h", "EX", "100", "FIELDS", "2", "a", "x"],
                "[\"1\", (nil)]",
            ),
            (&["HTTL", "h", "FIELDS", "2", "a", "b"], "[100, -1]"),
            (&["HGETEX", "h", "PERSIST", "FIELDS", "1", "a"], "[\"1\"]"),
            (&["HTTL", "h", "FIELDS", "1", "a"], "[-1]"),
            (
                &["HGETEX", "h", "PXAT", "60000000000000", "FIELDS", "1", "b"],
                "[\"2\"]",
            ),
            (
                &["HPEXPIRETIME", "h", "FIELDS", "1", "b"],
                "[60000000000000]",
            ),
            (&["HGETEX", "h", "FIELDS", "1", "b"], "[\"2\"]"),
            (&["HGETEX", "h", "PXAT", "1", "FIELDS", "1", "a"], "[\"1\"]"),
            (&["HEXISTS", "h", "a"], "0"),
            (
                &["HGETEX", "h", "EX", "-1", "FIELDS", "1", "b"],
                "(error) ERR invalid expire time, must be >= 0",
            ),
            (
                &["HGETEX", "h", "EX", "10", "FOO", "1", "b"],
                "(error) ERR Mandatory argument FIELDS is missing or not at the right position",
            ),
            (&["HGETEX", "h", "EXAT", "1", "FIELDS", "1", "b"], "[\"2\"]"),
            (&["EXISTS", "h"], "0"),
        ],
    },
    Exact {
        name: "hsetex",
        steps: &[
            (
                &[
                    "HSETEX", "h", "EX", "100", "FIELDS", "2", "a", "1", "b", "2",
                ],
                "1",
            ),
            (&["HTTL", "h", "FIELDS", "2", "a", "b"], "[100, 100]"),
            (
                &["HSETEX", "h", "FNX", "FIELDS", "2", "a", "9", "c", "3"],
                "0",
            ),
            (&["HEXISTS", "h", "c"], "0"),
            (
                &["HSETEX", "h", "FXX", "KEEPTTL", "FIELDS", "1", "a", "9"],
                "1",
            ),
            (&["HGET", "h", "a"], "\"9\""),
            (&["HTTL", "h", "FIELDS", "1", "a"], "[100]"),
            (&["HSETEX", "h", "FIELDS", "1", "a", "10"], "1"),
            (&["HTTL", "h", "FIELDS", "1", "a"], "[-1]"),
            (
                &["HSETEX", "h", "FXX", "FIELDS", "2", "a", "1", "z", "2"],
                "0",
            ),
            (&["HSETEX", "h", "PXAT", "1", "FIELDS", "1", "c", "3"], "1"),
            (&["HEXISTS", "h", "c"], "0"),
            (&["HSETEX", "missing", "FXX", "FIELDS", "1", "a", "1"], "0"),
            (&["EXISTS", "missing"], "0"),
            (
                &[
                    "HSETEX", "h", "EX", "10", "PX", "10", "FIELDS", "1", "a", "1",
                ],
                "(error) ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified",
            ),
            (
                &["HSETEX", "h", "FNX", "FXX", "FIELDS", "1", "a", "1"],
                "(error) ERR Only one of FXX or FNX arguments can be specified",
            ),
            (
                &["HSETEX", "h", "FOO", "FIELDS", "1", "a", "1"],
                "(error) ERR unknown argument: FOO",
            ),
            (
                &["HSETEX", "h", "FIELDS", "2", "a", "1"],
                "(error) ERR wrong number of arguments for 'hsetex' command",
            ),
            (
                &["HSETEX", "h", "FIELDS", "0", "a", "1"],
                "(error) ERR invalid number of fields",
            ),
            (
                &["HSETEX", "h", "EX", "x", "FIELDS", "1", "a", "1"],
                "(error) ERR value is not an integer or out of range",
            ),
        ],
    },
    Exact {
        name: "hscan novalues",
        steps: &[
            (&["HSET", "h", "a", "1", "b", "2"], "2"),
            (&["HSCAN", "h", "0", "NOVALUES"], "[\"0\", [\"a\", \"b\"]]"),
            (
                &["HSCAN", "h", "0", "MATCH", "b", "NOVALUES"],
                "[\"0\", [\"b\"]]",
            ),
        ],
    },
    Exact {
        name: "hrandfield skips due fields",
        steps: &[
            (&["HSET", "h", "a", "1", "b", "2"], "2"),
            (&["HPEXPIREAT", "h", "1", "FIELDS", "1", "a"], "[2]"),
            (&["HRANDFIELD", "h", "5", "WITHVALUES"], "[\"b\", \"2\"]"),
        ],
    },
];

#[test]
fn field_expiry_replies_match_redis_7_4() {
    let ember = Ember::start(2);
    let mut mismatches = Vec::new();
    let mut con = ember.connect(false);
    for case in EXACT {
        let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
        for (command, expected) in case.steps {
            let args: Vec<&[u8]> = command.iter().map(|arg| arg.as_bytes()).collect();
            let got = show(&run(&mut con, &args)).replace("(integer) ", "");
            if got != *expected {
                mismatches.push(format!(
                    "[{}] {}:\n    got:      {got}\n    expected: {expected}",
                    case.name,
                    command.join(" ")
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

fn integer(con: &mut redis::Connection, args: &[&str]) -> i64 {
    let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
    match run(con, &args) {
        Ok(Value::Int(value)) => value,
        other => panic!("{args:?}: {}", show(&other)),
    }
}

/// Polls `check` until it holds or `deadline_ms` passes.
fn eventually(deadline_ms: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_millis(deadline_ms);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    check()
}

/// Fields nobody reads go through the active expiry (HLEN counts a due field until it is
/// removed, so HLEN dropping shows the active pass ran); a hash whose last field goes takes its
/// key with it. Fields read after their time are absent at once (lazy expiry).
#[test]
fn fields_expire_lazily_and_actively() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    for key in ["h1", "h2", "h3", "h4"] {
        integer(&mut con, &["HSET", key, "a", "1", "b", "2"]);
    }
    assert_eq!(integer(&mut con, &["HSET", "gone", "a", "1"]), 1);
    for key in ["h1", "h2", "h3", "h4", "gone"] {
        let expired = run(
            &mut con,
            &[b"HPEXPIRE", key.as_bytes(), b"50", b"FIELDS", b"1", b"a"],
        );
        assert_eq!(show(&expired), "[(integer) 1]", "{key}");
    }
    assert_eq!(integer(&mut con, &["HLEN", "h1"]), 2, "not due yet");
    let removed = eventually(5000, || {
        ["h1", "h2", "h3", "h4"]
            .iter()
            .all(|key| integer(&mut con, &["HLEN", key]) == 1)
            && integer(&mut con, &["EXISTS", "gone"]) == 0
    });
    assert!(
        removed,
        "the active expiry removed the due fields and the emptied key"
    );
    assert_eq!(show(&run(&mut con, &[b"HGETALL", b"h1"])), "[\"b\", \"2\"]");

    // Lazy: a due field is absent to reads before any pass removes it.
    integer(&mut con, &["HSET", "lazy", "a", "1", "b", "2"]);
    let set = run(
        &mut con,
        &[b"HPEXPIRE", b"lazy", b"30", b"FIELDS", b"1", b"a"],
    );
    assert_eq!(show(&set), "[(integer) 1]");
    assert!(eventually(2000, || integer(
        &mut con,
        &["HEXISTS", "lazy", "a"]
    ) == 0));
    assert_eq!(show(&run(&mut con, &[b"HGET", b"lazy", b"a"])), "(nil)");
    assert_eq!(
        show(&run(&mut con, &[b"HGETALL", b"lazy"])),
        "[\"b\", \"2\"]"
    );
    let ttl = run(&mut con, &[b"HTTL", b"lazy", b"FIELDS", b"1", b"a"]);
    assert_eq!(show(&ttl), "[(integer) -2]");
}

/// A hash past `hash-max-listpack-entries` scanned with small counts: every field exactly once.
#[test]
fn hscan_returns_every_field_of_a_big_hash_once() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let mut expected = BTreeSet::new();
    for batch in 0..10 {
        let mut command = redis::cmd("HSET");
        command.arg("big");
        for index in 0..30 {
            let name = format!("field:{}", batch * 30 + index);
            command.arg(&name).arg(index);
            expected.insert(name);
        }
        let _: i64 = command.query(&mut con).unwrap();
    }
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("big")
        .query(&mut con)
        .unwrap();
    assert_eq!(encoding, "hashtable");
    let mut seen = Vec::new();
    let mut cursor = 0u64;
    for _ in 0..1000 {
        let (next, items): (u64, Vec<String>) = redis::cmd("HSCAN")
            .arg("big")
            .arg(cursor)
            .arg("COUNT")
            .arg(7)
            .query(&mut con)
            .unwrap();
        seen.extend(items.chunks(2).map(|pair| pair[0].clone()));
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(cursor, 0, "the scan ends");
    assert_eq!(seen.len(), expected.len(), "no field twice");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), expected);
}

/// Reads that name a due field remove it, and the key with its last field, as Redis 7.4's
/// lazy expiry does (the active pass is slowed to once a second so that it rarely gets there
/// first; either way the key must be gone).
#[test]
fn reading_the_last_due_field_deletes_the_key() {
    let ember = Ember::start_with(&["--threads", "2", "--hz", "1"]);
    let mut con = ember.connect(false);
    let cases: &[(&str, &[&str])] = &[
        ("hget", &["HGET", "k", "a"]),
        ("hmget", &["HMGET", "k", "x", "a"]),
        ("hexists", &["HEXISTS", "k", "a"]),
        ("hstrlen", &["HSTRLEN", "k", "a"]),
    ];
    for (name, read) in cases {
        integer(&mut con, &["HSET", "k", "a", "1"]);
        let set = run(&mut con, &[b"HPEXPIRE", b"k", b"20", b"FIELDS", b"1", b"a"]);
        assert_eq!(show(&set), "[(integer) 1]", "{name}");
        // The field's TTL has to pass; nothing else can stand in for that.
        std::thread::sleep(Duration::from_millis(40));
        let args: Vec<&[u8]> = read.iter().map(|arg| arg.as_bytes()).collect();
        let reply = show(&run(&mut con, &args));
        assert!(
            ["(nil)", "[(nil), (nil)]", "(integer) 0"].contains(&reply.as_str()),
            "{name}: {reply}"
        );
        assert_eq!(integer(&mut con, &["EXISTS", "k"]), 0, "{name}");
    }
}

/// Active field expiry follows a hash wherever it goes: another database, RENAME (possibly to
/// the other shard), COPY.
#[test]
fn active_field_expiry_follows_renamed_and_copied_hashes() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let _: () = redis::cmd("SELECT").arg(3).query(&mut con).unwrap();
    integer(&mut con, &["HSET", "source", "a", "1"]);
    let set = run(
        &mut con,
        &[b"HPEXPIRE", b"source", b"300", b"FIELDS", b"1", b"a"],
    );
    assert_eq!(show(&set), "[(integer) 1]");
    let _: () = redis::cmd("RENAME")
        .arg("source")
        .arg("renamed")
        .query(&mut con)
        .unwrap();
    assert_eq!(integer(&mut con, &["COPY", "renamed", "copied"]), 1);
    assert!(
        eventually(5000, || integer(&mut con, &["EXISTS", "renamed", "copied"])
            == 0),
        "both keys went with their last field"
    );
}
