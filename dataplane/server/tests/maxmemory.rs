//! maxmemory against the real binary: eviction holds used_memory near the limit while a client
//! writes several times the limit, noeviction answers Redis's OOM error while reads and deletes
//! still work, CONFIG SET shrinking the limit evicts down to it while requests are served, and
//! MEMORY USAGE answers per key.

mod common;

use std::time::{Duration, Instant};

use common::{info_field, Ember};
use redis::Connection;

/// How far above maxmemory used_memory may settle (the bound).
const TOLERANCE: f64 = 1.05;

/// Sets maxmemory (0: no limit).
fn set_maxmemory(con: &mut Connection, bytes: u64) {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(bytes)
        .query::<()>(con)
        .unwrap();
}

/// Sets maxmemory-policy.
fn set_policy(con: &mut Connection, policy: &str) {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg(policy)
        .query::<()>(con)
        .unwrap();
}

/// Sets maxmemory to the used_memory now plus `data_bytes`, and returns the limit.
fn limit_data_to(con: &mut Connection, data_bytes: u64) -> u64 {
    let maxmemory = info_field(con, "memory", "used_memory") + data_bytes;
    set_maxmemory(con, maxmemory);
    maxmemory
}

/// Writes `count` values of `value_len` bytes, pipelined 64 at a time; the errors seen.
fn write_values(con: &mut Connection, prefix: &str, count: usize, value_len: usize) -> Vec<String> {
    let value = vec![b'x'; value_len];
    let mut errors = Vec::new();
    for start in (0..count).step_by(64) {
        let mut pipe = redis::pipe();
        for i in start..(start + 64).min(count) {
            pipe.cmd("SET").arg(format!("{prefix}:{i}")).arg(&value[..]);
        }
        let replies: Vec<redis::RedisResult<redis::Value>> = pipe
            .query::<Vec<redis::Value>>(con)
            .map(|values| values.into_iter().map(Ok).collect())
            .unwrap_or_else(|error| vec![Err(error)]);
        for reply in replies {
            match reply {
                Ok(redis::Value::ServerError(error)) => errors.push(format!("{error:?}")),
                Err(error) => errors.push(error.to_string()),
                Ok(_) => {}
            }
        }
    }
    errors
}

/// Waits until used_memory is within the tolerance of maxmemory.
/// used_memory before and after `runs` runs of `batch`, which runs once before the first
/// figure, so that its commands' statistics are in the base.
fn used_memory_around(
    con: &mut Connection,
    runs: usize,
    batch: impl Fn(&mut Connection),
) -> (u64, u64) {
    batch(con);
    info_field(con, "memory", "used_memory");
    let before = info_field(con, "memory", "used_memory");
    for _ in 0..runs {
        batch(con);
    }
    (before, info_field(con, "memory", "used_memory"))
}

fn settles_under(con: &mut Connection, maxmemory: u64, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        let used = info_field(con, "memory", "used_memory");
        if used as f64 <= maxmemory as f64 * TOLERANCE || Instant::now() > deadline {
            return used;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Limits the data to 16 MiB, writes four times that as `prefix:0..16384` (4 KiB values) under
/// `policy`, checks that no write was refused and that used_memory settles under the limit, then
/// lifts the limit (which stops eviction, so the counts are read from a still keyspace) and
/// returns (evicted_keys, DBSIZE).
fn flood_four_times_the_limit(con: &mut Connection, prefix: &str, policy: &str) -> (u64, u64) {
    let maxmemory = limit_data_to(con, 16 << 20);
    let errors = write_values(con, prefix, 16 * 1024, 4096);
    assert!(
        errors.is_empty(),
        "writes refused under {policy}: {:?}",
        &errors[..errors.len().min(3)]
    );
    let used = settles_under(con, maxmemory, Duration::from_secs(5));
    assert!(
        used as f64 <= maxmemory as f64 * TOLERANCE,
        "used_memory {used} over maxmemory {maxmemory}"
    );
    set_maxmemory(con, 0);
    let evicted = info_field(con, "stats", "evicted_keys");
    let keys: u64 = redis::cmd("DBSIZE").query(con).unwrap();
    (evicted, keys)
}

#[test]
fn allkeys_lru_holds_the_limit_while_writing_four_times_it() {
    let ember = Ember::start_with(&["--threads", "2", "--maxmemory-policy", "allkeys-lru"]);
    let mut con = ember.connect(false);
    let (evicted, keys) = flood_four_times_the_limit(&mut con, "lru", "allkeys-lru");
    assert!(evicted > 0, "nothing evicted");
    assert_eq!(
        keys + evicted,
        16 * 1024,
        "every key is either kept or evicted"
    );
    // The most recent writes survive an LRU policy better than the first ones.
    let first = existing(&mut con, "lru", 0..500);
    let last = existing(&mut con, "lru", 16 * 1024 - 500..16 * 1024);
    assert!(
        last > first,
        "LRU kept {first} of the first keys and {last} of the last"
    );
}

/// How many of `prefix:i` for `i` in `range` exist.
fn existing(con: &mut Connection, prefix: &str, range: std::ops::Range<usize>) -> usize {
    range
        .filter(|i| {
            redis::cmd("EXISTS")
                .arg(format!("{prefix}:{i}"))
                .query::<bool>(con)
                .unwrap()
        })
        .count()
}

#[test]
fn allkeys_tinylfu_holds_the_limit_and_keeps_what_is_read() {
    let ember = Ember::start_with(&["--threads", "2", "--maxmemory-policy", "allkeys-tinylfu"]);
    let mut con = ember.connect(false);
    // The policy shows where Redis shows its own, and CONFIG SET accepts it in any case.
    let policy: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query(&mut con)
        .unwrap();
    assert_eq!(policy, ["maxmemory-policy", "allkeys-tinylfu"]);
    let info: String = redis::cmd("INFO").arg("memory").query(&mut con).unwrap();
    assert!(
        info.contains("maxmemory_policy:allkeys-tinylfu\r\n"),
        "{info}"
    );
    // 200 keys read five times each before a flood of keys never read: LRU would evict them
    // first (the flood is more recent), TinyLFU keeps them (read more often).
    assert!(write_values(&mut con, "hot", 200, 4096).is_empty());
    for _ in 0..5 {
        for i in 0..200 {
            let _: Vec<u8> = redis::cmd("GET")
                .arg(format!("hot:{i}"))
                .query(&mut con)
                .unwrap();
        }
    }
    let (evicted, keys) = flood_four_times_the_limit(&mut con, "cold", "allkeys-tinylfu");
    assert_eq!(
        keys + evicted,
        200 + 16 * 1024,
        "every key is either kept or evicted"
    );
    let hot_kept = existing(&mut con, "hot", 0..200);
    assert!(hot_kept >= 190, "TinyLFU kept {hot_kept} of 200 read keys");
    // OBJECT FREQ answers the history's estimate: five reads (the first absorbed by the
    // doorkeeper, which counts one), none for a key never read; IDLETIME still answers.
    let frequency = |con: &mut Connection, key: &str| -> i64 {
        redis::cmd("OBJECT")
            .arg("FREQ")
            .arg(key)
            .query(con)
            .unwrap()
    };
    let hot = (0..200)
        .map(|i| format!("hot:{i}"))
        .find(|key| {
            redis::cmd("EXISTS")
                .arg(key)
                .query::<bool>(&mut con)
                .unwrap()
        })
        .expect("a read key kept");
    assert_eq!(frequency(&mut con, &hot), 5);
    let cold = (0..16 * 1024)
        .map(|i| format!("cold:{i}"))
        .find(|key| {
            redis::cmd("EXISTS")
                .arg(key)
                .query::<bool>(&mut con)
                .unwrap()
        })
        .expect("a written key kept");
    assert_eq!(frequency(&mut con, &cold), 0);
    let idle: i64 = redis::cmd("OBJECT")
        .arg("IDLETIME")
        .arg(&cold)
        .query(&mut con)
        .unwrap();
    assert!(idle >= 0);
    set_policy(&mut con, "ALLKEYS-TINYLFU");
    let error = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-tinylfu2")
        .query::<()>(&mut con)
        .unwrap_err();
    // Redis 7's list of policies, word for word: the new name is accepted, not advertised.
    assert!(
        error
            .to_string()
            .contains("volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"),
        "{error}"
    );
}

#[test]
fn collections_are_evicted_too() {
    let ember = Ember::start_with(&["--threads", "2", "--maxmemory-policy", "allkeys-random"]);
    let mut con = ember.connect(false);
    let maxmemory = limit_data_to(&mut con, 8 << 20);
    // 32 MiB in sets and sorted sets of 64 members of 256 bytes.
    for key in 0..1024 {
        let mut pipe = redis::pipe();
        for member in 0..64 {
            let name = format!("{key:04}-{member:04}-{}", "m".repeat(246));
            if key % 2 == 0 {
                pipe.cmd("SADD")
                    .arg(format!("set:{key}"))
                    .arg(name)
                    .ignore();
            } else {
                pipe.cmd("ZADD")
                    .arg(format!("zset:{key}"))
                    .arg(member)
                    .arg(name)
                    .ignore();
            }
        }
        pipe.query::<()>(&mut con).unwrap();
    }
    let used = settles_under(&mut con, maxmemory, Duration::from_secs(5));
    assert!(
        used as f64 <= maxmemory as f64 * TOLERANCE,
        "used_memory {used} over {maxmemory}"
    );
    assert!(info_field(&mut con, "stats", "evicted_keys") > 0);
}

#[test]
fn noeviction_refuses_writes_and_serves_reads() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    redis::cmd("SET")
        .arg("kept")
        .arg("value")
        .query::<()>(&mut con)
        .unwrap();
    limit_data_to(&mut con, 4 << 20);
    let policy: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query(&mut con)
        .unwrap();
    assert_eq!(policy[1], "noeviction");
    let errors = write_values(&mut con, "oom", 4096, 4096);
    assert!(
        !errors.is_empty(),
        "16 MiB written under a 4 MiB noeviction limit without an error"
    );
    assert!(
        errors[0].contains("command not allowed when used memory > 'maxmemory'"),
        "{}",
        errors[0]
    );
    let error = redis::cmd("SET")
        .arg("more")
        .arg("x")
        .query::<()>(&mut con)
        .unwrap_err();
    assert_eq!(error.code(), Some("OOM"));
    assert_eq!(
        error.detail(),
        Some("command not allowed when used memory > 'maxmemory'.")
    );
    // Reads and deletes still work; nothing was evicted.
    let value: String = redis::cmd("GET").arg("kept").query(&mut con).unwrap();
    assert_eq!(value, "value");
    assert_eq!(info_field(&mut con, "stats", "evicted_keys"), 0);
    let deleted: u64 = redis::cmd("DEL")
        .arg("oom:0")
        .arg("oom:1")
        .query(&mut con)
        .unwrap();
    assert!(deleted <= 2);
    // A queued write over the limit fails the transaction, as in Redis.
    redis::cmd("MULTI").query::<()>(&mut con).unwrap();
    assert!(redis::cmd("SET")
        .arg("a")
        .arg("b")
        .query::<()>(&mut con)
        .is_err());
    let exec = redis::cmd("EXEC").query::<()>(&mut con).unwrap_err();
    assert_eq!(exec.code(), Some("EXECABORT"));
    // Raising the limit lets writes through again.
    set_maxmemory(&mut con, 0);
    redis::cmd("SET")
        .arg("more")
        .arg("x")
        .query::<()>(&mut con)
        .unwrap();
}

#[test]
fn volatile_policy_without_volatile_keys_answers_oom() {
    let ember = Ember::start_with(&["--threads", "2", "--maxmemory-policy", "volatile-lru"]);
    let mut con = ember.connect(false);
    limit_data_to(&mut con, 4 << 20);
    let errors = write_values(&mut con, "persistent", 4096, 4096);
    assert!(
        errors
            .iter()
            .any(|error| error.contains("used memory > 'maxmemory'")),
        "no OOM when nothing may be evicted"
    );
    assert_eq!(
        info_field(&mut con, "stats", "evicted_keys"),
        0,
        "a key without TTL was evicted"
    );
}

#[test]
fn shrinking_maxmemory_evicts_down_while_serving() {
    let ember = Ember::start_with(&["--threads", "2", "--maxmemory-policy", "allkeys-lru"]);
    let mut con = ember.connect(false);
    let base = info_field(&mut con, "memory", "used_memory");
    assert!(write_values(&mut con, "fill", 8 * 1024, 4096).is_empty());
    let full = info_field(&mut con, "memory", "used_memory");
    assert!(
        full > base + (24 << 20),
        "32 MiB written, used_memory {full} from {base}"
    );
    let maxmemory = base + (8 << 20);
    let mut other = ember.connect(false);
    set_maxmemory(&mut con, maxmemory);
    // Requests keep being answered while the shards evict.
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..200 {
        let asked = Instant::now();
        let _: Option<Vec<u8>> = redis::cmd("GET")
            .arg(format!("fill:{i}"))
            .query(&mut other)
            .unwrap();
        slowest = slowest.max(asked.elapsed());
    }
    let used = settles_under(&mut con, maxmemory, Duration::from_secs(5));
    assert!(
        used as f64 <= maxmemory as f64 * TOLERANCE,
        "used_memory {used} over {maxmemory}"
    );
    assert!(
        slowest < Duration::from_millis(500),
        "a GET waited {slowest:?} while evicting ({:?} in all)",
        started.elapsed()
    );
}

#[test]
fn memory_usage_and_stats() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    redis::cmd("SET")
        .arg("small")
        .arg("v")
        .query::<()>(&mut con)
        .unwrap();
    redis::cmd("SET")
        .arg("large")
        .arg(vec![b'x'; 10_000])
        .query::<()>(&mut con)
        .unwrap();
    let small: u64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("small")
        .query(&mut con)
        .unwrap();
    let large: u64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("large")
        .arg("SAMPLES")
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert!((1..200).contains(&small), "small key {small} bytes");
    assert!((10_000..11_000).contains(&large), "large key {large} bytes");
    let missing: Option<u64> = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("missing")
        .query(&mut con)
        .unwrap();
    assert_eq!(missing, None);
    // Keys on both shards (and in another database): each one's size comes from its owner.
    for key in ["a", "b", "c", "d"] {
        redis::cmd("SET")
            .arg(key)
            .arg("value")
            .exec(&mut con)
            .unwrap();
        let bytes: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .query(&mut con)
            .unwrap();
        assert!(bytes.is_some_and(|bytes| bytes > 0), "{key}: {bytes:?}");
    }
    redis::cmd("SELECT").arg(2).exec(&mut con).unwrap();
    redis::cmd("SET")
        .arg("other")
        .arg("v")
        .exec(&mut con)
        .unwrap();
    redis::cmd("SELECT").arg(0).exec(&mut con).unwrap();
    let stats: Vec<redis::Value> = redis::cmd("MEMORY").arg("STATS").query(&mut con).unwrap();
    let names = memory_stats_names(&stats);
    let value = |name: &str| {
        let at = stats
            .iter()
            .position(|item| matches!(item, redis::Value::BulkString(n) if n == name.as_bytes()))
            .unwrap_or_else(|| panic!("MEMORY STATS has {name}"));
        match &stats[at + 1] {
            redis::Value::Int(value) => *value,
            other => panic!("{name}: {other:?}"),
        }
    };
    assert_eq!(value("keys.count"), 7, "every shard's keys, every database");
    assert!(names.contains(&"db.0".to_owned()) && names.contains(&"db.2".to_owned()));
    assert!(value("overhead.total") > value("startup.allocated"));
    assert_eq!(
        value("dataset.bytes") + value("overhead.total"),
        value("total.allocated")
    );
    if let Some(redis) = common::RedisOracle::start() {
        // The same fields in the same order as Redis (RESP2: a flat list of names and values).
        let mut oracle = redis.connect(false);
        redis::cmd("SET")
            .arg("k")
            .arg("v")
            .exec(&mut oracle)
            .unwrap();
        redis::cmd("SELECT").arg(2).exec(&mut oracle).unwrap();
        redis::cmd("SET")
            .arg("other")
            .arg("v")
            .exec(&mut oracle)
            .unwrap();
        let theirs: Vec<redis::Value> = redis::cmd("MEMORY")
            .arg("STATS")
            .query(&mut oracle)
            .unwrap();
        assert_eq!(names, memory_stats_names(&theirs));
    }
    let doctor: String = redis::cmd("MEMORY").arg("DOCTOR").query(&mut con).unwrap();
    assert!(!doctor.is_empty());
    // jemalloc's own report, as Redis gives it: per size class, what is allocated.
    let malloc: String = redis::cmd("MEMORY")
        .arg("MALLOC-STATS")
        .query(&mut con)
        .unwrap();
    assert!(
        malloc.contains("___ Begin jemalloc statistics ___")
            && malloc.contains("bins:")
            && malloc.contains("--- End jemalloc statistics ---"),
        "{malloc}"
    );
    let error = redis::cmd("MEMORY")
        .arg("NOSUCH")
        .query::<()>(&mut con)
        .unwrap_err();
    assert!(error.to_string().contains("unknown subcommand"), "{error}");
    for field in [
        "used_memory_peak",
        "used_memory_startup",
        "maxmemory",
        "evicted_keys",
    ] {
        info_field(&mut con, "all", field);
    }
}

/// Sends `args` and returns the reply as text: "OK"/an integer/"ERR ..." (errors with their code).
fn reply_text(con: &mut Connection, args: &[&str]) -> String {
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    match command.query::<redis::Value>(con) {
        Ok(redis::Value::Okay) => "OK".into(),
        Ok(redis::Value::Int(n)) => n.to_string(),
        Ok(redis::Value::ServerError(error)) => format!("{error:?}"),
        Ok(other) => format!("{other:?}"),
        Err(error) => format!(
            "{}: {}",
            error.code().unwrap_or("?"),
            error.detail().unwrap_or("")
        ),
    }
}

/// Requests that size an allocation by their arguments (a tensor's shape, a far offset, a
/// filter's capacity) are charged against maxmemory before anything is allocated (issue 16):
/// under a 32 MiB noeviction budget each of these 100-400 MB requests gets Redis's OOM error
/// while used_memory stays under the limit, the same requests made small are served, and under
/// an eviction policy a request is refused only when it is larger than the whole limit.
#[test]
fn requests_that_size_an_allocation_are_charged_before_it_happens() {
    const OOM: &str = "OOM: command not allowed when used memory > 'maxmemory'.";
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let maxmemory = limit_data_to(&mut con, 32 << 20);
    let large: [&[&str]; 7] = [
        &["AI.TENSORSET", "{t}big", "FLOAT", "100000000"],
        &["SETRANGE", "{t}range", "200000000", "x"],
        &["SETBIT", "{t}bits", "1600000000", "1"],
        &["BITFIELD", "{t}field", "SET", "u8", "1600000000", "1"],
        &["BF.RESERVE", "{t}bloom", "0.0001", "100000000"],
        &["CF.RESERVE", "{t}cuckoo", "200000000"],
        &["CMS.INITBYDIM", "{t}cms", "10000000", "10"],
    ];
    for args in large {
        assert_eq!(reply_text(&mut con, args), OOM, "{args:?}");
        let used = info_field(&mut con, "memory", "used_memory");
        assert!(
            used <= maxmemory,
            "{args:?}: used_memory {used} > {maxmemory}"
        );
    }
    let small: [(&[&str], &str); 6] = [
        (&["AI.TENSORSET", "{t}small", "FLOAT", "1000"], "OK"),
        (&["SETRANGE", "{t}range", "1000", "x"], "1001"),
        (&["SETBIT", "{t}bits", "8000", "1"], "0"),
        (&["BF.RESERVE", "{t}bloom", "0.01", "1000"], "OK"),
        (&["CF.RESERVE", "{t}cuckoo", "1000"], "OK"),
        (&["CMS.INITBYDIM", "{t}cms", "1000", "5"], "OK"),
    ];
    for (args, expected) in small {
        assert_eq!(reply_text(&mut con, args), expected, "{args:?}");
    }
    assert_eq!(info_field(&mut con, "stats", "evicted_keys"), 0);
    // Under an eviction policy, eviction makes room for any request smaller than the limit;
    // one larger than the whole limit can never fit.
    set_policy(&mut con, "allkeys-lru");
    let whole_limit = (maxmemory / 4 + 1).to_string();
    assert_eq!(
        reply_text(&mut con, &["AI.TENSORSET", "{t}big", "FLOAT", &whole_limit]),
        OOM
    );
    assert_eq!(
        reply_text(&mut con, &["AI.TENSORSET", "{t}big", "FLOAT", "1048576"]),
        "OK",
        "a 4 MiB tensor under a 32 MiB budget with eviction"
    );
}

/// INFO stats and /metrics show allkeys-tinylfu's admission window: 1% of the keys at start
/// (10 of 1,000 keys written), up to 128 more waiting to be judged (nothing evicts without
/// maxmemory), and zeros once the policy keeps no read history.
#[test]
fn info_shows_the_admission_window() {
    let metrics_port = common::free_port();
    let ember = Ember::start_with(&[
        "--threads",
        "1",
        "--maxmemory-policy",
        "allkeys-tinylfu",
        "--metrics-port",
        &metrics_port.to_string(),
    ]);
    let mut con = ember.connect(false);
    let window = |con: &mut Connection| {
        [
            "tinylfu_window_keys",
            "tinylfu_window_candidates",
            "tinylfu_window_share",
        ]
        .map(|field| common::info_text(con, "stats", field))
    };
    assert!(write_values(&mut con, "w", 1000, 16).is_empty());
    assert_eq!(window(&mut con), ["10", "128", "0.0100"]);
    let exposition = common::http_get(metrics_port, "/metrics");
    assert!(
        exposition.contains("\nember_tinylfu_window_keys 10\n"),
        "{exposition}"
    );
    assert!(
        exposition.contains("\nember_tinylfu_window_share 0.0100\n"),
        "{exposition}"
    );
    set_policy(&mut con, "allkeys-lru");
    assert_eq!(window(&mut con), ["0", "0", "0.0000"]);
}

/// used_memory counts what the server holds, as Redis's does: a command's first use costs its
/// statistics (a 24 KiB latency histogram, as Redis's), and INFO's own copies of every
/// command's histogram are not in the figure it reports. INFO read the figure after copying
/// them, and a command's entry in the statistics table was unboxed: each command used showed
/// as ~87 KB, and the figure a client took as "empty" held hundreds of KB that no key owned.
#[test]
fn used_memory_counts_a_command_used_at_its_statistics_cost() {
    let ember = Ember::start_with(&["--threads", "1"]);
    let mut con = ember.connect(false);
    let commands: &[&[&str]] = &[
        &["GET", "k"],
        &["EXISTS", "k"],
        &["STRLEN", "k"],
        &["TTL", "k"],
        &["PTTL", "k"],
        &["TYPE", "k"],
        &["ECHO", "x"],
        &["DBSIZE"],
        &["LLEN", "k"],
        &["SCARD", "k"],
        &["HLEN", "k"],
        &["ZCARD", "k"],
    ];
    let before = info_field(&mut con, "memory", "used_memory");
    for args in commands {
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        command.query::<redis::Value>(&mut con).unwrap();
    }
    let after = info_field(&mut con, "memory", "used_memory");
    let per_command = after.saturating_sub(before) / commands.len() as u64;
    assert!(
        per_command <= 32 << 10,
        "{per_command} bytes of used_memory per command used ({before} -> {after})"
    );
    // Asking again changes nothing: INFO's copies are gone when it reads the figure.
    let again = info_field(&mut con, "memory", "used_memory");
    assert!(
        again.abs_diff(after) <= 8 << 10,
        "used_memory moved from {after} to {again} between two INFOs"
    );
}

/// A flood of writes over a small limit under an allkeys policy: no write is refused, keys
/// remain, used_memory is at the limit once the writes stop, and the values kept fit in the
/// bytes the limit left for data. Before, INFO's used_memory counted INFO's own copies of every
/// command's statistics, so a limit set from it as "empty + 200 KiB" left ~480 KB, and 400-odd
/// values of 1 KiB stayed; and the gauge counted the blocks the allocator's thread caches kept
/// after evictions freed them (jemalloc counts those as allocated, Redis's zmalloc does not),
/// so at smaller limits it stayed over with the keyspace emptied and writes got OOM errors.
#[test]
fn a_small_limit_under_a_flood_keeps_keys_and_refuses_nothing() {
    const DATA_BYTES: u64 = 200 << 10;
    const VALUE_LEN: usize = 1024;
    let ember = Ember::start_with(&["--threads", "1", "--maxmemory-policy", "allkeys-lru"]);
    let mut con = ember.connect(false);
    // Every command the test sends, used once, so that their statistics are in the base.
    set_maxmemory(&mut con, 0);
    redis::cmd("SET")
        .arg("warm")
        .arg("x")
        .query::<()>(&mut con)
        .unwrap();
    redis::cmd("DBSIZE").query::<u64>(&mut con).unwrap();
    redis::cmd("FLUSHALL").query::<()>(&mut con).unwrap();
    let maxmemory = limit_data_to(&mut con, DATA_BYTES);
    let errors = write_values(&mut con, "small", 5_000, VALUE_LEN);
    assert!(
        errors.is_empty(),
        "{} writes refused under a 200 KiB limit: {:?}",
        errors.len(),
        &errors[..errors.len().min(3)]
    );
    let used = settles_under(&mut con, maxmemory, Duration::from_secs(5));
    assert!(
        used as f64 <= maxmemory as f64 * TOLERANCE,
        "used_memory {used} over maxmemory {maxmemory}"
    );
    let keys: u64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert!(
        keys >= 20,
        "{keys} values of 1 KiB kept in 200 KiB for data"
    );
    // The room for data is measured as used_memory before the flood, which may hold a few
    // KiB of the connection's buffers that are gone after it: one value in eighty runs was
    // kept past the bare 200 KiB. The bound is the tolerance, as for used_memory.
    assert!(
        keys as f64 * VALUE_LEN as f64 <= DATA_BYTES as f64 * TOLERANCE,
        "{keys} values of 1 KiB kept in 200 KiB for data"
    );
}

/// A command that takes memory past the limit is paid for before the connection's next command
/// runs, as in Redis: a tracking client gets the invalidation of every key evicted for it
/// before the next reply. Ember's eviction loop alone evicted up to a millisecond later, after
/// that reply (Redis's unit/tracking, "Tracking invalidation message of eviction keys should be
/// before response", failed, and left a server over its limit that refused the next test's
/// writes). Two shards, and volatile keys on both, so the eviction crosses shards.
#[test]
fn a_write_past_the_limit_is_evicted_for_before_the_next_reply() {
    let ember = Ember::start_with(&["--threads", "2"]);
    let mut con = ember.connect(false);
    let mut raw = common::Raw::connect(ember.port);
    let volatile: Vec<String> = (0..8).map(|i| format!("volatile:{i}")).collect();
    // Every command the test sends, used once, so that their statistics are in the base.
    for args in [
        &[&b"SETEX"[..], b"warm", b"100", b"x"][..],
        &[b"GET", b"warm"],
        &[b"SETBIT", b"warm:bits", b"10", b"0"],
        &[b"GETBIT", b"warm:bits", b"0"],
        &[b"FLUSHALL"],
        &[b"HELLO", b"3"],
    ] {
        raw.command(args);
    }
    set_policy(&mut con, "volatile-random");
    for round in 0..3 {
        raw.command(&[b"CLIENT", b"TRACKING", b"on"]);
        limit_data_to(&mut con, 100 << 10);
        for key in &volatile {
            assert_eq!(
                raw.command(&[b"SETEX", key.as_bytes(), b"10000", b"x"]),
                b"+OK\r\n"
            );
            assert_eq!(raw.command(&[b"GET", key.as_bytes()]), b"$1\r\nx\r\n");
        }
        // 200 KB at once, in a key no policy here may evict.
        assert_eq!(
            raw.command(&[b"SETBIT", b"big", b"1600000", b"0"]),
            b":0\r\n"
        );
        raw.send(&common::multibulk(&[b"GETBIT", b"big", b"0"]));
        let first = raw.reply_text();
        assert!(
            first.starts_with(">2\r\n$10\r\ninvalidate\r\n"),
            "round {round}: the reply came before the invalidations of the evicted keys: {first:?}"
        );
        // The rest of the invalidations, then GETBIT's reply.
        let mut invalidated = 1;
        loop {
            let next = raw.reply_text();
            if next == ":0\r\n" {
                break;
            }
            assert!(next.starts_with(">2\r\n$10\r\ninvalidate\r\n"), "{next:?}");
            invalidated += 1;
        }
        assert!(invalidated >= 1);
        raw.command(&[b"CLIENT", b"TRACKING", b"off"]);
        set_maxmemory(&mut con, 0);
        redis::cmd("FLUSHALL").query::<()>(&mut con).unwrap();
    }
}

/// A pipeline of large requests and replies costs its buffers while it is answered, not for as
/// long as the connection lives: they counted in used_memory, against maxmemory. Kept, 64
/// replies of 1 KiB left 96 KiB per connection (the connection's buffer and its socket's
/// spare); Redis keeps a 16 KiB reply buffer and frees the rest once written.
#[test]
fn a_connection_keeps_no_large_buffer_after_a_pipeline() {
    let ember = Ember::start_with(&["--threads", "1"]);
    let mut con = ember.connect(false);
    let value = vec![b'x'; 1024];
    redis::cmd("SET")
        .arg("a")
        .arg(&value[..])
        .query::<()>(&mut con)
        .unwrap();
    let pipeline = |con: &mut Connection| {
        let mut pipe = redis::pipe();
        for _ in 0..64 {
            pipe.cmd("GET").arg("a");
            pipe.cmd("ECHO").arg(&value[..]);
        }
        let replies: Vec<Vec<u8>> = pipe.query(con).unwrap();
        assert!(replies.iter().all(|reply| reply.len() == 1024));
    };
    let (before, after) = used_memory_around(&mut con, 4, pipeline);
    assert!(
        after <= before + (16 << 10),
        "used_memory grew from {before} to {after} after pipelines of 128 KiB each way"
    );
}

/// Replies waiting to be written count against the limit, so a pipeline of GETs whose replies
/// are larger than the limit has every key evicted and leaves the shard with nothing more to
/// evict. Once they are written, memory is under the limit again, and the next write is
/// served: the OOM answer was given by the figure recorded while the replies waited (under
/// `allkeys-*`, where Redis refuses a write only when eviction cannot make room now).
#[test]
fn a_write_after_replies_larger_than_the_limit_is_not_refused() {
    let ember = Ember::start_with(&["--threads", "1", "--maxmemory-policy", "allkeys-lru"]);
    let mut con = ember.connect(false);
    let value = vec![b'x'; 1024];
    // Every command the test sends, used once, so that their statistics are in the base.
    redis::cmd("SET")
        .arg("warm")
        .arg("x")
        .query::<()>(&mut con)
        .unwrap();
    redis::cmd("GET")
        .arg("warm")
        .query::<Vec<u8>>(&mut con)
        .unwrap();
    redis::cmd("DBSIZE").query::<u64>(&mut con).unwrap();
    set_maxmemory(&mut con, 0);
    redis::cmd("FLUSHALL").query::<()>(&mut con).unwrap();
    let maxmemory = limit_data_to(&mut con, 40 << 10);
    let mut refused = Vec::new();
    for round in 0..20 {
        // Ten at a time: a pipeline of SETs within the connection's 16 KiB input buffer.
        let keys: Vec<String> = (0..10).map(|i| format!("key:{round}:{i}")).collect();
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.cmd("SET").arg(key).arg(&value[..]).ignore();
        }
        if let Err(error) = pipe.query::<()>(&mut con) {
            refused.push(format!(
                "round {round}, SETs: {error} (used_memory {}, maxmemory {maxmemory}, {} keys)",
                info_field(&mut con, "memory", "used_memory"),
                redis::cmd("DBSIZE").query::<u64>(&mut con).unwrap()
            ));
        }
        let mut pipe = redis::pipe();
        for i in 0..64 {
            pipe.cmd("GET").arg(&keys[i % keys.len()]);
        }
        pipe.query::<Vec<Option<Vec<u8>>>>(&mut con).unwrap();
    }
    assert!(
        refused.is_empty(),
        "{} of 20 batches refused: {:?}",
        refused.len(),
        &refused[..refused.len().min(3)]
    );
}

/// MEMORY PURGE, as Redis's: the pages that 200 MB of deleted values leave dirty go back to the
/// system at once (jemalloc would return them on its own decay schedule, seconds later).
#[test]
fn memory_purge_returns_freed_pages_at_once() {
    let ember = Ember::start_with(&["--threads", "1"]);
    let mut con = ember.connect(false);
    let value = vec![b'x'; 5 << 20];
    let resident = |con: &mut Connection| info_field(con, "memory", "used_memory_rss");
    let start = resident(&mut con);
    for i in 0..40 {
        redis::cmd("SET")
            .arg(format!("big:{i}"))
            .arg(&value[..])
            .query::<()>(&mut con)
            .unwrap();
    }
    let loaded = resident(&mut con);
    assert!(loaded > start + (150 << 20), "{start} -> {loaded}");
    redis::cmd("FLUSHALL").query::<()>(&mut con).unwrap();
    let reply: String = redis::cmd("MEMORY").arg("PURGE").query(&mut con).unwrap();
    assert_eq!(reply, "OK");
    let purged = resident(&mut con);
    assert!(
        purged < start + (20 << 20),
        "resident {start} at start, {loaded} loaded, {purged} after FLUSHALL and MEMORY PURGE"
    );
}

/// Between batches a connection holds one reply buffer, not two: replies ping-pong between the
/// buffer a connection writes and the one its socket sends, and a batch of 8 KiB of replies
/// written into the small one of the two left both large, about 10 KB more per connection at
/// rest than after small replies (a quarter of a 43 KB limit in `ember-bench hitratio` at 0.1%).
#[test]
fn a_connection_holds_one_reply_buffer_between_batches() {
    let ember = Ember::start_with(&["--threads", "1"]);
    let mut con = ember.connect(false);
    let value = vec![b'x'; 1024];
    for i in 0..8 {
        redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(&value[..])
            .query::<()>(&mut con)
            .unwrap();
    }
    let batch = |con: &mut Connection| {
        let mut pipe = redis::pipe();
        for i in 0..8 {
            pipe.cmd("GET").arg(format!("k{i}"));
        }
        let replies: Vec<Vec<u8>> = pipe.query(con).unwrap();
        assert_eq!(replies.len(), 8);
    };
    let (before, after) = used_memory_around(&mut con, 6, batch);
    assert!(
        after <= before + (4 << 10),
        "used_memory grew from {before} to {after} after batches of 8 KiB of replies"
    );
}

/// Waits up to five seconds for `condition`.
fn within_5s(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    condition()
}

/// Fills `key` with a set of `members` members, 1,000 per SADD.
fn fill_set(con: &mut Connection, key: &str, members: usize) {
    for start in (0..members).step_by(1000) {
        let batch: Vec<String> = (start..(start + 1000).min(members))
            .map(|i| format!("member:{i}"))
            .collect();
        redis::cmd("SADD").arg(key).arg(&batch).exec(con).unwrap();
    }
}

/// Sets `k0` .. `k{count - 1}`.
fn fill_keys(con: &mut Connection, count: usize) {
    for i in 0..count {
        redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .exec(con)
            .unwrap();
    }
}

/// UNLINK and FLUSHALL ASYNC free in the background, as Redis's lazy free does: the key is gone
/// at once, INFO counts what the freer thread dropped, and the memory comes back. DEL, SYNC
/// flushes, small values and a server with `maxmemory` free in place; the `lazyfree-lazy-user-*`
/// settings make DEL and plain flushes lazy.
#[test]
fn unlink_and_async_flushes_free_in_the_background() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let freed = |con: &mut Connection| info_field(con, "stats", "lazyfreed_objects");
    let pending = |con: &mut Connection| info_field(con, "memory", "lazyfree_pending_objects");
    let before = info_field(&mut con, "memory", "used_memory");

    fill_set(&mut con, "big", 100_000);
    let unlinked: i64 = redis::cmd("UNLINK").arg("big").query(&mut con).unwrap();
    assert_eq!(unlinked, 1);
    let exists: i64 = redis::cmd("EXISTS").arg("big").query(&mut con).unwrap();
    assert_eq!(exists, 0);
    assert!(within_5s(|| freed(&mut con) == 1 && pending(&mut con) == 0));
    assert!(within_5s(
        || info_field(&mut con, "memory", "used_memory") < before + 1_000_000
    ));

    // DEL and a small value: in place.
    fill_set(&mut con, "big", 100_000);
    redis::cmd("SET")
        .arg("small")
        .arg("v")
        .exec(&mut con)
        .unwrap();
    let deleted: i64 = redis::cmd("DEL").arg("big").query(&mut con).unwrap();
    let small: i64 = redis::cmd("UNLINK").arg("small").query(&mut con).unwrap();
    assert_eq!((deleted, small), (1, 1));
    assert_eq!(freed(&mut con), 1);
    // DEL under lazyfree-lazy-user-del.
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("lazyfree-lazy-user-del")
        .arg("yes")
        .exec(&mut con)
        .unwrap();
    fill_set(&mut con, "big", 100_000);
    redis::cmd("DEL").arg("big").exec(&mut con).unwrap();
    assert!(within_5s(|| freed(&mut con) == 2));

    // FLUSHALL ASYNC counts a key each; SYNC none.
    fill_keys(&mut con, 500);
    redis::cmd("FLUSHALL").arg("SYNC").exec(&mut con).unwrap();
    assert_eq!(freed(&mut con), 2);
    fill_keys(&mut con, 500);
    redis::cmd("FLUSHALL").arg("ASYNC").exec(&mut con).unwrap();
    let keys: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(keys, 0);
    assert!(within_5s(
        || freed(&mut con) == 502 && pending(&mut con) == 0
    ));

    // CONFIG RESETSTAT zeroes the count; with maxmemory set, UNLINK frees in place.
    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .exec(&mut con)
        .unwrap();
    assert_eq!(freed(&mut con), 0);
    set_maxmemory(&mut con, 1 << 30);
    fill_set(&mut con, "big", 100_000);
    redis::cmd("UNLINK").arg("big").exec(&mut con).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(freed(&mut con), 0);
}

/// Under `lazyfree-lazy-expire yes` a large value whose key expires (actively, or when a
/// command finds it expired) is freed in the background, as Redis's lazy free does; by
/// default, and with `maxmemory` set, it is freed where it expires.
#[test]
fn expired_values_free_in_the_background_under_lazyfree_lazy_expire() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let freed = |con: &mut Connection| info_field(con, "stats", "lazyfreed_objects");
    // Waits until the key is removed (a read of an expired key may only report it absent).
    let expired = |con: &mut Connection| info_field(con, "stats", "expired_keys");
    let expire_big = |con: &mut Connection, key: &str| {
        let before = expired(con);
        fill_set(con, key, 10_000);
        redis::cmd("PEXPIRE").arg(key).arg(1).exec(con).unwrap();
        assert!(within_5s(|| expired(con) == before + 1));
    };
    expire_big(&mut con, "big");
    assert_eq!(freed(&mut con), 0, "freed in place by default");
    let set = |con: &mut Connection, name: &str, value: &str| {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .exec(con)
            .unwrap();
    };
    set(&mut con, "lazyfree-lazy-expire", "yes");
    // Each key on its own shard: both shards' keyspaces hand their expired values over.
    for (round, key) in ["{a}big", "{b}big"].into_iter().enumerate() {
        expire_big(&mut con, key);
        assert!(
            within_5s(|| freed(&mut con) == round as u64 + 1),
            "{key}: {} freed",
            freed(&mut con)
        );
    }
    // A small value is not worth the trip.
    let before = expired(&mut con);
    redis::cmd("SET")
        .arg("small")
        .arg("v")
        .arg("PX")
        .arg(1)
        .exec(&mut con)
        .unwrap();
    assert!(within_5s(|| expired(&mut con) == before + 1));
    assert_eq!(freed(&mut con), 2);
    set(&mut con, "maxmemory", "1gb");
    expire_big(&mut con, "big");
    assert_eq!(freed(&mut con), 2, "freed in place under maxmemory");
}

/// A request of 100,000 arguments leaves no memory behind on its connection once it has run:
/// the parsers' argument tables shrink back (they held 4 MB until the connection closed, and
/// Redis's unit/lazyfree saw UNLINK reclaim nothing).
#[test]
fn a_request_of_many_arguments_leaves_no_memory_behind() {
    let ember = Ember::start(1);
    let mut con = ember.connect(false);
    let before = info_field(&mut con, "memory", "used_memory");
    let members: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
    redis::cmd("SADD")
        .arg("set")
        .arg(&members)
        .exec(&mut con)
        .unwrap();
    redis::cmd("DEL").arg("set").exec(&mut con).unwrap();
    let after = info_field(&mut con, "memory", "used_memory");
    assert!(
        after < before + 500_000,
        "used_memory {before} before, {after} after"
    );
}

/// The names of a MEMORY STATS reply (RESP2), nested ones included, in order.
fn memory_stats_names(stats: &[redis::Value]) -> Vec<String> {
    let mut names = Vec::new();
    for pair in stats.chunks(2) {
        if let redis::Value::BulkString(name) = &pair[0] {
            names.push(String::from_utf8_lossy(name).into_owned());
        }
        if let Some(redis::Value::Array(nested)) = pair.get(1) {
            names.extend(memory_stats_names(nested));
        }
    }
    names
}

/// The field names of an INFO section's reply.
fn info_fields(con: &mut Connection, section: &str) -> Vec<String> {
    let info: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    info.lines()
        .filter_map(|line| line.split_once(':').map(|(name, _)| name.to_owned()))
        .collect()
}

/// An empty server's memory is start-up memory and overhead, not data: what the shards
/// allocate while they start (tables, rings, channels) is in `used_memory_startup`, as Redis
/// counts everything it holds before its first client there (it reports about 40 KB of
/// dataset when empty). Before, the shards' 2.4 MB showed as `used_memory_dataset`.
#[test]
fn an_empty_server_holds_no_dataset() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let field = |con: &mut Connection, name: &str| info_field(con, "memory", name);
    let used = field(&mut con, "used_memory");
    let startup = field(&mut con, "used_memory_startup");
    let dataset = field(&mut con, "used_memory_dataset");
    assert!(
        startup > used / 2,
        "start-up memory {startup} of {used} used"
    );
    assert!(
        dataset < 256 * 1024,
        "an empty server's dataset is {dataset} bytes of {used} used (start-up {startup})"
    );
}

/// INFO memory carries every field of Redis 7.0's (monitoring reads them: `used_memory_lua`,
/// `mem_clients_normal`, `used_memory_overhead`...), and the ones Ember can measure move with
/// what they measure: the Lua interpreter after a script, the script cache after SCRIPT LOAD
/// and FLUSH, the key tables' overhead with keys, and the dataset never counts the overhead.
#[test]
fn info_memory_has_redis_fields_that_measure_what_they_say() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    if let Some(redis) = common::RedisOracle::start() {
        let mut oracle = redis.connect(false);
        let ours = info_fields(&mut con, "memory");
        let missing: Vec<String> = info_fields(&mut oracle, "memory")
            .into_iter()
            .filter(|name| !ours.contains(name))
            .collect();
        assert!(missing.is_empty(), "INFO memory lacks {missing:?}");
    }
    let field = |con: &mut Connection, name: &str| info_field(con, "memory", name);
    assert!(
        field(&mut con, "mem_clients_normal") > 0,
        "a connection's buffers"
    );
    assert_eq!(field(&mut con, "used_memory_scripts_eval"), 0);
    let body = "return redis.call('SET', KEYS[1], ARGV[1])";
    let _: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(body)
        .query(&mut con)
        .unwrap();
    assert!(field(&mut con, "used_memory_scripts_eval") >= body.len() as u64);
    assert_eq!(field(&mut con, "number_of_cached_scripts"), 1);
    let lua_before = field(&mut con, "used_memory_lua");
    for shard_key in ["a", "b", "c", "d"] {
        redis::cmd("EVAL")
            .arg(body)
            .arg(1)
            .arg(shard_key)
            .arg("v")
            .exec(&mut con)
            .unwrap();
    }
    assert!(
        field(&mut con, "used_memory_lua") > lua_before,
        "the interpreters started"
    );
    // Many scripts on both shards: every shard compiles its own copy of each.
    for i in 0..400 {
        for shard_key in ["a", "b", "c", "d"] {
            redis::cmd("EVAL")
                .arg(format!("return redis.call('GET', KEYS[1]) or '{i}'"))
                .arg(1)
                .arg(shard_key)
                .exec(&mut con)
                .unwrap();
        }
    }
    let lua_full = field(&mut con, "used_memory_lua");
    redis::cmd("SCRIPT").arg("FLUSH").exec(&mut con).unwrap();
    assert_eq!(field(&mut con, "used_memory_scripts_eval"), 0);
    // Every shard let go of its compiled scripts at once, not at its next script.
    let lua_flushed = field(&mut con, "used_memory_lua");
    assert!(
        lua_flushed < lua_full / 2,
        "used_memory_lua {lua_full} -> {lua_flushed} after SCRIPT FLUSH"
    );
    let overhead_before = field(&mut con, "used_memory_overhead");
    fill_keys(&mut con, 20_000);
    let overhead = field(&mut con, "used_memory_overhead");
    // A table slot is 7 bytes; 20,000 keys take at least 140 KB of tables.
    assert!(
        overhead >= overhead_before + 140_000,
        "overhead {overhead_before} -> {overhead}"
    );
    let used = field(&mut con, "used_memory");
    let dataset = field(&mut con, "used_memory_dataset");
    assert!(
        dataset + overhead <= used + used / 10,
        "{dataset} + {overhead} vs {used}"
    );
    assert!(
        dataset > 20_000 * 8,
        "the keys and values are data: {dataset}"
    );
}
