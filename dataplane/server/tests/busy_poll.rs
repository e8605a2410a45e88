//! Busy polling (`--busy-poll-us`): connections served while the shard's epoll spinner runs, after it
//! stops (idle) and when traffic wakes it again; a connection killed or closed while it waits on the
//! spinner ends cleanly; and requests split across reads or pipelined arrive whole.

mod common;

use std::thread;
use std::time::Duration;

use common::{multibulk, Ember};

/// Many connections, each request answered, across the spinner's idle stop and its wake-up.
#[test]
fn connections_are_served_while_spinning_and_after_the_spinner_stops() {
    for threads in ["1", "2"] {
        let ember = Ember::start_with(&["--threads", threads, "--busy-poll-us", "200"]);
        let mut connections: Vec<_> = (0..20).map(|_| ember.raw()).collect();
        for round in 0..4 {
            for (i, raw) in connections.iter_mut().enumerate() {
                let key = format!("k{i}");
                let value = format!("v{round}-{i}");
                assert_eq!(
                    raw.command(&[b"SET", key.as_bytes(), value.as_bytes()]),
                    b"+OK\r\n"
                );
                assert_eq!(
                    raw.command(&[b"GET", key.as_bytes()]),
                    format!("${}\r\n{value}\r\n", value.len()).into_bytes()
                );
            }
            // Longer than --busy-poll-us: the spinner stops, connections wait through io_uring,
            // and the next request has to wake it.
            thread::sleep(Duration::from_millis(20));
        }
        // A request split across writes, with a pause longer than the spin window in the middle.
        let raw = &mut connections[0];
        raw.send(b"*2\r\n$3\r\nGET\r\n$2");
        thread::sleep(Duration::from_millis(5));
        raw.send(b"\r\nk0\r\n");
        assert_eq!(raw.reply(), b"$4\r\nv3-0\r\n");
        // A pipeline of 1000 in one write, answered in order.
        let mut pipeline = Vec::new();
        for i in 0..1000 {
            pipeline.extend(multibulk(&[b"ECHO", i.to_string().as_bytes()]));
        }
        raw.send(&pipeline);
        for i in 0..1000 {
            let text = i.to_string();
            assert_eq!(
                raw.reply(),
                format!("${}\r\n{text}\r\n", text.len()).into_bytes()
            );
        }
    }
}

/// CLIENT KILL of a connection that waits on the spinner, and a client that just goes away: both end,
/// and the shard keeps serving the others.
#[test]
fn killed_and_closed_connections_end_while_spinning() {
    let mut ember = Ember::start_with(&["--threads", "1", "--busy-poll-us", "100000"]);
    let mut victim = ember.raw();
    assert_eq!(
        victim.command(&[b"CLIENT", b"SETNAME", b"victim"]),
        b"+OK\r\n"
    );
    let mut admin = ember.raw();
    assert_eq!(admin.command(&[b"SET", b"alive", b"yes"]), b"+OK\r\n");
    // The victim is idle, so it waits on the spinner (still spinning: 100 ms window).
    let id = String::from_utf8(victim.command(&[b"CLIENT", b"ID"])).unwrap();
    let id = id.trim_start_matches(':').trim();
    assert_eq!(
        admin.command(&[b"CLIENT", b"KILL", b"ID", id.as_bytes()]),
        b":1\r\n"
    );
    assert!(victim.closed_by_server(), "killed connection still open");
    // Clients that disconnect while waiting free their place; new ones are served.
    for _ in 0..50 {
        let mut gone = ember.raw();
        assert_eq!(gone.command(&[b"PING"]), b"+PONG\r\n");
    }
    // The socket closes at the kill; the connection's task leaves the client table when it ends.
    let mut clients = String::new();
    for _ in 0..100 {
        clients = String::from_utf8(admin.command(&[b"CLIENT", b"LIST"])).unwrap();
        if !clients.contains("name=victim") {
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !clients.contains("name=victim"),
        "killed client still listed after 1 s: {clients}"
    );
    ember.assert_serving("alive", b"yes");
}
