//! Stream commands, every reply compared with a real redis-server where it is deterministic
//! (explicit IDs; no idle times), and checked by hand where it is not (idle times, XINFO's
//! radix-tree figures, XREAD's `+` of Redis 7.4). Keys `a` and `b` live on different shards, so
//! XREAD and XREADGROUP over both run across shards.

mod common;
mod family_compare;

use common::{run, show, Ember, Raw, RedisOracle};
use family_compare::{compare, Case};

const CASES: &[Case] = &[
    Case {
        name: "xread and xreadgroup block: served at once, errors, timeouts (keys on both shards)",
        commands: &[
            "XADD a 1 f v",
            "XADD b 2 g w",
            "SET s x",
            "XGROUP CREATE a g 0",
            "XREAD BLOCK 10 STREAMS a 0",
            "XREAD BLOCK 10 STREAMS a b 0 0",
            "XREAD COUNT 1 BLOCK 10 STREAMS b a 0 0",
            "XREAD BLOCK 10 STREAMS a $",
            "XREAD BLOCK 10 STREAMS a b $ $",
            "XREAD BLOCK 10 STREAMS s $",
            "XREAD BLOCK 10 STREAMS a s $ $",
            "XREAD BLOCK 10 STREAMS a x",
            "XREAD BLOCK 10 STREAMS a >",
            "XREAD BLOCK -1 STREAMS a $",
            "XREAD BLOCK x STREAMS a $",
            "XREADGROUP GROUP g c BLOCK 10 STREAMS a >",
            "XREADGROUP GROUP g c BLOCK 10 STREAMS a >",
            "XREADGROUP GROUP g c BLOCK 10 STREAMS a 0",
            "XREADGROUP GROUP g c BLOCK 10 STREAMS b >",
            "XREADGROUP GROUP nogroup c BLOCK 10 STREAMS a >",
            "XREADGROUP GROUP g c BLOCK 10 STREAMS s >",
            "XREADGROUP GROUP g c BLOCK 10 STREAMS a $",
            "XREADGROUP GROUP g c BLOCK 10 NOACK STREAMS a >",
            "MULTI",
            "XREAD BLOCK 0 STREAMS a $",
            "XREADGROUP GROUP g c BLOCK 0 STREAMS a >",
            "EXEC",
        ],
    },
    Case {
        name: "xadd ids, xlen, xrange and xrevrange with count and exclusive bounds",
        commands: &[
            "XADD a 1-1 f v",
            "XADD a 1-* g w",
            "XADD a 2 h x",
            "XADD a 5-* i y j z",
            "XLEN a",
            "XRANGE a - +",
            "XRANGE a - + COUNT 2",
            "XRANGE a (1-1 +",
            "XRANGE a 1 1",
            "XRANGE a (1-2 (5-0",
            "XRANGE a - + COUNT 0",
            "XRANGE a - + COUNT -1",
            "XREVRANGE a + -",
            "XREVRANGE a + - COUNT 1",
            "XREVRANGE a (5-0 -",
            "XRANGE nokey - +",
            "XRANGE a x +",
            "XRANGE a - + COUNT",
            "XRANGE a - + FOO 1",
            "XRANGE a (18446744073709551615-18446744073709551615 +",
            "XRANGE a - (0-0",
            "XLEN nokey",
            // One block: Redis's radix tree has two nodes for its one key, as Ember estimates.
            "XINFO STREAM a",
            "XDEL a 5-0",
            "XINFO STREAM a",
        ],
    },
    Case {
        name: "xadd errors and options",
        commands: &[
            "XADD a 0-0 f v",
            "XADD a 0 f v",
            "XADD a 5-5 f v",
            "XADD a 5-5 f v",
            "XADD a 4 f v",
            "XADD a 5-5 f",
            "XADD a x f v",
            "XADD a MAXLEN -1 6 f v",
            "XADD a MAXLEN x 6 f v",
            "XADD a LIMIT 10 6 f v",
            "XADD a MAXLEN 1 LIMIT 10 6 f v",
            "XADD a MAXLEN ~ 1 LIMIT x 6 f v",
            "XADD a MAXLEN ~ 1 LIMIT -1 6 f v",
            "XADD b NOMKSTREAM 1 f v",
            "EXISTS b",
            "SET s string",
            "XADD s 1 f v",
            "XADD s 0-0 f v",
            "XLEN s",
            "XADD a MAXLEN 2 7 f v",
            "XADD a MAXLEN = 2 8 f v",
            "XRANGE a - +",
            "XADD a MINID 8 9 f v",
            "XRANGE a - +",
            "XADD a MAXLEN ~ 1 10 f v",
            "XLEN a",
        ],
    },
    Case {
        name: "xdel and xtrim keep the key; xsetid",
        commands: &[
            "XADD a 1 f v",
            "XADD a 2 f v",
            "XADD a 3 f v",
            "XDEL a 2 9 2",
            "XDEL a x",
            "XDEL nokey 1",
            "XRANGE a - +",
            "XTRIM a MAXLEN 1",
            "XTRIM a MAXLEN 0",
            "EXISTS a",
            "XLEN a",
            "XTRIM a MINID 5",
            "XTRIM a LIMIT 10",
            "XTRIM a",
            "XTRIM a FOO",
            "XTRIM nokey MAXLEN 0",
            "XTRIM a MAXLEN 1 LIMIT 1",
            "XSETID a 2",
            "XSETID a 5",
            "XADD a 4 f v",
            "XADD a 6-* f v",
            "XSETID nokey 1",
            "XSETID a 9 ENTRIESADDED -1",
            "XSETID a 9 ENTRIESADDED 0",
            "XSETID a 9 MAXDELETEDID 10",
            "XSETID a 9 FOO 1",
            "XSETID a x",
        ],
    },
    Case {
        name: "xread over two shards, $, count, errors",
        commands: &[
            "XADD a 1 f v",
            "XADD a 2 g w",
            "XADD b 3 h x",
            "XREAD STREAMS a b 0 0",
            "XREAD COUNT 1 STREAMS a b 0 0",
            "XREAD STREAMS a b 1 3",
            "XREAD STREAMS a b $ $",
            "XREAD STREAMS a nokey 0 0",
            "XREAD STREAMS nokey 0",
            "XREAD COUNT 1 STREAMS a",
            "XREAD STREAMS a >",
            "XREAD GROUP g c STREAMS a 0",
            "XREAD NOACK STREAMS a 0",
            "XREAD STREAMS a x",
            "XREAD FOO STREAMS a 0",
            "XREAD COUNT 1",
            "XREAD BLOCK -1 STREAMS a 0",
            "XREAD BLOCK x STREAMS a 0",
            "XREAD BLOCK 0 STREAMS a 0",
            "SET s string",
            "XREAD STREAMS a s 0 0",
        ],
    },
    Case {
        name: "groups: create, read new and history, ack, pending summary, destroy",
        commands: &[
            "XADD a 1 f v",
            "XADD a 2 g w",
            "XGROUP CREATE a g 0",
            "XGROUP CREATE a g 0",
            "XGROUP CREATE nokey g $",
            "XGROUP CREATE b g $ MKSTREAM",
            "XLEN b",
            "XREADGROUP GROUP g alice COUNT 1 STREAMS a >",
            "XREADGROUP GROUP g bob STREAMS a >",
            "XREADGROUP GROUP g bob STREAMS a >",
            "XREADGROUP GROUP g alice STREAMS a 0",
            "XPENDING a g",
            "XDEL a 1",
            "XREADGROUP GROUP g alice STREAMS a 0",
            "XACK a g 1 2 9",
            "XACK a g x",
            "XACK a nogroup 1",
            "XACK nokey g 1",
            "XPENDING a g",
            "XADD a 3 h x",
            "XREADGROUP GROUP g carol NOACK STREAMS a b > >",
            "XPENDING a g",
            "XINFO GROUPS a",
            "XGROUP DESTROY a g",
            "XGROUP DESTROY a g",
            "XINFO GROUPS a",
        ],
    },
    Case {
        name: "group errors",
        commands: &[
            "XADD a 1 f v",
            "XGROUP CREATE a g $",
            "XREADGROUP GROUP nog c STREAMS a >",
            "XREADGROUP GROUP g c STREAMS nokey >",
            "XREADGROUP GROUP g c STREAMS a $",
            "XREADGROUP GROUP g c STREAMS a",
            "XREADGROUP COUNT 1 STREAMS a > > >",
            "XREADGROUP GROUP g c STREAMS a x",
            "XGROUP CREATE a",
            "XGROUP CREATE a h x",
            "XGROUP CREATE a h $ FOO",
            "XGROUP CREATE a h $ ENTRIESREAD -2",
            "XGROUP CREATE a h $ ENTRIESREAD 1",
            "XGROUP SETID a nog 0",
            "XGROUP SETID a g 0 ENTRIESREAD 1",
            "XGROUP SETID a g $ MKSTREAM",
            "XGROUP DESTROY a g x",
            "XGROUP CREATECONSUMER a g",
            "XGROUP CREATECONSUMER a nog c",
            "XGROUP CREATECONSUMER a g c",
            "XGROUP CREATECONSUMER a g c",
            "XGROUP DELCONSUMER a g c",
            "XGROUP DELCONSUMER a g c",
            "XGROUP FOO",
            "XGROUP HELP",
            "XGROUP HELP x",
            "XINFO GROUPS a",
            "XPENDING a nog",
            "XPENDING nokey g",
            "XPENDING a g - +",
            "XPENDING a g IDLE 10 - +",
            "XPENDING a g - + x",
            "XPENDING a g x + 1",
            "XPENDING a g - + 10",
            "XCLAIM nokey g c 0 1",
            "XCLAIM a g c x 1",
            "XCLAIM a g c 0 1 FOO",
            "XCLAIM a g c 0 1 IDLE x",
            "XCLAIM a g c 0 1 RETRYCOUNT x",
            "XAUTOCLAIM nokey g c 0 0",
            "XAUTOCLAIM a g c x 0",
            "XAUTOCLAIM a g c 0 x",
            "XAUTOCLAIM a g c 0 0 COUNT 0",
            "XAUTOCLAIM a g c 0 0 FOO",
            "SET s string",
            "XGROUP CREATE s g $",
            "XINFO STREAM s",
            "XINFO STREAM nokey",
            "XINFO GROUPS nokey",
            "XINFO CONSUMERS a nog",
            "XINFO FOO",
            "XINFO STREAM",
            "XINFO HELP",
        ],
    },
    Case {
        name: "group reads over two shards inside MULTI",
        commands: &[
            "XGROUP CREATE a g $ MKSTREAM",
            "XGROUP CREATE b g $ MKSTREAM",
            "MULTI",
            "XADD a 1 f v",
            "XADD b 2 g w",
            "XREADGROUP GROUP g c STREAMS a b > >",
            "XREAD STREAMS a b 0 0",
            "EXEC",
            "XPENDING a g",
            "XPENDING b g",
        ],
    },
    Case {
        name: "stream-node-max-entries shapes blocks and approximate trims",
        commands: &[
            "CONFIG SET stream-node-max-entries 2",
            "XADD a 1 f v",
            "XADD a 2 f v",
            "XADD a 3 f v",
            "XADD a 4 f v",
            "XADD a 5 f v",
            // Not XINFO STREAM: its radix-tree-nodes is an estimate (8 here in Redis, 4 in Ember).
            "XTRIM a MAXLEN ~ 2",
            "XLEN a",
            "XADD a MAXLEN ~ 1 6 f v",
            "XRANGE a - +",
            "CONFIG SET stream-node-max-entries 100",
            "CONFIG GET stream-node-max-entries",
            "CONFIG GET stream-node-max-bytes",
        ],
    },
    Case {
        name: "claims move ownership",
        commands: &[
            "XADD a 1 f v",
            "XADD a 2 g w",
            "XADD a 3 h x",
            "XGROUP CREATE a g 0",
            "XREADGROUP GROUP g alice STREAMS a >",
            "XCLAIM a g bob 0 1 2 JUSTID",
            "XPENDING a g",
            "XCLAIM a g bob 0 3",
            "XCLAIM a g carol 0 9 FORCE JUSTID",
            "XCLAIM a g carol 0 9",
            "XPENDING a g",
            "XDEL a 2",
            "XAUTOCLAIM a g dave 0 0 COUNT 1",
            "XAUTOCLAIM a g dave 0 0 JUSTID",
            "XPENDING a g",
            "XCLAIM a g erin 0 1 RETRYCOUNT 7 LASTID 5",
            "XINFO GROUPS a",
        ],
    },
];

#[test]
fn stream_commands_match_redis_server() {
    compare(CASES, &[]);
}

#[test]
fn block_with_data_serves_and_without_times_out() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    run(&mut con, &[b"XADD", b"a", b"1", b"f", b"v"]).unwrap();
    let served = show(&run(
        &mut con,
        &[b"XREAD", b"BLOCK", b"10", b"STREAMS", b"a", b"0"],
    ));
    assert_eq!(served, "[[\"a\", [[\"1-0\", [\"f\", \"v\"]]]]]");
    let waited = show(&run(
        &mut con,
        &[b"XREAD", b"BLOCK", b"10", b"STREAMS", b"a", b"$"],
    ));
    assert_eq!(waited, "(nil)");
}

/// Every keyspace event the stream commands raise, in order, with every class on.
fn stream_events(port: u16, steps: &[&str]) -> Vec<String> {
    let mut con = common::connect(port, false);
    run(&mut con, &[b"FLUSHALL"]).unwrap();
    run(
        &mut con,
        &[b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA"],
    )
    .unwrap();
    let mut subscriber = Raw::connect(port);
    subscriber.command(&[b"PSUBSCRIBE", b"__key*__:*"]);
    subscriber.command(&[b"SUBSCRIBE", b"end"]);
    for step in steps {
        let args: Vec<&[u8]> = step.split(' ').map(str::as_bytes).collect();
        let _ = run(&mut con, &args);
    }
    run(&mut con, &[b"PUBLISH", b"end", b"."]).unwrap();
    let mut events = Vec::new();
    loop {
        let reply = String::from_utf8_lossy(&subscriber.reply()).into_owned();
        let parts: Vec<&str> = reply.split("\r\n").collect();
        if parts.get(2) == Some(&"message") {
            return events;
        }
        events.push(format!("{} {}", parts[6], parts[8]));
    }
}

#[test]
fn stream_keyspace_events_match_redis_server() {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    let mut steps = Vec::new();
    // Keys on both shards of two.
    for key in ["a", "b"] {
        for step in [
            "XADD {k} 1 f v",
            "XADD {k} NOMKSTREAM 2 f v",
            "XADD {k} MAXLEN 1 3 f v",
            "XADD {k} MAXLEN 5 4 f v",
            "XADD {k} 1 f v",
            "XADD missing NOMKSTREAM 1 f v",
            "XDEL {k} 9",
            "XDEL {k} 3",
            "XTRIM {k} MAXLEN 5",
            "XTRIM {k} MAXLEN 0",
            "XSETID {k} 10",
            "XSETID missing 10",
            "XGROUP CREATE {k} g $",
            "XGROUP CREATE {k} g $",
            "XGROUP CREATE new{k} g $ MKSTREAM",
            "XGROUP SETID {k} g 0",
            "XGROUP CREATECONSUMER {k} g alice",
            "XGROUP CREATECONSUMER {k} g alice",
            "XADD {k} 11 f v",
            "XREADGROUP GROUP g bob STREAMS {k} >",
            "XREADGROUP GROUP g bob STREAMS {k} >",
            "XCLAIM {k} g carol 0 11-0",
            "XAUTOCLAIM {k} g dave 0 0",
            "XACK {k} g 11",
            "XGROUP DELCONSUMER {k} g nobody",
            "XGROUP DELCONSUMER {k} g bob",
            "XGROUP DESTROY {k} g",
            "XGROUP DESTROY {k} g",
        ] {
            steps.push(step.replace("{k}", key));
        }
    }
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    let ours = stream_events(ember.port, &steps);
    let theirs = stream_events(oracle.port, &steps);
    assert!(theirs.len() > 30, "redis-server raised {theirs:?}");
    assert_eq!(ours, theirs);
}

#[test]
fn plus_reads_the_last_entry() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let cases: &[(&str, &[&[u8]], &str)] = &[
        ("missing key", &[b"XREAD", b"STREAMS", b"a", b"+"], "(nil)"),
        ("one entry", &[b"XADD", b"a", b"1", b"f", b"v"], "\"1-0\""),
        (
            "reads it",
            &[b"XREAD", b"STREAMS", b"a", b"+"],
            "[[\"a\", [[\"1-0\", [\"f\", \"v\"]]]]]",
        ),
        ("another", &[b"XADD", b"a", b"2", b"g", b"w"], "\"2-0\""),
        (
            "only the last",
            &[b"XREAD", b"COUNT", b"5", b"STREAMS", b"a", b"+"],
            "[[\"a\", [[\"2-0\", [\"g\", \"w\"]]]]]",
        ),
    ];
    for (name, command, expected) in cases {
        assert_eq!(show(&run(&mut con, command)), *expected, "{name}");
    }
}

#[test]
fn idle_times_and_info_shapes() {
    let ember = Ember::start(2);
    let mut con = ember.connect(true);
    for command in [
        &[&b"XADD"[..], b"a", b"1", b"f", b"v"][..],
        &[b"XGROUP", b"CREATE", b"a", b"g", b"0"],
        &[
            b"XREADGROUP",
            b"GROUP",
            b"g",
            b"alice",
            b"STREAMS",
            b"a",
            b">",
        ],
    ] {
        run(&mut con, command).unwrap();
    }
    let pending = show(&run(
        &mut con,
        &[b"XPENDING", b"a", b"g", b"-", b"+", b"10"],
    ));
    assert!(
        pending.starts_with("[[\"1-0\", \"alice\", (integer) "),
        "{pending}"
    );
    assert!(pending.ends_with(", (integer) 1]]"), "{pending}");
    let idle_filtered = show(&run(
        &mut con,
        &[
            b"XPENDING",
            b"a",
            b"g",
            b"IDLE",
            b"100000",
            b"-",
            b"+",
            b"10",
        ],
    ));
    assert_eq!(idle_filtered, "[]");
    let stream = show(&run(&mut con, &[b"XINFO", b"STREAM", b"a"]));
    for expected in [
        "\"length\": (integer) 1",
        "\"last-generated-id\": \"1-0\"",
        "\"entries-added\": (integer) 1",
        "\"groups\": (integer) 1",
        "\"first-entry\": [\"1-0\", [\"f\", \"v\"]]",
    ] {
        assert!(stream.contains(expected), "{expected} in {stream}");
    }
    let full = show(&run(&mut con, &[b"XINFO", b"STREAM", b"a", b"FULL"]));
    for expected in [
        "\"entries\": [[\"1-0\"",
        "\"pel-count\": (integer) 1",
        "\"name\": \"alice\"",
    ] {
        assert!(full.contains(expected), "{expected} in {full}");
    }
    let consumers = show(&run(&mut con, &[b"XINFO", b"CONSUMERS", b"a", b"g"]));
    assert!(
        consumers.contains("\"name\": \"alice\", \"pending\": (integer) 1"),
        "{consumers}"
    );
}

#[test]
fn automatic_ids_follow_the_clock_and_grow() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let first: String = redis::cmd("XADD")
        .arg("a")
        .arg("*")
        .arg("f")
        .arg("v")
        .query(&mut con)
        .unwrap();
    let second: String = redis::cmd("XADD")
        .arg("a")
        .arg("*")
        .arg("f")
        .arg("v")
        .query(&mut con)
        .unwrap();
    let parse = |id: &str| -> (u64, u64) {
        let (ms, seq) = id.split_once('-').expect("ms-seq");
        (ms.parse().unwrap(), seq.parse().unwrap())
    };
    let (first_ms, _) = parse(&first);
    assert!(
        first_ms >= now_ms && first_ms < now_ms + 60_000,
        "{first} vs now {now_ms}"
    );
    assert!(parse(&second) > parse(&first), "{second} after {first}");
    // A future explicit ID: `*` then continues from it, in the same millisecond.
    let future = format!("{}-5", now_ms + 3_600_000);
    run(&mut con, &[b"XADD", b"a", future.as_bytes(), b"f", b"v"]).unwrap();
    let next: String = redis::cmd("XADD")
        .arg("a")
        .arg("*")
        .arg("f")
        .arg("v")
        .query(&mut con)
        .unwrap();
    assert_eq!(next, format!("{}-6", now_ms + 3_600_000));
}

/// Runs each command (words split on spaces) in turn, checking its reply in [`show`]'s form.
fn expect_replies(con: &mut redis::Connection, steps: &[(&str, &str)]) {
    for (command, expected) in steps {
        let args: Vec<&[u8]> = command.split(' ').map(str::as_bytes).collect();
        assert_eq!(show(&run(con, &args)), *expected, "{command}");
    }
}

/// Redis 8.2's XDELEX, XACKDEL and the KEEPREF / DELREF / ACKED options of XTRIM and XADD. The
/// redis-server the tests start is 7.0, without them: the replies are the documented ones
/// (-1 no such entry, or nothing pending in the group for XACKDEL; 1 deleted; 2 kept because a
/// group has not read or acknowledged it).
#[test]
fn deletions_that_respect_consumer_groups() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    expect_replies(
        &mut con,
        &[
            ("XADD s 1-0 f v", "\"1-0\""),
            ("XADD s 2-0 f v", "\"2-0\""),
            ("XADD s 3-0 f v", "\"3-0\""),
            ("XADD s 4-0 f v", "\"4-0\""),
            ("XADD s 5-0 f v", "\"5-0\""),
            ("XGROUP CREATE s g 0", "+OK"),
            ("XREADGROUP GROUP g c COUNT 3 STREAMS s >", "[[\"s\", [[\"1-0\", [\"f\", \"v\"]], [\"2-0\", [\"f\", \"v\"]], [\"3-0\", [\"f\", \"v\"]]]]]"),
            ("XACK s g 3-0", "(integer) 1"),
            // 1 is pending, 3 acknowledged, 4 never delivered, 9 absent.
            ("XDELEX s ACKED IDS 4 1-0 3-0 4-0 9-0", "[(integer) 2, (integer) 1, (integer) 2, (integer) -1]"),
            ("XLEN s", "(integer) 4"),
            // KEEPREF (the default) leaves 1 in the pending list; DELREF clears it even when the
            // entry is gone.
            ("XDELEX s IDS 1 1-0", "[(integer) 1]"),
            ("XPENDING s g", "[(integer) 2, \"1-0\", \"2-0\", [[\"c\", \"2\"]]]"),
            ("XDELEX s DELREF IDS 1 1-0", "[(integer) -1]"),
            ("XPENDING s g", "[(integer) 1, \"2-0\", \"2-0\", [[\"c\", \"1\"]]]"),
            // XACKDEL: acknowledged and deleted; a second time nothing is pending.
            ("XACKDEL s g IDS 2 2-0 2-0", "[(integer) 1, (integer) -1]"),
            ("XACKDEL s nogroup IDS 1 4-0", "[(integer) -1]"),
            ("XACKDEL missing g IDS 1 4-0", "[(integer) -1]"),
            ("XLEN s", "(integer) 2"),
            // Arguments: the IDS block and the policy in either order, once each.
            ("XDELEX s IDS 1 4-0 KEEPREF", "[(integer) 1]"),
            ("XDELEX s IDS 2 5-0", "(error) ERR The `numids` parameter must match the number of arguments"),
            ("XDELEX s IDS 0 5-0", "(error) ERR Number of IDs must be a positive integer"),
            ("XDELEX s IDS x 5-0", "(error) ERR Number of IDs must be a positive integer"),
            ("XDELEX s KEEPREF DELREF IDS 1 5-0", "(error) ERR syntax error"),
            ("XDELEX s FOO IDS 1 5-0", "(error) ERR syntax error"),
            ("XDELEX s ACKED KEEPREF IDS", "(error) ERR syntax error"),
            ("XDELEX s IDS 1 bad", "(error) ERR Invalid stream ID specified as stream command argument"),
            ("XDELEX nostream IDS 1 5-0", "[(integer) -1]"),
            ("SET str x", "+OK"),
            ("XDELEX str IDS 1 5-0", "(error) WRONGTYPE Operation against a key holding the wrong kind of value"),
            ("XLEN s", "(integer) 1"),
        ],
    );
    // Trimming: ACKED stops at the first entry the group has pending, DELREF clears the
    // references of what it trims.
    for id in 1..=10 {
        let _: String = redis::cmd("XADD")
            .arg("t")
            .arg(format!("{id}-0"))
            .arg("f")
            .arg("v")
            .query(&mut con)
            .unwrap();
    }
    expect_replies(
        &mut con,
        &[
            ("XGROUP CREATE t g 0", "+OK"),
            (
                "XREADGROUP GROUP g c COUNT 2 STREAMS t >",
                "[[\"t\", [[\"1-0\", [\"f\", \"v\"]], [\"2-0\", [\"f\", \"v\"]]]]]",
            ),
            ("XTRIM t MAXLEN 0 ACKED", "(integer) 0"),
            ("XACK t g 1-0", "(integer) 1"),
            ("XTRIM t MAXLEN 0 ACKED", "(integer) 1"),
            ("XADD t ACKED MAXLEN 1 11-0 f v", "\"11-0\""),
            ("XLEN t", "(integer) 10"),
            ("XTRIM t MAXLEN 5 DELREF", "(integer) 5"),
            ("XPENDING t g", "[(integer) 0, (nil), (nil), (nil)]"),
            ("XTRIM t MINID 9-0 KEEPREF", "(integer) 2"),
            ("XLEN t", "(integer) 3"),
        ],
    );
}

/// Redis 8.6's idempotent production: XADD with IDMP or IDMPAUTO adds a message once per
/// (producer, idempotent ID) while the stream remembers it, answering the first entry's ID to
/// a repeat; XCFGSET sets how long and how many, and forgets; XINFO STREAM counts.
#[test]
fn idempotent_production_adds_a_message_once() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let xadd = |con: &mut redis::Connection, args: &[&str]| -> String {
        let mut command = redis::cmd("XADD");
        command.arg("s");
        for arg in args {
            command.arg(*arg);
        }
        command.query(con).unwrap()
    };
    let first = xadd(&mut con, &["IDMP", "p1", "order-1", "*", "item", "x"]);
    // A retry, even with other fields, is the same message for the same producer and iid.
    assert_eq!(
        xadd(&mut con, &["IDMP", "p1", "order-1", "*", "item", "y"]),
        first
    );
    // Another producer's iid is its own.
    let other = xadd(&mut con, &["IDMP", "p2", "order-1", "*", "item", "x"]);
    assert_ne!(other, first);
    // IDMPAUTO: the same fields in any order are one message; other values are another.
    let auto = xadd(&mut con, &["IDMPAUTO", "p1", "*", "f", "1", "g", "2"]);
    assert_eq!(
        xadd(&mut con, &["IDMPAUTO", "p1", "*", "g", "2", "f", "1"]),
        auto
    );
    assert_ne!(
        xadd(&mut con, &["IDMPAUTO", "p1", "*", "g", "2", "f", "3"]),
        auto
    );
    let info: Vec<redis::Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg("s")
        .query(&mut con)
        .unwrap();
    let text = show(&Ok(redis::Value::Array(info)));
    for expected in [
        "\"length\", (integer) 4",
        "\"idmp-duration\", (integer) 100",
        "\"idmp-maxsize\", (integer) 100",
        "\"pids-tracked\", (integer) 2",
        "\"iids-tracked\", (integer) 4",
        "\"iids-added\", (integer) 4",
        "\"iids-duplicates\", (integer) 2",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    expect_replies(
        &mut con,
        &[
            (
                "XADD s IDMP p1 order-9 5-0 f v",
                "(error) ERR IDMP and IDMPAUTO can be used only with an auto-generated ID",
            ),
            (
                "XCFGSET s",
                "(error) ERR At least one of IDMP-DURATION or IDMP-MAXSIZE must be specified",
            ),
            (
                "XCFGSET s IDMP-DURATION 0",
                "(error) ERR IDMP-DURATION must be between 1 and 86400",
            ),
            (
                "XCFGSET s IDMP-MAXSIZE 10001",
                "(error) ERR IDMP-MAXSIZE must be between 1 and 10000",
            ),
            (
                "XCFGSET s IDMP-DURATION 5 FOO 1",
                "(error) ERR syntax error",
            ),
            ("XCFGSET missing IDMP-DURATION 5", "(error) ERR no such key"),
            ("XCFGSET s IDMP-DURATION 1 IDMP-MAXSIZE 1", "+OK"),
        ],
    );
    // XCFGSET forgot every iid: order-1 is new again; MAXSIZE 1 keeps a producer's newest.
    let again = xadd(&mut con, &["IDMP", "p1", "order-1", "*", "item", "x"]);
    assert_ne!(again, first);
    let newer = xadd(&mut con, &["IDMP", "p1", "order-2", "*", "item", "x"]);
    assert_ne!(
        xadd(&mut con, &["IDMP", "p1", "order-1", "*", "item", "x"]),
        again
    );
    assert_ne!(
        xadd(&mut con, &["IDMP", "p1", "order-2", "*", "item", "x"]),
        newer
    );
    // A stream that never used IDMP answers XINFO STREAM as Redis 7 does.
    let _: String = redis::cmd("XADD")
        .arg("plain")
        .arg("*")
        .arg("f")
        .arg("v")
        .query(&mut con)
        .unwrap();
    let info: Vec<redis::Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg("plain")
        .query(&mut con)
        .unwrap();
    assert_eq!(info.len(), 20, "ten fields, as Redis 7");
}
