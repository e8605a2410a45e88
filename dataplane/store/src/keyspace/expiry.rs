//! The expiry index: which keys of a database have a TTL and which of them are due, at about
//! 8 bytes a key.
//!
//! Each database keeps a hashed timing wheel of key handles. A handle is the key's 64-bit hash
//! (the keyspace's own, which also names the key's segment), filed in a bucket that fires at or
//! before the key's expiry. Buckets live in an ordered map by firing time, and their width grows
//! with the distance to the expiry: a key due in `d` milliseconds waits in a bucket of the largest
//! power of two at most `d / 32` (at least 1 ms), so a bucket far ahead is coarse, and firing it
//! files its handles again, in buckets 32 times finer, until the last one fires at the exact
//! millisecond. A key with a one-day TTL is filed about six times in its life; the number of
//! buckets stays small (at most ~64 per power of two of the distance) however the TTLs spread.
//!
//! A firing handle is looked up in the table (every key of that hash, so a 64-bit collision
//! costs nothing but a second look): a key whose expiry passed goes, a key that expires later
//! is filed again, and a handle that finds no key with a TTL is dropped. So the index is not
//! told of removals at all, and of expiry changes only when the new one is earlier than the old
//! (the handle already filed fires in time for a later one, and files it again): DEL, PERSIST,
//! overwrites and EXPIRE that extends a TTL cost nothing here.
//!
//! What a handle that outlived its key costs is bounded: a key deleted and created again with a
//! TTL gets a second handle, and both keep filing themselves while it lives. When the handles
//! outnumber twice the keys with a TTL (plus a quarter of all keys, plus a constant), the
//! database rebuilds its wheel segment by segment, within the active expiry's work budget: the
//! new wheel gets exactly one handle per key with a TTL, the old one keeps serving the segments
//! not scanned yet, and is dropped when the scan ends.

use std::collections::BTreeMap;
use std::hash::BuildHasher;

use super::{Keyspace, DATABASE_COUNT, SEGMENT_COUNT, SEGMENT_SHIFT};
use crate::compact::CompactBytes;

/// A key due in `d` milliseconds waits in a bucket at most `d / GRANULARITY_DIVISOR` wide, so
/// each firing before the last files the handle again about 32 times closer to its expiry.
const GRANULARITY_DIVISOR: u64 = 32;

/// Handles a database may hold beyond twice its keys with a TTL and a quarter of all its keys
/// before it rebuilds its wheel.
const REBUILD_SLACK: usize = 4096;

/// Units of work of the active expiry per key it may remove: a handle looked at is one unit, a
/// segment scanned by a rebuild one unit per [`SLOTS_PER_WORK`] keys.
const WORK_PER_KEY: usize = 4;

/// Keys a rebuild scans per unit of work.
const SLOTS_PER_WORK: usize = 8;

/// Handles tried when sampling a key with a TTL for eviction before scanning for one.
const SAMPLE_TRIES: usize = 16;

/// Handles by firing time.
#[derive(Default)]
pub(super) struct Wheel {
    buckets: BTreeMap<u64, Vec<u64>>,
    handles: usize,
}

impl Wheel {
    /// Bytes of the buckets (a tree entry and a vector each) and their handles, about: counted
    /// from the figures kept, in constant time.
    fn bytes(&self) -> usize {
        // A B-tree entry: the key, the vector's header and the node's share per entry.
        const BUCKET_BYTES: usize = 8 + 24 + 16;
        self.buckets.len() * BUCKET_BYTES + self.handles * std::mem::size_of::<u64>()
    }

    /// Files the handle `hash` of a key expiring at `expire_at`, as seen at `now`.
    fn file(&mut self, hash: u64, expire_at: u64, now: u64) {
        self.buckets
            .entry(fire_time(expire_at, now))
            .or_default()
            .push(hash);
        self.handles += 1;
    }

    /// Takes a handle of a bucket whose firing time has come.
    fn pop_due(&mut self, now: u64) -> Option<u64> {
        let mut first = self.buckets.first_entry()?;
        if *first.key() > now {
            return None;
        }
        let hash = first.get_mut().pop();
        if first.get().is_empty() {
            first.remove();
        }
        if hash.is_some() {
            self.handles -= 1;
        }
        hash
    }

    fn has_due(&self, now: u64) -> bool {
        self.buckets
            .first_key_value()
            .is_some_and(|(at, _)| *at <= now)
    }

    /// A handle of the first bucket at or after a random instant between the first and last
    /// buckets' firing times (`first_draw`), at a random place in it (`second_draw`).
    fn sample(&self, first_draw: u64, second_draw: u64) -> Option<u64> {
        let (first, _) = self.buckets.first_key_value()?;
        let (last, _) = self.buckets.last_key_value()?;
        let span = last - first;
        let at = first
            + if span == u64::MAX {
                first_draw
            } else {
                first_draw % (span + 1)
            };
        let (_, bucket) = self
            .buckets
            .range(at..)
            .next()
            .or_else(|| self.buckets.first_key_value())?;
        bucket
            .get((second_draw % bucket.len().max(1) as u64) as usize)
            .copied()
    }
}

/// When a handle filed at `now` for a key expiring at `expire_at` fires: never after the expiry,
/// and, for a key not yet due, always after `now` (so firing a bucket never files into it).
pub(super) fn fire_time(expire_at: u64, now: u64) -> u64 {
    let width = expire_at.saturating_sub(now) / GRANULARITY_DIVISOR;
    let granularity = if width == 0 {
        1
    } else {
        1 << (63 - width.leading_zeros())
    };
    expire_at & !(granularity - 1)
}

/// A database's keys with a TTL: their count and the wheel that finds the due ones.
#[derive(Default)]
pub(super) struct ExpiryIndex {
    wheel: Wheel,
    /// During a rebuild: the new wheel, and the first segment not yet scanned into it.
    rebuild: Option<(Wheel, usize)>,
    /// Keys of the database with a TTL (expired ones not yet removed included).
    volatile: usize,
}

impl ExpiryIndex {
    /// Keys with a TTL.
    pub(super) fn volatile(&self) -> usize {
        self.volatile
    }

    fn handles(&self) -> usize {
        self.wheel.handles + self.rebuild.as_ref().map_or(0, |(wheel, _)| wheel.handles)
    }

    /// Bytes the index takes (its wheels' buckets and handles), for MEMORY STATS.
    pub(super) fn bytes(&self) -> usize {
        self.wheel.bytes() + self.rebuild.as_ref().map_or(0, |(wheel, _)| wheel.bytes())
    }

    /// The key of hash `hash` (in `segment`) changed its expiry from `previous` to `next` (a new
    /// key has no previous one, a removed key no next one).
    pub(super) fn changed(
        &mut self,
        hash: u64,
        previous: Option<u64>,
        next: Option<u64>,
        now: u64,
    ) {
        match (previous, next) {
            (None, Some(at)) => {
                self.volatile += 1;
                self.file(hash, at, now);
            }
            (Some(_), None) => self.volatile -= 1,
            // The handle filed for the old expiry fires in time for a later one and files it
            // again then; an earlier one needs a handle of its own.
            (Some(old), Some(at)) if at < old => self.file(hash, at, now),
            _ => {}
        }
    }

    fn file(&mut self, hash: u64, expire_at: u64, now: u64) {
        match &mut self.rebuild {
            Some((wheel, next)) if segment_of(hash) < *next => wheel.file(hash, expire_at, now),
            _ => self.wheel.file(hash, expire_at, now),
        }
    }

    /// True when a bucket's firing time has come (a key may be due).
    pub(super) fn has_due(&self, now: u64) -> bool {
        self.wheel.has_due(now) || self.rebuild.as_ref().is_some_and(|(w, _)| w.has_due(now))
    }
}

/// The segment of a key of hash `hash`, as [`Keyspace`] locates it.
fn segment_of(hash: u64) -> usize {
    (hash >> SEGMENT_SHIFT) as usize & (SEGMENT_COUNT - 1)
}

/// What one handle found.
#[derive(Default)]
struct Found {
    /// Keys of its hash whose expiry has passed.
    due: Vec<CompactBytes>,
    /// The earliest expiry of the others with a TTL.
    next: Option<u64>,
}

impl Keyspace {
    /// Active expiry: removes up to `keys_max` keys whose TTL has passed, across databases, in
    /// bounded work (each handle looked at, and each part of a rebuild, counts); returns how many
    /// it removed, or `keys_max` when it stopped at its work bound with buckets still due, so a
    /// caller that gets less than `keys_max` back knows that no key is due anywhere. Keys
    /// nobody reads go this way.
    pub fn expire_cycle(&mut self, now_ms: u64, keys_max: usize) -> usize {
        if crate::value::expiry_suspended() {
            return 0;
        }
        let mut removed = 0;
        let mut work = keys_max.saturating_mul(WORK_PER_KEY);
        for _ in 0..DATABASE_COUNT {
            let db = self.expire_cursor_db;
            // A rebuild gets up to half the work left, before the due handles: keys it finds
            // due are filed due in the new wheel, and go in the loop below.
            let mut rebuild_work = work / 2;
            self.rebuild_step(db, now_ms, &mut rebuild_work);
            work -= work / 2 - rebuild_work;
            loop {
                if removed >= keys_max {
                    return removed;
                }
                let index = &mut self.databases[db].expiry;
                if work == 0 {
                    if index.has_due(now_ms) {
                        return keys_max; // More is due: the caller may call again.
                    }
                    break;
                }
                let (hash, from_rebuild) = match index.wheel.pop_due(now_ms) {
                    Some(hash) => (hash, false),
                    None => match index.rebuild.as_mut().and_then(|(w, _)| w.pop_due(now_ms)) {
                        Some(hash) => (hash, true),
                        None => break,
                    },
                };
                work -= 1;
                removed += self.expire_handle(db, hash, from_rebuild, now_ms);
            }
            self.expire_cursor_db = (db + 1) % DATABASE_COUNT;
        }
        removed.min(keys_max)
    }

    /// Looks up the keys of a due handle: removes those whose expiry passed and files the
    /// handle again for the others; returns how many it removed.
    fn expire_handle(&mut self, db: usize, hash: u64, from_rebuild: bool, now_ms: u64) -> usize {
        let database = &mut self.databases[db];
        let segment = segment_of(hash);
        if let Some((_, next)) = &database.expiry.rebuild {
            if !from_rebuild && segment < *next {
                return 0; // The new wheel has this segment's keys.
            }
        }
        let Some(table) = database.segments.get(segment) else {
            return 0;
        };
        let mut found = Found::default();
        for slot in table.iter_hash(hash) {
            let Some(at) = slot.entry.expire_at_ms() else {
                continue;
            };
            if self.hasher.hash_one(slot.key.as_bytes()) != hash {
                continue;
            }
            if at <= now_ms {
                found.due.push(slot.key.clone());
            } else {
                found.next = Some(found.next.map_or(at, |next: u64| next.min(at)));
            }
        }
        if let Some(at) = found.next {
            let index = &mut database.expiry;
            match (&mut index.rebuild, from_rebuild) {
                (Some((wheel, _)), true) => wheel.file(hash, at, now_ms),
                _ => index.wheel.file(hash, at, now_ms),
            }
        }
        let removed = found.due.len();
        for key in found.due {
            let entry = self.remove_entry(db, &key);
            self.expired_removed(db, &key, entry);
        }
        removed
    }

    /// Starts a rebuild of `db`'s wheel when its handles are mostly stale, and scans segments
    /// into the new one while `work` lasts.
    fn rebuild_step(&mut self, db: usize, now_ms: u64, work: &mut usize) {
        let database = &mut self.databases[db];
        let index = &mut database.expiry;
        if index.rebuild.is_none()
            && index.handles() > 2 * index.volatile + database.len / 4 + REBUILD_SLACK
        {
            index.rebuild = Some((Wheel::default(), 0));
        }
        let Some((wheel, next)) = &mut index.rebuild else {
            return;
        };
        while *next < SEGMENT_COUNT && *work > 0 {
            if let Some(table) = database.segments.get(*next) {
                for slot in table.iter() {
                    if let Some(at) = slot.entry.expire_at_ms() {
                        wheel.file(self.hasher.hash_one(slot.key.as_bytes()), at, now_ms);
                    }
                }
                *work = work.saturating_sub(table.len() / SLOTS_PER_WORK + 1);
            }
            *next += 1;
        }
        if *next >= SEGMENT_COUNT {
            let (wheel, _) = index.rebuild.take().expect("rebuilding");
            index.wheel = wheel;
        }
    }

    /// True when some key's TTL may have passed while it is still stored: after an
    /// [`Keyspace::expire_cycle`] that returned less than it was allowed, false until time moves.
    pub fn has_due_expiry(&self, now_ms: u64) -> bool {
        self.databases
            .iter()
            .any(|database| database.expiry.has_due(now_ms))
    }

    /// A random key of `db` with a TTL, and its expiry: a random handle of the wheel, or, when
    /// handles that outlived their keys keep missing, the first key with a TTL from a random
    /// segment on.
    pub(super) fn sample_volatile_key(
        &self,
        db: usize,
        mut draw: impl FnMut() -> u64,
    ) -> Option<(CompactBytes, u64)> {
        let database = &self.databases[db];
        let index = &database.expiry;
        if index.volatile == 0 {
            return None;
        }
        for _ in 0..SAMPLE_TRIES {
            let wheel = match &index.rebuild {
                Some((new, _)) if index.wheel.handles == 0 || draw() % 2 == 0 => new,
                _ => &index.wheel,
            };
            let Some(hash) = wheel.sample(draw(), draw()) else {
                continue;
            };
            let found = database.segments.get(segment_of(hash)).and_then(|table| {
                table.iter_hash(hash).find(|slot| {
                    slot.entry.expire_at_ms().is_some()
                        && self.hasher.hash_one(slot.key.as_bytes()) == hash
                })
            });
            if let Some(slot) = found {
                return Some((slot.key.clone(), slot.entry.expire_at_ms()?));
            }
        }
        let start = (draw() % SEGMENT_COUNT as u64) as usize;
        (0..database.segments.len())
            .map(|offset| &database.segments[(start + offset) % database.segments.len()])
            .flat_map(|table| table.iter())
            .find_map(|slot| Some((slot.key.clone(), slot.entry.expire_at_ms()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    #[test]
    fn fire_times_come_before_the_expiry_and_after_now() {
        for now in [0u64, 1, 999, 1_700_000_000_000] {
            for distance in [0u64, 1, 31, 32, 33, 1000, 65_535, 86_400_000, 1 << 50] {
                let expire_at = now + distance;
                let at = fire_time(expire_at, now);
                assert!(at <= expire_at, "{now} {distance}");
                if distance > 0 {
                    assert!(at > now, "{now} {distance}: fires at {at}");
                }
                // Within 1/32 of the distance of the expiry.
                assert!(
                    expire_at - at <= distance / GRANULARITY_DIVISOR,
                    "{now} {distance}"
                );
            }
        }
        assert_eq!(fire_time(5, 10), 5);
    }

    fn handles(keyspace: &Keyspace, db: usize) -> usize {
        keyspace.databases[db].expiry.handles()
    }

    #[test]
    fn keys_go_at_their_expiry_whatever_their_distance() {
        let mut keyspace = Keyspace::new();
        let now = 1_000_000;
        let distances = [1u64, 50, 999, 60_000, 3_600_000, 86_400_000];
        for (i, distance) in distances.iter().enumerate() {
            let key = format!("k{i}");
            keyspace.insert(0, key.as_bytes(), Value::Int(1), Some(now + distance), now);
        }
        for (i, distance) in distances.iter().enumerate() {
            // A millisecond early: nothing of it goes (refiling is work, not removal).
            while keyspace.expire_cycle(now + distance - 1, 64) == 64 {}
            assert_eq!(keyspace.len(0), distances.len() - i, "before {distance}");
            while keyspace.expire_cycle(now + distance, 64) == 64 {}
            assert_eq!(keyspace.len(0), distances.len() - i - 1, "at {distance}");
        }
        assert_eq!(handles(&keyspace, 0), 0);
        assert_eq!(keyspace.database_info(0).expires, 0);
    }

    /// Bytes the segments of `db` have allocated for their buckets.
    fn table_bytes(keyspace: &Keyspace, db: usize) -> usize {
        keyspace.databases[db]
            .segments
            .iter()
            .map(|table| table.allocation_size())
            .sum()
    }

    #[test]
    fn an_expiry_storm_gives_the_tables_back() {
        // 200,000 keys due in the same millisecond and 100 without a TTL: once the active expiry
        // has removed them, the segments are back to the size of what is left, and the keys
        // left are all found (a shrink rehashes them).
        let mut keyspace = Keyspace::new();
        for i in 0..200_000u64 {
            let key = format!("storm:{i}");
            keyspace.insert(0, key.as_bytes(), Value::Int(1), Some(5_000), 0);
        }
        for i in 0..100u64 {
            keyspace.insert(0, format!("kept:{i}").as_bytes(), Value::Int(1), None, 0);
        }
        let full = table_bytes(&keyspace, 0);
        assert!(
            full > 200_000 * 8,
            "{full} bytes of buckets for 200,100 keys"
        );
        while keyspace.expire_cycle(5_000, 1_000) == 1_000 {}
        assert_eq!(keyspace.len(0), 100);
        let left = table_bytes(&keyspace, 0);
        assert!(
            left * 20 < full,
            "{left} bytes of buckets left of {full} for 100 keys"
        );
        for i in 0..100u64 {
            assert!(keyspace
                .peek(0, format!("kept:{i}").as_bytes(), 5_000)
                .is_some());
        }
    }

    #[test]
    fn changes_of_expiry_are_followed() {
        let mut keyspace = Keyspace::new();
        keyspace.insert(0, b"later", Value::Int(1), Some(100), 0);
        keyspace.insert(0, b"sooner", Value::Int(1), Some(10_000), 0);
        keyspace.insert(0, b"persisted", Value::Int(1), Some(100), 0);
        keyspace.insert(0, b"overwritten", Value::Int(1), Some(100), 0);
        assert!(keyspace.set_expire(0, b"later", Some(5_000), 0));
        assert!(keyspace.set_expire(0, b"sooner", Some(200), 0));
        assert!(keyspace.set_expire(0, b"persisted", None, 0));
        keyspace.insert(0, b"overwritten", Value::Int(2), None, 0);
        assert_eq!(keyspace.database_info(0).expires, 2);
        assert_eq!(keyspace.expire_cycle(199, 10), 0);
        assert_eq!(keyspace.expire_cycle(200, 10), 1);
        assert!(keyspace.peek(0, b"sooner", 0).is_none());
        assert_eq!(keyspace.expire_cycle(4_999, 10), 0);
        assert!(keyspace.peek(0, b"later", 0).is_some());
        assert_eq!(keyspace.expire_cycle(5_000, 10), 1);
        assert_eq!(keyspace.len(0), 2);
        // The handle of the sooner key's old expiry is dropped when it fires.
        assert_eq!(handles(&keyspace, 0), 1);
        assert_eq!(keyspace.expire_cycle(10_000, 10), 0);
        assert_eq!(handles(&keyspace, 0), 0);
        assert!(!keyspace.has_due_expiry(u64::MAX));
    }

    #[test]
    fn extending_a_ttl_files_nothing() {
        let mut keyspace = Keyspace::new();
        // SET EX and EXPIRE of the same TTL, again and again: the expiry only moves later.
        for i in 0..100u64 {
            keyspace.insert(0, b"session", Value::Int(1), Some(1_000 + i), i);
            assert!(keyspace.set_expire(0, b"session", Some(1_001 + i), i));
        }
        assert_eq!(handles(&keyspace, 0), 1);
        while keyspace.expire_cycle(1_099, 64) == 64 {}
        assert_eq!(keyspace.len(0), 1);
        assert_eq!(keyspace.expire_cycle(1_100, 64), 1);
        assert_eq!(keyspace.len(0), 0);
    }

    #[test]
    fn handles_of_deleted_keys_are_bounded_by_a_rebuild() {
        // A key deleted and created again with a TTL, many times: every creation files a
        // handle, and the ones that outlived their key keep filing themselves while it lives.
        let mut keyspace = Keyspace::new();
        let day = 86_400_000;
        let mut now = 0;
        for round in 0..20_000u64 {
            let key = format!("k{}", round % 16);
            keyspace.remove(0, key.as_bytes(), now);
            keyspace.insert(0, key.as_bytes(), Value::Int(1), Some(now + day), now);
            now += 10;
            if round % 100 == 0 {
                while keyspace.expire_cycle(now, 64) == 64 {}
            }
        }
        assert_eq!(keyspace.database_info(0).expires, 16);
        let bound = 2 * 16 + 16 / 4 + REBUILD_SLACK + 100;
        assert!(
            handles(&keyspace, 0) <= bound,
            "{} handles for 16 keys",
            handles(&keyspace, 0)
        );
        // And every key still goes at its expiry.
        while keyspace.expire_cycle(now + day, 64) == 64 {}
        assert_eq!(keyspace.len(0), 0);
    }

    #[test]
    fn volatile_sampling_finds_a_key_among_stale_handles() {
        // 2,000 keys with a TTL deleted (their handles stay filed) and one left: sampling
        // misses the stale handles, then falls back to a scan, and still finds the one key.
        let mut keyspace = Keyspace::new();
        for i in 0..2000u64 {
            let key = format!("gone{i}");
            keyspace.insert(0, key.as_bytes(), Value::Int(1), Some(10_000 + i), 0);
            keyspace.remove(0, key.as_bytes(), 0);
        }
        keyspace.insert(0, b"plain", Value::Int(1), None, 0);
        keyspace.insert(0, b"kept", Value::Int(1), Some(50_000), 0);
        let mut state = 7u64;
        let mut draw = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20 {
            let (key, at) = keyspace.sample_volatile_key(0, &mut draw).expect("one key");
            assert_eq!((key.as_bytes(), at), (&b"kept"[..], 50_000));
        }
        keyspace.remove(0, b"kept", 0);
        assert!(keyspace.sample_volatile_key(0, &mut draw).is_none());
    }

    #[test]
    fn a_rebuild_keeps_every_key_with_a_ttl_found() {
        let mut keyspace = Keyspace::new();
        for i in 0..3000u64 {
            let key = format!("k{i}");
            for _ in 0..5 {
                keyspace.insert(0, key.as_bytes(), Value::Int(1), Some(1_000 + i), 0);
                keyspace.remove(0, key.as_bytes(), 0);
            }
            keyspace.insert(0, key.as_bytes(), Value::Int(1), Some(1_000 + i), 0);
        }
        keyspace.insert(0, b"persistent", Value::Int(1), None, 0);
        // 18,000 handles for 3,000 keys: the first cycle starts a rebuild, and small cycles
        // leave it half done while keys change and expire.
        keyspace.expire_cycle(0, 1);
        assert!(keyspace.databases[0].expiry.rebuild.is_some());
        keyspace.insert(0, b"new", Value::Int(1), Some(500), 0);
        assert!(keyspace.set_expire(0, b"k5", Some(400), 0));
        assert!(keyspace.set_expire(0, b"k6", None, 0));
        let mut now = 0;
        while keyspace.len(0) > 2 {
            now += 1;
            if keyspace.expire_cycle(now, 2) < 2 {
                // Stopped short: nothing is due, in either wheel.
                assert!(!keyspace.has_due_expiry(now), "at {now}");
            }
            assert!(now < 5_000, "{} keys left", keyspace.len(0));
        }
        assert!(keyspace.databases[0].expiry.rebuild.is_none());
        let left: Vec<_> = ["k6", "persistent"]
            .iter()
            .filter(|key| keyspace.peek(0, key.as_bytes(), now).is_some())
            .collect();
        assert_eq!(left.len(), 2);
        assert_eq!(keyspace.database_info(0).expires, 0);
    }
}
