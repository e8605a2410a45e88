//! The set and sorted-set commands beyond the first ones (SMOVE, the set algebra, SSCAN,
//! ZRANGESTORE, the range removals, the sorted-set algebra, ZRANDMEMBER, ZSCAN), every reply
//! compared with a real redis-server. Keys `a`, `b`, `c` and `d` spread over both shards
//! (slots 15495, 3300, 7365, 11298), so every multi-key form runs across shards.

mod common;
mod family_compare;

use common::{run, show, Ember};
use family_compare::{compare, Case};

/// Commands whose member order Redis leaves unspecified: compared sorted.
const UNORDERED: &[&str] = &["SINTER", "SUNION", "SDIFF", "SMEMBERS"];

const SET_CASES: &[Case] = &[
    Case {
        name: "intersection across shards, smallest first, missing keys empty",
        commands: &[
            "SADD a 1 2 3 x y",
            "SADD b 2 3 y z",
            "SADD c 3 y",
            "SINTER a b c",
            "SINTER a b",
            "SINTER a nokey",
            "SINTER nokey",
            "SINTERCARD 3 a b c",
            "SINTERCARD 2 a b LIMIT 1",
            "SINTERCARD 2 a b LIMIT 0",
            "SINTERCARD 2 a nokey",
        ],
    },
    Case {
        name: "union and difference across shards",
        commands: &[
            "SADD a 1 2 3 x",
            "SADD b 2 y",
            "SUNION a b",
            "SUNION a nokey b",
            "SDIFF a b",
            "SDIFF nokey a",
            "SDIFF a nokey",
            "SDIFF a a",
        ],
    },
    Case {
        name: "store forms replace the destination, empty results delete it",
        commands: &[
            "SADD a 1 2 3",
            "SADD b 2 3 4",
            "SET d string",
            "EXPIRE d 1000",
            "SINTERSTORE d a b",
            "TYPE d",
            "TTL d",
            "SMEMBERS d",
            "SUNIONSTORE c a b",
            "SMEMBERS c",
            "SDIFFSTORE c a b",
            "SMEMBERS c",
            "SDIFFSTORE c a a",
            "EXISTS c",
            "SINTERSTORE d a nokey",
            "EXISTS d",
            "SUNIONSTORE a a b",
            "SMEMBERS a",
        ],
    },
    Case {
        name: "wrong types and key counts",
        commands: &[
            "SADD a x",
            "SET b string",
            "SINTER a b",
            "SINTER nokey b",
            "SUNION b nokey",
            "SDIFF nokey b",
            "SINTERSTORE c a b",
            "SINTERCARD 2 nokey b",
            "SINTERCARD 0 a",
            "SINTERCARD x a",
            "SINTERCARD -1 a",
            "SINTERCARD 3 a b",
            "SINTERCARD 1 a LIMIT -1",
            "SINTERCARD 1 a LIMIT x",
            "SINTERCARD 1 a LIMIT",
            "SINTERCARD 1 a FOO 1",
        ],
    },
    Case {
        name: "smove across shards",
        commands: &[
            "SADD a 1 2",
            "SADD b 3",
            "SMOVE a b 1",
            "SMEMBERS a",
            "SMEMBERS b",
            "SMOVE a b 9",
            "SMOVE a b 2",
            "EXISTS a",
            "SMOVE b c 3",
            "SMEMBERS c",
            "SMOVE c c 3",
            "SMOVE c c 4",
            "SMOVE nokey c 3",
            "SET s string",
            "SMOVE c s 3",
            "SMOVE s c 3",
            "SMOVE nokey s 3",
            "SMEMBERS c",
        ],
    },
    Case {
        name: "cross-shard stores inside MULTI",
        commands: &[
            "SADD a 1 2",
            "SADD b 2 3",
            "MULTI",
            "SUNIONSTORE c a b",
            "SMOVE a d 1",
            "SINTERCARD 2 a b",
            "EXEC",
            "SMEMBERS c",
            "SMEMBERS d",
        ],
    },
    Case {
        name: "sscan of a small set answers whole; errors in Redis's order",
        commands: &[
            "SADD a 1 2 3",
            "SSCAN a 0",
            "SSCAN a 0 MATCH 2",
            "SSCAN a 0 COUNT 1",
            "SSCAN nokey 0",
            "SSCAN nokey 0 COUNT 0",
            "SSCAN a x",
            "SSCAN a 18446744073709551616",
            "SSCAN a 0 COUNT 0",
            "SSCAN a 0 COUNT x",
            "SSCAN a 0 MATCH",
            "SSCAN a 0 TYPE set",
            "SET s string",
            "SSCAN s 0",
        ],
    },
];

const ZSET_CASES: &[Case] = &[
    Case {
        name: "zrangestore across shards",
        commands: &[
            "ZADD a 1 x 2 y 3 z 4 w",
            "ZRANGESTORE b a 1 2",
            "ZRANGE b 0 -1 WITHSCORES",
            "ZRANGESTORE b a (1 +inf BYSCORE LIMIT 0 2",
            "ZRANGE b 0 -1 WITHSCORES",
            "ZRANGESTORE b a +inf -inf BYSCORE REV LIMIT 1 2",
            "ZRANGE b 0 -1 WITHSCORES",
            "ZRANGESTORE b a [x + BYLEX",
            "ZRANGE b 0 -1",
            "ZRANGESTORE b a 10 20",
            "EXISTS b",
            "ZRANGESTORE b nokey 0 -1",
            "ZRANGESTORE b a 0 -1 WITHSCORES",
            "ZRANGESTORE b a 0 -1 LIMIT 0 1",
            "SET s string",
            "ZRANGESTORE b s 0 -1",
            "ZRANGESTORE s a 0 0",
            "TYPE s",
        ],
    },
    Case {
        name: "sorted-set stores inside MULTI",
        commands: &[
            "ZADD a 1 x 2 y",
            "ZADD b 3 y",
            "MULTI",
            "ZUNIONSTORE c 2 a b",
            "ZRANGESTORE d c 0 0",
            "ZINTER 2 a b WITHSCORES",
            "EXEC",
            "ZRANGE c 0 -1 WITHSCORES",
            "ZRANGE d 0 -1 WITHSCORES",
        ],
    },
    Case {
        name: "range removals",
        commands: &[
            "ZADD a 1 x 2 y 3 z 4 w 5 v",
            "ZREMRANGEBYRANK a 0 0",
            "ZREMRANGEBYRANK a -1 -1",
            "ZRANGE a 0 -1",
            "ZREMRANGEBYSCORE a (2 3",
            "ZRANGE a 0 -1",
            "ZADD b 0 a 0 b 0 c 0 d",
            "ZREMRANGEBYLEX b [b (d",
            "ZRANGE b 0 -1",
            "ZREMRANGEBYLEX b - +",
            "EXISTS b",
            "ZREMRANGEBYRANK nokey x 1",
            "ZREMRANGEBYSCORE nokey x 1",
            "ZREMRANGEBYLEX nokey x 1",
            "ZREMRANGEBYRANK nokey 0 1",
            "ZREMRANGEBYSCORE a 10 20",
            "SET s string",
            "ZREMRANGEBYRANK s 0 1",
        ],
    },
    Case {
        name: "union and intersection with weights and aggregates, sets as score 1",
        commands: &[
            "ZADD a 1 x 2 y 3 z",
            "ZADD b 10 y 20 z 30 w",
            "SADD c x y",
            "ZUNION 2 a b WITHSCORES",
            "ZUNION 3 a b c WITHSCORES",
            "ZUNION 2 a b WEIGHTS 2 0.5 WITHSCORES",
            "ZUNION 2 a b AGGREGATE MIN WITHSCORES",
            "ZUNION 2 a b AGGREGATE max WITHSCORES",
            "ZUNION 2 a b",
            "ZINTER 2 a b WITHSCORES",
            "ZINTER 3 a b c WITHSCORES",
            "ZINTER 2 a b WEIGHTS 1 -1 AGGREGATE MAX WITHSCORES",
            "ZINTER 2 a nokey",
            "ZINTERCARD 2 a b",
            "ZINTERCARD 3 a b c LIMIT 1",
            "ZINTERCARD 2 a b LIMIT 0",
            "ZDIFF 2 a b WITHSCORES",
            "ZDIFF 3 a b c",
            "ZDIFF 1 nokey",
        ],
    },
    Case {
        name: "infinities: weight zero and opposite infinities sum to 0",
        commands: &[
            "ZADD a inf x -inf y",
            "ZADD b -inf x inf y",
            "ZUNION 2 a b WITHSCORES",
            "ZUNION 2 a b WEIGHTS 0 1 WITHSCORES",
            "ZINTER 2 a b AGGREGATE MIN WITHSCORES",
        ],
    },
    Case {
        name: "store forms",
        commands: &[
            "ZADD a 1 x 2 y",
            "ZADD b 3 y 4 z",
            "SET d string",
            "ZUNIONSTORE d 2 a b",
            "ZRANGE d 0 -1 WITHSCORES",
            "ZINTERSTORE d 2 a b WEIGHTS 1 2",
            "ZRANGE d 0 -1 WITHSCORES",
            "ZDIFFSTORE d 2 a b",
            "ZRANGE d 0 -1 WITHSCORES",
            "ZINTERSTORE d 2 a nokey",
            "EXISTS d",
            "ZUNIONSTORE a 2 a b",
            "ZRANGE a 0 -1 WITHSCORES",
        ],
    },
    Case {
        name: "errors: key counts, options, wrong types",
        commands: &[
            "ZADD a 1 x",
            "SET s string",
            "ZUNION 0 a",
            "ZUNION x a",
            "ZUNION -1 a",
            "ZUNION 3 a b",
            "ZUNIONSTORE d 0 a",
            "ZUNIONSTORE d 3 a",
            "ZDIFF 2 a b WEIGHTS 1 2",
            "ZDIFF 2 a b AGGREGATE MIN",
            "ZUNIONSTORE d 2 a b WITHSCORES",
            "ZUNION 2 a b WEIGHTS 1",
            "ZUNION 2 a b WEIGHTS 1 x",
            "ZUNION 2 a b AGGREGATE foo",
            "ZUNION 2 a b AGGREGATE",
            "ZUNION 2 a s",
            "ZUNION 2 s a WEIGHTS x y",
            "ZINTERCARD 0 a",
            "ZINTERCARD x a",
            "ZINTERCARD 2 a b LIMIT -1",
            "ZINTERCARD 3 a",
            "ZINTERCARD 1 a WITHSCORES",
            "ZDIFFSTORE d 0 a",
            "ZUNION 1 a LIMIT 1",
        ],
    },
    Case {
        name: "zrandmember and zscan shapes and errors",
        commands: &[
            "ZADD a 1 x",
            "ZRANDMEMBER a",
            "ZRANDMEMBER a 1",
            "ZRANDMEMBER a 5 WITHSCORES",
            "ZRANDMEMBER a -3",
            "ZRANDMEMBER a -2 WITHSCORES",
            "ZRANDMEMBER a 0",
            "ZRANDMEMBER nokey",
            "ZRANDMEMBER nokey 3",
            "ZRANDMEMBER a -9223372036854775808",
            "ZRANDMEMBER a 9223372036854775807 WITHSCORES",
            "ZRANDMEMBER a -9223372036854775807 WITHSCORES",
            "ZRANDMEMBER a 1 foo",
            "ZRANDMEMBER a x",
            "ZSCAN a 0",
            "ZSCAN a 0 MATCH y*",
            "ZSCAN nokey 0",
            "ZSCAN a x",
            "ZSCAN a 0 COUNT 0",
            "SET s string",
            "ZRANDMEMBER s",
            "ZSCAN s 0",
        ],
    },
];

#[test]
fn set_commands_match_redis_server() {
    compare(SET_CASES, UNORDERED);
}

#[test]
fn sorted_set_commands_match_redis_server() {
    compare(ZSET_CASES, UNORDERED);
}

/// Walks a SCAN-style command to the end and returns what it saw, sorted.
fn scan_all(con: &mut redis::Connection, command: &str, key: &str, count: &str) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    loop {
        let reply: (String, Vec<String>) = redis::cmd(command)
            .arg(key)
            .arg(&cursor)
            .arg("COUNT")
            .arg(count)
            .query(con)
            .unwrap();
        seen.extend(reply.1);
        cursor = reply.0;
        if cursor == "0" {
            break;
        }
    }
    seen.sort();
    seen
}

#[test]
fn scans_of_large_collections_visit_every_member() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    for i in 0..1000 {
        let _: () = redis::cmd("SADD")
            .arg("big")
            .arg(format!("m{i}"))
            .query(&mut con)
            .unwrap();
        let _: () = redis::cmd("ZADD")
            .arg("zbig")
            .arg(i)
            .arg(format!("m{i}"))
            .query(&mut con)
            .unwrap();
    }
    let mut members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
    members.sort();
    assert_eq!(scan_all(&mut con, "SSCAN", "big", "37"), members);
    let mut pairs: Vec<String> = (0..1000)
        .flat_map(|i| [format!("m{i}"), i.to_string()])
        .collect();
    pairs.sort();
    assert_eq!(scan_all(&mut con, "ZSCAN", "zbig", "50"), pairs);
    // One call with a small COUNT returns a part and a cursor to go on with.
    let first: (String, Vec<String>) = redis::cmd("SSCAN")
        .arg("big")
        .arg(0)
        .arg("COUNT")
        .arg(10)
        .query(&mut con)
        .unwrap();
    assert_ne!(first.0, "0");
    assert!(first.1.len() < 100, "{} members", first.1.len());
}

#[test]
fn random_members_are_members() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    run(
        &mut con,
        &[b"ZADD", b"r", b"1", b"a", b"2", b"b", b"3", b"c"],
    )
    .unwrap();
    let members = ["a", "b", "c"];
    // (name, count, expected length, distinct)
    let cases: &[(&str, i64, usize, bool)] = &[
        ("fewer than the set", 2, 2, true),
        ("more than the set: all of them", 10, 3, true),
        ("negative: repeats allowed", -10, 10, false),
        ("zero", 0, 0, true),
    ];
    for (name, count, len, distinct) in cases {
        let picked: Vec<String> = redis::cmd("ZRANDMEMBER")
            .arg("r")
            .arg(*count)
            .query(&mut con)
            .unwrap();
        assert_eq!(picked.len(), *len, "{name}");
        assert!(
            picked.iter().all(|m| members.contains(&m.as_str())),
            "{name}"
        );
        if *distinct {
            let mut unique = picked.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), picked.len(), "{name}: distinct");
        }
    }
    let reply = run(&mut con, &[b"ZRANDMEMBER", b"r", b"-1048577"]);
    assert!(show(&reply).contains("at most"), "{}", show(&reply));
}
