//! Traffic protection through the `redis` crate against a two-shard ember: CL.THROTTLE's
//! GCRA figures against a hand-computed sequence and its errors, CL.WINDOW's exact window,
//! GETLEASE/SETLEASE, FILTER.* and filtered PUBLISH, INFO's `# Protection` section, and
//! exactness under many concurrent clients on keys of both shards.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{run, show, Ember};

const SHARDS: usize = 2;

/// A key named `prefix:n` that lives on `shard`.
fn key_on(shard: usize, prefix: &str) -> String {
    common::key_on_shard(prefix, shard, SHARDS)
}

fn ask(con: &mut redis::Connection, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
    show(&run(con, &args))
}

fn integers(con: &mut redis::Connection, args: &[&str]) -> Vec<i64> {
    common::query(con, args)
}

#[test]
fn throttle_follows_the_hand_computed_sequence() {
    let ember = Ember::start(SHARDS);
    let mut con = ember.connect(false);
    for shard in 0..SHARDS {
        let key = key_on(shard, "throttle");
        // Burst 4 (limit 5), 1 per 60 s: TAT moves 60 s per request; the test runs well within
        // a second, and the reply rounds partial seconds up, so the figures are exact.
        let expected: &[[i64; 5]] = &[
            [0, 5, 4, -1, 60],
            [0, 5, 3, -1, 120],
            [0, 5, 2, -1, 180],
            [0, 5, 1, -1, 240],
            [0, 5, 0, -1, 300],
            [1, 5, 0, 60, 300],
            [1, 5, 0, 60, 300],
        ];
        for (index, figures) in expected.iter().enumerate() {
            let reply = integers(&mut con, &["CL.THROTTLE", &key, "4", "1", "60"]);
            assert_eq!(reply, figures.to_vec(), "request {index} on shard {shard}");
        }
        let pttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut con).unwrap();
        assert!(
            (298_000..=300_000).contains(&pttl),
            "state expires when full: {pttl}"
        );
        // Quantity 0 asks without taking; a quantity beyond the burst never fits.
        assert_eq!(
            integers(&mut con, &["CL.THROTTLE", &key, "4", "1", "60", "0"]),
            [0, 5, 0, -1, 300]
        );
        let fresh = key_on(shard, "throttle-big");
        assert_eq!(
            integers(&mut con, &["CL.THROTTLE", &fresh, "4", "1", "60", "6"]),
            [1, 5, 5, -1, 0]
        );
        assert_eq!(
            integers(&mut con, &["CL.THROTTLE", &fresh, "4", "1", "60", "5"]),
            [0, 5, 0, -1, 300]
        );
        // 10 per second with burst 9: 100 ms apart, so a full burst empties in one second.
        let fast = key_on(shard, "throttle-fast");
        assert_eq!(
            integers(&mut con, &["CL.THROTTLE", &fast, "9", "10", "1", "10"]),
            [0, 10, 0, -1, 1]
        );
        let limited = integers(&mut con, &["CL.THROTTLE", &fast, "9", "10", "1"]);
        assert_eq!(limited[..3], [1, 10, 0]);
        assert_eq!(limited[3], 1, "retry after 100 ms rounds up to 1 s");
    }
}

#[test]
fn throttle_errors() {
    let ember = Ember::start(SHARDS);
    let mut con = ember.connect(false);
    ask(&mut con, &["SET", "plain", "hello"]);
    ask(&mut con, &["SADD", "set", "a"]);
    let usage = "(error) Cell error: Usage: cl.throttle <key> <max_burst> <count per period> <period> [<quantity>]";
    let cases: &[(&[&str], &str)] = &[
        (
            &["CL.THROTTLE"],
            "(error) ERR wrong number of arguments for 'cl.throttle' command",
        ),
        (&["CL.THROTTLE", "k"], usage),
        (&["CL.THROTTLE", "k", "1", "2"], usage),
        (&["CL.THROTTLE", "k", "1", "2", "3", "4", "5"], usage),
        (
            &["CL.THROTTLE", "k", "x", "1", "1"],
            "(error) Cell error: Couldn't parse as integer: x",
        ),
        (
            &["CL.THROTTLE", "k", "1", "1.5", "1"],
            "(error) Cell error: Couldn't parse as integer: 1.5",
        ),
        (
            &["CL.THROTTLE", "k", "1", "1", "1", "q"],
            "(error) Cell error: Couldn't parse as integer: q",
        ),
        (
            &["CL.THROTTLE", "k", "1", "0", "1"],
            "(error) Cell error: Zero rates are not supported",
        ),
        (
            &["CL.THROTTLE", "k", "1", "1", "0"],
            "(error) Cell error: Zero rates are not supported",
        ),
        (
            &["CL.THROTTLE", "k", "-1", "1", "1"],
            "(error) Cell error: max_burst, count, period and quantity must not be negative",
        ),
        (
            &["CL.THROTTLE", "k", "1", "1", "1", "-1"],
            "(error) Cell error: max_burst, count, period and quantity must not be negative",
        ),
        (
            &["CL.THROTTLE", "k", "1", "1", "9999999999"],
            "(error) Cell error: period must be at most 315360000 seconds",
        ),
        (
            &["CL.THROTTLE", "set", "1", "1", "1"],
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            &["CL.THROTTLE", "plain", "1", "1", "1"],
            "(error) Cell error: the key holds a string that is not a rate limiter's state",
        ),
        (
            &["SET", "huge", "99999999999999999999999999999999999999"],
            "+OK",
        ),
        (
            &["CL.THROTTLE", "huge", "1", "1", "1"],
            "(error) Cell error: the key holds a string that is not a rate limiter's state",
        ),
        (&["EXISTS", "k"], "(integer) 0"),
        (&["PING"], "+PONG"),
    ];
    for (args, expected) in cases {
        assert_eq!(ask(&mut con, args), *expected, "{args:?}");
    }
}

#[test]
fn window_replies_and_errors() {
    let ember = Ember::start(SHARDS);
    let mut con = ember.connect(false);
    for shard in 0..SHARDS {
        let key = key_on(shard, "window");
        for remaining in [2, 1, 0] {
            assert_eq!(
                integers(&mut con, &["CL.WINDOW", &key, "3", "60000"]),
                [0, 3, remaining, -1, 60000]
            );
        }
        let limited = integers(&mut con, &["CL.WINDOW", &key, "3", "60000"]);
        assert_eq!(limited[..3], [1, 3, 0]);
        assert!(
            (59_000..=60_000).contains(&limited[3]),
            "retry when the oldest leaves: {limited:?}"
        );
        assert!((59_000..=60_000).contains(&limited[4]), "{limited:?}");
        assert_eq!(
            integers(&mut con, &["CL.WINDOW", &key, "3", "60000", "0"])[..3],
            [0, 3, 0]
        );
        assert_eq!(
            integers(&mut con, &["CL.WINDOW", &key, "3", "60000", "4"])[..4],
            [1, 3, 0, -1]
        );
        let pttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut con).unwrap();
        assert!((59_000..=60_000).contains(&pttl), "{pttl}");
        // A cost-0 query of a missing key creates nothing.
        let empty = key_on(shard, "window-empty");
        assert_eq!(
            integers(&mut con, &["CL.WINDOW", &empty, "5", "1000", "0"]),
            [0, 5, 5, -1, 0]
        );
        assert_eq!(ask(&mut con, &["EXISTS", &empty]), "(integer) 0");
    }
    ask(&mut con, &["SET", "plain", "hello"]);
    // 16 bytes whose time field is past any time CL.WINDOW writes.
    ask(
        &mut con,
        &[
            "SET",
            "sixteen",
            "\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}abcdefgh",
        ],
    );
    ask(&mut con, &["LPUSH", "list", "a"]);
    let cases: &[(&[&str], &str)] = &[
        (
            &["CL.WINDOW", "k", "1"],
            "(error) ERR wrong number of arguments for 'cl.window' command",
        ),
        (
            &["CL.WINDOW", "k", "1", "1", "1", "1"],
            "(error) ERR syntax error",
        ),
        (
            &["CL.WINDOW", "k", "x", "1"],
            "(error) ERR value is not an integer or out of range",
        ),
        (
            &["CL.WINDOW", "k", "0", "1"],
            "(error) ERR limit must be between 1 and 100000",
        ),
        (
            &["CL.WINDOW", "k", "100001", "1"],
            "(error) ERR limit must be between 1 and 100000",
        ),
        (
            &["CL.WINDOW", "k", "1", "0"],
            "(error) ERR window must be between 1 and 2592000000 milliseconds",
        ),
        (
            &["CL.WINDOW", "k", "1", "1", "-1"],
            "(error) ERR cost must not be negative",
        ),
        (
            &["CL.WINDOW", "list", "1", "1"],
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            &["CL.WINDOW", "plain", "1", "1"],
            "(error) ERR the key holds a string that is not a sliding window",
        ),
        (
            &["CL.WINDOW", "sixteen", "1", "1"],
            "(error) ERR the key holds a string that is not a sliding window",
        ),
        (&["PING"], "+PONG"),
    ];
    for (args, expected) in cases {
        assert_eq!(ask(&mut con, args), *expected, "{args:?}");
    }
}

/// GETLEASE's reply: (value, token, wait_ms).
fn getlease(con: &mut redis::Connection, key: &str, lease_ms: u64) -> (Option<String>, i64, i64) {
    redis::cmd("GETLEASE")
        .arg(key)
        .arg(lease_ms)
        .query(con)
        .unwrap()
}

#[test]
fn lease_replies_and_errors() {
    let ember = Ember::start(SHARDS);
    let mut con = ember.connect(false);
    for shard in 0..SHARDS {
        let key = key_on(shard, "lease");
        let (value, token, wait) = getlease(&mut con, &key, 5000);
        assert_eq!((value, wait), (None, 0));
        assert!(token > 0, "the first caller gets the lease");
        let (value, other, wait) = getlease(&mut con, &key, 5000);
        assert_eq!((value, other), (None, 0));
        assert!((1..=5000).contains(&wait), "the others wait: {wait}");
        let token_text = token.to_string();
        let wrong = (token ^ 1).to_string();
        assert_eq!(ask(&mut con, &["SETLEASE", &key, &wrong, "v"]), "(nil)");
        assert_eq!(
            ask(&mut con, &["SETLEASE", &key, &token_text, "v", "EX", "100"]),
            "+OK"
        );
        assert_eq!(
            ask(&mut con, &["SETLEASE", &key, &token_text, "again"]),
            "(nil)",
            "a token serves once"
        );
        assert_eq!(getlease(&mut con, &key, 5000), (Some("v".into()), 0, 0));
        assert_eq!(ask(&mut con, &["TTL", &key]), "(integer) 100");
        // Within lease_ms of expiring: one caller refreshes, the others keep the value.
        ask(&mut con, &["SET", &key, "old", "PX", "3000"]);
        let (value, token, wait) = getlease(&mut con, &key, 5000);
        assert_eq!((value.as_deref(), wait), (Some("old"), 0));
        assert!(token > 0);
        assert_eq!(getlease(&mut con, &key, 5000), (Some("old".into()), 0, 0));
        // A holder that dies: its lease runs out and the next caller gets a new one.
        let dead = key_on(shard, "lease-dead");
        let (_, first, _) = getlease(&mut con, &dead, 50);
        assert!(first > 0);
        let deadline = Instant::now() + Duration::from_secs(5);
        let second = loop {
            let (_, token, wait) = getlease(&mut con, &dead, 50);
            if token > 0 {
                break token;
            }
            assert!(
                wait > 0 && Instant::now() < deadline,
                "the lease never ran out"
            );
            thread::yield_now();
        };
        assert_ne!(first, second);
        let stale = first.to_string();
        assert_eq!(ask(&mut con, &["SETLEASE", &dead, &stale, "late"]), "(nil)");
    }
    ask(&mut con, &["SADD", "set", "a"]);
    let cases: &[(&[&str], &str)] = &[
        (
            &["GETLEASE", "k"],
            "(error) ERR wrong number of arguments for 'getlease' command",
        ),
        (
            &["GETLEASE", "k", "0"],
            "(error) ERR invalid lease time in 'getlease' command",
        ),
        (
            &["GETLEASE", "k", "86400001"],
            "(error) ERR invalid lease time in 'getlease' command",
        ),
        (
            &["GETLEASE", "k", "x"],
            "(error) ERR value is not an integer or out of range",
        ),
        (
            &["GETLEASE", "set", "100"],
            "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            &["SETLEASE", "k", "1"],
            "(error) ERR wrong number of arguments for 'setlease' command",
        ),
        (
            &["SETLEASE", "k", "x", "v"],
            "(error) ERR value is not an integer or out of range",
        ),
        (
            &["SETLEASE", "k", "1", "v", "EX"],
            "(error) ERR syntax error",
        ),
        (
            &["SETLEASE", "k", "1", "v", "KEEPTTL", "1"],
            "(error) ERR syntax error",
        ),
        (
            &["SETLEASE", "k", "1", "v", "EX", "0"],
            "(error) ERR invalid expire time in 'setlease' command",
        ),
        (
            &["SETLEASE", "k", "1", "v", "PX", "x"],
            "(error) ERR value is not an integer or out of range",
        ),
        (&["SETLEASE", "k", "1", "v"], "(nil)"),
    ];
    for (args, expected) in cases {
        assert_eq!(ask(&mut con, args), *expected, "{args:?}");
    }
}

#[test]
fn limiters_are_exact_under_concurrent_clients_on_both_shards() {
    let ember = Ember::start(SHARDS);
    let keys: Vec<String> = (0..SHARDS).map(|shard| key_on(shard, "hot")).collect();
    let windows: Vec<String> = (0..SHARDS)
        .map(|shard| key_on(shard, "hot-window"))
        .collect();
    let allowed = Arc::new([
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
    ]);
    let threads: Vec<_> = (0..16)
        .map(|thread_index| {
            let (port, keys, windows, allowed) =
                (ember.port, keys.clone(), windows.clone(), allowed.clone());
            thread::spawn(move || {
                let mut con = common::connect(port, false);
                for round in 0..60 {
                    let shard = (thread_index + round) % SHARDS;
                    // Limit 100, 1 per hour: no token comes back during the test.
                    let reply =
                        integers(&mut con, &["CL.THROTTLE", &keys[shard], "99", "1", "3600"]);
                    if reply[0] == 0 {
                        allowed[shard].fetch_add(1, Ordering::Relaxed);
                    }
                    let reply =
                        integers(&mut con, &["CL.WINDOW", &windows[shard], "100", "600000"]);
                    if reply[0] == 0 {
                        allowed[SHARDS + shard].fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    // 16 clients x 60 requests = 480 per key: exactly the limit goes through on each.
    for (index, count) in allowed.iter().enumerate() {
        assert_eq!(count.load(Ordering::Relaxed), 100, "key {index}");
    }
    let mut con = ember.connect(false);
    let info: String = redis::cmd("INFO")
        .arg("protection")
        .query(&mut con)
        .unwrap();
    assert!(info.contains("# Protection"), "{info}");
    assert!(info.contains("throttle_requests:960\r\n"), "{info}");
    assert!(info.contains("throttle_limited:760\r\n"), "{info}");
    assert!(info.contains("window_limited:760\r\n"), "{info}");
}

#[test]
fn one_rebuild_of_an_expiring_hot_key_under_many_clients() {
    let ember = Ember::start(SHARDS);
    // About to expire (the others keep v1 meanwhile), and missing (the others wait), on each
    // shard.
    let cases = [(0, true), (1, true), (0, false), (1, false)];
    for (case, (shard, expiring)) in cases.into_iter().enumerate() {
        let key = key_on(shard, &format!("hot-lease-{case}"));
        let mut con = ember.connect(false);
        if expiring {
            ask(&mut con, &["SET", &key, "v1", "PX", "1500"]);
        }
        let rebuilds = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (port, key, rebuilds) = (ember.port, key.clone(), rebuilds.clone());
                thread::spawn(move || {
                    let mut con = common::connect(port, false);
                    let deadline = Instant::now() + Duration::from_secs(10);
                    loop {
                        let (value, token, _) = getlease(&mut con, &key, 1000);
                        if token > 0 {
                            rebuilds.fetch_add(1, Ordering::SeqCst);
                            let stored = ask(
                                &mut con,
                                &["SETLEASE", &key, &token.to_string(), "v2", "EX", "100"],
                            );
                            assert_eq!(stored, "+OK");
                        }
                        if value.as_deref() == Some("v2") {
                            return;
                        }
                        assert!(Instant::now() < deadline, "the value was never rebuilt");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(
            rebuilds.load(Ordering::SeqCst),
            1,
            "exactly one client rebuilt {key}"
        );
    }
    let mut con = ember.connect(false);
    let info: String = redis::cmd("INFO")
        .arg("protection")
        .query(&mut con)
        .unwrap();
    assert!(info.contains("leases_granted:4\r\n"), "{info}");
    assert!(info.contains("leases_fulfilled:4\r\n"), "{info}");
}

#[test]
fn filter_commands_and_filtered_publish() {
    let ember = Ember::start(SHARDS);
    let mut con = ember.connect(false);
    let cases: &[(&[&str], &str)] = &[
        (&["FILTER.LIST"], "[]"),
        (&["FILTER.ADD", "words", "bad", "Worse", "坏人"], "(integer) 3"),
        (&["FILTER.ADD", "words", "BAD", "ugly"], "(integer) 1"),
        (&["FILTER.CHECK", "words", "a Bad and ＷＯＲＳＥ day"], "[[\"bad\", (integer) 2, (integer) 5], [\"worse\", (integer) 10, (integer) 25]]"),
        (&["FILTER.CHECK", "words", "fine"], "[]"),
        (&["FILTER.MASK", "words", "他是坏人, bad!"], "\"\\xe4\\xbb\\x96\\xe6\\x98\\xaf**, ***!\""),
        (&["FILTER.DEL", "words", "ugly", "nothere"], "(integer) 1"),
        (&["FILTER.LIST"], "[\"words\"]"),
        (&["FILTER.ATTACH", "chat", "words", "MASK"], "+OK"),
        (&["FILTER.ATTACH", "quiet", "words", "drop"], "+OK"),
        (&["FILTER.INFO", "words"], "[\"name\", \"words\", \"words\", (integer) 3, \"wordlist\", [\"bad\", \"worse\", \"\\xe5\\x9d\\x8f\\xe4\\xba\\xba\"], \"channels\", [\"chat\", \"mask\", \"quiet\", \"drop\"]]"),
        (&["FILTER.CHECK", "nope", "x"], "(error) ERR no such filter 'nope'"),
        (&["FILTER.MASK", "nope", "x"], "(error) ERR no such filter 'nope'"),
        (&["FILTER.INFO", "nope"], "(error) ERR no such filter 'nope'"),
        (&["FILTER.ATTACH", "c", "nope", "DROP"], "(error) ERR no such filter 'nope'"),
        (&["FILTER.ATTACH", "c", "words", "BURN"], "(error) ERR syntax error"),
        (&["FILTER.ADD", "words"], "(error) ERR wrong number of arguments for 'filter.add' command"),
        (&["FILTER.ADD", "words", ""], "(error) ERR filter words must be 1 to 256 bytes"),
        (&["FILTER.DETACH", "nochannel"], "(integer) 0"),
        (&["FILTER.DEL", "nope", "x"], "(integer) 0"),
    ];
    for (args, expected) in cases {
        assert_eq!(ask(&mut con, args), *expected, "{args:?}");
    }
    // Every connection, whichever shard accepted it, sees the rules just added.
    for _ in 0..8 {
        let mut other = ember.connect(false);
        assert_eq!(ask(&mut other, &["FILTER.MASK", "words", "bad"]), "\"***\"");
    }
    let mut subscriber = ember.connect(false);
    let mut pubsub = subscriber.as_pubsub();
    pubsub.subscribe(&["chat", "quiet"]).unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for publisher_index in 0..6 {
        let mut publisher = ember.connect(false);
        assert_eq!(
            ask(&mut publisher, &["PUBLISH", "quiet", "so BAD"]),
            "(integer) 0",
            "dropped"
        );
        assert_eq!(
            ask(
                &mut publisher,
                &["PUBLISH", "quiet", &format!("fine {publisher_index}")]
            ),
            "(integer) 1"
        );
        assert_eq!(
            ask(&mut publisher, &["PUBLISH", "chat", "bad worse 坏人 ok"]),
            "(integer) 1"
        );
        let message = pubsub.get_message().unwrap();
        assert_eq!(message.get_channel_name(), "quiet");
        assert_eq!(
            message.get_payload::<String>().unwrap(),
            format!("fine {publisher_index}")
        );
        let message = pubsub.get_message().unwrap();
        assert_eq!(message.get_payload::<String>().unwrap(), "*** ***** ** ok");
    }
    assert_eq!(ask(&mut con, &["FILTER.DETACH", "quiet"]), "(integer) 1");
    assert_eq!(
        ask(&mut con, &["PUBLISH", "quiet", "bad"]),
        "(integer) 1",
        "detached"
    );
    assert_eq!(
        pubsub
            .get_message()
            .unwrap()
            .get_payload::<String>()
            .unwrap(),
        "bad"
    );
    drop(pubsub);
    let info: String = redis::cmd("INFO")
        .arg("protection")
        .query(&mut con)
        .unwrap();
    assert!(info.contains("filter_dropped_messages:6\r\n"), "{info}");
    assert!(info.contains("filter_masked_messages:6\r\n"), "{info}");
}

#[test]
fn resp3_transactions_and_scripts() {
    let ember = Ember::start(SHARDS);
    let mut con = ember.connect(true);
    assert_eq!(
        ask(&mut con, &["GETLEASE", "missing", "1000"])
            .split(", ")
            .next(),
        Some("[(nil)")
    );
    ask(&mut con, &["FILTER.ADD", "f", "x"]);
    assert_eq!(
        ask(&mut con, &["FILTER.INFO", "f"]),
        "{\"name\": \"f\", \"words\": (integer) 1, \"wordlist\": [\"x\"], \"channels\": []}"
    );
    for shard in 0..SHARDS {
        let key = key_on(shard, "multi");
        let reply: Vec<Vec<i64>> = redis::pipe()
            .atomic()
            .cmd("CL.THROTTLE")
            .arg(&key)
            .arg(1)
            .arg(1)
            .arg(60)
            .cmd("CL.THROTTLE")
            .arg(&key)
            .arg(1)
            .arg(1)
            .arg(60)
            .cmd("CL.THROTTLE")
            .arg(&key)
            .arg(1)
            .arg(1)
            .arg(60)
            .query(&mut con)
            .unwrap();
        assert_eq!(
            reply,
            [
                vec![0, 2, 1, -1, 60],
                vec![0, 2, 0, -1, 120],
                vec![1, 2, 0, 60, 120]
            ]
        );
        let window = key_on(shard, "script-window");
        let script = "local a = redis.call('CL.WINDOW', KEYS[1], 2, 60000) \
                      local b = redis.call('CL.WINDOW', KEYS[1], 2, 60000) \
                      local c = redis.call('CL.WINDOW', KEYS[1], 2, 60000) \
                      return {a[1], b[1], c[1], c[3]}";
        let reply: Vec<i64> = redis::cmd("EVAL")
            .arg(script)
            .arg(1)
            .arg(&window)
            .query(&mut con)
            .unwrap();
        assert_eq!(reply, [0, 0, 1, 0]);
    }
}

/// Runs `cases` in order; every reply must read as expected.
fn expect_replies(con: &mut redis::Connection, cases: &[(&[&str], &str)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(args, expected)| {
            let got = ask(con, args);
            (got != *expected).then(|| format!("{args:?}\n  expected {expected}\n  got      {got}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn increx_options_replies_and_errors() {
    let ember = Ember::start(SHARDS);
    let mut con = ember.connect(false);
    let syntax = "(error) ERR syntax error";
    let not_integer = "(error) ERR value is not an integer or out of range";
    let not_float = "(error) ERR value is not a valid float";
    let wrongtype = "(error) WRONGTYPE Operation against a key holding the wrong kind of value";
    expect_replies(
        &mut con,
        &[
            // Default BYINT 1, a missing key counts as 0.
            (&["INCREX", "n"], "[(integer) 1, (integer) 1]"),
            (
                &["INCREX", "n", "BYINT", "41"],
                "[(integer) 42, (integer) 41]",
            ),
            (&["GET", "n"], "\"42\""),
            (
                &["INCREX", "n", "byint", "-50"],
                "[(integer) -8, (integer) -50]",
            ),
            // UBOUND / LBOUND without SATURATE: an increment leaving the bounds is not applied.
            (&["SET", "n", "8"], "+OK"),
            (
                &["INCREX", "n", "BYINT", "2", "UBOUND", "10"],
                "[(integer) 10, (integer) 2]",
            ),
            (
                &["INCREX", "n", "UBOUND", "10"],
                "[(integer) 10, (integer) 0]",
            ),
            (
                &["INCREX", "n", "BYINT", "-11", "LBOUND", "0"],
                "[(integer) 10, (integer) 0]",
            ),
            (&["GET", "n"], "\"10\""),
            (
                &["INCREX", "absent", "BYINT", "5", "UBOUND", "3"],
                "[(integer) 0, (integer) 0]",
            ),
            (&["EXISTS", "absent"], "(integer) 0"),
            // SATURATE clamps to the bound; the applied increment is what changed.
            (
                &["INCREX", "n", "BYINT", "25", "UBOUND", "20", "SATURATE"],
                "[(integer) 20, (integer) 10]",
            ),
            (
                &["INCREX", "n", "BYINT", "25", "UBOUND", "20", "SATURATE"],
                "[(integer) 20, (integer) 0]",
            ),
            (
                &[
                    "INCREX", "n", "BYINT", "-100", "LBOUND", "-5", "UBOUND", "20", "SATURATE",
                ],
                "[(integer) -5, (integer) -25]",
            ),
            (
                &["INCREX", "n", "BYINT", "3", "LBOUND", "-5", "UBOUND", "-1"],
                "[(integer) -2, (integer) 3]",
            ),
            // Past i64 without a bound: refused, or saturated at i64::MAX.
            (&["SET", "big", "9223372036854775806"], "+OK"),
            (
                &["INCREX", "big", "BYINT", "5"],
                "[(integer) 9223372036854775806, (integer) 0]",
            ),
            (
                &["INCREX", "big", "BYINT", "5", "SATURATE"],
                "[(integer) 9223372036854775807, (integer) 1]",
            ),
            (&["SET", "low", "-9223372036854775808"], "+OK"),
            (
                &[
                    "INCREX",
                    "low",
                    "BYINT",
                    "9223372036854775807",
                    "LBOUND",
                    "0",
                    "SATURATE",
                ],
                "(error) ERR increment or decrement would overflow",
            ),
            (&["GET", "low"], "\"-9223372036854775808\""),
            // BYFLOAT: bulk string replies, float bounds.
            (&["INCREX", "f", "BYFLOAT", "1.5"], "[\"1.5\", \"1.5\"]"),
            (
                &["INCREX", "f", "BYFLOAT", "0.25", "UBOUND", "1.6"],
                "[\"1.5\", \"0\"]",
            ),
            (
                &[
                    "INCREX", "f", "BYFLOAT", "0.25", "UBOUND", "1.6", "SATURATE",
                ],
                "[\"1.6\", \"0.10000000000000009\"]",
            ),
            (
                &["INCREX", "f", "BYFLOAT", "-10", "LBOUND", "-inf"],
                "[\"-8.4\", \"-10\"]",
            ),
            (
                &["INCREX", "f", "BYFLOAT", "-1", "LBOUND", "-8.5", "SATURATE"],
                "[\"-8.5\", \"-0.09999999999999964\"]",
            ),
            (&["GET", "f"], "\"-8.5\""),
            (&["INCREX", "f"], not_integer),
            (&["INCREX", "n", "BYFLOAT", "0.5"], "[\"-1.5\", \"0.5\"]"),
            // Errors.
            (
                &["INCREX"],
                "(error) ERR wrong number of arguments for 'increx' command",
            ),
            (&["INCREX", "n", "BYINT"], syntax),
            (&["INCREX", "n", "BYINT", "1", "BYFLOAT", "1"], syntax),
            (&["INCREX", "n", "BYINT", "1", "BYINT", "1"], syntax),
            (&["INCREX", "n", "UBOUND", "1", "UBOUND", "2"], syntax),
            (&["INCREX", "n", "SATURATE", "SATURATE"], syntax),
            (&["INCREX", "n", "ENX"], syntax),
            (&["INCREX", "n", "PERSIST", "ENX"], syntax),
            (&["INCREX", "n", "EX", "10", "PX", "10"], syntax),
            (&["INCREX", "n", "EX", "10", "PERSIST"], syntax),
            (&["INCREX", "n", "PERSIST", "PERSIST"], syntax),
            (&["INCREX", "n", "WHAT"], syntax),
            (&["INCREX", "n", "BYINT", "1.5"], not_integer),
            (&["INCREX", "n", "LBOUND", "x"], not_integer),
            (&["INCREX", "n", "BYFLOAT", "x"], not_float),
            (&["INCREX", "n", "BYFLOAT", "1", "UBOUND", "nan"], not_float),
            (
                &["INCREX", "n", "BYFLOAT", "inf"],
                "(error) ERR increment would produce NaN or Infinity",
            ),
            (&["SET", "huge", "1e308"], "+OK"),
            (
                &["INCREX", "huge", "BYFLOAT", "1e308"],
                "(error) ERR increment would produce NaN or Infinity",
            ),
            (&["GET", "huge"], "\"1e308\""),
            (
                &["INCREX", "n", "LBOUND", "5", "UBOUND", "4"],
                "(error) ERR LBOUND must not be greater than UBOUND",
            ),
            (
                &["INCREX", "n", "EX", "0"],
                "(error) ERR invalid expire time in 'increx' command",
            ),
            (
                &["INCREX", "n", "PX", "-1"],
                "(error) ERR invalid expire time in 'increx' command",
            ),
            (&["INCREX", "n", "EX", "x"], not_integer),
            (&["SET", "word", "abc"], "+OK"),
            (&["INCREX", "word"], not_integer),
            (&["INCREX", "word", "BYFLOAT", "1"], not_float),
            (&["LPUSH", "list", "a"], "(integer) 1"),
            (&["INCREX", "list"], wrongtype),
        ],
    );

    // Expiry options: EX/PX/EXAT/PXAT set the TTL, PERSIST drops it, none keeps it, ENX only
    // sets it on a key without one; a refused increment touches nothing.
    let pttl = |con: &mut redis::Connection, key: &str| -> i64 {
        redis::cmd("PTTL").arg(key).query(con).unwrap()
    };
    ask(&mut con, &["INCREX", "t", "EX", "100"]);
    assert!((99_000..=100_000).contains(&pttl(&mut con, "t")));
    ask(&mut con, &["INCREX", "t"]);
    assert!(
        (99_000..=100_000).contains(&pttl(&mut con, "t")),
        "no option keeps the TTL"
    );
    ask(&mut con, &["INCREX", "t", "PX", "5000", "ENX"]);
    assert!(pttl(&mut con, "t") > 90_000, "ENX keeps an existing TTL");
    ask(&mut con, &["INCREX", "t", "PX", "5000"]);
    assert!((4_000..=5_000).contains(&pttl(&mut con, "t")));
    ask(&mut con, &["INCREX", "t", "UBOUND", "0", "EX", "1000"]);
    assert!(
        pttl(&mut con, "t") <= 5_000,
        "a refused increment sets no TTL"
    );
    ask(&mut con, &["INCREX", "t", "PERSIST"]);
    assert_eq!(pttl(&mut con, "t"), -1);
    ask(&mut con, &["INCREX", "t", "EX", "50", "ENX"]);
    assert!(
        (49_000..=50_000).contains(&pttl(&mut con, "t")),
        "ENX sets a TTL on a key without one"
    );
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    ask(
        &mut con,
        &["INCREX", "t", "EXAT", &(now_s + 200).to_string()],
    );
    assert!((150_000..=200_000).contains(&pttl(&mut con, "t")));
    ask(
        &mut con,
        &["INCREX", "t", "PXAT", &((now_s + 300) * 1000).to_string()],
    );
    assert!((250_000..=300_000).contains(&pttl(&mut con, "t")));
    ask(&mut con, &["INCREX", "new-enx", "PX", "3000", "ENX"]);
    assert!(
        (2_000..=3_000).contains(&pttl(&mut con, "new-enx")),
        "ENX on a new key"
    );
    assert_eq!(
        ask(&mut con, &["INCREX", "gone", "EXAT", "1"]),
        "[(integer) 1, (integer) 1]"
    );
    assert_eq!(ask(&mut con, &["EXISTS", "gone"]), "(integer) 0");

    // A fixed-window limiter on keys of both shards under concurrent clients: exactly the
    // bound is granted.
    let keys = [key_on(0, "increx-limit"), key_on(1, "increx-limit")];
    let granted = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (port, keys, granted) = (ember.port, keys.clone(), granted.clone());
            thread::spawn(move || {
                let mut con = common::connect(port, false);
                for _ in 0..40 {
                    for key in &keys {
                        let reply = integers(
                            &mut con,
                            &["INCREX", key, "UBOUND", "100", "EX", "60", "ENX"],
                        );
                        granted.fetch_add(reply[1] as u64, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(granted.load(Ordering::SeqCst), 200);
    for key in &keys {
        assert_eq!(ask(&mut con, &["GET", key]), "\"100\"");
    }
}

/// The figure: 1,000 concurrent clients on one hot key, once while it is about to
/// expire (the others keep reading the old value) and once missing (the others are told to
/// wait): exactly one client rebuilds each time, and every client ends up with the new value.
#[test]
fn one_rebuild_under_a_thousand_clients() {
    const CLIENTS: usize = 1000;
    let ember = Ember::start(SHARDS);
    let mut con = ember.connect(false);
    for (case, expiring) in [(0, true), (1, false)] {
        let key = format!("hot-1000-{case}");
        if expiring {
            ask(&mut con, &["SET", &key, "v1", "PX", "1200"]);
        }
        let rebuilds = Arc::new(AtomicU64::new(0));
        let start = Arc::new(std::sync::Barrier::new(CLIENTS));
        let threads: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (port, key, rebuilds, start) =
                    (ember.port, key.clone(), rebuilds.clone(), start.clone());
                thread::Builder::new()
                    .stack_size(256 << 10)
                    .spawn(move || {
                        let mut con = common::connect(port, false);
                        start.wait();
                        let deadline = Instant::now() + Duration::from_secs(60);
                        loop {
                            let (value, token, wait_ms) = getlease(&mut con, &key, 1000);
                            if token > 0 {
                                rebuilds.fetch_add(1, Ordering::SeqCst);
                                // The rebuild: a slow query.
                                thread::sleep(Duration::from_millis(100));
                                let stored = ask(
                                    &mut con,
                                    &["SETLEASE", &key, &token.to_string(), "v2", "EX", "100"],
                                );
                                assert_eq!(stored, "+OK");
                            }
                            if value.as_deref() == Some("v2") {
                                return;
                            }
                            assert!(Instant::now() < deadline, "the value was never rebuilt");
                            thread::sleep(Duration::from_millis(wait_ms.clamp(10, 50) as u64));
                        }
                    })
                    .unwrap()
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(
            rebuilds.load(Ordering::SeqCst),
            1,
            "exactly one of {CLIENTS} clients rebuilt {key}"
        );
    }
    let info: String = redis::cmd("INFO")
        .arg("protection")
        .query(&mut con)
        .unwrap();
    assert!(info.contains("leases_granted:2\r\n"), "{info}");
    assert!(info.contains("leases_fulfilled:2\r\n"), "{info}");
}

/// /metrics carries INFO protection's counters as `ember_protection_<name>_total`, the same
/// figures: throttled requests, leases granted and expired, filter hits.
#[test]
fn metrics_show_the_protection_counters() {
    let metrics_port = common::free_port();
    let ember = Ember::start_with(&[
        "--threads",
        "2",
        "--metrics-port",
        &metrics_port.to_string(),
    ]);
    let mut con = ember.connect(false);
    // Two throttled calls of three, one lease granted (and one run out), two filter hits.
    for _ in 0..3 {
        ask(&mut con, &["CL.THROTTLE", "limit", "0", "1", "60"]);
    }
    ask(&mut con, &["GETLEASE", "short", "1"]);
    thread::sleep(Duration::from_millis(20));
    ask(&mut con, &["GETLEASE", "short", "1000"]);
    ask(&mut con, &["FILTER.ADD", "words", "spam", "scam"]);
    ask(&mut con, &["FILTER.CHECK", "words", "spam or scam"]);
    let info: String = redis::cmd("INFO")
        .arg("protection")
        .query(&mut con)
        .unwrap();
    let exposition = common::http_get(metrics_port, "/metrics");
    let mut compared = 0;
    for line in info
        .lines()
        .filter(|line| line.contains(':') && !line.starts_with('#'))
    {
        let (name, value) = line.trim().split_once(':').unwrap();
        let series = format!("\nember_protection_{name}_total {value}\n");
        assert!(
            exposition.contains(&series),
            "{series:?} missing from:\n{exposition}"
        );
        compared += 1;
    }
    assert_eq!(compared, 12, "{info}");
    for series in [
        "ember_protection_throttle_limited_total 2\n",
        "ember_protection_leases_granted_total 2\n",
        "ember_protection_leases_expired_total 1\n",
        "ember_protection_filter_hits_total 2\n",
    ] {
        assert!(
            exposition.contains(series),
            "{series:?} missing from:\n{exposition}"
        );
    }
}

/// The protection examples (examples/rate_limit.py, stampede.py, comment_filter.py) against a
/// fresh two-shard ember through redis-py; each checks its own figures and exits non-zero
/// when one is wrong. Skipped without redis-py.
#[test]
fn protection_examples_run_through_redis_py() {
    let Some((python, python_path)) = common::python_with_redis_py() else {
        eprintln!("skipped: redis-py is not installed (ci/setup-servertests.sh puts it in .deps/python-redis)");
        return;
    };
    let ember = Ember::start(SHARDS);
    for (script, done) in [
        ("rate_limit.py", "rate_limit: all limits exact"),
        ("stampede.py", "stampede: one rebuild each time"),
        (
            "comment_filter.py",
            "comment_filter: masked and dropped before fan-out",
        ),
    ] {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/").to_string() + script;
        let output = std::process::Command::new(&python)
            .arg(&path)
            .args(["--port", &ember.port.to_string()])
            .env("PYTHONPATH", &python_path)
            .output()
            .expect("python3 runs");
        let text = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && text.contains(done),
            "{script}:\n{text}"
        );
    }
}
