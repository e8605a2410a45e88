//! Start-up under CPU load: every start of a two-shard ember finishes (prints its ready line and
//! answers) while other threads keep both cores busy. glommio 0.9 can put a starting shard to
//! sleep with a task still to run; before `runtime::run_shards` interrupted such sleeps, about
//! one start in ten never finished on a loaded two-core machine (the mesh join waited for ever).

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use common::Ember;

/// Busy threads beside the server: twice the cores of the machine the stall was found on.
const HOGS: usize = 4;

/// Starts ember `starts` times with two shards (the default socket I/O) while `HOGS` threads
/// spin; each start must print its ready line within the harness's timeout and answer PING.
fn starts_under_load(starts: usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..HOGS)
        .map(|_| {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut spins = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    spins = spins.wrapping_add(1);
                    std::hint::spin_loop();
                }
                spins
            })
        })
        .collect();
    let result = std::panic::catch_unwind(|| {
        for start in 0..starts {
            let ember = Ember::start_with(&["--threads", "2"]);
            let reply = ember.raw().command(&[b"PING"]);
            assert_eq!(reply, b"+PONG\r\n", "start {start}");
        }
    });
    stop.store(true, Ordering::Relaxed);
    for hog in hogs {
        hog.join().expect("hog thread");
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn two_shards_start_under_cpu_load() {
    starts_under_load(20);
}

/// The long form (minutes): `cargo test -p ember-server --test startup -- --ignored`.
#[test]
#[ignore]
fn two_shards_start_under_cpu_load_many_times() {
    starts_under_load(300);
}

/// "ready to accept connections" comes once every shard listens: connections opened the moment
/// it appears spread over both shards. (Shard 0 used to announce as soon as it alone listened,
/// so a client pool opened at start sat wholly on shard 0, every other key a cross-shard hop.)
#[test]
fn the_first_connections_spread_over_every_shard() {
    let ember = Ember::start_with(&["--threads", "2"]);
    let mut connections: Vec<common::Raw> = (0..16).map(|_| ember.raw()).collect();
    for connection in &mut connections {
        assert_eq!(connection.command(&[b"PING"]), b"+PONG\r\n");
    }
    let info = String::from_utf8(connections[0].command(&[b"INFO", b"everything"])).unwrap();
    let clients = |shard: usize| -> usize {
        let prefix = format!("shard{shard}:clients=");
        let line = info
            .lines()
            .find(|line| line.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in INFO"));
        line[prefix.len()..]
            .split(',')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"))
    };
    let (first, second) = (clients(0), clients(1));
    println!("16 connections opened at start: {first} on shard 0, {second} on shard 1");
    assert!(
        first > 0 && second > 0,
        "every connection opened at start sits on one shard: {first} and {second}"
    );
}

/// Every shard binds its port with SO_REUSEPORT, which lets any program of the same user join
/// the port: a second server started on it used to start as well and take part of the first
/// one's connections (GETs of the first one's keys then answered nil). Now it exits as Redis
/// does, and the first keeps every connection.
#[test]
fn a_second_server_on_a_port_in_use_exits() {
    let mut first = Ember::start_with(&["--threads", "2"]);
    let port = first.port.to_string();
    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(["--port", &port, "--bind", "127.0.0.1", "--threads", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn a second ember");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second server on port {port} started and runs");
        }
        thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    second
        .stderr
        .take()
        .expect("stderr piped")
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "the second server started");
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}"))
            && stderr.contains("Address already in use"),
        "{stderr}"
    );
    let mut connection = first.raw();
    assert_eq!(connection.command(&[b"SET", b"k", b"v"]), b"+OK\r\n");
    for _ in 0..20 {
        first.assert_serving("k", b"v");
    }
}

/// A server stopped by SIGTERM takes its listeners off the port before it ends: while the
/// kernel still held them (an io_uring accept keeps a listener open until the ring is torn
/// down), a server started next on the port shared its first connections with them, and those
/// were reset. Each start here is connected to at once, before its ready line. The servers
/// listen on an address of their own: between two starts the port is free, and a server of
/// another test started with `--port 0` on 127.0.0.1 could be given it (and be killed while
/// this test's client talks to it).
#[test]
fn a_server_started_after_one_stops_gets_every_connection() {
    const ADDRESS: &str = "127.0.0.3";
    let port = common::free_port_on(ADDRESS);
    for start in 0..8 {
        let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_ember"))
            .args(["--port", &port.to_string(), "--bind", ADDRESS])
            .args(["--threads", "2"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn ember");
        // What the server said (it says little), for a failure's message.
        let said = |server: &mut std::process::Child| {
            let _ = server.kill();
            let status = server.wait();
            let mut stderr = String::new();
            if let Some(mut pipe) = server.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            format!("server {status:?}, stderr: {stderr:?}")
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if std::time::Instant::now() >= deadline {
                panic!("start {start}: no answer; {}", said(&mut server));
            }
            // Refused until the port opens; once connected, the PING must be answered.
            let Ok(mut stream) = std::net::TcpStream::connect((ADDRESS, port)) else {
                thread::sleep(std::time::Duration::from_millis(2));
                continue;
            };
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let mut reply = [0u8; 7];
            let answered = stream
                .write_all(b"*1\r\n$4\r\nPING\r\n")
                .and_then(|()| stream.read_exact(&mut reply));
            if !matches!(answered, Ok(()) if &reply == b"+PONG\r\n") {
                panic!(
                    "start {start}: {answered:?} {reply:?}; {}",
                    said(&mut server)
                );
            }
            break;
        }
        // SAFETY: kill takes no pointers; the child is ours and not yet waited for.
        unsafe { libc::kill(server.id() as libc::pid_t, libc::SIGTERM) };
        server.wait().expect("ember ends");
    }
}
