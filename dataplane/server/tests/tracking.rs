//! Client-side caching (CLIENT TRACKING) against the real binary with two shards: readers and
//! keys on different shards, the default mode, BCAST prefixes, OPTIN/OPTOUT, NOLOOP, RESP2
//! redirection to a `__redis__:invalidate` subscriber, the null invalidation of FLUSHALL and
//! FLUSHDB, and Redis's errors. Each scenario writes a transcript of the raw bytes the clients
//! receive; where redis-server is installed, the same scenario runs there and the transcripts
//! must be equal.
//!
//! Readers are raw sockets (RESP3 pushes arrive between replies); writers use the redis crate.
//! A reader's queue is checked empty by sending PING: the next thing read must be its reply.

mod common;

use common::{run, Raw, RedisOracle};

/// Connections opened per scenario: each lands on the shard that accepts it, so several make it
/// all but certain that readers, writers and keys sit on different shards.
const READER_COUNT: usize = 6;

/// Keys whose slots fall in both halves of the slot space (both shards of two).
const KEYS: [&str; 8] = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"];

fn command(raw: &mut Raw, words: &[&str]) -> String {
    let args: Vec<&[u8]> = words.iter().map(|word| word.as_bytes()).collect();
    String::from_utf8_lossy(&raw.command(&args)).into_owned()
}

fn send(raw: &mut Raw, words: &[&str]) {
    let args: Vec<&[u8]> = words.iter().map(|word| word.as_bytes()).collect();
    raw.send(&common::multibulk(&args));
}

fn write(con: &mut redis::Connection, words: &[&str]) {
    let args: Vec<&[u8]> = words.iter().map(|word| word.as_bytes()).collect();
    run(con, &args).unwrap_or_else(|error| panic!("{words:?}: {error}"));
}

/// The exact bytes of a RESP3 invalidation of `keys`.
fn invalidate_push(keys: &[&str]) -> String {
    let mut text = format!(">2\r\n$10\r\ninvalidate\r\n*{}\r\n", keys.len());
    for key in keys {
        text.push_str(&format!("${}\r\n{key}\r\n", key.len()));
    }
    text
}

/// A RESP3 connection with tracking on with `options`.
fn resp3_tracker(port: u16, options: &[&str]) -> Raw {
    let mut raw = Raw::connect(port);
    assert!(command(&mut raw, &["HELLO", "3"]).starts_with('%'));
    let mut words = vec!["CLIENT", "TRACKING", "on"];
    words.extend_from_slice(options);
    assert_eq!(command(&mut raw, &words), "+OK\r\n", "{words:?}");
    raw
}

/// Reads until the reply to a PING sent now, and returns what came before it.
fn drain(raw: &mut Raw) -> Vec<String> {
    send(raw, &["PING"]);
    let mut before = Vec::new();
    loop {
        let reply = raw.reply_text();
        if reply == "+PONG\r\n" {
            return before;
        }
        before.push(reply);
    }
}

/// Runs `scenario` on Ember (two shards) and, where installed, on redis-server; the transcripts
/// must be equal. Returns Ember's.
fn on_both(scenario: fn(u16) -> Vec<String>) -> Vec<String> {
    let ember = common::Ember::start(2);
    let ours = scenario(ember.port);
    if let Some(redis) = RedisOracle::start() {
        let theirs = scenario(redis.port);
        assert_eq!(
            ours, theirs,
            "Ember's transcript differs from redis-server's"
        );
    }
    ours
}

fn default_mode(port: u16) -> Vec<String> {
    let mut writer = common::connect(port, false);
    for key in KEYS {
        write(&mut writer, &["SET", key, "1"]);
    }
    let mut readers: Vec<Raw> = (0..READER_COUNT)
        .map(|_| resp3_tracker(port, &[]))
        .collect();
    for reader in &mut readers {
        for key in KEYS {
            assert_eq!(command(reader, &["GET", key]), "$1\r\n1\r\n");
        }
    }
    // Each change reaches every reader once, before the writer's reply.
    for key in KEYS {
        write(&mut writer, &["INCR", key]);
        write(&mut writer, &["INCR", key]);
    }
    let mut transcript = Vec::new();
    for reader in &mut readers {
        transcript.extend(drain(reader));
    }
    // Invalidated keys are forgotten: a further change sends nothing.
    write(&mut writer, &["SET", "k0", "again"]);
    for reader in &mut readers {
        transcript.extend(drain(reader));
    }
    transcript
}

#[test]
fn default_mode_invalidates_every_reader_once_across_shards() {
    let transcript = on_both(default_mode);
    let one_reader: Vec<String> = KEYS.iter().map(|key| invalidate_push(&[key])).collect();
    assert_eq!(
        transcript,
        one_reader
            .iter()
            .cycle()
            .take(one_reader.len() * READER_COUNT)
            .cloned()
            .collect::<Vec<_>>()
    );
}

fn bcast_prefixes(port: u16) -> Vec<String> {
    let mut writer = common::connect(port, false);
    let mut readers: Vec<Raw> = (0..READER_COUNT)
        .map(|_| resp3_tracker(port, &["BCAST", "PREFIX", "user:", "PREFIX", "cart:"]))
        .collect();
    for key in ["user:1", "item:1", "cart:7", "user:22", "users"] {
        write(&mut writer, &["SET", key, "v"]);
    }
    // A transaction's keys under one prefix come together.
    write(&mut writer, &["MULTI"]);
    write(&mut writer, &["SET", "user:{t}a", "v"]);
    write(&mut writer, &["SET", "user:{t}b", "v"]);
    write(&mut writer, &["EXEC"]);
    let mut transcript = Vec::new();
    for reader in &mut readers {
        transcript.extend(drain(reader));
    }
    transcript
}

#[test]
fn bcast_sends_keys_under_the_prefixes_only() {
    let transcript = on_both(bcast_prefixes);
    let one_reader = [
        invalidate_push(&["user:1"]),
        invalidate_push(&["cart:7"]),
        invalidate_push(&["user:22"]),
        invalidate_push(&["user:{t}a", "user:{t}b"]),
    ];
    assert_eq!(
        transcript,
        one_reader
            .iter()
            .cycle()
            .take(one_reader.len() * READER_COUNT)
            .cloned()
            .collect::<Vec<_>>()
    );
}

fn optin_optout(port: u16) -> Vec<String> {
    let mut writer = common::connect(port, false);
    let mut transcript = Vec::new();
    let mut optin = resp3_tracker(port, &["OPTIN"]);
    let mut optout = resp3_tracker(port, &["OPTOUT"]);
    for key in KEYS {
        command(&mut optin, &["GET", key]); // Not remembered: no CACHING YES.
        command(&mut optout, &["CLIENT", "CACHING", "no"]);
        command(&mut optout, &["GET", key]); // Not remembered.
    }
    command(&mut optin, &["CLIENT", "CACHING", "yes"]);
    command(&mut optin, &["MGET", "k1{x}", "k2{x}"]);
    command(&mut optin, &["GET", "k3"]); // CACHING YES lasted one command.
    command(&mut optout, &["GET", "k4"]);
    for key in KEYS.iter().chain(&["k1{x}", "k2{x}"]) {
        write(&mut writer, &["SET", key, "2"]);
    }
    transcript.extend(drain(&mut optin));
    transcript.extend(drain(&mut optout));
    transcript.push(command(&mut optin, &["CLIENT", "CACHING", "no"]));
    transcript.push(command(&mut optout, &["CLIENT", "CACHING", "yes"]));
    transcript.push(command(&mut optin, &["CLIENT", "TRACKINGINFO"]));
    transcript
}

#[test]
fn optin_and_optout_follow_client_caching() {
    let transcript = on_both(optin_optout);
    let expected = [
        invalidate_push(&["k1{x}"]),
        invalidate_push(&["k2{x}"]),
        invalidate_push(&["k4"]),
    ];
    assert_eq!(transcript[..3], expected[..]);
    assert_eq!(
        transcript[3],
        "-ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.\r\n"
    );
}

fn noloop(port: u16) -> Vec<String> {
    let mut other = common::connect(port, false);
    let mut readers: Vec<Raw> = (0..READER_COUNT)
        .map(|_| resp3_tracker(port, &["NOLOOP"]))
        .collect();
    let mut transcript = Vec::new();
    for (index, reader) in readers.iter_mut().enumerate() {
        let own = KEYS[index % KEYS.len()];
        let theirs = KEYS[(index + 1) % KEYS.len()];
        command(reader, &["MGET", own, theirs]);
        command(reader, &["SET", own, "mine"]); // Its own change: not sent back.
        write(&mut other, &["SET", theirs, "yours"]);
        transcript.extend(drain(reader));
    }
    transcript
}

#[test]
fn noloop_skips_the_clients_own_changes() {
    let transcript = on_both(noloop);
    let expected: Vec<String> = (0..READER_COUNT)
        .map(|index| invalidate_push(&[KEYS[(index + 1) % KEYS.len()]]))
        .collect();
    assert_eq!(transcript, expected);
}

fn redirect_and_flush(port: u16) -> Vec<String> {
    let mut writer = common::connect(port, false);
    let mut transcript = Vec::new();
    let mut subscriber = Raw::connect(port);
    let id = command(&mut subscriber, &["CLIENT", "ID"]);
    let id = id.trim_start_matches(':').trim().to_string();
    command(&mut subscriber, &["SUBSCRIBE", "__redis__:invalidate"]);
    // RESP2 trackers redirect to the subscriber; a RESP3 one gets its own pushes.
    let mut trackers: Vec<Raw> = (0..READER_COUNT)
        .map(|_| {
            let mut raw = Raw::connect(port);
            let reply = command(&mut raw, &["CLIENT", "TRACKING", "on", "REDIRECT", &id]);
            assert_eq!(reply, "+OK\r\n");
            raw
        })
        .collect();
    for (index, tracker) in trackers.iter_mut().enumerate() {
        command(tracker, &["GET", KEYS[index]]);
        transcript.push(command(tracker, &["CLIENT", "GETREDIR"]).replace(&id, "ID"));
    }
    for key in KEYS.iter().take(READER_COUNT) {
        write(&mut writer, &["DEL", key]);
        write(&mut writer, &["SET", key, "x"]);
        transcript.push(subscriber.reply_text());
    }
    let mut resp3 = resp3_tracker(port, &[]);
    command(&mut resp3, &["GET", "k0"]);
    write(&mut writer, &["FLUSHALL"]);
    transcript.push(resp3.reply_text());
    for _ in 0..READER_COUNT {
        transcript.push(subscriber.reply_text());
    }
    write(&mut writer, &["FLUSHDB"]);
    transcript.push(resp3.reply_text());
    transcript.extend(drain(&mut resp3));
    transcript
}

#[test]
fn resp2_redirect_and_flush_send_what_redis_sends() {
    let transcript = on_both(redirect_and_flush);
    let mut expected: Vec<String> = vec![":ID\r\n".to_string(); READER_COUNT];
    for key in KEYS.iter().take(READER_COUNT) {
        expected.push(format!(
            "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n${}\r\n{key}\r\n",
            key.len()
        ));
    }
    expected.push(">2\r\n$10\r\ninvalidate\r\n_\r\n".to_string());
    expected.extend(std::iter::repeat_n(
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n".into(),
        READER_COUNT,
    ));
    expected.push(">2\r\n$10\r\ninvalidate\r\n_\r\n".to_string());
    assert_eq!(transcript, expected);
}

fn errors(port: u16) -> Vec<String> {
    let mut raw = Raw::connect(port);
    let cases: &[&[&str]] = &[
        &["CLIENT", "TRACKING", "maybe"],
        &["CLIENT", "TRACKING", "on", "PREFIX", "a"],
        &["CLIENT", "TRACKING", "on", "BCAST", "OPTIN"],
        &["CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"],
        &["CLIENT", "TRACKING", "on", "REDIRECT", "999999"],
        &["CLIENT", "TRACKING", "on", "REDIRECT", "x"],
        &["CLIENT", "TRACKING", "on", "NOSUCH"],
        &[
            "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "ab", "PREFIX", "a",
        ],
        &["CLIENT", "CACHING", "yes"],
        &["CLIENT", "TRACKING", "on", "OPTIN"],
        &["CLIENT", "TRACKING", "on", "OPTOUT"],
        &["CLIENT", "TRACKING", "on", "BCAST"],
        &["CLIENT", "CACHING", "maybe"],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "TRACKING", "off"],
        &["CLIENT", "GETREDIR"],
        &["CLIENT", "TRACKINGINFO"],
    ];
    cases.iter().map(|words| command(&mut raw, words)).collect()
}

#[test]
fn errors_are_redis_errors() {
    let transcript = on_both(errors);
    assert_eq!(
        transcript[1],
        "-ERR PREFIX option requires BCAST mode to be enabled\r\n"
    );
    assert_eq!(
        transcript[4],
        "-ERR The client ID you want redirect to does not exist\r\n"
    );
}

/// Readers redirect their invalidations to a client that then QUITs; the next change of a key
/// they read tells each one its redirection broke (RESP3 `tracking-redir-broken`). The QUIT's
/// reply is read before the change is made, so the client is gone by then, as in Redis,
/// whichever shards the target, the reader and the key are on. Client IDs differ between
/// servers: the transcript names the target `ID`.
fn redirect_to_a_client_that_quit(port: u16) -> Vec<String> {
    let mut writer = common::connect(port, false);
    let mut transcript = Vec::new();
    for key in KEYS.iter().take(READER_COUNT) {
        let mut target = Raw::connect(port);
        let id_reply = command(&mut target, &["CLIENT", "ID"]);
        let id = id_reply.trim_start_matches(':').trim_end().to_owned();
        let mut reader = resp3_tracker(port, &["REDIRECT", &id]);
        write(&mut writer, &["SET", key, "1"]);
        assert_eq!(command(&mut reader, &["GET", key]), "$1\r\n1\r\n");
        assert_eq!(command(&mut target, &["QUIT"]), "+OK\r\n");
        write(&mut writer, &["SET", key, "2"]);
        let named = format!(":{id}\r\n");
        transcript.extend(
            drain(&mut reader)
                .into_iter()
                .map(|push| push.replace(&named, ":ID\r\n")),
        );
    }
    transcript
}

#[test]
fn a_redirection_to_a_client_that_quit_is_broken_at_once() {
    let transcript = on_both(redirect_to_a_client_that_quit);
    let broken = ">2\r\n$21\r\ntracking-redir-broken\r\n:ID\r\n".to_owned();
    assert_eq!(transcript, vec![broken; READER_COUNT]);
}

/// Readers that track two keys of one slot open a transaction; another client lowers
/// `tracking-table-max-keys` to 1; each reader then queues a PING. Redis trims the table before
/// the next command any client sends, so every reader hears of the key it dropped before its
/// QUEUED (Redis's regression test for #11715). Which of the two keys goes is Redis's random
/// pick: the transcript names it `KEY`.
fn a_lower_bound_in_a_transaction(port: u16) -> Vec<String> {
    let mut writer = common::connect(port, false);
    let mut readers: Vec<Raw> = (0..READER_COUNT)
        .map(|_| resp3_tracker(port, &[]))
        .collect();
    for reader in &mut readers {
        assert_eq!(
            command(reader, &["MGET", "1{tag}", "2{tag}"]),
            "*2\r\n_\r\n_\r\n"
        );
        assert_eq!(command(reader, &["MULTI"]), "+OK\r\n");
    }
    write(
        &mut writer,
        &["CONFIG", "SET", "tracking-table-max-keys", "1"],
    );
    let mut transcript = Vec::new();
    for reader in &mut readers {
        send(reader, &["PING"]);
        send(reader, &["EXEC"]);
        for _ in 0..3 {
            transcript.push(
                reader
                    .reply_text()
                    .replace("$6\r\n1{tag}\r\n", "KEY")
                    .replace("$6\r\n2{tag}\r\n", "KEY"),
            );
        }
    }
    transcript
}

#[test]
fn a_lower_table_bound_invalidates_before_a_queued_command() {
    let transcript = on_both(a_lower_bound_in_a_transaction);
    let reader = [
        ">2\r\n$10\r\ninvalidate\r\n*1\r\nKEY".to_owned(),
        "+QUEUED\r\n".to_owned(),
        "*1\r\n+PONG\r\n".to_owned(),
    ];
    assert_eq!(
        transcript,
        reader
            .iter()
            .cycle()
            .take(reader.len() * READER_COUNT)
            .cloned()
            .collect::<Vec<_>>()
    );
}
