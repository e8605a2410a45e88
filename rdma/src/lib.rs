//! ember-rdma: fabric providers (verbs, shared memory) and the one-sided GET protocol.
//!
//! # Overview
//!
//! A [`fabric::Fabric`] sets up connections that offer one-sided READ, two-sided SEND/RECV and
//! completion polling. Two providers implement it: [`shm`] (same host: memfd regions handed over a
//! Unix socket, rings in shared memory) and [`verbs`] (RDMA NICs and SoftRoCE through `sideway`).
//!
//! On top, the one-sided GET protocol after Pilaf and FaRM: a server shard keeps a
//! [`region::ReadRegion`] (bucket index plus item log, every item versioned and CRC-32C
//! checksummed) in step with its string keys, and a [`client::Client`] READs bucket and item
//! directly, verifies them ([`reader`]) and falls back to a message GET for what is not published.
//!
//! # Example
//!
//! ```
//! use ember_rdma::{client::{Client, ClientConfig}, fabric::Fabric, region::RegionConfig};
//! use ember_rdma::server::{MemoryStore, MessageServer};
//! use ember_rdma::shm::ShmFabric;
//! use std::time::Duration;
//!
//! let path = std::env::temp_dir().join(format!("ember-doc-{}.sock", std::process::id()));
//! let path = path.to_str().unwrap().to_string();
//! let mut store = MemoryStore::new(RegionConfig { bucket_count: 1024, log_len: 1 << 20, ..Default::default() })?;
//! let fabric = ShmFabric { ring_capacity: 1 << 16 };
//! let mut server = MessageServer::listen_shm(fabric, &path, vec![store.region().memory().clone()])?;
//! let client = std::thread::spawn({
//!     let path = path.clone();
//!     move || -> ember_rdma::Result<Option<Vec<u8>>> {
//!         let mut client = Client::new(fabric.connect(&path)?, ClientConfig::default())?;
//!         client.set(b"greeting", b"hello")?;
//!         client.get(b"greeting") // one-sided: the server thread takes no part
//!     }
//! });
//! while !client.is_finished() {
//!     server.run_once(&mut store, Duration::from_micros(50), Duration::from_millis(1))?;
//! }
//! assert_eq!(client.join().unwrap()?, Some(b"hello".to_vec()));
//! # Ok::<(), ember_rdma::Error>(())
//! ```
#![deny(missing_docs)]

pub mod checksum;
pub mod client;
pub mod error;
pub mod fabric;
pub mod layout;
pub mod message;
pub mod reader;
pub mod region;
pub mod routing;
pub mod server;
pub mod shm;
pub mod verbs;

pub use error::{Error, ErrorKind, Result};
