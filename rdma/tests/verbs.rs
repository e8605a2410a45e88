//! The verbs provider end to end over a real device (a NIC or SoftRoCE's rxe0) on loopback:
//! SET by message, GET one-sided, DEL then miss. Skips with a message where there is no device.
#![cfg(feature = "verbs")]

use std::thread;
use std::time::Duration;

use ember_rdma::client::{Client, ClientConfig};
use ember_rdma::fabric::Fabric;
use ember_rdma::reader::Lookup;
use ember_rdma::region::RegionConfig;
use ember_rdma::server::{MemoryStore, MessageServer};
use ember_rdma::verbs::{devices, VerbsFabric};

fn fabric() -> Option<VerbsFabric> {
    match devices() {
        Ok(names) => {
            eprintln!("verbs devices: {names:?}");
            Some(VerbsFabric {
                device: std::env::var("EMBER_RDMA_DEVICE").ok(),
                gid_index: std::env::var("EMBER_RDMA_GID_INDEX")
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(1),
                ..VerbsFabric::default()
            })
        }
        Err(error) => {
            eprintln!("skipped: {error}");
            None
        }
    }
}

#[test]
fn set_by_message_then_one_sided_read_over_verbs() {
    let Some(fabric) = fabric() else { return };
    let config = RegionConfig {
        bucket_count: 1024,
        log_len: 1 << 20,
        ..RegionConfig::default()
    };
    let mut store = MemoryStore::new(config).unwrap();
    let listener = fabric
        .listen("127.0.0.1:0", vec![store.region().memory().clone()])
        .unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let mut server = MessageServer::new(listener);
    let client = thread::spawn(move || {
        let mut client =
            Client::new(fabric.connect(&address).unwrap(), ClientConfig::default()).unwrap();
        client.set(b"verbs:key", b"over the wire").unwrap();
        let mut value = Vec::new();
        let first = client.get_one_sided(b"verbs:key", &mut value).unwrap();
        let read = value.clone();
        assert!(client.delete(b"verbs:key").unwrap());
        let after_delete = client.get_one_sided(b"verbs:key", &mut value).unwrap();
        let values = client.mget(&[b"verbs:key", b"other"]).unwrap();
        (first, read, after_delete, values, client.stats())
    });
    while !client.is_finished() {
        server
            .run_once_polling(
                &mut store,
                Duration::from_micros(50),
                Duration::from_micros(100),
            )
            .unwrap();
    }
    let (first, read, after_delete, values, stats) = client.join().unwrap();
    eprintln!("verbs client {stats:?}");
    assert_eq!(
        (first, read.as_slice()),
        (Lookup::Hit, &b"over the wire"[..])
    );
    assert_eq!(after_delete, Lookup::Miss);
    assert_eq!(values, vec![None, None]);
}
