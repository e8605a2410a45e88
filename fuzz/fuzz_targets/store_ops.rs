//! ember-store driven by bytes: a small interpreter of keyspace, set and sorted-set operations,
//! each checked against a plain model (a map of keys to byte strings, ordered sets and ordered
//! maps) after every step.
//!
//! The keyspace is used as the server's commands use it: a collection is changed in place through
//! `get_mut` and then `Keyspace::update` (the store's one path for an in-place change); an emptied collection is deleted. A [`KeyObserver`] keeps a
//! mirror of everything it hears (as the RDMA read region does), and the mirror must hold exactly
//! the keys the keyspace stores, with their current values and expiry times.
//!
//! Checked: no panic; every reply equals the model's; `len` counts the live keys and at most the
//! expired ones not yet removed; SCAN returns each live key once; KEYS agrees with the glob over
//! the model; a random key is live; set and sorted-set encodings keep Redis's bounds.
//!
//! When: after each step, the key it touched (its value in full up to `FULL_CHECK_MEMBERS_MAX`
//! members, its mirror entry and expiry) and the database's key counts; after a step that can
//! change other keys (time passing, the expire cycle, FLUSHDB, SWAPDB) every database's keys,
//! mirror and counts; at the end of the input every database in full, RANDOMKEY and SCAN. (The
//! whole database after every step made the target too slow to reach many executions.) A bulk
//! add is one SADD of up to `BULK_ADD_MAX` members: one in-place change, as the server makes it.
#![no_main]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use ember_store::glob::glob_match;
use ember_store::split::SplitBytes;
use ember_store::value::ExpireAtMs;
use ember_store::zset::{AddOptions, AddOutcome, LexBound, Limit, ScoreBound};
use ember_store::{Change, KeyObserver, Keyspace, SetValue, SortedSet, Value, DATABASE_COUNT};
use libfuzzer_sys::arbitrary::{Result as ArbitraryResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use rand::rngs::SmallRng;
use rand::SeedableRng;

/// Databases the ops touch: enough for SWAPDB and per-database counts to matter.
const DB_COUNT_USED: usize = 4;
/// Operations per input, so that one input's cost stays bounded.
const OPS_MAX: usize = 256;
/// Set members added by one bulk add: past the intset bound (512), so conversions happen.
const BULK_ADD_MAX: usize = 600;
/// Collections up to this size are compared in full after every step that touches them; larger
/// ones (bulk adds) by size, and in full at the end of the input.
const FULL_CHECK_MEMBERS_MAX: usize = 128;
/// Keys the ops touch: few, so that ops meet the same keys often.
const KEY_NAMES: [&[u8]; 8] = [
    b"a",
    b"b",
    b"c",
    b"user:1",
    b"user:2",
    b"10",
    b"",
    b"k\x00\xff",
];
/// Members: integers (intset), short and long strings (listpack bounds are 64 bytes).
const MEMBER_NAMES: [&[u8]; 8] = [
    b"1",
    b"-7",
    b"x",
    b"y",
    b"z",
    b"007",
    b"",
    b"a-member-longer-than-sixty-four-bytes-so-that-listpack-is-left!!!!",
];
/// Scores with ties, signed zeros and infinities.
const SCORES: [f64; 8] = [
    0.0,
    -0.0,
    1.0,
    1.5,
    -2.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
    5e-324,
];
/// KEYS patterns.
const PATTERNS: [&[u8]; 6] = [b"*", b"user:*", b"?", b"[a-b]", b"*\\x00*", b"**"];

/// A value as the model holds it.
#[derive(Clone, Debug, PartialEq)]
enum ModelValue {
    Str(Vec<u8>),
    Set(BTreeSet<Vec<u8>>),
    ZSet(BTreeMap<Vec<u8>, f64>),
}

#[derive(Clone, Debug, PartialEq)]
struct ModelEntry {
    value: ModelValue,
    expire_at_ms: ExpireAtMs,
}

/// What the keyspace may still store: live entries, and expired ones it may not have removed.
#[derive(Default)]
struct Model {
    databases: Vec<HashMap<Vec<u8>, ModelEntry>>,
}

impl Model {
    fn live(&self, db: usize, key: &[u8], now_ms: u64) -> Option<&ModelEntry> {
        self.databases[db]
            .get(key)
            .filter(|entry| is_live(entry, now_ms))
    }

    fn live_keys(&self, db: usize, now_ms: u64) -> BTreeSet<Vec<u8>> {
        self.databases[db]
            .iter()
            .filter(|(_, entry)| is_live(entry, now_ms))
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// The keyspace removes an expired entry whenever the key is touched; so does the model.
    fn touch(&mut self, db: usize, key: &[u8], now_ms: u64) {
        if self.databases[db]
            .get(key)
            .is_some_and(|entry| !is_live(entry, now_ms))
        {
            self.databases[db].remove(key);
        }
    }
}

fn is_live(entry: &ModelEntry, now_ms: u64) -> bool {
    entry.expire_at_ms.is_none_or(|at| at > now_ms)
}

/// The model's form of a stored value.
fn model_value(value: &Value) -> ModelValue {
    match value {
        Value::Set(set) => ModelValue::Set(set.iter().map(<[u8]>::to_vec).collect()),
        Value::ZSet(zset) => ModelValue::ZSet(zset.iter().map(|(m, s)| (m.to_vec(), s)).collect()),
        other => {
            assert!(
                other.is_string(),
                "only strings, sets and sorted sets are stored here"
            );
            ModelValue::Str(other.to_vec())
        }
    }
}

/// What the mirror keeps of a value: a string's bytes, a collection's size (a collection's
/// members are compared in the keyspace itself; copying them at every change would make a
/// 600-member SADD quadratic).
#[derive(Clone, Debug, PartialEq)]
enum Summary {
    Str(Vec<u8>),
    Set(usize),
    ZSet(usize),
}

fn summary(value: &Value) -> Summary {
    match value {
        Value::Set(set) => Summary::Set(set.len()),
        Value::ZSet(zset) => Summary::ZSet(zset.len()),
        other => Summary::Str(other.to_vec()),
    }
}

fn model_summary(value: &ModelValue) -> Summary {
    match value {
        ModelValue::Str(bytes) => Summary::Str(bytes.clone()),
        ModelValue::Set(members) => Summary::Set(members.len()),
        ModelValue::ZSet(members) => Summary::ZSet(members.len()),
    }
}

/// Everything the observer heard, applied in order: (summary, expiry) per key.
#[derive(Default)]
struct Mirror {
    databases: Vec<HashMap<Vec<u8>, (Summary, ExpireAtMs)>>,
}

struct MirrorObserver(Rc<RefCell<Mirror>>);

impl KeyObserver for MirrorObserver {
    fn key_written(&mut self, db: usize, key: &[u8], value: &Value, expire_at_ms: ExpireAtMs) {
        self.0.borrow_mut().databases[db].insert(key.to_vec(), (summary(value), expire_at_ms));
    }

    fn key_removed(&mut self, db: usize, key: &[u8]) {
        assert!(
            self.0.borrow_mut().databases[db].remove(key).is_some(),
            "removal of a key never written"
        );
    }

    fn database_flushed(&mut self, db: usize) {
        self.0.borrow_mut().databases[db].clear();
    }

    fn databases_swapped(&mut self, first: usize, second: usize) {
        self.0.borrow_mut().databases.swap(first, second);
    }
}

/// Scores compare with `==` (0 and -0 are the same score; a listpack stores -0 as 0).
fn same_scores(a: &BTreeMap<Vec<u8>, f64>, b: &BTreeMap<Vec<u8>, f64>) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((m1, s1), (m2, s2))| m1 == m2 && s1 == s2)
}

fn same_value(a: &ModelValue, b: &ModelValue) -> bool {
    match (a, b) {
        (ModelValue::ZSet(x), ModelValue::ZSet(y)) => same_scores(x, y),
        _ => a == b,
    }
}

/// The model's sorted set in Redis's order: by score, then by member bytes.
fn ordered(members: &BTreeMap<Vec<u8>, f64>) -> Vec<(Vec<u8>, f64)> {
    let mut list: Vec<(Vec<u8>, f64)> = members.iter().map(|(m, s)| (m.clone(), *s)).collect();
    list.sort_by(|(m1, s1), (m2, s2)| s1.partial_cmp(s2).expect("no NaN").then(m1.cmp(m2)));
    list
}

fn owned(members: Vec<(SplitBytes<'_>, f64)>) -> Vec<(Vec<u8>, f64)> {
    members.into_iter().map(|(m, s)| (m.to_vec(), s)).collect()
}

fn same_list(a: &[(Vec<u8>, f64)], b: &[(Vec<u8>, f64)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((m1, s1), (m2, s2))| m1 == m2 && s1 == s2)
}

/// LIMIT as Redis reads it: a negative offset selects nothing, a negative count means all.
fn apply_limit(list: Vec<(Vec<u8>, f64)>, limit: Limit) -> Vec<(Vec<u8>, f64)> {
    if limit.offset < 0 || limit.count == 0 {
        return Vec::new();
    }
    let skipped = list.into_iter().skip(limit.offset as usize);
    if limit.count < 0 {
        skipped.collect()
    } else {
        skipped.take(limit.count as usize).collect()
    }
}

fn score_in(score: f64, min: ScoreBound, max: ScoreBound) -> bool {
    let above_min = if min.exclusive {
        score > min.value
    } else {
        score >= min.value
    };
    let below_max = if max.exclusive {
        score < max.value
    } else {
        score <= max.value
    };
    above_min && below_max
}

fn lex_in(member: &[u8], min: &LexBound, max: &LexBound) -> bool {
    let above_min = match min {
        LexBound::Min => true,
        LexBound::Max => false,
        LexBound::Inclusive(bound) => member >= bound.as_slice(),
        LexBound::Exclusive(bound) => member > bound.as_slice(),
    };
    let below_max = match max {
        LexBound::Min => false,
        LexBound::Max => true,
        LexBound::Inclusive(bound) => member <= bound.as_slice(),
        LexBound::Exclusive(bound) => member < bound.as_slice(),
    };
    above_min && below_max
}

/// ZADD of one pair, from Redis's documentation of NX, XX, GT, LT and INCR.
fn model_zadd(
    members: &mut BTreeMap<Vec<u8>, f64>,
    member: &[u8],
    score: f64,
    options: AddOptions,
) -> Option<AddOutcome> {
    let Some(&current) = members.get(member) else {
        if options.xx {
            return Some(AddOutcome::Skipped);
        }
        members.insert(member.to_vec(), score);
        return Some(AddOutcome::Added(score));
    };
    if options.nx {
        return Some(AddOutcome::Skipped);
    }
    let new_score = if options.incr { current + score } else { score };
    if new_score.is_nan() {
        return None; // NotANumber: unchanged
    }
    if (options.lt && new_score >= current) || (options.gt && new_score <= current) {
        return Some(AddOutcome::Skipped);
    }
    if new_score == current {
        return Some(AddOutcome::Unchanged(new_score));
    }
    members.insert(member.to_vec(), new_score);
    Some(AddOutcome::Updated(new_score))
}

struct Harness {
    keyspace: Keyspace,
    model: Model,
    mirror: Rc<RefCell<Mirror>>,
    now_ms: u64,
    rng: SmallRng,
}

impl Harness {
    fn new(seed: u64) -> Self {
        let mirror = Rc::new(RefCell::new(Mirror {
            databases: vec![HashMap::new(); DATABASE_COUNT],
        }));
        let mut keyspace = Keyspace::new();
        keyspace.add_observer(Box::new(MirrorObserver(mirror.clone())));
        Self {
            keyspace,
            model: Model {
                databases: vec![HashMap::new(); DATABASE_COUNT],
            },
            mirror,
            now_ms: 1_000_000,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    fn step(&mut self, u: &mut Unstructured<'_>) -> ArbitraryResult<()> {
        let db = u.choose_index(DB_COUNT_USED)?;
        let key = *u.choose(&KEY_NAMES)?;
        let now = self.now_ms;
        let op = u.choose_index(20)?;
        // Ops that can change keys other than `key`: time passing, the expire cycle, FLUSHDB,
        // SWAPDB. After them every database is compared; after the others, `key` and the counts.
        let touches_many = matches!(op, 4..=7);
        match op {
            0 => {
                let bytes: Vec<u8> = if u.arbitrary()? {
                    u.arbitrary::<i64>()?.to_string().into_bytes()
                } else {
                    u.arbitrary()?
                };
                let expire = self.expiry(u)?;
                let previous =
                    self.keyspace
                        .insert(db, key, Value::from_bytes(&bytes), expire, now);
                let expected = self.model.live(db, key, now).cloned();
                assert_eq!(
                    previous.is_some(),
                    expected.is_some(),
                    "SET's previous entry"
                );
                if let (Some(previous), Some(expected)) = (previous, expected) {
                    assert!(same_value(&model_value(&previous.value), &expected.value));
                }
                let entry = ModelEntry {
                    value: ModelValue::Str(bytes.clone()),
                    expire_at_ms: expire,
                };
                self.model.databases[db].insert(key.to_vec(), entry);
                let stored = &self.keyspace.peek(db, key, now).expect("just set").value;
                let canonical = ember_store::parse_canonical_i64(&bytes).is_some();
                assert_eq!(matches!(stored, Value::Int(_)), canonical, "int encoding");
            }
            1 => {
                let found = self.keyspace.get(db, key, now).cloned();
                self.check_found(db, key, found.as_ref());
                self.model.touch(db, key, now);
            }
            2 => {
                let removed = self.keyspace.remove(db, key, now);
                self.check_found(db, key, removed.as_ref());
                self.model.databases[db].remove(key);
            }
            3 => {
                let expire = if u.arbitrary()? {
                    // Any time, past ones included: the key is then expired at once.
                    Some(now.saturating_sub(500) + u.int_in_range(0..=2000)?)
                } else {
                    None
                };
                let done = self.keyspace.set_expire(db, key, expire, now);
                self.model.touch(db, key, now);
                let entry = self.model.databases[db].get_mut(key);
                assert_eq!(done, entry.is_some(), "EXPIRE on a live key");
                if let Some(entry) = entry {
                    entry.expire_at_ms = expire;
                }
            }
            4 => self.now_ms += u.int_in_range(0..=1500)?,
            5 => self.expire_cycle(u.int_in_range(0..=8)?),
            6 => {
                self.keyspace.flush_database(db);
                self.model.databases[db].clear();
            }
            7 => {
                let other = u.choose_index(DB_COUNT_USED)?;
                self.keyspace.swap_databases(db, other);
                self.model.databases.swap(db, other);
            }
            8 => {
                let pattern = *u.choose(&PATTERNS)?;
                let found: BTreeSet<Vec<u8>> = self
                    .keyspace
                    .keys_matching(db, pattern, now)
                    .into_iter()
                    .map(|k| k.to_vec())
                    .collect();
                let expected: BTreeSet<Vec<u8>> = self
                    .model
                    .live_keys(db, now)
                    .into_iter()
                    .filter(|k| pattern == b"*" || glob_match(pattern, k))
                    .collect();
                assert_eq!(
                    found,
                    expected,
                    "KEYS {:?}",
                    String::from_utf8_lossy(pattern)
                );
            }
            9 => self.check_scan(db, u.int_in_range(0..=20)?),
            10 if u.ratio(1, 4)? => {
                let count = u.int_in_range(1..=BULK_ADD_MAX)?;
                let numeric = u.arbitrary::<bool>()?;
                let members: Vec<Vec<u8>> = (0..count)
                    .map(|i| {
                        if numeric {
                            i.to_string().into_bytes()
                        } else {
                            format!("m{i}").into_bytes()
                        }
                    })
                    .collect();
                self.sadd(db, key, &members);
            }
            10 | 11 => {
                let member = *u.choose(&MEMBER_NAMES)?;
                self.sadd(db, key, &[member.to_vec()]);
            }
            12 => self.set_remove(db, key, u)?,
            13 => self.set_query(db, key, u)?,
            14 => self.zadd(db, key, u)?,
            15 => self.zrem(db, key, u)?,
            16..=19 => self.zset_query(db, key, u)?,
            _ => unreachable!(),
        }
        if touches_many {
            (0..DB_COUNT_USED).for_each(|db| self.check_database(db, false));
        } else {
            self.check_counts(db);
            self.check_mirror_key(db, key);
        }
        if self
            .model
            .live(db, key, self.now_ms)
            .is_none_or(|entry| match &entry.value {
                ModelValue::Str(_) => true,
                ModelValue::Set(members) => members.len() <= FULL_CHECK_MEMBERS_MAX,
                ModelValue::ZSet(members) => members.len() <= FULL_CHECK_MEMBERS_MAX,
            })
        {
            self.check_key(db, key);
        }
        Ok(())
    }

    fn expiry(&self, u: &mut Unstructured<'_>) -> ArbitraryResult<ExpireAtMs> {
        Ok(if u.arbitrary()? {
            Some(self.now_ms + u.int_in_range(1..=3000)?)
        } else {
            None
        })
    }

    /// What the keyspace returned for `key` (a get or a remove) against the model.
    fn check_found(&self, db: usize, key: &[u8], found: Option<&ember_store::Entry>) {
        let expected = self.model.live(db, key, self.now_ms);
        assert_eq!(found.is_some(), expected.is_some(), "presence of {key:?}");
        if let (Some(found), Some(expected)) = (found, expected) {
            assert!(same_value(&model_value(&found.value), &expected.value));
            assert_eq!(found.expire_at_ms(), expected.expire_at_ms);
        }
    }

    fn expire_cycle(&mut self, keys_max: usize) {
        let now = self.now_ms;
        let removed = self.keyspace.expire_cycle(now, keys_max);
        assert!(removed <= keys_max);
        if removed < keys_max {
            // Stopped early: nothing due is left anywhere.
            assert!(!self.keyspace.has_due_expiry(now));
            for database in &mut self.model.databases {
                database.retain(|_, entry| is_live(entry, now));
            }
        }
    }

    fn check_scan(&self, db: usize, count: usize) {
        let mut seen = Vec::new();
        let mut segment = 0;
        loop {
            let step = self
                .keyspace
                .scan(db, segment, count, self.now_ms, |_, _| true);
            seen.extend(step.keys.iter().map(|k| k.to_vec()));
            match step.next_segment {
                Some(next) => {
                    assert!(next > segment, "SCAN goes forward");
                    segment = next;
                }
                None => break,
            }
        }
        let unique: BTreeSet<Vec<u8>> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "SCAN returned a key twice");
        assert_eq!(unique, self.model.live_keys(db, self.now_ms), "SCAN's keys");
    }

    /// SADD of one member, as the server's command does it.
    /// SADD key member...: one command, as the server runs it (the set created from the first
    /// member when the key is missing, every member inserted, one in-place change for the rest).
    fn sadd(&mut self, db: usize, key: &[u8], new_members: &[Vec<u8>]) {
        let now = self.now_ms;
        self.model.touch(db, key, now);
        let expected_type = self.model.databases[db]
            .get(key)
            .map(|e| model_summary(&e.value));
        let (first, rest) = new_members.split_first().expect("one member at least");
        let rest = match self.keyspace.get_mut(db, key, now) {
            Some(entry) => {
                let Value::Set(_) = &entry.value else {
                    assert!(!matches!(expected_type, Some(Summary::Set(_))));
                    return; // WRONGTYPE
                };
                new_members
            }
            None => {
                assert!(expected_type.is_none(), "the model has {key:?}");
                // Sized for one member, so that a bulk add converts intset -> listpack -> hashtable.
                let mut set = SetValue::for_members(first, 1);
                assert!(set.insert(first));
                self.keyspace
                    .insert(db, key, Value::Set(Box::new(set)), None, now);
                let entry = ModelEntry {
                    value: ModelValue::Set([first.clone()].into()),
                    expire_at_ms: None,
                };
                self.model.databases[db].insert(key.to_vec(), entry);
                rest
            }
        };
        if rest.is_empty() {
            return;
        }
        let Some(ModelEntry {
            value: ModelValue::Set(members),
            ..
        }) = self.model.databases[db].get_mut(key)
        else {
            panic!("a set where the model has {expected_type:?}");
        };
        let Some(Value::Set(set)) = self.keyspace.get_mut(db, key, now).map(|e| &mut e.value)
        else {
            panic!("the set at {key:?} is gone");
        };
        for member in rest {
            let added = set.insert(member);
            assert_eq!(added, members.insert(member.clone()), "SADD's reply");
        }
        mark_changed(&mut self.keyspace, db, key, now);
    }

    fn set_remove(
        &mut self,
        db: usize,
        key: &[u8],
        u: &mut Unstructured<'_>,
    ) -> ArbitraryResult<()> {
        let now = self.now_ms;
        let pop = u.arbitrary::<bool>()?;
        let member = *u.choose(&MEMBER_NAMES)?;
        self.model.touch(db, key, now);
        let Some(entry) = self.keyspace.get_mut(db, key, now) else {
            return Ok(());
        };
        let Value::Set(set) = &mut entry.value else {
            return Ok(());
        };
        let Some(ModelEntry {
            value: ModelValue::Set(members),
            ..
        }) = self.model.databases[db].get_mut(key)
        else {
            panic!("the model has no set at {key:?}");
        };
        if pop {
            let popped = set
                .pop_random(&mut self.rng)
                .expect("a stored set is never empty");
            assert!(
                members.remove(popped.as_bytes()),
                "SPOP returned a non-member"
            );
        } else {
            assert_eq!(set.remove(member), members.remove(member), "SREM's reply");
        }
        if set.is_empty() {
            self.keyspace.remove(db, key, now);
            self.model.databases[db].remove(key);
        } else {
            mark_changed(&mut self.keyspace, db, key, now);
        }
        Ok(())
    }

    fn set_query(
        &mut self,
        db: usize,
        key: &[u8],
        u: &mut Unstructured<'_>,
    ) -> ArbitraryResult<()> {
        let count = u.int_in_range(0..=10)?;
        let probe = *u.choose(&MEMBER_NAMES)?;
        let now = self.now_ms;
        let Some(Value::Set(set)) = self.keyspace.peek(db, key, now).map(|e| &e.value) else {
            return Ok(());
        };
        let Some(ModelEntry {
            value: ModelValue::Set(members),
            ..
        }) = self.model.live(db, key, now)
        else {
            panic!("the model has no set at {key:?}");
        };
        assert_eq!(set.contains(probe), members.contains(probe), "SISMEMBER");
        let sample = set.random_distinct(count, &mut self.rng);
        assert_eq!(
            sample.len(),
            count.min(members.len()),
            "SRANDMEMBER's count"
        );
        let distinct: BTreeSet<&[u8]> = sample.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            sample.len(),
            "SRANDMEMBER repeated a member"
        );
        assert!(sample.iter().all(|m| members.contains(*m)));
        if let Some(member) = set.random_member(&mut self.rng) {
            assert!(members.contains(member));
        }
        Ok(())
    }

    fn zset_parts(&mut self, u: &mut Unstructured<'_>) -> ArbitraryResult<(Vec<u8>, f64)> {
        let member = u.choose(&MEMBER_NAMES)?.to_vec();
        let score = if u.ratio(1, 4)? {
            let bits_score = f64::from_bits(u.arbitrary()?);
            if bits_score.is_nan() {
                0.0
            } else {
                bits_score
            }
        } else {
            *u.choose(&SCORES)?
        };
        Ok((member, score))
    }

    fn zadd(&mut self, db: usize, key: &[u8], u: &mut Unstructured<'_>) -> ArbitraryResult<()> {
        let (member, score) = self.zset_parts(u)?;
        // Only the combinations ZADD accepts: NX excludes XX, GT and LT; GT excludes LT.
        let options = match u.choose_index(6)? {
            0 => AddOptions::default(),
            1 => AddOptions {
                nx: true,
                ..Default::default()
            },
            2 => AddOptions {
                xx: true,
                ..Default::default()
            },
            3 => AddOptions {
                gt: true,
                xx: u.arbitrary()?,
                ..Default::default()
            },
            4 => AddOptions {
                lt: true,
                xx: u.arbitrary()?,
                ..Default::default()
            },
            _ => AddOptions::default(),
        };
        let options = AddOptions {
            incr: u.arbitrary()?,
            ..options
        };
        let now = self.now_ms;
        self.model.touch(db, key, now);
        let expected_type = self.model.databases[db]
            .get(key)
            .map(|e| model_summary(&e.value));
        match self.keyspace.get_mut(db, key, now) {
            Some(entry) => {
                let Value::ZSet(zset) = &mut entry.value else {
                    assert!(!matches!(expected_type, Some(Summary::ZSet(_))));
                    return Ok(()); // WRONGTYPE
                };
                let outcome = zset.add(&member, score, options).ok();
                mark_changed(&mut self.keyspace, db, key, now);
                let Some(ModelEntry {
                    value: ModelValue::ZSet(members),
                    ..
                }) = self.model.databases[db].get_mut(key)
                else {
                    panic!("a sorted set where the model has {expected_type:?}");
                };
                let expected = model_zadd(members, &member, score, options);
                assert_eq!(outcome, expected, "ZADD {options:?} {score}");
            }
            None => {
                assert!(expected_type.is_none(), "the model has {key:?}");
                let mut zset = SortedSet::for_members(1, member.len());
                let outcome = zset.add(&member, score, options).ok();
                let mut members = BTreeMap::new();
                let expected = model_zadd(&mut members, &member, score, options);
                assert_eq!(outcome, expected, "ZADD {options:?} {score} on a new key");
                if !zset.is_empty() {
                    self.keyspace.insert(db, key, Value::ZSet(zset), None, now);
                    let entry = ModelEntry {
                        value: ModelValue::ZSet(members),
                        expire_at_ms: None,
                    };
                    self.model.databases[db].insert(key.to_vec(), entry);
                }
            }
        }
        Ok(())
    }

    fn zrem(&mut self, db: usize, key: &[u8], u: &mut Unstructured<'_>) -> ArbitraryResult<()> {
        let member = *u.choose(&MEMBER_NAMES)?;
        let now = self.now_ms;
        self.model.touch(db, key, now);
        let Some(entry) = self.keyspace.get_mut(db, key, now) else {
            return Ok(());
        };
        let Value::ZSet(zset) = &mut entry.value else {
            return Ok(());
        };
        let Some(ModelEntry {
            value: ModelValue::ZSet(members),
            ..
        }) = self.model.databases[db].get_mut(key)
        else {
            panic!("the model has no sorted set at {key:?}");
        };
        assert_eq!(
            zset.remove(member),
            members.remove(member).is_some(),
            "ZREM's reply"
        );
        if zset.is_empty() {
            self.keyspace.remove(db, key, now);
            self.model.databases[db].remove(key);
        } else {
            mark_changed(&mut self.keyspace, db, key, now);
        }
        Ok(())
    }

    fn zset_query(
        &mut self,
        db: usize,
        key: &[u8],
        u: &mut Unstructured<'_>,
    ) -> ArbitraryResult<()> {
        let now = self.now_ms;
        let Some(Value::ZSet(zset)) = self.keyspace.peek(db, key, now).map(|e| &e.value) else {
            return Ok(());
        };
        let Some(ModelEntry {
            value: ModelValue::ZSet(members),
            ..
        }) = self.model.live(db, key, now)
        else {
            panic!("the model has no sorted set at {key:?}");
        };
        let list = ordered(members);
        let reverse = u.arbitrary::<bool>()?;
        let index = |i: i64| -> i64 {
            match i.rem_euclid(8) {
                6 => i64::MIN,
                7 => i64::MAX,
                _ => i % 12,
            }
        };
        let limit = Limit {
            offset: if u.ratio(1, 3)? {
                index(u.arbitrary()?)
            } else {
                0
            },
            count: if u.ratio(1, 3)? {
                index(u.arbitrary()?)
            } else {
                -1
            },
        };
        match u.choose_index(4)? {
            0 => {
                // ZRANGE by rank, ZSCORE, ZRANK.
                let (start, stop) = (index(u.arbitrary()?), index(u.arbitrary()?));
                let len = list.len() as i64;
                let from = if start < 0 { start + len } else { start }.max(0);
                let to = if stop < 0 { stop + len } else { stop };
                let mut ranked = list.clone();
                if reverse {
                    ranked.reverse();
                }
                let expected = if from > to || from >= len {
                    Vec::new()
                } else {
                    ranked[from as usize..=(to.min(len - 1)) as usize].to_vec()
                };
                let found = owned(zset.range_by_rank(start, stop, reverse));
                assert!(
                    same_list(&found, &expected),
                    "ZRANGE {start} {stop} rev={reverse}"
                );
                let probe = *u.choose(&MEMBER_NAMES)?;
                let position = list.iter().position(|(m, _)| m == probe);
                let expected_rank = position.map(|at| {
                    let rank = if reverse { list.len() - 1 - at } else { at };
                    (rank, list[at].1)
                });
                assert_eq!(zset.rank(probe, reverse), expected_rank, "ZRANK");
                assert_eq!(zset.score(probe), members.get(probe).copied(), "ZSCORE");
            }
            1 | 2 => {
                // ZRANGE BYSCORE and ZCOUNT.
                let bound = |u: &mut Unstructured<'_>| -> ArbitraryResult<ScoreBound> {
                    Ok(ScoreBound {
                        value: *u.choose(&SCORES)?,
                        exclusive: u.arbitrary()?,
                    })
                };
                let (min, max) = (bound(u)?, bound(u)?);
                let mut in_range: Vec<_> = list
                    .iter()
                    .filter(|(_, s)| score_in(*s, min, max))
                    .cloned()
                    .collect();
                assert_eq!(zset.count_by_score(min, max), in_range.len(), "ZCOUNT");
                if reverse {
                    in_range.reverse();
                }
                let expected = apply_limit(in_range, limit);
                let found = owned(zset.range_by_score(min, max, reverse, limit));
                assert!(
                    same_list(&found, &expected),
                    "ZRANGE BYSCORE {min:?} {max:?} rev={reverse} {limit:?}: {found:?} {expected:?}"
                );
            }
            _ => {
                // ZRANGE BYLEX: Redis defines it for sets whose scores are all equal.
                let first_score = list[0].1;
                if list.iter().any(|(_, s)| *s != first_score) {
                    return Ok(());
                }
                let bound = |u: &mut Unstructured<'_>| -> ArbitraryResult<LexBound> {
                    let member = u.choose(&MEMBER_NAMES)?.to_vec();
                    Ok(match u.choose_index(4)? {
                        0 => LexBound::Min,
                        1 => LexBound::Max,
                        2 => LexBound::Inclusive(member),
                        _ => LexBound::Exclusive(member),
                    })
                };
                let (min, max) = (bound(u)?, bound(u)?);
                let mut in_range: Vec<_> = list
                    .iter()
                    .filter(|(m, _)| lex_in(m, &min, &max))
                    .cloned()
                    .collect();
                if reverse {
                    in_range.reverse();
                }
                let expected = apply_limit(in_range, limit);
                let found = owned(zset.range_by_lex(&min, &max, reverse, limit));
                assert!(same_list(&found, &expected), "ZRANGE BYLEX {min:?} {max:?}");
            }
        }
        Ok(())
    }

    /// `key`'s value and expiry in full, and its encoding's bounds.
    fn check_key(&self, db: usize, key: &[u8]) {
        let now = self.now_ms;
        let entry = self.keyspace.peek(db, key, now);
        let expected = self.model.live(db, key, now);
        assert_eq!(entry.is_some(), expected.is_some(), "presence of {key:?}");
        if let (Some(entry), Some(expected)) = (entry, expected) {
            assert!(
                same_value(&model_value(&entry.value), &expected.value),
                "value of {key:?}"
            );
            assert_eq!(
                entry.expire_at_ms(),
                expected.expire_at_ms,
                "expiry of {key:?}"
            );
            check_encoding(&entry.value);
        }
    }

    /// The keyspace's count of keys in `db` is within the model's bounds, and the mirror holds
    /// as many keys as the keyspace.
    fn check_counts(&self, db: usize) {
        let now = self.now_ms;
        let live = self.model.databases[db]
            .values()
            .filter(|entry| is_live(entry, now))
            .count();
        let stored_max = self.model.databases[db].len();
        let len = self.keyspace.len(db);
        assert!(
            live <= len && len <= stored_max,
            "len {len} outside {live}..={stored_max}"
        );
        assert_eq!(
            self.mirror.borrow().databases[db].len(),
            len,
            "the mirror's key count"
        );
    }

    /// What the observer's mirror heard of `key` agrees with the model, and with the keyspace.
    fn check_mirror_key(&self, db: usize, key: &[u8]) {
        let now = self.now_ms;
        let mirror = self.mirror.borrow();
        let heard = mirror.databases[db].get(key);
        let expected = self.model.databases[db].get(key);
        match (heard, expected) {
            (Some((summary_heard, expire_at_ms)), Some(expected)) => {
                assert_eq!(
                    *summary_heard,
                    model_summary(&expected.value),
                    "mirror of {key:?}"
                );
                assert_eq!(
                    *expire_at_ms, expected.expire_at_ms,
                    "mirror expiry of {key:?}"
                );
            }
            (Some(_), None) => panic!("the mirror holds {key:?}, the model does not"),
            // An expired key the keyspace has not removed yet is not in the mirror only if the
            // keyspace no longer stores it either.
            (None, Some(expected)) => assert!(
                !is_live(expected, now) && self.keyspace.peek(db, key, now).is_none(),
                "the mirror lacks {key:?}"
            ),
            (None, None) => {}
        }
        if let Some(entry) = self.keyspace.peek(db, key, now) {
            assert_eq!(
                heard.map(|(summary_heard, _)| summary_heard),
                Some(&summary(&entry.value)),
                "mirror of stored {key:?}"
            );
            assert_eq!(
                heard.map(|(_, expire_at_ms)| *expire_at_ms),
                Some(entry.expire_at_ms()),
                "mirror expiry of stored {key:?}"
            );
        }
    }

    /// The keyspace, the observer's mirror and the model agree on database `db`: key counts,
    /// expiry times and value summaries, and in `full` every value.
    fn check_database(&self, db: usize, full: bool) {
        let now = self.now_ms;
        let live = self.model.live_keys(db, now);
        let stored_max = self.model.databases[db].len();
        let len = self.keyspace.len(db);
        assert!(
            live.len() <= len && len <= stored_max,
            "len {len} outside {}..={stored_max}",
            live.len()
        );
        let mirror = self.mirror.borrow();
        assert_eq!(mirror.databases[db].len(), len, "the mirror's key count");
        for (key, (heard, expire_at_ms)) in &mirror.databases[db] {
            let expected = self.model.databases[db]
                .get(key)
                .unwrap_or_else(|| panic!("the mirror holds {key:?}, the model does not"));
            assert_eq!(*heard, model_summary(&expected.value), "mirror of {key:?}");
            assert_eq!(
                *expire_at_ms, expected.expire_at_ms,
                "mirror expiry of {key:?}"
            );
        }
        drop(mirror);
        for key in &live {
            if full {
                self.check_key(db, key);
            } else {
                let entry = self
                    .keyspace
                    .peek(db, key, now)
                    .expect("a live key is stored");
                let expected = self.model.live(db, key, now).expect("live");
                assert_eq!(
                    summary(&entry.value),
                    model_summary(&expected.value),
                    "{key:?}"
                );
                assert_eq!(
                    entry.expire_at_ms(),
                    expected.expire_at_ms,
                    "expiry of {key:?}"
                );
            }
        }
    }

    /// RANDOMKEY gives a live key, and nothing only when there is none. Checked at the end of an
    /// input: on a sparse table it walks every segment, too slow for every step.
    fn check_random_key(&mut self, db: usize) {
        let now = self.now_ms;
        let live = self.model.live_keys(db, now);
        let rng = &mut self.rng;
        let random = self
            .keyspace
            .random_key(db, &mut |n| rand::Rng::gen_range(rng, 0..n), now);
        match random {
            Some(key) => assert!(live.contains(key.as_bytes()), "RANDOMKEY gave a dead key"),
            None => assert!(live.is_empty(), "RANDOMKEY found nothing among live keys"),
        }
    }
}

/// The encodings Redis reports keep Redis's bounds.
fn check_encoding(value: &Value) {
    match value {
        Value::Set(set) => {
            let members: Vec<&[u8]> = set.iter().collect();
            match set.encoding_name() {
                "intset" => {
                    assert!(members.len() <= ember_store::set::INTSET_ENTRIES_MAX);
                    assert!(members
                        .iter()
                        .all(|m| ember_store::parse_canonical_i64(m).is_some()));
                }
                "listpack" => {
                    assert!(members.len() <= ember_store::set::LISTPACK_ENTRIES_MAX);
                    assert!(members
                        .iter()
                        .all(|m| m.len() <= ember_store::set::LISTPACK_VALUE_LEN_MAX));
                }
                _ => {}
            }
            let _ = set.heap_len();
        }
        Value::ZSet(zset) => {
            if zset.encoding_name() == "listpack" {
                assert!(zset.len() <= ember_store::zset::LISTPACK_ENTRIES_MAX);
                assert!(zset
                    .iter()
                    .all(|(m, _)| m.len() <= ember_store::zset::LISTPACK_VALUE_LEN_MAX));
            }
            let _ = zset.heap_len();
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let seed = u.arbitrary::<u64>().unwrap_or(0);
    let mut harness = Harness::new(seed);
    for _ in 0..OPS_MAX {
        if u.is_empty() || harness.step(&mut u).is_err() {
            break;
        }
    }
    for db in 0..DB_COUNT_USED {
        harness.check_database(db, true);
        harness.check_random_key(db);
        harness.check_scan(db, 10);
    }
});

/// Tells the keyspace that `key`'s value was changed in place, through [`Keyspace::update`], the
/// store's one path for that (a new version, the observer told).
fn mark_changed(keyspace: &mut Keyspace, db: usize, key: &[u8], now_ms: u64) {
    let _ = keyspace.update(db, key, now_ms, |_| Ok::<_, ()>(((), Change::Modified)));
}
