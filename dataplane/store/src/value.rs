//! Values and entries.

use crate::compact::CompactBytes;
use crate::hash::HashValue;
use crate::list::ListValue;
use crate::probabilistic::{BloomChain, CountMinSketch, CuckooFilter, TopK};
use crate::set::SetValue;
use crate::stream::StreamValue;
use crate::tensor::TensorValue;
use crate::zset::SortedSet;

/// A stored value. Strings that are canonical integers are kept as integers, as Redis's `int`
/// encoding does, so INCR needs no parse and the value no heap. Collections are boxed so that
/// every entry stays as small as a string's, except hashes, sorted sets and lists: they are 16
/// bytes (a packed buffer with its counts in its header, or a box of the large class) and sit
/// in the value itself, so that a small one is a single allocation, as Redis's listpack is.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string value whose text is the canonical form of this integer.
    Int(i64),
    /// Any other string value.
    Str(CompactBytes),
    /// A set (never empty in a keyspace: the last SREM or SPOP deletes the key).
    Set(Box<SetValue>),
    /// A sorted set (never empty in a keyspace).
    ZSet(SortedSet),
    /// A hash (never empty in a keyspace: the last HDEL, or the last field expiring, deletes the
    /// key).
    Hash(HashValue),
    /// A list (never empty in a keyspace).
    List(ListValue),
    /// A stream (may be empty: XDEL and XTRIM keep the key, as in Redis).
    Stream(Box<StreamValue>),
    /// A RedisAI tensor (AI.TENSORSET), opaque to the store.
    Tensor(Box<TensorValue>),
    /// A RedisBloom scalable Bloom filter (BF.*).
    Bloom(Box<BloomChain>),
    /// A RedisBloom cuckoo filter (CF.*).
    Cuckoo(Box<CuckooFilter>),
    /// A RedisBloom count-min sketch (CMS.*).
    CountMin(Box<CountMinSketch>),
    /// A RedisBloom top-k (TOPK.*).
    TopK(Box<TopK>),
}

/// Free effort ([`Value::free_effort`]) above which a value is freed in the background, Redis's
/// `LAZYFREE_THRESHOLD`.
pub const LAZYFREE_THRESHOLD: usize = 64;

/// Longest string that may be kept as an integer: 20 characters, `i64::MIN`'s length.
const INT_TEXT_LEN_MAX: usize = 20;

impl Value {
    /// The value for string `bytes`: an integer when `bytes` is its canonical text.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        if bytes.len() <= INT_TEXT_LEN_MAX {
            if let Some(int) = parse_canonical_i64(bytes) {
                return Self::Int(int);
            }
        }
        Self::Str(CompactBytes::new(bytes))
    }

    /// Like [`Value::from_bytes`], taking ownership.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        if bytes.len() <= INT_TEXT_LEN_MAX {
            if let Some(int) = parse_canonical_i64(&bytes) {
                return Self::Int(int);
            }
        }
        Self::Str(CompactBytes::from_vec(bytes))
    }

    /// The Redis type name (TYPE's reply).
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Int(_) | Self::Str(_) => "string",
            Self::Set(_) => "set",
            Self::ZSet(_) => "zset",
            Self::Hash(_) => "hash",
            Self::List(_) => "list",
            Self::Stream(_) => "stream",
            // RedisAI registers its tensor module type as "AI_TENSOR" (models are "AI__MODEL"),
            // and Redis answers TYPE with a module type's registered name.
            Self::Tensor(_) => "AI_TENSOR",
            // RedisBloom's registered module type names.
            Self::Bloom(_) => "MBbloom--",
            Self::Cuckoo(_) => "MBbloomCF",
            Self::CountMin(_) => "CMSk-TYPE",
            Self::TopK(_) => "TopK-TYPE",
        }
    }

    /// True for a string value (integer or bytes): what string commands may read.
    pub fn is_string(&self) -> bool {
        matches!(self, Self::Int(_) | Self::Str(_))
    }

    /// How much work dropping the value is, counted as Redis's lazy free counts it
    /// (`lazyfreeGetFreeEffort`): an element each for a collection of the large class, a node
    /// each for a quicklist, a block each (and a group each with its pending entries) for a
    /// stream, and 1 for a string or a packed collection (one allocation). Above
    /// [`LAZYFREE_THRESHOLD`] UNLINK and the ASYNC flushes free it in the background.
    pub fn free_effort(&self) -> usize {
        match self {
            Self::Set(set) if set.encoding() == crate::set::SetEncoding::Hashtable => set.len(),
            Self::ZSet(zset) if zset.encoding() == crate::zset::ZSetEncoding::Skiplist => {
                zset.len()
            }
            Self::Hash(hash) if hash.encoding() == crate::hash::HashEncoding::Hashtable => {
                hash.len()
            }
            Self::List(list) => list.node_count(),
            Self::Stream(stream) => stream.free_effort(),
            _ => 1,
        }
    }

    /// The OBJECT ENCODING name, as Redis would report it for the same value.
    pub fn encoding_name(&self) -> &'static str {
        match self {
            Self::Int(_) => "int",
            Self::Str(bytes) if bytes.len() <= 44 => "embstr",
            Self::Str(_) => "raw",
            Self::Set(set) => set.encoding_name(),
            Self::ZSet(zset) => zset.encoding_name(),
            Self::Hash(hash) => hash.encoding_name(),
            Self::List(list) => list.encoding_name(),
            Self::Stream(_) => "stream",
            // Redis reports every module value with the `raw` object encoding.
            Self::Tensor(_)
            | Self::Bloom(_)
            | Self::Cuckoo(_)
            | Self::CountMin(_)
            | Self::TopK(_) => "raw",
        }
    }

    /// Appends the string form of the value to `out`. A collection or tensor has none and
    /// appends nothing: string commands check [`Value::is_string`] first and answer WRONGTYPE.
    pub fn write_bytes(&self, out: &mut Vec<u8>) {
        match self {
            Self::Int(int) => out.extend_from_slice(itoa_buffer(*int).as_bytes()),
            Self::Str(bytes) => out.extend_from_slice(bytes),
            _ => {}
        }
    }

    /// The string form of the value as an owned vector (empty for a collection, see
    /// [`Value::write_bytes`]).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_bytes(&mut out);
        out
    }

    /// Length of the string form (STRLEN); 0 for a collection or tensor.
    pub fn string_len(&self) -> usize {
        match self {
            Self::Int(int) => itoa_buffer(*int).len(),
            Self::Str(bytes) => bytes.len(),
            _ => 0,
        }
    }

    /// Rough bytes used, for memory estimates (the allocator's figure is the true one).
    pub fn heap_len(&self) -> usize {
        match self {
            Self::Int(_) => 0,
            Self::Str(bytes) => bytes.heap_len(),
            Self::Set(set) => std::mem::size_of::<SetValue>() + set.heap_len(),
            Self::ZSet(zset) => zset.heap_len(),
            Self::Hash(hash) => hash.heap_len(),
            Self::List(list) => list.heap_len(),
            Self::Stream(stream) => std::mem::size_of::<StreamValue>() + stream.heap_len(),
            Self::Tensor(tensor) => std::mem::size_of::<TensorValue>() + tensor.heap_len(),
            Self::Bloom(filter) => filter.memory_bytes(),
            Self::Cuckoo(filter) => filter.memory_bytes(),
            Self::CountMin(sketch) => sketch.memory_bytes(),
            Self::TopK(top) => top.memory_bytes(),
        }
    }
}

fn itoa_buffer(value: i64) -> String {
    value.to_string()
}

/// Parses `bytes` as an i64 only when `bytes` is exactly the integer's canonical text.
pub fn parse_canonical_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > INT_TEXT_LEN_MAX {
        return None;
    }
    // Only the canonical form passes: no "+1", "01", "-0", spaces or overflow. Checked digit
    // by digit, without the text round trip (every list push and stream item asks this).
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    match digits {
        [] => return None,
        [b'0'] => return (!negative).then_some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut magnitude: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(digit - b'0'))?;
    }
    if negative {
        // i64::MIN's magnitude is one past i64::MAX.
        (magnitude <= i64::MIN.unsigned_abs()).then(|| (magnitude as i64).wrapping_neg())
    } else {
        i64::try_from(magnitude).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_effort_counts_what_redis_counts() {
        assert_eq!(Value::from_bytes(&[b'x'; 10_000]).free_effort(), 1);
        let members: Vec<Vec<u8>> = (0..1000).map(|i| format!("m{i}").into_bytes()).collect();
        let mut small = crate::set::SetValue::for_members(&members[0], 10);
        for member in &members[..10] {
            small.insert(member);
        }
        assert_eq!(Value::Set(Box::new(small)).free_effort(), 1);
        let mut large = crate::set::SetValue::for_members(&members[0], members.len());
        for member in &members {
            large.insert(member);
        }
        assert_eq!(large.encoding_name(), "hashtable");
        assert_eq!(Value::Set(Box::new(large)).free_effort(), 1000);
    }

    #[test]
    fn canonical_integers_are_exactly_those_that_round_trip() {
        let round_trips = |text: &str| {
            text.parse::<i64>()
                .ok()
                .filter(|value| value.to_string() == text)
        };
        let cases = [
            "0",
            "-0",
            "00",
            "01",
            "+1",
            "1",
            "-1",
            "10",
            "-10",
            " 1",
            "1 ",
            "1a",
            "-",
            "",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551616",
            "000000012345",
            "12345",
            "0x10",
            "99999999999999999999",
            "-99999999999999999999",
        ];
        for text in cases {
            assert_eq!(
                parse_canonical_i64(text.as_bytes()),
                round_trips(text),
                "{text:?}"
            );
        }
        // Every value near the edges and powers of ten.
        let mut values = vec![i64::MIN, i64::MAX, i64::MIN + 1, i64::MAX - 1];
        let mut power = 1i64;
        while let Some(next) = power.checked_mul(10) {
            values.extend([power - 1, power, power + 1, -power, -power - 1, 1 - power]);
            power = next;
        }
        for value in values {
            assert_eq!(
                parse_canonical_i64(value.to_string().as_bytes()),
                Some(value)
            );
        }
    }

    #[test]
    fn collections_keep_values_small() {
        // Boxed collections: a value is no larger than a string's inline form needs.
        assert_eq!(std::mem::size_of::<Value>(), 24);
        // The boxed headers of small collections stay in small jemalloc classes: their large
        // classes keep their maps in a box of their own.
        // A packed hash or sorted set or a one-node list is one exactly sized buffer with its
        // counts inside, held in the value itself.
        assert_eq!(std::mem::size_of::<HashValue>(), 16);
        assert_eq!(std::mem::size_of::<SortedSet>(), 16);
        assert_eq!(std::mem::size_of::<ListValue>(), 16);
        let mut set = SetValue::for_members(b"a", 1);
        set.insert(b"a");
        let value = Value::Set(Box::new(set));
        assert_eq!((value.type_name(), value.is_string()), ("set", false));
        assert!(value.heap_len() > 0);
        assert_eq!(value.to_vec(), b"");
    }

    #[test]
    fn tensors_are_opaque_keys() {
        let tensor = TensorValue::new("FLOAT", vec![2, 2], vec![0; 16]);
        let value = Value::Tensor(Box::new(tensor.clone()));
        assert_eq!(std::mem::size_of_val(&value), 24);
        assert_eq!(
            (value.type_name(), value.encoding_name(), value.is_string()),
            ("AI_TENSOR", "raw", false)
        );
        assert_eq!((value.to_vec(), value.string_len()), (Vec::new(), 0));
        assert!(value.heap_len() >= 16 + 2 * std::mem::size_of::<usize>());
        assert_eq!(value.clone(), value);
        assert_ne!(
            value,
            Value::Tensor(Box::new(TensorValue::new("INT32", vec![2, 2], vec![0; 16])))
        );
    }
}

/// Whether an entry expires, and when.
pub type ExpireAtMs = Option<u64>;

/// Largest expiry an entry keeps: `u64::MAX` marks "no expiry" in [`Entry`]'s 8-byte field, so
/// a later instant is kept as this one (Redis's expiries are `i64` milliseconds, far below).
pub const EXPIRE_AT_MS_MAX: u64 = u64::MAX - 1;

/// The stored form of "no expiry" in [`Entry`].
const NO_EXPIRY: u64 = u64::MAX;

/// A key's entry: its value, expiry and access metadata. 40 bytes: the expiry is one word with a
/// marker for "none" rather than an `Option<u64>` (16 bytes), so that a key, its entry and a
/// short string value fit one 64-byte allocation in the keyspace.
#[derive(Clone, PartialEq)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// Unix time in milliseconds at which the key expires, or [`NO_EXPIRY`]: read it with
    /// [`Entry::expire_at_ms`].
    expire_at: u64,
    /// Redis's 24-bit `lru` field, kept by the keyspace on every read and write through
    /// [`crate::Keyspace::get`] or [`crate::Keyspace::get_mut`] (never by `peek`): under
    /// [`crate::keyspace::AccessPolicy::Lru`] the LRU clock ([`crate::keyspace::lru_clock`]) of
    /// the last access, under [`crate::keyspace::AccessPolicy::Lfu`] the packed LFU word
    /// `(minutes << 8) | counter` of [`crate::lfu`].
    pub access: u32,
    /// Changes with every write of the entry (value or expiry), so WATCH can tell that a key was
    /// modified even when it was set back to the same value. Unique within a keyspace until it
    /// wraps after 2^32 writes.
    pub version: u32,
}

impl Entry {
    /// An entry of `value` expiring at `expire_at_ms` (a later instant than
    /// [`EXPIRE_AT_MS_MAX`] is kept as that one).
    pub fn new(value: Value, expire_at_ms: ExpireAtMs, access: u32, version: u32) -> Self {
        Self {
            value,
            expire_at: stored_expiry(expire_at_ms),
            access,
            version,
        }
    }

    /// Unix time in milliseconds at which the key expires, if it does.
    pub fn expire_at_ms(&self) -> ExpireAtMs {
        (self.expire_at != NO_EXPIRY).then_some(self.expire_at)
    }

    /// Sets the expiry (see [`Entry::new`] for the largest one kept); returns the previous one.
    pub fn set_expire_at_ms(&mut self, expire_at_ms: ExpireAtMs) -> ExpireAtMs {
        let previous = self.expire_at_ms();
        self.expire_at = stored_expiry(expire_at_ms);
        previous
    }

    /// True when the key has a TTL that has passed at `now_ms` (never while
    /// [`expiry_suspended`]).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at != NO_EXPIRY && self.expire_at <= now_ms && !expiry_suspended()
    }
}

/// While true, no TTL passes: keys and hash fields stay live whatever their expiry, and the
/// active expiry removes nothing. A server sets it while it replays an append-only file, as
/// Redis does while loading: the log was written as time went by, and a command in it must see
/// the keys as they were when it ran (a key that expired later in the log's time has the `DEL`
/// that removed it written after that command). One flag per process, read only once a TTL is
/// found to have passed.
static EXPIRY_SUSPENDED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Suspends ([`expiry_suspended`]) or resumes expiry in every keyspace of the process.
pub fn suspend_expiry(suspended: bool) {
    EXPIRY_SUSPENDED.store(suspended, std::sync::atomic::Ordering::Release);
}

/// True while [`suspend_expiry`] holds every TTL.
pub fn expiry_suspended() -> bool {
    EXPIRY_SUSPENDED.load(std::sync::atomic::Ordering::Acquire)
}

/// `expire_at_ms` as an entry keeps it: see [`EXPIRE_AT_MS_MAX`].
pub fn clamp_expiry(expire_at_ms: ExpireAtMs) -> ExpireAtMs {
    expire_at_ms.map(|at| at.min(EXPIRE_AT_MS_MAX))
}

fn stored_expiry(expire_at_ms: ExpireAtMs) -> u64 {
    expire_at_ms.map_or(NO_EXPIRY, |at| at.min(EXPIRE_AT_MS_MAX))
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("value", &self.value)
            .field("expire_at_ms", &self.expire_at_ms())
            .field("access", &self.access)
            .field("version", &self.version)
            .finish()
    }
}

#[cfg(test)]
mod entry_tests {
    use super::*;

    #[test]
    fn entries_are_40_bytes_and_keep_their_expiry() {
        assert_eq!(std::mem::size_of::<Entry>(), 40);
        let mut entry = Entry::new(Value::Int(1), None, 0, 0);
        assert_eq!(entry.expire_at_ms(), None);
        assert!(!entry.is_expired(u64::MAX));
        assert_eq!(entry.set_expire_at_ms(Some(0)), None);
        assert_eq!(entry.expire_at_ms(), Some(0));
        assert!(entry.is_expired(0));
        assert_eq!(entry.set_expire_at_ms(Some(u64::MAX)), Some(0));
        assert_eq!(entry.expire_at_ms(), Some(EXPIRE_AT_MS_MAX));
        assert_eq!(clamp_expiry(Some(u64::MAX)), Some(EXPIRE_AT_MS_MAX));
        assert_eq!(clamp_expiry(Some(5)), Some(5));
        assert!(!entry.is_expired(EXPIRE_AT_MS_MAX - 1));
        assert!(entry.is_expired(EXPIRE_AT_MS_MAX));
        entry.set_expire_at_ms(None);
        assert_eq!(entry.expire_at_ms(), None);
        assert_eq!(
            format!("{entry:?}"),
            "Entry { value: Int(1), expire_at_ms: None, access: 0, version: 0 }"
        );
    }
}
