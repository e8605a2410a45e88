//! One shard's keyspace: sixteen databases, each a table of compact entries with an expiry index.
//!
//! The table is split into [`SEGMENT_COUNT`] segments chosen by hash bits, each a small open
//! addressing table. A key never changes segment, so a SCAN cursor that names a segment stays
//! valid across inserts and growth: every key present for a whole scan is returned at least once,
//! which is Redis's guarantee, without Redis's reverse-binary cursor arithmetic.

use std::collections::BTreeSet;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::compact::CompactBytes;
use crate::glob::glob_match;
use crate::value::{Entry, ExpireAtMs, Value};

/// Databases per shard (`SELECT 0` to `SELECT 15`), as Redis's default `databases 16`.
pub const DATABASE_COUNT: usize = 16;

/// Segments per database. A power of two; large enough that a segment of a big keyspace stays
/// small (a SCAN step returns whole segments), small enough that an empty database is cheap.
pub const SEGMENT_COUNT: usize = 1024;

/// Bits of the hash that pick the segment: above the bits hashbrown uses for buckets and below
/// the seven it keeps as tags.
const SEGMENT_SHIFT: u32 = 40;

/// Segments a SCAN step may visit per key asked for, so a sparse table still answers quickly
/// (Redis visits at most ten empty buckets per COUNT).
const SCAN_VISITS_PER_KEY: usize = 10;

type Slot = (CompactBytes, Entry);

/// Receives every change of a key's value, so a published copy (the RDMA read region) can stay
/// in step with the keyspace. Called after the change is applied.
pub trait KeyObserver {
    /// `key` in `db` now holds `value` (set, overwritten or modified in place) and expires at
    /// `expire_at_ms`; also called when only the expiry changed (EXPIRE, PERSIST), so a published
    /// copy never outlives its key.
    fn key_written(&mut self, db: usize, key: &[u8], value: &Value, expire_at_ms: ExpireAtMs);
    /// `key` in `db` is gone: deleted, expired, renamed away, moved or evicted.
    fn key_removed(&mut self, db: usize, key: &[u8]);
    /// Every key of `db` is gone.
    fn database_flushed(&mut self, db: usize);
    /// Databases `first` and `second` traded contents.
    fn databases_swapped(&mut self, first: usize, second: usize);
}

/// Counters the server reports in INFO and metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyspaceStats {
    /// Keys removed because their TTL passed (lazily or actively).
    pub expired_keys: u64,
}

/// Per-database figures for INFO keyspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseInfo {
    /// Keys in the database.
    pub keys: usize,
    /// Keys with a TTL.
    pub expires: usize,
}

#[derive(Default)]
struct Database {
    /// Empty until the first insert, so fifteen unused databases cost nothing.
    segments: Vec<HashTable<Slot>>,
    len: usize,
    /// (expire_at_ms, key) for every key with a TTL, earliest first.
    expires: BTreeSet<(u64, CompactBytes)>,
}

/// One shard's keyspace.
pub struct Keyspace {
    databases: Vec<Database>,
    hasher: foldhash::fast::RandomState,
    observer: Option<Box<dyn KeyObserver>>,
    stats: KeyspaceStats,
    /// Database the active expiry cycle resumes at.
    expire_cursor_db: usize,
    /// Source of [`Entry::version`].
    next_version: u32,
}

impl Default for Keyspace {
    fn default() -> Self {
        Self::new()
    }
}

/// One step of a SCAN over a database.
#[derive(Debug, Default)]
pub struct ScanStep {
    /// Keys found in this step.
    pub keys: Vec<CompactBytes>,
    /// Segment to resume at, or `None` when the database has been scanned to the end.
    pub next_segment: Option<usize>,
}

impl Keyspace {
    /// An empty keyspace.
    pub fn new() -> Self {
        Self {
            databases: (0..DATABASE_COUNT).map(|_| Database::default()).collect(),
            hasher: foldhash::fast::RandomState::default(),
            observer: None,
            stats: KeyspaceStats::default(),
            expire_cursor_db: 0,
            next_version: 1,
        }
    }

    /// Installs the observer that hears of every change.
    pub fn set_observer(&mut self, observer: Box<dyn KeyObserver>) {
        self.observer = Some(observer);
    }

    /// Counters since start.
    pub fn stats(&self) -> KeyspaceStats {
        self.stats
    }

    /// Keys in `db`, expired ones not yet removed included.
    pub fn len(&self, db: usize) -> usize {
        self.databases[db].len
    }

    /// True when no database holds a key.
    pub fn is_empty(&self) -> bool {
        self.databases.iter().all(|database| database.len == 0)
    }

    /// Figures for INFO keyspace.
    pub fn database_info(&self, db: usize) -> DatabaseInfo {
        let database = &self.databases[db];
        DatabaseInfo {
            keys: database.len,
            expires: database.expires.len(),
        }
    }

    fn locate(&self, key: &[u8]) -> (u64, usize) {
        let hash = self.hasher.hash_one(key);
        (hash, (hash >> SEGMENT_SHIFT) as usize & (SEGMENT_COUNT - 1))
    }

    /// The entry of `key`, unless absent or expired (an expired entry is removed now).
    pub fn get(&mut self, db: usize, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.get_mut(db, key, now_ms).map(|entry| &*entry)
    }

    /// The entry of `key` for changing in place. After changing its value, call
    /// [`Keyspace::value_changed`] so the observer hears of it.
    pub fn get_mut(&mut self, db: usize, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        if self.expire_if_due(db, key, now_ms) {
            return None;
        }
        let (hash, segment) = self.locate(key);
        let database = &mut self.databases[db];
        let table = database.segments.get_mut(segment)?;
        table
            .find_mut(hash, |(k, _)| k.as_bytes() == key)
            .map(|(_, entry)| entry)
    }

    /// Reads `key` without expiring it or touching its access time (for OBJECT and the like).
    pub fn peek(&self, db: usize, key: &[u8], now_ms: u64) -> Option<&Entry> {
        let (hash, segment) = self.locate(key);
        let entry = self.databases[db]
            .segments
            .get(segment)?
            .find(hash, |(k, _)| k.as_bytes() == key)
            .map(|(_, entry)| entry)?;
        (!is_expired(entry, now_ms)).then_some(entry)
    }

    /// True when `key` exists (and has not expired).
    pub fn contains(&mut self, db: usize, key: &[u8], now_ms: u64) -> bool {
        self.get_mut(db, key, now_ms).is_some()
    }

    fn new_version(&mut self) -> u32 {
        let version = self.next_version;
        self.next_version = self.next_version.wrapping_add(1);
        version
    }

    /// The version of `key`'s entry, or `None` when it is absent or expired (WATCH compares these).
    pub fn version(&self, db: usize, key: &[u8], now_ms: u64) -> Option<u32> {
        self.peek(db, key, now_ms).map(|entry| entry.version)
    }

    /// Records that `key`'s value was changed through [`Keyspace::get_mut`]: a new version, and
    /// the observer hears of it.
    pub fn value_changed(&mut self, db: usize, key: &[u8]) {
        let version = self.new_version();
        let (hash, segment) = self.locate(key);
        if let Some((_, entry)) = self.databases[db]
            .segments
            .get_mut(segment)
            .and_then(|t| t.find_mut(hash, |(k, _)| k.as_bytes() == key))
        {
            entry.version = version;
        }
        if self.observer.is_none() {
            return;
        }
        let database = &self.databases[db];
        if let Some((_, entry)) = database
            .segments
            .get(segment)
            .and_then(|t| t.find(hash, |(k, _)| k.as_bytes() == key))
        {
            if let Some(observer) = self.observer.as_mut() {
                observer.key_written(db, key, &entry.value, entry.expire_at_ms);
            }
        }
    }

    /// Sets `key` to `value` with expiry `expire_at_ms`, replacing any entry; returns the
    /// previous entry if there was one (expired entries count as absent).
    pub fn insert(
        &mut self,
        db: usize,
        key: &[u8],
        value: Value,
        expire_at_ms: ExpireAtMs,
        now_ms: u64,
    ) -> Option<Entry> {
        let access = lru_clock(now_ms);
        let version = self.new_version();
        let (hash, segment) = self.locate(key);
        let hasher = &self.hasher;
        let database = &mut self.databases[db];
        if database.segments.is_empty() {
            database.segments = (0..SEGMENT_COUNT).map(|_| HashTable::new()).collect();
        }
        let table = &mut database.segments[segment];
        let new_entry = Entry {
            value,
            expire_at_ms,
            access,
            version,
        };
        let previous = match table.entry(
            hash,
            |(k, _)| k.as_bytes() == key,
            |(k, _)| hasher.hash_one(k.as_bytes()),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut occupied) => {
                Some(std::mem::replace(&mut occupied.get_mut().1, new_entry))
            }
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert((CompactBytes::new(key), new_entry));
                database.len += 1;
                None
            }
        };
        let previous_expire = previous.as_ref().and_then(|entry| entry.expire_at_ms);
        if previous_expire != expire_at_ms {
            if let Some(at) = previous_expire {
                database.expires.remove(&(at, CompactBytes::new(key)));
            }
            if let Some(at) = expire_at_ms {
                database.expires.insert((at, CompactBytes::new(key)));
            }
        }
        if let Some(observer) = self.observer.as_mut() {
            let (_, entry) = self.databases[db].segments[segment]
                .find(hash, |(k, _)| k.as_bytes() == key)
                .expect("just inserted");
            observer.key_written(db, key, &entry.value, entry.expire_at_ms);
        }
        previous.filter(|entry| !is_expired(entry, now_ms))
    }

    /// Removes `key`; returns its entry unless it was absent or already expired.
    pub fn remove(&mut self, db: usize, key: &[u8], now_ms: u64) -> Option<Entry> {
        let entry = self.remove_entry(db, key)?;
        if is_expired(&entry, now_ms) {
            self.stats.expired_keys += 1;
            return None;
        }
        Some(entry)
    }

    fn remove_entry(&mut self, db: usize, key: &[u8]) -> Option<Entry> {
        let (hash, segment) = self.locate(key);
        let database = &mut self.databases[db];
        let table = database.segments.get_mut(segment)?;
        let occupied = table.find_entry(hash, |(k, _)| k.as_bytes() == key).ok()?;
        let ((_, entry), _) = occupied.remove();
        database.len -= 1;
        if let Some(at) = entry.expire_at_ms {
            database.expires.remove(&(at, CompactBytes::new(key)));
        }
        if let Some(observer) = self.observer.as_mut() {
            observer.key_removed(db, key);
        }
        Some(entry)
    }

    /// Removes `key` if its TTL has passed; true when it did.
    fn expire_if_due(&mut self, db: usize, key: &[u8], now_ms: u64) -> bool {
        if self.databases[db].expires.is_empty() {
            return false;
        }
        let (hash, segment) = self.locate(key);
        let due = self.databases[db]
            .segments
            .get(segment)
            .and_then(|table| table.find(hash, |(k, _)| k.as_bytes() == key))
            .is_some_and(|(_, entry)| is_expired(entry, now_ms));
        if due {
            self.remove_entry(db, key);
            self.stats.expired_keys += 1;
        }
        due
    }

    /// Sets or clears the expiry of an existing `key`; false when the key is absent.
    pub fn set_expire(
        &mut self,
        db: usize,
        key: &[u8],
        expire_at_ms: ExpireAtMs,
        now_ms: u64,
    ) -> bool {
        let Some(entry) = self.get_mut(db, key, now_ms) else {
            return false;
        };
        let previous = std::mem::replace(&mut entry.expire_at_ms, expire_at_ms);
        let database = &mut self.databases[db];
        if previous != expire_at_ms {
            if let Some(at) = previous {
                database.expires.remove(&(at, CompactBytes::new(key)));
            }
            if let Some(at) = expire_at_ms {
                database.expires.insert((at, CompactBytes::new(key)));
            }
            self.value_changed(db, key);
        }
        true
    }

    /// Removes every key of `db`.
    pub fn flush_database(&mut self, db: usize) {
        self.databases[db] = Database::default();
        if let Some(observer) = self.observer.as_mut() {
            observer.database_flushed(db);
        }
    }

    /// Removes every key of every database.
    pub fn flush_all(&mut self) {
        for db in 0..DATABASE_COUNT {
            self.flush_database(db);
        }
    }

    /// Trades the contents of two databases.
    pub fn swap_databases(&mut self, first: usize, second: usize) {
        self.databases.swap(first, second);
        if let Some(observer) = self.observer.as_mut() {
            observer.databases_swapped(first, second);
        }
    }

    /// Keys of `db` matching `pattern` (KEYS), expired ones left out.
    pub fn keys_matching(&self, db: usize, pattern: &[u8], now_ms: u64) -> Vec<CompactBytes> {
        let match_all = pattern == b"*";
        self.databases[db]
            .segments
            .iter()
            .flat_map(|table| table.iter())
            .filter(|(key, entry)| {
                !is_expired(entry, now_ms) && (match_all || glob_match(pattern, key))
            })
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// One SCAN step from `segment`: whole segments until about `count` keys were looked at.
    /// `filter` decides which live keys are returned (MATCH and TYPE).
    pub fn scan(
        &self,
        db: usize,
        segment: usize,
        count: usize,
        now_ms: u64,
        mut filter: impl FnMut(&[u8], &Entry) -> bool,
    ) -> ScanStep {
        let database = &self.databases[db];
        if database.segments.is_empty() {
            return ScanStep::default();
        }
        let count = count.max(1);
        let mut step = ScanStep::default();
        let mut looked_at = 0;
        let mut visits = 0;
        let mut at = segment;
        while at < SEGMENT_COUNT {
            let table = &database.segments[at];
            looked_at += table.len();
            visits += 1;
            for (key, entry) in table.iter() {
                if !is_expired(entry, now_ms) && filter(key, entry) {
                    step.keys.push(key.clone());
                }
            }
            at += 1;
            if looked_at >= count || visits >= count.saturating_mul(SCAN_VISITS_PER_KEY) {
                break;
            }
        }
        step.next_segment = (at < SEGMENT_COUNT).then_some(at);
        step
    }

    /// A random live key of `db`, if any.
    pub fn random_key(
        &self,
        db: usize,
        random: &mut impl FnMut(usize) -> usize,
        now_ms: u64,
    ) -> Option<CompactBytes> {
        let database = &self.databases[db];
        if database.len == 0 {
            return None;
        }
        // Random segments first; a nearly empty table falls back to a walk from a random start.
        for _ in 0..64 {
            let table = &database.segments[random(SEGMENT_COUNT)];
            if table.is_empty() {
                continue;
            }
            let (key, entry) = table
                .iter()
                .nth(random(table.len()))
                .expect("index below len");
            if !is_expired(entry, now_ms) {
                return Some(key.clone());
            }
        }
        let start = random(SEGMENT_COUNT);
        (0..SEGMENT_COUNT)
            .map(|offset| &database.segments[(start + offset) % SEGMENT_COUNT])
            .flat_map(|table| table.iter())
            .find(|(_, entry)| !is_expired(entry, now_ms))
            .map(|(key, _)| key.clone())
    }

    /// Active expiry: removes up to `keys_max` keys whose TTL has passed, earliest first,
    /// across databases; returns how many it removed. Keys nobody reads go this way.
    pub fn expire_cycle(&mut self, now_ms: u64, keys_max: usize) -> usize {
        let mut removed = 0;
        for _ in 0..DATABASE_COUNT {
            let db = self.expire_cursor_db;
            while removed < keys_max {
                let Some((at, key)) = self.databases[db].expires.first().cloned() else {
                    break;
                };
                if at > now_ms {
                    break;
                }
                self.remove_entry(db, &key);
                self.stats.expired_keys += 1;
                removed += 1;
            }
            if removed >= keys_max {
                break;
            }
            self.expire_cursor_db = (db + 1) % DATABASE_COUNT;
        }
        removed
    }

    /// True when some key's TTL has passed and it is still stored.
    pub fn has_due_expiry(&self, now_ms: u64) -> bool {
        self.databases.iter().any(|database| {
            database
                .expires
                .first()
                .is_some_and(|(at, _)| *at <= now_ms)
        })
    }
}

/// The LRU clock kept in [`Entry::access`]: Unix seconds, wrapping in 2106.
pub fn lru_clock(now_ms: u64) -> u32 {
    (now_ms / 1000) as u32
}

fn is_expired(entry: &Entry, now_ms: u64) -> bool {
    entry.expire_at_ms.is_some_and(|at| at <= now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Value {
        Value::from_bytes(text.as_bytes())
    }

    #[test]
    fn insert_get_remove() {
        let mut keyspace = Keyspace::new();
        assert!(keyspace.insert(0, b"k", value("v"), None, 0).is_none());
        assert_eq!(keyspace.get(0, b"k", 0).unwrap().value, value("v"));
        assert!(keyspace.get(1, b"k", 0).is_none());
        assert_eq!(
            keyspace.insert(0, b"k", value("w"), None, 0).unwrap().value,
            value("v")
        );
        assert_eq!(keyspace.len(0), 1);
        assert_eq!(keyspace.remove(0, b"k", 0).unwrap().value, value("w"));
        assert!(keyspace.is_empty());
    }

    #[test]
    fn tensor_keys_are_keys() {
        let tensor = || {
            Value::Tensor(Box::new(crate::TensorValue::new(
                "FLOAT",
                vec![1, 2],
                vec![0; 8],
            )))
        };
        let mut keyspace = Keyspace::new();
        keyspace.insert(0, b"t", tensor(), Some(100), 0);
        keyspace.insert(0, b"s", value("v"), None, 0);
        assert!(keyspace.get(1, b"t", 0).is_none());
        assert_eq!(keyspace.get(0, b"t", 0).unwrap().value, tensor());
        let tensors = keyspace.scan(0, 0, 100, 0, |_, entry| {
            entry.value.type_name() == "AI_TENSOR"
        });
        assert_eq!(tensors.keys, vec![CompactBytes::new(b"t")]);
        assert_eq!(keyspace.keys_matching(0, b"*", 0).len(), 2);
        // A string written over a tensor replaces it, and a tensor expires like any key.
        keyspace.insert(0, b"s", tensor(), None, 0);
        assert_eq!(
            keyspace.get(0, b"s", 0).unwrap().value.type_name(),
            "AI_TENSOR"
        );
        assert!(keyspace.get(0, b"t", 100).is_none());
        assert_eq!(keyspace.len(0), 1);
    }

    #[test]
    fn lazy_and_active_expiry() {
        let mut keyspace = Keyspace::new();
        keyspace.insert(0, b"a", value("1"), Some(100), 0);
        keyspace.insert(0, b"b", value("2"), Some(200), 0);
        keyspace.insert(3, b"c", value("3"), Some(150), 0);
        keyspace.insert(0, b"d", value("4"), None, 0);
        assert!(keyspace.get(0, b"a", 99).is_some());
        assert!(keyspace.get(0, b"a", 100).is_none());
        assert_eq!(keyspace.stats().expired_keys, 1);
        assert_eq!(keyspace.expire_cycle(160, 10), 1);
        assert_eq!(keyspace.len(3), 0);
        assert!(keyspace.has_due_expiry(250));
        assert_eq!(keyspace.expire_cycle(250, 10), 1);
        assert_eq!(keyspace.len(0), 1);
        assert!(!keyspace.has_due_expiry(u64::MAX));
    }

    #[test]
    fn scan_visits_every_key_despite_growth() {
        let mut keyspace = Keyspace::new();
        for i in 0..500 {
            keyspace.insert(0, format!("key:{i}").as_bytes(), value("v"), None, 0);
        }
        let mut seen = std::collections::HashSet::new();
        let mut segment = 0;
        let mut step_count = 0;
        loop {
            let step = keyspace.scan(0, segment, 10, 0, |_, _| true);
            seen.extend(step.keys.into_iter().map(|k| k.to_vec()));
            // Grow the table mid-scan: keys present throughout must still all be returned.
            for j in 0..50 {
                keyspace.insert(
                    0,
                    format!("new:{step_count}:{j}").as_bytes(),
                    value("v"),
                    None,
                    0,
                );
            }
            step_count += 1;
            match step.next_segment {
                Some(next) => segment = next,
                None => break,
            }
        }
        for i in 0..500 {
            assert!(
                seen.contains(format!("key:{i}").as_bytes()),
                "key:{i} missed"
            );
        }
    }
}
