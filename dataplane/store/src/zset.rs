//! Sorted-set values: members with a score each, ordered by score and then by member bytes, as
//! Redis orders them (ZADD, ZRANGE...).
//!
//! Small sets are one packed buffer (`zset/packed.rs`); larger ones (`zset/indexed.rs`) keep
//! their pairs in a vector, a hash table of indexes into it by member, and the order as runs of
//! indexes, each member's bytes stored once. Score ranges start with an O(log n) seek; ZRANK
//! adds up the lengths of the runs before the member (n / 128 additions), and ZRANGE by index
//! seeks to its first rank the same way.
//!
//! Redis keeps small sorted sets as a `listpack` and others as a `skiplist`;
//! [`SortedSet::encoding_name`] reports the name Redis 7.2 would, the representation here being
//! always the one above.

use std::cmp::Ordering;
use std::sync::atomic::{self, AtomicUsize};

mod indexed;
mod packed;
use crate::split::SplitBytes;
use indexed::Indexed;
use packed::{PackedIter, PackedPairs};

/// Most members a `listpack` sorted set holds (Redis's `zset-max-listpack-entries` default).
pub const LISTPACK_ENTRIES_MAX: usize = 128;
/// Longest member a `listpack` sorted set holds, in bytes (`zset-max-listpack-value`).
pub const LISTPACK_VALUE_LEN_MAX: usize = 64;

/// The settings that decide a sorted set's size class (CONFIG's `zset-max-listpack-entries` and
/// `zset-max-listpack-value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZSetLimits {
    /// `zset-max-listpack-entries`.
    pub listpack_entries_max: usize,
    /// `zset-max-listpack-value`, in bytes.
    pub listpack_value_len_max: usize,
}

impl Default for ZSetLimits {
    fn default() -> Self {
        Self {
            listpack_entries_max: LISTPACK_ENTRIES_MAX,
            listpack_value_len_max: LISTPACK_VALUE_LEN_MAX,
        }
    }
}

/// The process's settings, one for every shard as in Redis, read at each insertion.
static LIMITS: [AtomicUsize; 2] = [
    AtomicUsize::new(LISTPACK_ENTRIES_MAX),
    AtomicUsize::new(LISTPACK_VALUE_LEN_MAX),
];

/// Sets the size-class settings every sorted set reads from now on (CONFIG SET).
pub fn set_limits(limits: ZSetLimits) {
    LIMITS[0].store(limits.listpack_entries_max, atomic::Ordering::Relaxed);
    LIMITS[1].store(limits.listpack_value_len_max, atomic::Ordering::Relaxed);
}

/// The size-class settings in force.
pub fn limits() -> ZSetLimits {
    ZSetLimits {
        listpack_entries_max: LIMITS[0].load(atomic::Ordering::Relaxed),
        listpack_value_len_max: LIMITS[1].load(atomic::Ordering::Relaxed),
    }
}

/// A score with the total order the set needs: never NaN (every way in rejects it), and -0 equal
/// to 0, as Redis compares scores with `<` and `==`.
#[derive(Debug, Clone, Copy)]
struct Score(f64);

impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .partial_cmp(&other.0)
            .expect("a stored score is never NaN")
    }
}

/// The smallest double above `value` (`value` not NaN, not +inf); -0 and 0 both step to the
/// smallest subnormal. Turns "score <= x" into "score < next_up(x)" for range seeks.
fn next_up(value: f64) -> f64 {
    debug_assert!(!value.is_nan() && value != f64::INFINITY);
    if value == 0.0 {
        return f64::from_bits(1);
    }
    let bits = value.to_bits();
    if value > 0.0 {
        f64::from_bits(bits + 1)
    } else {
        f64::from_bits(bits - 1)
    }
}

/// What Redis 7.2 would report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZSetEncoding {
    /// Few, short members.
    Listpack,
    /// Anything else.
    Skiplist,
}

/// ZADD's conditions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddOptions {
    /// Only add new members.
    pub nx: bool,
    /// Only update existing members.
    pub xx: bool,
    /// Only update when the new score is greater.
    pub gt: bool,
    /// Only update when the new score is less.
    pub lt: bool,
    /// Add the score to the current one (0 for a new member).
    pub incr: bool,
}

/// What one ZADD pair did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AddOutcome {
    /// A new member, with this score.
    Added(f64),
    /// An existing member whose score changed to this.
    Updated(f64),
    /// An existing member, allowed to change, whose score stays this.
    Unchanged(f64),
    /// Nothing done: NX on an existing member, XX on a new one, GT or LT refused.
    Skipped,
}

/// The score an INCR would produce is not a number (+inf plus -inf).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotANumber;

/// One end of a score range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreBound {
    /// The score (not NaN).
    pub value: f64,
    /// True for `(value`: the score itself is outside.
    pub exclusive: bool,
}

/// One end of a lexicographic range (`-`, `+`, `[member`, `(member`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound {
    /// `-`: below every member.
    Min,
    /// `+`: above every member.
    Max,
    /// `[member`.
    Inclusive(Vec<u8>),
    /// `(member`.
    Exclusive(Vec<u8>),
}

impl LexBound {
    /// True for `(member` and for `-` and `+`, which Redis also counts as exclusive.
    fn is_exclusive(&self) -> bool {
        !matches!(self, Self::Inclusive(_))
    }

    /// True when no member can lie between `min` and `max` (Redis's `sdscmplex` test).
    fn range_is_empty(min: &Self, max: &Self) -> bool {
        let order = match (min, max) {
            (Self::Min, Self::Min) | (Self::Max, Self::Max) => Ordering::Equal,
            (Self::Min, _) | (_, Self::Max) => Ordering::Less,
            (Self::Max, _) | (_, Self::Min) => Ordering::Greater,
            (
                Self::Inclusive(low) | Self::Exclusive(low),
                Self::Inclusive(high) | Self::Exclusive(high),
            ) => low.cmp(high),
        };
        order == Ordering::Greater
            || order == Ordering::Equal && (min.is_exclusive() || max.is_exclusive())
    }

    /// True when `member` is at or above this bound taken as a minimum.
    fn admits_from_below(&self, member: SplitBytes<'_>) -> bool {
        match self {
            Self::Min => true,
            Self::Max => false,
            Self::Inclusive(bound) => member.cmp_bytes(bound).is_ge(),
            Self::Exclusive(bound) => member.cmp_bytes(bound).is_gt(),
        }
    }

    /// True when `member` is at or below this bound taken as a maximum.
    fn admits_from_above(&self, member: SplitBytes<'_>) -> bool {
        match self {
            Self::Min => false,
            Self::Max => true,
            Self::Inclusive(bound) => member.cmp_bytes(bound).is_le(),
            Self::Exclusive(bound) => member.cmp_bytes(bound).is_lt(),
        }
    }
}

/// LIMIT offset count of a score or lex range, as Redis reads them: a negative offset selects
/// nothing, a negative count means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Members of the range to skip.
    pub offset: i64,
    /// Members to return at most; negative for all.
    pub count: i64,
}

impl Limit {
    /// No LIMIT.
    pub const ALL: Limit = Limit {
        offset: 0,
        count: -1,
    };

    fn apply<'a, I: Iterator<Item = (SplitBytes<'a>, f64)>>(
        self,
        members: I,
    ) -> Vec<(SplitBytes<'a>, f64)> {
        if self.offset < 0 || self.count == 0 {
            return Vec::new();
        }
        let count = usize::try_from(self.count).unwrap_or(usize::MAX);
        let offset = usize::try_from(self.offset).unwrap_or(usize::MAX);
        members.skip(offset).take(count).collect()
    }
}

/// How a sorted set keeps its members: Redis's two size classes.
#[derive(Clone)]
enum Members {
    /// The listpack class (at most `zset-max-listpack-entries` members of at most
    /// `zset-max-listpack-value` bytes): (score, member) pairs in order in one exactly sized
    /// byte buffer (`zset/packed.rs`), a member found by a linear scan as a listpack finds it.
    /// No map and no tree.
    Packed(PackedPairs),
    /// The skiplist class, boxed so that the packed class's sets stay small (a
    /// `SortedSet` is 16 bytes: the packed buffer, or this box beside the niche).
    Indexed(Box<Indexed>),
}

/// The pairs of a sorted set (or of a range of it) in order, whichever class holds them.
enum Pairs<'a> {
    Packed(PackedIter<'a>),
    Indexed(indexed::Iter<'a>),
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (SplitBytes<'a>, f64);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Packed(pairs) => pairs.next(),
            Self::Indexed(pairs) => pairs
                .next()
                .map(|(member, score)| (SplitBytes::whole(member), score)),
        }
    }
}

impl DoubleEndedIterator for Pairs<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Self::Packed(pairs) => pairs.next_back(),
            Self::Indexed(pairs) => pairs
                .next_back()
                .map(|(member, score)| (SplitBytes::whole(member), score)),
        }
    }
}

/// A sorted set.
#[derive(Clone)]
pub struct SortedSet {
    members: Members,
}

impl SortedSet {
    /// An empty sorted set that ZADD is about to fill with `pair_count` pairs whose longest
    /// member has `member_len_max` bytes: Redis 7.2 picks the starting encoding from these.
    pub fn for_members(pair_count: usize, member_len_max: usize) -> Self {
        let limits = limits();
        let encoding = if pair_count <= limits.listpack_entries_max
            && member_len_max <= limits.listpack_value_len_max
        {
            ZSetEncoding::Listpack
        } else {
            ZSetEncoding::Skiplist
        };
        let members = match encoding {
            ZSetEncoding::Listpack => Members::Packed(PackedPairs::default()),
            ZSetEncoding::Skiplist => Members::Indexed(Box::default()),
        };
        Self { members }
    }

    /// The encoding Redis would report: the packed class is its listpack.
    pub(crate) fn encoding(&self) -> ZSetEncoding {
        match self.members {
            Members::Packed(_) => ZSetEncoding::Listpack,
            Members::Indexed(_) => ZSetEncoding::Skiplist,
        }
    }

    /// Members.
    pub fn len(&self) -> usize {
        match &self.members {
            Members::Packed(pairs) => pairs.len(),
            Members::Indexed(indexed) => indexed.len(),
        }
    }

    /// True when the set has no member (the keyspace never keeps such a set).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.members {
            Members::Packed(pairs) => pairs.find(member).map(|(_, score)| score),
            Members::Indexed(indexed) => indexed.score(member),
        }
    }

    /// Members with their scores, lowest score first (a member of the packed class may be
    /// stored in two pieces).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (SplitBytes<'_>, f64)> + '_ {
        match &self.members {
            Members::Packed(pairs) => Pairs::Packed(pairs.iter()),
            Members::Indexed(indexed) => Pairs::Indexed(indexed.iter()),
        }
    }

    /// Stores a member that is not in the set yet.
    fn insert_new(&mut self, member: &[u8], score: f64) {
        match &mut self.members {
            Members::Packed(pairs) => pairs.insert(member, score),
            Members::Indexed(indexed) => indexed.insert_new(member, score),
        }
    }

    /// ZADD of one pair under `options`, Redis's rules: NX never updates, XX never adds, GT and
    /// LT compare the new score (after INCR) with the current one.
    ///
    /// # Errors
    /// [`NotANumber`] when INCR would make the score NaN; the set is unchanged.
    ///
    /// # Panics
    /// When `score` is NaN: callers reject NaN input before it gets here.
    pub fn add(
        &mut self,
        member: &[u8],
        score: f64,
        options: AddOptions,
    ) -> Result<AddOutcome, NotANumber> {
        assert!(!score.is_nan(), "NaN scores are rejected when parsed");
        let Some(current) = self.score(member) else {
            if options.xx {
                return Ok(AddOutcome::Skipped);
            }
            self.grow_encoding(member);
            let stored = self.stored_score(score);
            self.insert_new(member, stored);
            return Ok(AddOutcome::Added(score));
        };
        if options.nx {
            return Ok(AddOutcome::Skipped);
        }
        let score = if options.incr { current + score } else { score };
        if score.is_nan() {
            return Err(NotANumber);
        }
        if options.lt && score >= current || options.gt && score <= current {
            return Ok(AddOutcome::Skipped);
        }
        if score == current {
            return Ok(AddOutcome::Unchanged(score));
        }
        let stored = self.stored_score(score);
        match &mut self.members {
            Members::Packed(_) => {
                self.remove(member);
                self.insert_new(member, stored);
            }
            Members::Indexed(indexed) => indexed.set_score(member, stored),
        }
        Ok(AddOutcome::Updated(score))
    }

    /// The score as Redis would read it back: a `listpack` stores integral scores as integers,
    /// so -0 comes back as 0 there (ZADD INCR still replies with the score it computed).
    fn stored_score(&self, score: f64) -> f64 {
        if self.encoding() == ZSetEncoding::Listpack && score == 0.0 {
            0.0
        } else {
            score
        }
    }

    /// The encoding Redis would convert to before adding the new `member`.
    fn grow_encoding(&mut self, member: &[u8]) {
        let limits = limits();
        if self.encoding() == ZSetEncoding::Listpack
            && (self.len() + 1 > limits.listpack_entries_max
                || member.len() > limits.listpack_value_len_max)
        {
            if let Members::Packed(pairs) = &mut self.members {
                let pairs = std::mem::take(pairs);
                let ordered = pairs.iter();
                self.members = Members::Indexed(Box::new(Indexed::from_ordered(ordered)));
            }
        }
    }

    /// Removes `member`; false when it was not there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.members {
            Members::Packed(pairs) => pairs.remove(member),
            Members::Indexed(indexed) => indexed.remove(member),
        }
    }

    /// The 0-based rank of `member` (from the highest score when `reverse`) and its score.
    pub fn rank(&self, member: &[u8], reverse: bool) -> Option<(usize, f64)> {
        let (below, score) = match &self.members {
            Members::Packed(pairs) => pairs.find(member)?,
            Members::Indexed(indexed) => indexed.rank(member)?,
        };
        let rank = if reverse {
            self.len() - 1 - below
        } else {
            below
        };
        Some((rank, score))
    }

    /// Members from rank `start` to `stop` inclusive (negative counts from the end), as ZRANGE
    /// reads them; ranks count from the highest score when `reverse`.
    pub fn range_by_rank(
        &self,
        start: i64,
        stop: i64,
        reverse: bool,
    ) -> Vec<(SplitBytes<'_>, f64)> {
        let len = self.len() as i64;
        let start = if start < 0 { start + len } else { start }.max(0);
        let stop = if stop < 0 { stop + len } else { stop };
        if start > stop || start >= len {
            return Vec::new();
        }
        let stop = stop.min(len - 1);
        let (skip, take) = (start as usize, (stop - start + 1) as usize);
        if let Members::Indexed(indexed) = &self.members {
            // Seek to the first rank rather than walk to it.
            let first = if reverse {
                self.len() - skip - take
            } else {
                skip
            };
            let pairs = indexed.rank_range(first, first + take);
            // Sized first: the iterator does not know its length, and growing the vector as
            // it went reallocated it (1.8% of a shard under pipelined ZRANGE 0 9).
            let mut found = Vec::with_capacity(take);
            let borrowed = |(member, score)| (SplitBytes::whole(member), score);
            if reverse {
                found.extend(pairs.rev().map(borrowed));
            } else {
                found.extend(pairs.map(borrowed));
            }
            return found;
        }
        if reverse {
            self.iter().rev().skip(skip).take(take).collect()
        } else {
            self.iter().skip(skip).take(take).collect()
        }
    }

    /// The members with scores from `min` to `max`, lowest first.
    fn score_range(
        &self,
        min: ScoreBound,
        max: ScoreBound,
    ) -> impl DoubleEndedIterator<Item = (SplitBytes<'_>, f64)> + '_ {
        // Every range is expressed as [low, high) over (score, member), member "" being the
        // least member: "score > x" is "score >= next_up(x)", "score <= x" is "< next_up(x)".
        let low = if min.exclusive {
            (min.value != f64::INFINITY).then(|| next_up(min.value))
        } else {
            Some(min.value)
        };
        let high = match (max.exclusive, max.value == f64::INFINITY) {
            (true, _) => Some(max.value),
            (false, true) => None,
            (false, false) => Some(next_up(max.value)),
        };
        let (low, high) = match (low, high) {
            (Some(low), high) if high.is_none_or(|high| Score(low) < Score(high)) => (low, high),
            _ => return Pairs::Packed(PackedIter::empty()),
        };
        // [low, high) with member "" the least: the scores from low to below high.
        match &self.members {
            Members::Packed(pairs) => Pairs::Packed(pairs.score_range(low, high)),
            Members::Indexed(indexed) => Pairs::Indexed(indexed.score_range(low, high)),
        }
    }

    /// ZRANGE BYSCORE: members with scores from `min` to `max`, lowest first (highest first when
    /// `reverse`), after `limit`.
    pub fn range_by_score(
        &self,
        min: ScoreBound,
        max: ScoreBound,
        reverse: bool,
        limit: Limit,
    ) -> Vec<(SplitBytes<'_>, f64)> {
        let range = self.score_range(min, max);
        if reverse {
            limit.apply(range.rev())
        } else {
            limit.apply(range)
        }
    }

    /// ZCOUNT: members with scores from `min` to `max`.
    pub fn count_by_score(&self, min: ScoreBound, max: ScoreBound) -> usize {
        self.score_range(min, max).count()
    }

    /// ZRANGE BYLEX: members from `min` to `max` by bytes, walking the set in order as Redis
    /// does (meaningful when every score is equal, as Redis documents), after `limit`.
    pub fn range_by_lex(
        &self,
        min: &LexBound,
        max: &LexBound,
        reverse: bool,
        limit: Limit,
    ) -> Vec<(SplitBytes<'_>, f64)> {
        // Redis first rules the range out when it is empty by its bounds, when the last member
        // is below `min` or the first above `max`; with mixed scores these checks show.
        let (Some((first, _)), Some((last, _))) = (self.iter().next(), self.iter().next_back())
        else {
            return Vec::new();
        };
        if LexBound::range_is_empty(min, max)
            || !min.admits_from_below(last)
            || !max.admits_from_above(first)
        {
            return Vec::new();
        }
        if reverse {
            let members = self
                .iter()
                .rev()
                .skip_while(|(member, _)| !max.admits_from_above(*member))
                .take_while(|(member, _)| min.admits_from_below(*member));
            limit.apply(members)
        } else {
            let members = self
                .iter()
                .skip_while(|(member, _)| !min.admits_from_below(*member))
                .take_while(|(member, _)| max.admits_from_above(*member));
            limit.apply(members)
        }
    }

    /// OBJECT ENCODING's answer, as Redis 7.2 would give it for the same history of adds.
    pub fn encoding_name(&self) -> &'static str {
        match self.encoding() {
            ZSetEncoding::Listpack => "listpack",
            ZSetEncoding::Skiplist => "skiplist",
        }
    }

    /// Rough heap bytes: the packed vector, or the pairs, their index and their order.
    pub fn heap_len(&self) -> usize {
        match &self.members {
            Members::Packed(pairs) => pairs.heap_len(),
            Members::Indexed(indexed) => std::mem::size_of::<Indexed>() + indexed.heap_len(),
        }
    }
}

impl PartialEq for SortedSet {
    /// Same members with the same scores (encoding aside).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|(member, score)| other.score(&member.bytes()) == Some(score))
    }
}

impl std::fmt::Debug for SortedSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_and_indexed_classes_answer_alike() {
        // The same random adds (with every option) and removes on a set of each class; every
        // query must agree after each step. 40 members stay in the packed class.
        let mut packed = SortedSet::for_members(1, 1);
        let mut indexed = SortedSet::for_members(1_000_000, 1_000_000);
        assert!(matches!(packed.members, Members::Packed(_)));
        assert!(matches!(indexed.members, Members::Indexed(_)));
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        for _ in 0..5_000 {
            let member = format!("m{}", next(40));
            // No -0: the listpack class stores it as 0, on purpose (see `stored_score`).
            let score = [0.0, 1.0, 1.5, -2.0, 3.0, f64::INFINITY][next(6) as usize];
            if next(4) == 0 {
                assert_eq!(
                    packed.remove(member.as_bytes()),
                    indexed.remove(member.as_bytes())
                );
            } else {
                let options = AddOptions {
                    nx: next(5) == 0,
                    xx: next(5) == 0,
                    gt: next(6) == 0,
                    lt: next(6) == 0,
                    incr: next(4) == 0,
                };
                if options.nx && (options.xx || options.gt || options.lt) {
                    continue;
                }
                let a = packed.add(member.as_bytes(), score, options);
                let b = indexed.add(member.as_bytes(), score, options);
                assert_eq!(format!("{a:?}"), format!("{b:?}"));
            }
            let all: Vec<_> = packed.iter().collect();
            assert_eq!(all, indexed.iter().collect::<Vec<_>>());
            assert_eq!(
                packed.score(member.as_bytes()),
                indexed.score(member.as_bytes())
            );
            let reverse = next(2) == 0;
            assert_eq!(
                packed.rank(member.as_bytes(), reverse),
                indexed.rank(member.as_bytes(), reverse)
            );
            let (min, max) = (
                ScoreBound {
                    value: -1.0,
                    exclusive: next(2) == 0,
                },
                ScoreBound {
                    value: 1.5,
                    exclusive: next(2) == 0,
                },
            );
            let limit = Limit {
                offset: next(3) as i64,
                count: next(5) as i64 - 1,
            };
            assert_eq!(
                packed.range_by_score(min, max, reverse, limit),
                indexed.range_by_score(min, max, reverse, limit)
            );
            assert_eq!(
                packed.count_by_score(min, max),
                indexed.count_by_score(min, max)
            );
            assert_eq!(
                packed.range_by_rank(1, -2, true),
                indexed.range_by_rank(1, -2, true)
            );
        }
    }

    fn zset(pairs: &[(f64, &str)]) -> SortedSet {
        let mut set = SortedSet::for_members(pairs.len(), 8);
        for &(score, member) in pairs {
            set.add(member.as_bytes(), score, AddOptions::default())
                .unwrap();
        }
        set
    }

    fn members(found: Vec<(SplitBytes<'_>, f64)>) -> Vec<String> {
        found
            .into_iter()
            .map(|(member, _)| String::from_utf8_lossy(&member.bytes()).into_owned())
            .collect()
    }

    fn incl(value: f64) -> ScoreBound {
        ScoreBound {
            value,
            exclusive: false,
        }
    }

    fn excl(value: f64) -> ScoreBound {
        ScoreBound {
            value,
            exclusive: true,
        }
    }

    const INF: f64 = f64::INFINITY;

    fn sample() -> SortedSet {
        zset(&[
            (2.0, "c"),
            (1.0, "b"),
            (1.0, "a"),
            (-INF, "low"),
            (INF, "high"),
            (0.0, "zero"),
            (-0.0, "minus-zero"),
            (3.5, "d"),
        ])
    }

    #[test]
    fn order_is_score_then_member() {
        let set = sample();
        assert_eq!(
            members(set.iter().collect()),
            ["low", "minus-zero", "zero", "a", "b", "c", "d", "high"]
        );
        assert_eq!(set.rank(b"a", false), Some((3, 1.0)));
        assert_eq!(set.rank(b"a", true), Some((4, 1.0)));
        assert_eq!(set.rank(b"nope", false), None);
    }

    #[test]
    fn rank_ranges() {
        let set = sample();
        let cases: &[(i64, i64, bool, &[&str])] = &[
            (0, 1, false, &["low", "minus-zero"]),
            (
                0,
                -1,
                false,
                &["low", "minus-zero", "zero", "a", "b", "c", "d", "high"],
            ),
            (-2, -1, false, &["d", "high"]),
            (0, 1, true, &["high", "d"]),
            (-100, 0, false, &["low"]),
            (5, 100, false, &["c", "d", "high"]),
            (3, 2, false, &[]),
            (8, 10, false, &[]),
            (-1, -2, false, &[]),
            (6, -1, true, &["minus-zero", "low"]),
        ];
        for &(start, stop, reverse, expected) in cases {
            assert_eq!(
                members(set.range_by_rank(start, stop, reverse)),
                expected,
                "{start} {stop} rev={reverse}"
            );
        }
    }

    #[test]
    fn score_ranges() {
        let set = sample();
        let cases: &[(ScoreBound, ScoreBound, bool, Limit, &[&str])] = &[
            (incl(1.0), incl(2.0), false, Limit::ALL, &["a", "b", "c"]),
            (excl(1.0), incl(2.0), false, Limit::ALL, &["c"]),
            (incl(1.0), excl(2.0), false, Limit::ALL, &["a", "b"]),
            (excl(1.0), excl(2.0), false, Limit::ALL, &[]),
            (
                incl(-INF),
                incl(INF),
                false,
                Limit {
                    offset: 0,
                    count: 2,
                },
                &["low", "minus-zero"],
            ),
            (
                excl(-INF),
                excl(INF),
                false,
                Limit::ALL,
                &["minus-zero", "zero", "a", "b", "c", "d"],
            ),
            (incl(INF), incl(INF), false, Limit::ALL, &["high"]),
            (excl(INF), incl(INF), false, Limit::ALL, &[]),
            (
                incl(0.0),
                incl(0.0),
                false,
                Limit::ALL,
                &["minus-zero", "zero"],
            ),
            (excl(-0.0), incl(1.0), false, Limit::ALL, &["a", "b"]),
            (incl(1.0), incl(2.0), true, Limit::ALL, &["c", "b", "a"]),
            (
                incl(1.0),
                incl(2.0),
                true,
                Limit {
                    offset: 1,
                    count: -1,
                },
                &["b", "a"],
            ),
            (
                incl(1.0),
                incl(2.0),
                false,
                Limit {
                    offset: -1,
                    count: 5,
                },
                &[],
            ),
            (
                incl(1.0),
                incl(2.0),
                false,
                Limit {
                    offset: 1,
                    count: 0,
                },
                &[],
            ),
            (
                incl(1.0),
                incl(2.0),
                false,
                Limit {
                    offset: 5,
                    count: 1,
                },
                &[],
            ),
            (incl(3.0), incl(1.0), false, Limit::ALL, &[]),
            (incl(2.5), incl(2.6), false, Limit::ALL, &[]),
        ];
        for (min, max, reverse, limit, expected) in cases {
            assert_eq!(
                members(set.range_by_score(*min, *max, *reverse, *limit)),
                *expected,
                "{min:?} {max:?} rev={reverse} {limit:?}"
            );
            if !reverse && *limit == Limit::ALL {
                assert_eq!(set.count_by_score(*min, *max), expected.len());
            }
        }
    }

    #[test]
    fn lex_ranges() {
        let set = zset(&[(0.0, "a"), (0.0, "b"), (0.0, "c"), (0.0, "d"), (0.0, "e")]);
        let item = |text: &str| text.as_bytes().to_vec();
        let cases: Vec<(LexBound, LexBound, bool, &[&str])> = vec![
            (
                LexBound::Min,
                LexBound::Max,
                false,
                &["a", "b", "c", "d", "e"],
            ),
            (
                LexBound::Inclusive(item("b")),
                LexBound::Exclusive(item("d")),
                false,
                &["b", "c"],
            ),
            (
                LexBound::Exclusive(item("b")),
                LexBound::Inclusive(item("d")),
                false,
                &["c", "d"],
            ),
            (
                LexBound::Min,
                LexBound::Inclusive(item("bb")),
                false,
                &["a", "b"],
            ),
            (LexBound::Max, LexBound::Min, false, &[]),
            (LexBound::Min, LexBound::Min, false, &[]),
            (
                LexBound::Exclusive(item("b")),
                LexBound::Inclusive(item("b")),
                false,
                &[],
            ),
            (
                LexBound::Inclusive(item("b")),
                LexBound::Inclusive(item("b")),
                false,
                &["b"],
            ),
            (
                LexBound::Inclusive(item("b")),
                LexBound::Inclusive(item("d")),
                true,
                &["d", "c", "b"],
            ),
            (
                LexBound::Min,
                LexBound::Max,
                true,
                &["e", "d", "c", "b", "a"],
            ),
        ];
        for (min, max, reverse, expected) in cases {
            assert_eq!(
                members(set.range_by_lex(&min, &max, reverse, Limit::ALL)),
                expected,
                "{min:?} {max:?} rev={reverse}"
            );
        }
    }

    /// With mixed scores, Redis's checks of the first and last member decide (listpack walk).
    #[test]
    fn lex_ranges_over_mixed_scores() {
        let set = zset(&[(1.0, "b"), (2.0, "a"), (3.0, "c"), (4.0, "a0")]);
        let from = |text: &str| LexBound::Inclusive(text.as_bytes().to_vec());
        assert_eq!(
            members(set.range_by_lex(&from("b"), &LexBound::Max, false, Limit::ALL)),
            Vec::<String>::new(),
            "the last member, a0, is below b"
        );
        assert_eq!(
            members(set.range_by_lex(&from("a"), &LexBound::Max, false, Limit::ALL)),
            ["b", "a", "c", "a0"]
        );
    }

    #[test]
    fn add_options_as_redis() {
        let options = |text: &str| AddOptions {
            nx: text.contains("nx"),
            xx: text.contains("xx"),
            gt: text.contains("gt"),
            lt: text.contains("lt"),
            incr: text.contains("incr"),
        };
        let cases: &[(&str, &str, f64, Result<AddOutcome, NotANumber>, f64)] = &[
            ("new", "", 5.0, Ok(AddOutcome::Added(5.0)), 5.0),
            ("update", "", 2.0, Ok(AddOutcome::Updated(2.0)), 2.0),
            ("same", "", 1.0, Ok(AddOutcome::Unchanged(1.0)), 1.0),
            ("nx existing", "nx", 2.0, Ok(AddOutcome::Skipped), 1.0),
            ("xx existing", "xx", 2.0, Ok(AddOutcome::Updated(2.0)), 2.0),
            ("gt lower", "gt", 0.5, Ok(AddOutcome::Skipped), 1.0),
            ("gt equal", "gt", 1.0, Ok(AddOutcome::Skipped), 1.0),
            ("gt higher", "gt", 3.0, Ok(AddOutcome::Updated(3.0)), 3.0),
            ("lt higher", "lt", 3.0, Ok(AddOutcome::Skipped), 1.0),
            (
                "lt lower",
                "lt xx",
                -3.0,
                Ok(AddOutcome::Updated(-3.0)),
                -3.0,
            ),
            ("incr", "incr", 2.5, Ok(AddOutcome::Updated(3.5)), 3.5),
            (
                "incr gt negative",
                "incr gt",
                -1.0,
                Ok(AddOutcome::Skipped),
                1.0,
            ),
            (
                "incr zero",
                "incr",
                0.0,
                Ok(AddOutcome::Unchanged(1.0)),
                1.0,
            ),
        ];
        for &(name, flags, score, expected, after) in cases {
            let mut set = zset(&[(1.0, "m")]);
            let member: &[u8] = if name == "new" { b"n" } else { b"m" };
            assert_eq!(set.add(member, score, options(flags)), expected, "{name}");
            assert_eq!(set.score(member), Some(after), "{name}");
            assert_eq!(set.iter().count(), set.len(), "{name}");
        }
        let mut set = zset(&[(INF, "m")]);
        assert_eq!(set.add(b"m", -INF, options("incr")), Err(NotANumber));
        assert_eq!(set.score(b"m"), Some(INF));
        assert_eq!(set.add(b"new", 1.0, options("xx")), Ok(AddOutcome::Skipped));
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn minus_zero_is_zero_in_a_listpack_only() {
        let mut small = SortedSet::for_members(1, 1);
        assert_eq!(
            small.add(b"a", -0.0, AddOptions::default()),
            Ok(AddOutcome::Added(-0.0))
        );
        assert!(small.score(b"a").unwrap().is_sign_positive());
        let mut large = SortedSet::for_members(LISTPACK_ENTRIES_MAX + 1, 1);
        large.add(b"a", -0.0, AddOptions::default()).unwrap();
        assert!(large.score(b"a").unwrap().is_sign_negative());
    }

    #[test]
    fn remove_keeps_order_in_step() {
        let mut set = sample();
        assert!(set.remove(b"a"));
        assert!(!set.remove(b"a"));
        assert_eq!(set.iter().count(), 7);
        assert_eq!(set.rank(b"b", false), Some((3, 1.0)));
    }

    #[test]
    fn encodings_as_redis() {
        assert_eq!(SortedSet::for_members(128, 64).encoding_name(), "listpack");
        assert_eq!(SortedSet::for_members(129, 1).encoding_name(), "skiplist");
        assert_eq!(SortedSet::for_members(1, 65).encoding_name(), "skiplist");
        let mut set = SortedSet::for_members(1, 1);
        for i in 0..128 {
            set.add(format!("{i}").as_bytes(), 0.0, AddOptions::default())
                .unwrap();
        }
        assert_eq!(set.encoding_name(), "listpack");
        set.add(b"one more", 0.0, AddOptions::default()).unwrap();
        assert_eq!(set.encoding_name(), "skiplist");
        let mut long = SortedSet::for_members(1, 1);
        long.add(&[b'x'; 65], 0.0, AddOptions::default()).unwrap();
        assert_eq!(long.encoding_name(), "skiplist");
    }
}
