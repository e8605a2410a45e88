//! List commands and the sorted-set pops against `ember --threads 2`: every reply and error of
//! a table of named scripts, in RESP2 and RESP3, compared with a real redis-server when one is
//! installed, plus Ember's own expectations where Redis 7.0 (the oracle) and 7.2 (what Ember
//! follows) differ: OBJECT ENCODING of lists.

mod common;

use common::{run, show, Ember, RedisOracle};

/// One named script: commands run in order on one connection, after FLUSHALL.
type Script = (&'static str, &'static [&'static [&'static str]]);

/// Every list command's replies and errors, and the sorted-set pops. Keys `a`, `b`, `c` and
/// `d` spread over both shards, so LMOVE, RPOPLPUSH, LMPOP and ZMPOP cross them.
#[rustfmt::skip]
const SCRIPTS: &[Script] = &[
    ("push and length", &[
        &["LPUSH", "a", "1", "2", "3"], &["RPUSH", "a", "4", "5"], &["LRANGE", "a", "0", "-1"],
        &["LLEN", "a"], &["LLEN", "none"], &["LPUSHX", "none", "x"], &["RPUSHX", "none", "x"],
        &["LPUSHX", "a", "0"], &["RPUSHX", "a", "6", "7"], &["LRANGE", "a", "0", "-1"],
        &["EXISTS", "none"], &["LPUSH", "a"], &["TYPE", "a"],
    ]),
    ("pop shapes", &[
        &["RPUSH", "a", "x", "y", "z"], &["LPOP", "none"], &["LPOP", "none", "0"],
        &["LPOP", "none", "2"], &["LPOP", "a", "0"], &["LPOP", "a"], &["RPOP", "a", "1"],
        &["LPOP", "a", "5"], &["EXISTS", "a"], &["RPOP", "a"], &["LPOP", "a", "-1"],
        &["LPOP", "a", "x"], &["LPOP", "a", "1", "2"], &["RPOP", "a", "1", "2"],
    ]),
    ("range and index", &[
        &["RPUSH", "a", "a", "b", "c", "d", "e"], &["LRANGE", "a", "1", "3"],
        &["LRANGE", "a", "-2", "100"], &["LRANGE", "a", "3", "1"], &["LRANGE", "a", "-100", "0"],
        &["LRANGE", "a", "x", "1"], &["LRANGE", "none", "0", "-1"], &["LINDEX", "a", "0"],
        &["LINDEX", "a", "-1"], &["LINDEX", "a", "5"], &["LINDEX", "a", "x"],
        &["LINDEX", "none", "0"],
    ]),
    ("set, insert, remove, trim", &[
        &["RPUSH", "a", "a", "b", "a", "c", "a"], &["LSET", "a", "1", "B"], &["LSET", "a", "-1", "A"],
        &["LSET", "a", "9", "x"], &["LSET", "none", "0", "x"], &["LSET", "a", "x", "y"],
        &["LINSERT", "a", "BEFORE", "c", "x"], &["LINSERT", "a", "after", "A", "y"],
        &["LINSERT", "a", "BEFORE", "missing", "x"], &["LINSERT", "none", "BEFORE", "a", "x"],
        &["LINSERT", "a", "MIDDLE", "a", "x"], &["LRANGE", "a", "0", "-1"],
        &["LREM", "a", "1", "a"], &["LREM", "a", "-1", "a"], &["LREM", "a", "0", "zz"],
        &["LREM", "a", "x", "a"], &["LREM", "none", "0", "a"], &["LRANGE", "a", "0", "-1"],
        &["LTRIM", "a", "1", "-2"], &["LRANGE", "a", "0", "-1"], &["LTRIM", "a", "x", "1"],
        &["LTRIM", "none", "0", "1"], &["LTRIM", "a", "5", "1"], &["EXISTS", "a"],
    ]),
    ("lpos", &[
        &["RPUSH", "a", "a", "b", "c", "1", "2", "3", "c", "c"], &["LPOS", "a", "c"],
        &["LPOS", "a", "c", "RANK", "2"], &["LPOS", "a", "c", "RANK", "-1"],
        &["LPOS", "a", "c", "COUNT", "0"], &["LPOS", "a", "c", "COUNT", "2", "RANK", "-1"],
        &["LPOS", "a", "c", "COUNT", "0", "MAXLEN", "3"], &["LPOS", "a", "zz"],
        &["LPOS", "a", "zz", "COUNT", "2"], &["LPOS", "none", "c"], &["LPOS", "none", "c", "COUNT", "1"],
        &["LPOS", "a", "c", "RANK", "0"], &["LPOS", "a", "c", "COUNT", "-1"],
        &["LPOS", "a", "c", "MAXLEN", "-1"], &["LPOS", "a", "c", "RANK", "x"],
        &["LPOS", "a", "c", "FOO", "1"], &["LPOS", "a", "c", "RANK"],
    ]),
    ("moves", &[
        &["RPUSH", "a", "1", "2", "3"], &["LMOVE", "a", "b", "LEFT", "RIGHT"],
        &["LMOVE", "a", "b", "RIGHT", "LEFT"], &["LMOVE", "a", "a", "LEFT", "RIGHT"],
        &["LRANGE", "a", "0", "-1"], &["LRANGE", "b", "0", "-1"], &["RPOPLPUSH", "b", "c"],
        &["RPOPLPUSH", "b", "c"], &["EXISTS", "b"], &["RPOPLPUSH", "none", "c"],
        &["LMOVE", "none", "c", "LEFT", "LEFT"], &["LMOVE", "a", "c", "UP", "LEFT"],
        &["LRANGE", "c", "0", "-1"], &["SET", "s", "x"], &["LMOVE", "a", "s", "LEFT", "LEFT"],
        &["LMOVE", "s", "a", "LEFT", "LEFT"], &["RPOPLPUSH", "a", "s"], &["LRANGE", "a", "0", "-1"],
    ]),
    ("lmpop", &[
        &["RPUSH", "c", "1", "2", "3"], &["LMPOP", "2", "a", "c", "LEFT"],
        &["LMPOP", "2", "a", "c", "RIGHT", "COUNT", "5"], &["LMPOP", "1", "c", "LEFT"],
        &["LMPOP", "0", "c", "LEFT"], &["LMPOP", "x", "c", "LEFT"], &["LMPOP", "3", "c", "LEFT"],
        &["LMPOP", "1", "c", "UP"], &["LMPOP", "1", "c", "LEFT", "COUNT", "0"],
        &["LMPOP", "1", "c", "LEFT", "COUNT", "1", "COUNT", "2"], &["LMPOP", "1", "c", "LEFT", "COUNT"],
        &["LMPOP", "1", "c"], &["SET", "s", "x"], &["LMPOP", "2", "a", "s", "LEFT"],
    ]),
    ("wrong types", &[
        &["SET", "s", "x"], &["LPUSH", "s", "a"], &["RPUSHX", "s", "a"], &["LPOP", "s"],
        &["LPOP", "s", "0"], &["LLEN", "s"], &["LRANGE", "s", "0", "1"], &["LINDEX", "s", "0"],
        &["LSET", "s", "0", "a"], &["LINSERT", "s", "BEFORE", "a", "b"], &["LREM", "s", "0", "a"],
        &["LTRIM", "s", "0", "1"], &["LPOS", "s", "a"], &["ZPOPMIN", "s"], &["RPUSH", "l", "x"],
        &["ZPOPMAX", "l", "2"], &["ZMPOP", "1", "l", "MIN"],
    ]),
    ("sorted-set pops", &[
        &["ZADD", "a", "1", "one", "2", "two", "3", "three", "-1.5", "neg", "inf", "top"],
        &["ZPOPMIN", "a"], &["ZPOPMAX", "a"], &["ZPOPMIN", "a", "2"], &["ZPOPMAX", "a", "0"],
        &["ZPOPMIN", "none"], &["ZPOPMIN", "none", "2"], &["ZPOPMIN", "a", "-1"],
        &["ZPOPMIN", "a", "x"], &["ZPOPMIN", "a", "1", "2"], &["ZPOPMAX", "a", "5"],
        &["EXISTS", "a"], &["ZADD", "d", "1", "x", "2", "y"],
        &["ZMPOP", "2", "a", "d", "MAX", "COUNT", "1"], &["ZMPOP", "2", "a", "d", "MIN", "COUNT", "9"],
        &["ZMPOP", "1", "d", "MIN"], &["ZMPOP", "0", "d", "MIN"], &["ZMPOP", "1", "d", "LEFT"],
        &["ZMPOP", "1", "d", "MIN", "COUNT", "0"], &["ZMPOP", "2", "d", "MIN"],
    ]),
];

fn replies(port: u16, resp3: bool, script: &[&[&str]]) -> Vec<String> {
    let mut con = common::connect(port, resp3);
    let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
    script
        .iter()
        .map(|command| {
            let args: Vec<&[u8]> = command.iter().map(|arg| arg.as_bytes()).collect();
            format!("{} -> {}", command.join(" "), show(&run(&mut con, &args)))
        })
        .collect()
}

#[test]
fn replies_match_redis() {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    for resp3 in [false, true] {
        for (name, script) in SCRIPTS {
            let expected = replies(oracle.port, resp3, script);
            let actual = replies(ember.port, resp3, script);
            for (expected, actual) in expected.iter().zip(&actual) {
                assert_eq!(actual, expected, "{name} (RESP3: {resp3})");
            }
        }
    }
}

/// Replies checked without an oracle, so the suite says something where redis-server is
/// missing.
#[test]
fn replies_without_an_oracle() {
    let ember = Ember::start(2);
    let cases: &[(&str, &[&str], &str)] = &[
        ("rpush", &["RPUSH", "a", "x", "y", "z"], "(integer) 3"),
        ("lpop count 0", &["LPOP", "a", "0"], "[]"),
        ("lpop missing count", &["LPOP", "none", "1"], "(nil)"),
        ("lpop", &["LPOP", "a"], "\"x\""),
        ("rpop count", &["RPOP", "a", "5"], "[\"z\", \"y\"]"),
        ("gone", &["EXISTS", "a"], "(integer) 0"),
        (
            "negative count",
            &["RPOP", "a", "-1"],
            "(error) ERR value is out of range, must be positive",
        ),
        (
            "lset missing",
            &["LSET", "a", "0", "x"],
            "(error) ERR no such key",
        ),
        (
            "lmpop numkeys",
            &["LMPOP", "0", "a", "LEFT"],
            "(error) ERR numkeys should be greater than 0",
        ),
        ("zadd", &["ZADD", "z", "1", "a", "2", "b"], "(integer) 2"),
        ("zpopmax", &["ZPOPMAX", "z"], "[\"b\", \"2\"]"),
        (
            "zmpop",
            &["ZMPOP", "1", "z", "MIN"],
            "[\"z\", [[\"a\", \"1\"]]]",
        ),
    ];
    let mut con = ember.connect(false);
    for (name, args, expected) in cases {
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        assert_eq!(show(&run(&mut con, &args)), *expected, "{name}");
    }
}

/// OBJECT ENCODING as Redis 7.2 reports it (the 7.0 oracle says quicklist for every list).
#[test]
fn encoding_follows_list_max_listpack_size() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let encoding = |con: &mut redis::Connection, key: &str| -> String {
        redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(key)
            .query(con)
            .unwrap()
    };
    let _: () = redis::cmd("RPUSH")
        .arg("small")
        .arg(&["a", "b", "c"])
        .query(&mut con)
        .unwrap();
    assert_eq!(encoding(&mut con, "small"), "listpack");
    let big = "x".repeat(9000);
    let _: () = redis::cmd("RPUSH")
        .arg("big")
        .arg(&big)
        .query(&mut con)
        .unwrap();
    assert_eq!(
        encoding(&mut con, "big"),
        "quicklist",
        "one element past 8 KB"
    );
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("list-max-listpack-size")
        .arg("4")
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg("counted")
        .arg(&["1", "2", "3", "4"])
        .query(&mut con)
        .unwrap();
    assert_eq!(
        encoding(&mut con, "counted"),
        "listpack",
        "4 elements at a limit of 4"
    );
    let _: () = redis::cmd("RPUSH")
        .arg("counted")
        .arg("5")
        .query(&mut con)
        .unwrap();
    assert_eq!(
        encoding(&mut con, "counted"),
        "quicklist",
        "5 elements at a limit of 4"
    );
    let _: () = redis::cmd("LTRIM")
        .arg("counted")
        .arg(0)
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert_eq!(
        encoding(&mut con, "counted"),
        "listpack",
        "back under half the limit"
    );
}
