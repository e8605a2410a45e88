//! A shard's share of client tracking (CLIENT TRACKING): which clients read each of the keys
//! this shard owns (the reader may live on any shard), every shard's BCAST registrations (each
//! shard keeps a copy, so a write finds its listeners here), and the invalidations the
//! commands that ran here raised, still to be delivered.
//!
//! The keyspace logs the keys that change only while this shard has something to tell
//! ([`Tracking::active`]): with nobody tracking, a write costs the store one branch.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

use ember_store::Keyspace;

use super::Shared;

/// A client that read a key: its id and the shard it lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reader {
    /// The client's id.
    pub id: u64,
    /// Its shard.
    pub shard: usize,
}

/// Who runs a keyspace command, as tracking needs it: the writer (NOLOOP) and whether the
/// keys it reads are to be remembered for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The client (0: none, as the expiry and the eviction).
    pub reader: Reader,
    /// The command's keys are remembered for the client when it only reads (tracking on in
    /// the default mode, and OPTIN/OPTOUT allow it).
    pub remember: bool,
}

/// One invalidation message for one tracking client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalidation {
    /// The tracking client, which delivers it itself or to its redirection.
    pub reader: Reader,
    /// The keys, or `None` for the null of FLUSHDB and FLUSHALL.
    pub keys: Option<Vec<Vec<u8>>>,
    /// Raised for BCAST mode (dropped by a client that left it) or the default mode.
    pub bcast: bool,
    /// The client whose command made the change (0 for none): a NOLOOP client skips its own.
    pub writer: u64,
}

/// A BCAST client as every shard keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BcastClient {
    /// The client.
    pub reader: Reader,
    /// Its prefixes (the empty prefix matches every key).
    pub prefixes: Vec<Vec<u8>>,
    /// NOLOOP: its own changes are not sent to it.
    pub noloop: bool,
}

/// Keys changed under one BCAST client's prefix, sent together as one message.
#[derive(Debug)]
struct Batch {
    reader: Reader,
    prefix: Vec<u8>,
    keys: Vec<Vec<u8>>,
}

/// One shard's tracking state.
#[derive(Debug, Default)]
pub struct Tracking {
    /// Keys owned here, each with the clients that read it since its last invalidation.
    table: RefCell<HashMap<Vec<u8>, Vec<Reader>>>,
    /// Every shard's BCAST clients.
    bcast: RefCell<Vec<BcastClient>>,
    /// The client whose command runs here now (0 for none), for NOLOOP.
    writer: Cell<u64>,
    /// Invalidations raised here, delivered after the command.
    pending: RefCell<Vec<Invalidation>>,
    /// BCAST keys raised here, sent after the command (or the transaction) as one message per
    /// client and prefix, as Redis sends them once per event loop turn.
    batches: RefCell<Vec<Batch>>,
    /// The local tier reads the store's change log too (keys of this shard with copies on
    /// others: shard::local_tier), so the log stays on while it asks.
    log_for_local_tier: Cell<bool>,
}

impl Tracking {
    /// True while writes here may have someone to tell.
    pub fn active(&self) -> bool {
        !self.table.borrow().is_empty() || !self.bcast.borrow().is_empty()
    }

    /// True while the store must log the keys that change (tracking, or the local tier).
    fn wants_log(&self) -> bool {
        self.log_for_local_tier.get() || self.active()
    }

    /// Keeps the store's change log on (or lets it go off) for the local tier.
    pub fn log_for_local_tier(&self, keyspace: &mut Keyspace, on: bool) {
        self.log_for_local_tier.set(on);
        keyspace.record_modified(self.wants_log());
    }

    /// Sets the client whose command runs next (0 for none).
    pub fn set_writer(&self, id: u64) {
        self.writer.set(id);
    }

    /// Remembers that `reader` read each of `keys` (owned here), so their next change
    /// invalidates them for it.
    pub fn remember<'k>(
        &self,
        keyspace: &mut Keyspace,
        shared: &Shared,
        reader: Reader,
        keys: impl Iterator<Item = &'k [u8]>,
    ) {
        let mut table = self.table.borrow_mut();
        for key in keys {
            let readers = match table.get_mut(key) {
                Some(readers) => readers,
                None => {
                    shared.tracking_keys.fetch_add(1, Ordering::Relaxed);
                    table.entry(key.to_vec()).or_default()
                }
            };
            if !readers.iter().any(|known| known.id == reader.id) {
                readers.push(reader);
                shared.tracking_items.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(table);
        keyspace.record_modified(self.wants_log());
    }

    /// Turns the keys the keyspace logged into invalidations (after each command, expiry
    /// cycle and eviction slice), and hands each to `changed` (the local tier). One branch
    /// when nothing was logged.
    pub fn collect(
        &self,
        keyspace: &mut Keyspace,
        shared: &Shared,
        mut changed: impl FnMut(&[u8]),
    ) {
        if !keyspace.has_modified() {
            return;
        }
        let writer = self.writer.get();
        let active = self.active();
        for modified in keyspace.take_modified() {
            changed(modified.key.as_bytes());
            if active {
                let writer = if modified.expired { 0 } else { writer };
                self.invalidate(shared, modified.key.as_bytes(), writer);
            }
        }
        keyspace.record_modified(self.wants_log());
    }

    /// `key` changed: its readers (default mode) and the BCAST clients of a prefix of it
    /// get an invalidation.
    fn invalidate(&self, shared: &Shared, key: &[u8], writer: u64) {
        if let Some(readers) = self.table.borrow_mut().remove(key) {
            shared.tracking_keys.fetch_sub(1, Ordering::Relaxed);
            shared
                .tracking_items
                .fetch_sub(readers.len(), Ordering::Relaxed);
            let mut pending = self.pending.borrow_mut();
            for reader in readers {
                pending.push(Invalidation {
                    reader,
                    keys: Some(vec![key.to_vec()]),
                    bcast: false,
                    writer,
                });
            }
        }
        let bcast = self.bcast.borrow();
        if bcast.is_empty() {
            return;
        }
        let mut batches = self.batches.borrow_mut();
        for client in bcast.iter() {
            if client.noloop && writer == client.reader.id {
                continue;
            }
            for prefix in &client.prefixes {
                if !key.starts_with(prefix) {
                    continue;
                }
                let batch = match batches
                    .iter_mut()
                    .position(|b| b.reader == client.reader && b.prefix == *prefix)
                {
                    Some(index) => &mut batches[index],
                    None => {
                        batches.push(Batch {
                            reader: client.reader,
                            prefix: prefix.clone(),
                            keys: Vec::new(),
                        });
                        batches.last_mut().expect("just pushed")
                    }
                };
                if !batch.keys.iter().any(|known| known == key) {
                    batch.keys.push(key.to_vec());
                }
            }
        }
    }

    /// Forgets every remembered key (FLUSHDB, FLUSHALL), as Redis empties its table.
    pub fn clear(&self, keyspace: &mut Keyspace, shared: &Shared) {
        let mut table = self.table.borrow_mut();
        let items: usize = table.values().map(Vec::len).sum();
        shared
            .tracking_keys
            .fetch_sub(table.len(), Ordering::Relaxed);
        shared.tracking_items.fetch_sub(items, Ordering::Relaxed);
        table.clear();
        drop(table);
        // Keys logged before the flush are gone; their invalidation is the flush's null.
        keyspace.take_modified();
        keyspace.record_modified(self.wants_log());
    }

    /// Drops keys until the table of all shards together holds at most `keys_max` (Redis's
    /// `tracking-table-max-keys`; 0 is no limit), each with an invalidation as if it changed.
    pub fn enforce_limit(&self, keyspace: &mut Keyspace, shared: &Shared, keys_max: usize) {
        if keys_max == 0 {
            return;
        }
        while shared.tracking_keys.load(Ordering::Relaxed) > keys_max {
            let Some(key) = self.table.borrow().keys().next().cloned() else {
                break;
            };
            self.invalidate_readers_only(shared, &key);
        }
        keyspace.record_modified(self.wants_log());
    }

    fn invalidate_readers_only(&self, shared: &Shared, key: &[u8]) {
        let Some(readers) = self.table.borrow_mut().remove(key) else {
            return;
        };
        shared.tracking_keys.fetch_sub(1, Ordering::Relaxed);
        shared
            .tracking_items
            .fetch_sub(readers.len(), Ordering::Relaxed);
        let mut pending = self.pending.borrow_mut();
        for reader in readers {
            pending.push(Invalidation {
                reader,
                keys: Some(vec![key.to_vec()]),
                bcast: false,
                writer: 0,
            });
        }
    }

    /// True when the table holds keys (the limit may need enforcing).
    pub fn has_keys(&self) -> bool {
        !self.table.borrow().is_empty()
    }

    /// Records (or replaces) a BCAST client of any shard.
    pub fn register(&self, keyspace: &mut Keyspace, client: BcastClient) {
        let mut bcast = self.bcast.borrow_mut();
        bcast.retain(|known| known.reader.id != client.reader.id);
        bcast.push(client);
        drop(bcast);
        keyspace.record_modified(true);
    }

    /// Forgets the BCAST client `id`.
    pub fn unregister(&self, keyspace: &mut Keyspace, id: u64) {
        self.bcast
            .borrow_mut()
            .retain(|known| known.reader.id != id);
        keyspace.record_modified(self.wants_log());
    }

    /// Distinct BCAST prefixes of all clients (INFO's `tracking_total_prefixes`).
    pub fn prefix_count(&self) -> usize {
        let mut prefixes: Vec<&Vec<u8>> = Vec::new();
        let bcast = self.bcast.borrow();
        for client in bcast.iter() {
            prefixes.extend(client.prefixes.iter());
        }
        prefixes.sort_unstable();
        prefixes.dedup();
        prefixes.len()
    }

    /// True when invalidations wait for delivery.
    pub fn has_pending(&self) -> bool {
        !self.pending.borrow().is_empty() || !self.batches.borrow().is_empty()
    }

    /// The invalidations to deliver: the default mode's first, then one per BCAST batch.
    pub fn take_pending(&self) -> Vec<Invalidation> {
        let mut pending = std::mem::take(&mut *self.pending.borrow_mut());
        let writer = 0; // NOLOOP was applied when the keys were batched.
        pending.extend(
            self.batches
                .borrow_mut()
                .drain(..)
                .map(|batch| Invalidation {
                    reader: batch.reader,
                    keys: Some(batch.keys),
                    bcast: true,
                    writer,
                }),
        );
        pending
    }
}
