//! End to end through the shm provider, with the library's message server and reference store:
//! SET then one-sided GET, DEL and unpublishable values, MGET, and a seeded concurrent test where a
//! writer rewrites self-checking values while a reader on another thread READs them one-sided.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ember_rdma::client::{Client, ClientConfig};
use ember_rdma::fabric::Fabric;
use ember_rdma::reader::Lookup;
use ember_rdma::region::RegionConfig;
use ember_rdma::server::{Handler, MemoryStore, MessageServer};
use ember_rdma::shm::ShmFabric;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const FABRIC: ShmFabric = ShmFabric {
    ring_capacity: 1 << 16,
};

fn socket_path(name: &str) -> String {
    std::env::temp_dir()
        .join(format!("ember-rdma-{name}-{}.sock", std::process::id()))
        .to_str()
        .expect("utf-8 temp dir")
        .to_string()
}

fn small_region() -> RegionConfig {
    RegionConfig {
        bucket_count: 1024,
        log_len: 1 << 20,
        segment_count: 16,
        key_len_max: 64,
        value_len_max: 1024,
    }
}

/// Runs `client_side` on a thread while this thread serves messages; returns its result.
fn with_server<T: Send + 'static>(
    name: &str,
    store: &mut MemoryStore,
    client_side: impl FnOnce(String) -> T + Send + 'static,
) -> T {
    let path = socket_path(name);
    let mut server =
        MessageServer::listen_shm(FABRIC, &path, vec![store.region().memory().clone()]).unwrap();
    let client = thread::spawn(move || client_side(path));
    while !client.is_finished() {
        server
            .run_once(store, Duration::from_micros(20), Duration::from_millis(1))
            .unwrap();
    }
    client.join().unwrap()
}

#[test]
fn set_then_one_sided_get_then_delete_is_a_miss() {
    let mut store = MemoryStore::new(small_region()).unwrap();
    let stats = with_server("basic", &mut store, |path| {
        let mut client =
            Client::new(FABRIC.connect(&path).unwrap(), ClientConfig::default()).unwrap();
        client.set(b"user:1", b"alice").unwrap();
        let mut value = Vec::new();
        assert_eq!(
            client.get_one_sided(b"user:1", &mut value).unwrap(),
            Lookup::Hit
        );
        assert_eq!(value, b"alice");
        client.set(b"user:1", b"bob").unwrap();
        assert_eq!(client.get(b"user:1").unwrap().as_deref(), Some(&b"bob"[..]));
        assert!(client.delete(b"user:1").unwrap());
        assert_eq!(
            client.get_one_sided(b"user:1", &mut value).unwrap(),
            Lookup::Miss
        );
        assert_eq!(client.get(b"user:1").unwrap(), None);
        client.stats()
    });
    assert_eq!(stats.reader.hits, 2, "{stats:?}");
    assert_eq!(
        stats.fallbacks, 1,
        "only the deleted key went by message: {stats:?}"
    );
}

#[test]
fn unpublishable_values_are_served_by_message_and_mget_mixes_both() {
    let mut store = MemoryStore::new(small_region()).unwrap();
    let stats = with_server("mget", &mut store, |path| {
        let mut client =
            Client::new(FABRIC.connect(&path).unwrap(), ClientConfig::default()).unwrap();
        let big = vec![b'x'; 5000];
        client.set(b"big", &big).unwrap();
        client.set(b"small", b"s").unwrap();
        let mut value = Vec::new();
        assert_eq!(
            client.get_one_sided(b"big", &mut value).unwrap(),
            Lookup::Miss
        );
        assert_eq!(client.get(b"big").unwrap(), Some(big.clone()));
        let values = client
            .mget(&[b"small", b"big", b"absent", b"small"])
            .unwrap();
        assert_eq!(
            values,
            vec![Some(b"s".to_vec()), Some(big), None, Some(b"s".to_vec())]
        );
        client.stats()
    });
    assert_eq!(stats.reader.hits, 2, "{stats:?}");
    assert_eq!(stats.fallbacks, 3, "{stats:?}");
}

#[test]
fn many_clients_and_a_flush() {
    let mut store = MemoryStore::new(small_region()).unwrap();
    let path = socket_path("flush");
    let mut server =
        MessageServer::listen_shm(FABRIC, &path, vec![store.region().memory().clone()]).unwrap();
    let flushed = Arc::new(AtomicBool::new(false));
    let verified = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..4)
        .map(|id| {
            let path = path.clone();
            let flushed = flushed.clone();
            let verified = verified.clone();
            thread::spawn(move || {
                let mut client =
                    Client::new(FABRIC.connect(&path).unwrap(), ClientConfig::default()).unwrap();
                let key = format!("client{id}");
                client.set(key.as_bytes(), key.as_bytes()).unwrap();
                assert_eq!(
                    client.get(key.as_bytes()).unwrap(),
                    Some(key.clone().into_bytes())
                );
                verified.fetch_add(1, Ordering::AcqRel);
                while !flushed.load(Ordering::Acquire) {
                    thread::sleep(Duration::from_millis(1));
                }
                let mut value = Vec::new();
                assert_eq!(
                    client.get_one_sided(key.as_bytes(), &mut value).unwrap(),
                    Lookup::Miss
                );
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while verified.load(Ordering::Acquire) < 4 {
        server
            .run_once(
                &mut store,
                Duration::from_micros(20),
                Duration::from_millis(1),
            )
            .unwrap();
        assert!(Instant::now() < deadline, "clients never wrote");
    }
    store.clear();
    flushed.store(true, Ordering::Release);
    while clients.iter().any(|c| !c.is_finished()) {
        server
            .run_once(
                &mut store,
                Duration::from_micros(20),
                Duration::from_millis(1),
            )
            .unwrap();
    }
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(server.stats().accepted, 4);
}

/// A value that proves itself: key id, sequence number, a fill derived from both, and a sum.
fn self_checking_value(key_id: u64, sequence: u64, len: usize, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&key_id.to_le_bytes());
    out.extend_from_slice(&sequence.to_le_bytes());
    let mut x = key_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ sequence;
    while out.len() < len - 8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(x as u8);
    }
    let sum = out.iter().fold(0u64, |acc, &b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    out.extend_from_slice(&sum.to_le_bytes());
}

fn check_value(key_id: u64, value: &[u8]) -> Result<u64, String> {
    if value.len() < 24 {
        return Err(format!("value of {} bytes is too short", value.len()));
    }
    let id = u64::from_le_bytes(value[0..8].try_into().unwrap());
    let sequence = u64::from_le_bytes(value[8..16].try_into().unwrap());
    let mut expected = Vec::new();
    self_checking_value(key_id, sequence, value.len(), &mut expected);
    if id != key_id || expected != value {
        return Err(format!(
            "torn value for key {key_id}: id {id} sequence {sequence}"
        ));
    }
    Ok(sequence)
}

fn stress_seconds() -> f64 {
    std::env::var("EMBER_RDMA_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0)
}

#[test]
fn concurrent_writer_never_shows_a_torn_or_stale_value() {
    let seed: u64 = std::env::var("EMBER_RDMA_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            Instant::now().elapsed().as_nanos() as u64 ^ u64::from(std::process::id())
        });
    eprintln!("concurrent test seed {seed} (replay with EMBER_RDMA_SEED={seed})");
    const KEYS: u64 = 64;
    // A small log: reclamation runs all the time, so readers also race epoch reuse.
    let config = RegionConfig {
        bucket_count: 64,
        log_len: 256 * 1024,
        segment_count: 8,
        key_len_max: 32,
        value_len_max: 600,
    };
    let mut store = MemoryStore::new(config).unwrap();
    let acknowledged: Arc<Vec<AtomicU64>> =
        Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let path = socket_path("stress");
    let mut server =
        MessageServer::listen_shm(FABRIC, &path, vec![store.region().memory().clone()]).unwrap();
    let mut value = Vec::new();
    for key_id in 0..KEYS {
        self_checking_value(key_id, 1, 100, &mut value);
        store
            .set(format!("key{key_id}").as_bytes(), &value)
            .unwrap();
        acknowledged[key_id as usize].store(1, Ordering::Release);
    }
    let reader = thread::spawn({
        let (acknowledged, stop, path) = (acknowledged.clone(), stop.clone(), path.clone());
        move || -> Result<(u64, ember_rdma::client::ClientStats), String> {
            let mut client = Client::new(FABRIC.connect(&path).unwrap(), ClientConfig::default())
                .map_err(|e| e.to_string())?;
            let mut rng = SmallRng::seed_from_u64(seed ^ 1);
            let mut value = Vec::new();
            let mut verified = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key_id = rng.gen_range(0..KEYS);
                let floor = acknowledged[key_id as usize].load(Ordering::Acquire);
                let key = format!("key{key_id}");
                match client
                    .get_one_sided(key.as_bytes(), &mut value)
                    .map_err(|e| e.to_string())?
                {
                    Lookup::Hit => {
                        let sequence = check_value(key_id, &value)?;
                        if sequence < floor {
                            return Err(format!(
                                "stale value for key {key_id}: sequence {sequence} < acknowledged {floor}"
                            ));
                        }
                        verified += 1;
                    }
                    // A key dropped by reclamation under pressure is legal: it would go by message.
                    Lookup::Miss | Lookup::GaveUp => {}
                }
            }
            Ok((verified, client.stats()))
        }
    });
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut sequence = 1u64;
    let started = Instant::now();
    let duration = Duration::from_secs_f64(stress_seconds());
    while started.elapsed() < duration && !reader.is_finished() {
        for _ in 0..256 {
            sequence += 1;
            let key_id = rng.gen_range(0..KEYS);
            let len = rng.gen_range(24..=600);
            self_checking_value(key_id, sequence, len, &mut value);
            store
                .set(format!("key{key_id}").as_bytes(), &value)
                .unwrap();
            acknowledged[key_id as usize].store(sequence, Ordering::Release);
        }
        server.poll(&mut store).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let (verified, stats) = reader
        .join()
        .unwrap()
        .unwrap_or_else(|error| panic!("seed {seed}: {error}"));
    let region = store.region().stats();
    eprintln!("writes {sequence}, verified reads {verified}, reader {stats:?}, region {region:?}");
    assert!(
        verified > 1000,
        "seed {seed}: only {verified} verified reads"
    );
    assert!(
        region.epochs_reclaimed > 10,
        "seed {seed}: reclamation never ran: {region:?}"
    );
}
