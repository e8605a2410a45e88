//! Seeded fault injection (issue 16, item 6): one ember with two shards, many clients for a
//! bounded time sending valid pipelines, malformed frames, frames cut off by a vanishing client,
//! requests whose replies they never read (so the output buffer limit cuts them), huge declared
//! lengths and binary junk, while one shard is stalled on purpose now and then (DEBUG SLEEP). A
//! canary client keeps writing and reading its own keys on both shards and checks every reply
//! exactly: it must see no error at all.
//!
//! `EMBER_FAULT_SECONDS` (default 20) sets how long it runs; `EMBER_FAULT_SEED=N` replays a
//! run's choices (every failure prints its seed). Each client's choices come from its own
//! generator seeded from the run's seed; thread timing is not replayed.
//!
//! A shard that panics (DEBUG PANIC) ends the process with a message and a non-zero status,
//! and the clients of both shards see their connections close instead of hanging.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{multibulk, reply_len, Ember, Raw};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Clients that send faults (the canary and the staller come on top).
const FAULT_CLIENTS: usize = 12;
/// Keys of the canary: enough that both shards own some.
const CANARY_KEYS: usize = 16;

/// Counters of what the run did, printed at the end.
#[derive(Default)]
struct Tally {
    connections: AtomicU64,
    valid_commands: AtomicU64,
    malformed: AtomicU64,
    vanished: AtomicU64,
    never_read: AtomicU64,
    huge_lengths: AtomicU64,
    junk: AtomicU64,
    stalls: AtomicU64,
    canary_ops: AtomicU64,
    canary_errors: AtomicU64,
}

impl Tally {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn bad_inputs(&self) -> u64 {
        [
            &self.malformed,
            &self.vanished,
            &self.never_read,
            &self.huge_lengths,
            &self.junk,
        ]
        .iter()
        .map(|counter| counter.load(Ordering::Relaxed))
        .sum()
    }
}

/// Prints the seed when the test fails, so the run can be replayed.
struct SeedReport(u64);

impl Drop for SeedReport {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "fault injection failed; replay with EMBER_FAULT_SEED={} cargo test -p ember-server --test fault_injection",
                self.0
            );
        }
    }
}

fn seed() -> u64 {
    std::env::var("EMBER_FAULT_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| rand::random::<u64>() % 1_000_000)
}

fn connect(port: u16) -> Option<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let _ = stream.set_nodelay(true);
    Some(stream)
}

/// Reads replies until `count` whole ones arrived; false when the connection ended first.
fn read_replies(stream: &mut TcpStream, count: usize) -> bool {
    let mut pending = Vec::new();
    let mut seen = 0;
    let mut chunk = [0u8; 64 * 1024];
    while seen < count {
        while let Some(len) = reply_len(&pending) {
            pending.drain(..len);
            seen += 1;
            if seen == count {
                return true;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(read) => pending.extend_from_slice(&chunk[..read]),
        }
    }
    true
}

/// Closes with a reset instead of a FIN: the server sees the peer vanish.
fn vanish(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the socket is open; the option is a linger struct on the stack, its size given.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&stream),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::from_ref(&linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(stream);
}

/// One random valid command on the fault clients' own keys.
fn valid_command(rng: &mut SmallRng) -> Vec<u8> {
    let key = format!("load:{}", rng.gen_range(0..200));
    let value = "v".repeat(rng.gen_range(1..200));
    match rng.gen_range(0..8) {
        0 => multibulk(&[b"SET", key.as_bytes(), value.as_bytes()]),
        1 => multibulk(&[b"GET", key.as_bytes()]),
        2 => multibulk(&[b"INCR", format!("{key}:n").as_bytes()]),
        3 => multibulk(&[b"RPUSH", format!("{key}:l").as_bytes(), value.as_bytes()]),
        4 => multibulk(&[b"LRANGE", format!("{key}:l").as_bytes(), b"0", b"20"]),
        5 => multibulk(&[
            b"HSET",
            format!("{key}:h").as_bytes(),
            b"f",
            value.as_bytes(),
        ]),
        6 => multibulk(&[b"MGET", key.as_bytes(), b"load:1", b"load:2"]),
        _ => b"PING\r\n".to_vec(),
    }
}

/// Frames Redis answers with a protocol error and a close.
const MALFORMED: &[&[u8]] = &[
    b"*abc\r\n",
    b"*2147483648\r\n",
    b"*1\r\nfoo\r\n",
    b"*2\r\n$3\r\nGET\r\n:1\r\n",
    b"*1\r\n$abc\r\n",
    b"*1\r\n$-5\r\n",
    b"*1\r\n$536870913\r\n",
    b"*1\r\n$99999999999999999999\r\n",
];

/// One fault client: for the run's duration, connects and does one random thing at a time.
fn fault_client(port: u16, seed: u64, deadline: Instant, tally: &Tally) {
    let mut rng = SmallRng::seed_from_u64(seed);
    while Instant::now() < deadline {
        let Some(mut stream) = connect(port) else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        Tally::add(&tally.connections);
        match rng.gen_range(0..10) {
            // A valid pipeline, every reply read.
            0..=3 => {
                let count = rng.gen_range(1..200);
                let mut batch = Vec::new();
                for _ in 0..count {
                    batch.extend(valid_command(&mut rng));
                }
                if stream.write_all(&batch).is_ok() && read_replies(&mut stream, count) {
                    tally
                        .valid_commands
                        .fetch_add(count as u64, Ordering::Relaxed);
                }
            }
            // A malformed frame after some valid requests: their replies, then the error.
            4 => {
                let before = rng.gen_range(0..5);
                let mut batch = Vec::new();
                for _ in 0..before {
                    batch.extend(valid_command(&mut rng));
                }
                batch.extend_from_slice(MALFORMED[rng.gen_range(0..MALFORMED.len())]);
                let _ = stream.write_all(&batch);
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest);
                Tally::add(&tally.malformed);
            }
            // A frame cut off by a client that vanishes.
            5 => {
                let frame = valid_command(&mut rng);
                let cut = rng.gen_range(1..frame.len());
                let _ = stream.write_all(&frame[..cut]);
                vanish(stream);
                Tally::add(&tally.vanished);
            }
            // Large replies asked for and never read: the output buffer limit cuts the client
            // (or it gives up after a second).
            6 => {
                let request = multibulk(&[b"GET", b"fault:big"]).repeat(50);
                let started = Instant::now();
                let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
                while started.elapsed() < Duration::from_secs(1) {
                    if stream.write_all(&request).is_err() {
                        break;
                    }
                }
                vanish(stream);
                Tally::add(&tally.never_read);
            }
            // A huge declared length (under proto-max-bulk-len) or count, a little data, gone.
            7 => {
                let header: &[u8] = if rng.gen_bool(0.5) {
                    b"*2\r\n$3\r\nGET\r\n$536870000\r\n"
                } else {
                    b"*1048576\r\n$3\r\nGET\r\n"
                };
                let _ = stream.write_all(header);
                let _ = stream.write_all(&vec![b'x'; rng.gen_range(0..100_000)]);
                if rng.gen_bool(0.5) {
                    vanish(stream);
                } else {
                    let _ = stream.shutdown(Shutdown::Write);
                    let mut rest = Vec::new();
                    let _ = stream.read_to_end(&mut rest);
                }
                Tally::add(&tally.huge_lengths);
            }
            // Binary junk; whatever comes back is read until the server closes.
            _ => {
                let junk: Vec<u8> = (0..rng.gen_range(1..4096)).map(|_| rng.gen()).collect();
                let _ = stream.write_all(&junk);
                let _ = stream.shutdown(Shutdown::Write);
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest);
                Tally::add(&tally.junk);
            }
        }
    }
}

/// The canary: sets, reads, counts and lists on its own keys of both shards and checks every
/// reply exactly; each mismatch (or error) is counted and its first few printed.
fn canary(port: u16, seed: u64, deadline: Instant, tally: &Tally) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut raw = Raw::connect(port);
    let mut counters = [0i64; CANARY_KEYS];
    let mut list_lens = [0i64; CANARY_KEYS];
    let check = |raw: &mut Raw, args: &[&[u8]], expected: Vec<u8>| {
        let reply = raw.command(args);
        Tally::add(&tally.canary_ops);
        if reply != expected {
            let errors = tally.canary_errors.fetch_add(1, Ordering::Relaxed);
            if errors < 10 {
                eprintln!(
                    "canary: {:?} answered {:?}, expected {:?}",
                    args.iter()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect::<Vec<_>>(),
                    String::from_utf8_lossy(&reply),
                    String::from_utf8_lossy(&expected)
                );
            }
        }
    };
    for i in 0..CANARY_KEYS {
        let key = format!("canary:{i}");
        check(
            &mut raw,
            &[
                b"DEL",
                key.as_bytes(),
                format!("{key}:n").as_bytes(),
                format!("{key}:l").as_bytes(),
            ],
            b":0\r\n".to_vec(),
        );
    }
    let bulk = |value: &[u8]| {
        let mut out = format!("${}\r\n", value.len()).into_bytes();
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
        out
    };
    while Instant::now() < deadline {
        let i = rng.gen_range(0..CANARY_KEYS);
        let key = format!("canary:{i}");
        match rng.gen_range(0..4) {
            0 => {
                let value = format!("{}:{}", rng.gen::<u32>(), "c".repeat(rng.gen_range(0..500)));
                check(
                    &mut raw,
                    &[b"SET", key.as_bytes(), value.as_bytes()],
                    b"+OK\r\n".to_vec(),
                );
                check(&mut raw, &[b"GET", key.as_bytes()], bulk(value.as_bytes()));
            }
            1 => {
                counters[i] += 1;
                let counter = format!("{key}:n");
                check(
                    &mut raw,
                    &[b"INCR", counter.as_bytes()],
                    format!(":{}\r\n", counters[i]).into_bytes(),
                );
            }
            2 => {
                list_lens[i] += 1;
                let list = format!("{key}:l");
                check(
                    &mut raw,
                    &[b"RPUSH", list.as_bytes(), b"x"],
                    format!(":{}\r\n", list_lens[i]).into_bytes(),
                );
            }
            _ => {
                // Keys of both shards in one command.
                let other = format!("canary:{}", (i + 1) % CANARY_KEYS);
                let (a, b) = (rng.gen::<u16>().to_string(), rng.gen::<u16>().to_string());
                check(
                    &mut raw,
                    &[
                        b"MSET",
                        key.as_bytes(),
                        a.as_bytes(),
                        other.as_bytes(),
                        b.as_bytes(),
                    ],
                    b"+OK\r\n".to_vec(),
                );
                let mut expected = b"*2\r\n".to_vec();
                expected.extend(bulk(a.as_bytes()));
                expected.extend(bulk(b.as_bytes()));
                check(
                    &mut raw,
                    &[b"MGET", key.as_bytes(), other.as_bytes()],
                    expected,
                );
            }
        }
    }
}

#[test]
fn clients_misbehave_while_the_canary_sees_exact_replies() {
    let seed = seed();
    let _report = SeedReport(seed);
    let seconds: u64 = std::env::var("EMBER_FAULT_SECONDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(20);
    let mut ember = Ember::start_with(&["--threads", "2"]);
    let port = ember.port;
    let mut admin = ember.raw();
    // Never-reading clients are cut at 4 MB at once or 1 MB for a second.
    for (name, value) in [
        ("client-output-buffer-limit", "normal 4mb 1mb 1"),
        ("maxmemory-clients", "256mb"),
    ] {
        assert_eq!(
            admin.command(&[b"CONFIG", b"SET", name.as_bytes(), value.as_bytes()]),
            b"+OK\r\n"
        );
    }
    let big = vec![b'B'; 64 * 1024];
    assert_eq!(admin.command(&[b"SET", b"fault:big", &big]), b"+OK\r\n");
    let rss_before = ember.rss_bytes();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tally = Arc::new(Tally::default());
    let done = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for index in 0..FAULT_CLIENTS {
        let tally = tally.clone();
        threads.push(thread::spawn(move || {
            fault_client(
                port,
                seed.wrapping_mul(1000).wrapping_add(index as u64),
                deadline,
                &tally,
            );
        }));
    }
    // The staller: one shard sleeps 200 ms now and then while the other serves.
    {
        let tally = tally.clone();
        let done = done.clone();
        threads.push(thread::spawn(move || {
            let mut rng = SmallRng::seed_from_u64(seed ^ 0x5157);
            let mut raw = Raw::connect(port);
            while Instant::now() < deadline && !done.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(rng.gen_range(500..1500)));
                assert_eq!(raw.command(&[b"DEBUG", b"SLEEP", b"0.2"]), b"+OK\r\n");
                Tally::add(&tally.stalls);
            }
        }));
    }
    canary(port, seed ^ 0xCA4A, deadline, &tally);
    done.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().expect("a client thread failed");
    }
    assert!(ember.is_running(), "ember exited; log:\n{}", ember.log());
    let mut after = ember.raw();
    assert_eq!(after.command(&[b"PING"]), b"+PONG\r\n");
    assert_eq!(after.command(&[b"STRLEN", b"fault:big"]), b":65536\r\n");
    let rss_after = ember.rss_bytes();
    let canary_errors = tally.canary_errors.load(Ordering::Relaxed);
    let log = ember.log();
    let output_limit_cuts = log.matches("output buffer limits").count();
    println!(
        "fault injection: seed={seed} clients={} seconds={seconds} connections={} valid_commands={} bad_inputs={} (malformed={} vanished={} never_read={} huge_lengths={} junk={}) stalls={} canary_ops={} canary_errors={canary_errors} output_limit_cuts={output_limit_cuts} rss_before={} rss_after={}",
        FAULT_CLIENTS + 2,
        tally.connections.load(Ordering::Relaxed),
        tally.valid_commands.load(Ordering::Relaxed),
        tally.bad_inputs(),
        tally.malformed.load(Ordering::Relaxed),
        tally.vanished.load(Ordering::Relaxed),
        tally.never_read.load(Ordering::Relaxed),
        tally.huge_lengths.load(Ordering::Relaxed),
        tally.junk.load(Ordering::Relaxed),
        tally.stalls.load(Ordering::Relaxed),
        tally.canary_ops.load(Ordering::Relaxed),
        rss_before,
        rss_after,
    );
    assert_eq!(canary_errors, 0, "the canary saw wrong replies");
    assert!(
        tally.canary_ops.load(Ordering::Relaxed) > 100,
        "the canary hardly ran"
    );
    assert!(tally.bad_inputs() > 50, "few bad inputs were sent");
    assert!(
        tally.stalls.load(Ordering::Relaxed) > 0,
        "no stall happened"
    );
    assert!(
        output_limit_cuts > 0,
        "no client was cut by its output limit"
    );
}

/// DEBUG PANIC on one shard while clients of both shards are connected: the process exits with
/// a non-zero status and says which shard panicked; no client hangs.
#[test]
fn a_shard_that_panics_ends_the_process_loudly() {
    let mut ember = Ember::start_with(&["--threads", "2"]);
    let port = ember.port;
    let mut clients: Vec<Raw> = (0..8).map(|_| Raw::connect(port)).collect();
    for raw in &mut clients {
        assert_eq!(raw.command(&[b"PING"]), b"+PONG\r\n");
    }
    let mut panicker = Raw::connect(port);
    panicker.send(&multibulk(&[b"DEBUG", b"PANIC"]));
    let status = ember.wait_exit(Duration::from_secs(10));
    assert!(
        matches!(status, Some(code) if code != 0),
        "exit status {status:?}; log:\n{}",
        ember.log()
    );
    // The log arrives through a reader thread: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ember.log().contains("panicked; exiting") && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let log = ember.log();
    assert!(log.contains("DEBUG PANIC from client"), "{log}");
    assert!(log.contains("panicked; exiting"), "{log}");
    for raw in &mut clients {
        assert!(raw.closed_by_server(), "a client's connection stayed open");
    }
}
