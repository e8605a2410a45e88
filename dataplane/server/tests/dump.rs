//! DUMP / RESTORE through the `redis` crate between a two-shard ember and a real redis-server
//! 7.0: every type in each of its size classes round-trips ember → ember, ember → Redis →
//! ember and Redis → ember with the same contents; the errors (BUSYKEY, TTL, footer, format,
//! options) are Redis's, side by side; corrupted payloads are refused and the server lives.

mod common;

use common::values::{cmd, contents, fill, keys};
use common::{run, show, Ember, RedisOracle};
use ember_store::dump::crc64;

fn dump(con: &mut redis::Connection, key: &str) -> Vec<u8> {
    let payload: Vec<u8> = redis::cmd("DUMP")
        .arg(key)
        .query(con)
        .unwrap_or_else(|error| panic!("DUMP {key}: {error}"));
    assert!(payload.len() > 10, "DUMP {key}: {payload:?}");
    payload
}

fn restore(con: &mut redis::Connection, key: &str, payload: &[u8]) {
    let reply: String = redis::cmd("RESTORE")
        .arg(key)
        .arg(0)
        .arg(payload)
        .arg("REPLACE")
        .query(con)
        .unwrap_or_else(|error| panic!("RESTORE {key}: {error}"));
    assert_eq!(reply, "OK");
}

#[test]
fn every_type_round_trips_through_ember_and_redis() {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    let (mut ours, mut theirs) = (ember.connect(false), oracle.connect(false));
    fill(&mut ours);
    fill(&mut theirs);
    for key in keys() {
        let original = contents(&mut ours, &key);
        assert_eq!(
            original,
            contents(&mut theirs, &key),
            "{key}: fixtures differ"
        );
        let encoding = cmd(&mut ours, &["OBJECT", "ENCODING", &key]);

        // ember -> ember, into another shard's key as often as not.
        let payload = dump(&mut ours, &key);
        let copy = format!("{key}:copy");
        restore(&mut ours, &copy, &payload);
        assert_eq!(
            contents(&mut ours, &copy),
            original,
            "{key}: ember -> ember"
        );
        assert_eq!(
            cmd(&mut ours, &["OBJECT", "ENCODING", &copy]),
            encoding,
            "{key}"
        );

        // ember -> redis -> ember.
        restore(&mut theirs, &copy, &payload);
        assert_eq!(
            contents(&mut theirs, &copy),
            original,
            "{key}: ember -> redis"
        );
        let back = dump(&mut theirs, &copy);
        let again = format!("{key}:again");
        restore(&mut ours, &again, &back);
        assert_eq!(
            contents(&mut ours, &again),
            original,
            "{key}: ember -> redis -> ember"
        );

        // redis -> ember, from Redis's own encoding of the key.
        let theirs_payload = dump(&mut theirs, &key);
        let from_redis = format!("{key}:redis");
        restore(&mut ours, &from_redis, &theirs_payload);
        assert_eq!(
            contents(&mut ours, &from_redis),
            original,
            "{key}: redis -> ember"
        );
    }
}

/// `payload` with its footer recomputed: version `version`, a CRC64 that matches.
fn with_footer(body: &[u8], version: u16) -> Vec<u8> {
    let mut payload = body.to_vec();
    payload.extend_from_slice(&version.to_le_bytes());
    let crc = crc64(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    payload
}

#[test]
fn restore_errors_match_redis() {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    let (mut ours, mut theirs) = (ember.connect(false), oracle.connect(false));
    let string_payload = with_footer(b"\x00\x03abc", 10);
    let mut wrong_crc = string_payload.clone();
    *wrong_crc.last_mut().unwrap() ^= 1;
    let cases: Vec<Vec<Vec<u8>>> = vec![
        vec![b"SET".to_vec(), b"k".to_vec(), b"v".to_vec()],
        vec![b"DUMP".to_vec(), b"missing".to_vec()],
        vec![
            b"RESTORE".to_vec(),
            b"k".to_vec(),
            b"0".to_vec(),
            string_payload.clone(),
        ],
        vec![
            b"RESTORE".to_vec(),
            b"n".to_vec(),
            b"-1".to_vec(),
            string_payload.clone(),
        ],
        vec![
            b"RESTORE".to_vec(),
            b"n".to_vec(),
            b"x".to_vec(),
            string_payload.clone(),
        ],
        vec![b"RESTORE".to_vec(), b"n".to_vec(), b"0".to_vec(), wrong_crc],
        vec![
            b"RESTORE".to_vec(),
            b"n".to_vec(),
            b"0".to_vec(),
            b"short".to_vec(),
        ],
        // Version 11 (Redis 7.2's) is left out: Redis 7.0 refuses it, 7.2 and Ember read it.
        vec![
            b"RESTORE".to_vec(),
            b"n".to_vec(),
            b"0".to_vec(),
            with_footer(b"\x00\x03abc", 13),
        ],
        vec![
            b"RESTORE".to_vec(),
            b"n".to_vec(),
            b"0".to_vec(),
            with_footer(b"\x00\x09abc", 10),
        ],
        vec![
            b"RESTORE".to_vec(),
            b"n".to_vec(),
            b"0".to_vec(),
            with_footer(b"\x63\x03abc", 10),
        ],
        vec![
            b"RESTORE".to_vec(),
            b"n".to_vec(),
            b"0".to_vec(),
            with_footer(b"\x02\x00", 10),
        ],
        vec![
            b"RESTORE".to_vec(),
            b"n".to_vec(),
            b"0".to_vec(),
            with_footer(b"\x0b\x03abc", 10),
        ],
        vec![
            b"RESTORE".to_vec(),
            b"n".to_vec(),
            b"0".to_vec(),
            string_payload.clone(),
            b"FOO".to_vec(),
        ],
        vec![
            b"RESTORE".to_vec(),
            b"n".to_vec(),
            b"0".to_vec(),
            string_payload.clone(),
            b"IDLETIME".to_vec(),
            b"-1".to_vec(),
        ],
        vec![
            b"RESTORE".to_vec(),
            b"n".to_vec(),
            b"0".to_vec(),
            string_payload.clone(),
            b"FREQ".to_vec(),
            b"256".to_vec(),
        ],
        vec![
            b"RESTORE".to_vec(),
            b"n".to_vec(),
            b"0".to_vec(),
            string_payload.clone(),
            b"IDLETIME".to_vec(),
            b"5".to_vec(),
            b"FREQ".to_vec(),
            b"5".to_vec(),
        ],
        vec![
            b"RESTORE".to_vec(),
            b"n".to_vec(),
            b"0".to_vec(),
            string_payload.clone(),
            b"IDLETIME".to_vec(),
        ],
        vec![
            b"RESTORE".to_vec(),
            b"k".to_vec(),
            b"0".to_vec(),
            string_payload.clone(),
            b"REPLACE".to_vec(),
        ],
        vec![b"GET".to_vec(), b"k".to_vec()],
        vec![
            b"RESTORE".to_vec(),
            b"t".to_vec(),
            b"100000".to_vec(),
            string_payload.clone(),
        ],
        vec![b"PTTL".to_vec(), b"t".to_vec()],
        vec![
            b"RESTORE".to_vec(),
            b"k".to_vec(),
            b"1000".to_vec(),
            string_payload.clone(),
            b"ABSTTL".to_vec(),
            b"REPLACE".to_vec(),
        ],
        vec![b"EXISTS".to_vec(), b"k".to_vec()],
        vec![
            b"RESTORE".to_vec(),
            b"a".to_vec(),
            b"99999999999999".to_vec(),
            string_payload.clone(),
            b"ABSTTL".to_vec(),
        ],
        vec![b"PEXPIRETIME".to_vec(), b"a".to_vec()],
        vec![b"DUMP".to_vec(), b"a".to_vec()],
    ];
    for args in &cases {
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let mut expected = show(&run(&mut theirs, &args));
        let mut actual = show(&run(&mut ours, &args));
        if args[0] == b"PTTL" {
            // A TTL of 100 s, read a moment later on each server.
            let close = |shown: &str| {
                shown
                    .trim_start_matches("(integer) ")
                    .parse::<i64>()
                    .is_ok_and(|ttl| (99_000..=100_000).contains(&ttl))
            };
            assert!(
                close(&actual) && close(&expected),
                "PTTL {actual} / {expected}"
            );
            (actual, expected) = (String::new(), String::new());
        }
        let name = String::from_utf8_lossy(args[0]).to_string();
        let shown_args: Vec<String> = args
            .iter()
            .map(|a| format!("{:?}", String::from_utf8_lossy(a)))
            .collect();
        assert_eq!(actual, expected, "{name} {}", shown_args.join(" "));
    }
}

#[test]
fn corrupted_payloads_never_crash_a_shard() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    fill(&mut con);
    let mut refused = 0;
    for key in keys() {
        let payload = dump(&mut con, &key);
        let body = &payload[..payload.len() - 10];
        // Truncations and byte overwrites with a valid footer: each is refused or restores a
        // value; none takes the shard down.
        let step = (body.len() / 40).max(1);
        for at in (0..body.len()).step_by(step) {
            for garbled in [with_footer(&body[..at], 10), {
                let mut bad = body.to_vec();
                bad[at] = bad[at].wrapping_add(0x41);
                with_footer(&bad, 10)
            }] {
                let reply = run(&mut con, &[b"RESTORE", b"bad", b"0", &garbled, b"REPLACE"]);
                if let Err(error) = reply {
                    refused += 1;
                    assert_eq!(error.detail(), Some("Bad data format"), "{key} at {at}");
                }
            }
        }
    }
    assert!(refused > 100, "only {refused} refused");
    assert_eq!(cmd(&mut con, &["PING"]), "+PONG");
    assert_eq!(cmd(&mut con, &["GET", "s:embstr"]), "\"hello\"");
}

#[test]
fn hash_field_expiries_round_trip_in_redis_7_4s_layout() {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    let (mut ours, mut theirs) = (ember.connect(false), oracle.connect(false));
    cmd(&mut ours, &["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    cmd(&mut ours, &["HPEXPIRE", "h", "100000", "FIELDS", "1", "a"]);
    cmd(&mut ours, &["HPEXPIRE", "h", "200000", "FIELDS", "1", "b"]);
    let payload = dump(&mut ours, "h");
    // Version 12: Redis 7.0 refuses it as it refuses any payload newer than its own.
    let refused = run(&mut theirs, &[b"RESTORE", b"h", b"0", &payload]);
    assert_eq!(
        show(&refused),
        "(error) ERR DUMP payload version or checksum are wrong"
    );
    restore(&mut ours, "copy", &payload);
    assert_eq!(contents(&mut ours, "copy"), contents(&mut ours, "h"));
    let ttls = cmd(&mut ours, &["HPTTL", "copy", "FIELDS", "3", "a", "b", "c"]);
    let ttls: Vec<i64> = ttls
        .trim_matches(|c| c == '[' || c == ']')
        .split(", ")
        .map(|ttl| ttl.trim_start_matches("(integer) ").parse().unwrap())
        .collect();
    assert!((99_000..=100_000).contains(&ttls[0]), "{ttls:?}");
    assert!((199_000..=200_000).contains(&ttls[1]), "{ttls:?}");
    assert_eq!(ttls[2], -1);
}

#[test]
fn restore_sets_the_idle_time_or_the_frequency() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    cmd(&mut con, &["SET", "foo", "bar"]);
    let payload = dump(&mut con, "foo");
    cmd(
        &mut con,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
    );
    let reply = run(
        &mut con,
        &[
            b"RESTORE",
            b"foo",
            b"0",
            &payload,
            b"REPLACE",
            b"IDLETIME",
            b"1000",
        ],
    );
    assert_eq!(show(&reply), "+OK");
    let idle = cmd(&mut con, &["OBJECT", "IDLETIME", "foo"]);
    let idle: i64 = idle.trim_start_matches("(integer) ").parse().unwrap();
    assert!((1000..=1010).contains(&idle), "{idle}");
    cmd(
        &mut con,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
    );
    let reply = run(
        &mut con,
        &[
            b"RESTORE", b"foo", b"0", &payload, b"REPLACE", b"FREQ", b"100",
        ],
    );
    assert_eq!(show(&reply), "+OK");
    assert_eq!(cmd(&mut con, &["OBJECT", "FREQ", "foo"]), "(integer) 100");
    assert_eq!(cmd(&mut con, &["GET", "foo"]), "\"bar\"");
}

/// A redis-server that loaded `file` at start (killed on drop).
struct LoadedRedis(std::process::Child);

impl Drop for LoadedRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Redis's own old RDB files (the TCL suite's assets: RDB 4 with zipmap, ziplist, intset and
/// linked-list encodings, ziplist quicklists, ziplist hashes and sorted sets) read key by key
/// with `read_rdb_file`, each written back as a payload and restored into ember: the contents
/// equal what redis-server shows after loading the same file.
#[test]
fn redis_s_old_rdb_files_read_as_redis_reads_them() {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.deps/redis-tests/redis-7.0.15/tests/assets");
    let Some(_oracle) = RedisOracle::start() else {
        return;
    };
    if !assets.is_dir() {
        eprintln!("skipped: the Redis TCL suite is not in .deps (ci/setup.sh fetches it)");
        return;
    }
    let ember = Ember::start(2);
    let mut ours = ember.connect(false);
    let limits = ember_store::dump::RestoreLimits::default();
    let mut checked = 0;
    for name in [
        "encodings.rdb",
        "hash-zipmap.rdb",
        "hash-ziplist.rdb",
        "list-quicklist.rdb",
        "zset-ziplist.rdb",
    ] {
        let file = std::fs::read(assets.join(name)).unwrap();
        let dir = std::env::temp_dir().join(format!("ember-dump-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), &file).unwrap();
        let port = common::free_port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--dir", dir.to_str().unwrap(), "--dbfilename", name])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let _redis = LoadedRedis(child);
        let mut theirs = (0..100)
            .find_map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(50));
                redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .ok()?
                    .get_connection()
                    .ok()
            })
            .expect("redis-server with the file started");
        while cmd(&mut theirs, &["PING"]) != "+PONG" {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let keys = ember_store::dump::read_rdb_file(&file, &limits, 0)
            .unwrap_or_else(|error| panic!("{name}: {error}"))
            .keys;
        assert!(!keys.is_empty(), "{name}");
        for key in keys {
            let text = String::from_utf8(key.key.clone()).unwrap();
            let payload = ember_store::dump::dump(&key.value, 0);
            restore(&mut ours, &text, &payload);
            assert_eq!(
                contents(&mut ours, &text),
                contents(&mut theirs, &text),
                "{name}: {text}"
            );
            checked += 1;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    // Redis's corrupt files: refused, never a panic.
    for name in ["corrupt_ziplist.rdb", "corrupt_empty_keys.rdb"] {
        let file = std::fs::read(assets.join(name)).unwrap();
        let read = ember_store::dump::read_rdb_file(&file, &limits, 0);
        assert_eq!(
            read.map(|file| file.keys.len()),
            Err(ember_store::dump::DumpError::BadFormat),
            "{name}"
        );
    }
    eprintln!("{checked} keys of Redis's RDB files checked");
    assert!(checked >= 15, "{checked} keys");
}
