//! Redis 8.4's compare-and-set family (DIGEST, SET's IFEQ/IFNE/IFDEQ/IFDNE, DELEX, MSETEX),
//! Valkey 9.0's DELIFEQ and Redis 8.2's four BITOP operations, through the `redis` crate against
//! a two-shard ember. The redis-server these tests can start is 7.0, which has none of them, so
//! the expected replies are written out from Redis's documentation (and its published digests).

mod common;

use common::{key_on_shard, run, show, Ember};

/// Redis's WRONGTYPE and syntax errors as [`show`] writes them.
const WRONGTYPE: &str = "(error) WRONGTYPE Operation against a key holding the wrong kind of value";
const SYNTAX: &str = "(error) ERR syntax error";

/// Runs each request in turn, checking its reply in [`show`]'s form.
fn expect(con: &mut redis::Connection, steps: &[(&[&str], &str)]) {
    for (step, (args, expected)) in steps.iter().enumerate() {
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        let reply = show(&run(con, &args));
        assert_eq!(reply, *expected, "step {step}: {args:?}");
    }
}

/// Digests Redis publishes (redis.io's DIGEST page) and other Redis-compatible servers print for
/// the same bytes: XXH3's 64-bit hash, sixteen lower-case hex digits.
#[test]
fn digest_is_xxh3_as_redis_prints_it() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let published: &[(&str, &str)] = &[
        ("Hello world", "b6acb9d84a38ff74"),
        ("test", "9ec9f7918d7dfc40"),
        ("hello", "9555e8555c62dcfd"),
        ("foo", "ab6e5f64077e7d8a"),
        ("Hello, World!", "60415d5f616602aa"),
        (
            "The quick brown fox jumps over the lazy dog",
            "ce7d19a5418fb365",
        ),
    ];
    for (value, digest) in published {
        expect(
            &mut con,
            &[
                (&["SET", "k", value], "+OK"),
                (&["DIGEST", "k"], &format!("\"{digest}\"")),
            ],
        );
    }
    // An integer-encoded string has the digest of its text; a long value takes XXH3's long path.
    let long = "x".repeat(5000);
    let digest =
        |con: &mut redis::Connection, key: &str| show(&run(con, &[b"DIGEST", key.as_bytes()]));
    expect(
        &mut con,
        &[
            (&["SET", "n", "12345"], "+OK"),
            (&["APPEND", "s", "12345"], "(integer) 5"),
            (&["SET", "long", &long], "+OK"),
            (&["DIGEST", "missing"], "(nil)"),
            (&["LPUSH", "list", "a"], "(integer) 1"),
            (&["DIGEST", "list"], WRONGTYPE),
            (
                &["DIGEST"],
                "(error) ERR wrong number of arguments for 'digest' command",
            ),
        ],
    );
    assert_eq!(digest(&mut con, "n"), digest(&mut con, "s"));
    assert_ne!(digest(&mut con, "long"), digest(&mut con, "n"));
    assert_eq!(
        digest(&mut con, "long").len(),
        18,
        "sixteen digits in quotes"
    );
}

/// SET's four conditions: which create a missing key, which leave a different value alone, the
/// digest in either case, GET's reply whatever the condition did, and the options that exclude
/// one another.
#[test]
fn set_compares_before_it_writes() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    expect(
        &mut con,
        &[
            (&["SET", "k", "v1"], "+OK"),
            (&["SET", "k", "v2", "IFEQ", "other"], "(nil)"),
            (&["GET", "k"], "\"v1\""),
            (&["SET", "k", "v2", "ifeq", "v1", "EX", "100"], "+OK"),
            (&["GET", "k"], "\"v2\""),
            (&["TTL", "k"], "(integer) 100"),
            (&["SET", "k", "v3", "IFNE", "v2"], "(nil)"),
            (&["SET", "k", "v3", "IFNE", "v1", "KEEPTTL"], "+OK"),
            (&["TTL", "k"], "(integer) 100"),
            // IFEQ and IFDEQ never create a key; IFNE and IFDNE do.
            (&["SET", "new", "x", "IFEQ", "x"], "(nil)"),
            (&["SET", "new", "x", "IFDEQ", "9ec9f7918d7dfc40"], "(nil)"),
            (&["EXISTS", "new"], "(integer) 0"),
            (&["SET", "new", "x", "IFNE", "x"], "+OK"),
            (&["SET", "new2", "y", "IFDNE", "0000000000000000"], "+OK"),
            (&["SET", "t", "test"], "+OK"),
            (&["SET", "t", "a", "IFDEQ", "9EC9F7918D7DFC40"], "+OK"),
            (&["SET", "t", "b", "IFDEQ", "9ec9f7918d7dfc40"], "(nil)"),
            (&["SET", "t", "test"], "+OK"),
            (&["SET", "t", "c", "IFDNE", "9ec9f7918d7dfc40"], "(nil)"),
            (&["SET", "t", "c", "IFDNE", "9ec9f7918d7dfc4"], "+OK"),
            // GET answers the old value whether or not the condition let the write happen.
            (&["SET", "t", "d", "IFEQ", "nope", "GET"], "\"c\""),
            (&["GET", "t"], "\"c\""),
            (&["SET", "t", "d", "GET", "IFEQ", "c"], "\"c\""),
            (&["GET", "t"], "\"d\""),
            (&["SET", "absent", "d", "IFEQ", "x", "GET"], "(nil)"),
            // A comparison reads a string; the other types answer WRONGTYPE and stay.
            (&["RPUSH", "list", "a"], "(integer) 1"),
            (&["SET", "list", "v", "IFEQ", "a"], WRONGTYPE),
            (&["SET", "list", "v", "IFNE", "a"], WRONGTYPE),
            (&["TYPE", "list"], "+list"),
            // NX, XX and the four exclude one another; a comparison needs its argument.
            (&["SET", "k", "v", "NX", "IFEQ", "v"], SYNTAX),
            (&["SET", "k", "v", "IFEQ", "v", "XX"], SYNTAX),
            (&["SET", "k", "v", "IFEQ", "a", "IFNE", "b"], SYNTAX),
            (&["SET", "k", "v", "IFEQ"], SYNTAX),
            (&["SET", "k", "v", "IFDEQ"], SYNTAX),
            (&["GET", "k"], "\"v3\""),
        ],
    );
}

/// DELEX deletes any key without a condition, a string meeting its condition with one; DELIFEQ
/// is its IFEQ under Valkey's name.
#[test]
fn delex_and_delifeq_delete_on_a_match() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    expect(
        &mut con,
        &[
            (&["SET", "lock", "token-1"], "+OK"),
            (&["DELEX", "lock", "IFEQ", "token-2"], "(integer) 0"),
            (&["DELEX", "lock", "IFNE", "token-1"], "(integer) 0"),
            (&["EXISTS", "lock"], "(integer) 1"),
            (&["DELEX", "lock", "IFEQ", "token-1"], "(integer) 1"),
            (&["EXISTS", "lock"], "(integer) 0"),
            (&["DELEX", "lock", "IFEQ", "token-1"], "(integer) 0"),
            (&["SET", "t", "test"], "+OK"),
            (&["DELEX", "t", "IFDNE", "9ec9f7918d7dfc40"], "(integer) 0"),
            (&["DELEX", "t", "IFDEQ", "9ec9f7918d7dfc40"], "(integer) 1"),
            (&["SET", "n", "7"], "+OK"),
            (&["DELEX", "n", "ifne", "8"], "(integer) 1"),
            // Without a condition any type goes; with one, only a string.
            (&["SADD", "set", "a"], "(integer) 1"),
            (&["DELEX", "set", "IFEQ", "a"], WRONGTYPE),
            (&["DELEX", "set"], "(integer) 1"),
            (&["DELEX", "set"], "(integer) 0"),
            (&["SET", "k", "v"], "+OK"),
            (&["DELEX", "k", "IFEQ"], SYNTAX),
            (&["DELEX", "k", "NOPE", "v"], SYNTAX),
            (&["DELEX", "k", "IFEQ", "v", "IFNE", "w"], SYNTAX),
            (
                &["DELEX"],
                "(error) ERR wrong number of arguments for 'delex' command",
            ),
            (&["DELIFEQ", "k", "w"], "(integer) 0"),
            (&["DELIFEQ", "k", "v"], "(integer) 1"),
            (&["DELIFEQ", "k", "v"], "(integer) 0"),
            (&["HSET", "h", "f", "v"], "(integer) 1"),
            (&["DELIFEQ", "h", "v"], WRONGTYPE),
            (
                &["DELIFEQ", "k"],
                "(error) ERR wrong number of arguments for 'delifeq' command",
            ),
        ],
    );
}

/// Locks released by DELEX IFEQ: clients take a lock with SET NX PX and release it only while it
/// holds their own token. A client that finds the lock taken tries to release it with a token
/// of its own, which must delete nothing; every release of a lock a client holds succeeds.
#[test]
fn lock_release_never_deletes_another_holders_lock() {
    let ember = Ember::start(2);
    let port = ember.port;
    let threads: Vec<_> = (0..4)
        .map(|client| {
            std::thread::spawn(move || {
                let mut con = common::connect(port, false);
                let (mut acquired, mut released) = (0, 0);
                for round in 0..300 {
                    let token = format!("client-{client}-{round}");
                    let taken: Option<String> = redis::cmd("SET")
                        .arg("lock")
                        .arg(&token)
                        .arg("NX")
                        .arg("PX")
                        .arg(60_000)
                        .query(&mut con)
                        .unwrap();
                    if taken.is_none() {
                        // Another client holds it: releasing with a token of ours must not
                        // delete their lock.
                        let stale = format!("client-{client}-{}", round.max(1) - 1);
                        let deleted: i64 = redis::cmd("DELEX")
                            .arg("lock")
                            .arg("IFEQ")
                            .arg(&stale)
                            .query(&mut con)
                            .unwrap();
                        assert_eq!(deleted, 0, "a stale token deleted a lock");
                        continue;
                    }
                    acquired += 1;
                    let deleted: i64 = redis::cmd("DELEX")
                        .arg("lock")
                        .arg("IFEQ")
                        .arg(&token)
                        .query(&mut con)
                        .unwrap();
                    released += deleted;
                }
                (acquired, released)
            })
        })
        .collect();
    let (mut acquired, mut released) = (0, 0);
    for thread in threads {
        let (a, r) = thread.join().unwrap();
        acquired += a;
        released += r;
    }
    assert!(acquired > 0);
    assert_eq!(
        released, acquired,
        "every holder released its own lock, no one else's"
    );
    let mut con = ember.connect(false);
    expect(&mut con, &[(&["EXISTS", "lock"], "(integer) 0")]);
}

/// MSETEX over keys on both shards: all or nothing under NX and XX, one expiry for every key,
/// KEEPTTL keeping each key's own, and its argument errors.
#[test]
fn msetex_sets_every_pair_with_one_expiry_across_shards() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let (a, b) = (key_on_shard("a", 0, 2), key_on_shard("b", 1, 2));
    let (a, b) = (a.as_str(), b.as_str());
    expect(
        &mut con,
        &[
            (&["MSETEX", "2", a, "1", b, "2", "EX", "100"], "(integer) 1"),
            (&["MGET", a, b], "[\"1\", \"2\"]"),
            (&["TTL", a], "(integer) 100"),
            (&["TTL", b], "(integer) 100"),
            (&["MSETEX", "2", a, "x", "c", "y", "NX"], "(integer) 0"),
            (&["EXISTS", "c"], "(integer) 0"),
            (&["MSETEX", "2", a, "x", "c", "y", "XX"], "(integer) 0"),
            (&["GET", a], "\"1\""),
            (
                &["MSETEX", "2", a, "3", b, "4", "XX", "KEEPTTL"],
                "(integer) 1",
            ),
            (&["MGET", a, b], "[\"3\", \"4\"]"),
            (&["TTL", b], "(integer) 100"),
            (&["MSETEX", "1", a, "5"], "(integer) 1"),
            (&["TTL", a], "(integer) -1"),
            (
                &["MSETEX", "2", "n1", "1", "n2", "2", "NX", "PX", "50000"],
                "(integer) 1",
            ),
            (&["PERSIST", "n2"], "(integer) 1"),
            // A time already past deletes, as SET's does.
            (&["MSETEX", "1", a, "6", "PXAT", "1"], "(integer) 1"),
            (&["EXISTS", a], "(integer) 0"),
            (
                &["MSETEX", "0", a, "1"],
                "(error) ERR numkeys should be greater than 0",
            ),
            (
                &["MSETEX", "x", a, "1"],
                "(error) ERR value is not an integer or out of range",
            ),
            (
                &["MSETEX", "3", a, "1", b, "2"],
                "(error) ERR Number of keys can't be greater than number of args",
            ),
            (&["MSETEX", "1", a, "1", "GET"], SYNTAX),
            (&["MSETEX", "1", a, "1", "IFEQ", "1"], SYNTAX),
            (&["MSETEX", "1", a, "1", "NX", "XX"], SYNTAX),
            (&["MSETEX", "1", a, "1", "EX", "10", "PX", "10"], SYNTAX),
            (
                &["MSETEX", "1", a, "1", "EX", "0"],
                "(error) ERR invalid expire time in 'msetex' command",
            ),
            (
                &[
                    "COMMAND", "GETKEYS", "MSETEX", "2", a, "1", b, "2", "EX", "5",
                ],
                &format!("[\"{a}\", \"{b}\"]"),
            ),
        ],
    );
}

/// Redis 8.2's DIFF, DIFF1, ANDOR and ONE over sources on both shards, and their errors.
#[test]
fn bitop_diff_diff1_andor_one() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let (x, y1, y2) = (
        key_on_shard("x", 0, 2),
        key_on_shard("y", 1, 2),
        key_on_shard("z", 0, 2),
    );
    let dest = key_on_shard("d", 1, 2);
    let set = |con: &mut redis::Connection, key: &str, bytes: &[u8]| {
        let _: () = redis::cmd("SET").arg(key).arg(bytes).query(con).unwrap();
    };
    set(&mut con, &x, b"\xf0\xaa");
    set(&mut con, &y1, b"\x30");
    set(&mut con, &y2, b"\x0f\x02");
    let cases: &[(&str, &[u8])] = &[
        // X and not (Y1 or Y2): f0 & !3f, aa & !02.
        ("DIFF", b"\xc0\xa8"),
        // Not X and (Y1 or Y2).
        ("DIFF1", b"\x0f\x00"),
        // X and (Y1 or Y2).
        ("ANDOR", b"\x30\x02"),
        // Bits in exactly one: f0^30^0f is cf, but 30's bits are in two; aa^02 likewise.
        ("one", b"\xcf\xa8"),
    ];
    for (op, expected) in cases {
        let len: i64 = redis::cmd("BITOP")
            .arg(op)
            .arg(&dest)
            .arg(&x)
            .arg(&y1)
            .arg(&y2)
            .query(&mut con)
            .unwrap();
        assert_eq!(len, 2, "{op}");
        let value: Vec<u8> = redis::cmd("GET").arg(&dest).query(&mut con).unwrap();
        assert_eq!(value, *expected, "{op}");
    }
    expect(
        &mut con,
        &[
            (&["BITOP", "ONE", &dest, &y1], "(integer) 1"),
            (&["GET", &dest], "\"0\""),
            (
                &["BITOP", "DIFF", &dest, &x],
                "(error) ERR BITOP DIFF must be called with at least two source keys.",
            ),
            (
                &["BITOP", "diff1", &dest, &x],
                "(error) ERR BITOP DIFF1 must be called with at least two source keys.",
            ),
            (
                &["BITOP", "AndOr", &dest, &x],
                "(error) ERR BITOP ANDOR must be called with at least two source keys.",
            ),
            (
                &["BITOP", "DIFF", &dest, "missing1", "missing2"],
                "(integer) 0",
            ),
            (&["EXISTS", &dest], "(integer) 0"),
            (&["SADD", "s", "a"], "(integer) 1"),
            (&["BITOP", "ONE", &dest, &x, "s"], WRONGTYPE),
        ],
    );
}
