//! MIGRATE between Ember and a real redis-server 7.0, both ways: every type moves with its
//! contents and TTL (Ember → Redis, Redis → Ember, and Ember → Ember with keys on several shards
//! at both ends); the replies and what each side holds afterwards match Redis's own MIGRATE,
//! scenario by scenario (NOKEY, BUSYKEY, REPLACE, COPY, KEYS, AUTH/AUTH2, SELECT, errors,
//! timeouts, refused connections); and a MIGRATE waiting on a silent target does not stop the
//! shard from serving its other clients.

mod common;

use std::net::TcpListener;

use common::{run, show, Ember, Raw, RedisOracle};

/// Commands that build one key of each type (the key is the second argument).
fn fixtures() -> Vec<Vec<String>> {
    let words = |text: &str| text.split(' ').map(str::to_string).collect::<Vec<_>>();
    let mut commands = vec![
        words("SET {a}s:int 12345"),
        vec!["SET".into(), "{b}s:raw".into(), "abc".repeat(300)],
        words("RPUSH {c}l:small a 1 -5 300 70000 bb"),
        words("SADD {d}set:small a b c 1"),
        words("SADD {e}set:ints 1 2 3 -70000 5000000000"),
        words("ZADD {f}z:small 1 a 2.5 b -3 c inf d"),
        words("HSET {g}h:small f v n 5 neg -70000"),
        words("XADD {h}x:stream 1-1 a 1 b 2"),
    ];
    let mut big = vec!["RPUSH".to_string(), "{i}l:big".into()];
    big.extend((0..1500).map(|i| format!("element:{i}")));
    commands.push(big);
    let mut big = vec!["HSET".to_string(), "{j}h:big".into()];
    for i in 0..300 {
        big.extend([format!("field:{i}"), "v".repeat(i % 70)]);
    }
    commands.push(big);
    let mut big = vec!["ZADD".to_string(), "{k}z:big".into()];
    for i in 0..300 {
        big.extend([format!("{}", f64::from(i) / 7.0), format!("member:{i}")]);
    }
    commands.push(big);
    commands
}

fn query(con: &mut redis::Connection, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
    show(&run(con, &args))
}

/// A key's type and contents in one comparable string (members of sets and hashes sorted), and
/// whether it has a TTL.
fn contents(con: &mut redis::Connection, key: &str) -> String {
    let kind: String = redis::cmd("TYPE").arg(key).query(con).expect("TYPE");
    let sorted = |mut items: Vec<Vec<u8>>| {
        items.sort();
        format!("{items:?}")
    };
    let body = match kind.as_str() {
        "none" => return "none".into(),
        "string" => query(con, &["GET", key]),
        "list" => query(con, &["LRANGE", key, "0", "-1"]),
        "set" => sorted(
            redis::cmd("SMEMBERS")
                .arg(key)
                .query(con)
                .expect("SMEMBERS"),
        ),
        // Scores as numbers: Redis 7.0 prints them with 17 digits, Ember (as 7.2) shortest.
        "zset" => {
            let pairs: Vec<(Vec<u8>, f64)> = redis::cmd("ZRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query(con)
                .expect("ZRANGE");
            format!("{pairs:?}")
        }
        "hash" => {
            let pairs: Vec<(Vec<u8>, Vec<u8>)> =
                redis::cmd("HGETALL").arg(key).query(con).expect("HGETALL");
            let mut pairs = pairs;
            pairs.sort();
            format!("{pairs:?}")
        }
        "stream" => query(con, &["XRANGE", key, "-", "+"]),
        other => panic!("unexpected type {other}"),
    };
    let ttl: i64 = redis::cmd("PTTL").arg(key).query(con).expect("PTTL");
    format!("{kind} ttl={} {body}", ttl > 0)
}

/// Builds the fixtures on `source` (half of them with a TTL), migrates them all to `target`
/// in one MIGRATE ... KEYS, and checks that the target holds exactly what the source held
/// (TTLs kept, never longer) and the source holds none of them.
fn move_all(source: &mut redis::Connection, target: &mut redis::Connection, target_port: u16) {
    let fixtures = fixtures();
    let mut keys = Vec::new();
    for (index, command) in fixtures.iter().enumerate() {
        let args: Vec<&[u8]> = command.iter().map(|arg| arg.as_bytes()).collect();
        run(source, &args).expect("fixture");
        if index % 2 == 1 {
            query(source, &["PEXPIRE", &command[1], "100000"]);
        }
        keys.push(command[1].clone());
    }
    let before: Vec<String> = keys.iter().map(|key| contents(source, key)).collect();
    let port = target_port.to_string();
    let mut args = vec![
        "MIGRATE",
        "127.0.0.1",
        &port,
        "",
        "0",
        "10000",
        "REPLACE",
        "KEYS",
    ];
    args.extend(keys.iter().map(String::as_str));
    assert_eq!(query(source, &args), "+OK");
    for (key, expected) in keys.iter().zip(&before) {
        assert_eq!(&contents(target, key), expected, "{key} on the target");
        assert_eq!(contents(source, key), "none", "{key} left on the source");
        let ttl: i64 = redis::cmd("PTTL").arg(key).query(target).expect("PTTL");
        assert!(ttl <= 100_000, "{key}: TTL {ttl} grew");
    }
}

#[test]
fn every_type_moves_between_ember_and_redis_both_ways() {
    let Some(redis) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    let mut ember_con = ember.connect(false);
    let mut redis_con = redis.connect(false);
    move_all(&mut ember_con, &mut redis_con, redis.port);
    query(&mut redis_con, &["FLUSHALL"]);
    move_all(&mut redis_con, &mut ember_con, ember.port);
}

#[test]
fn keys_on_several_shards_move_between_two_embers() {
    let source = Ember::start(3);
    let target = Ember::start(4);
    let mut source_con = source.connect(false);
    let mut target_con = target.connect(false);
    move_all(&mut source_con, &mut target_con, target.port);
    // And back, built afresh on the other one.
    query(&mut target_con, &["FLUSHALL"]);
    move_all(&mut target_con, &mut source_con, source.port);
}

/// One scenario: commands run on the source and the target first, then the MIGRATE (with
/// `{port}` standing for the target's port), then the keys whose state is compared.
struct Scenario {
    name: &'static str,
    source_setup: &'static [&'static str],
    target_setup: &'static [&'static str],
    migrate: &'static str,
    /// `db:key` pairs read on both sides afterwards.
    keys: &'static [&'static str],
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "a missing key",
        source_setup: &[],
        target_setup: &[],
        migrate: "MIGRATE 127.0.0.1 {port} nokey 0 5000",
        keys: &["0:nokey"],
    },
    Scenario {
        name: "a plain move",
        source_setup: &["SET k v"],
        target_setup: &[],
        migrate: "MIGRATE 127.0.0.1 {port} k 0 5000",
        keys: &["0:k"],
    },
    Scenario {
        name: "an existing target key",
        source_setup: &["SET k v"],
        target_setup: &["SET k other"],
        migrate: "MIGRATE 127.0.0.1 {port} k 0 5000",
        keys: &["0:k"],
    },
    Scenario {
        name: "REPLACE",
        source_setup: &["SET k v"],
        target_setup: &["SET k other"],
        migrate: "MIGRATE 127.0.0.1 {port} k 0 5000 REPLACE",
        keys: &["0:k"],
    },
    Scenario {
        name: "COPY",
        source_setup: &["RPUSH k a b c"],
        target_setup: &[],
        migrate: "MIGRATE 127.0.0.1 {port} k 0 5000 COPY",
        keys: &["0:k"],
    },
    Scenario {
        name: "COPY onto an existing key",
        source_setup: &["SET k v"],
        target_setup: &["SET k other"],
        migrate: "MIGRATE 127.0.0.1 {port} k 0 5000 COPY",
        keys: &["0:k"],
    },
    Scenario {
        name: "KEYS, some missing",
        source_setup: &["SET a 1", "SET c 3", "SADD e x y"],
        target_setup: &[],
        migrate: "MIGRATE 127.0.0.1 {port} \"\" 0 5000 KEYS a b c d e",
        keys: &["0:a", "0:b", "0:c", "0:d", "0:e"],
    },
    Scenario {
        name: "KEYS, one busy",
        source_setup: &["SET a 1", "SET b 2", "SET c 3"],
        target_setup: &["SET b busy"],
        migrate: "MIGRATE 127.0.0.1 {port} \"\" 0 5000 KEYS a b c",
        keys: &["0:a", "0:b", "0:c"],
    },
    Scenario {
        name: "KEYS, all missing",
        source_setup: &[],
        target_setup: &[],
        migrate: "MIGRATE 127.0.0.1 {port} \"\" 0 5000 KEYS a b",
        keys: &["0:a"],
    },
    Scenario {
        name: "KEYS with a key argument",
        source_setup: &["SET a 1"],
        target_setup: &[],
        migrate: "MIGRATE 127.0.0.1 {port} a 0 5000 KEYS a",
        keys: &["0:a"],
    },
    Scenario {
        name: "another database",
        source_setup: &["SET k v", "SET j w"],
        target_setup: &[],
        migrate: "MIGRATE 127.0.0.1 {port} k 1 5000",
        keys: &["0:k", "1:k"],
    },
    Scenario {
        name: "back to database 0 on the cached connection",
        source_setup: &["SET j w"],
        target_setup: &[],
        migrate: "MIGRATE 127.0.0.1 {port} j 0 5000",
        keys: &["0:j", "1:j"],
    },
    Scenario {
        name: "a database out of range",
        source_setup: &["SET k v"],
        target_setup: &[],
        migrate: "MIGRATE 127.0.0.1 {port} k 99 5000",
        keys: &["0:k"],
    },
    Scenario {
        name: "a TTL",
        source_setup: &["SET k v PX 100000"],
        target_setup: &[],
        migrate: "MIGRATE 127.0.0.1 {port} k 0 5000",
        keys: &["0:k"],
    },
    Scenario {
        name: "an unknown option",
        source_setup: &["SET k v"],
        target_setup: &[],
        migrate: "MIGRATE 127.0.0.1 {port} k 0 5000 BOGUS",
        keys: &["0:k"],
    },
    Scenario {
        name: "AUTH without a password",
        source_setup: &["SET k v"],
        target_setup: &[],
        migrate: "MIGRATE 127.0.0.1 {port} k 0 5000 AUTH",
        keys: &["0:k"],
    },
    Scenario {
        name: "AUTH2 without a password",
        source_setup: &["SET k v"],
        target_setup: &[],
        migrate: "MIGRATE 127.0.0.1 {port} k 0 5000 AUTH2 user",
        keys: &["0:k"],
    },
    Scenario {
        name: "a timeout that is not a number",
        source_setup: &["SET k v"],
        target_setup: &[],
        migrate: "MIGRATE 127.0.0.1 {port} k 0 soon",
        keys: &["0:k"],
    },
    Scenario {
        name: "a database that is not a number",
        source_setup: &["SET k v"],
        target_setup: &[],
        migrate: "MIGRATE 127.0.0.1 {port} k zero 5000",
        keys: &["0:k"],
    },
    Scenario {
        name: "AUTH to a target without a password",
        source_setup: &["SET k v"],
        target_setup: &[],
        migrate: "MIGRATE 127.0.0.1 {port} k 0 5000 AUTH secret",
        keys: &["0:k"],
    },
    Scenario {
        name: "a wrong AUTH2 user",
        source_setup: &["SET k v"],
        target_setup: &["ACL SETUSER mover on >pw +@all ~*"],
        migrate: "MIGRATE 127.0.0.1 {port} k 0 5000 AUTH2 mover wrong",
        keys: &["0:k"],
    },
    Scenario {
        name: "the right AUTH2 user",
        source_setup: &["SET k v"],
        target_setup: &["ACL SETUSER mover on >pw +@all ~*"],
        migrate: "MIGRATE 127.0.0.1 {port} k 0 5000 AUTH2 mover pw",
        keys: &["0:k"],
    },
    Scenario {
        name: "a target user that may not RESTORE",
        source_setup: &["SET k v"],
        target_setup: &["ACL SETUSER weak on >pw +@all -restore ~*"],
        migrate: "MIGRATE 127.0.0.1 {port} k 0 5000 AUTH2 weak pw",
        keys: &["0:k"],
    },
    Scenario {
        name: "a closed port",
        source_setup: &["SET k v"],
        target_setup: &[],
        migrate: "MIGRATE 127.0.0.1 {closed} k 0 500",
        keys: &["0:k"],
    },
    Scenario {
        name: "a target that never answers",
        source_setup: &["SET k v"],
        target_setup: &[],
        migrate: "MIGRATE 127.0.0.1 {silent} k 0 300",
        keys: &["0:k"],
    },
    Scenario {
        name: "a key whose permissions the user lacks (DRYRUN)",
        source_setup: &["ACL SETUSER limited on nopass +@all %R~read* %RW~rw*"],
        target_setup: &[],
        migrate: "ACL DRYRUN limited MIGRATE 127.0.0.1 {port} read 0 500",
        keys: &[],
    },
    Scenario {
        name: "the KEYS form's permissions (DRYRUN)",
        source_setup: &["ACL SETUSER limited on nopass +@all %R~read* %RW~rw*"],
        target_setup: &[],
        migrate: "ACL DRYRUN limited MIGRATE 127.0.0.1 {port} \"\" 0 500 AUTH2 KEYS x KEYS rw read",
        keys: &[],
    },
];

/// Splits a command line into arguments; `""` is the empty argument.
fn split(line: &str, port: u16, closed: u16, silent: u16) -> Vec<String> {
    line.split(' ')
        .map(|word| match word {
            "\"\"" => String::new(),
            "{port}" => port.to_string(),
            "{closed}" => closed.to_string(),
            "{silent}" => silent.to_string(),
            word => word.to_string(),
        })
        .collect()
}

/// What one scenario gave: the MIGRATE's reply, then each compared key on the source and on
/// the target.
fn play(
    scenario: &Scenario,
    source: &mut redis::Connection,
    target: &mut redis::Connection,
    target_port: u16,
    closed: u16,
    silent: u16,
) -> Vec<String> {
    for line in scenario.source_setup {
        query(
            source,
            &split(line, target_port, closed, silent)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
    }
    for line in scenario.target_setup {
        query(
            target,
            &split(line, target_port, closed, silent)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
    }
    let migrate = split(scenario.migrate, target_port, closed, silent);
    let migrate: Vec<&str> = migrate.iter().map(String::as_str).collect();
    let mut seen = vec![format!("reply {}", query(source, &migrate))];
    for pair in scenario.keys {
        let (db, key) = pair.split_once(':').expect("db:key");
        for (side, con) in [("source", &mut *source), ("target", &mut *target)] {
            query(con, &["SELECT", db]);
            seen.push(format!("{side} {pair}: {}", contents(con, key)));
            query(con, &["SELECT", "0"]);
        }
    }
    seen
}

#[test]
fn replies_and_results_match_redis_scenario_by_scenario() {
    let Some(target) = RedisOracle::start() else {
        return;
    };
    let Some(redis_source) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    let closed = common::free_port();
    // Accepts connections (the kernel's backlog does) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("address").port();
    let mut mismatches = Vec::new();
    let mut target_con = target.connect(false);
    let mut sources = [redis_source.connect(false), ember.connect(false)];
    for scenario in SCENARIOS {
        let mut results = Vec::new();
        for source in &mut sources {
            query(&mut target_con, &["FLUSHALL"]);
            query(&mut target_con, &["ACL", "DELUSER", "mover", "weak"]);
            results.push(play(
                scenario,
                source,
                &mut target_con,
                target.port,
                closed,
                silent_port,
            ));
            query(source, &["FLUSHALL"]);
        }
        if results[0] != results[1] {
            mismatches.push(format!(
                "{}:\n  redis: {:?}\n  ember: {:?}",
                scenario.name, results[0], results[1]
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // Ember keeps the connection to the target for later MIGRATEs, as Redis does; each shard
    // keeps its own (a MIGRATE runs on the shard of its keys), so with two shards there are
    // one or two.
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query(&mut sources[1])
        .expect("INFO");
    assert!(
        info.contains("migrate_cached_sockets:1") || info.contains("migrate_cached_sockets:2"),
        "one cached connection per shard at most expected: {info}"
    );
    drop(silent);
}

#[test]
fn a_slow_target_does_not_stall_the_shard() {
    // One shard, so the waiting MIGRATE and the other client share it.
    let ember = Ember::start(1);
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("address").port().to_string();
    let mut con = ember.connect(false);
    query(&mut con, &["SET", "moving", "v"]);
    let mut waiting = Raw::connect(ember.port);
    waiting.send(&common::multibulk(&[
        b"MIGRATE",
        b"127.0.0.1",
        silent_port.as_bytes(),
        b"moving",
        b"0",
        b"60000",
    ]));
    // The MIGRATE is under way (its connection is in the silent listener's backlog) while
    // this client is served.
    silent.set_nonblocking(true).expect("non-blocking listener");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let accepted = loop {
        match silent.accept() {
            Ok((accepted, _)) => break accepted,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "MIGRATE did not connect"
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(error) => panic!("accept: {error}"),
        }
    };
    for i in 0..100 {
        let key = format!("other:{i}");
        assert_eq!(query(&mut con, &["SET", &key, "x"]), "+OK");
        assert_eq!(query(&mut con, &["GET", &key]), "\"x\"");
    }
    // The target goes away: the MIGRATE fails (its retry finds nobody) and the key stays.
    drop(accepted);
    drop(silent);
    let reply = waiting.reply_text();
    assert!(reply.starts_with("-IOERR error or timeout"), "{reply:?}");
    assert_eq!(query(&mut con, &["GET", "moving"]), "\"v\"");
}
