//! Set values: unordered collections of distinct byte strings (SADD, SPOP...).
//!
//! Members live packed in a [`RecordTable`]: their bytes back to back in one arena, each at a
//! dense position, and a hash table of positions finds a member by its bytes. The dense
//! positions give SPOP and SRANDMEMBER a uniform random member in O(1), which a plain hash set
//! cannot; removal swaps the last member into the hole.
//!
//! Redis keeps small sets as an `intset` or a `listpack` and large ones as a `hashtable`; the
//! representation here is always the one above, but [`SetValue::encoding_name`] reports the name
//! Redis 7.2 would, because clients and tests read OBJECT ENCODING.

use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;

use crate::compact::CompactBytes;
use crate::records::RecordTable;
use crate::value::parse_canonical_i64;

/// Most members an `intset` holds (Redis's `set-max-intset-entries` default).
pub const INTSET_ENTRIES_MAX: usize = 512;
/// Most members a `listpack` set holds (Redis's `set-max-listpack-entries` default).
pub const LISTPACK_ENTRIES_MAX: usize = 128;
/// Longest member a `listpack` set holds, in bytes (Redis's `set-max-listpack-value` default).
pub const LISTPACK_VALUE_LEN_MAX: usize = 64;

/// The settings that decide a set's size class (CONFIG's `set-max-intset-entries`,
/// `set-max-listpack-entries`, `set-max-listpack-value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetLimits {
    /// `set-max-intset-entries`.
    pub intset_entries_max: usize,
    /// `set-max-listpack-entries`.
    pub listpack_entries_max: usize,
    /// `set-max-listpack-value`, in bytes.
    pub listpack_value_len_max: usize,
}

impl Default for SetLimits {
    fn default() -> Self {
        Self {
            intset_entries_max: INTSET_ENTRIES_MAX,
            listpack_entries_max: LISTPACK_ENTRIES_MAX,
            listpack_value_len_max: LISTPACK_VALUE_LEN_MAX,
        }
    }
}

/// The process's settings: one configuration for every shard, as Redis has one, read at each
/// insertion as Redis reads its globals (a CONFIG SET applies to the next write).
static LIMITS: [AtomicUsize; 3] = [
    AtomicUsize::new(INTSET_ENTRIES_MAX),
    AtomicUsize::new(LISTPACK_ENTRIES_MAX),
    AtomicUsize::new(LISTPACK_VALUE_LEN_MAX),
];

/// Sets the size-class settings every set reads from now on (CONFIG SET).
pub fn set_limits(limits: SetLimits) {
    LIMITS[0].store(limits.intset_entries_max, Ordering::Relaxed);
    LIMITS[1].store(limits.listpack_entries_max, Ordering::Relaxed);
    LIMITS[2].store(limits.listpack_value_len_max, Ordering::Relaxed);
}

/// The size-class settings in force.
pub fn limits() -> SetLimits {
    SetLimits {
        intset_entries_max: LIMITS[0].load(Ordering::Relaxed),
        listpack_entries_max: LIMITS[1].load(Ordering::Relaxed),
        listpack_value_len_max: LIMITS[2].load(Ordering::Relaxed),
    }
}

/// The representation Redis 7.2 would have chosen; it only ever grows, as in Redis (removing
/// members never converts a set back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetEncoding {
    /// Every member a canonical integer, few of them.
    Intset,
    /// Few, short members.
    Listpack,
    /// Anything else.
    Hashtable,
}

/// A set of byte strings.
#[derive(Clone)]
pub struct SetValue {
    /// The members, as keys without values.
    members: RecordTable<false>,
    encoding: SetEncoding,
}

impl SetValue {
    /// The members' records.
    pub(crate) fn record_table(&self) -> &RecordTable<false> {
        &self.members
    }

    /// An empty set that SADD is about to fill with `member_count` members, the first being
    /// `first_member`: Redis 7.2 picks the starting encoding from these two.
    pub fn for_members(first_member: &[u8], member_count: usize) -> Self {
        let limits = limits();
        let encoding = if parse_canonical_i64(first_member).is_some()
            && member_count <= limits.intset_entries_max
        {
            SetEncoding::Intset
        } else if member_count <= limits.listpack_entries_max {
            SetEncoding::Listpack
        } else {
            SetEncoding::Hashtable
        };
        // Room for the members of this SADD at the first member's size (capped, as the count
        // comes from a client).
        let reserved = member_count.min(LISTPACK_ENTRIES_MAX);
        Self {
            members: RecordTable::with_capacity(reserved, first_member.len() + 1),
            encoding,
        }
    }

    /// Members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when the set has no member (the keyspace never keeps such a set).
    pub fn is_empty(&self) -> bool {
        self.members.len() == 0
    }

    /// The members, in no particular order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.members.iter().map(|(member, _)| member)
    }

    /// True when `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        self.members.position(member).is_some()
    }

    /// Adds `member`; false when it was already there.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        if !self.members.insert(member, b"") {
            return false;
        }
        self.grow_encoding(member);
        true
    }

    /// The encoding Redis would have converted to before adding `member`, just added.
    fn grow_encoding(&mut self, member: &[u8]) {
        let len = self.members.len() - 1;
        let SetLimits {
            intset_entries_max,
            listpack_entries_max,
            listpack_value_len_max,
        } = limits();
        self.encoding = match self.encoding {
            SetEncoding::Intset if parse_canonical_i64(member).is_some() => {
                if len + 1 > intset_entries_max {
                    SetEncoding::Hashtable
                } else {
                    SetEncoding::Intset
                }
            }
            // A first non-integer: a listpack if the set and every member (integers counted by
            // their text) stay within the listpack limits.
            SetEncoding::Intset => {
                let longest = self.iter().map(<[u8]>::len).max().unwrap_or(0);
                if len < listpack_entries_max
                    && member.len() <= listpack_value_len_max
                    && longest <= listpack_value_len_max
                {
                    SetEncoding::Listpack
                } else {
                    SetEncoding::Hashtable
                }
            }
            SetEncoding::Listpack
                if len < listpack_entries_max && member.len() <= listpack_value_len_max =>
            {
                SetEncoding::Listpack
            }
            SetEncoding::Listpack | SetEncoding::Hashtable => SetEncoding::Hashtable,
        };
    }

    /// Removes `member`; false when it was not there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        let Some(at) = self.members.position(member) else {
            return false;
        };
        self.members.swap_remove(at);
        true
    }

    /// A uniformly random member, or `None` when the set is empty.
    pub fn random_member(&self, rng: &mut impl Rng) -> Option<&[u8]> {
        if self.is_empty() {
            return None;
        }
        Some(self.members.key(rng.gen_range(0..self.members.len())))
    }

    /// Removes and returns a uniformly random member, or `None` when the set is empty.
    pub fn pop_random(&mut self, rng: &mut impl Rng) -> Option<CompactBytes> {
        if self.is_empty() {
            return None;
        }
        let at = rng.gen_range(0..self.members.len());
        let member = CompactBytes::new(self.members.key(at));
        self.members.swap_remove(at);
        Some(member)
    }

    /// `count` distinct random members (all of them when `count` is at least the size), in
    /// random order, without changing the set.
    pub fn random_distinct(&self, count: usize, rng: &mut impl Rng) -> Vec<&[u8]> {
        let count = count.min(self.members.len());
        // rand picks the sampling method by the ratio (Floyd's for few of many, a partial
        // shuffle otherwise), so a small count from a large set costs O(count).
        rand::seq::index::sample(rng, self.members.len(), count)
            .into_iter()
            .map(|at| self.members.key(at))
            .collect()
    }

    /// OBJECT ENCODING's answer, as Redis 7.2 would give it for the same history of adds.
    pub fn encoding_name(&self) -> &'static str {
        match self.encoding {
            SetEncoding::Intset => "intset",
            SetEncoding::Listpack => "listpack",
            SetEncoding::Hashtable => "hashtable",
        }
    }

    /// The encoding Redis 7.2 would report.
    pub fn encoding(&self) -> SetEncoding {
        self.encoding
    }

    /// Rough heap bytes: the members' arena, their positions and the index.
    pub fn heap_len(&self) -> usize {
        self.members.heap_len()
    }
}

impl PartialEq for SetValue {
    /// Same members (order and encoding aside).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|member| other.contains(member))
    }
}

impl std::fmt::Debug for SetValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn set_of(members: &[&str]) -> SetValue {
        let mut set = SetValue::for_members(members[0].as_bytes(), members.len());
        for member in members {
            set.insert(member.as_bytes());
        }
        set
    }

    #[test]
    fn insert_remove_contains() {
        let mut set = set_of(&["a", "b", "c"]);
        assert!(!set.insert(b"a"));
        assert_eq!(set.len(), 3);
        assert!(set.remove(b"a"));
        assert!(!set.remove(b"a"));
        assert!(!set.contains(b"a") && set.contains(b"b") && set.contains(b"c"));
        // The moved member is still found after the swap.
        assert!(set.remove(b"c"));
        assert!(set.contains(b"b"));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![&b"b"[..]]);
    }

    #[test]
    fn pops_every_member_once() {
        let mut rng = SmallRng::seed_from_u64(7);
        let names: Vec<String> = (0..300).map(|i| format!("member-{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut set = set_of(&refs);
        let mut popped = std::collections::HashSet::new();
        while let Some(member) = set.pop_random(&mut rng) {
            assert!(popped.insert(member.to_vec()), "popped twice");
            for name in refs.iter().take(10) {
                assert_eq!(
                    set.contains(name.as_bytes()),
                    !popped.contains(name.as_bytes())
                );
            }
        }
        assert_eq!(popped.len(), 300);
    }

    #[test]
    fn random_distinct_is_distinct() {
        let mut rng = SmallRng::seed_from_u64(1);
        let set = set_of(&["a", "b", "c", "d", "e"]);
        let picked = set.random_distinct(3, &mut rng);
        let unique: std::collections::HashSet<_> = picked.iter().collect();
        assert_eq!((picked.len(), unique.len()), (3, 3));
        assert_eq!(set.random_distinct(10, &mut rng).len(), 5);
    }

    /// Redis 7.2's encoding choices, named cases.
    #[test]
    fn encodings_as_redis() {
        let numbers: Vec<String> = (0..600).map(|i| i.to_string()).collect();
        let long = "x".repeat(65);
        let cases: Vec<(&str, Vec<&str>, &str)> = vec![
            ("small integers", vec!["1", "2", "3"], "intset"),
            ("integers then a word", vec!["1", "2", "a"], "listpack"),
            ("words", vec!["a", "b"], "listpack"),
            ("word then integers", vec!["a", "1"], "listpack"),
            ("non-canonical integer", vec!["01"], "listpack"),
            ("long member", vec!["a", &long], "hashtable"),
            (
                "many integers",
                numbers.iter().map(String::as_str).collect(),
                "hashtable",
            ),
            (
                "129 integers then a word",
                numbers[..129]
                    .iter()
                    .map(String::as_str)
                    .chain(["w"])
                    .collect(),
                "hashtable",
            ),
        ];
        for (name, members, expected) in cases {
            // One SADD per member: the size hint is 1 each time.
            let mut set = SetValue::for_members(members[0].as_bytes(), 1);
            for member in &members {
                set.insert(member.as_bytes());
            }
            assert_eq!(set.encoding_name(), expected, "{name}");
        }
        // One SADD with 200 words starts as a hashtable.
        assert_eq!(
            SetValue::for_members(b"a", 200).encoding_name(),
            "hashtable"
        );
        assert_eq!(SetValue::for_members(b"1", 200).encoding_name(), "intset");
    }
}
