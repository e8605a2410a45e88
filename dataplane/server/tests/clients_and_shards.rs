//! Clients as they really talk (pipelined handshakes of redis-rs and redis-py, long pipelines,
//! redis-py itself) and keys spread over two shards (multi-key commands split and gathered,
//! MSETNX atomic, active expiry of keys nobody reads, SCAN covering every shard).

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{multibulk, Ember};
use ember_store::slot::key_slot;
use redis::Value;

/// Shard that owns `key` in a server of `shard_count` shards: slots split in equal ranges.
fn owner(key: &str, shard_count: usize) -> usize {
    usize::from(key_slot(key.as_bytes())) * shard_count / 16384
}

/// `count` keys named `prefix:i`, with both shards of a two-shard server among their owners.
fn spread_keys(prefix: &str, count: usize) -> Vec<String> {
    let keys: Vec<String> = (0..count).map(|i| format!("{prefix}:{i}")).collect();
    let owners: BTreeSet<usize> = keys.iter().map(|k| owner(k, 2)).collect();
    assert_eq!(owners.len(), 2, "keys {prefix}:* all hash to one shard");
    keys
}

/// The handshake redis-rs sends for `redis://...?protocol=resp3` with a database, and the one
/// redis-py sends (HELLO 3 with AUTH and SETNAME, then CLIENT SETINFO), each in one write: every
/// reply comes back in order and the connection carries the state they set.
#[test]
fn pipelined_handshakes() {
    let ember = Ember::start_with(&["--threads", "2", "--requirepass", "secret"]);
    let mut raw = ember.raw();
    let mut handshake = multibulk(&[
        b"HELLO", b"3", b"AUTH", b"default", b"secret", b"SETNAME", b"py",
    ]);
    handshake.extend(multibulk(&[
        b"CLIENT",
        b"SETINFO",
        b"LIB-NAME",
        b"redis-py",
    ]));
    handshake.extend(multibulk(&[b"CLIENT", b"SETINFO", b"LIB-VER", b"5.2.1"]));
    handshake.extend(multibulk(&[b"SELECT", b"3"]));
    handshake.extend(multibulk(&[b"CLIENT", b"INFO"]));
    raw.send(&handshake);
    let hello = raw.reply_text();
    assert!(hello.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.4\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:"), "{hello}");
    assert!(hello.ends_with("$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"), "{hello}");
    assert_eq!(raw.reply_text(), "+OK\r\n");
    assert_eq!(raw.reply_text(), "+OK\r\n");
    assert_eq!(raw.reply_text(), "+OK\r\n");
    let info = raw.reply_text();
    assert!(
        info.starts_with('='),
        "CLIENT INFO is verbatim in RESP3: {info}"
    );
    for field in [
        " name=py ",
        " db=3 ",
        " resp=3 ",
        " lib-name=redis-py ",
        " lib-ver=5.2.1",
    ] {
        assert!(info.contains(field), "{field:?} missing from {info}");
    }

    // redis-rs: HELLO 3 AUTH, SELECT, CLIENT SETINFO x2, pipelined by the crate itself.
    let url = format!("redis://:secret@127.0.0.1:{}/5?protocol=resp3", ember.port);
    let mut con = redis::Client::open(url)
        .unwrap()
        .get_connection()
        .expect("redis-rs handshake");
    let info: String = redis::cmd("CLIENT").arg("INFO").query(&mut con).unwrap();
    for field in [
        " db=5 ",
        " resp=3 ",
        " lib-name=redis-rs ",
        " lib-ver=0.32.7",
    ] {
        assert!(info.contains(field), "{field:?} missing from {info}");
    }
    // And in RESP2, where redis-rs sends AUTH first.
    let url = format!("redis://:secret@127.0.0.1:{}/1", ember.port);
    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
    let info: String = redis::cmd("CLIENT").arg("INFO").query(&mut con).unwrap();
    assert!(
        info.contains(" db=1 ") && info.contains(" resp=2 "),
        "{info}"
    );
    // A wrong password fails the handshake with Redis's error.
    let url = format!("redis://:wrong@127.0.0.1:{}/?protocol=resp3", ember.port);
    let error = redis::Client::open(url)
        .unwrap()
        .get_connection()
        .err()
        .expect("wrong password refused");
    assert!(
        error.to_string().contains("WRONGPASS"),
        "unexpected error: {error}"
    );
}

/// 1,000 pipelined commands through redis-rs, in both protocols, across two shards: every
/// reply in request order.
#[test]
fn thousand_pipelined_commands() {
    let ember = Ember::start(2);
    for resp3 in [false, true] {
        let mut con = ember.connect(resp3);
        let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
        let mut pipe = redis::pipe();
        for index in 0..250 {
            let key = format!("p:{index}");
            pipe.cmd("SET").arg(&key).arg(index);
            pipe.cmd("INCRBY").arg(&key).arg(1000);
            pipe.cmd("GET").arg(&key);
            pipe.cmd("MGET").arg(&key).arg(format!("missing:{index}"));
        }
        let replies: Vec<Value> = pipe.query(&mut con).unwrap();
        assert_eq!(replies.len(), 1000);
        for (index, chunk) in replies.chunks(4).enumerate() {
            let expected = [
                Value::Okay,
                Value::Int(index as i64 + 1000),
                Value::BulkString((index + 1000).to_string().into_bytes()),
                Value::Array(vec![
                    Value::BulkString((index + 1000).to_string().into_bytes()),
                    Value::Nil,
                ]),
            ];
            assert_eq!(chunk, expected, "pipeline entry {index}, resp3={resp3}");
        }
        let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        assert_eq!(size, 250);
    }
}

/// MSET, MGET, DEL, UNLINK, EXISTS, TOUCH and MSETNX over keys on both shards of `--threads 2`.
#[test]
fn multi_key_commands_across_shards() {
    let ember = Ember::start(2);
    let keys = spread_keys("mk", 40);
    for resp3 in [false, true] {
        let mut con = ember.connect(resp3);
        let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
        let mut mset = redis::cmd("MSET");
        for key in &keys {
            mset.arg(key).arg(format!("value of {key}"));
        }
        let _: () = mset.query(&mut con).unwrap();
        let mut asked: Vec<String> = keys.clone();
        asked.insert(7, "absent:1".into());
        asked.push(keys[0].clone());
        let values: Vec<Option<String>> = redis::cmd("MGET").arg(&asked).query(&mut con).unwrap();
        let expected: Vec<Option<String>> = asked
            .iter()
            .map(|k| (!k.starts_with("absent")).then(|| format!("value of {k}")))
            .collect();
        assert_eq!(values, expected, "MGET resp3={resp3}");
        let count = |con: &mut redis::Connection, name: &str, args: &[String]| -> i64 {
            redis::cmd(name).arg(args).query(con).unwrap()
        };
        assert_eq!(
            count(&mut con, "EXISTS", &asked),
            41,
            "EXISTS counts repeats"
        );
        assert_eq!(count(&mut con, "TOUCH", &asked), 41);
        assert_eq!(count(&mut con, "DEL", &keys[..10]), 10);
        assert_eq!(count(&mut con, "UNLINK", &keys[5..20]), 10);
        assert_eq!(count(&mut con, "EXISTS", &keys), 20);
        // MSETNX: one existing key (on either shard) stops all of it.
        let mut msetnx = redis::cmd("MSETNX");
        for key in &keys[..25] {
            msetnx.arg(key).arg("new");
        }
        let set: i64 = msetnx.query(&mut con).unwrap();
        assert_eq!(set, 0);
        assert_eq!(
            count(&mut con, "EXISTS", &keys[..20]),
            0,
            "MSETNX wrote partly"
        );
        let mut msetnx = redis::cmd("MSETNX");
        for key in &keys[..20] {
            msetnx.arg(key).arg("new");
        }
        let set: i64 = msetnx.query(&mut con).unwrap();
        assert_eq!(set, 1);
        let values: Vec<String> = redis::cmd("MGET").arg(&keys[..20]).query(&mut con).unwrap();
        assert!(values.iter().all(|v| v == "new"), "{values:?}");
        // Odd argument counts get the arity error even when the keys span shards.
        let error = redis::cmd("MSET")
            .arg(&keys[0])
            .arg("x")
            .arg(&keys[39])
            .query::<()>(&mut con)
            .unwrap_err();
        assert_eq!(
            common::show(&Err(error)),
            "(error) ERR wrong number of arguments for 'mset' command"
        );
        let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        assert_eq!(size, 40);
    }
}

/// Two clients race MSETNX over overlapping keys on both shards while a third reads them all
/// with MGET: exactly one MSETNX wins each round, and no reader ever sees half of one.
#[test]
fn msetnx_is_atomic_across_shards() {
    const ROUNDS: usize = 60;
    let ember = Ember::start(2);
    let port = ember.port;
    for round in 0..ROUNDS {
        let keys = spread_keys(&format!("atomic{round}"), 12);
        let writers: Vec<_> = ["left", "right"]
            .into_iter()
            .map(|writer| {
                let keys = keys.clone();
                thread::spawn(move || {
                    let mut con = common::connect(port, false);
                    let mut msetnx = redis::cmd("MSETNX");
                    for key in &keys {
                        msetnx.arg(key).arg(writer);
                    }
                    msetnx.query::<i64>(&mut con).unwrap()
                })
            })
            .collect();
        let reader_keys = keys.clone();
        let reader = thread::spawn(move || {
            let mut con = common::connect(port, false);
            for _ in 0..20 {
                let values: Vec<Option<String>> = redis::cmd("MGET")
                    .arg(&reader_keys)
                    .query(&mut con)
                    .unwrap();
                let distinct: BTreeSet<&Option<String>> = values.iter().collect();
                assert_eq!(distinct.len(), 1, "MGET saw a partial MSETNX: {values:?}");
            }
        });
        let wins: i64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
        reader.join().unwrap();
        assert_eq!(wins, 1, "round {round}: {wins} MSETNX calls won");
        let mut con = ember.connect(false);
        let values: Vec<String> = redis::cmd("MGET").arg(&keys).query(&mut con).unwrap();
        assert!(
            values.iter().all(|v| *v == values[0]),
            "round {round}: keys from both writers: {values:?}"
        );
    }
}

/// Four clients mix cross-shard MSET, MSETNX, DEL, UNLINK and MGET over one set of keys on
/// both shards: nothing deadlocks (each reply comes within the read timeout), and every MGET
/// sees the keys all equal (all missing, or all from one write), as one Redis would.
#[test]
fn concurrent_cross_shard_commands_stay_atomic() {
    const CLIENTS: usize = 4;
    const OPERATIONS: usize = 300;
    let ember = Ember::start(2);
    let port = ember.port;
    let keys = spread_keys("mixed", 8);
    let workers: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let keys = keys.clone();
            thread::spawn(move || {
                let mut con = common::connect(port, client % 2 == 1);
                for operation in 0..OPERATIONS {
                    let value = format!("c{client}o{operation}");
                    match (client + operation) % 5 {
                        0 | 1 => {
                            let mut mset = redis::cmd("MSET");
                            for key in &keys {
                                mset.arg(key).arg(&value);
                            }
                            let _: () = mset.query(&mut con).unwrap();
                        }
                        2 => {
                            let mut msetnx = redis::cmd("MSETNX");
                            for key in &keys {
                                msetnx.arg(key).arg(&value);
                            }
                            let _: i64 = msetnx.query(&mut con).unwrap();
                        }
                        3 => {
                            let command = if operation % 2 == 0 { "DEL" } else { "UNLINK" };
                            let _: i64 = redis::cmd(command).arg(&keys).query(&mut con).unwrap();
                        }
                        _ => {}
                    }
                    let values: Vec<Option<String>> =
                        redis::cmd("MGET").arg(&keys).query(&mut con).unwrap();
                    assert!(
                        values.iter().all(|v| *v == values[0]),
                        "client {client}, operation {operation}: MGET saw {values:?}"
                    );
                    let count: i64 = redis::cmd("EXISTS").arg(&keys).query(&mut con).unwrap();
                    assert!(
                        count == 0 || count == keys.len() as i64,
                        "EXISTS counted {count}"
                    );
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
}

/// Keys set with PX 100 that nobody reads again leave the keyspace by active expiry: DBSIZE
/// (which reads no key) drops to the keys without a TTL, on both shards.
#[test]
fn active_expiry_removes_keys_nobody_reads() {
    const VOLATILE: usize = 2000;
    const PERSISTENT: usize = 10;
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let volatile = spread_keys("volatile", VOLATILE);
    let mut pipe = redis::pipe();
    for key in &volatile {
        pipe.cmd("SET")
            .arg(key)
            .arg("v")
            .arg("PX")
            .arg(100)
            .ignore();
    }
    for key in spread_keys("persistent", PERSISTENT) {
        pipe.cmd("SET").arg(key).arg("p").ignore();
    }
    let _: () = pipe.query(&mut con).unwrap();
    let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert!(
        size > PERSISTENT as i64,
        "keys expired before they were counted"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let started = Instant::now();
    loop {
        let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        if size == PERSISTENT as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "DBSIZE still {size} after {:?}",
            started.elapsed()
        );
        thread::sleep(Duration::from_millis(50));
    }
    let info: String = redis::cmd("INFO").arg("stats").query(&mut con).unwrap();
    let expired: usize = info
        .lines()
        .find_map(|line| line.strip_prefix("expired_keys:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("expired_keys in INFO stats");
    assert_eq!(expired, VOLATILE, "{info}");
    let info: String = redis::cmd("INFO").arg("keyspace").query(&mut con).unwrap();
    assert!(
        info.contains(&format!("db0:keys={PERSISTENT},expires=0,")),
        "{info}"
    );
}

fn scan_all(con: &mut redis::Connection, extra: &[&str]) -> Vec<String> {
    let mut cursor = 0u64;
    let mut found = Vec::new();
    for _ in 0..100_000 {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg(extra)
            .query(con)
            .unwrap();
        found.extend(keys);
        if next == 0 {
            return found;
        }
        cursor = next;
    }
    panic!("SCAN did not finish");
}

/// SCAN returns every key of every shard, with MATCH, COUNT and TYPE; keys present for the whole
/// scan come back even while other keys are added and removed during it.
#[test]
fn scan_covers_every_shard() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let keys = spread_keys("scan", 1000);
    let mut mset = redis::cmd("MSET");
    for key in &keys {
        mset.arg(key).arg(1);
    }
    let _: () = mset.query(&mut con).unwrap();
    let expected: BTreeSet<String> = keys.iter().cloned().collect();
    for count in ["1", "10", "1000"] {
        let found = scan_all(&mut con, &["COUNT", count]);
        let distinct: BTreeSet<String> = found.iter().cloned().collect();
        assert_eq!(distinct, expected, "SCAN COUNT {count}");
    }
    let matched: BTreeSet<String> = scan_all(&mut con, &["MATCH", "scan:1?", "COUNT", "50"])
        .into_iter()
        .collect();
    let expected_matched: BTreeSet<String> = (10..20).map(|i| format!("scan:{i}")).collect();
    assert_eq!(matched, expected_matched);
    assert_eq!(scan_all(&mut con, &["TYPE", "string"]).len(), 1000);
    assert!(scan_all(&mut con, &["TYPE", "hash"]).is_empty());

    // Churn on other keys while scanning: the stable keys are all still found.
    let port = ember.port;
    let churn = thread::spawn(move || {
        let mut con = common::connect(port, false);
        for round in 0..40 {
            let mut pipe = redis::pipe();
            for index in 0..50 {
                pipe.cmd("SET")
                    .arg(format!("churn:{round}:{index}"))
                    .arg(1)
                    .ignore();
            }
            for index in 0..50 {
                if round > 0 {
                    pipe.cmd("DEL")
                        .arg(format!("churn:{}:{index}", round - 1))
                        .ignore();
                }
            }
            let _: () = pipe.query(&mut con).unwrap();
        }
    });
    let found: BTreeSet<String> = scan_all(&mut con, &["COUNT", "5"])
        .into_iter()
        .filter(|k| k.starts_with("scan:"))
        .collect();
    churn.join().unwrap();
    assert_eq!(found, expected, "keys present through the scan were missed");
}

/// redis-py against ember, in RESP2 and RESP3: its handshake, commands, pipelines, SCAN.
#[test]
fn redis_py_smoke() {
    let Some((python, python_path)) = common::python_with_redis_py() else {
        eprintln!(
            "skipped: redis-py is not installed (ci/setup-servertests.sh puts it in .deps/python-redis)"
        );
        return;
    };
    let ember = Ember::start(2);
    let script = r#"
import sys, redis
port = int(sys.argv[1])
for protocol in (2, 3):
    r = redis.Redis(host="127.0.0.1", port=port, protocol=protocol, client_name="smoke")
    r.flushall()
    assert r.ping() is True
    assert r.set("greeting", "hello") is True
    assert r.get("greeting") == b"hello"
    assert r.set("greeting", "x", nx=True) is None
    assert r.mset({f"k{i}": i for i in range(100)}) is True
    assert r.mget([f"k{i}" for i in range(3)] + ["nope"]) == [b"0", b"1", b"2", None]
    assert r.incr("counter") == 1 and r.incrby("counter", 41) == 42
    assert r.incrbyfloat("float", "1.5") == 1.5
    assert r.expire("greeting", 100) is True and 99 <= r.ttl("greeting") <= 100
    assert r.delete("k0", "k1", "missing") == 2
    assert r.exists("k2", "k3", "missing") == 2
    pipe = r.pipeline(transaction=False)
    for i in range(200):
        pipe.set(f"pipe{i}", i).get(f"pipe{i}")
    results = pipe.execute()
    assert results == [x for i in range(200) for x in (True, str(i).encode())], results[:6]
    keys = set(r.scan_iter(match="k*", count=7))
    assert keys == {f"k{i}".encode() for i in range(2, 100)}, len(keys)
    assert r.client_getname() in ("smoke", b"smoke")
    assert r.dbsize() == 98 + 200 + 3
    try:
        r.incr("greeting")
        raise SystemExit("INCR on a string did not fail")
    except redis.ResponseError as error:
        assert str(error) == "value is not an integer or out of range", str(error)
    info = r.info()
    assert info["redis_version"] == "7.2.4", info.get("redis_version")
    r.close()
print("redis-py smoke ok")
"#;
    let output = Command::new(&python)
        .args(["-c", script, &ember.port.to_string()])
        .env("PYTHONPATH", &python_path)
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "redis-py smoke failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// SLOWLOG GET `count`: each entry's arguments as text, newest entry first.
fn slow_log(con: &mut redis::Connection, count: usize) -> Vec<Vec<String>> {
    let entries: Vec<Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(count)
        .query(con)
        .expect("SLOWLOG GET");
    let text = |value: &Value| match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => format!("{other:?}"),
    };
    entries
        .iter()
        .map(|entry| match entry {
            Value::Array(fields) => match &fields[3] {
                Value::Array(args) => args.iter().map(text).collect(),
                other => vec![text(other)],
            },
            other => vec![text(other)],
        })
        .collect()
}

/// Every command reaches the slow log, those another shard answered as well as those answered
/// here, in a pipeline or alone.
#[test]
fn pipelined_commands_on_both_shards_reach_the_slow_log() {
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let keys = spread_keys("slow", 20);
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(0)
        .exec(&mut con)
        .expect("CONFIG SET");
    let mut pipe = redis::pipe();
    for key in &keys {
        pipe.cmd("GET").arg(key);
    }
    let _: Vec<Option<String>> = pipe.query(&mut con).expect("pipeline");
    for key in &keys {
        let _: Option<String> = redis::cmd("GET")
            .arg(format!("{key}:alone"))
            .query(&mut con)
            .expect("GET");
    }
    let logged: BTreeSet<String> = slow_log(&mut con, 100)
        .into_iter()
        .filter_map(|args| match args.as_slice() {
            [name, key] if name == "GET" => Some(key.clone()),
            _ => None,
        })
        .collect();
    let missing: Vec<String> = keys
        .iter()
        .flat_map(|key| [key.clone(), format!("{key}:alone")])
        .filter(|key| !logged.contains(key))
        .collect();
    assert!(
        missing.is_empty(),
        "GETs missing from the slow log: {missing:?}"
    );
}

/// A command that another shard ran counts the time it ran there, as Redis counts execution
/// only: GETs and an MGET split over both shards, sent while one shard sleeps (DEBUG SLEEP),
/// wait for it, but the slow log shows the sleep alone and INFO commandstats counts the
/// commands' microseconds, not their wait.
#[test]
fn commands_run_on_another_shard_count_their_run_not_their_wait() {
    let ember = Ember::start(2);
    let mut admin = ember.connect(false);
    let keys = [0, 1].map(|shard| common::key_on_shard("waited", shard, 2));
    for key in &keys {
        redis::cmd("SET")
            .arg(key)
            .arg("here")
            .exec(&mut admin)
            .expect("SET");
    }
    // At most three rounds: a round proves something only when some probe landed on the shard
    // that stayed awake (the kernel spreads connections over both; all on one: 2^-11).
    for round in 0..3 {
        redis::cmd("SLOWLOG")
            .arg("RESET")
            .exec(&mut admin)
            .expect("SLOWLOG RESET");
        redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .exec(&mut admin)
            .expect("CONFIG RESETSTAT");
        let mut connections: Vec<common::Raw> = (0..12).map(|_| ember.raw()).collect();
        for connection in &mut connections {
            assert_eq!(connection.command(&[b"PING"]), b"+PONG\r\n");
        }
        let mut sleeper = connections.pop().unwrap();
        let sleeping = thread::spawn(move || sleeper.command(&[b"DEBUG", b"SLEEP", b"1"]));
        thread::sleep(Duration::from_millis(150));
        // Each probe: a PING (answered at once on the awake shard, after the sleep on the
        // other), then both keys in one pipeline, alone and together (one key waits on the
        // awake shard, and so does the MGET).
        let probes: Vec<_> = connections
            .into_iter()
            .map(|mut raw| {
                let keys = keys.clone();
                thread::spawn(move || {
                    let started = Instant::now();
                    assert_eq!(raw.command(&[b"PING"]), b"+PONG\r\n");
                    let awake = started.elapsed() < Duration::from_millis(400);
                    let mut batch = Vec::new();
                    for key in &keys {
                        batch.extend(multibulk(&[b"GET", key.as_bytes()]));
                    }
                    batch.extend(multibulk(&[
                        b"MGET",
                        keys[0].as_bytes(),
                        keys[1].as_bytes(),
                    ]));
                    raw.send(&batch);
                    for _ in &keys {
                        assert_eq!(raw.reply(), b"$4\r\nhere\r\n");
                    }
                    assert_eq!(raw.reply(), b"*2\r\n$4\r\nhere\r\n$4\r\nhere\r\n");
                    awake
                })
            })
            .collect();
        let awake = probes
            .into_iter()
            .map(|probe| probe.join().expect("probe"))
            .filter(|&awake| awake)
            .count();
        assert_eq!(sleeping.join().unwrap(), b"+OK\r\n");
        eprintln!("round {round}: {awake} of 11 probes on the awake shard");
        if awake == 0 {
            continue;
        }
        let logged: Vec<String> = slow_log(&mut admin, 100)
            .into_iter()
            .map(|args| args.first().cloned().unwrap_or_default())
            .collect();
        assert_eq!(logged, ["DEBUG"], "the slow log holds more than the sleep");
        for command in ["get", "mget"] {
            let stats =
                common::info_text(&mut admin, "commandstats", &format!("cmdstat_{command}"));
            let usec: u64 = stats
                .split(',')
                .find_map(|field| field.strip_prefix("usec="))
                .and_then(|usec| usec.parse().ok())
                .unwrap_or_else(|| panic!("no usec in {stats}"));
            // Those that waited for the sleeping shard waited over half a second each.
            assert!(
                usec < 100_000,
                "{command} counted {usec} us: its wait for the other shard, not its run ({stats})"
            );
        }
        return;
    }
    panic!("in three rounds no probe landed on the shard that stayed awake");
}

/// SLOWLOG GET lists the newest entries first across shards too: clients on both shards log in
/// turn after one client logged many on its own shard (with a sequence per shard, that shard's
/// older entries came before the other shard's newer ones, and Redis's unit/slowlog saw an
/// unblocked BLPOP behind an earlier SLOWLOG RESET).
#[test]
fn slow_log_entries_come_newest_first_across_shards() {
    let ember = Ember::start(2);
    let mut busy = ember.connect(false);
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(0)
        .exec(&mut busy)
        .expect("CONFIG SET");
    redis::cmd("SLOWLOG")
        .arg("RESET")
        .exec(&mut busy)
        .expect("SLOWLOG RESET");
    for i in 0..40 {
        let _: String = redis::cmd("ECHO")
            .arg(format!("early-{i}"))
            .query(&mut busy)
            .expect("ECHO");
    }
    // Eight connections: the kernel spreads them over both shards.
    let mut others: Vec<redis::Connection> = (0..8).map(|_| ember.connect(false)).collect();
    for (i, con) in others.iter_mut().enumerate() {
        let _: String = redis::cmd("ECHO")
            .arg(format!("late-{i}"))
            .query(con)
            .expect("ECHO");
    }
    let newest: Vec<String> = slow_log(&mut busy, 8)
        .into_iter()
        .map(|args| args.get(1).cloned().unwrap_or_else(|| format!("{args:?}")))
        .collect();
    let expected: Vec<String> = (0..8).rev().map(|i| format!("late-{i}")).collect();
    assert_eq!(newest, expected);
}
