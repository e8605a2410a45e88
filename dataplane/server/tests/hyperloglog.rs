//! HyperLogLog commands through the `redis` crate against a two-shard ember: replies and errors
//! side by side with a real redis-server, values that move between the two servers with GET
//! and SET and count alike, byte-identical values after the same PFADDs, and PFCOUNT /
//! PFMERGE over keys on both shards.

mod common;
mod family_compare;

use common::{run, show, Ember, RedisOracle};
use ember_store::slot::{key_slot, shard_of_slot};
use family_compare::{compare_args, ArgCase};

const SIDE_BY_SIDE: &[ArgCase] = arg_cases! {
    "pfadd pfcount" => [["PFADD", "h", "a", "b", "c"], ["PFADD", "h", "a"], ["PFADD", "h"], ["PFCOUNT", "h"], ["GET", "h"], ["PFADD", "new"], ["GET", "new"], ["PFCOUNT", "new"], ["PFCOUNT", "missing"], ["EXISTS", "missing"], ["PFADD", "h", "d"], ["GET", "h"], ["PFCOUNT", "h"], ["GET", "h"]],
    "pfcount of several keys" => [["PFADD", "h1", "a", "b", "c"], ["PFADD", "h2", "c", "d", "e"], ["PFCOUNT", "h1", "h2"], ["PFCOUNT", "h1", "h2", "missing"], ["PFCOUNT", "missing", "other"], ["GET", "h1"]],
    "pfmerge" => [["PFADD", "h1", "a", "b"], ["PFADD", "h2", "b", "c"], ["PFMERGE", "m", "h1", "h2"], ["PFCOUNT", "m"], ["GET", "m"], ["PFMERGE", "h1", "h2"], ["PFCOUNT", "h1"], ["PFMERGE", "empty", "missing"], ["GET", "empty"], ["PFMERGE", "alone"], ["EXISTS", "alone"], ["SET", "t", "v", "EX", "100"], ["DEL", "t"], ["PFADD", "t", "x"], ["EXPIRE", "t", "100"], ["PFMERGE", "t", "h2"], ["TTL", "t"]],
    "wrongtype" => [["SET", "s", "not a hyperloglog"], ["PFADD", "s", "a"], ["PFCOUNT", "s"], ["PFCOUNT", "s", "missing"], ["PFMERGE", "m", "s"], ["EXISTS", "m"], ["PFMERGE", "s", "missing"], ["SADD", "set", "a"], ["PFADD", "set", "a"], ["PFCOUNT", "set"], ["PFMERGE", "set"], ["SET", "short", "HYLL"], ["PFCOUNT", "short"]],
    "hll values are strings" => [["PFADD", "h", "a"], ["TYPE", "h"], ["STRLEN", "h"], ["APPEND", "h", "x"], ["PFCOUNT", "h"]],
    "pfdebug and pfselftest" => [["PFADD", "h", "a", "b", "c"], ["PFDEBUG", "DECODE", "h"], ["PFDEBUG", "encoding", "h"], ["PFDEBUG", "DECODE", "missing"], ["PFDEBUG", "FOO", "h"], ["PFDEBUG", "GETREG"], ["SET", "s", "x"], ["PFDEBUG", "ENCODING", "s"], ["LPUSH", "l", "x"], ["PFDEBUG", "ENCODING", "l"], ["PFDEBUG", "TODENSE", "h"], ["PFDEBUG", "TODENSE", "h"], ["PFDEBUG", "DECODE", "h"], ["PFDEBUG", "ENCODING", "h"], ["GET", "h"], ["PFCOUNT", "h"], ["PFADD", "g", "x", "y"], ["PFDEBUG", "GETREG", "g"], ["PFDEBUG", "ENCODING", "g"], ["PFSELFTEST"], ["PFSELFTEST", "x"]],
};

#[test]
fn hyperloglog_replies_match_redis_server() {
    compare_args(SIDE_BY_SIDE);
}

/// PFADDs `count` elements named `prefix:i` in batches of 100.
fn add_elements(con: &mut redis::Connection, key: &str, prefix: &str, count: usize) {
    for start in (0..count).step_by(100) {
        let mut command = redis::cmd("PFADD");
        command.arg(key);
        for index in start..(start + 100).min(count) {
            command.arg(format!("{prefix}:{index}"));
        }
        let _: i64 = command.query(con).unwrap();
    }
}

fn get_bytes(con: &mut redis::Connection, key: &str) -> Vec<u8> {
    redis::cmd("GET").arg(key).query(con).unwrap()
}

fn pfcount(con: &mut redis::Connection, keys: &[&str]) -> i64 {
    redis::cmd("PFCOUNT").arg(keys).query(con).unwrap()
}

/// The same PFADDs give the same bytes on both servers (sparse, promoted past
/// `hll-sparse-max-bytes`, dense), and a value made by one server counts alike on the other.
#[test]
fn values_move_between_redis_server_and_ember() {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    let mut ours = ember.connect(false);
    let mut theirs = oracle.connect(false);
    let cases: &[(&str, usize, &str)] = &[
        ("few", 10, "3000"),
        ("sparse", 500, "3000"),
        ("dense", 5000, "3000"),
        ("promoted early", 300, "200"),
    ];
    for (name, count, sparse_bytes_max) in cases {
        for con in [&mut ours, &mut theirs] {
            let _: () = redis::cmd("FLUSHALL").query(con).unwrap();
            let _: () = redis::cmd("CONFIG")
                .arg("SET")
                .arg("hll-sparse-max-bytes")
                .arg(sparse_bytes_max)
                .query(con)
                .unwrap();
            add_elements(con, "h", name, *count);
        }
        assert_eq!(
            get_bytes(&mut ours, "h"),
            get_bytes(&mut theirs, "h"),
            "{name}: same bytes after the same PFADDs"
        );
        let count_theirs = pfcount(&mut theirs, &["h"]);
        assert_eq!(pfcount(&mut ours, &["h"]), count_theirs, "{name}");
        // The cached count is written back alike.
        assert_eq!(
            get_bytes(&mut ours, "h"),
            get_bytes(&mut theirs, "h"),
            "{name}"
        );

        // redis-server's value, SET into ember, and the other way round.
        add_elements(&mut theirs, "from-redis", &format!("{name}-r"), *count);
        let value = get_bytes(&mut theirs, "from-redis");
        let _: () = redis::cmd("SET")
            .arg("from-redis")
            .arg(&value)
            .query(&mut ours)
            .unwrap();
        assert_eq!(
            pfcount(&mut ours, &["from-redis"]),
            pfcount(&mut theirs, &["from-redis"]),
            "{name}: redis-server's value counted by ember"
        );
        add_elements(&mut ours, "from-ember", &format!("{name}-e"), *count);
        let value = get_bytes(&mut ours, "from-ember");
        let _: () = redis::cmd("SET")
            .arg("from-ember")
            .arg(&value)
            .query(&mut theirs)
            .unwrap();
        assert_eq!(
            pfcount(&mut theirs, &["from-ember"]),
            pfcount(&mut ours, &["from-ember"]),
            "{name}: ember's value counted by redis-server"
        );
        let _: () = redis::cmd("SET")
            .arg("from-ember")
            .arg(&value)
            .query(&mut ours)
            .unwrap();
        assert_eq!(
            pfcount(&mut ours, &["h", "from-redis", "from-ember"]),
            pfcount(&mut theirs, &["h", "from-redis", "from-ember"]),
            "{name}: union"
        );
    }
}

/// The first key `prefix0`, `prefix1`... that the two-shard ember keeps on `shard`.
fn key_on_shard(prefix: &str, shard: usize) -> String {
    (0..)
        .map(|index| format!("{prefix}{index}"))
        .find(|key| shard_of_slot(key_slot(key.as_bytes()), 2) == shard)
        .expect("some key lands on each shard")
}

/// PFCOUNT and PFMERGE with keys on both shards agree with the same keys on one shard.
#[test]
fn pfcount_and_pfmerge_across_shards() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let (first, second) = (key_on_shard("a", 0), key_on_shard("b", 1));
    let (destination, local) = (key_on_shard("d", 1), key_on_shard("w", 0));
    add_elements(&mut con, &first, "x", 300);
    add_elements(&mut con, &second, "y", 300);
    add_elements(&mut con, &second, "x", 100);
    let union = pfcount(&mut con, &[&first, &second]);
    assert!((570..=630).contains(&union), "estimate {union} for 600");
    let ok: String = redis::cmd("PFMERGE")
        .arg(&destination)
        .arg(&first)
        .arg(&second)
        .query(&mut con)
        .unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(pfcount(&mut con, &[&destination]), union);
    // Merging again changes nothing; a WRONGTYPE source on the other shard stops the merge.
    let _: () = redis::cmd("SET")
        .arg(&local)
        .arg("x")
        .query(&mut con)
        .unwrap();
    let refused = run(
        &mut con,
        &[b"PFMERGE", destination.as_bytes(), local.as_bytes()],
    );
    assert_eq!(
        show(&refused),
        "(error) WRONGTYPE Key is not a valid HyperLogLog string value."
    );
    assert_eq!(pfcount(&mut con, &[&destination]), union);
}
