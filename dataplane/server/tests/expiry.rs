//! Active expiry through a real client (issue 14, "expiry at scale"): keys with a TTL leave the
//! server without being read, whatever their type and database, with the memory they held; a
//! storm of keys expiring in one instant leaves the other keys served correctly; and
//! `expire-jitter-pct` spreads the instants keys written together actually go.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::Ember;

/// How long active expiry may take to remove keys that are all due: generous, as the machine
/// running the tests may be busy; the bound is on correctness (they go without a read), not
/// on speed, which bench/scripts/expiry-storm.py measures.
const DEADLINE: Duration = Duration::from_secs(20);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn dbsize(con: &mut redis::Connection, db: u32) -> u64 {
    let _: () = redis::cmd("SELECT").arg(db).query(con).unwrap();
    redis::cmd("DBSIZE").query(con).unwrap()
}

/// Polls DBSIZE of `db` (which reads no key) until it is `expected`; panics after [`DEADLINE`].
fn wait_for_dbsize(con: &mut redis::Connection, db: u32, expected: u64) -> Duration {
    let started = Instant::now();
    loop {
        let size = dbsize(con, db);
        if size == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < DEADLINE,
            "db {db}: DBSIZE still {size} (expected {expected}) after {:?}",
            started.elapsed()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Keys of every type, with relative and absolute TTLs, in two databases, next to keys without
/// a TTL: nobody reads them, and DBSIZE falls to the persistent keys in each database,
/// `expired_keys` counts every one, INFO keyspace shows no key with a TTL, and the memory they
/// held is given back to the allocator.
#[test]
fn keys_with_a_ttl_vanish_without_being_read() {
    const PER_TYPE: usize = 1000;
    const PERSISTENT: u64 = 20;
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let memory_empty = common::info_field(&mut con, "memory", "used_memory");
    // TTLs of 3 to 4 seconds: loading takes a while on a busy machine.
    let started = Instant::now();
    let expire_at = now_ms() + 4_000;
    let mut volatile = 0u64;
    for db in [0u32, 3] {
        let _: () = redis::cmd("SELECT").arg(db).query(&mut con).unwrap();
        let mut pipe = redis::pipe();
        for i in 0..PER_TYPE {
            // Values of 2 KB, so that what the keys hold stands well above what the
            // allocator's thread caches keep.
            let value = format!("value-{i:0>2048}");
            pipe.cmd("SET")
                .arg(format!("s:{i}"))
                .arg(&value)
                .arg("PX")
                .arg(3_000)
                .ignore();
            pipe.cmd("SET")
                .arg(format!("a:{i}"))
                .arg(&value)
                .arg("PXAT")
                .arg(expire_at)
                .ignore();
            pipe.cmd("HSET")
                .arg(format!("h:{i}"))
                .arg("f")
                .arg(&value)
                .arg("g")
                .arg(i)
                .ignore();
            pipe.cmd("PEXPIRE")
                .arg(format!("h:{i}"))
                .arg(3_200)
                .ignore();
            pipe.cmd("RPUSH")
                .arg(format!("l:{i}"))
                .arg(&value)
                .arg(i)
                .ignore();
            pipe.cmd("EXPIRE").arg(format!("l:{i}")).arg(3).ignore();
            pipe.cmd("SADD")
                .arg(format!("t:{i}"))
                .arg(&value)
                .arg(i)
                .ignore();
            pipe.cmd("PEXPIREAT")
                .arg(format!("t:{i}"))
                .arg(expire_at)
                .ignore();
            pipe.cmd("ZADD")
                .arg(format!("z:{i}"))
                .arg(1)
                .arg(&value)
                .ignore();
            pipe.cmd("PEXPIRE")
                .arg(format!("z:{i}"))
                .arg(3_500)
                .ignore();
            volatile += 6;
        }
        for i in 0..PERSISTENT {
            pipe.cmd("SET").arg(format!("kept:{i}")).arg(i).ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
    }
    let loaded = common::info_field(&mut con, "memory", "used_memory");
    let written = 2 * (6 * PER_TYPE as u64 + PERSISTENT);
    let counted = dbsize(&mut con, 0) + dbsize(&mut con, 3);
    // On a machine so slow that the load outlasted the shortest TTL, some keys went (or, given
    // an absolute time already past, were never stored) before they could be counted.
    let on_time = started.elapsed() < Duration::from_secs(3);
    if on_time {
        assert_eq!(counted, written);
    }
    for db in [0, 3] {
        wait_for_dbsize(&mut con, db, PERSISTENT);
    }
    if on_time {
        assert_eq!(
            common::info_field(&mut con, "stats", "expired_keys"),
            volatile
        );
    }
    let keyspace: String = redis::cmd("INFO").arg("keyspace").query(&mut con).unwrap();
    for db in [0, 3] {
        assert!(
            keyspace.contains(&format!("db{db}:keys={PERSISTENT},expires=0,")),
            "{keyspace}"
        );
    }
    // The persistent keys are all there, untouched.
    let _: () = redis::cmd("SELECT").arg(3).query(&mut con).unwrap();
    for i in 0..PERSISTENT {
        let value: u64 = redis::cmd("GET")
            .arg(format!("kept:{i}"))
            .query(&mut con)
            .unwrap();
        assert_eq!(value, i);
    }
    // What the keys held is freed: at least three quarters of what loading them added.
    let freed = common::info_field(&mut con, "memory", "used_memory");
    assert!(
        loaded > memory_empty && freed < memory_empty + (loaded - memory_empty) / 4,
        "used_memory {memory_empty} empty, {loaded} loaded, {freed} after the expiry"
    );
}

/// 100,000 keys expiring in the same millisecond while clients read and write other keys on
/// both shards: every reply stays correct through the storm, and the keys go without a read.
#[test]
fn a_storm_of_keys_expiring_together_leaves_other_keys_served() {
    const STORM: u64 = 100_000;
    const OTHERS: u64 = 500;
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let mut pipe = redis::pipe();
    for i in 0..OTHERS {
        pipe.cmd("SET").arg(format!("other:{i}")).arg(i).ignore();
    }
    let _: () = pipe.query(&mut con).unwrap();
    let expire_at = now_ms() + 8_000;
    for chunk in 0..STORM / 10_000 {
        let mut pipe = redis::pipe();
        for i in chunk * 10_000..(chunk + 1) * 10_000 {
            pipe.cmd("SET")
                .arg(format!("storm:{i:0>10}"))
                .arg("vvvvvvvvvvvvvvvv")
                .arg("PXAT")
                .arg(expire_at)
                .ignore();
        }
        let _: () = pipe.query(&mut con).unwrap();
    }
    if now_ms() < expire_at {
        assert_eq!(dbsize(&mut con, 0), STORM + OTHERS);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|client| {
            let mut con = ember.connect(false);
            let stop = stop.clone();
            thread::spawn(move || {
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let i = (round * 7 + client) % OTHERS;
                    let key = format!("other:{i}");
                    if round % 2 == 0 {
                        let value: u64 = redis::cmd("GET").arg(&key).query(&mut con).unwrap();
                        assert_eq!(value % OTHERS, i, "{key}");
                    } else {
                        let _: () = redis::cmd("SET")
                            .arg(&key)
                            .arg(i + OTHERS * round)
                            .query(&mut con)
                            .unwrap();
                    }
                    round += 1;
                }
            })
        })
        .collect();
    wait_for_dbsize(&mut con, 0, OTHERS);
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("a client saw a wrong reply");
    }
    assert_eq!(common::info_field(&mut con, "stats", "expired_keys"), STORM);
    for i in 0..OTHERS {
        let value: u64 = redis::cmd("GET")
            .arg(format!("other:{i}"))
            .query(&mut con)
            .unwrap();
        assert_eq!(value % OTHERS, i);
    }
}

/// 2,000 keys written together with PX 2000: with `expire-jitter-pct 100` their expiries spread
/// over 2 to 4 seconds, so DBSIZE (read, never the keys) passes through values between all and
/// none for most of two seconds; without jitter (the default) they all go together. The bounds
/// leave room for polls that come up to a second apart on a loaded machine (CI ran this beside
/// benchmarks once, and its 20 ms polls came 200-850 ms apart).
#[test]
fn jitter_spreads_when_keys_actually_go() {
    const KEYS: u64 = 2_000;
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    // Writes the keys and polls DBSIZE every 20 ms until they have all gone: the counts seen,
    // each with the time since the write began, read after DBSIZE answered (so never early).
    let storm = |con: &mut redis::Connection| {
        let started = Instant::now();
        let mut pipe = redis::pipe();
        for i in 0..KEYS {
            pipe.cmd("SET")
                .arg(format!("avalanche:{i}"))
                .arg(i)
                .arg("PX")
                .arg(2_000)
                .ignore();
        }
        let _: () = pipe.query(con).unwrap();
        let mut seen = Vec::new();
        loop {
            let size = dbsize(con, 0);
            seen.push((started.elapsed(), size));
            if size == 0 {
                return seen;
            }
            assert!(started.elapsed() < DEADLINE, "keys left: {seen:?}");
            thread::sleep(Duration::from_millis(20));
        }
    };
    // When the first key was seen gone, and when the last.
    let first_and_last = |seen: &[(Duration, u64)]| {
        let first = seen.iter().find(|&&(_, size)| size < KEYS).unwrap().0;
        (first, seen.last().unwrap().0)
    };
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "expire-jitter-pct", "100"])
        .query(&mut con)
        .unwrap();
    let seen = storm(&mut con);
    let (first, last) = first_and_last(&seen);
    // Nothing goes before its TTL as given, whatever the jitter.
    assert!(first >= Duration::from_millis(2_000), "{seen:?}");
    // Expiries uniform over 2..=4 s: the last goes about two seconds after the first, and on
    // the way DBSIZE shows some gone and most not, then most gone and some not (from 10% to
    // 90% gone takes 1.6 s).
    assert!(
        last >= first + Duration::from_millis(1_000),
        "with jitter the keys went over {first:?}..{last:?}: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|&(_, size)| size > KEYS / 10 && size < KEYS * 9 / 10),
        "{seen:?}"
    );
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "expire-jitter-pct", "0"])
        .query(&mut con)
        .unwrap();
    let seen = storm(&mut con);
    let (first, last) = first_and_last(&seen);
    assert!(first >= Duration::from_millis(2_000), "{seen:?}");
    assert!(
        last < first + Duration::from_millis(1_000),
        "without jitter the keys went over {first:?}..{last:?}: {seen:?}"
    );
}
