//! Hot keys through real clients: HOTKEYS (Redis 8.6) and `redis-cli --hotkeys`, the local
//! tier (copies of hot keys on every shard: served without a hop, never older than an
//! acknowledged write, invalidated on SET, DEL and EXPIRE), and `expire-jitter-pct`.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::Ember;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use redis::Value;

/// The first `prefix:i` key owned by `shard` of 2.
fn key_on(prefix: &str, shard: usize) -> String {
    common::key_on_shard(prefix, shard, 2)
}

/// A connection that landed on `shard` (of 2): connections are spread by SO_REUSEPORT, so
/// this opens connections until one of them asks another shard for a key of shard 0 (it is on
/// shard 1) or does not (on shard 0). `control` reads the hop counter; nothing else runs.
fn connection_on(
    ember: &Ember,
    control: &mut redis::Connection,
    shard: usize,
) -> redis::Connection {
    let probe = key_on("probe", 0);
    for _ in 0..64 {
        let mut con = ember.connect(false);
        let before = common::info_field(control, "ember", "cross_shard_hops");
        let _: Option<String> = redis::cmd("GET").arg(&probe).query(&mut con).unwrap();
        let after = common::info_field(control, "ember", "cross_shard_hops");
        // The second INFO's own broadcast is one hop; a GET from shard 1 is another.
        let on_shard = usize::from(after - before >= 2);
        if on_shard == shard {
            return con;
        }
    }
    panic!("no connection landed on shard {shard} in 64 tries");
}

fn tier_hits(control: &mut redis::Connection) -> u64 {
    common::info_field(control, "ember", "local_tier_hits")
}

/// GETs `key` on `reader` until the local tier has answered one (the owner saw it cross the
/// rate and sent the copy), checking every reply is `expected`.
fn heat(
    reader: &mut redis::Connection,
    control: &mut redis::Connection,
    key: &str,
    expected: &str,
) {
    let start = tier_hits(control);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        for _ in 0..50 {
            let value: Option<String> = redis::cmd("GET").arg(key).query(reader).unwrap();
            assert_eq!(value.as_deref(), Some(expected));
        }
        if tier_hits(control) > start {
            return;
        }
    }
    panic!("the local tier never answered a GET of {key}");
}

/// A hot key's GETs on a shard that does not own it are answered by the local tier (INFO's
/// local_tier_hits grows), and SET, DEL and EXPIRE of the key are seen by the very next GET
/// there.
#[test]
fn the_local_tier_serves_hot_keys_and_is_invalidated_by_writes() {
    let ember = Ember::start_with(&["--threads", "2", "--hotkey-local-tier-rate", "50"]);
    let mut control = ember.connect(false);
    let key = key_on("hot", 0);
    let mut reader = connection_on(&ember, &mut control, 1);
    let mut writer = ember.connect(false);
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("v1")
        .query(&mut writer)
        .unwrap();
    heat(&mut reader, &mut control, &key, "v1");
    assert!(common::info_field(&mut control, "ember", "local_tier_copies") >= 1);

    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("v2")
        .query(&mut writer)
        .unwrap();
    let value: Option<String> = redis::cmd("GET").arg(&key).query(&mut reader).unwrap();
    assert_eq!(value.as_deref(), Some("v2"), "SET invalidates the copy");
    heat(&mut reader, &mut control, &key, "v2");

    let _: () = redis::cmd("DEL").arg(&key).query(&mut writer).unwrap();
    let value: Option<String> = redis::cmd("GET").arg(&key).query(&mut reader).unwrap();
    assert_eq!(value, None, "DEL invalidates the copy");

    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("v3")
        .query(&mut writer)
        .unwrap();
    heat(&mut reader, &mut control, &key, "v3");
    let _: () = redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(1)
        .query(&mut writer)
        .unwrap();
    // Expired (1 ms) by the time it is read again: the copy must not outlive it.
    thread::sleep(Duration::from_millis(5));
    let value: Option<String> = redis::cmd("GET").arg(&key).query(&mut reader).unwrap();
    assert_eq!(value, None, "EXPIRE invalidates the copy");

    // A copy of a key with a TTL stops at the TTL even with no write at all.
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("v4")
        .arg("PX")
        .arg(1500)
        .query(&mut writer)
        .unwrap();
    heat(&mut reader, &mut control, &key, "v4");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let value: Option<String> = redis::cmd("GET").arg(&key).query(&mut reader).unwrap();
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut writer).unwrap();
        if ttl == -2 {
            let value: Option<String> = redis::cmd("GET").arg(&key).query(&mut reader).unwrap();
            assert_eq!(value, None, "a copy is not served past its key's expiry");
            break;
        }
        assert_eq!(value.as_deref(), Some("v4"));
        assert!(Instant::now() < deadline, "the key never expired");
    }

    // FLUSHALL drops every copy.
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("v5")
        .query(&mut writer)
        .unwrap();
    heat(&mut reader, &mut control, &key, "v5");
    let _: () = redis::cmd("FLUSHALL").query(&mut writer).unwrap();
    let value: Option<String> = redis::cmd("GET").arg(&key).query(&mut reader).unwrap();
    assert_eq!(value, None, "FLUSHALL invalidates the copy");

    // Rate 0 turns the tier off: no new copies (the running ones end with their lease).
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("hotkey-local-tier-rate")
        .arg("0")
        .query(&mut writer)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("v6")
        .query(&mut writer)
        .unwrap();
    thread::sleep(Duration::from_millis(300)); // The tier's task reads the rate every 100 ms.
    let before = tier_hits(&mut control);
    for _ in 0..500 {
        let value: Option<String> = redis::cmd("GET").arg(&key).query(&mut reader).unwrap();
        assert_eq!(value.as_deref(), Some("v6"));
    }
    assert_eq!(tier_hits(&mut control), before, "rate 0 copies nothing");
}

/// Writers (one per key, on any shard) and readers (on every shard) run at once; before each
/// GET a reader notes the last sequence number the key's writer had acknowledged, and the GET
/// must return at least that one: the local tier never serves a value older than an
/// acknowledged write. EMBER_TEST_SEED replays a run.
#[test]
fn the_local_tier_never_serves_a_value_older_than_an_acknowledged_write() {
    let seed: u64 = std::env::var("EMBER_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("seed {seed} (EMBER_TEST_SEED={seed} replays it)");
    let ember = Ember::start_with(&["--threads", "2", "--hotkey-local-tier-rate", "20"]);
    let keys: Vec<String> = (0..4).map(|i| key_on(&format!("race{i}"), i % 2)).collect();
    let acknowledged: Arc<Vec<AtomicU64>> =
        Arc::new(keys.iter().map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let run_for = Duration::from_secs(4);
    let mut threads = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        let (key, acknowledged, stop) = (key.clone(), acknowledged.clone(), stop.clone());
        let mut con = ember.connect(false);
        let mut rng = SmallRng::seed_from_u64(seed ^ (index as u64 + 1));
        threads.push(thread::spawn(move || {
            let mut sequence = 0u64;
            while !stop.load(Ordering::SeqCst) {
                sequence += 1;
                let _: () = redis::cmd("SET")
                    .arg(&key)
                    .arg(sequence)
                    .query(&mut con)
                    .unwrap();
                acknowledged[index].store(sequence, Ordering::SeqCst);
                // Pauses between writes, so copies live long enough to be read.
                let pause = Instant::now() + Duration::from_micros(rng.gen_range(0..4000));
                while Instant::now() < pause {
                    std::hint::spin_loop();
                }
            }
        }));
    }
    let reader_count = 6;
    let mut readers = Vec::new();
    for reader in 0..reader_count {
        let (keys, acknowledged) = (keys.clone(), acknowledged.clone());
        let mut con = ember.connect(false);
        let mut rng = SmallRng::seed_from_u64(seed.wrapping_mul(31) ^ (reader as u64 + 100));
        readers.push(thread::spawn(move || {
            let deadline = Instant::now() + run_for;
            let mut reads = 0u64;
            while Instant::now() < deadline {
                let index = rng.gen_range(0..keys.len());
                let floor = acknowledged[index].load(Ordering::SeqCst);
                let value: Option<u64> = redis::cmd("GET").arg(&keys[index]).query(&mut con).unwrap();
                let seen = value.unwrap_or(0);
                assert!(
                    seen >= floor,
                    "seed {seed}: reader {reader} read {seen} of {} after write {floor} was acknowledged",
                    keys[index]
                );
                reads += 1;
            }
            reads
        }));
    }
    let reads: u64 = readers
        .into_iter()
        .map(|reader| reader.join().unwrap())
        .sum();
    stop.store(true, Ordering::SeqCst);
    for thread in threads {
        thread.join().unwrap();
    }
    let mut control = ember.connect(false);
    let hits = tier_hits(&mut control);
    eprintln!("seed {seed}: {reads} reads, {hits} answered by the local tier");
    assert!(
        hits > 0,
        "seed {seed}: the local tier answered no read, so nothing was tested"
    );
}

fn raw_hotkeys_get(con: &mut redis::Connection) -> Value {
    redis::cmd("HOTKEYS").arg("GET").query(con).unwrap()
}

/// Field `name` of a HOTKEYS GET reply (one session: an array of one field/value array, or of
/// one map in RESP3).
fn hotkeys_field(reply: &Value, name: &str) -> Option<Value> {
    let Value::Array(outer) = reply else {
        panic!("HOTKEYS GET is an array: {reply:?}")
    };
    assert_eq!(outer.len(), 1, "one session");
    let pairs: Vec<(Value, Value)> = match &outer[0] {
        Value::Array(flat) => flat
            .chunks(2)
            .map(|pair| (pair[0].clone(), pair[1].clone()))
            .collect(),
        Value::Map(map) => map.clone(),
        other => panic!("a session is a flat array or a map: {other:?}"),
    };
    pairs.into_iter().find_map(|(field, value)| match field {
        Value::BulkString(bytes) if bytes == name.as_bytes() => Some(value),
        _ => None,
    })
}

fn integer(value: Option<Value>) -> i64 {
    match value {
        Some(Value::Int(value)) => value,
        other => panic!("an integer: {other:?}"),
    }
}

/// HOTKEYS START / GET / STOP / RESET over two shards: the key read most leads both rankings
/// (figures of both shards added), the field list follows Redis's order, and the session's
/// errors are Redis's.
#[test]
fn hotkeys_ranks_the_hottest_key_over_every_shard() {
    // Enough GETs that the hot key's CPU time (one us at least each) stays ahead of the four
    // SETs of the big one even when a SET is preempted on a loaded machine (CI once saw 4 SETs
    // take 410 us against 100 GETs' 401 us).
    const HOT_GETS_PER_CONNECTION: usize = 1000;
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    assert_eq!(raw_hotkeys_get(&mut con), Value::Nil, "no session yet");
    let _: () = redis::cmd("HOTKEYS")
        .arg(&["START", "METRICS", "2", "CPU", "NET", "COUNT", "3"])
        .query(&mut con)
        .unwrap();
    let error = redis::cmd("HOTKEYS")
        .arg(&["START", "METRICS", "1", "CPU"])
        .query::<()>(&mut con)
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("hotkey tracking session already in progress"),
        "{error}"
    );
    let mut connections: Vec<redis::Connection> = (0..4).map(|_| ember.connect(false)).collect();
    for con in &mut connections {
        let _: () = redis::cmd("SET")
            .arg("big")
            .arg("x".repeat(1000))
            .query(con)
            .unwrap();
        for _ in 0..HOT_GETS_PER_CONNECTION {
            let _: Option<String> = redis::cmd("GET").arg("hot").query(con).unwrap();
        }
        let _: Option<String> = redis::cmd("GET").arg("cold").query(con).unwrap();
    }
    let hot_gets = 4 * HOT_GETS_PER_CONNECTION as i64;
    let reply = raw_hotkeys_get(&mut con);
    assert_eq!(integer(hotkeys_field(&reply, "tracking-active")), 1);
    assert_eq!(integer(hotkeys_field(&reply, "sample-ratio")), 1);
    let Some(Value::Array(by_cpu)) = hotkeys_field(&reply, "by-cpu-time-us") else {
        panic!("by-cpu-time-us: {reply:?}")
    };
    assert_eq!(by_cpu[0], Value::BulkString(b"hot".to_vec()), "{reply:?}");
    assert!(
        integer(Some(by_cpu[1].clone())) >= hot_gets,
        "one us at least per GET: {reply:?}"
    );
    let Some(Value::Array(by_net)) = hotkeys_field(&reply, "by-net-bytes") else {
        panic!("by-net-bytes: {reply:?}")
    };
    // 4000 GETs of hot (22 bytes in, 5 out) outweigh 4 SETs of big (1000 bytes in).
    assert_eq!(by_net[0], Value::BulkString(b"hot".to_vec()), "{reply:?}");
    assert_eq!(by_net[2], Value::BulkString(b"big".to_vec()), "{reply:?}");
    assert!(integer(hotkeys_field(&reply, "net-bytes-all-commands-all-slots")) > hot_gets * 27);
    let names: Vec<String> = match &reply {
        Value::Array(outer) => match &outer[0] {
            Value::Array(flat) => flat
                .iter()
                .step_by(2)
                .map(|name| match name {
                    Value::BulkString(bytes) => String::from_utf8(bytes.clone()).unwrap(),
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    assert_eq!(
        names,
        [
            "tracking-active",
            "sample-ratio",
            "selected-slots",
            "all-commands-all-slots-us",
            "net-bytes-all-commands-all-slots",
            "collection-start-time-unix-ms",
            "collection-duration-ms",
            "total-cpu-time-user-ms",
            "total-cpu-time-sys-ms",
            "total-net-bytes",
            "by-cpu-time-us",
            "by-net-bytes",
        ]
    );
    let error = redis::cmd("HOTKEYS")
        .arg("RESET")
        .query::<()>(&mut con)
        .unwrap_err();
    assert!(error.to_string().contains("stop tracking first"), "{error}");
    let _: () = redis::cmd("HOTKEYS").arg("STOP").query(&mut con).unwrap();
    let stopped: Value = redis::cmd("HOTKEYS").arg("STOP").query(&mut con).unwrap();
    assert_eq!(stopped, Value::Nil, "nothing left to stop");
    let reply = raw_hotkeys_get(&mut con);
    assert_eq!(integer(hotkeys_field(&reply, "tracking-active")), 0);
    // RESP3: the session is a map.
    let mut resp3 = ember.connect(true);
    let Value::Array(outer) = raw_hotkeys_get(&mut resp3) else {
        panic!("an array of sessions")
    };
    assert!(matches!(outer[0], Value::Map(_)), "{outer:?}");
    let _: () = redis::cmd("HOTKEYS").arg("RESET").query(&mut con).unwrap();
    assert_eq!(
        raw_hotkeys_get(&mut con),
        Value::Nil,
        "reset forgets the session"
    );
    // DURATION ends a session by itself.
    let _: () = redis::cmd("HOTKEYS")
        .arg(&["START", "METRICS", "1", "NET", "DURATION", "1"])
        .query(&mut con)
        .unwrap();
    thread::sleep(Duration::from_millis(1100));
    let reply = raw_hotkeys_get(&mut con);
    assert_eq!(integer(hotkeys_field(&reply, "tracking-active")), 0);
    assert_eq!(
        integer(hotkeys_field(&reply, "collection-duration-ms")),
        1000
    );
    assert!(
        hotkeys_field(&reply, "by-cpu-time-us").is_none(),
        "NET only"
    );
}

/// `redis-cli --hotkeys` (SCAN, then OBJECT FREQ of every key under an LFU policy) finds the
/// key read most.
#[test]
fn redis_cli_hotkeys_finds_the_hot_key() {
    if Command::new("redis-cli").arg("--version").output().is_err() {
        eprintln!("skipped: redis-cli is not installed (ci/setup-base.sh installs redis-tools)");
        return;
    }
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "maxmemory-policy", "allkeys-lfu"])
        .query(&mut con)
        .unwrap();
    for index in 0..20 {
        let _: () = redis::cmd("SET")
            .arg(format!("cool:{index}"))
            .arg(1)
            .query(&mut con)
            .unwrap();
    }
    let _: () = redis::cmd("SET")
        .arg("blazing")
        .arg(1)
        .query(&mut con)
        .unwrap();
    for _ in 0..2000 {
        let _: Option<String> = redis::cmd("GET").arg("blazing").query(&mut con).unwrap();
    }
    let output = Command::new("redis-cli")
        .args(["-p", &ember.port.to_string(), "--hotkeys"])
        .output()
        .expect("run redis-cli");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    let hottest = text
        .lines()
        .find(|line| line.contains("hot key found with counter"))
        .unwrap_or_else(|| panic!("no hot key reported: {text}"));
    assert!(hottest.contains("keyname: \"blazing\""), "{text}");
    assert!(text.contains("Sampled 21 keys in the keyspace!"), "{text}");
}

fn ttls(con: &mut redis::Connection, keys: &[String]) -> Vec<i64> {
    let mut pipe = redis::pipe();
    for key in keys {
        pipe.cmd("TTL").arg(key);
    }
    pipe.query(con).unwrap()
}

/// 1000 keys set together with EX 100: with `expire-jitter-pct 10` their TTLs spread over
/// 100..=110 seconds; with 0 (the default) every one is 100; absolute times are untouched.
#[test]
fn expire_jitter_spreads_keys_set_together() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let keys: Vec<String> = (0..1000).map(|i| format!("jitter:{i}")).collect();
    let set_all = |con: &mut redis::Connection, command: &str| {
        let mut pipe = redis::pipe();
        for key in &keys {
            match command {
                "SET" => pipe.cmd("SET").arg(key).arg(1).arg("EX").arg(100).ignore(),
                "SETEX" => pipe.cmd("SETEX").arg(key).arg(100).arg(1).ignore(),
                _ => pipe.cmd("EXPIRE").arg(key).arg(100).ignore(),
            };
        }
        let _: () = pipe.query(con).unwrap();
    };
    set_all(&mut con, "SET");
    assert!(
        ttls(&mut con, &keys).iter().all(|&ttl| ttl == 100),
        "off by default"
    );
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "expire-jitter-pct", "10"])
        .query(&mut con)
        .unwrap();
    for command in ["SET", "SETEX", "EXPIRE"] {
        set_all(&mut con, command);
        let spread = ttls(&mut con, &keys);
        assert!(
            spread.iter().all(|&ttl| (100..=110).contains(&ttl)),
            "{command}: {spread:?}"
        );
        let distinct: BTreeSet<i64> = spread.iter().copied().collect();
        assert!(distinct.len() >= 8, "{command}: spread over {distinct:?}");
        let longer = spread.iter().filter(|&&ttl| ttl >= 105).count();
        assert!(
            (300..=700).contains(&longer),
            "{command}: about half past 105: {longer}"
        );
    }
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let _: () = redis::cmd("EXPIREAT")
        .arg(&keys[0])
        .arg(now_s + 100)
        .query(&mut con)
        .unwrap();
    let ttl: i64 = redis::cmd("TTL").arg(&keys[0]).query(&mut con).unwrap();
    assert!((99..=100).contains(&ttl), "EXPIREAT is exact: {ttl}");
    let error = redis::cmd("CONFIG")
        .arg(&["SET", "expire-jitter-pct", "101"])
        .query::<()>(&mut con)
        .unwrap_err();
    assert!(error.to_string().contains("expire-jitter-pct"), "{error}");
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "expire-jitter-pct", "0"])
        .query(&mut con)
        .unwrap();
    set_all(&mut con, "SET");
    assert!(
        ttls(&mut con, &keys).iter().all(|&ttl| ttl == 100),
        "0 turns it off"
    );
}
