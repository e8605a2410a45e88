//! Start-up under CPU load: every start of a two-shard ember finishes (prints its ready line and
//! answers) while other threads keep both cores busy. glommio 0.9 can put a starting shard to
//! sleep with a task still to run; before `runtime::run_shards` interrupted such sleeps, about
//! one start in ten never finished on a loaded two-core machine (the mesh join waited for ever).

mod common;

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
