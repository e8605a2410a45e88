//! Active expiry of hash fields (Redis 7.4's per-field TTL): fields nobody reads still go.
//!
//! Reads skip due fields and writes remove the ones they meet (see [`crate::hash`]); this pass
//! removes the rest. Each database keeps the set of hash keys that may hold fields with a TTL,
//! added to whenever such a hash is written ([`Keyspace::update`], [`Keyspace::insert`]) and
//! pruned here when a key turns out to have none left, is gone, or holds another type. A pass
//! visits a bounded number of those keys, resuming after the last one visited, and removes a
//! bounded number of fields per key, so its work stays within the shard's expiry budget
//! however large the hashes are. A hash whose last field expires goes with its key, as in
//! Redis.

use std::ops::Bound;

use super::{Keyspace, DATABASE_COUNT};
use crate::compact::CompactBytes;
use crate::value::Value;

/// True for a hash that has at least one field with a TTL.
pub(super) fn has_field_ttl(value: &Value) -> bool {
    matches!(value, Value::Hash(hash) if hash.volatile_len() > 0)
}

/// What one key's visit found.
enum Visit {
    /// The key holds no field with a TTL any more (or is gone): stop tracking it.
    Untrack,
    /// Fields were removed and the hash lives on with more TTLs to watch.
    Removed(usize),
    /// The last field went, and the key with it.
    Emptied(usize),
}

impl Keyspace {
    /// Starts watching `key` for active field expiry.
    pub(super) fn track_field_expiry(&mut self, db: usize, key: &[u8]) {
        let database = &mut self.databases[db];
        if !database.volatile_hashes.contains(key) {
            database.volatile_hashes.insert(CompactBytes::new(key));
        }
    }

    /// Hash keys of `db` watched for active field expiry (some may have no TTL left until the
    /// next pass looks at them).
    pub fn volatile_hash_count(&self, db: usize) -> usize {
        self.databases[db].volatile_hashes.len()
    }

    /// Active field expiry: in every database, visits up to `keys_max` hash keys that may hold
    /// fields with a TTL, removing up to `fields_per_key_max` due fields from each (looking at
    /// no more than that many fields per key); deletes a key whose hash empties. Returns how many
    /// fields it removed.
    pub fn expire_fields_cycle(
        &mut self,
        now_ms: u64,
        keys_max: usize,
        fields_per_key_max: usize,
    ) -> usize {
        let mut removed = 0;
        for db in 0..DATABASE_COUNT {
            if self.databases[db].volatile_hashes.is_empty() {
                continue;
            }
            for key in self.next_volatile_hashes(db, keys_max) {
                match self.visit_volatile_hash(db, &key, now_ms, fields_per_key_max) {
                    Visit::Untrack => {
                        self.databases[db].volatile_hashes.remove(&key);
                    }
                    Visit::Removed(count) => {
                        removed += count;
                        // Only a real removal is a change: WATCH must not see a bare visit.
                        if count > 0 {
                            self.value_changed(db, &key);
                            self.note_fields_expired(db, key.as_bytes(), false);
                        }
                    }
                    Visit::Emptied(count) => {
                        removed += count;
                        self.databases[db].volatile_hashes.remove(&key);
                        self.remove_entry(db, &key);
                        // Counted as the fields' removal above is.
                        self.stats.changes += 1;
                        self.note_fields_expired(db, key.as_bytes(), true);
                    }
                }
            }
        }
        removed
    }

    /// Up to `keys_max` watched keys of `db` after the cursor, wrapping around once; moves the
    /// cursor to the last one.
    fn next_volatile_hashes(&mut self, db: usize, keys_max: usize) -> Vec<CompactBytes> {
        let database = &mut self.databases[db];
        let start = match &database.volatile_hash_cursor {
            Some(cursor) => Bound::Excluded(cursor.clone()),
            None => Bound::Unbounded,
        };
        let mut keys: Vec<CompactBytes> = database
            .volatile_hashes
            .range((start, Bound::Unbounded))
            .take(keys_max)
            .cloned()
            .collect();
        if keys.len() < keys_max {
            let first_taken = keys.first().cloned();
            let wrapped = database
                .volatile_hashes
                .iter()
                .take_while(|key| Some(*key) != first_taken.as_ref())
                .take(keys_max - keys.len())
                .cloned()
                .collect::<Vec<_>>();
            keys.extend(wrapped);
            keys.dedup();
        }
        database.volatile_hash_cursor = keys.last().cloned();
        keys
    }

    fn visit_volatile_hash(
        &mut self,
        db: usize,
        key: &[u8],
        now_ms: u64,
        fields_per_key_max: usize,
    ) -> Visit {
        let Some(entry) = self.find_live_mut(db, key, now_ms) else {
            return Visit::Untrack;
        };
        let Value::Hash(hash) = &mut entry.value else {
            return Visit::Untrack;
        };
        let removed = hash.remove_expired(now_ms, fields_per_key_max);
        if hash.is_empty() {
            return Visit::Emptied(removed);
        }
        if removed > 0 {
            // Untracked at the next visit if this removed the last field with a TTL.
            return Visit::Removed(removed);
        }
        if hash.volatile_len() == 0 {
            Visit::Untrack
        } else {
            Visit::Removed(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::hash::{ExpireCondition, HashLimits, HashValue};
    use crate::keyspace::Keyspace;
    use crate::value::Value;

    fn hash_with_ttls(fields: &[(&str, Option<u64>)]) -> Value {
        let limits = HashLimits::default();
        let mut hash = HashValue::new();
        for (name, at) in fields {
            hash.insert(name.as_bytes(), b"v", &limits, 0);
            if let Some(at) = at {
                hash.expire_field(name.as_bytes(), *at, ExpireCondition::Always, 0);
            }
        }
        Value::Hash(hash)
    }

    #[test]
    fn due_fields_go_and_empty_hashes_take_their_key() {
        struct Case {
            name: &'static str,
            fields: &'static [(&'static str, Option<u64>)],
            now_ms: u64,
            removed: usize,
            left: Option<usize>,
            watched: usize,
        }
        let cases = [
            Case {
                name: "no ttl: never watched",
                fields: &[("a", None)],
                now_ms: 100,
                removed: 0,
                left: Some(1),
                watched: 0,
            },
            Case {
                name: "not due yet",
                fields: &[("a", Some(200)), ("b", None)],
                now_ms: 100,
                removed: 0,
                left: Some(2),
                watched: 1,
            },
            Case {
                name: "one due, one kept: no ttl left, so no longer watched",
                fields: &[("a", Some(50)), ("b", None)],
                now_ms: 100,
                removed: 1,
                left: Some(1),
                watched: 0,
            },
            Case {
                name: "all due: key deleted",
                fields: &[("a", Some(50)), ("b", Some(60))],
                now_ms: 100,
                removed: 2,
                left: None,
                watched: 0,
            },
        ];
        for case in cases {
            let mut keyspace = Keyspace::new();
            keyspace.insert(0, b"h", hash_with_ttls(case.fields), None, 0);
            let removed = keyspace.expire_fields_cycle(case.now_ms, 16, 16);
            let left = match keyspace.peek(0, b"h", case.now_ms) {
                Some(entry) => match &entry.value {
                    Value::Hash(hash) => Some(hash.len()),
                    _ => panic!("{}: not a hash", case.name),
                },
                None => None,
            };
            assert_eq!((removed, left), (case.removed, case.left), "{}", case.name);
            // A second pass prunes keys with no TTL left.
            keyspace.expire_fields_cycle(case.now_ms, 16, 16);
            assert_eq!(
                keyspace.volatile_hash_count(0),
                case.watched,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn a_visit_that_removes_nothing_is_no_change() {
        let mut keyspace = Keyspace::new();
        keyspace.insert(0, b"h", hash_with_ttls(&[("a", Some(500))]), None, 0);
        let version = keyspace.version(0, b"h", 0);
        assert_eq!(keyspace.expire_fields_cycle(100, 16, 16), 0);
        assert_eq!(
            keyspace.version(0, b"h", 100),
            version,
            "WATCH sees no change"
        );
        assert_eq!(keyspace.expire_fields_cycle(600, 16, 16), 1);
        assert_eq!(
            keyspace.version(0, b"h", 600),
            None,
            "the emptied key is gone"
        );
    }

    #[test]
    fn passes_resume_after_the_last_key_visited() {
        let mut keyspace = Keyspace::new();
        for name in ["a", "b", "c", "d", "e"] {
            keyspace.insert(
                0,
                name.as_bytes(),
                hash_with_ttls(&[("f", Some(10)), ("g", None)]),
                None,
                0,
            );
        }
        let mut removed = 0;
        for _ in 0..3 {
            removed += keyspace.expire_fields_cycle(100, 2, 16);
        }
        assert_eq!(removed, 5, "three passes of two keys cover all five");
    }
}
