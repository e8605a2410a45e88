//! A client of Ember's shared-memory transport: SET by message, GET one-sided, MGET.
//!
//! ```text
//! ember --shm /tmp/ember.shm &                          # a running server, or leave the path
//! cargo run --release -p ember-rdma --example shm_get -- /tmp/ember.shm
//! ```
//!
//! Without a path the example starts ember-rdma's reference server on a thread of its own, so it
//! runs anywhere. It prints what it did and how the GETs were served, and exits non-zero when a
//! value read back is not the value written.

use std::time::{Duration, Instant};

use ember_rdma::client::{Client, ClientConfig};
use ember_rdma::fabric::Fabric;
use ember_rdma::reader::Lookup;
use ember_rdma::region::RegionConfig;
use ember_rdma::server::{MemoryStore, MessageServer};
use ember_rdma::shm::ShmFabric;

fn run(path: &str) -> ember_rdma::Result<()> {
    let mut client = Client::new(ShmFabric::default().connect(path)?, ClientConfig::default())?;
    client.set(b"example:greeting", b"hello over shared memory")?;
    client.set(b"example:count", b"42")?;

    let mut value = Vec::new();
    let outcome = client.get_one_sided(b"example:greeting", &mut value)?;
    println!(
        "one-sided GET example:greeting -> {:?} {:?}",
        outcome,
        String::from_utf8_lossy(&value)
    );
    if outcome != Lookup::Hit || value != b"hello over shared memory" {
        return Err(mismatch("example:greeting"));
    }

    let values = client.mget(&[b"example:greeting", b"example:count", b"example:absent"])?;
    let shown: Vec<Option<String>> = values
        .iter()
        .map(|v| v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()))
        .collect();
    println!("MGET -> {shown:?}");
    if values[1].as_deref() != Some(&b"42"[..]) || values[2].is_some() {
        return Err(mismatch("MGET"));
    }

    let started = Instant::now();
    let rounds = 100_000;
    for _ in 0..rounds {
        client.get_into(b"example:count", &mut value)?;
    }
    let per_get = started.elapsed() / rounds;
    println!("{rounds} GETs of example:count, {per_get:?} each (mean, including the loop)");
    println!("client counters: {:?}", client.stats());
    client.delete(b"example:greeting")?;
    Ok(())
}

fn mismatch(what: &str) -> ember_rdma::Error {
    eprintln!("shm_get: {what} read back a different value than was written");
    std::process::exit(1);
}

fn main() {
    let path = std::env::args().nth(1);
    let result = match path {
        Some(path) => run(&path),
        None => with_reference_server(),
    };
    if let Err(error) = result {
        eprintln!("shm_get: {error}");
        std::process::exit(1);
    }
}

fn with_reference_server() -> ember_rdma::Result<()> {
    let path = std::env::temp_dir()
        .join(format!("ember-shm-example-{}.sock", std::process::id()))
        .to_string_lossy()
        .into_owned();
    let mut store = MemoryStore::new(RegionConfig {
        bucket_count: 1024,
        log_len: 1 << 20,
        ..RegionConfig::default()
    })?;
    let mut server = MessageServer::listen_shm(
        ShmFabric::default(),
        &path,
        vec![store.region().memory().clone()],
    )?;
    println!("reference server on {path}");
    let client = std::thread::spawn(move || run(&path));
    while !client.is_finished() {
        server.run_once(
            &mut store,
            Duration::from_micros(50),
            Duration::from_millis(1),
        )?;
    }
    client.join().expect("client thread")
}
