//! A point-in-time copy of the keyspace without `fork`: BGSAVE's snapshot.
//!
//! [`Keyspace::begin_snapshot`] marks every segment of every non-empty database pending and
//! notes the moment. From then on, the first write to a pending segment (an insert, an update, a
//! removal, an expiry change, a flush) encodes the whole segment as it was before the write
//! ([`Keyspace::before_write`]); [`Keyspace::snapshot_step`] encodes the others a few at a time
//! between requests. Every segment is encoded exactly once, in its state at the moment of the
//! snapshot, so the result equals a copy taken then, while the shard keeps serving: the pause
//! is a segment's encoding (a few hundred keys), not the dataset's. Keys due to expire by the
//! snapshot's moment are left out; one that expires later (or a hash field that does) may be
//! gone before its segment is encoded, which a loader would drop anyway.

use super::{is_expired, Keyspace, DATABASE_COUNT, SEGMENT_COUNT};
use crate::dump::Section;

const WORDS: usize = SEGMENT_COUNT / 64;

/// The encoding under way.
pub(super) struct SnapshotProgress {
    now_ms: u64,
    /// Per database, a bit per segment still to encode.
    pending: Vec<[u64; WORDS]>,
    sections: Vec<Section>,
    /// Where [`Keyspace::snapshot_step`] looks next: `db * SEGMENT_COUNT + segment`.
    cursor: usize,
    /// The keyspace's change counter when the snapshot began.
    changes: u64,
    /// Keys looked at so far (encoded, or left out as expired), for progress reports.
    visited: u64,
}

impl SnapshotProgress {
    /// Clears `segment`'s pending bit; true when it was set.
    fn claim(&mut self, db: usize, segment: usize) -> bool {
        let (word, bit) = (segment / 64, 1u64 << (segment % 64));
        let pending = &mut self.pending[db][word];
        let was = *pending & bit != 0;
        *pending &= !bit;
        was
    }
}

/// What a finished snapshot holds: a section per non-empty database, and the keyspace's change
/// counter at its moment (INFO's `rdb_changes_since_last_save` counts from it).
#[derive(Debug)]
pub struct Snapshot {
    /// The encoded keys, a section per database.
    pub sections: Vec<Section>,
    /// [`super::KeyspaceStats::changes`] at the snapshot's moment.
    pub changes: u64,
}

impl Keyspace {
    /// Starts a snapshot of every key live at `now_ms`; false (nothing changes) when one is
    /// already under way.
    pub fn begin_snapshot(&mut self, now_ms: u64) -> bool {
        if self.snapshot.is_some() {
            return false;
        }
        let pending = self
            .databases
            .iter()
            .map(|database| {
                if database.len == 0 {
                    [0; WORDS]
                } else {
                    [u64::MAX; WORDS]
                }
            })
            .collect();
        self.snapshot = Some(Box::new(SnapshotProgress {
            now_ms,
            pending,
            sections: (0..DATABASE_COUNT).map(Section::new).collect(),
            cursor: 0,
            changes: self.stats.changes,
            visited: 0,
        }));
        true
    }

    /// True while a snapshot is under way.
    pub fn snapshot_in_progress(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Keys the snapshot under way has looked at so far (0 when none is under way): with the
    /// key count at its start, its progress.
    pub fn snapshot_keys_visited(&self) -> u64 {
        self.snapshot
            .as_ref()
            .map_or(0, |progress| progress.visited)
    }

    /// Encodes pending segments until they held at least `keys` keys (one segment at least);
    /// true when none is left (then [`Keyspace::finish_snapshot`] hands the result over without
    /// more work).
    pub fn snapshot_step(&mut self, keys: usize) -> bool {
        let mut encoded = 0;
        let mut first = true;
        loop {
            let Some(progress) = self.snapshot.as_mut() else {
                return true;
            };
            // Skip whole words of finished segments.
            while progress.cursor < DATABASE_COUNT * SEGMENT_COUNT {
                let (db, segment) = (
                    progress.cursor / SEGMENT_COUNT,
                    progress.cursor % SEGMENT_COUNT,
                );
                if progress.pending[db][segment / 64] == 0 {
                    progress.cursor = (progress.cursor / 64 + 1) * 64;
                } else if progress.pending[db][segment / 64] & (1 << (segment % 64)) == 0 {
                    progress.cursor += 1;
                } else {
                    break;
                }
            }
            if progress.cursor >= DATABASE_COUNT * SEGMENT_COUNT {
                return true;
            }
            if !first && encoded >= keys {
                return false;
            }
            first = false;
            let at = progress.cursor;
            encoded += self.encode_segment(at / SEGMENT_COUNT, at % SEGMENT_COUNT);
        }
    }

    /// Ends the snapshot, encoding what is still pending; `None` when none was under way.
    pub fn finish_snapshot(&mut self) -> Option<Snapshot> {
        while !self.snapshot_step(usize::MAX) {}
        let progress = self.snapshot.take()?;
        Some(Snapshot {
            sections: progress
                .sections
                .into_iter()
                .filter(|section| !section.is_empty() || section.skipped() > 0)
                .collect(),
            changes: progress.changes,
        })
    }

    /// Before `key` of `db` changes: its segment is encoded first if the snapshot still needs
    /// it. One branch when no snapshot is under way.
    #[inline]
    pub(super) fn before_write(&mut self, db: usize, key: &[u8]) {
        if self.snapshot.is_some() {
            let (_, segment) = self.locate(key);
            self.encode_segment(db, segment);
        }
    }

    /// Before every key of `db` changes at once (a flush, a swap): all its pending segments.
    pub(super) fn before_database_write(&mut self, db: usize) {
        if self.snapshot.is_some() {
            for segment in 0..SEGMENT_COUNT {
                self.encode_segment(db, segment);
            }
        }
    }

    /// Encodes segment `segment` of `db` if it is pending; the keys it held.
    #[cold]
    fn encode_segment(&mut self, db: usize, segment: usize) -> usize {
        let Some(progress) = self.snapshot.as_mut() else {
            return 0;
        };
        if !progress.claim(db, segment) {
            return 0;
        }
        let Some(table) = self.databases[db].segments.get(segment) else {
            return 0;
        };
        let now_ms = progress.now_ms;
        progress.visited += table.len() as u64;
        let section = &mut progress.sections[db];
        for slot in table.iter() {
            if !is_expired(&slot.entry, now_ms) {
                section.push(
                    slot.key.as_bytes(),
                    &slot.entry.value,
                    slot.entry.expire_at_ms(),
                    now_ms,
                );
            }
        }
        table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump::{read_rdb_file, RdbWriter, RestoreLimits};
    use crate::value::Value;

    /// The keys a snapshot holds, decoded: (db, key, value bytes) sorted.
    fn decode(snapshot: &Snapshot) -> Vec<(u64, Vec<u8>, Vec<u8>)> {
        let mut writer = RdbWriter::start(Vec::new(), 10, &[]).unwrap();
        for section in &snapshot.sections {
            writer
                .database(section.db(), section.keys(), section.expires())
                .unwrap();
            writer.section(section).unwrap();
        }
        let file = writer.finish().unwrap();
        let mut keys: Vec<_> = read_rdb_file(&file, &RestoreLimits::default(), 0)
            .unwrap()
            .keys
            .into_iter()
            .map(|key| {
                let Value::Str(bytes) = key.value else {
                    panic!("strings only")
                };
                (key.db, key.key, bytes.to_vec())
            })
            .collect();
        keys.sort();
        keys
    }

    fn fill(keyspace: &mut Keyspace, db: usize, count: usize) {
        for i in 0..count {
            keyspace.insert(
                db,
                format!("key:{i}").as_bytes(),
                Value::from_bytes(format!("v{i}").as_bytes()),
                None,
                0,
            );
        }
    }

    /// Writes of every kind while the snapshot is under way, between its steps: the result is
    /// the keyspace as it was at the start, and the keyspace itself has every write.
    #[test]
    fn a_snapshot_under_writes_is_the_keyspace_at_its_start() {
        let mut keyspace = Keyspace::new();
        fill(&mut keyspace, 0, 5_000);
        fill(&mut keyspace, 2, 100);
        keyspace.insert(0, b"due", Value::from_bytes(b"x"), Some(50), 0);
        let mut expected = Vec::new();
        for (db, count) in [(0u64, 5_000), (2, 100)] {
            for i in 0..count {
                expected.push((
                    db,
                    format!("key:{i}").into_bytes(),
                    format!("v{i}").into_bytes(),
                ));
            }
        }
        expected.sort();
        assert!(keyspace.begin_snapshot(100));
        assert!(!keyspace.begin_snapshot(100), "one at a time");
        let mut round = 0;
        while !keyspace.snapshot_step(64) {
            round += 1;
            let i = round * 37 % 5_000;
            let key = format!("key:{i}");
            keyspace.insert(0, key.as_bytes(), Value::from_bytes(b"changed"), None, 100);
            keyspace.remove(0, format!("key:{}", (i + 1) % 5_000).as_bytes(), 100);
            keyspace.insert(
                0,
                format!("new:{round}").as_bytes(),
                Value::from_bytes(b"n"),
                None,
                100,
            );
            keyspace.set_expire(
                0,
                format!("key:{}", (i + 2) % 5_000).as_bytes(),
                Some(7),
                100,
            );
            if round == 5 {
                keyspace.flush_database(2);
            }
        }
        assert!(round > 10, "the snapshot took {round} steps");
        let snapshot = keyspace.finish_snapshot().unwrap();
        assert!(!keyspace.snapshot_in_progress());
        assert_eq!(decode(&snapshot), expected);
        assert_eq!(keyspace.len(2), 0);
        assert!(keyspace
            .peek(0, format!("new:{round}").as_bytes(), 100)
            .is_some());
    }

    /// Without writes, finishing at once encodes everything; a second snapshot starts afresh.
    #[test]
    fn finishing_encodes_what_is_pending() {
        let mut keyspace = Keyspace::new();
        fill(&mut keyspace, 5, 300);
        assert!(keyspace.finish_snapshot().is_none());
        assert!(keyspace.begin_snapshot(0));
        assert!(!keyspace.snapshot_step(1));
        let first = keyspace.finish_snapshot().unwrap();
        assert_eq!(decode(&first).len(), 300);
        assert_eq!(first.sections.len(), 1);
        assert!(keyspace.begin_snapshot(0));
        assert_eq!(decode(&keyspace.finish_snapshot().unwrap()), decode(&first));
    }
}
