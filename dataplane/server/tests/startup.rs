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
