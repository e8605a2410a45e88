//! Blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP) and
//! CLIENT UNBLOCK against `ember --threads 2`, through the redis crate.
//!
//! The keys `b` and `a` live on different shards of two (slots 3300 and 15495), and the tests
//! open several connections, which the listener spreads over both shards, so every
//! combination of the blocked connection's shard, the key's shard and the pusher's shard is
//! exercised. A test never sleeps to synchronise: it polls INFO's `blocked_clients` until the
//! clients it started are blocked.

mod common;

use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{show, Ember};
use redis::Value;

/// Keys on shard 0 and shard 1 of two.
const KEY_SHARD_0: &str = "b";
const KEY_SHARD_1: &str = "a";
/// How long a test waits for clients to block before it fails.
const BLOCK_DEADLINE: Duration = Duration::from_secs(10);

fn blocked_clients(con: &mut redis::Connection) -> usize {
    let info: String = redis::cmd("INFO").arg("clients").query(con).unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("blocked_clients:"))
        .and_then(|count| count.trim().parse().ok())
        .expect("INFO clients has blocked_clients")
}

/// Polls until exactly `count` clients are blocked.
fn wait_blocked(con: &mut redis::Connection, count: usize) {
    let deadline = Instant::now() + BLOCK_DEADLINE;
    loop {
        let blocked = blocked_clients(con);
        if blocked == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{blocked} clients blocked, expected {count}"
        );
        thread::yield_now();
    }
}

/// Sends `args` on a fresh connection in a thread; the reply (shown) comes from the handle.
fn block(ember: &Ember, args: &[&str]) -> JoinHandle<String> {
    let mut con = ember.connect(false);
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    thread::spawn(move || {
        let mut command = redis::cmd(&args[0]);
        for arg in &args[1..] {
            command.arg(arg);
        }
        show(&command.query::<Value>(&mut con))
    })
}

fn run(con: &mut redis::Connection, args: &[&str]) -> String {
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    show(&command.query::<Value>(con))
}

#[test]
fn wake_up_from_any_shard() {
    let ember = Ember::start(2);
    let mut pushers: Vec<redis::Connection> = (0..3).map(|_| ember.connect(false)).collect();
    let mut control = ember.connect(false);
    for round in 0..4 {
        for key in [KEY_SHARD_0, KEY_SHARD_1] {
            let pusher = &mut pushers[round % 3];
            let waiter = block(&ember, &["BLPOP", "nothing", key, "0"]);
            wait_blocked(&mut control, 1);
            let value = format!("v{round}");
            assert_eq!(run(pusher, &["RPUSH", key, &value]), "(integer) 1");
            assert_eq!(waiter.join().unwrap(), format!("[\"{key}\", \"{value}\"]"));
            assert_eq!(run(&mut control, &["EXISTS", key]), "(integer) 0");
        }
    }
    wait_blocked(&mut control, 0);
}

#[test]
fn first_blocked_first_served() {
    let ember = Ember::start(2);
    let mut control = ember.connect(false);
    for key in [KEY_SHARD_0, KEY_SHARD_1] {
        let mut waiters = Vec::new();
        for count in 1..=3 {
            waiters.push(block(&ember, &["BLPOP", key, "0"]));
            wait_blocked(&mut control, count);
        }
        assert_eq!(
            run(&mut control, &["RPUSH", key, "x", "y", "z"]),
            "(integer) 3"
        );
        let replies: Vec<String> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
        assert_eq!(
            replies,
            ["x", "y", "z"].map(|element| format!("[\"{key}\", \"{element}\"]"))
        );
        assert_eq!(run(&mut control, &["EXISTS", key]), "(integer) 0");
    }
}

#[test]
fn timeouts() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let cases: &[(&str, &[&str], &str)] = &[
        ("blpop", &["BLPOP", "a", "b", "0.1"], "(nil)"),
        ("brpop", &["BRPOP", "a", "0.1"], "(nil)"),
        (
            "blmove",
            &["BLMOVE", "a", "b", "LEFT", "RIGHT", "0.1"],
            "(nil)",
        ),
        ("brpoplpush", &["BRPOPLPUSH", "a", "b", "0.1"], "(nil)"),
        ("blmpop", &["BLMPOP", "0.1", "2", "a", "b", "LEFT"], "(nil)"),
        ("bzpopmin", &["BZPOPMIN", "a", "0.1"], "(nil)"),
        ("bzpopmax", &["BZPOPMAX", "a", "b", "0.1"], "(nil)"),
        (
            "bzmpop",
            &["BZMPOP", "0.1", "1", "a", "MAX", "COUNT", "2"],
            "(nil)",
        ),
    ];
    for (name, args, expected) in cases {
        let started = Instant::now();
        assert_eq!(run(&mut con, args), *expected, "{name}");
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "{name} returned after {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn argument_errors() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "negative",
            &["BLPOP", "a", "-1"],
            "(error) ERR timeout is negative",
        ),
        (
            "not a float",
            &["BLPOP", "a", "x"],
            "(error) ERR timeout is not a float or out of range",
        ),
        (
            "huge",
            &["BRPOP", "a", "1e20"],
            "(error) ERR timeout is negative",
        ),
        (
            "bad end",
            &["BLMOVE", "a", "b", "UP", "LEFT", "0"],
            "(error) ERR syntax error",
        ),
        (
            "numkeys zero",
            &["BLMPOP", "0", "0", "a", "LEFT"],
            "(error) ERR numkeys should be greater than 0",
        ),
        (
            "numkeys past",
            &["BLMPOP", "0", "3", "a", "LEFT"],
            "(error) ERR syntax error",
        ),
        (
            "count zero",
            &["BZMPOP", "0", "1", "a", "MIN", "COUNT", "0"],
            "(error) ERR count should be greater than 0",
        ),
        (
            "zmpop side",
            &["BZMPOP", "0", "1", "a", "LEFT"],
            "(error) ERR syntax error",
        ),
        (
            "arity",
            &["BLPOP", "a"],
            "(error) ERR wrong number of arguments for 'blpop' command",
        ),
    ];
    for (name, args, expected) in cases {
        assert_eq!(run(&mut con, args), *expected, "{name}");
    }
    run(&mut con, &["SET", "s", "x"]);
    assert_eq!(
        run(&mut con, &["BLPOP", "nothing", "s", "0"]),
        "(error) WRONGTYPE Operation against a key holding the wrong kind of value"
    );
}

#[test]
fn served_at_once_when_a_key_has_elements() {
    let ember = Ember::start(2);
    let mut con = ember.connect(true);
    run(&mut con, &["RPUSH", KEY_SHARD_1, "1", "2", "3"]);
    run(&mut con, &["ZADD", "z", "1", "m", "2", "n"]);
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "blpop skips empty keys",
            &["BLPOP", "none", KEY_SHARD_1, "0"],
            "[\"a\", \"1\"]",
        ),
        ("brpop", &["BRPOP", KEY_SHARD_1, "0"], "[\"a\", \"3\"]"),
        (
            "blmpop",
            &[
                "BLMPOP",
                "0",
                "2",
                "none",
                KEY_SHARD_1,
                "RIGHT",
                "COUNT",
                "5",
            ],
            "[\"a\", [\"2\"]]",
        ),
        (
            "bzpopmax",
            &["BZPOPMAX", "z", "0"],
            "[\"z\", \"n\", (double) 2]",
        ),
        (
            "bzmpop",
            &["BZMPOP", "0", "1", "z", "MIN", "COUNT", "3"],
            "[\"z\", [[\"m\", (double) 1]]]",
        ),
    ];
    for (name, args, expected) in cases {
        assert_eq!(run(&mut con, args), *expected, "{name}");
    }
    assert_eq!(run(&mut con, &["EXISTS", KEY_SHARD_1, "z"]), "(integer) 0");
}

#[test]
fn multi_exec_wakes_with_the_state_after_exec() {
    let ember = Ember::start(2);
    let mut control = ember.connect(false);
    let mut pusher = ember.connect(false);
    for key in [KEY_SHARD_0, KEY_SHARD_1] {
        // A push popped again inside the transaction leaves nothing to serve.
        let waiter = block(&ember, &["BLPOP", key, "0"]);
        wait_blocked(&mut control, 1);
        let replies: (i64, String) = redis::pipe()
            .atomic()
            .cmd("LPUSH")
            .arg(key)
            .arg("gone")
            .cmd("LPOP")
            .arg(key)
            .query(&mut pusher)
            .unwrap();
        assert_eq!(replies, (1, "gone".to_string()));
        // Served from the list as EXEC left it: "b" at the head, not "a" pushed first.
        let _: () = redis::pipe()
            .atomic()
            .cmd("RPUSH")
            .arg(key)
            .arg("a")
            .ignore()
            .cmd("LPUSH")
            .arg(key)
            .arg("b")
            .ignore()
            .query(&mut pusher)
            .unwrap();
        assert_eq!(waiter.join().unwrap(), format!("[\"{key}\", \"b\"]"));
        assert_eq!(run(&mut control, &["LRANGE", key, "0", "-1"]), "[\"a\"]");
        run(&mut control, &["DEL", key]);
    }
}

#[test]
fn inside_multi_a_blocking_pop_does_not_block() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let replies: Vec<Value> = redis::pipe()
        .atomic()
        .cmd("BLPOP")
        .arg("a")
        .arg(0)
        .cmd("BLMOVE")
        .arg("a")
        .arg("b")
        .arg("LEFT")
        .arg("LEFT")
        .arg(0)
        .cmd("BZPOPMIN")
        .arg("z")
        .arg(0)
        .query(&mut con)
        .unwrap();
    let shown: Vec<String> = replies.iter().map(common::show_value).collect();
    assert_eq!(shown, ["(nil)", "(nil)", "(nil)"]);
}

#[test]
fn destinations_of_moves_wake_waiters() {
    let ember = Ember::start(2);
    let mut control = ember.connect(false);
    let mut mover = ember.connect(false);
    for (source, destination) in [(KEY_SHARD_0, KEY_SHARD_1), (KEY_SHARD_1, "d")] {
        let waiter = block(&ember, &["BRPOP", destination, "0"]);
        wait_blocked(&mut control, 1);
        run(&mut mover, &["RPUSH", source, "moved"]);
        assert_eq!(
            run(&mut mover, &["LMOVE", source, destination, "LEFT", "RIGHT"]),
            "\"moved\""
        );
        assert_eq!(
            waiter.join().unwrap(),
            format!("[\"{destination}\", \"moved\"]")
        );
        assert_eq!(
            run(&mut control, &["EXISTS", source, destination]),
            "(integer) 0"
        );
    }
}

#[test]
fn blmove_within_and_across_shards() {
    let ember = Ember::start(2);
    let mut control = ember.connect(false);
    let cases: &[(&str, &str, &str)] = &[
        ("across shards", KEY_SHARD_1, KEY_SHARD_0),
        ("other way", KEY_SHARD_0, KEY_SHARD_1),
        ("same shard", KEY_SHARD_1, "d"),
        ("same key", KEY_SHARD_0, KEY_SHARD_0),
    ];
    for (name, source, destination) in cases {
        let waiter = block(
            &ember,
            &["BLMOVE", source, destination, "LEFT", "RIGHT", "0"],
        );
        wait_blocked(&mut control, 1);
        run(&mut control, &["RPUSH", source, "x"]);
        assert_eq!(waiter.join().unwrap(), "\"x\"", "{name}");
        assert_eq!(
            run(&mut control, &["LRANGE", destination, "0", "-1"]),
            "[\"x\"]",
            "{name}"
        );
        if source != destination {
            assert_eq!(
                run(&mut control, &["EXISTS", source]),
                "(integer) 0",
                "{name}"
            );
        }
        run(&mut control, &["DEL", destination]);
    }
    let waiter = block(&ember, &["BRPOPLPUSH", KEY_SHARD_1, KEY_SHARD_0, "0"]);
    wait_blocked(&mut control, 1);
    run(&mut control, &["RPUSH", KEY_SHARD_1, "1", "2"]);
    assert_eq!(waiter.join().unwrap(), "\"2\"");
    assert_eq!(
        run(&mut control, &["LRANGE", KEY_SHARD_0, "0", "-1"]),
        "[\"2\"]"
    );
    assert_eq!(
        run(&mut control, &["LRANGE", KEY_SHARD_1, "0", "-1"]),
        "[\"1\"]"
    );
}

#[test]
fn a_destination_of_another_type_ends_the_wait() {
    let ember = Ember::start(2);
    let mut control = ember.connect(false);
    // "{t}a" and "{t}b" share a shard: the move is served there in one step. "a" and "b" do
    // not: the source's shard pops and the push fails at home, which puts the element back.
    for (source, destination) in [("{t}a", "{t}b"), (KEY_SHARD_1, KEY_SHARD_0)] {
        run(&mut control, &["SET", destination, "not a list"]);
        let waiter = block(&ember, &["BRPOPLPUSH", source, destination, "0"]);
        wait_blocked(&mut control, 1);
        run(&mut control, &["RPUSH", source, "stays"]);
        assert_eq!(
            waiter.join().unwrap(),
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value"
        );
        assert_eq!(
            run(&mut control, &["LRANGE", source, "0", "-1"]),
            "[\"stays\"]"
        );
        run(&mut control, &["DEL", source, destination]);
    }
}

#[test]
fn keys_on_both_shards_serve_once() {
    let ember = Ember::start(2);
    let mut control = ember.connect(false);
    for key in [KEY_SHARD_0, KEY_SHARD_1] {
        let waiter = block(&ember, &["BLPOP", KEY_SHARD_0, KEY_SHARD_1, "0"]);
        wait_blocked(&mut control, 1);
        run(&mut control, &["RPUSH", key, "one", "two"]);
        assert_eq!(waiter.join().unwrap(), format!("[\"{key}\", \"one\"]"));
        assert_eq!(run(&mut control, &["LRANGE", key, "0", "-1"]), "[\"two\"]");
        run(&mut control, &["DEL", key]);
        wait_blocked(&mut control, 0);
    }
}

#[test]
fn sorted_set_and_multi_pops_wake() {
    let ember = Ember::start(2);
    let mut control = ember.connect(false);
    let cases: &[(&str, &[&str], &[&str], &str)] = &[
        (
            "bzpopmin",
            &["BZPOPMIN", "z1", "0"],
            &["ZADD", "z1", "2", "b", "1", "a"],
            "[\"z1\", \"a\", \"1\"]",
        ),
        (
            "bzpopmax",
            &["BZPOPMAX", "z2", "0"],
            &["ZADD", "z2", "2", "b", "1", "a"],
            "[\"z2\", \"b\", \"2\"]",
        ),
        (
            "bzmpop",
            &["BZMPOP", "0", "2", "z3", "z4", "MAX", "COUNT", "5"],
            &["ZADD", "z4", "2", "b", "1", "a"],
            "[\"z4\", [[\"b\", \"2\"], [\"a\", \"1\"]]]",
        ),
        (
            "blmpop",
            &["BLMPOP", "0", "2", "l1", "l2", "RIGHT", "COUNT", "2"],
            &["RPUSH", "l2", "x", "y", "z"],
            "[\"l2\", [\"z\", \"y\"]]",
        ),
    ];
    for (name, blocking, push, expected) in cases {
        let waiter = block(&ember, blocking);
        wait_blocked(&mut control, 1);
        run(&mut control, push);
        assert_eq!(waiter.join().unwrap(), *expected, "{name}");
    }
    assert_eq!(run(&mut control, &["LRANGE", "l2", "0", "-1"]), "[\"x\"]");
}

#[test]
fn a_disconnected_client_takes_nothing() {
    let ember = Ember::start(2);
    let mut control = ember.connect(false);
    for key in [KEY_SHARD_0, KEY_SHARD_1] {
        let mut raw = ember.raw();
        raw.send(&common::multibulk(&[b"BLPOP", key.as_bytes(), b"0"]));
        wait_blocked(&mut control, 1);
        drop(raw);
        wait_blocked(&mut control, 0);
        run(&mut control, &["RPUSH", key, "stays"]);
        assert_eq!(
            run(&mut control, &["LRANGE", key, "0", "-1"]),
            "[\"stays\"]"
        );
        run(&mut control, &["DEL", key]);
    }
}

#[test]
fn client_unblock() {
    let ember = Ember::start(2);
    let mut control = ember.connect(false);
    let cases: &[(&str, &[&str], &str)] = &[
        ("timeout by default", &[], "(nil)"),
        ("timeout", &["TIMEOUT"], "(nil)"),
        (
            "error",
            &["ERROR"],
            "(error) UNBLOCKED client unblocked via CLIENT UNBLOCK",
        ),
    ];
    for (name, reason, expected) in cases {
        let mut con = ember.connect(false);
        let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut con).unwrap();
        let waiter = thread::spawn(move || {
            show(
                &redis::cmd("BLPOP")
                    .arg(KEY_SHARD_1)
                    .arg(0)
                    .query::<Value>(&mut con),
            )
        });
        wait_blocked(&mut control, 1);
        let id = id.to_string();
        let mut args = vec!["CLIENT", "UNBLOCK", id.as_str()];
        args.extend_from_slice(reason);
        assert_eq!(run(&mut control, &args), "(integer) 1", "{name}");
        assert_eq!(waiter.join().unwrap(), *expected, "{name}");
        assert_eq!(
            run(&mut control, &args),
            "(integer) 0",
            "{name}: no longer blocked"
        );
    }
    let errors: &[(&[&str], &str)] = &[
        (
            &["CLIENT", "UNBLOCK", "x"],
            "(error) ERR value is not an integer or out of range",
        ),
        (
            &["CLIENT", "UNBLOCK", "1", "LATER"],
            "(error) ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
        ),
        (
            &["CLIENT", "UNBLOCK"],
            "(error) ERR wrong number of arguments for 'client|unblock' command",
        ),
    ];
    for (args, expected) in errors {
        assert_eq!(run(&mut control, args), *expected);
    }
}

#[test]
fn a_blocked_client_does_not_stop_its_shard() {
    let ember = Ember::start(2);
    let mut control = ember.connect(false);
    let waiters: Vec<_> = (0..4)
        .map(|_| block(&ember, &["BLPOP", KEY_SHARD_0, KEY_SHARD_1, "0"]))
        .collect();
    wait_blocked(&mut control, 4);
    for index in 0..20 {
        let mut con = ember.connect(false);
        let key = format!("other{index}");
        assert_eq!(run(&mut con, &["SET", &key, "v"]), "+OK");
        assert_eq!(run(&mut con, &["GET", &key]), "\"v\"");
    }
    run(&mut control, &["RPUSH", KEY_SHARD_0, "1", "2"]);
    run(&mut control, &["RPUSH", KEY_SHARD_1, "3", "4"]);
    let mut replies: Vec<String> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
    replies.sort();
    assert_eq!(
        replies,
        [
            "[\"a\", \"3\"]",
            "[\"a\", \"4\"]",
            "[\"b\", \"1\"]",
            "[\"b\", \"2\"]"
        ]
    );
}

// XREAD BLOCK and XREADGROUP BLOCK.

/// An XREAD / XREADGROUP reply of one stream with one entry `id` holding `field value`.
fn one_entry(key: &str, id: &str, field: &str, value: &str) -> String {
    format!("[[\"{key}\", [[\"{id}\", [\"{field}\", \"{value}\"]]]]]")
}

#[test]
fn xread_block_wakes_from_any_shard_script_and_exec() {
    let ember = Ember::start(2);
    let mut writers: Vec<redis::Connection> = (0..3).map(|_| ember.connect(false)).collect();
    let mut control = ember.connect(false);
    let mut sequence = 0;
    for round in 0..3 {
        for key in [KEY_SHARD_0, KEY_SHARD_1] {
            sequence += 1;
            let id = format!("{sequence}-0");
            let waiter = block(
                &ember,
                &["XREAD", "BLOCK", "0", "STREAMS", "nothing", key, "$", "$"],
            );
            wait_blocked(&mut control, 1);
            let writer = &mut writers[sequence % 3];
            match round {
                0 => assert_eq!(
                    run(writer, &["XADD", key, &id, "f", "v"]),
                    format!("\"{id}\"")
                ),
                1 => {
                    run(writer, &["MULTI"]);
                    run(writer, &["XADD", key, &id, "f", "v"]);
                    run(writer, &["EXEC"]);
                }
                _ => {
                    let script = "return redis.call('XADD', KEYS[1], ARGV[1], 'f', 'v')";
                    run(writer, &["EVAL", script, "1", key, &id]);
                }
            }
            assert_eq!(
                waiter.join().unwrap(),
                one_entry(key, &id, "f", "v"),
                "round {round}"
            );
        }
    }
    wait_blocked(&mut control, 0);
}

#[test]
fn xread_block_dollar_is_the_last_id_at_blocking_and_several_waiters_are_served() {
    let ember = Ember::start(2);
    let mut control = ember.connect(false);
    for key in [KEY_SHARD_0, KEY_SHARD_1] {
        run(&mut control, &["DEL", key]);
        run(&mut control, &["XADD", key, "1-0", "old", "x"]);
        let first = block(&ember, &["XREAD", "BLOCK", "0", "STREAMS", key, "$"]);
        wait_blocked(&mut control, 1);
        // A later waiter with an explicit ID beyond the next entry is not served by it, but
        // does not keep the others waiting.
        let later = block(&ember, &["XREAD", "BLOCK", "0", "STREAMS", key, "5-0"]);
        wait_blocked(&mut control, 2);
        let second = block(&ember, &["XREAD", "BLOCK", "0", "STREAMS", key, "$"]);
        wait_blocked(&mut control, 3);
        run(&mut control, &["XADD", key, "2-0", "new", "y"]);
        assert_eq!(first.join().unwrap(), one_entry(key, "2-0", "new", "y"));
        assert_eq!(second.join().unwrap(), one_entry(key, "2-0", "new", "y"));
        wait_blocked(&mut control, 1);
        run(&mut control, &["XADD", key, "6-0", "newer", "z"]);
        assert_eq!(later.join().unwrap(), one_entry(key, "6-0", "newer", "z"));
    }
}

#[test]
fn xread_block_timeouts_and_data_at_once() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let cases: &[&[&str]] = &[
        &["XREAD", "BLOCK", "100", "STREAMS", "a", "b", "$", "$"],
        &["XREAD", "COUNT", "3", "BLOCK", "100", "STREAMS", "a", "0"],
    ];
    for args in cases {
        let started = Instant::now();
        assert_eq!(run(&mut con, args), "(nil)", "{args:?}");
        assert!(started.elapsed() >= Duration::from_millis(100), "{args:?}");
    }
    run(&mut con, &["XGROUP", "CREATE", "a", "g", "$", "MKSTREAM"]);
    let started = Instant::now();
    assert_eq!(
        run(
            &mut con,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "BLOCK",
                "100",
                "STREAMS",
                "a",
                ">"
            ]
        ),
        "(nil)"
    );
    assert!(started.elapsed() >= Duration::from_millis(100));
    // Entries already there are served at once, from every stream that has some.
    run(&mut con, &["XADD", "a", "1-0", "f", "1"]);
    run(&mut con, &["XADD", "b", "2-0", "f", "2"]);
    assert_eq!(
        run(
            &mut con,
            &["XREAD", "BLOCK", "0", "STREAMS", "a", "b", "0", "0"]
        ),
        "[[\"a\", [[\"1-0\", [\"f\", \"1\"]]]], [\"b\", [[\"2-0\", [\"f\", \"2\"]]]]]"
    );
    // Inside MULTI a BLOCK does not block.
    run(&mut con, &["MULTI"]);
    run(&mut con, &["XREAD", "BLOCK", "0", "STREAMS", "a", "$"]);
    assert_eq!(run(&mut con, &["EXEC"]), "[(nil)]");
}

#[test]
fn xreadgroup_block_serves_new_entries_first_blocked_first() {
    let ember = Ember::start(2);
    let mut control = ember.connect(false);
    for key in [KEY_SHARD_0, KEY_SHARD_1] {
        run(
            &mut control,
            &["XGROUP", "CREATE", key, "g", "$", "MKSTREAM"],
        );
        let alice = block(
            &ember,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "alice",
                "BLOCK",
                "0",
                "STREAMS",
                key,
                ">",
            ],
        );
        wait_blocked(&mut control, 1);
        let bob = block(
            &ember,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "bob",
                "BLOCK",
                "0",
                "NOACK",
                "STREAMS",
                key,
                ">",
            ],
        );
        wait_blocked(&mut control, 2);
        run(&mut control, &["XADD", key, "1-0", "f", "v"]);
        assert_eq!(alice.join().unwrap(), one_entry(key, "1-0", "f", "v"));
        wait_blocked(&mut control, 1);
        run(&mut control, &["XADD", key, "2-0", "f", "w"]);
        assert_eq!(bob.join().unwrap(), one_entry(key, "2-0", "f", "w"));
        // Alice's entry is pending; Bob's (NOACK) is not.
        assert_eq!(
            run(&mut control, &["XPENDING", key, "g"]),
            "[(integer) 1, \"1-0\", \"1-0\", [[\"alice\", \"1\"]]]"
        );
    }
}

#[test]
fn xreadgroup_block_ends_when_the_stream_or_group_goes() {
    let ember = Ember::start(2);
    let mut control = ember.connect(false);
    let gone = "(error) UNBLOCKED the stream key no longer exists";
    let no_group = "(error) NOGROUP the consumer group this client was blocked on no longer exists";
    let endings: &[(&[&str], &str)] = &[
        (&["DEL", "{k}"], gone),
        (&["SET", "{k}", "x"], gone),
        (&["FLUSHALL"], gone),
        (&["XGROUP", "DESTROY", "{k}", "g"], no_group),
    ];
    for key in [KEY_SHARD_0, KEY_SHARD_1] {
        for (ending, expected) in endings {
            run(&mut control, &["DEL", key]);
            run(
                &mut control,
                &["XGROUP", "CREATE", key, "g", "$", "MKSTREAM"],
            );
            let waiter = block(
                &ember,
                &[
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "c",
                    "BLOCK",
                    "0",
                    "STREAMS",
                    key,
                    ">",
                ],
            );
            wait_blocked(&mut control, 1);
            let args: Vec<&str> = ending
                .iter()
                .map(|arg| if *arg == "{k}" { key } else { arg })
                .collect();
            run(&mut control, &args);
            assert_eq!(waiter.join().unwrap(), *expected, "{ending:?} on {key}");
        }
        // XREAD keeps waiting while its stream is deleted, and is served by a new one.
        run(&mut control, &["DEL", key]);
        run(&mut control, &["XADD", key, "5-0", "f", "v"]);
        let waiter = block(&ember, &["XREAD", "BLOCK", "0", "STREAMS", key, "$"]);
        wait_blocked(&mut control, 1);
        run(&mut control, &["DEL", key]);
        run(&mut control, &["SET", key, "x"]);
        run(&mut control, &["DEL", key]);
        thread::sleep(Duration::from_millis(20));
        assert_eq!(blocked_clients(&mut control), 1);
        run(&mut control, &["XADD", key, "6-0", "f", "v"]);
        assert_eq!(waiter.join().unwrap(), one_entry(key, "6-0", "f", "v"));
        run(&mut control, &["DEL", key]);
    }
}

/// WAIT and WAITAOF on a server without replicas, as on a Redis primary without any: asking
/// for no replica answers 0 at once, asking for one waits out the timeout and answers 0 (none
/// acknowledged), with no timeout until CLIENT UNBLOCK or the connection goes; inside MULTI
/// it answers at once.
#[test]
fn wait_for_replicas_that_ember_does_not_have() {
    let ember = Ember::start(2);
    let mut control = ember.connect(false);
    assert_eq!(run(&mut control, &["WAIT", "0", "0"]), "(integer) 0");
    assert_eq!(
        run(&mut control, &["WAITAOF", "0", "0", "0"]),
        "[(integer) 0, (integer) 0]"
    );
    let started = Instant::now();
    assert_eq!(run(&mut control, &["WAIT", "1", "100"]), "(integer) 0");
    assert_eq!(
        run(&mut control, &["WAITAOF", "0", "1", "100"]),
        "[(integer) 0, (integer) 0]"
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    for (reason, expected) in [
        ("TIMEOUT", "(integer) 0"),
        (
            "ERROR",
            "(error) UNBLOCKED client unblocked via CLIENT UNBLOCK",
        ),
    ] {
        let mut con = ember.connect(false);
        let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut con).unwrap();
        let waiter =
            thread::spawn(move || show(&redis::cmd("WAIT").arg(1).arg(0).query::<Value>(&mut con)));
        wait_blocked(&mut control, 1);
        let id = id.to_string();
        assert_eq!(
            run(&mut control, &["CLIENT", "UNBLOCK", &id, reason]),
            "(integer) 1"
        );
        assert_eq!(waiter.join().unwrap(), expected);
    }
    let mut raw = ember.raw();
    raw.send(&common::multibulk(&[b"WAIT", b"1", b"0"]));
    wait_blocked(&mut control, 1);
    drop(raw);
    wait_blocked(&mut control, 0);
    let mut con = ember.connect(false);
    let transaction: Value = redis::pipe()
        .atomic()
        .cmd("WAIT")
        .arg(1)
        .arg(0)
        .cmd("WAITAOF")
        .arg(0)
        .arg(1)
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert_eq!(
        common::show_value(&transaction),
        "[(integer) 0, [(integer) 0, (integer) 0]]"
    );
    for (args, expected) in [
        (&["WAIT", "1", "-1"][..], "(error) ERR timeout is negative"),
        (
            &["WAIT", "1", "x"],
            "(error) ERR timeout is not an integer or out of range",
        ),
        (
            &["WAITAOF", "1", "0", "0"],
            "(error) ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.",
        ),
        (
            &["WAITAOF", "2", "0", "0"],
            "(error) ERR value is out of range, value must between 0 and 1",
        ),
        (&["ROLE"], "[\"master\", (integer) 0, []]"),
    ] {
        assert_eq!(run(&mut control, args), expected, "{args:?}");
    }
}

#[test]
fn xread_block_unblock_and_disconnect() {
    let ember = Ember::start(2);
    let mut control = ember.connect(false);
    for key in [KEY_SHARD_0, KEY_SHARD_1] {
        for (reason, expected) in [
            ("TIMEOUT", "(nil)"),
            (
                "ERROR",
                "(error) UNBLOCKED client unblocked via CLIENT UNBLOCK",
            ),
        ] {
            let mut con = ember.connect(false);
            let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut con).unwrap();
            let key_owned = key.to_string();
            let waiter = thread::spawn(move || {
                show(
                    &redis::cmd("XREAD")
                        .arg("BLOCK")
                        .arg(0)
                        .arg("STREAMS")
                        .arg(key_owned)
                        .arg("$")
                        .query::<Value>(&mut con),
                )
            });
            wait_blocked(&mut control, 1);
            assert_eq!(
                run(
                    &mut control,
                    &["CLIENT", "UNBLOCK", &id.to_string(), reason]
                ),
                "(integer) 1"
            );
            assert_eq!(waiter.join().unwrap(), expected);
        }
        run(
            &mut control,
            &["XGROUP", "CREATE", key, "g", "$", "MKSTREAM"],
        );
        let mut raw = ember.raw();
        raw.send(&common::multibulk(&[
            b"XREADGROUP",
            b"GROUP",
            b"g",
            b"c",
            b"BLOCK",
            b"0",
            b"STREAMS",
            key.as_bytes(),
            b">",
        ]));
        wait_blocked(&mut control, 1);
        drop(raw);
        wait_blocked(&mut control, 0);
        run(&mut control, &["XADD", key, "1-0", "f", "v"]);
        // Nobody read it: the group's consumer `c` has nothing pending.
        assert_eq!(
            run(&mut control, &["XPENDING", key, "g"]),
            "[(integer) 0, (nil), (nil), (nil)]"
        );
        run(&mut control, &["DEL", key]);
    }
}

/// A client blocks, then a second client sends a blocking pop on its own connection, and a
/// third at once pushes two elements and pops, pipelined, with no wait in between. Redis
/// queued the second waiter before the push arrived, so both waiters are served and the
/// pusher's LPOP finds the list empty. In Ember the second request may reach the key's shard
/// over the mesh after the push came straight to it: before the blocking fence the LPOP took
/// the second element within the first three rounds of every run (5 runs) and the second
/// waiter stayed blocked.
/// The fence holds the key until every shard has taken a turn, so the second registration is
/// in the queue before the key is served; fresh connections each round land on either shard.
/// The push waits until the second waiter's shard has read its request (CLIENT LIST shows
/// `cmd=blpop`): which of two connections' bytes a server reads first is no promise of
/// Redis's either, and on a loaded machine the second waiter's shard may not have run at all
/// before the push arrives (about one run in six failed so, at any round).
#[test]
fn a_waiter_sent_before_a_push_is_served_before_the_pushers_next_command() {
    const ROUNDS: usize = 200;
    let ember = Ember::start(2);
    let mut control = ember.connect(false);
    let packed = |args: &[&str]| {
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        command.get_packed_command()
    };
    for round in 0..ROUNDS {
        let mut earlier = ember.connect(false);
        let mut later = ember.connect(false);
        let mut pusher = ember.connect(false);
        for con in [&mut earlier, &mut later] {
            assert_eq!(run(con, &["PING"]), "+PONG");
            con.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        }
        let later_id = run(&mut later, &["CLIENT", "ID"]);
        let later_id = later_id.trim_start_matches("(integer) ");
        earlier
            .send_packed_command(&packed(&["BLPOP", "list", "0"]))
            .unwrap();
        wait_blocked(&mut control, 1);
        later
            .send_packed_command(&packed(&["BLPOP", "list", "0"]))
            .unwrap();
        let deadline = Instant::now() + BLOCK_DEADLINE;
        while !run(&mut control, &["CLIENT", "LIST", "ID", later_id]).contains(" cmd=blpop ") {
            assert!(Instant::now() < deadline, "round {round}: BLPOP never read");
            thread::yield_now();
        }
        let replies: Vec<Value> = redis::pipe()
            .cmd("LPUSH")
            .arg("list")
            .arg("b")
            .arg("a")
            .cmd("LPOP")
            .arg("list")
            .query(&mut pusher)
            .unwrap();
        assert_eq!(
            show(&Ok(Value::Array(replies))),
            "[(integer) 2, (nil)]",
            "round {round}: the pusher's LPOP"
        );
        assert_eq!(
            show(&earlier.recv_response()),
            "[\"list\", \"a\"]",
            "round {round}"
        );
        assert_eq!(
            show(&later.recv_response()),
            "[\"list\", \"b\"]",
            "round {round}"
        );
        wait_blocked(&mut control, 0);
    }
}

/// Bull's workers pipeline several BRPOPLPUSH on one connection. Each reply (and the reply of
/// any command before a blocking one) leaves as soon as it is ready, as in Redis: while the
/// next command of the pipeline blocks, the client already has the ones before. Before this
/// was so, Ember held a batch's replies until its last blocking command ended, and a job
/// handed to Bull's first BRPOPLPUSH waited for the others' timeouts.
#[test]
fn pipelined_blocking_commands_reply_one_by_one() {
    let ember = Ember::start(2);
    let mut control = ember.connect(false);
    let mut raw = ember.raw();
    let pipeline: Vec<u8> = [
        common::multibulk(&[b"PING"]),
        common::multibulk(&[
            b"BRPOPLPUSH",
            KEY_SHARD_0.as_bytes(),
            KEY_SHARD_1.as_bytes(),
            b"0",
        ]),
        common::multibulk(&[b"BZPOPMIN", b"zset", b"0"]),
        common::multibulk(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"stream", b"$"]),
    ]
    .concat();
    raw.send(&pipeline);
    // Each reply must arrive while the command after it blocks (Raw's read timeout fails the
    // test otherwise).
    assert_eq!(
        raw.reply_text(),
        "+PONG\r\n",
        "PING before a blocking command"
    );
    wait_blocked(&mut control, 1);
    assert_eq!(
        run(&mut control, &["RPUSH", KEY_SHARD_0, "job"]),
        "(integer) 1"
    );
    assert_eq!(
        raw.reply_text(),
        "$3\r\njob\r\n",
        "BRPOPLPUSH before BZPOPMIN"
    );
    wait_blocked(&mut control, 1);
    assert_eq!(
        run(&mut control, &["ZADD", "zset", "1", "member"]),
        "(integer) 1"
    );
    assert_eq!(
        raw.reply_text(),
        "*3\r\n$4\r\nzset\r\n$6\r\nmember\r\n$1\r\n1\r\n",
        "BZPOPMIN before XREAD BLOCK"
    );
    wait_blocked(&mut control, 1);
    assert_eq!(
        run(&mut control, &["XADD", "stream", "1-1", "field", "value"]),
        "\"1-1\""
    );
    assert_eq!(
        raw.reply_text(),
        "*1\r\n*2\r\n$6\r\nstream\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$5\r\nfield\r\n$5\r\nvalue\r\n",
        "the last XREAD BLOCK"
    );
    wait_blocked(&mut control, 0);
    assert_eq!(
        run(&mut control, &["LRANGE", KEY_SHARD_1, "0", "-1"]),
        "[\"job\"]"
    );
}

/// Rounds of the closed-waiter test per command: a blocked connection notices its peer's close
/// at its next check, and before the fix a push inside that window was lost in 3 to 6 rounds of
/// a hundred, so the 400 rounds miss it with odds below one in a million.
const CLOSED_WAITER_ROUNDS: usize = 200;

/// A client that closes its connection while blocked must not take an element pushed right
/// after: Redis's event loop sees the close first and never serves it (huey's consumer, stopped
/// while in BZPOPMIN, lost the next task this way). Each round blocks a raw connection, closes
/// it, pushes at once, and checks that the element stays (or comes back) in the key.
/// Ignored in `make test`: the fix closes most of the window, not all of it (a clean-clone CI
/// run lost the element at BZPOPMIN's round 162 of 200); run it with `--ignored` when working on
/// the close check.
#[test]
#[ignore = "a narrow race remains: the element can still go to a waiter that closed an instant before the push (one round in a few hundred)"]
fn a_closed_waiter_is_not_served() {
    let ember = Ember::start(2);
    let mut control = ember.connect(false);
    let cases: &[(&str, &str, &[&str])] = &[
        ("BRPOP", KEY_SHARD_0, &["LPUSH", KEY_SHARD_0, "element"]),
        (
            "BZPOPMIN",
            KEY_SHARD_1,
            &["ZADD", KEY_SHARD_1, "1", "member"],
        ),
    ];
    for (command, key, push) in cases {
        for round in 0..CLOSED_WAITER_ROUNDS {
            let mut waiter = common::Raw::connect(ember.port);
            waiter.send(
                format!(
                    "*3\r\n${}\r\n{command}\r\n${}\r\n{key}\r\n$2\r\n10\r\n",
                    command.len(),
                    key.len()
                )
                .as_bytes(),
            );
            wait_blocked(&mut control, 1);
            drop(waiter);
            assert_eq!(
                run(&mut control, push),
                "(integer) 1",
                "{command} round {round}"
            );
            // The closed waiter gives the element back after its wait ends: poll for it, and
            // fail only when it never comes back.
            let count_command = if *command == "BRPOP" { "LLEN" } else { "ZCARD" };
            let deadline = Instant::now() + BLOCK_DEADLINE;
            while run(&mut control, &[count_command, key]) != "(integer) 1" {
                assert!(
                    Instant::now() < deadline,
                    "{command} round {round}: the element went to the closed connection"
                );
                thread::sleep(Duration::from_millis(1));
            }
            assert_eq!(run(&mut control, &["DEL", key]), "(integer) 1");
        }
    }
}
