//! redis-cli (Debian's redis-tools) against ember: commands as a person types them, RESP3 mode,
//! `--scan`, and the inline form (`--pipe` sends bytes as they are, as telnet would), compared
//! with the same against redis-server where it is installed.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Ember, Raw, RedisOracle};

fn redis_cli_installed() -> bool {
    let found = Command::new("redis-cli").arg("--version").output().is_ok();
    if !found {
        eprintln!(
            "skipped: redis-cli is not installed (ci/setup-base.sh installs Debian's redis-tools)"
        );
    }
    found
}

/// Runs `redis-cli -p port args...` with `stdin`; its stdout (stderr is appended on failure).
fn redis_cli(port: u16, args: &[&str], stdin: &[u8]) -> String {
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redis-cli");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        text.push_str(&format!(
            "[exit {:?}] {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    text
}

/// (arguments, expected output) in order: redis-cli prints raw replies when stdout is no tty.
const SESSION: &[(&[&str], &str)] = &[
    (&["PING"], "PONG\n"),
    (&["SET", "greeting", "hello world"], "OK\n"),
    (&["GET", "greeting"], "hello world\n"),
    (&["APPEND", "greeting", "!"], "12\n"),
    (&["INCR", "counter"], "1\n"),
    (&["INCRBY", "counter", "41"], "42\n"),
    (
        &["MGET", "greeting", "missing", "counter"],
        "hello world!\n\n42\n",
    ),
    // Without a tty, redis-cli prints an error reply followed by a blank line.
    (
        &["INCR", "greeting"],
        "ERR value is not an integer or out of range\n\n",
    ),
    (
        &["NOSUCH", "x"],
        "ERR unknown command 'NOSUCH', with args beginning with: 'x' \n\n",
    ),
    (&["EXISTS", "greeting", "counter", "missing"], "2\n"),
    (&["SET", "temp", "x", "EX", "100"], "OK\n"),
    (&["TTL", "temp"], "100\n"),
    (&["-3", "GET", "missing"], "\n"),
    (&["-3", "HELLO", "3"], ""), // checked by shape below
    (&["DBSIZE"], "3\n"),
    (&["DEL", "temp"], "1\n"),
];

#[test]
fn redis_cli_session() {
    if !redis_cli_installed() {
        return;
    }
    let ember = Ember::start(2);
    let oracle = RedisOracle::start();
    for (args, expected) in SESSION {
        let ours = redis_cli(ember.port, args, b"");
        if args.contains(&"HELLO") {
            assert!(
                ours.starts_with("server redis\nversion 7.2.4\nproto 3\n"),
                "{ours}"
            );
            continue;
        }
        assert_eq!(ours, *expected, "redis-cli {args:?}");
        if let Some(oracle) = &oracle {
            let theirs = redis_cli(oracle.port, args, b"");
            assert_eq!(ours, theirs, "redis-cli {args:?}: ember vs redis-server");
        }
    }
    let info = redis_cli(ember.port, &["INFO", "server"], b"");
    assert!(info.contains("redis_version:7.2.4"), "{info}");
    // Commands read from stdin, one per line, as a script would feed them.
    let piped = redis_cli(ember.port, &[], b"SET piped 1\nINCR piped\nGET piped\n");
    assert_eq!(piped, "OK\n2\n2\n");
}

/// `redis-cli --scan` walks SCAN to the end over both shards.
#[test]
fn redis_cli_scan() {
    if !redis_cli_installed() {
        return;
    }
    let ember = Ember::start(2);
    let mut con = ember.connect(false);
    let mut mset = redis::cmd("MSET");
    for index in 0..300 {
        mset.arg(format!("cli:{index}")).arg(index);
    }
    let _: () = mset.query(&mut con).unwrap();
    let output = redis_cli(ember.port, &["--scan"], b"");
    let mut keys: Vec<&str> = output.lines().collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 300, "{output}");
    let output = redis_cli(ember.port, &["--scan", "--pattern", "cli:2??"], b"");
    assert_eq!(output.lines().count(), 100);
}

/// Inline commands, as telnet and `redis-cli --pipe` send them: quoting, escapes, blank lines,
/// several on one write. Replies are compared byte for byte with redis-server's.
#[test]
fn inline_commands() {
    let ember = Ember::start(1);
    let oracle = RedisOracle::start();
    let script: &[&[u8]] = &[
        b"SET plain value\r\n",
        b"GET plain\r\n",
        b"   SET    spaced     out   \r\n",
        b"GET spaced\r\n",
        b"SET quoted \"hello world\"\r\n",
        b"GET quoted\r\n",
        b"SET escapes \"tab\\there\\nnewline \\x41\\x00\\xff \\\"q\\\"\"\r\n",
        b"GET escapes\r\n",
        b"SET single 'it\\'s single'\r\n",
        b"GET single\r\n",
        b"SET empty \"\"\r\n",
        b"STRLEN empty\r\n",
        b"\r\n",
        b"PING\n",
        b"ECHO 'a\\nb'\r\n",
        b"GET\r\n",
        b"NOSUCH a b\r\n",
        b"MGET plain quoted missing\r\n",
    ];
    let mut servers = vec![("ember", ember.port)];
    if let Some(oracle) = &oracle {
        servers.push(("redis-server", oracle.port));
    }
    let mut transcripts = Vec::new();
    for (name, port) in &servers {
        let mut raw = Raw::connect(*port);
        raw.send(b"FLUSHALL\r\n");
        assert_eq!(raw.reply(), b"+OK\r\n");
        let mut transcript = Vec::new();
        for line in script {
            raw.send(line);
            if *line == b"\r\n" {
                continue; // A blank line is skipped without a reply.
            }
            transcript.push(raw.reply());
        }
        transcripts.push((*name, transcript));
    }
    let expected_ember = [
        "+OK\r\n",
        "$5\r\nvalue\r\n",
        "+OK\r\n",
        "$3\r\nout\r\n",
        "+OK\r\n",
        "$11\r\nhello world\r\n",
        "+OK\r\n",
    ];
    for (index, expected) in expected_ember.iter().enumerate() {
        assert_eq!(
            String::from_utf8_lossy(&transcripts[0].1[index]),
            *expected,
            "ember line {index}"
        );
    }
    assert_eq!(
        transcripts[0].1[7].escape_ascii().to_string(),
        b"$24\r\ntab\there\nnewline A\x00\xff \"q\"\r\n"
            .escape_ascii()
            .to_string(),
        "escapes"
    );
    if transcripts.len() == 2 {
        assert_eq!(transcripts[0].1, transcripts[1].1, "ember vs redis-server");
    }
    if redis_cli_installed() {
        // --pipe: raw bytes from stdin, answered and counted by redis-cli.
        let output = redis_cli(
            ember.port,
            &["--pipe"],
            b"SET p1 a\r\nSET p2 \"b c\"\r\nGET p2\r\n",
        );
        assert!(output.contains("errors: 0, replies: 3"), "{output}");
        let mut raw = Raw::connect(ember.port);
        assert_eq!(raw.command(&[b"GET", b"p2"]), b"$3\r\nb c\r\n");
    }
}
