//! Hash values: fields with a value each and, as in Redis 7.4, an optional expiry per field
//! (HSET, HGET, HINCRBY, HRANDFIELD, HSCAN, HEXPIRE...).
//!
//! While the hash is small (Redis's `listpack` size class) its fields live packed in one
//! buffer, searched linearly and kept in insertion order as a listpack keeps them (see
//! `packed.rs`). Past `hash-max-listpack-entries` fields, or once a field or value is longer
//! than `hash-max-listpack-value`, they move to a [`RecordTable`] (Redis's `hashtable`): names
//! and values packed in one arena, found through a hash table of 4-byte positions; removal
//! swaps the last field into the hole, and the dense positions give HRANDFIELD a uniform random
//! field in O(1). Expiries there live in a vector beside the positions, allocated only once a
//! field of the hash is given one.
//!
//! A field whose expiry is due (at or before `now_ms`, as keys expire in [`crate::Keyspace`]) is
//! absent to every read; writes remove the due fields they meet, and
//! [`HashValue::remove_expired`] removes due fields within a bound of work.
//!
//! ```
//! use ember_store::hash::{HashLimits, HashValue};
//!
//! let limits = HashLimits::default();
//! let mut hash = HashValue::new();
//! assert!(hash.insert(b"name", b"ember", &limits, 0));
//! assert_eq!(hash.incr_by(b"visits", 5, &limits, 0), Ok(5));
//! assert_eq!(hash.get(b"name", 0), Some(&b"ember"[..]));
//! assert_eq!(hash.encoding_name(), "listpack");
//! ```

mod expiry;
mod increment;
mod packed;
mod random;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;

use crate::compact::CompactBytes;
use crate::records::RecordTable;
use crate::split::SplitBytes;
use packed::{FieldRef, Packed};

pub use expiry::{ExpireCondition, ExpireOutcome, FieldExpiry, PersistOutcome};

/// `hash-max-listpack-entries`'s default: Redis keeps up to this many fields packed.
pub const LISTPACK_ENTRIES_MAX_DEFAULT: usize = 128;
/// `hash-max-listpack-value`'s default: the longest field or value Redis keeps packed, in bytes.
pub const LISTPACK_VALUE_LEN_MAX_DEFAULT: usize = 64;

/// The two settings that decide when a hash leaves the packed size class (CONFIG's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLimits {
    /// `hash-max-listpack-entries`.
    pub listpack_entries_max: usize,
    /// `hash-max-listpack-value`, in bytes.
    pub listpack_value_len_max: usize,
}

impl Default for HashLimits {
    fn default() -> Self {
        Self {
            listpack_entries_max: LISTPACK_ENTRIES_MAX_DEFAULT,
            listpack_value_len_max: LISTPACK_VALUE_LEN_MAX_DEFAULT,
        }
    }
}

/// HINCRBY and HINCRBYFLOAT failures; Display is Redis's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashError {
    /// HINCRBY on a value that is not a canonical 64-bit integer.
    NotAnInteger,
    /// HINCRBY past the 64-bit range.
    Overflow,
    /// HINCRBYFLOAT on a value that is not a number.
    NotAFloat,
    /// HINCRBYFLOAT whose result is not finite.
    NotFinite,
}

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAnInteger => "ERR hash value is not an integer",
            Self::Overflow => "ERR increment or decrement would overflow",
            Self::NotAFloat => "ERR hash value is not a float",
            Self::NotFinite => "ERR increment would produce NaN or Infinity",
        })
    }
}

impl std::error::Error for HashError {}

/// What Redis would report for the same history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashEncoding {
    /// Few, short fields, none ever given an expiry.
    Listpack,
    /// Few, short fields, with per-field expiry metadata (Redis 7.4's `listpackex`).
    ListpackEx,
    /// Anything else.
    Hashtable,
}

/// What happens to a field's expiry when its value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldTtl {
    /// Drop it (HSET, HSETNX, HMSET, HSETEX without KEEPTTL).
    Clear,
    /// Keep it (HINCRBY, HINCRBYFLOAT, HSETEX KEEPTTL).
    Keep,
    /// Expire at this Unix time in milliseconds (HSETEX EX/PX/EXAT/PXAT).
    At(u64),
}

/// A field's `expire_at_ms` when it has none. Time 0 can stand for "none": a field given a
/// time already due is deleted, never stored with it. (An `Option` would add 8 bytes a field.)
const NO_EXPIRY: u64 = 0;

/// The two size classes.
#[derive(Clone)]
enum Repr {
    /// One buffer, searched linearly, in insertion order: Redis's listpack, whose size class
    /// (at most `hash-max-listpack-entries` short fields) keeps the scans short.
    Packed(Packed),
    /// Records in an arena and a hash table of positions, by name; boxed, so that a packed
    /// hash's `HashValue` stays 16 bytes.
    Table(Box<Table>),
}

/// The table size class.
#[derive(Clone)]
struct Table {
    /// Names and their values; a position here is a field's position in the hash.
    records: RecordTable<true>,
    /// Each position's expiry ([`NO_EXPIRY`] for none), or empty while no field has had one:
    /// 8 bytes a field only for hashes that use per-field expiry.
    expire_at_ms: Vec<u64>,
    /// The hash's counters (see [`HashValue`]).
    counters: [u32; 3],
}

impl Table {
    fn field(&self, at: usize) -> FieldRef<'_> {
        let (name, value) = self.records.get(at);
        FieldRef {
            name: SplitBytes::whole(name),
            value,
            expire_at_ms: self
                .expire_at_ms
                .get(at)
                .copied()
                .filter(|&at_ms| at_ms != NO_EXPIRY),
        }
    }

    fn fields(&self) -> impl Iterator<Item = FieldRef<'_>> + '_ {
        (0..self.records.len()).map(|at| self.field(at))
    }

    /// Sets the expiry of position `at`, allocating the expiry vector on first use.
    fn set_expiry(&mut self, at: usize, expire_at_ms: Option<u64>) {
        if self.expire_at_ms.is_empty() {
            if expire_at_ms.is_none() {
                return;
            }
            self.expire_at_ms = vec![NO_EXPIRY; self.records.len()];
        }
        self.expire_at_ms[at] = expire_at_ms.unwrap_or(NO_EXPIRY);
    }

    fn push(&mut self, name: &[u8], value: &[u8]) {
        self.records.push(name, value);
        if !self.expire_at_ms.is_empty() {
            self.expire_at_ms.push(NO_EXPIRY);
        }
    }

    fn swap_remove(&mut self, at: usize) {
        self.records.swap_remove(at);
        if !self.expire_at_ms.is_empty() {
            self.expire_at_ms.swap_remove(at);
        }
    }
}

/// A hash: 16 bytes, and while packed one exactly sized allocation. Its three counters live in
/// the packed buffer's header or in the table's box: the fields with an expiry, where the next
/// [`HashValue::remove_expired`] resumes, and whether any field was ever given an expiry
/// (Redis's `listpackex` never turns back).
#[derive(Clone)]
pub struct HashValue {
    repr: Repr,
}

/// The counters' places.
const VOLATILE_COUNT: usize = 0;
const EXPIRY_CURSOR: usize = 1;
const HAD_FIELD_TTL: usize = 2;

impl Default for HashValue {
    fn default() -> Self {
        Self::new()
    }
}

impl HashValue {
    /// The records of a table-class hash (a packed one is one buffer: nothing to prefetch).
    pub(crate) fn record_table(&self) -> Option<&RecordTable<true>> {
        match &self.repr {
            Repr::Table(table) => Some(&table.records),
            Repr::Packed(_) => None,
        }
    }

    /// An empty hash in the packed size class.
    pub fn new() -> Self {
        Self {
            repr: Repr::Packed(Packed::default()),
        }
    }

    fn counters(&self) -> [u32; 3] {
        match &self.repr {
            Repr::Packed(packed) => packed.counters(),
            Repr::Table(table) => table.counters,
        }
    }

    fn set_counter(&mut self, counter: usize, value: u32) {
        match &mut self.repr {
            Repr::Packed(packed) => {
                let mut counters = packed.counters();
                counters[counter] = value;
                packed.set_counters(counters);
            }
            Repr::Table(table) => table.counters[counter] = value,
        }
    }

    /// Fields with an expiry.
    fn volatile_count(&self) -> u32 {
        self.counters()[VOLATILE_COUNT]
    }

    fn set_volatile_count(&mut self, count: u32) {
        self.set_counter(VOLATILE_COUNT, count);
    }

    /// Where the next [`HashValue::remove_expired`] resumes.
    fn expiry_cursor(&self) -> u32 {
        self.counters()[EXPIRY_CURSOR]
    }

    fn set_expiry_cursor(&mut self, cursor: u32) {
        self.set_counter(EXPIRY_CURSOR, cursor);
    }

    /// True once any field was given an expiry.
    fn had_field_ttl(&self) -> bool {
        self.counters()[HAD_FIELD_TTL] != 0
    }

    /// Fields stored, due ones not yet removed included (what Redis's HLEN counts).
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(packed) => packed.len(),
            Repr::Table(table) => table.records.len(),
        }
    }

    /// True when no field is stored (the keyspace never keeps such a hash).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every stored field, due ones included, in storage order.
    fn all_fields(&self) -> impl Iterator<Item = FieldRef<'_>> + '_ {
        let (packed, table) = match &self.repr {
            Repr::Packed(packed) => (Some(packed.iter()), None),
            Repr::Table(table) => (None, Some(table.fields())),
        };
        packed
            .into_iter()
            .flatten()
            .chain(table.into_iter().flatten())
    }

    /// The field at position `at` (O(at) while packed).
    fn field_at(&self, at: usize) -> FieldRef<'_> {
        match &self.repr {
            Repr::Packed(packed) => packed.get(at),
            Repr::Table(table) => table.field(at),
        }
    }

    /// Fields not due at `now_ms`.
    pub fn live_len(&self, now_ms: u64) -> usize {
        if self.volatile_count() == 0 {
            return self.len();
        }
        self.all_fields().filter(|f| !f.is_due(now_ms)).count()
    }

    fn position(&self, name: &[u8]) -> Option<usize> {
        match &self.repr {
            Repr::Packed(packed) => packed.position(name),
            Repr::Table(table) => table.records.position(name),
        }
    }

    /// The position of `name` when it is there and not due; a due one is removed.
    fn live_position_mut(&mut self, name: &[u8], now_ms: u64) -> Option<usize> {
        let at = self.position(name)?;
        if self.field_at(at).is_due(now_ms) {
            self.remove_at(at);
            return None;
        }
        Some(at)
    }

    fn live_field(&self, name: &[u8], now_ms: u64) -> Option<FieldRef<'_>> {
        let field = match &self.repr {
            Repr::Packed(packed) => packed.find(name)?.1,
            Repr::Table(table) => table.field(table.records.position(name)?),
        };
        (!field.is_due(now_ms)).then_some(field)
    }

    /// HGET: the value of `name`, unless absent or due.
    pub fn get(&self, name: &[u8], now_ms: u64) -> Option<&[u8]> {
        self.live_field(name, now_ms).map(|f| f.value)
    }

    /// HEXISTS.
    pub fn contains(&self, name: &[u8], now_ms: u64) -> bool {
        self.live_field(name, now_ms).is_some()
    }

    /// HSTRLEN: the value's length, 0 when absent.
    pub fn value_len(&self, name: &[u8], now_ms: u64) -> usize {
        self.get(name, now_ms).map_or(0, <[u8]>::len)
    }

    /// HGETALL, HKEYS, HVALS: the live fields and values (insertion order while packed). A
    /// packed hash's later names are stored against the first one's, in two pieces (see
    /// `packed`).
    pub fn iter(&self, now_ms: u64) -> impl Iterator<Item = (SplitBytes<'_>, &[u8])> + '_ {
        self.all_fields()
            .filter(move |f| !f.is_due(now_ms))
            .map(|f| (f.name, f.value))
    }

    /// The live fields with their expiry, in storage order (DUMP).
    pub(crate) fn fields_with_expiry(
        &self,
        now_ms: u64,
    ) -> impl Iterator<Item = (Cow<'_, [u8]>, &[u8], Option<u64>)> + '_ {
        self.all_fields()
            .filter(move |f| !f.is_due(now_ms))
            .map(|f| (f.name.bytes(), f.value, f.expire_at_ms))
    }

    /// Leaves the packed size class before a write of these names and values when one of them
    /// is too long, as Redis's HSET / HMSET check all their arguments first
    /// (`hashTypeTryConversion`). HSETNX does not call it: Redis converts only when it sets.
    pub fn prepare_for<'a>(
        &mut self,
        arguments: impl IntoIterator<Item = &'a [u8]>,
        limits: &HashLimits,
    ) {
        if matches!(self.repr, Repr::Packed(_))
            && arguments
                .into_iter()
                .any(|argument| argument.len() > limits.listpack_value_len_max)
        {
            self.build_index();
        }
    }

    /// Converts the packed size class to the table.
    fn build_index(&mut self) {
        let Repr::Packed(packed) = &self.repr else {
            return;
        };
        let mut records =
            RecordTable::with_capacity(packed.len(), packed.heap_len() / packed.len().max(1));
        let mut expire_at_ms = Vec::new();
        for field in packed.iter() {
            records.push(&field.name.bytes(), field.value);
            expire_at_ms.push(field.expire_at_ms.unwrap_or(NO_EXPIRY));
        }
        if expire_at_ms.iter().all(|&at_ms| at_ms == NO_EXPIRY) {
            expire_at_ms = Vec::new();
        }
        self.repr = Repr::Table(Box::new(Table {
            records,
            expire_at_ms,
            counters: packed.counters(),
        }));
    }

    /// HSET of one field: sets `name` to `value` with `ttl` deciding its expiry; true when the
    /// field is new (a due field counts as new). An expiry already due removes the field.
    pub fn set(
        &mut self,
        name: &[u8],
        value: &[u8],
        ttl: FieldTtl,
        limits: &HashLimits,
        now_ms: u64,
    ) -> bool {
        if matches!(self.repr, Repr::Packed(_))
            && (name.len() > limits.listpack_value_len_max
                || value.len() > limits.listpack_value_len_max)
        {
            self.build_index();
        }
        let is_new = match self.live_position_mut(name, now_ms) {
            Some(at) => {
                let expiry = match ttl {
                    FieldTtl::Keep => self.field_at(at).expire_at_ms,
                    FieldTtl::Clear | FieldTtl::At(_) => None,
                };
                self.write_at(at, value, expiry);
                false
            }
            None => {
                self.push_field(name, value);
                true
            }
        };
        if let FieldTtl::At(at_ms) = ttl {
            let at = self.position(name).expect("just written");
            if at_ms <= now_ms && !crate::value::expiry_suspended() {
                self.remove_at(at);
            } else {
                self.set_expiry_at(at, Some(at_ms));
            }
        }
        if matches!(self.repr, Repr::Packed(_)) && self.len() > limits.listpack_entries_max {
            self.build_index();
        }
        is_new
    }

    /// HSET's common form: sets `name` to `value` and drops its expiry; true when new.
    pub fn insert(&mut self, name: &[u8], value: &[u8], limits: &HashLimits, now_ms: u64) -> bool {
        self.set(name, value, FieldTtl::Clear, limits, now_ms)
    }

    /// HSETNX: sets `name` only when it is absent (or due); true when it did.
    pub fn insert_if_absent(
        &mut self,
        name: &[u8],
        value: &[u8],
        limits: &HashLimits,
        now_ms: u64,
    ) -> bool {
        if self.live_position_mut(name, now_ms).is_some() {
            return false;
        }
        self.set(name, value, FieldTtl::Clear, limits, now_ms)
    }

    fn push_field(&mut self, name: &[u8], value: &[u8]) {
        match &mut self.repr {
            Repr::Packed(packed) => packed.push(name, value),
            Repr::Table(table) => table.push(name, value),
        }
    }

    /// Writes the value and expiry of the field at `at`, keeping the expiry count right.
    fn write_at(&mut self, at: usize, value: &[u8], expire_at_ms: Option<u64>) {
        let before = self.field_at(at).expire_at_ms;
        match (before.is_some(), expire_at_ms.is_some()) {
            (false, true) => self.set_volatile_count(self.volatile_count() + 1),
            (true, false) => self.set_volatile_count(self.volatile_count() - 1),
            _ => {}
        }
        match &mut self.repr {
            // Adds the expiry tags to every field the first time one has an expiry.
            Repr::Packed(packed) => packed.replace(at, value, expire_at_ms),
            Repr::Table(table) => {
                if table.records.get(at).1 != value {
                    table.records.set_value(at, value);
                }
                table.set_expiry(at, expire_at_ms);
            }
        }
        if expire_at_ms.is_some() {
            self.set_counter(HAD_FIELD_TTL, 1);
        }
    }

    fn set_expiry_at(&mut self, at: usize, expire_at_ms: Option<u64>) {
        let value = self.field_at(at).value.to_vec();
        self.write_at(at, &value, expire_at_ms);
    }

    /// HDEL of one field: true when it was stored.
    ///
    /// A due field not yet removed counts as there, as in Redis 7.4 (its tests check that HDEL
    /// of an expired field answers 1: checking expiry first was judged not worth the cost).
    pub fn remove(&mut self, name: &[u8]) -> bool {
        match self.position(name) {
            Some(at) => {
                self.remove_at(at);
                true
            }
            None => false,
        }
    }

    /// HGETDEL of one field: its value when it was there and not due.
    pub fn take(&mut self, name: &[u8], now_ms: u64) -> Option<CompactBytes> {
        let at = self.live_position_mut(name, now_ms)?;
        Some(self.remove_at(at))
    }

    /// Removes the field at `at`; its value.
    fn remove_at(&mut self, at: usize) -> CompactBytes {
        if self.field_at(at).expire_at_ms.is_some() {
            self.set_volatile_count(self.volatile_count() - 1);
        }
        match &mut self.repr {
            // Packed: keep the order, as deleting from a listpack does.
            Repr::Packed(packed) => CompactBytes::from_vec(packed.remove(at).1),
            Repr::Table(table) => {
                let value = CompactBytes::new(table.records.get(at).1);
                table.swap_remove(at);
                value
            }
        }
    }

    /// HSCAN: from `cursor` (0 to start), the live fields among the next `count` stored ones
    /// (so possibly none), and the cursor to continue with (0 when done). A packed hash answers
    /// whole in one call, as Redis does. Otherwise fields come in the order of their hash, and the cursor is the
    /// next hash to visit, so every field present for the whole scan is returned exactly once
    /// however the hash changes in between. Each call costs O(n log count).
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        now_ms: u64,
    ) -> (u64, Vec<(Cow<'_, [u8]>, &[u8])>) {
        let Repr::Table(table) = &self.repr else {
            let fields = self.iter(now_ms).map(|(name, value)| (name.bytes(), value));
            return (0, fields.collect());
        };
        let records = &table.records;
        // Due fields take part in the selection and are left out of the answer, so a call's
        // work stays bounded by `count` and may answer nothing, as Redis's bucket walk does.
        let mut pending: Vec<(u64, usize)> = (0..records.len())
            .map(|at| (records.hash_key(records.key(at)), at))
            .filter(|&(hash, _)| hash >= cursor)
            .collect();
        let count = count.max(1);
        let next_cursor = if pending.len() > count {
            pending.select_nth_unstable(count - 1);
            let boundary = pending[count - 1].0;
            // Fields sharing the boundary's hash go together, since the cursor cannot split them.
            let (mut taken, rest): (Vec<_>, Vec<_>) =
                pending.into_iter().partition(|&(hash, _)| hash <= boundary);
            taken.sort_unstable();
            pending = taken;
            if rest.is_empty() {
                0
            } else {
                boundary.wrapping_add(1)
            }
        } else {
            0
        };
        let found = pending
            .into_iter()
            .map(|(_, at)| table.field(at))
            .filter(|field| !field.is_due(now_ms))
            .map(|field| (field.name.bytes(), field.value))
            .collect();
        (next_cursor, found)
    }

    /// OBJECT ENCODING's answer, as Redis 7.4 would give it for the same history.
    pub fn encoding_name(&self) -> &'static str {
        match self.encoding() {
            HashEncoding::Listpack => "listpack",
            HashEncoding::ListpackEx => "listpackex",
            HashEncoding::Hashtable => "hashtable",
        }
    }

    /// The encoding Redis would report.
    pub fn encoding(&self) -> HashEncoding {
        match (&self.repr, self.had_field_ttl()) {
            (Repr::Table(_), _) => HashEncoding::Hashtable,
            (Repr::Packed(_), true) => HashEncoding::ListpackEx,
            (Repr::Packed(_), false) => HashEncoding::Listpack,
        }
    }

    /// Rough heap bytes: the packed buffer, or the fields' own heap, their slots and the index.
    pub fn heap_len(&self) -> usize {
        match &self.repr {
            Repr::Packed(packed) => packed.heap_len(),
            Repr::Table(table) => {
                std::mem::size_of::<Table>()
                    + table.records.heap_len()
                    + table.expire_at_ms.capacity() * std::mem::size_of::<u64>()
            }
        }
    }
}

impl PartialEq for HashValue {
    /// Same fields, values and expiries (order and encoding aside).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.all_fields().all(|f| {
                other
                    .position(&f.name.bytes())
                    .is_some_and(|at| other.field_at(at) == f)
            })
    }
}

impl fmt::Debug for HashValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.all_fields().map(|field| {
                (
                    String::from_utf8_lossy(&field.name.bytes()).into_owned(),
                    String::from_utf8_lossy(field.value),
                )
            }))
            .finish()
    }
}
