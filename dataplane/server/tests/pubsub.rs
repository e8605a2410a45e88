//! Pub/Sub and keyspace notifications against the real binary: SUBSCRIBE / PSUBSCRIBE /
//! SSUBSCRIBE and PUBLISH across two shards, Redis's exact bytes (compared with a real
//! redis-server where one is installed), RESP3 pushes, the subscribed context's rules, PUBSUB's
//! figures, a slow subscriber cut at its output limit, and keyspace event sequences compared
//! with redis-server's for the same commands.

mod common;

use std::io::Read;
use std::thread;
use std::time::{Duration, Instant};

use common::{multibulk, Ember, Raw, RedisOracle};

/// Connections opened to reach both shards: each lands on the shard that accepts it, so a
/// handful makes it all but certain that subscribers and publishers sit on different shards.
const SUBSCRIBER_COUNT: usize = 6;

fn command(raw: &mut Raw, words: &[&str]) -> String {
    let args: Vec<&[u8]> = words.iter().map(|word| word.as_bytes()).collect();
    String::from_utf8_lossy(&raw.command(&args)).into_owned()
}

/// The bulk strings of a flat array or push reply, in order.
fn parts(reply: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(reply);
    let lines: Vec<&str> = text.split("\r\n").collect();
    let mut parts = Vec::new();
    let mut index = 1;
    while index < lines.len() {
        if lines[index].starts_with('$') {
            parts.push(lines[index + 1].to_string());
            index += 2;
        } else {
            if !lines[index].is_empty() {
                parts.push(lines[index].to_string());
            }
            index += 1;
        }
    }
    parts
}

#[test]
fn subscribers_on_every_shard_receive_in_publish_order() {
    let ember = Ember::start(2);
    let mut subscribers: Vec<Raw> = (0..SUBSCRIBER_COUNT).map(|_| ember.raw()).collect();
    for subscriber in &mut subscribers {
        assert_eq!(
            command(subscriber, &["SUBSCRIBE", "news"]),
            "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"
        );
    }
    let mut publisher = ember.raw();
    let message_count = 50;
    for sequence in 0..message_count {
        let message = format!("m{sequence}");
        assert_eq!(
            command(&mut publisher, &["PUBLISH", "news", &message]),
            format!(":{SUBSCRIBER_COUNT}\r\n"),
            "every subscriber counted, on whichever shard it is"
        );
    }
    assert_eq!(
        command(&mut publisher, &["PUBLISH", "nobody", "x"]),
        ":0\r\n"
    );
    for subscriber in &mut subscribers {
        for sequence in 0..message_count {
            let expected = format!("m{sequence}");
            assert_eq!(
                String::from_utf8_lossy(&subscriber.reply()),
                format!(
                    "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n${}\r\n{expected}\r\n",
                    expected.len()
                )
            );
        }
    }
}

/// A publisher's pipeline: PUBLISH replies wait for every shard's count together, so they are
/// checked here in one batch mixed with remote keyspace commands; each subscriber still gets
/// its channel's messages in publish order, whichever shard it is on.
#[test]
fn pipelined_publications_count_every_shard_and_keep_order() {
    let ember = Ember::start(2);
    let mut subscribers: Vec<Raw> = (0..SUBSCRIBER_COUNT).map(|_| ember.raw()).collect();
    for (index, subscriber) in subscribers.iter_mut().enumerate() {
        let channel = format!("ch{}", index % 2);
        assert!(command(subscriber, &["SUBSCRIBE", &channel]).starts_with("*3\r\n"));
    }
    let per_channel = SUBSCRIBER_COUNT / 2;
    let message_count = 200;
    let mut batch = Vec::new();
    let mut expected_replies = Vec::new();
    for sequence in 0..message_count {
        let channel = format!("ch{}", sequence % 2);
        let message = format!("m{sequence}");
        batch.extend(multibulk(&[
            b"PUBLISH",
            channel.as_bytes(),
            message.as_bytes(),
        ]));
        expected_replies.push(format!(":{per_channel}\r\n"));
        if sequence % 50 == 25 {
            // Keys on both shards (the tag picks the slot): remote commands mixed in.
            for key in ["{a}k", "{b}k"] {
                batch.extend(multibulk(&[b"SET", key.as_bytes(), message.as_bytes()]));
                expected_replies.push("+OK\r\n".to_string());
                batch.extend(multibulk(&[b"GET", key.as_bytes()]));
                expected_replies.push(format!("${}\r\n{message}\r\n", message.len()));
            }
            batch.extend(multibulk(&[b"PUBLISH", b"nobody", b"x"]));
            expected_replies.push(":0\r\n".to_string());
        }
    }
    let mut publisher = ember.raw();
    publisher.send(&batch);
    for (index, expected) in expected_replies.iter().enumerate() {
        assert_eq!(&publisher.reply_text(), expected, "reply {index}");
    }
    for (index, subscriber) in subscribers.iter_mut().enumerate() {
        for sequence in (index % 2..message_count).step_by(2) {
            let message = format!("m{sequence}");
            assert_eq!(
                subscriber.reply_text(),
                format!(
                    "*3\r\n$7\r\nmessage\r\n$3\r\nch{}\r\n${}\r\n{message}\r\n",
                    index % 2,
                    message.len()
                ),
                "subscriber {index}"
            );
        }
    }
    // A RESP3 publisher listening to its own channel gets each message before its reply, as
    // from Redis, in a pipeline too.
    let mut own = ember.raw();
    command(&mut own, &["HELLO", "3"]);
    command(&mut own, &["SUBSCRIBE", "own"]);
    let mut batch = Vec::new();
    for sequence in 0..3 {
        batch.extend(multibulk(&[
            b"PUBLISH",
            b"own",
            format!("o{sequence}").as_bytes(),
        ]));
    }
    own.send(&batch);
    for sequence in 0..3 {
        assert_eq!(
            own.reply_text(),
            format!(">3\r\n$7\r\nmessage\r\n$3\r\nown\r\n$2\r\no{sequence}\r\n")
        );
        assert_eq!(own.reply_text(), ":1\r\n");
    }
}

/// Messages written straight to idle subscribers' sockets count in INFO's
/// total_net_output_bytes like any other output.
#[test]
fn messages_count_in_net_output_bytes() {
    let ember = Ember::start(2);
    let mut subscribers: Vec<Raw> = (0..SUBSCRIBER_COUNT).map(|_| ember.raw()).collect();
    for subscriber in &mut subscribers {
        command(subscriber, &["SUBSCRIBE", "bytes"]);
    }
    let mut admin = ember.connect(false);
    let before = common::info_field(&mut admin, "stats", "total_net_output_bytes");
    let message = "y".repeat(1000);
    let mut publisher = ember.raw();
    let message_count = 20;
    for _ in 0..message_count {
        assert_eq!(
            command(&mut publisher, &["PUBLISH", "bytes", &message]),
            format!(":{SUBSCRIBER_COUNT}\r\n")
        );
    }
    let frame = multibulk(&[b"message", b"bytes", message.as_bytes()]);
    for subscriber in &mut subscribers {
        for _ in 0..message_count {
            assert_eq!(subscriber.reply(), frame);
        }
    }
    let after = common::info_field(&mut admin, "stats", "total_net_output_bytes");
    let delivered = (frame.len() * SUBSCRIBER_COUNT * message_count) as u64;
    assert!(
        after - before >= delivered,
        "{} bytes counted for {delivered} delivered",
        after - before
    );
}

#[test]
fn redis_crate_pubsub_with_patterns() {
    let ember = Ember::start(2);
    let mut listener = ember.connect(false);
    let mut pubsub = listener.as_pubsub();
    pubsub.subscribe("orders").unwrap();
    pubsub.psubscribe("ord*").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut publisher = ember.connect(false);
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("orders")
        .arg("o1")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(receivers, 2, "one channel and one pattern subscription");
    let first = pubsub.get_message().unwrap();
    assert_eq!(
        (
            first.get_channel_name(),
            first.get_payload::<String>().unwrap()
        ),
        ("orders", "o1".to_string())
    );
    let second = pubsub.get_message().unwrap();
    assert_eq!(second.get_pattern::<String>().unwrap(), "ord*");
    assert_eq!(second.get_payload::<String>().unwrap(), "o1");
}

/// One connection's exchanges whose bytes must equal redis-server's.
const EXACT_CASES: &[(&str, &[&[&str]])] = &[
    (
        "subscribe, refused commands, ping, unsubscribe",
        &[
            &["SUBSCRIBE", "a", "b"],
            &["GET", "x"],
            &["CONFIG", "GET", "maxmemory"],
            &["PING"],
            &["PING", "hi"],
            &["UNSUBSCRIBE", "b"],
            &["UNSUBSCRIBE", "zz"],
            &["UNSUBSCRIBE", "a"],
            &["UNSUBSCRIBE"],
            &["PUNSUBSCRIBE"],
            &["SUNSUBSCRIBE"],
            &["GET", "x"],
        ],
    ),
    (
        "counts mix channels and patterns, shard channels apart",
        &[
            &["SUBSCRIBE", "a"],
            &["PSUBSCRIBE", "p*"],
            &["SSUBSCRIBE", "s"],
            &["SUBSCRIBE", "a"],
            &["PUNSUBSCRIBE", "a"],
            &["SUNSUBSCRIBE", "x"],
            &["UNSUBSCRIBE", "a"],
            &["PUNSUBSCRIBE"],
            &["PUBLISH", "a", "b"],
            &["SUNSUBSCRIBE"],
            &["GET", "x"],
        ],
    ),
    (
        "publishing to oneself, patterns and shard channels",
        &[
            &["PSUBSCRIBE", "n*"],
            &["SUBSCRIBE", "news"],
            &["SSUBSCRIBE", "sharded"],
            &["RESET"],
            &["PUBLISH", "news", "x"],
            &["SPUBLISH", "sharded", "y"],
            &["PUBSUB", "NUMSUB", "news", "other"],
            &["PUBSUB", "NUMPAT"],
            &["PUBSUB", "CHANNELS"],
        ],
    ),
    (
        // In RESP3 the message pushed to the publisher itself comes before PUBLISH's reply.
        "publishing on one's own channel",
        &[
            &["SUBSCRIBE", "self"],
            &["PUBLISH", "self", "hi"],
            &["PING"],
            &["UNSUBSCRIBE"],
            &["PING"],
        ],
    ),
    (
        "PUBSUB errors and help",
        &[
            &["PUBSUB", "HELP"],
            &["PUBSUB", "nope"],
            &["PUBSUB", "NUMPAT", "x"],
            &["PUBSUB", "CHANNELS", "a", "b"],
            &["PUBSUB", "SHARDCHANNELS", "a", "b"],
            &["PUBSUB", "SHARDNUMSUB"],
            &["PUBSUB"],
            &["PUBLISH", "a"],
            &["SSUBSCRIBE"],
        ],
    ),
    (
        "subscriptions inside MULTI",
        &[&["MULTI"], &["SUBSCRIBE", "b"], &["EXEC"], &["UNSUBSCRIBE"]],
    ),
    (
        "configuration forms",
        &[
            &["CONFIG", "SET", "notify-keyspace-events", "Kq"],
            &["CONFIG", "SET", "notify-keyspace-events", "KEA"],
            &["CONFIG", "GET", "notify-keyspace-events"],
            &["CONFIG", "SET", "notify-keyspace-events", "gK$lshzxetdnm"],
            &["CONFIG", "GET", "notify-keyspace-events"],
            &["CONFIG", "SET", "notify-keyspace-events", ""],
            &["CONFIG", "GET", "client-output-buffer-limit"],
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 1mb 0 0",
            ],
            &["CONFIG", "GET", "client-output-buffer-limit"],
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 1mb 0",
            ],
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "master 1 1 1",
            ],
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 1k 2kb -1",
            ],
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "PUBSUB 1k 2kb 3 replica 1 2 3",
            ],
            &["CONFIG", "GET", "client-output-buffer-limit"],
        ],
    ),
];

#[test]
fn replies_match_redis_byte_for_byte() {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    for (name, steps) in EXACT_CASES {
        for resp3 in [false, true] {
            let mut ours = ember.raw();
            let mut theirs = Raw::connect(oracle.port);
            if resp3 {
                // HELLO's reply names the server; only what follows is compared.
                command(&mut ours, &["HELLO", "3"]);
                command(&mut theirs, &["HELLO", "3"]);
            }
            for step in *steps {
                let (got, expected) = (command(&mut ours, step), command(&mut theirs, step));
                assert_eq!(got, expected, "{name} (RESP3: {resp3}): {step:?}");
            }
        }
    }
}

#[test]
fn resp3_subscriber_gets_pushes_and_runs_any_command() {
    let ember = Ember::start(2);
    let mut subscriber = ember.raw();
    command(&mut subscriber, &["HELLO", "3"]);
    assert_eq!(
        command(&mut subscriber, &["SUBSCRIBE", "a"]),
        ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
    );
    assert_eq!(command(&mut subscriber, &["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(command(&mut subscriber, &["PING"]), "+PONG\r\n");
    let mut publisher = ember.raw();
    for _ in 0..3 {
        assert_eq!(command(&mut publisher, &["PUBLISH", "a", "hi"]), ":1\r\n");
    }
    for _ in 0..3 {
        assert_eq!(
            String::from_utf8_lossy(&subscriber.reply()),
            ">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n"
        );
    }
    assert_eq!(command(&mut subscriber, &["GET", "k"]), "$1\r\nv\r\n");
    command(&mut subscriber, &["PSUBSCRIBE", "p*"]);
    command(&mut subscriber, &["PSUBSCRIBE", "q*"]);
    command(&mut subscriber, &["PSUBSCRIBE", "q*"]);
    command(&mut subscriber, &["SSUBSCRIBE", "s"]);
    let info = command(&mut subscriber, &["CLIENT", "INFO"]);
    assert!(
        info.contains(" flags=P ") && info.contains(" sub=1 psub=2 ssub=1 "),
        "{info}"
    );
    command(&mut subscriber, &["RESET"]);
    let info = command(&mut subscriber, &["CLIENT", "INFO"]);
    assert!(
        info.contains(" flags=N ") && info.contains(" sub=0 psub=0 ssub=0 "),
        "{info}"
    );
}

#[test]
fn sharded_channels_and_figures_span_shards() {
    let ember = Ember::start(2);
    let mut subscribers: Vec<Raw> = (0..SUBSCRIBER_COUNT).map(|_| ember.raw()).collect();
    for subscriber in &mut subscribers {
        command(subscriber, &["SSUBSCRIBE", "orders"]);
        command(subscriber, &["SUBSCRIBE", "news"]);
        command(subscriber, &["PSUBSCRIBE", "n*"]);
    }
    let mut client = ember.raw();
    let count = SUBSCRIBER_COUNT.to_string();
    assert_eq!(
        command(&mut client, &["SPUBLISH", "orders", "o1"]),
        format!(":{count}\r\n")
    );
    assert_eq!(
        command(&mut client, &["PUBLISH", "news", "n1"]),
        format!(":{}\r\n", SUBSCRIBER_COUNT * 2)
    );
    for subscriber in &mut subscribers {
        assert_eq!(parts(&subscriber.reply()), ["smessage", "orders", "o1"]);
        assert_eq!(parts(&subscriber.reply()), ["message", "news", "n1"]);
        assert_eq!(parts(&subscriber.reply()), ["pmessage", "n*", "news", "n1"]);
    }
    assert_eq!(
        parts(command(&mut client, &["PUBSUB", "NUMSUB", "news", "none"]).as_bytes()),
        ["news", &format!(":{count}"), "none", ":0"]
    );
    assert_eq!(
        parts(command(&mut client, &["PUBSUB", "SHARDNUMSUB", "orders"]).as_bytes()),
        ["orders", &format!(":{count}")]
    );
    assert_eq!(
        command(&mut client, &["PUBSUB", "NUMPAT"]),
        ":1\r\n",
        "a pattern listened to on both shards counts once"
    );
    assert_eq!(
        parts(command(&mut client, &["PUBSUB", "CHANNELS"]).as_bytes()),
        ["news"]
    );
    assert_eq!(
        parts(command(&mut client, &["PUBSUB", "SHARDCHANNELS", "o*"]).as_bytes()),
        ["orders"]
    );
    let info = command(&mut client, &["INFO", "stats"]);
    for line in [
        "pubsub_channels:1",
        "pubsub_patterns:1",
        "pubsubshard_channels:1",
    ] {
        assert!(info.contains(line), "{line} in {info}");
    }
    // Disconnection and RESET both forget subscriptions.
    command(&mut subscribers[0], &["RESET"]);
    subscribers.truncate(SUBSCRIBER_COUNT / 2);
    let expected = format!(":{}\r\n", SUBSCRIBER_COUNT / 2 - 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = command(&mut client, &["SPUBLISH", "orders", "o2"]);
        if got == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "subscriptions not forgotten: {got}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn slow_subscriber_is_cut_without_slowing_another() {
    let ember = Ember::start_with(&[
        "--threads",
        "2",
        "--client-output-buffer-limit",
        "pubsub 256kb 0 0",
    ]);
    let mut slow = ember.raw();
    command(&mut slow, &["SUBSCRIBE", "feed"]);
    let mut fast = ember.raw();
    command(&mut fast, &["SUBSCRIBE", "feed"]);
    let message = "x".repeat(64 * 1024);
    let message_count = 256; // 16 MB: far past what the kernel buffers for the slow one.
    let expected_len = multibulk(&[b"message", b"feed", message.as_bytes()]).len();
    let reader = thread::spawn(move || {
        let mut received = 0usize;
        let mut buffer = vec![0u8; 1 << 16];
        let mut total = 0usize;
        while received < message_count {
            let read = fast
                .stream
                .read(&mut buffer)
                .expect("fast subscriber reads");
            assert!(read > 0, "the fast subscriber must stay connected");
            total += read;
            received = total / expected_len;
        }
        received
    });
    let mut publisher = ember.raw();
    let started = Instant::now();
    let mut last_count = String::new();
    for _ in 0..message_count {
        last_count = command(&mut publisher, &["PUBLISH", "feed", &message]);
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "publishing never waits for a subscriber"
    );
    assert_eq!(reader.join().unwrap(), message_count);
    assert_eq!(
        last_count, ":1\r\n",
        "the slow subscriber is gone by the end"
    );
    assert!(slow.closed_by_server(), "the slow subscriber is cut");
    assert!(
        ember.log().contains("output buffer limits"),
        "the cut is logged"
    );
}

/// Command sequences whose keyspace events must equal redis-server's, with the classes set.
const EVENT_CASES: &[(&str, &[&[&str]])] = &[
    (
        "KEA",
        &[
            &["GEOADD", "places", "13.361389", "38.115556", "Palermo"],
            &["GEOADD", "places", "15.087269", "37.502669", "Catania"],
            &[
                "GEOSEARCHSTORE",
                "near",
                "places",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "200",
                "km",
                "ASC",
            ],
            &[
                "GEORADIUS",
                "places",
                "15",
                "37",
                "200",
                "km",
                "STORE",
                "radius",
            ],
            &[
                "GEOSEARCHSTORE",
                "near",
                "places",
                "FROMLONLAT",
                "0",
                "0",
                "BYRADIUS",
                "1",
                "km",
            ],
            &[
                "GEOSEARCHSTORE",
                "near2",
                "nothing",
                "FROMLONLAT",
                "0",
                "0",
                "BYRADIUS",
                "1",
                "km",
            ],
            &["HSET", "h", "a", "1", "b", "2"],
            &["HDEL", "h", "a", "b"],
            &["RPUSH", "l", "a", "b"],
            &["LMOVE", "l", "l", "LEFT", "RIGHT"],
            &["BLPOP", "l", "0"],
            &["BRPOP", "l", "0"],
            &["ZADD", "z", "1", "a", "2", "b"],
            &["BZPOPMIN", "z", "0"],
            &["ZPOPMAX", "z"],
            &["PFADD", "hll", "a"],
            &["PFMERGE", "hll2", "hll"],
        ],
    ),
    (
        "KEA",
        &[
            &["SET", "s1", "v"],
            &["SET", "s1", "v", "EX", "100"],
            &["SET", "s1", "w", "NX"],
            &["SETNX", "s2", "v"],
            &["SETEX", "s3", "100", "v"],
            &["GETSET", "s3", "w"],
            &["APPEND", "s4", "ab"],
            &["SETRANGE", "s4", "1", "zz"],
            &["INCR", "n1"],
            &["INCRBY", "n1", "5"],
            &["DECR", "n1"],
            &["INCRBYFLOAT", "n2", "1.5"],
            // One hash tag: an MSET over two shards raises events in shard order.
            &["MSET", "{m}1", "a", "{m}2", "b"],
            &["GETEX", "{m}1", "EX", "100"],
            &["GETEX", "{m}1", "PERSIST"],
            &["GETDEL", "{m}2"],
            &["EXPIRE", "s2", "100"],
            &["PERSIST", "s2"],
            &["EXPIRE", "s2", "0"],
            &["RENAME", "s1", "r1"],
            &["COPY", "r1", "c1"],
            &["MOVE", "c1", "3"],
            &["DEL", "r1", "nothing", "s3"],
            &["SADD", "set", "a", "b", "c"],
            &["SADD", "set", "a"],
            &["SREM", "set", "a", "zz"],
            &["SPOP", "set"],
            &["SPOP", "set", "5"],
            &["ZADD", "z", "1", "a", "2", "b"],
            &["ZADD", "z", "1", "a"],
            &["ZINCRBY", "z", "3", "a"],
            &["ZADD", "z", "INCR", "1", "b"],
            &["ZREM", "z", "a"],
            &["ZREM", "z", "b"],
        ],
    ),
    (
        // One hash tag: a DEL over two shards raises each shard's events in shard order, not
        // in argument order as Redis does.
        "Kg",
        &[
            &["SET", "{t}a", "1"],
            &["EXPIRE", "{t}a", "100"],
            &["SADD", "{t}b", "x"],
            &["DEL", "{t}a", "{t}b"],
        ],
    ),
    (
        "E$",
        &[
            &["SET", "a", "1"],
            &["INCR", "a"],
            &["DEL", "a"],
            &["SADD", "b", "x"],
        ],
    ),
    (
        "Ez",
        &[
            &["ZADD", "z", "1", "a"],
            &["SADD", "s", "x"],
            &["ZREM", "z", "a"],
        ],
    ),
    (
        "Es",
        &[
            &["SADD", "s", "x"],
            &["SREM", "s", "x"],
            &["ZADD", "z", "1", "a"],
        ],
    ),
    (
        "Ex",
        &[
            &["SET", "gone", "v", "PX", "1"],
            &["SLEEP"],
            &["GET", "gone"],
        ],
    ),
    (
        "En",
        &[
            &["SET", "foo", "bar"],
            &["SET", "foo", "baz"],
            &["SET", "bar", "bar"],
            &["RPUSH", "list", "a"],
            &["RPUSH", "list", "b"],
            &["HSET", "hash", "f", "v"],
            &["SADD", "set", "m"],
            &["ZADD", "zset", "1", "m"],
            &["XADD", "stream", "1-1", "f", "v"],
            &["DEL", "foo"],
            &["SET", "foo", "again"],
            &["SET", "brief", "v", "PX", "1"],
            &["SLEEP"],
            &["SET", "brief", "w"],
        ],
    ),
    (
        "KEg$ln",
        &[
            &["SET", "k1", "v"],
            &["RPUSH", "k2", "a", "b"],
            &["APPEND", "k3", "x"],
            &["INCR", "k4"],
            &["DEL", "k1"],
        ],
    ),
    (
        "Em",
        &[
            &["SET", "a", "1"],
            &["GET", "a"],
            &["GET", "missing"],
            &["MGET", "a", "b", "c"],
            &["SMEMBERS", "noset"],
            &["ZSCORE", "nozset", "m"],
        ],
    ),
];

/// The keyspace events a server publishes for `steps`, in order, seen by a pattern subscriber.
fn events(port: u16, classes: &str, steps: &[&[&str]]) -> Vec<String> {
    let mut client = Raw::connect(port);
    command(&mut client, &["FLUSHALL"]);
    command(
        &mut client,
        &["CONFIG", "SET", "notify-keyspace-events", classes],
    );
    let mut subscriber = Raw::connect(port);
    command(&mut subscriber, &["PSUBSCRIBE", "__key*__:*"]);
    command(&mut subscriber, &["SUBSCRIBE", "end"]);
    for step in steps {
        if step[0] == "SLEEP" {
            thread::sleep(Duration::from_millis(50));
            continue;
        }
        command(&mut client, step);
    }
    command(&mut client, &["PUBLISH", "end", "end"]);
    command(
        &mut client,
        &["CONFIG", "SET", "notify-keyspace-events", ""],
    );
    let mut seen = Vec::new();
    loop {
        let message = parts(&subscriber.reply());
        if message[0] == "message" {
            break;
        }
        seen.push(format!("{} {}", message[2], message[3]));
    }
    seen
}

#[test]
fn keyspace_events_match_redis() {
    let Some(oracle) = RedisOracle::start() else {
        return;
    };
    let ember = Ember::start(2);
    for (classes, steps) in EVENT_CASES {
        let expected = events(oracle.port, classes, steps);
        assert!(!expected.is_empty(), "{classes}: the case raises events");
        assert_eq!(
            events(ember.port, classes, steps),
            expected,
            "classes {classes}"
        );
    }
}

#[test]
fn active_expiry_publishes_expired() {
    let ember = Ember::start(2);
    let mut client = ember.raw();
    command(
        &mut client,
        &["CONFIG", "SET", "notify-keyspace-events", "Ex"],
    );
    let mut subscriber = ember.raw();
    command(&mut subscriber, &["SUBSCRIBE", "__keyevent@0__:expired"]);
    for key in ["k1", "k2", "k3", "k4"] {
        command(&mut client, &["SET", key, "v", "PX", "20"]);
    }
    let mut expired: Vec<String> = (0..4)
        .map(|_| parts(&subscriber.reply())[2].clone())
        .collect();
    expired.sort();
    assert_eq!(
        expired,
        ["k1", "k2", "k3", "k4"],
        "no key read them: the active expiry did"
    );
}

#[test]
fn hash_field_expiry_publishes_its_events() {
    let ember = Ember::start(2);
    let mut client = ember.raw();
    command(
        &mut client,
        &["CONFIG", "SET", "notify-keyspace-events", "KEA"],
    );
    let mut subscriber = ember.raw();
    command(&mut subscriber, &["PSUBSCRIBE", "__keyevent@0__:*"]);
    let steps: &[&[&str]] = &[
        &["HSET", "h", "a", "1", "b", "2", "c", "3"],
        &["HEXPIRE", "h", "100", "FIELDS", "1", "a"],
        &["HPERSIST", "h", "FIELDS", "1", "a"],
        &["HEXPIRE", "h", "0", "FIELDS", "1", "a"],
        &["HPEXPIRE", "h", "20", "FIELDS", "2", "b", "c"],
    ];
    for step in steps {
        command(&mut client, step);
    }
    let mut seen = Vec::new();
    while seen.len() < 7 {
        let message = parts(&subscriber.reply());
        seen.push(format!("{} {}", message[2], message[3]));
    }
    assert_eq!(
        seen,
        [
            "__keyevent@0__:hset h",
            "__keyevent@0__:hexpire h",
            "__keyevent@0__:hpersist h",
            "__keyevent@0__:hdel h",
            "__keyevent@0__:hexpire h",
            // Nobody reads `h` again: the active field expiry removes both fields and the key.
            "__keyevent@0__:hexpired h",
            "__keyevent@0__:del h",
        ]
    );
}

#[test]
fn eviction_publishes_evicted() {
    let ember = Ember::start_with(&["--threads", "2", "--maxmemory-policy", "allkeys-random"]);
    let mut client = ember.raw();
    command(
        &mut client,
        &["CONFIG", "SET", "notify-keyspace-events", "Ee"],
    );
    let mut subscriber = ember.raw();
    command(&mut subscriber, &["SUBSCRIBE", "__keyevent@0__:evicted"]);
    let info = command(&mut client, &["INFO", "memory"]);
    let used: u64 = info
        .lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
        .expect("INFO memory has used_memory");
    let maxmemory = (used + (4 << 20)).to_string();
    command(&mut client, &["CONFIG", "SET", "maxmemory", &maxmemory]);
    // 16 MiB of 4 KiB values: four times what the data may use.
    let value = "x".repeat(4096);
    let mut writer = ember.connect(false);
    for start in (0..4096).step_by(64) {
        let mut pipe = redis::pipe();
        for index in start..start + 64 {
            pipe.cmd("SET")
                .arg(format!("key:{index}"))
                .arg(&value)
                .ignore();
        }
        let _: () = pipe.query(&mut writer).unwrap();
    }
    let message = parts(&subscriber.reply());
    assert_eq!(message[..2], ["message", "__keyevent@0__:evicted"]);
    assert!(message[2].starts_with("key:"), "{message:?}");
}
