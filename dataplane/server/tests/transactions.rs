//! MULTI / EXEC / DISCARD through the redis crate (its atomic pipelines send MULTI ... EXEC),
//! with keys on both shards of `--threads 2`.

mod common;

use common::Ember;

#[test]
fn atomic_pipeline_across_shards() {
    let ember = Ember::start(2);
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", ember.port)).unwrap();
    let mut connection = client.get_connection().unwrap();
    // Keys chosen to land on both shards: slots of "a".."h" spread over 0..16383.
    let keys: Vec<String> = (b'a'..=b'h').map(|c| (c as char).to_string()).collect();
    let mut pipe = redis::pipe();
    pipe.atomic();
    for (i, key) in keys.iter().enumerate() {
        pipe.cmd("SET").arg(key).arg(i).ignore();
    }
    pipe.cmd("MGET").arg(&keys);
    pipe.cmd("INCR").arg("a");
    pipe.cmd("DBSIZE");
    let (values, incremented, size): (Vec<i64>, i64, i64) = pipe.query(&mut connection).unwrap();
    assert_eq!(values, (0..8).collect::<Vec<i64>>());
    assert_eq!(incremented, 1);
    assert_eq!(size, 8);
}

#[test]
fn errors_as_redis_words_them() {
    let ember = Ember::start(2);
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", ember.port)).unwrap();
    let mut connection = client.get_connection().unwrap();
    let error = redis::cmd("EXEC").query::<()>(&mut connection).unwrap_err();
    assert_eq!(error.detail(), Some("EXEC without MULTI"));
    let error = redis::cmd("DISCARD")
        .query::<()>(&mut connection)
        .unwrap_err();
    assert_eq!(error.detail(), Some("DISCARD without MULTI"));
    let _: () = redis::cmd("MULTI").query(&mut connection).unwrap();
    let error = redis::cmd("MULTI")
        .query::<()>(&mut connection)
        .unwrap_err();
    assert_eq!(error.detail(), Some("MULTI calls can not be nested"));
    let queued: String = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut connection)
        .unwrap();
    assert_eq!(queued, "QUEUED");
    let _ = redis::cmd("NOSUCHCOMMAND")
        .query::<()>(&mut connection)
        .unwrap_err();
    let error = redis::cmd("EXEC").query::<()>(&mut connection).unwrap_err();
    assert_eq!(error.kind(), redis::ErrorKind::ExecAbortError, "{error}");
    let value: Option<String> = redis::cmd("GET").arg("k").query(&mut connection).unwrap();
    assert_eq!(value, None, "an aborted transaction writes nothing");
    let _: () = redis::cmd("MULTI").query(&mut connection).unwrap();
    let _: String = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut connection)
        .unwrap();
    let _: () = redis::cmd("DISCARD").query(&mut connection).unwrap();
    let value: Option<String> = redis::cmd("GET").arg("k").query(&mut connection).unwrap();
    assert_eq!(value, None, "a discarded transaction writes nothing");
}

#[test]
fn watch_aborts_exec_when_a_watched_key_changes() {
    let ember = Ember::start(2);
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", ember.port)).unwrap();
    let mut watcher = client.get_connection().unwrap();
    let mut other = client.get_connection().unwrap();
    let exec = |connection: &mut redis::Connection| -> redis::Value {
        let _: () = redis::cmd("MULTI").query(connection).unwrap();
        let _: String = redis::cmd("SET")
            .arg("counter")
            .arg("from-transaction")
            .query(connection)
            .unwrap();
        redis::cmd("EXEC").query(connection).unwrap()
    };
    for (name, interfere) in [
        ("untouched", None),
        (
            "overwritten with the same value",
            Some(vec!["SET", "counter", "1"]),
        ),
        (
            "expired by PEXPIRE",
            Some(vec!["PEXPIRE", "counter", "100000"]),
        ),
        ("deleted", Some(vec!["DEL", "counter"])),
    ] {
        let _: () = redis::cmd("SET")
            .arg("counter")
            .arg("1")
            .query(&mut other)
            .unwrap();
        let _: () = redis::cmd("WATCH")
            .arg("counter")
            .arg("never-set")
            .query(&mut watcher)
            .unwrap();
        if let Some(command) = &interfere {
            let _: redis::Value = redis::cmd(command[0])
                .arg(&command[1..])
                .query(&mut other)
                .unwrap();
        }
        let reply = exec(&mut watcher);
        let value: Option<String> = redis::cmd("GET").arg("counter").query(&mut other).unwrap();
        if interfere.is_none() {
            assert_ne!(reply, redis::Value::Nil, "case {name}: EXEC should run");
            assert_eq!(value.as_deref(), Some("from-transaction"), "case {name}");
        } else {
            assert_eq!(reply, redis::Value::Nil, "case {name}: EXEC should abort");
            assert_ne!(value.as_deref(), Some("from-transaction"), "case {name}");
        }
    }
    // UNWATCH forgets the keys.
    let _: () = redis::cmd("WATCH")
        .arg("counter")
        .query(&mut watcher)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("counter")
        .arg("2")
        .query(&mut other)
        .unwrap();
    let _: () = redis::cmd("UNWATCH").query(&mut watcher).unwrap();
    assert_ne!(exec(&mut watcher), redis::Value::Nil);
    // WATCH inside MULTI is refused.
    let _: () = redis::cmd("MULTI").query(&mut watcher).unwrap();
    let error = redis::cmd("WATCH")
        .arg("counter")
        .query::<()>(&mut watcher)
        .unwrap_err();
    assert_eq!(error.detail(), Some("WATCH inside MULTI is not allowed"));
    let _: () = redis::cmd("DISCARD").query(&mut watcher).unwrap();
}

/// WATCH on a set or sorted set: a write that changes it aborts EXEC, one that changes nothing
/// (adding a present member, the same score) does not, as in Redis.
#[test]
fn watch_sees_set_and_sorted_set_changes() {
    let ember = Ember::start(2);
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", ember.port)).unwrap();
    let mut watcher = client.get_connection().unwrap();
    let mut other = client.get_connection().unwrap();
    let cases: &[(&str, &[&str], &[&str], bool)] = &[
        (
            "sadd of a new member",
            &["SADD", "watched", "a"],
            &["SADD", "watched", "b"],
            true,
        ),
        (
            "sadd of a present member",
            &["SADD", "watched", "a"],
            &["SADD", "watched", "a"],
            false,
        ),
        (
            "srem of the last member",
            &["SADD", "watched", "a"],
            &["SREM", "watched", "a"],
            true,
        ),
        (
            "srem of no member",
            &["SADD", "watched", "a"],
            &["SREM", "watched", "x"],
            false,
        ),
        (
            "spop",
            &["SADD", "watched", "a", "b"],
            &["SPOP", "watched"],
            true,
        ),
        (
            "zadd of a new score",
            &["ZADD", "watched", "1", "a"],
            &["ZADD", "watched", "2", "a"],
            true,
        ),
        (
            "zadd of the same score",
            &["ZADD", "watched", "1", "a"],
            &["ZADD", "watched", "1", "a"],
            false,
        ),
        (
            "zincrby",
            &["ZADD", "watched", "1", "a"],
            &["ZINCRBY", "watched", "1", "a"],
            true,
        ),
        (
            "zrem",
            &["ZADD", "watched", "1", "a", "2", "b"],
            &["ZREM", "watched", "b"],
            true,
        ),
        (
            "set over a set",
            &["SADD", "watched", "a"],
            &["SET", "watched", "v"],
            true,
        ),
    ];
    for (name, setup, interfere, aborts) in cases {
        let _: () = redis::cmd("DEL").arg("watched").query(&mut other).unwrap();
        let _: redis::Value = redis::cmd(setup[0])
            .arg(&setup[1..])
            .query(&mut other)
            .unwrap();
        let _: () = redis::cmd("WATCH")
            .arg("watched")
            .query(&mut watcher)
            .unwrap();
        let _: redis::Value = redis::cmd(interfere[0])
            .arg(&interfere[1..])
            .query(&mut other)
            .unwrap();
        let _: () = redis::cmd("MULTI").query(&mut watcher).unwrap();
        let _: String = redis::cmd("SET")
            .arg("from-transaction")
            .arg("1")
            .query(&mut watcher)
            .unwrap();
        let reply: redis::Value = redis::cmd("EXEC").query(&mut watcher).unwrap();
        assert_eq!(
            reply == redis::Value::Nil,
            *aborts,
            "case {name}: {reply:?}"
        );
    }
}
