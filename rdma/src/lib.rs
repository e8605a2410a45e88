//! ember-rdma: fabric providers (verbs, shared memory) and the one-sided GET protocol.
#![deny(missing_docs)]

pub mod checksum;
