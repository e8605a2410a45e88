//! The append-only file through the real binary: with `appendonly yes`, every write survives a
//! kill (SIGKILL, no chance to save) and comes back at the next start; writes whose replay would
//! differ (relative or randomized expiries, random pops, `XADD *`, float increments, served
//! blocking pops, keys that expired) come back as they were; commands that span shards keep
//! their order; BGREWRITEAOF compacts the log into a new base; the directory moves between Ember
//! and redis-server 7.0 either way; a log cut short by a crash loads what is whole.

mod common;

use std::path::Path;
use std::time::Duration;

use common::values::{fill, keys};
use common::{
    command, key_on_shard, persistence_field as info_field, query, wait_until, Ember, RedisOracle,
    ScratchDir,
};

fn wait_for_rewrite(con: &mut redis::Connection) {
    wait_until("the rewrite", || {
        info_field(con, "aof_rewrite_in_progress") == "0"
    });
}

fn start_in(dir: &Path, extra: &[&str]) -> Ember {
    let mut args = vec![
        "--threads",
        "2",
        "--dir",
        dir.to_str().unwrap(),
        "--appendonly",
        "yes",
    ];
    args.extend_from_slice(extra);
    Ember::start_with(&args)
}

/// What a client sees of `key` ([`common::values::contents`]), or `none`.
fn contents(con: &mut redis::Connection, key: &str) -> String {
    if query::<i64>(con, &["EXISTS", key]) == 0 {
        return "none".into();
    }
    common::values::contents(con, key)
}

fn manifest(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap()
}

const LIBRARY: &str =
    "#!lua name=counters\nredis.register_function('bump', function(keys) return redis.call('incr', keys[1]) end)";

/// Keys the workload below writes besides the fixtures.
const EXTRA_KEYS: &[&str] = &[
    "float",
    "popped",
    "auto",
    "capped",
    "queue",
    "moved",
    "from",
    "to",
    "field-ttl",
    "claims",
    "gone",
    "union",
];

/// The fixtures' keys and [`EXTRA_KEYS`].
fn all_keys() -> Vec<String> {
    let mut all = keys();
    all.extend(EXTRA_KEYS.iter().map(|key| key.to_string()));
    all
}

/// Every type and size class, databases, TTLs, a library, and the writes whose replay would
/// differ from their run: all back, identical, after a kill and a restart.
#[test]
fn every_write_survives_a_kill() {
    let dir = ScratchDir::new("ember-aof");
    let (before, expire_times) = {
        let ember = start_in(dir.path(), &[]);
        let mut con = ember.connect(false);
        assert_eq!(info_field(&mut con, "aof_enabled"), "1");
        fill(&mut con);
        let _: String = query(&mut con, &["FUNCTION", "LOAD", LIBRARY]);
        let _: i64 = query(&mut con, &["FCALL", "bump", "1", "counter"]);
        // A relative expiry, and one Ember randomizes within its jitter: logged absolute.
        let _: () = query(&mut con, &["SET", "s:int", "7", "EX", "1000"]);
        let _: i64 = query(&mut con, &["PEXPIRE", "l:small", "500000"]);
        let _: String = query(&mut con, &["INCRBYFLOAT", "float", "0.1"]);
        let _: String = query(&mut con, &["INCRBYFLOAT", "float", "0.2"]);
        let _: i64 = query(&mut con, &["SADD", "popped", "a", "b", "c", "d", "e", "f"]);
        let _: Vec<String> = query(&mut con, &["SPOP", "popped", "3"]);
        for _ in 0..5 {
            let _: String = query(&mut con, &["XADD", "auto", "*", "k", "v"]);
        }
        for i in 0..300 {
            let _: String = query(
                &mut con,
                &[
                    "XADD",
                    "capped",
                    "MAXLEN",
                    "~",
                    "50",
                    "*",
                    "i",
                    &i.to_string(),
                ],
            );
        }
        let _: i64 = query(&mut con, &["RPUSH", "queue", "j1", "j2", "j3"]);
        let _: Vec<String> = query(&mut con, &["BLPOP", "queue", "1"]);
        // Keys on both shards: a move and a union across them, and an MSET.
        let _: i64 = query(&mut con, &["RPUSH", "from", "x", "y"]);
        let _: String = query(&mut con, &["LMOVE", "from", "moved", "LEFT", "RIGHT"]);
        let _: i64 = query(&mut con, &["SADD", "set:small", "extra"]);
        let _: i64 = query(
            &mut con,
            &["SUNIONSTORE", "union", "set:small", "set:intset"],
        );
        let _: () = query(&mut con, &["MSET", "to", "1", "s:embstr", "again"]);
        let _: i64 = query(&mut con, &["HSET", "field-ttl", "a", "1", "b", "2"]);
        let _: Vec<i64> = query(
            &mut con,
            &["HEXPIRE", "field-ttl", "1000", "FIELDS", "1", "a"],
        );
        let _: () = query(&mut con, &["SET", "gone", "x"]);
        let _: Vec<i64> = query(&mut con, &["HPEXPIRE", "h:small", "0", "FIELDS", "1", "f"]);
        let _: i64 = query(&mut con, &["EXPIRE", "gone", "-1"]);
        for id in ["1-1", "2-1", "3-1", "4-1"] {
            let _: String = query(&mut con, &["XADD", "claims", id, "f", "v"]);
        }
        let _: () = query(&mut con, &["XGROUP", "CREATE", "claims", "g", "0"]);
        let _: redis::Value = query(
            &mut con,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c1",
                "COUNT",
                "3",
                "STREAMS",
                "claims",
                ">",
            ],
        );
        let _: redis::Value = query(&mut con, &["XCLAIM", "claims", "g", "c2", "0", "1-1"]);
        let _: redis::Value = query(
            &mut con,
            &[
                "XAUTOCLAIM",
                "claims",
                "g",
                "c3",
                "0",
                "0-0",
                "COUNT",
                "1",
                "JUSTID",
            ],
        );
        let _: i64 = query(&mut con, &["XDEL", "claims", "3-1"]);
        let _: redis::Value = query(&mut con, &["XAUTOCLAIM", "claims", "g", "c4", "0", "0-0"]);
        let _: () = query(&mut con, &["SELECT", "4"]);
        let _: () = query(&mut con, &["SET", "in-four", "4"]);
        let _: () = query(&mut con, &["SELECT", "0"]);
        let _: () = query(&mut con, &["SWAPDB", "4", "5"]);
        let before: Vec<String> = all_keys()
            .iter()
            .map(|key| contents(&mut con, key))
            .collect();
        let expire_times: Vec<i64> = ["s:int", "l:small"]
            .iter()
            .map(|key| query(&mut con, &["PEXPIRETIME", key]))
            .collect();
        (before, expire_times)
        // Dropped: killed with SIGKILL, nothing saved at exit.
    };
    let ember = start_in(dir.path(), &[]);
    assert!(
        ember.log().contains("append-only file replayed"),
        "{}",
        ember.log()
    );
    let mut con = ember.connect(false);
    let all = all_keys();
    let after: Vec<String> = all.iter().map(|key| contents(&mut con, key)).collect();
    for ((key, before), after) in all.iter().zip(&before).zip(&after) {
        assert_eq!(after, before, "{key}");
    }
    let times_after: Vec<i64> = ["s:int", "l:small"]
        .iter()
        .map(|key| query(&mut con, &["PEXPIRETIME", key]))
        .collect();
    assert_eq!(
        times_after, expire_times,
        "expiries kept to the millisecond"
    );
    assert_eq!(
        query::<i64>(&mut con, &["FCALL", "bump", "1", "counter"]),
        2
    );
    let _: () = query(&mut con, &["SELECT", "5"]);
    assert_eq!(query::<String>(&mut con, &["GET", "in-four"]), "4");
}

/// A key that expired is logged as deleted where it expired: the replay, which keeps every TTL
/// live, sees the later writes as they ran (a new key, no TTL), not on top of the old value.
#[test]
fn an_expiry_replays_where_it_happened() {
    let dir = ScratchDir::new("ember-aof");
    {
        let ember = start_in(dir.path(), &[]);
        let mut con = ember.connect(false);
        let _: () = query(&mut con, &["SET", "counter", "5", "PX", "200"]);
        let _: i64 = query(&mut con, &["INCRBY", "counter", "1"]);
        std::thread::sleep(Duration::from_millis(300));
        // Expired by now: INCR starts again from nothing.
        assert_eq!(query::<i64>(&mut con, &["INCR", "counter"]), 1);
        // And one that the active expiry removes with nobody reading it.
        let _: () = query(&mut con, &["SET", "forgotten", "v", "PX", "50"]);
        wait_until("the active expiry", || {
            let info: String = query(&mut con, &["INFO", "stats"]);
            info.contains("expired_keys:2")
        });
        let _: i64 = query(&mut con, &["RPUSH", "forgotten", "new"]);
    }
    let ember = start_in(dir.path(), &[]);
    let mut con = ember.connect(false);
    assert_eq!(query::<String>(&mut con, &["GET", "counter"]), "1");
    assert_eq!(query::<i64>(&mut con, &["TTL", "counter"]), -1);
    assert_eq!(
        query::<Vec<String>>(&mut con, &["LRANGE", "forgotten", "0", "-1"]),
        ["new"]
    );
}

/// Many clients write keys on both shards at once, with commands that read one shard and write
/// another: the log's one order replays to the same dataset.
#[test]
fn concurrent_writes_across_shards_replay_to_the_same_dataset() {
    let dir = ScratchDir::new("ember-aof");
    let names: Vec<String> = (0..8)
        .map(|i| key_on_shard(&format!("k{i}:"), i % 2, 2))
        .collect();
    let before: Vec<String> = {
        let ember = start_in(dir.path(), &[]);
        let port = ember.port;
        let workers: Vec<_> = (0..4)
            .map(|worker| {
                let names = names.clone();
                std::thread::spawn(move || {
                    let mut con = common::connect(port, false);
                    let mut state = 0x9e37_79b9_u64 + worker;
                    let mut next = |bound: usize| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state % bound as u64) as usize
                    };
                    for i in 0..400 {
                        let first = next(8);
                        let (a, b) = (&names[first], &names[(first + 1 + next(7)) % 8]);
                        let value = format!("{worker}-{i}");
                        let args: Vec<&str> = match next(6) {
                            0 => vec!["SADD", a, &value],
                            1 => vec!["SUNIONSTORE", b, a, b],
                            2 => vec!["SMOVE", a, b, &value],
                            3 => vec!["SREM", a, &value],
                            4 => vec!["COPY", a, b, "REPLACE"],
                            _ => vec!["DEL", a],
                        };
                        // WRONGTYPE cannot happen (sets only); other errors would be bugs.
                        command(&args).query::<redis::Value>(&mut con).unwrap();
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        let mut con = ember.connect(false);
        names.iter().map(|key| contents(&mut con, key)).collect()
    };
    let ember = start_in(dir.path(), &[]);
    let mut con = ember.connect(false);
    let after: Vec<String> = names.iter().map(|key| contents(&mut con, key)).collect();
    assert_eq!(after, before);
}

/// BGREWRITEAOF writes a new base and starts a new increment; the old files go; what was
/// written before, during and after it all comes back.
#[test]
fn a_rewrite_compacts_the_log() {
    let dir = ScratchDir::new("ember-aof");
    {
        let ember = start_in(dir.path(), &["--rdb-key-save-delay", "100000"]);
        let mut con = ember.connect(false);
        wait_for_rewrite(&mut con);
        assert!(
            manifest(dir.path()).contains("appendonly.aof.1.base.rdb seq 1 type b"),
            "{}",
            manifest(dir.path())
        );
        for i in 0..100 {
            let _: i64 = query(&mut con, &["INCR", &format!("n{}", i % 10)]);
        }
        let size_before: u64 = info_field(&mut con, "aof_current_size").parse().unwrap();
        let rewrites: u64 = info_field(&mut con, "aof_rewrites").parse().unwrap();
        assert_eq!(
            query::<String>(&mut con, &["BGREWRITEAOF"]),
            "Background append only file rewriting started"
        );
        assert_eq!(info_field(&mut con, "aof_rewrite_in_progress"), "1");
        // Written while the base is still being encoded: in the new increment.
        let _: () = query(&mut con, &["SET", "during", "1"]);
        let refused: redis::RedisResult<String> = command(&["BGREWRITEAOF"]).query(&mut con);
        assert!(refused.is_err(), "{refused:?}");
        wait_for_rewrite(&mut con);
        assert_eq!(info_field(&mut con, "aof_last_bgrewrite_status"), "ok");
        assert_eq!(
            info_field(&mut con, "aof_rewrites"),
            (rewrites + 1).to_string()
        );
        let text = manifest(dir.path());
        assert!(
            text.contains("appendonly.aof.2.base.rdb seq 2 type b")
                && text.contains("appendonly.aof.2.incr.aof seq 2 type i")
                && !text.contains("seq 1"),
            "{text}"
        );
        assert!(!dir
            .path()
            .join("appendonlydir/appendonly.aof.1.incr.aof")
            .exists());
        let size_after: u64 = info_field(&mut con, "aof_current_size").parse().unwrap();
        assert!(size_after < size_before, "{size_after} < {size_before}");
        let _: () = query(&mut con, &["SET", "after", "1"]);
    }
    let ember = start_in(dir.path(), &[]);
    let mut con = ember.connect(false);
    for i in 0..10 {
        assert_eq!(query::<String>(&mut con, &["GET", &format!("n{i}")]), "10");
    }
    assert_eq!(query::<String>(&mut con, &["GET", "during"]), "1");
    assert_eq!(query::<String>(&mut con, &["GET", "after"]), "1");
}

/// A crash mid-write leaves half a command at the log's end: the start loads what is whole,
/// says so, cuts the file there, and goes on appending after it.
#[test]
fn a_log_cut_short_loads_what_is_whole() {
    let dir = ScratchDir::new("ember-aof");
    {
        let ember = start_in(dir.path(), &[]);
        let mut con = ember.connect(false);
        let _: () = query(&mut con, &["SET", "whole", "1"]);
    }
    let increment = dir.path().join("appendonlydir/appendonly.aof.1.incr.aof");
    let whole_len = std::fs::metadata(&increment).unwrap().len();
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&increment)
            .unwrap();
        file.write_all(b"*3\r\n$3\r\nSET\r\n$4\r\nhalf").unwrap();
    }
    {
        let ember = start_in(dir.path(), &[]);
        assert!(
            ember.log().contains("ends in the middle of a command"),
            "{}",
            ember.log()
        );
        assert_eq!(std::fs::metadata(&increment).unwrap().len(), whole_len);
        let mut con = ember.connect(false);
        assert_eq!(query::<String>(&mut con, &["GET", "whole"]), "1");
        assert_eq!(query::<i64>(&mut con, &["EXISTS", "half"]), 0);
        let _: () = query(&mut con, &["SET", "next", "2"]);
    }
    let ember = start_in(dir.path(), &[]);
    let mut con = ember.connect(false);
    assert_eq!(query::<String>(&mut con, &["GET", "next"]), "2");
}

/// EXEC's writes are logged inside MULTI ... EXEC, as Redis logs them, with the commands that
/// ran on the other shard too; a transaction that wrote nothing logs nothing. A log that ends
/// inside a transaction (a crash while it was written) loads without any of it.
#[test]
fn a_transaction_is_logged_whole_or_not_at_all() {
    let dir = ScratchDir::new("ember-aof");
    let near = key_on_shard("near", 0, 2);
    let far = key_on_shard("far", 1, 2);
    let increment = dir.path().join("appendonlydir/appendonly.aof.1.incr.aof");
    {
        let ember = start_in(dir.path(), &[]);
        let mut con = ember.connect(false);
        let _: () = query(&mut con, &["SET", "before", "1"]);
        let _: () = query(&mut con, &["MULTI"]);
        let _: () = query(&mut con, &["GET", "before"]);
        let _: Vec<Option<String>> = query(&mut con, &["EXEC"]);
        let read_only = std::fs::read(&increment).unwrap();
        assert!(
            !contains(&read_only, b"MULTI"),
            "{}",
            String::from_utf8_lossy(&read_only)
        );
        let replies: redis::Value = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&near)
            .arg("a")
            .cmd("INCR")
            .arg("counter")
            .cmd("SET")
            .arg(&far)
            .arg("b")
            .query(&mut con)
            .unwrap();
        assert!(matches!(replies, redis::Value::Array(ref items) if items.len() == 3));
        let _: () = query(&mut con, &["SET", "after", "1"]);
    }
    let log = std::fs::read(&increment).unwrap();
    let multi = find(&log, b"*1\r\n$5\r\nMULTI\r\n").expect("MULTI in the log");
    let exec = find(&log, b"*1\r\n$4\r\nEXEC\r\n").expect("EXEC in the log");
    let block = &log[multi..exec];
    for key in [near.as_bytes(), b"counter", far.as_bytes()] {
        assert!(contains(block, key), "{}", String::from_utf8_lossy(&log));
    }
    assert!(contains(&log[exec..], b"after"));
    // Cut inside the block, as a crash while it was written leaves it.
    let cut = find(block, far.as_bytes()).unwrap() + multi;
    std::fs::write(&increment, &log[..cut]).unwrap();
    let ember = start_in(dir.path(), &[]);
    assert!(
        ember
            .log()
            .contains("ends in the middle of a command or transaction"),
        "{}",
        ember.log()
    );
    assert_eq!(std::fs::metadata(&increment).unwrap().len(), multi as u64);
    let mut con = ember.connect(false);
    assert_eq!(query::<String>(&mut con, &["GET", "before"]), "1");
    for key in [near.as_str(), "counter", far.as_str(), "after"] {
        assert_eq!(query::<i64>(&mut con, &["EXISTS", key]), 0, "{key}");
    }
}

/// A log that cannot be written (the increment a rewrite moves on to is /dev/full): under
/// `everysec` writes are then refused with MISCONF while reads go on; under `always` the
/// process ends, as Redis's does, before the reply of the write it could not log leaves.
#[test]
fn a_log_that_cannot_be_written_refuses_writes_or_ends_the_process() {
    for policy in ["everysec", "always"] {
        let dir = ScratchDir::new("ember-aof");
        let mut ember = start_in(dir.path(), &["--appendfsync", policy]);
        let mut con = ember.connect(false);
        wait_for_rewrite(&mut con);
        let _: () = query(&mut con, &["SET", "kept", "1"]);
        std::os::unix::fs::symlink(
            "/dev/full",
            dir.path().join("appendonlydir/appendonly.aof.2.incr.aof"),
        )
        .unwrap();
        let _: String = query(&mut con, &["BGREWRITEAOF"]);
        wait_for_rewrite(&mut con);
        assert!(
            manifest(dir.path()).contains("appendonly.aof.2.incr.aof seq 2 type i"),
            "{}",
            manifest(dir.path())
        );
        let written: redis::RedisResult<()> = command(&["SET", "unlogged", "1"]).query(&mut con);
        if policy == "always" {
            assert!(written.is_err(), "{policy}: the write was answered");
            let status = ember.wait_exit(Duration::from_secs(10));
            assert_eq!(status, Some(1), "{}", ember.log());
            // The server's log is read by another thread: its last line may come a moment later.
            wait_until("the reason in the server's log", || {
                ember
                    .log()
                    .contains("can't persist the append-only file with appendfsync always")
            });
            continue;
        }
        // everysec: that write is in memory; the next ones are refused until the log is
        // written again.
        written.unwrap();
        wait_until("the failed write-out", || {
            info_field(&mut con, "aof_last_write_status") == "err"
        });
        let refused: redis::RedisResult<()> = command(&["SET", "refused", "1"]).query(&mut con);
        let error = refused.unwrap_err();
        assert_eq!(error.code(), Some("MISCONF"), "{error}");
        assert_eq!(query::<String>(&mut con, &["GET", "kept"]), "1");
        // The server's log is read by another thread: the line may come a moment later.
        wait_until("the write error in the server's log", || {
            ember
                .log()
                .contains("error writing to the append-only file")
        });
    }
}

/// A script's writes are logged inside MULTI ... EXEC when there are several (a single write
/// alone), with those it made on the other shard, as Redis 7 logs a script; one that flushes a
/// database logs what it wrote before in its place. The log replays to the same data, and a
/// log cut inside a script's block loads none of that script.
#[test]
fn a_script_is_logged_whole_or_not_at_all() {
    let dir = ScratchDir::new("ember-aof");
    let near = key_on_shard("near", 0, 2);
    let far = key_on_shard("far", 1, 2);
    let increment = dir.path().join("appendonlydir/appendonly.aof.1.incr.aof");
    let eval = |con: &mut redis::Connection, script: &str, keys: &[&str]| {
        let _: redis::Value = command(&["EVAL", script, &keys.len().to_string()])
            .arg(keys)
            .query(con)
            .unwrap();
    };
    {
        let ember = start_in(dir.path(), &[]);
        let mut con = ember.connect(false);
        eval(
            &mut con,
            "redis.call('SET', KEYS[1], 'a') redis.call('SET', KEYS[2], 'b')",
            &["{t}x", "{t}y"],
        );
        eval(&mut con, "return redis.call('INCR', KEYS[1])", &["single"]);
        let _: () = query(&mut con, &["SELECT", "1"]);
        let _: () = query(&mut con, &["SET", "old", "1"]);
        eval(
            &mut con,
            "redis.call('SET', KEYS[1], 'flushed') redis.call('FLUSHDB') redis.call('SET', KEYS[2], 'kept')",
            &["{f}gone", "{f}kept"],
        );
        let _: () = query(&mut con, &["SELECT", "0"]);
        // Keys it did not declare, on both shards.
        eval(
            &mut con,
            &format!("redis.call('SET', '{near}', 'n') redis.call('SET', '{far}', 'f')"),
            &[],
        );
    }
    let log = std::fs::read(&increment).unwrap();
    let multi = b"*1\r\n$5\r\nMULTI\r\n";
    let starts: Vec<usize> = (0..log.len())
        .filter(|&at| log[at..].starts_with(multi))
        .collect();
    assert_eq!(starts.len(), 2, "{}", String::from_utf8_lossy(&log));
    assert!(contains(&log[starts[0]..starts[1]], b"{t}y"));
    let last = &log[starts[1]..];
    assert!(contains(last, near.as_bytes()) && contains(last, far.as_bytes()));
    assert!(last.ends_with(b"*1\r\n$4\r\nEXEC\r\n"));
    {
        let ember = start_in(dir.path(), &[]);
        let mut con = ember.connect(false);
        assert_eq!(query::<String>(&mut con, &["GET", "{t}y"]), "b");
        assert_eq!(query::<String>(&mut con, &["GET", "single"]), "1");
        assert_eq!(query::<String>(&mut con, &["GET", &far]), "f");
        let _: () = query(&mut con, &["SELECT", "1"]);
        assert_eq!(query::<i64>(&mut con, &["EXISTS", "old", "{f}gone"]), 0);
        assert_eq!(query::<String>(&mut con, &["GET", "{f}kept"]), "kept");
    }
    // Cut inside the last script's block.
    let log = std::fs::read(&increment).unwrap();
    let cut = starts[1] + find(&log[starts[1]..], far.as_bytes()).unwrap();
    std::fs::write(&increment, &log[..cut]).unwrap();
    let ember = start_in(dir.path(), &[]);
    let mut con = ember.connect(false);
    assert_eq!(query::<i64>(&mut con, &["EXISTS", &near, &far]), 0);
    assert_eq!(query::<String>(&mut con, &["GET", "{t}x"]), "a");
}

/// The replay at start runs every logged write whoever may write now: not refused by an ACL
/// that no longer lets the default user write, nor by a maxmemory the dataset is over, as
/// Redis's loading (the limit then refuses the clients' writes).
#[test]
fn the_replay_is_refused_neither_by_acl_nor_by_maxmemory() {
    let dir = ScratchDir::new("ember-aof");
    let value = "v".repeat(10_000);
    {
        let ember = start_in(dir.path(), &[]);
        let mut con = ember.connect(false);
        for i in 0..300 {
            let _: () = query(&mut con, &["SET", &format!("key:{i}"), &value]);
        }
    }
    let acl = dir.path().join("users.acl");
    std::fs::write(&acl, "user default on nopass ~* &* +@read\n").unwrap();
    let ember = start_in(
        dir.path(),
        &[
            "--aclfile",
            acl.to_str().unwrap(),
            "--maxmemory",
            "2mb",
            "--maxmemory-policy",
            "noeviction",
        ],
    );
    let mut con = ember.connect(false);
    assert_eq!(query::<i64>(&mut con, &["DBSIZE"]), 300, "{}", ember.log());
    assert!(
        !ember.log().contains("answered an error on replay"),
        "{}",
        ember.log()
    );
    let refused: redis::RedisResult<()> = command(&["SET", "new", "1"]).query(&mut con);
    assert!(refused.is_err());
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

/// CONFIG SET appendonly yes starts the log from the dataset as it is (a first rewrite); no
/// stops it; DEBUG LOADAOF reads it again; WAITAOF counts the local sync.
#[test]
fn the_log_turns_on_and_off_at_run_time() {
    let dir = ScratchDir::new("ember-aof");
    {
        let ember = Ember::start_with(&["--threads", "2", "--dir", dir.path().to_str().unwrap()]);
        let mut con = ember.connect(false);
        let _: () = query(&mut con, &["SET", "early", "1"]);
        let refused: redis::RedisResult<Vec<i64>> =
            command(&["WAITAOF", "1", "0", "0"]).query(&mut con);
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("appendonly is disabled"),
            "WAITAOF without a log"
        );
        let _: () = query(&mut con, &["CONFIG", "SET", "appendonly", "yes"]);
        wait_for_rewrite(&mut con);
        assert_eq!(info_field(&mut con, "aof_enabled"), "1");
        let _: () = query(&mut con, &["SET", "later", "2"]);
        assert_eq!(
            query::<Vec<i64>>(&mut con, &["WAITAOF", "1", "0", "0"]),
            [1, 0]
        );
        // DEBUG LOADAOF: the dataset read back from the log alone.
        let _: () = query(&mut con, &["DEBUG", "LOADAOF"]);
        assert_eq!(query::<String>(&mut con, &["GET", "early"]), "1");
        assert_eq!(query::<String>(&mut con, &["GET", "later"]), "2");
        let _: () = query(&mut con, &["CONFIG", "SET", "appendonly", "no"]);
        assert_eq!(info_field(&mut con, "aof_enabled"), "0");
        let _: () = query(&mut con, &["SET", "unlogged", "3"]);
    }
    let ember = start_in(dir.path(), &[]);
    let mut con = ember.connect(false);
    assert_eq!(query::<String>(&mut con, &["GET", "later"]), "2");
    assert_eq!(query::<i64>(&mut con, &["EXISTS", "unlogged"]), 0);
}

/// The directory Ember writes loads into redis-server 7.0 with the same contents, and the one
/// redis-server writes (its base and its increment) loads into Ember.
#[test]
fn logs_move_between_ember_and_redis() {
    let dir = ScratchDir::new("ember-aof");
    let before: Vec<String> = {
        let ember = start_in(dir.path(), &[]);
        let mut con = ember.connect(false);
        wait_for_rewrite(&mut con);
        fill(&mut con);
        let _: () = query(&mut con, &["SET", "volatile", "v", "EX", "1000"]);
        let _: String = query(&mut con, &["FUNCTION", "LOAD", LIBRARY]);
        // A transaction: its block, MULTI ... EXEC, loads in Redis too.
        let _: (i64, i64) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg("in-transaction")
            .cmd("INCR")
            .arg("in-transaction")
            .query(&mut con)
            .unwrap();
        keys().iter().map(|key| contents(&mut con, key)).collect()
    };
    let Some(redis) =
        // `always`: under `everysec`, Redis may postpone a write while a sync is under way
        // and answer meanwhile, so a killed redis-server can lose what it acknowledged (Ember
        // writes before it answers, whatever the policy).
        RedisOracle::start_with(&[
            "--dir",
            dir.path().to_str().unwrap(),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
    else {
        return;
    };
    let mut theirs = redis.connect(false);
    let in_redis: Vec<String> = keys()
        .iter()
        .map(|key| contents(&mut theirs, key))
        .collect();
    assert_eq!(in_redis, before, "Redis loaded Ember's log");
    assert!(query::<i64>(&mut theirs, &["TTL", "volatile"]) > 0);
    assert_eq!(
        query::<String>(&mut theirs, &["GET", "in-transaction"]),
        "2"
    );
    assert_eq!(query::<i64>(&mut theirs, &["FCALL", "bump", "1", "n"]), 1);
    // Back: Redis rewrites (a base of its own), then logs more; Ember loads both.
    let _: String = query(&mut theirs, &["BGREWRITEAOF"]);
    wait_until("Redis's rewrite", || {
        info_field(&mut theirs, "aof_rewrite_in_progress") == "0"
            && info_field(&mut theirs, "aof_rewrite_scheduled") == "0"
    });
    let _: () = query(
        &mut theirs,
        &["SET", "s:embstr", "from redis", "PX", "500000"],
    );
    let _: i64 = query(&mut theirs, &["RPUSH", "l:small", "pushed"]);
    let _: i64 = query(&mut theirs, &["FCALL", "bump", "1", "n"]);
    drop(theirs);
    drop(redis);
    let ember = start_in(dir.path(), &[]);
    let mut con = ember.connect(false);
    assert_eq!(
        query::<String>(&mut con, &["GET", "s:embstr"]),
        "from redis"
    );
    assert!(query::<i64>(&mut con, &["PTTL", "s:embstr"]) > 400_000);
    assert_eq!(
        query::<String>(&mut con, &["LINDEX", "l:small", "-1"]),
        "pushed"
    );
    assert_eq!(query::<String>(&mut con, &["GET", "n"]), "2");
    assert_eq!(
        contents(&mut con, "x:stream"),
        before[keys().iter().position(|k| k == "x:stream").unwrap()]
    );
}

/// `appendfsync always`: clients writing at once on both shards share syncs, and every write
/// they were answered for is there after a kill: with the syncs in the shards' rings (while
/// the shards go on serving) and, with `--io-uring no`, on the shards' threads.
#[test]
fn appendfsync_always_keeps_every_acknowledged_write() {
    for socket_io in [&[][..], &["--io-uring", "no"][..]] {
        let dir = ScratchDir::new("ember-aof");
        {
            let mut args = vec!["--appendfsync", "always"];
            args.extend_from_slice(socket_io);
            let ember = start_in(dir.path(), &args);
            let port = ember.port;
            let workers: Vec<_> = (0..6)
                .map(|worker| {
                    std::thread::spawn(move || {
                        let mut con = common::connect(port, false);
                        for _ in 0..200 {
                            let _: i64 = query(&mut con, &["INCR", &format!("counter:{worker}")]);
                        }
                    })
                })
                .collect();
            for worker in workers {
                worker.join().unwrap();
            }
            let mut con = ember.connect(false);
            assert_eq!(info_field(&mut con, "aof_last_write_status"), "ok");
        }
        let ember = start_in(dir.path(), &[]);
        let mut con = ember.connect(false);
        for worker in 0..6 {
            assert_eq!(
                query::<String>(&mut con, &["GET", &format!("counter:{worker}")]),
                "200",
                "{socket_io:?}"
            );
        }
    }
}
