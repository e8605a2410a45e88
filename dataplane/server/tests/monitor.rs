//! MONITOR against redis-server side by side: the same commands, from clients on both shards of
//! `--threads 2`, give the same lines (timestamps and client addresses aside), in the same
//! order; a monitor that leaves (RESET, or closing) receives nothing more and costs nothing.

mod common;

use common::{multibulk, Ember, Raw, RedisOracle};

/// Keys on both shards of a two-shard server.
const KEYS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

/// A monitor line without its timestamp, and with a client's address as `ADDR`:
/// `[0 ADDR] "set" "a" "1"`.
fn normalized(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line).into_owned();
    let text = text
        .strip_prefix('+')
        .unwrap_or_else(|| panic!("not a status line: {text:?}"));
    let text = text.trim_end_matches("\r\n");
    let (stamp, rest) = text.split_once(' ').expect("timestamp");
    let (seconds, micros) = stamp.split_once('.').expect("seconds.micros");
    assert!(
        seconds.parse::<u64>().is_ok() && micros.len() == 6,
        "{text}"
    );
    let (source, command) = rest
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("] "))
        .expect("[db source]");
    let (db, from) = source.split_once(' ').expect("db and source");
    let from = if from == "lua" { "lua" } else { "ADDR" };
    format!("[{db} {from}] {command}")
}

/// Runs the scenario against a server on `port` and returns the monitor's lines.
fn scenario(port: u16) -> Vec<String> {
    let mut monitor = Raw::connect(port);
    assert_eq!(monitor.command(&[b"MONITOR"]), b"+OK\r\n");
    let mut first = Raw::connect(port);
    let mut second = Raw::connect(port);
    let mut expected_lines = 0;
    for (index, key) in KEYS.iter().enumerate() {
        let value = index.to_string();
        first.command(&[b"SET", key.as_bytes(), value.as_bytes()]);
        first.command(&[b"GET", key.as_bytes()]);
        expected_lines += 2;
    }
    // Binary arguments are quoted as sdscatrepr quotes them.
    first.command(&[b"SET", b"bin", b"a\x00\"\\\r\n\t\xff"]);
    // A script's commands come after its EVAL, marked lua.
    first.command(&[
        b"EVAL",
        b"redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])",
        b"1",
        b"c",
        b"from-lua",
    ]);
    expected_lines += 4;
    // MULTI before, EXEC after the commands it ran; a queued command is shown when it runs.
    for command in [
        &[b"MULTI".as_slice()][..],
        &[b"SET", b"a", b"in-multi"],
        &[b"INCR", b"counter"],
        &[b"EXEC"],
    ] {
        second.command(command);
    }
    expected_lines += 4;
    // A refused command is not shown; the EXEC it aborts is.
    second.command(&[b"MULTI"]);
    second.command(&[b"NO-SUCH-COMMAND"]);
    second.command(&[b"EXEC"]);
    expected_lines += 2;
    // Secrets are redacted; administrative commands are not shown.
    second.command(&[b"AUTH", b"not-a-password"]);
    second.command(&[b"CONFIG", b"GET", b"maxmemory"]);
    // SELECT shows the database it selected.
    second.command(&[b"SELECT", b"3"]);
    second.command(&[b"SET", b"d", b"in-db-3"]);
    second.command(&[b"SELECT", b"0"]);
    expected_lines += 4;
    // A pipeline's commands, on both shards, in order.
    let mut pipeline = Vec::new();
    for key in KEYS {
        pipeline.extend_from_slice(&multibulk(&[b"INCR", key.as_bytes()]));
    }
    first.send(&pipeline);
    for _ in KEYS {
        first.reply();
    }
    expected_lines += KEYS.len();
    // A blocking pop is shown once, when it starts.
    second.command(&[b"DEL", b"queue"]);
    second.send(&multibulk(&[b"BLPOP", b"queue", b"0"]));
    // Time for the pop to block (nothing here may be shown: any command would be).
    std::thread::sleep(std::time::Duration::from_millis(300));
    first.command(&[b"LPUSH", b"queue", b"job"]);
    second.reply();
    expected_lines += 3;
    let lines: Vec<String> = (0..expected_lines)
        .map(|_| normalized(&monitor.reply()))
        .collect();
    // Nothing more came: the next line is the PING sent now.
    first.command(&[b"PING"]);
    assert_eq!(normalized(&monitor.reply()), "[0 ADDR] \"PING\"");
    lines
}

#[test]
fn monitor_lines_match_redis() {
    let Some(redis) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    let from_ember = scenario(ember.port);
    let from_redis = scenario(redis.port);
    assert_eq!(from_ember, from_redis);
    assert!(from_ember.len() > 30);
}

#[test]
fn a_monitor_that_leaves_receives_nothing_more() {
    let ember = Ember::start(2);
    let mut monitor = Raw::connect(ember.port);
    assert_eq!(monitor.command(&[b"MONITOR"]), b"+OK\r\n");
    // A second MONITOR is ignored, with no reply (Redis's behaviour).
    monitor.send(&multibulk(&[b"MONITOR"]));
    let mut client = Raw::connect(ember.port);
    client.command(&[b"SET", b"a", b"1"]);
    assert_eq!(normalized(&monitor.reply()), "[0 ADDR] \"SET\" \"a\" \"1\"");
    // RESET leaves monitor mode: its own reply, then nothing from others.
    assert_eq!(monitor.command(&[b"RESET"]), b"+RESET\r\n");
    client.command(&[b"SET", b"b", b"2"]);
    assert_eq!(monitor.command(&[b"PING"]), b"+PONG\r\n");
    // Inside MULTI, MONITOR is refused when EXEC runs it.
    assert_eq!(monitor.command(&[b"MULTI"]), b"+OK\r\n");
    assert_eq!(monitor.command(&[b"MONITOR"]), b"+QUEUED\r\n");
    assert_eq!(
        monitor.command(&[b"EXEC"]),
        b"*1\r\n-ERR MONITOR isn't allowed for DENY BLOCKING client\r\n"
    );
    // A monitor that closes: the others keep working and a new monitor sees what follows.
    let mut closing = Raw::connect(ember.port);
    assert_eq!(closing.command(&[b"MONITOR"]), b"+OK\r\n");
    drop(closing);
    let mut watcher = Raw::connect(ember.port);
    assert_eq!(watcher.command(&[b"MONITOR"]), b"+OK\r\n");
    client.command(&[b"SET", b"c", b"3"]);
    assert_eq!(normalized(&watcher.reply()), "[0 ADDR] \"SET\" \"c\" \"3\"");
}
