//! RDB snapshots through the real binary: SAVE and BGSAVE write `dir`/`dbfilename`, a restarted
//! `ember` loads it with every type, database, expiry and function library; the file moves to a
//! real redis-server 7.0 and back with the same contents; `save` points, SHUTDOWN and SIGTERM
//! save as Redis does; a damaged file stops the start with a reason, and a failed save says why
//! and leaves the previous file whole.

mod common;

use std::path::Path;
use std::time::Duration;

use common::values::{contents, fill, keys};
use common::{
    command, persistence_field as info_field, query, scratch_dir, wait_until, Ember, RedisOracle,
    ScratchDir,
};

fn error(con: &mut redis::Connection, args: &[&str]) -> String {
    match command(args).query::<redis::Value>(con) {
        Err(error) => error.to_string(),
        Ok(value) => panic!("{args:?} answered {value:?}"),
    }
}

fn start_background_save(con: &mut redis::Connection) {
    assert_eq!(
        query::<String>(con, &["BGSAVE"]),
        "Background saving started"
    );
}

/// Waits for the background save under way to end; its status (`ok` or `err`).
fn wait_for_background_save(con: &mut redis::Connection) -> String {
    wait_until("the background save", || {
        info_field(con, "rdb_bgsave_in_progress") == "0"
    });
    info_field(con, "rdb_last_bgsave_status")
}

fn start_in(dir: &Path, extra: &[&str]) -> Ember {
    let mut args = vec!["--threads", "2", "--dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    Ember::start_with(&args)
}

const LIBRARY: &str =
    "#!lua name=counters\nredis.register_function('bump', function(keys) return redis.call('incr', keys[1]) end)";

/// Every fixture (all types, both size classes), keys in another database, keys with and
/// without a TTL and a function library: SAVE, restart in the same dir, everything back.
#[test]
fn a_saved_dataset_is_loaded_at_start() {
    let scratch = ScratchDir::new("ember-persistence");
    let dir = scratch.path().to_path_buf();
    let (before, ttl_before): (Vec<String>, i64) = {
        let ember = start_in(&dir, &[]);
        let mut con = ember.connect(false);
        fill(&mut con);
        let _: () = query(&mut con, &["SET", "volatile", "v", "EX", "1000"]);
        let _: () = query(&mut con, &["SET", "gone", "v", "PX", "1"]);
        let _: () = query(&mut con, &["SELECT", "3"]);
        let _: () = query(&mut con, &["SET", "in-three", "3"]);
        let _: () = query(&mut con, &["HSET", "field-ttl", "a", "1", "b", "2"]);
        let _: Vec<i64> = query(
            &mut con,
            &["HEXPIRE", "field-ttl", "1000", "FIELDS", "1", "a"],
        );
        let _: () = query(&mut con, &["SELECT", "0"]);
        let _: String = query(&mut con, &["FUNCTION", "LOAD", LIBRARY]);
        // RedisBloom's types have RDB encodings (module values); Top-K and tensors have none
        // and are left out, said in the log.
        let _: i64 = query(&mut con, &["BF.ADD", "bloom", "a"]);
        let _: i64 = query(&mut con, &["CF.ADD", "cuckoo", "a"]);
        let _: () = query(&mut con, &["CMS.INITBYDIM", "sketch", "100", "4"]);
        let _: Vec<i64> = query(&mut con, &["CMS.INCRBY", "sketch", "a", "7"]);
        let _: () = query(&mut con, &["TOPK.RESERVE", "top", "3"]);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(query::<String>(&mut con, &["SAVE"]), "OK");
        assert!(dir.join("dump.rdb").is_file());
        assert!(
            ember.log().contains("1 keys left out of the snapshot"),
            "{}",
            ember.log()
        );
        assert_eq!(info_field(&mut con, "rdb_changes_since_last_save"), "0");
        assert_eq!(info_field(&mut con, "rdb_saves"), "1");
        let lastsave: u64 = query(&mut con, &["LASTSAVE"]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(lastsave + 5 >= now, "LASTSAVE {lastsave}, now {now}");
        let before = keys().iter().map(|key| contents(&mut con, key)).collect();
        (before, query(&mut con, &["TTL", "volatile"]))
    };
    let ember = start_in(&dir, &[]);
    assert!(
        ember.log().contains("DB loaded from disk"),
        "{}",
        ember.log()
    );
    let mut con = ember.connect(false);
    assert_eq!(query::<i64>(&mut con, &["BF.EXISTS", "bloom", "a"]), 1);
    assert_eq!(query::<i64>(&mut con, &["CF.EXISTS", "cuckoo", "a"]), 1);
    assert_eq!(
        query::<Vec<i64>>(&mut con, &["CMS.QUERY", "sketch", "a"]),
        [7]
    );
    assert_eq!(query::<i64>(&mut con, &["EXISTS", "top"]), 0);
    let after: Vec<String> = keys().iter().map(|key| contents(&mut con, key)).collect();
    assert_eq!(after, before);
    let ttl: i64 = query(&mut con, &["TTL", "volatile"]);
    assert!(
        ttl > 0 && ttl <= ttl_before,
        "TTL {ttl}, before {ttl_before}"
    );
    assert_eq!(query::<i64>(&mut con, &["EXISTS", "gone"]), 0);
    assert_eq!(
        info_field(&mut con, "rdb_last_load_keys_loaded"),
        (keys().len() + 6).to_string()
    );
    let _: () = query(&mut con, &["SELECT", "3"]);
    assert_eq!(query::<String>(&mut con, &["GET", "in-three"]), "3");
    let field_ttls: Vec<i64> = query(&mut con, &["HTTL", "field-ttl", "FIELDS", "2", "a", "b"]);
    assert!(field_ttls[0] > 0 && field_ttls[1] == -1, "{field_ttls:?}");
    assert_eq!(
        query::<i64>(&mut con, &["FCALL", "bump", "1", "counter"]),
        1,
        "the library came back"
    );
    drop(con);
    drop(ember);
}

/// The file Ember writes loads into redis-server 7.0 with the same contents, and the file
/// redis-server writes loads into Ember.
#[test]
fn snapshots_move_between_ember_and_redis() {
    let scratch = ScratchDir::new("ember-persistence");
    let dir = scratch.path().to_path_buf();
    let file = dir.join("dump.rdb");
    let before: Vec<String> = {
        let ember = start_in(&dir, &[]);
        let mut con = ember.connect(false);
        fill(&mut con);
        let _: () = query(&mut con, &["SET", "volatile", "v", "EX", "1000"]);
        let _: String = query(&mut con, &["FUNCTION", "LOAD", LIBRARY]);
        assert_eq!(query::<String>(&mut con, &["SAVE"]), "OK");
        keys().iter().map(|key| contents(&mut con, key)).collect()
    };
    let Some(redis) = RedisOracle::start_with(&["--dir", dir.to_str().unwrap()]) else {
        return;
    };
    let mut theirs = redis.connect(false);
    let in_redis: Vec<String> = keys()
        .iter()
        .map(|key| contents(&mut theirs, key))
        .collect();
    assert_eq!(in_redis, before, "Redis loaded Ember's file");
    assert!(query::<i64>(&mut theirs, &["TTL", "volatile"]) > 0);
    assert_eq!(query::<i64>(&mut theirs, &["FCALL", "bump", "1", "n"]), 1);
    // Back: Redis changes a key and saves; Ember loads Redis's file.
    let _: () = query(&mut theirs, &["SET", "s:embstr", "from redis"]);
    let _: String = query(&mut theirs, &["SAVE"]);
    drop(theirs);
    drop(redis);
    let written = std::fs::metadata(&file).unwrap().len();
    let ember = start_in(&dir, &[]);
    let mut con = ember.connect(false);
    let again: Vec<String> = keys().iter().map(|key| contents(&mut con, key)).collect();
    let expected: Vec<String> = before
        .iter()
        .map(|text| {
            if text == "string: \"hello\"" {
                "string: \"from redis\"".to_string()
            } else {
                text.clone()
            }
        })
        .collect();
    assert_eq!(
        again, expected,
        "Ember loaded Redis's file ({written} bytes)"
    );
    assert_eq!(query::<i64>(&mut con, &["FCALL", "bump", "1", "n"]), 2);
    drop(con);
    drop(ember);
}

/// BGSAVE answers at once and the file follows; INFO tells its progress and outcome; a failing
/// save says why, keeps the previous file, and BGSAVE's failure shows in INFO.
#[test]
fn background_saves_and_failed_saves_report_as_redis_does() {
    let scratch = ScratchDir::new("ember-persistence");
    let dir = scratch.path().to_path_buf();
    let ember = start_in(&dir, &[]);
    let mut con = ember.connect(false);
    for i in 0..20_000 {
        let _: () = query(
            &mut con,
            &["SET", &format!("key:{i}"), &format!("value:{i}")],
        );
    }
    start_background_save(&mut con);
    assert_eq!(wait_for_background_save(&mut con), "ok");
    assert_eq!(info_field(&mut con, "rdb_changes_since_last_save"), "0");
    assert_eq!(info_field(&mut con, "current_save_keys_total"), "0");
    let saved = std::fs::read(dir.join("dump.rdb")).unwrap();
    assert!(saved.starts_with(b"REDIS0010"));
    assert_eq!(
        error(&mut con, &["BGSAVE", "NOW"]),
        "An error was signalled by the server - ResponseError: syntax error"
    );
    // MULTI refuses SAVE, as Redis does; BGSAVE is queued.
    let _: () = query(&mut con, &["MULTI"]);
    assert!(error(&mut con, &["SAVE"]).contains("Command not allowed inside a transaction"));
    let _: () = redis::cmd("DISCARD").query(&mut con).unwrap_or(());
    // A directory that went away: the save fails with the reason, the old file stays.
    let gone = scratch_dir("ember-persistence-gone");
    let _: () = query(&mut con, &["CONFIG", "SET", "dir", gone.to_str().unwrap()]);
    std::fs::remove_dir_all(&gone).unwrap();
    let _: () = query(&mut con, &["SET", "after", "1"]);
    let failed = error(&mut con, &["SAVE"]);
    assert!(
        failed.contains("Failed opening the temp RDB file"),
        "{failed}"
    );
    start_background_save(&mut con);
    assert_eq!(wait_for_background_save(&mut con), "err");
    assert_eq!(info_field(&mut con, "rdb_changes_since_last_save"), "1");
    assert_eq!(std::fs::read(dir.join("dump.rdb")).unwrap(), saved);
    // Without save points writes go on; with them, writes (and PING) get MISCONF until a save
    // succeeds or stop-writes-on-bgsave-error is no.
    let _: () = query(&mut con, &["SET", "still", "writable"]);
    let _: () = query(&mut con, &["CONFIG", "SET", "save", "3600 1"]);
    wait_until("MISCONF", || {
        redis::cmd("SET")
            .arg("k")
            .arg("v")
            .query::<()>(&mut con)
            .is_err_and(|error| error.code() == Some("MISCONF"))
    });
    assert!(error(&mut con, &["PING"]).contains("MISCONF"));
    assert_eq!(query::<String>(&mut con, &["GET", "still"]), "writable");
    let _: () = query(
        &mut con,
        &["CONFIG", "SET", "stop-writes-on-bgsave-error", "no"],
    );
    wait_until("writes again", || {
        redis::cmd("SET")
            .arg("k")
            .arg("v")
            .query::<()>(&mut con)
            .is_ok()
    });
    let _: () = query(
        &mut con,
        &["CONFIG", "SET", "stop-writes-on-bgsave-error", "yes"],
    );
    let _: () = query(&mut con, &["CONFIG", "SET", "dir", dir.to_str().unwrap()]);
    assert_eq!(query::<String>(&mut con, &["SAVE"]), "OK");
    let _: () = query(&mut con, &["SET", "k", "after the save"]);
    let _: () = query(&mut con, &["CONFIG", "SET", "save", ""]);
    assert!(error(&mut con, &["CONFIG", "SET", "dir", "/no/such/dir"])
        .contains("No such file or directory"));
    assert!(error(&mut con, &["CONFIG", "SET", "save", "60"]).contains("Invalid save parameters"));
    assert!(
        error(&mut con, &["CONFIG", "SET", "dbfilename", "a/b.rdb"]).contains("can't be a path")
    );
    drop(con);
    drop(ember);
}

/// `save` points start a background save once enough changes are made; SHUTDOWN saves with
/// them (not with NOSAVE), SHUTDOWN SAVE without them, and SIGTERM saves when they are set.
#[test]
fn save_points_shutdown_and_sigterm_save() {
    let scratch = ScratchDir::new("ember-persistence");
    let dir = scratch.path().to_path_buf();
    let file = dir.join("dump.rdb");
    {
        let ember = start_in(&dir, &["--save", "1 3"]);
        let mut con = ember.connect(false);
        for i in 0..3 {
            let _: () = query(&mut con, &["SET", &format!("k{i}"), "v"]);
        }
        wait_until("the save point's background save", || {
            info_field(&mut con, "rdb_saves") == "1"
        });
        assert!(file.is_file());
        assert_eq!(
            query::<Vec<String>>(&mut con, &["CONFIG", "GET", "save"]),
            ["save", "1 3"]
        );
    }
    // SHUTDOWN NOSAVE with save points: the file keeps the three keys only.
    std::fs::remove_file(&file).unwrap();
    {
        let mut ember = start_in(&dir, &["--save", "3600 1"]);
        let mut con = ember.connect(false);
        let _: () = query(&mut con, &["SET", "nosave", "1"]);
        let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut con);
        assert_eq!(ember.wait_exit(Duration::from_secs(10)), Some(0));
        assert!(!file.exists(), "SHUTDOWN NOSAVE wrote a file");
    }
    {
        let mut ember = start_in(&dir, &[]);
        let mut con = ember.connect(false);
        let _: () = query(&mut con, &["SET", "by-shutdown", "1"]);
        let _ = redis::cmd("SHUTDOWN").arg("SAVE").query::<()>(&mut con);
        assert_eq!(ember.wait_exit(Duration::from_secs(10)), Some(0));
        assert!(file.is_file(), "SHUTDOWN SAVE wrote no file");
    }
    {
        let mut ember = start_in(&dir, &["--save", "3600 1"]);
        let mut con = ember.connect(false);
        assert_eq!(query::<String>(&mut con, &["GET", "by-shutdown"]), "1");
        let _: () = query(&mut con, &["SET", "by-sigterm", "1"]);
        // SAFETY: kill sends a signal to the child this test started.
        unsafe { libc::kill(ember.pid() as i32, libc::SIGTERM) };
        assert_eq!(ember.wait_exit(Duration::from_secs(10)), Some(0));
    }
    let ember = start_in(&dir, &[]);
    let mut con = ember.connect(false);
    assert_eq!(query::<String>(&mut con, &["GET", "by-sigterm"]), "1");
    drop(con);
    drop(ember);
}

/// A damaged file stops the start with a sentence naming it; the file is left as it was.
#[test]
fn a_damaged_file_stops_the_start_with_a_reason() {
    let scratch = ScratchDir::new("ember-persistence");
    let dir = scratch.path().to_path_buf();
    {
        let ember = start_in(&dir, &[]);
        let mut con = ember.connect(false);
        let _: () = query(&mut con, &["SET", "k", "v"]);
        assert_eq!(query::<String>(&mut con, &["SAVE"]), "OK");
    }
    let path = dir.join("dump.rdb");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 12;
    bytes[at] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(["--port", "0", "--bind", "127.0.0.1", "--dir"])
        .arg(&dir)
        .output()
        .expect("run ember");
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{log}");
    assert!(
        log.contains("cannot load") && log.contains("dump.rdb"),
        "{log}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

/// BGSAVE is a copy of the moment it answered: writes that follow its reply at once (while
/// the shards are still encoding) are not in the file, and every key of that moment is.
#[test]
fn a_background_save_is_the_dataset_of_its_moment() {
    let scratch = ScratchDir::new("ember-persistence");
    let dir = scratch.path().to_path_buf();
    const KEYS: usize = 200_000;
    {
        let ember = start_in(&dir, &[]);
        let mut con = ember.connect(false);
        let mut fill = redis::pipe();
        for i in 0..KEYS {
            fill.set(format!("key:{i}"), format!("old:{i}")).ignore();
        }
        let _: () = fill.query(&mut con).unwrap();
        let _: () = query(&mut con, &["RPUSH", "list", "a", "b"]);
        let mut writes = redis::pipe();
        for i in 0..KEYS {
            match i % 3 {
                0 => writes.set(format!("key:{i}"), "new").ignore(),
                1 => writes.del(format!("key:{i}")).ignore(),
                _ => writes.set(format!("added:{i}"), "new").ignore(),
            };
        }
        writes.rpush("list", "c").ignore();
        start_background_save(&mut con);
        let _: () = writes.query(&mut con).unwrap();
        assert_eq!(wait_for_background_save(&mut con), "ok");
        let deleted = (0..KEYS).filter(|i| i % 3 == 1).count();
        let added = (0..KEYS).filter(|i| i % 3 == 2).count();
        assert_eq!(
            query::<i64>(&mut con, &["DBSIZE"]) as usize,
            KEYS - deleted + added + 1
        );
    }
    let ember = start_in(&dir, &[]);
    let mut con = ember.connect(false);
    assert_eq!(query::<i64>(&mut con, &["DBSIZE"]) as usize, KEYS + 1);
    let mut read = redis::pipe();
    for i in 0..KEYS {
        read.get(format!("key:{i}"));
    }
    let values: Vec<String> = read.query(&mut con).unwrap();
    for (i, value) in values.iter().enumerate() {
        assert_eq!(value, &format!("old:{i}"), "key:{i}");
    }
    assert_eq!(
        query::<Vec<String>>(&mut con, &["LRANGE", "list", "0", "-1"]),
        ["a", "b"]
    );
    drop(con);
    drop(ember);
}

/// A slow background save (`rdb-key-save-delay`, Redis's hidden test hook) is seen in progress:
/// INFO's progress fields, BGSAVE and SAVE refused meanwhile, BGSAVE SCHEDULE run after it.
#[test]
fn a_save_in_progress_shows_and_schedules_the_next() {
    let scratch = ScratchDir::new("ember-persistence");
    let dir = scratch.path().to_path_buf();
    let ember = start_in(&dir, &[]);
    let mut con = ember.connect(false);
    let all: Vec<String> = query(&mut con, &["CONFIG", "GET", "*"]);
    assert!(!all.iter().any(|name| name == "rdb-key-save-delay"));
    assert_eq!(
        query::<Vec<String>>(&mut con, &["CONFIG", "GET", "rdb-key-save-delay"]),
        ["rdb-key-save-delay", "0"]
    );
    let mut fill = redis::pipe();
    for i in 0..4_000 {
        fill.set(format!("key:{i}"), i).ignore();
    }
    let _: () = fill.query(&mut con).unwrap();
    let _: () = query(&mut con, &["CONFIG", "SET", "rdb-key-save-delay", "500"]);
    start_background_save(&mut con);
    assert_eq!(info_field(&mut con, "rdb_bgsave_in_progress"), "1");
    assert_eq!(info_field(&mut con, "current_save_keys_total"), "4000");
    let processed: u64 = info_field(&mut con, "current_save_keys_processed")
        .parse()
        .unwrap();
    assert!(processed < 4000, "{processed}");
    assert!(error(&mut con, &["BGSAVE"]).contains("Background save already in progress"));
    assert!(error(&mut con, &["SAVE"]).contains("Background save already in progress"));
    assert_eq!(
        query::<String>(&mut con, &["BGSAVE", "SCHEDULE"]),
        "Background saving scheduled"
    );
    // The shards still serve while they save.
    assert_eq!(query::<String>(&mut con, &["GET", "key:7"]), "7");
    let _: () = query(&mut con, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    wait_until("the save and the scheduled one", || {
        info_field(&mut con, "rdb_saves") == "2"
            && info_field(&mut con, "rdb_bgsave_in_progress") == "0"
    });
    drop(con);
    drop(ember);
}

/// A BGSAVE whose start a stalled shard does not answer in time fails with the timeout error
/// instead of hanging; once the shard is back (and has dropped or finished its late part),
/// BGSAVE and SAVE work and the file holds every key.
#[test]
fn a_stalled_shard_fails_a_background_save_without_a_hang() {
    let scratch = ScratchDir::new("ember-persistence");
    let dir = scratch.path().to_path_buf();
    let ember = start_in(&dir, &["--shard-reply-timeout-ms", "300"]);
    let mut con = ember.connect(false);
    let mut fill = redis::pipe();
    for i in 0..1_000 {
        fill.set(format!("key:{i}"), i).ignore();
    }
    let _: () = fill.query(&mut con).unwrap();
    // Twelve connections over both shards (SO_REUSEPORT); one sleeps its shard for 2 s and the
    // others all ask for a BGSAVE meanwhile.
    let mut connections: Vec<redis::Connection> = (0..12).map(|_| ember.connect(false)).collect();
    for connection in &mut connections {
        let _: String = query(connection, &["PING"]);
    }
    let mut sleeper = connections.pop().unwrap();
    let sleeping = std::thread::spawn(move || {
        let _: () = query(&mut sleeper, &["DEBUG", "SLEEP", "2"]);
    });
    std::thread::sleep(Duration::from_millis(100));
    let askers: Vec<_> = connections
        .into_iter()
        .map(|mut connection| {
            std::thread::spawn(move || {
                match command(&["BGSAVE"]).query::<String>(&mut connection) {
                    Ok(reply) => reply,
                    Err(error) => error.to_string(),
                }
            })
        })
        .collect();
    let replies: Vec<String> = askers
        .into_iter()
        .map(|asker| asker.join().unwrap())
        .collect();
    sleeping.join().unwrap();
    eprintln!("{replies:?}");
    assert!(
        replies
            .iter()
            .all(|reply| reply == "Background saving started"
                || reply.contains("did not answer within 300 ms")
                || reply.contains("Background save already in progress")),
        "{replies:?}"
    );
    wait_for_background_save(&mut con);
    // The late part may still be encoding on the shard that slept: BGSAVE says so until it is
    // done, then works.
    wait_until("a BGSAVE that starts", || {
        command(&["BGSAVE"]).query::<String>(&mut con).is_ok()
    });
    assert_eq!(wait_for_background_save(&mut con), "ok");
    assert_eq!(query::<String>(&mut con, &["SAVE"]), "OK");
    drop(con);
    drop(ember);
    let ember = start_in(&dir, &[]);
    let mut con = ember.connect(false);
    assert_eq!(query::<i64>(&mut con, &["DBSIZE"]), 1_000);
    drop(con);
    drop(ember);
}
