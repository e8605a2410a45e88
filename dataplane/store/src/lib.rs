//! ember-store: one shard's keyspace.
#![deny(missing_docs)]

pub mod slot;
