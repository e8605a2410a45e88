//! Socket I/O through the shard's io_uring (`--io-uring yes`): many connections at once, values
//! that span many provided buffers, long pipelines, clients that vanish mid-request, more data in
//! flight than the shard has provided buffers, and a client that sends without reading replies.
//! Every test runs in each configuration of [`CONFIGURATIONS`].

mod common;

use std::io::{ErrorKind, Read, Write};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{multibulk, Ember, Raw};
use rand::{Rng, RngCore, SeedableRng};

/// Named server configurations every test runs in.
const CONFIGURATIONS: &[(&str, &[&str])] = &[
    (
        "one shard, parking",
        &["--io-uring", "yes", "--threads", "1", "--busy-poll-us", "0"],
    ),
    (
        "two shards, busy polling",
        &[
            "--io-uring",
            "yes",
            "--threads",
            "2",
            "--busy-poll-us",
            "200",
        ],
    ),
];

/// Provided buffers a shard has (16 KiB each, 256 of them: io/mod.rs), so tests know how much
/// data in flight exceeds them.
const SHARD_BUFFERS_LEN: usize = 256 * 16 * 1024;

fn for_each_configuration(mut test: impl FnMut(&str, &Ember)) {
    for (name, args) in CONFIGURATIONS {
        let mut ember = Ember::start_with(args);
        // The start-up line is on stderr, read by another thread than the ready line.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ember.log().contains("socket I/O through io_uring") {
            assert!(
                Instant::now() < deadline,
                "{name}: io_uring not in use; log:\n{}",
                ember.log()
            );
            thread::sleep(Duration::from_millis(5));
        }
        test(name, &ember);
        assert!(
            ember.is_running(),
            "{name}: ember exited; log:\n{}",
            ember.log()
        );
    }
}

/// A seed from the clock, printed so that a failure can be replayed with EMBER_TEST_SEED.
fn seeded_rng(test: &str) -> rand::rngs::StdRng {
    let seed = std::env::var("EMBER_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("{test}: seed {seed} (EMBER_TEST_SEED={seed} replays it)");
    rand::rngs::StdRng::seed_from_u64(seed)
}

fn bulk(value: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", value.len()).into_bytes();
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    out
}

#[test]
fn many_connections_are_served_together() {
    for_each_configuration(|name, ember| {
        let mut connections: Vec<Raw> = (0..300).map(|_| ember.raw()).collect();
        for round in 0..3 {
            // Every connection's request is in flight before any reply is read.
            for (index, raw) in connections.iter_mut().enumerate() {
                let value = format!("{name}-{round}-{index}");
                raw.send(&multibulk(&[
                    b"SET",
                    format!("k{index}").as_bytes(),
                    value.as_bytes(),
                ]));
            }
            for raw in connections.iter_mut() {
                assert_eq!(raw.reply(), b"+OK\r\n", "{name}");
            }
            for (index, raw) in connections.iter_mut().enumerate() {
                let value = format!("{name}-{round}-{index}");
                assert_eq!(
                    raw.command(&[b"GET", format!("k{index}").as_bytes()]),
                    bulk(value.as_bytes()),
                    "{name}"
                );
            }
        }
    });
}

#[test]
fn large_values_span_many_provided_buffers() {
    let mut rng = seeded_rng("large_values_span_many_provided_buffers");
    for_each_configuration(|name, ember| {
        let mut raw = ember.raw();
        // 1 byte past a buffer, several buffers, and more than all of a shard's buffers.
        for len in [16 * 1024 + 1, 200_000, SHARD_BUFFERS_LEN + 12_345] {
            let mut value = vec![0u8; len];
            rng.fill_bytes(&mut value);
            let request = multibulk(&[b"SET", b"big", &value]);
            // Sent in uneven pieces, so requests are cut at arbitrary points of buffers.
            for piece in request.chunks(rng.gen_range(1000..70_000)) {
                raw.send(piece);
            }
            assert_eq!(raw.reply(), b"+OK\r\n", "{name}: SET of {len} bytes");
            assert_eq!(
                raw.command(&[b"GET", b"big"]),
                bulk(&value),
                "{name}: {len} bytes"
            );
        }
    });
}

#[test]
fn a_pipeline_of_1000_requests_is_answered_in_order() {
    for_each_configuration(|name, ember| {
        let mut raw = ember.raw();
        let mut pipeline = Vec::new();
        for i in 0..1000 {
            let key = format!("p{i}");
            pipeline.extend(multibulk(&[
                b"SET",
                key.as_bytes(),
                i.to_string().as_bytes(),
            ]));
            pipeline.extend(multibulk(&[b"GET", key.as_bytes()]));
        }
        raw.send(&pipeline);
        for i in 0..1000 {
            assert_eq!(raw.reply(), b"+OK\r\n", "{name}: SET {i}");
            assert_eq!(
                raw.reply(),
                bulk(i.to_string().as_bytes()),
                "{name}: GET {i}"
            );
        }
    });
}

/// Waits until `admin` is the server's only client (the others' closes were seen).
fn wait_for_only(admin: &mut Raw, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = String::from_utf8(admin.command(&[b"CLIENT", b"LIST"])).unwrap();
        if list.matches("id=").count() == 1 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: clients left behind: {list}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Connections that come and go as fast as clients can open them (a client that opens one per
/// request, as `redis-benchmark -k 0` does), some reset before the server could accept them:
/// each one is accepted and answered, and the server keeps accepting. The shard accepts them
/// itself when its ring watches the listener, and through the runtime with `--io-uring no`.
fn churn(name: &str, ember: &Ember) {
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let port = ember.port;
            let name = name.to_string();
            thread::spawn(move || {
                for round in 0..150 {
                    if round % 10 == 3 {
                        // Reset at once: the server may find nothing to accept, or a dead socket.
                        let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                        socket2::SockRef::from(&stream)
                            .set_linger(Some(Duration::ZERO))
                            .unwrap();
                        drop(stream);
                        continue;
                    }
                    let mut raw = Raw::connect(port);
                    let key = format!("churn-{thread}-{round}");
                    assert_eq!(
                        raw.command(&[b"SET", key.as_bytes(), b"v"]),
                        b"+OK\r\n",
                        "{name}"
                    );
                    drop(raw);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let mut admin = ember.raw();
    assert_eq!(admin.command(&[b"DBSIZE"]), b":540\r\n", "{name}");
    let info = String::from_utf8(admin.command(&[b"CLIENT", b"INFO"])).unwrap();
    assert!(
        info.contains(&format!(" laddr=127.0.0.1:{} ", ember.port)),
        "{name}: {info}"
    );
    wait_for_only(&mut admin, name);
}

#[test]
fn connections_that_come_and_go_are_each_accepted() {
    for_each_configuration(churn);
    let ember = Ember::start_with(&["--io-uring", "no", "--threads", "2"]);
    churn("runtime sockets", &ember);
}

#[test]
fn clients_that_close_mid_request_leave_the_shard_serving() {
    for_each_configuration(|name, ember| {
        let mut admin = ember.raw();
        assert_eq!(admin.command(&[b"SET", b"alive", b"yes"]), b"+OK\r\n");
        for cut in [1, 10, 30, 5000] {
            let mut raw = ember.raw();
            let request = multibulk(&[b"SET", b"half", &vec![b'x'; 10_000]]);
            raw.send(&request[..cut]);
            drop(raw);
        }
        // Closed with a pipeline still being answered.
        let mut raw = ember.raw();
        let mut pipeline = Vec::new();
        for _ in 0..2000 {
            pipeline.extend(multibulk(&[b"GET", b"alive"]));
        }
        raw.send(&pipeline);
        drop(raw);
        // Reset (not closed cleanly) mid-request: SO_LINGER 0 sends RST.
        let raw = ember.raw();
        socket2::SockRef::from(&raw.stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        (&raw.stream).write_all(b"*2\r\n$3\r\nGET\r\n").unwrap();
        drop(raw);
        // Every one of them leaves the client list; the admin connection is the last.
        wait_for_only(&mut admin, name);
        assert_eq!(
            admin.command(&[b"GET", b"alive"]),
            b"$3\r\nyes\r\n",
            "{name}"
        );
        assert_eq!(admin.command(&[b"EXISTS", b"half"]), b":0\r\n", "{name}");
    });
}

#[test]
fn more_data_in_flight_than_provided_buffers_loses_nothing() {
    let mut rng = seeded_rng("more_data_in_flight_than_provided_buffers_loses_nothing");
    let seed = rng.next_u64();
    for_each_configuration(|name, ember| {
        const CLIENTS: usize = 48;
        const REQUESTS: usize = 200;
        const VALUE_LEN: usize = 2000;
        // 48 clients x 200 SETs x 2 kB: about 19 MB at once, over four times a shard's buffers.
        const { assert!(CLIENTS * REQUESTS * VALUE_LEN > 4 * SHARD_BUFFERS_LEN) };
        let start = Arc::new(Barrier::new(CLIENTS));
        let port = ember.port;
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let start = start.clone();
                thread::spawn(move || {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ client as u64);
                    let mut raw = Raw::connect(port);
                    let mut values = Vec::with_capacity(REQUESTS);
                    let mut pipeline = Vec::new();
                    for request in 0..REQUESTS {
                        let mut value = vec![0u8; VALUE_LEN];
                        rng.fill_bytes(&mut value);
                        let key = format!("c{client}-{request}");
                        pipeline.extend(multibulk(&[b"SET", key.as_bytes(), &value]));
                        values.push(value);
                    }
                    start.wait();
                    raw.send(&pipeline);
                    for _ in 0..REQUESTS {
                        assert_eq!(raw.reply(), b"+OK\r\n");
                    }
                    let mut gets = Vec::new();
                    for request in 0..REQUESTS {
                        gets.extend(multibulk(&[
                            b"GET",
                            format!("c{client}-{request}").as_bytes(),
                        ]));
                    }
                    raw.send(&gets);
                    for value in &values {
                        assert_eq!(raw.reply(), bulk(value));
                    }
                })
            })
            .collect();
        for client in clients {
            client
                .join()
                .unwrap_or_else(|_| panic!("{name}: a client failed"));
        }
    });
}

#[test]
fn a_client_that_never_reads_meets_back_pressure() {
    /// Far more than the socket buffers and the receive-ahead bound together (a few MB): a
    /// server that kept receiving for a stalled connection would take all of it.
    const WRITE_LEN_MAX: usize = 64 * 1024 * 1024;
    for_each_configuration(|name, ember| {
        let mut admin = ember.raw();
        let mut raw = ember.raw();
        let value = vec![b'v'; 100_000];
        assert_eq!(raw.command(&[b"SET", b"wide", &value]), b"+OK\r\n");
        // GETs of 100 kB each, never read: the server's sends stall, then its receive pauses,
        // then TCP stops the client.
        let request = multibulk(&[b"GET", b"wide"]);
        let mut batch = Vec::new();
        while batch.len() < 64 * 1024 {
            batch.extend_from_slice(&request);
        }
        raw.stream.set_nonblocking(true).unwrap();
        let mut accepted = 0usize;
        let mut stalled_since = Instant::now();
        while accepted < WRITE_LEN_MAX && stalled_since.elapsed() < Duration::from_millis(500) {
            match raw.stream.write(&batch[accepted % batch.len()..]) {
                Ok(written) => {
                    accepted += written;
                    stalled_since = Instant::now();
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => thread::yield_now(),
                Err(error) => panic!("{name}: write failed: {error}"),
            }
        }
        assert!(
            accepted < WRITE_LEN_MAX,
            "{name}: the server took {accepted} bytes without replies being read"
        );
        // Replies flow again once the client reads: the first ones are whole and in order.
        raw.stream.set_nonblocking(false).unwrap();
        let reply = bulk(&value);
        let mut reply_read = vec![0u8; reply.len()];
        for i in 0..20 {
            raw.stream
                .read_exact(&mut reply_read)
                .unwrap_or_else(|error| panic!("{name}: reply {i}: {error}"));
            assert!(reply_read == reply, "{name}: reply {i} differs");
        }
        // The client goes away with replies still due: the connection ends, the shard serves on.
        drop(raw);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let list = String::from_utf8(admin.command(&[b"CLIENT", b"LIST"])).unwrap();
            if list.matches("id=").count() == 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: stalled client left behind: {list}"
            );
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(admin.command(&[b"PING"]), b"+PONG\r\n", "{name}");
    });
}

#[test]
fn the_switch_is_reported_and_no_keeps_the_runtime_sockets() {
    let ember = Ember::start_with(&["--io-uring", "no", "--threads", "1"]);
    assert!(!ember.log().contains("through io_uring"), "{}", ember.log());
    let mut raw = ember.raw();
    assert_eq!(
        raw.command(&[b"CONFIG", b"GET", b"io-uring"]),
        b"*2\r\n$8\r\nio-uring\r\n$2\r\nno\r\n"
    );
    for_each_configuration(|name, ember| {
        let mut raw = ember.raw();
        assert_eq!(
            raw.command(&[b"CONFIG", b"GET", b"io-uring"]),
            b"*2\r\n$8\r\nio-uring\r\n$3\r\nyes\r\n",
            "{name}"
        );
    });
}

/// A request that reaches a shard parked after a quiet spell is answered at once, not at the
/// shard's next timer: with deferred task work the kernel announced the data 9 to 22 ms late,
/// and a PING after 20 ms of quiet took 16 ms (Redis: 0.15 ms). Five keys, so that with two
/// shards some requests also wake the other shard through the mesh; the best of five tries, so
/// that a loaded machine does not fail it.
#[test]
fn a_request_after_a_quiet_spell_is_answered_at_once() {
    for_each_configuration(|name, ember| {
        let mut fastest = Duration::MAX;
        for round in 0..5 {
            let mut client = ember.raw();
            assert_eq!(client.command(&[b"PING"]), b"+PONG\r\n");
            // Longer than the driver's sleeps in its own ring (2 ms): the shard parks.
            thread::sleep(Duration::from_millis(30));
            let key = format!("quiet:{round}");
            let started = Instant::now();
            let reply = client.command(&[b"SET", key.as_bytes(), b"v"]);
            fastest = fastest.min(started.elapsed());
            assert_eq!(reply, b"+OK\r\n", "{name}");
        }
        assert!(
            fastest < Duration::from_millis(5),
            "{name}: a request after 30 ms of quiet took {fastest:?} at best"
        );
    });
}

#[test]
fn the_ring_is_the_default() {
    let ember = Ember::start_with(&["--threads", "1"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ember.log().contains("socket I/O through io_uring") {
        assert!(Instant::now() < deadline, "log:\n{}", ember.log());
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        ember.raw().command(&[b"CONFIG", b"GET", b"io-uring"]),
        b"*2\r\n$8\r\nio-uring\r\n$3\r\nyes\r\n"
    );
}

/// Multi-key commands over two shards from many clients at once, with the shards parking
/// between requests and with them busy polling: every MSET crosses the mesh, and every MGET
/// reads back what its client wrote. A cross-shard message must reach a shard that waits in its
/// own ring (the mesh bell), so no reply is an error from the shard-reply timeout. Without the
/// ring (`--io-uring no`) the same messages reach the shards through glommio's loop alone.
#[test]
fn cross_shard_commands_from_many_clients_complete() {
    const CLIENTS: usize = 16;
    const ROUNDS: usize = 150;
    const KEYS: usize = 8;
    for (io_uring, busy_poll) in [("yes", "0"), ("yes", "200"), ("no", "0"), ("no", "200")] {
        let ember = Ember::start_with(&[
            "--io-uring",
            io_uring,
            "--threads",
            "2",
            "--busy-poll-us",
            busy_poll,
        ]);
        let start = Arc::new(Barrier::new(CLIENTS));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let mut raw = ember.raw();
                let start = start.clone();
                thread::spawn(move || {
                    start.wait();
                    for round in 0..ROUNDS {
                        // Keys {client}:{k}:x hash to both shards within one command.
                        let keys: Vec<String> =
                            (0..KEYS).map(|k| format!("c{client}:k{k}:x")).collect();
                        let values: Vec<String> = (0..KEYS)
                            .map(|k| format!("v{client}.{round}.{k}"))
                            .collect();
                        let mut mset: Vec<&[u8]> = vec![b"MSET"];
                        for (key, value) in keys.iter().zip(&values) {
                            mset.push(key.as_bytes());
                            mset.push(value.as_bytes());
                        }
                        let mut mget: Vec<&[u8]> = vec![b"MGET"];
                        mget.extend(keys.iter().map(|key| key.as_bytes()));
                        // Both in one write: the MGET waits behind the MSET's cross-shard round.
                        let mut pipeline = multibulk(&mset);
                        pipeline.extend(multibulk(&mget));
                        raw.send(&pipeline);
                        assert_eq!(
                            raw.reply(),
                            b"+OK\r\n",
                            "io-uring {io_uring}, busy-poll {busy_poll}"
                        );
                        let mut expected = format!("*{KEYS}\r\n").into_bytes();
                        for value in &values {
                            expected.extend(bulk(value.as_bytes()));
                        }
                        assert_eq!(
                            raw.reply().escape_ascii().to_string(),
                            expected.escape_ascii().to_string(),
                            "io-uring {io_uring}, busy-poll {busy_poll}, client {client}, round {round}"
                        );
                    }
                })
            })
            .collect();
        for client in clients {
            client.join().expect("client thread");
        }
        let mut ember = ember;
        assert!(ember.is_running(), "log:\n{}", ember.log());
    }
}
