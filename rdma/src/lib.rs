//! ember-rdma: fabric providers (verbs, shared memory) and the one-sided GET protocol.
#![deny(missing_docs)]

pub mod checksum;
pub mod error;
pub mod fabric;
pub mod layout;
pub mod region;
pub mod shm;

pub use error::{Error, ErrorKind, Result};
