//! ember-store: one shard's keyspace.
#![deny(missing_docs)]

pub mod slot;
pub mod bloom;
pub mod rate_limit;
pub mod text_filter;
