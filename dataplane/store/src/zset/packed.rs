//! The listpack size class of a sorted set: the (score, member) pairs in order, back to back in
//! one exactly sized buffer whose 4-byte header is the pair count, as Redis's listpack keeps
//! them. The body starts with an anchor, the first member the set was given (a LEB128 length
//! and its bytes), kept for the set's life even when that member leaves; members are stored
//! against it (front coding), so that members named after one pattern (`member:000042`,
//! `player:1234`) cost only the bytes in which they differ. A pair is
//!
//! - a header varint: the length of the member's own bytes shifted left by two, bit 1 set when
//!   the member starts with a prefix of the anchor, bit 0 when the score is kept as an integer;
//! - when bit 1 is set, the length of that prefix (a varint);
//! - the score: a zigzag varint when it is an integer of magnitude at most 2^53 (every such
//!   integer is exact in an f64), else the f64's eight little-endian bytes;
//! - the member's own bytes.
//!
//! A member of 13 bytes that shares 12 with the anchor, with a small integer score, takes 4
//! bytes; one that shares nothing takes 15, as before front coding (a `(Score, CompactBytes)`
//! pair takes 32). The anchor's prefix is never stored anew, so an insert before the first pair
//! or the removal of any pair moves bytes without re-encoding the others. A member is two
//! slices of the buffer ([`SplitBytes`]), so reads copy nothing, and a lookup compares only the
//! bytes that can differ. Lookups scan, as a listpack's do; the class
//! holds at most `zset-max-listpack-entries` short members. Walking from the end (ZREVRANGE)
//! first collects where each pair starts.

use std::cmp::Ordering;

use super::Score;
use crate::compact::PackedBuf;
use crate::split::{shared_prefix, SplitBytes};
use crate::varint;

/// Largest magnitude of a score kept as an integer: every integer up to it is exact in an f64.
const INT_SCORE_MAX: f64 = (1u64 << 53) as f64;

/// Shortest prefix of the anchor worth storing as a length (one byte of length for one byte
/// saved is no gain).
const SHARED_MIN: usize = 2;

/// The pairs of a sorted set in the packed class, lowest (score, member) first.
#[derive(Clone, Default)]
pub(super) struct PackedPairs {
    buf: PackedBuf<4>,
}

/// A pair decoded from the buffer.
struct Decoded<'a> {
    member: SplitBytes<'a>,
    score: f64,
    /// Byte just after the pair.
    end: usize,
}

/// The integer a score is kept as, when it is one.
fn int_score(score: f64) -> Option<i64> {
    (score.fract() == 0.0 && score.abs() <= INT_SCORE_MAX).then_some(score as i64)
}

/// Appends the pair, its member stored against `anchor`.
fn encode(out: &mut Vec<u8>, anchor: &[u8], member: &[u8], score: f64) {
    let shared = match shared_prefix(anchor, member) {
        shared if shared >= SHARED_MIN => shared,
        _ => 0,
    };
    let int = int_score(score);
    let header = ((member.len() - shared) as u64) << 2
        | u64::from(shared > 0) << 1
        | u64::from(int.is_some());
    varint::push(out, header);
    if shared > 0 {
        varint::push(out, shared as u64);
    }
    match int {
        Some(int) => varint::push(out, ((int << 1) ^ (int >> 63)) as u64),
        None => out.extend_from_slice(&score.to_le_bytes()),
    }
    out.extend_from_slice(&member[shared..]);
}

/// Reads a pair's header and prefix length at `*at`: (length of its own bytes, length of the
/// anchor's prefix, score kept as an integer).
fn read_lengths(pairs: &[u8], at: &mut usize) -> (usize, usize, bool) {
    let header = varint::read(pairs, at);
    let shared = if header & 2 == 2 {
        varint::read(pairs, at) as usize
    } else {
        0
    };
    ((header >> 2) as usize, shared, header & 1 == 1)
}

/// Reads a score at `*at`.
fn read_score(pairs: &[u8], at: &mut usize, int: bool) -> f64 {
    if int {
        let zigzag = varint::read(pairs, at);
        (((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64)) as f64
    } else {
        let bytes = pairs[*at..*at + 8].try_into().expect("eight bytes");
        *at += 8;
        f64::from_le_bytes(bytes)
    }
}

/// Decodes the pair that starts at `at` of `pairs`, its member read against `anchor`.
fn decode<'a>(anchor: &'a [u8], pairs: &'a [u8], mut at: usize) -> Decoded<'a> {
    let (own, shared, int) = read_lengths(pairs, &mut at);
    let score = read_score(pairs, &mut at, int);
    let member = SplitBytes::new(&anchor[..shared], &pairs[at..at + own]);
    Decoded {
        member,
        score,
        end: at + own,
    }
}

/// (score, member) order, as the indexed class orders its pairs.
fn compare(score: f64, member: SplitBytes<'_>, other_score: f64, other_member: &[u8]) -> Ordering {
    Score(score)
        .cmp(&Score(other_score))
        .then_with(|| member.cmp_bytes(other_member))
}

impl PackedPairs {
    pub(super) fn len(&self) -> usize {
        u32::from_le_bytes(self.buf.header()) as usize
    }

    fn set_len(&mut self, len: usize) {
        let len = u32::try_from(len).expect("a packed sorted set holds fewer than 2^32 pairs");
        self.buf.set_header(len.to_le_bytes());
    }

    /// The anchor, and the byte of the body at which the pairs start (an empty set has
    /// neither).
    fn anchor(&self) -> (&[u8], usize) {
        let body = self.buf.body();
        if body.is_empty() {
            return (&[], 0);
        }
        let mut at = 0;
        let len = varint::read(body, &mut at) as usize;
        (&body[at..at + len], at + len)
    }

    /// The anchor and the encoded pairs.
    fn parts(&self) -> (&[u8], &[u8]) {
        let (anchor, start) = self.anchor();
        (anchor, &self.buf.body()[start..])
    }

    /// The pairs in order.
    pub(super) fn iter(&self) -> PackedIter<'_> {
        let (anchor, pairs) = self.parts();
        PackedIter::new(anchor, pairs)
    }

    /// Byte offsets (in the pairs) at which each pair starts, with the pair.
    fn pairs(&self) -> impl Iterator<Item = (usize, Decoded<'_>)> + '_ {
        let (anchor, pairs) = self.parts();
        let mut at = 0;
        std::iter::from_fn(move || {
            (at < pairs.len()).then(|| {
                let start = at;
                let pair = decode(anchor, pairs, at);
                at = pair.end;
                (start, pair)
            })
        })
    }

    /// The rank, the start, the end and the score of `member`'s pair. A stored member that
    /// shares more of the anchor than `member` does cannot be it, and one that shares less
    /// compares its own bytes only; the others' scores are skipped unread.
    fn locate(&self, member: &[u8]) -> Option<(usize, usize, usize, f64)> {
        let (anchor, pairs) = self.parts();
        let common = shared_prefix(anchor, member);
        let mut at = 0;
        let mut rank = 0;
        while at < pairs.len() {
            let start = at;
            let (own, shared, int) = read_lengths(pairs, &mut at);
            if shared <= common && shared + own == member.len() {
                let score = read_score(pairs, &mut at, int);
                if pairs[at..at + own] == member[shared..] {
                    return Some((rank, start, at + own, score));
                }
            } else if int {
                varint::read(pairs, &mut at);
            } else {
                at += 8;
            }
            at += own;
            rank += 1;
        }
        None
    }

    /// The rank (0 for the lowest pair) and score of `member`.
    pub(super) fn find(&self, member: &[u8]) -> Option<(usize, f64)> {
        self.locate(member).map(|(rank, _, _, score)| (rank, score))
    }

    /// Stores a member that is not in the set yet, in order. The set's first member becomes
    /// its anchor.
    pub(super) fn insert(&mut self, member: &[u8], score: f64) {
        if self.buf.body().is_empty() {
            let mut body = Vec::with_capacity(2 * member.len() + 14);
            varint::push(&mut body, member.len() as u64);
            body.extend_from_slice(member);
            encode(&mut body, member, member, score);
            self.buf.set_body(&body);
            self.set_len(1);
            return;
        }
        let (anchor, start) = self.anchor();
        let at = self
            .pairs()
            .find(|(_, pair)| compare(pair.score, pair.member, score, member).is_ge())
            .map_or(self.buf.body().len() - start, |(at, _)| at);
        let mut encoded = Vec::with_capacity(member.len() + 12);
        encode(&mut encoded, anchor, member, score);
        self.buf.splice(start + at..start + at, &encoded);
        self.set_len(self.len() + 1);
    }

    /// Removes `member`; false when it was not there. The anchor stays while a pair is left.
    pub(super) fn remove(&mut self, member: &[u8]) -> bool {
        let Some((_, pair_start, pair_end, _)) = self.locate(member) else {
            return false;
        };
        if self.len() == 1 {
            self.buf.set_body(&[]);
        } else {
            let start = self.anchor().1;
            self.buf.splice(start + pair_start..start + pair_end, &[]);
        }
        self.set_len(self.len() - 1);
        true
    }

    /// The pairs whose scores are at least `low` and below `high` (to the end when `None`).
    pub(super) fn score_range(&self, low: f64, high: Option<f64>) -> PackedIter<'_> {
        let (anchor, pairs) = self.parts();
        let first_at_least = |bound: f64| {
            self.pairs()
                .find(|(_, pair)| Score(pair.score) >= Score(bound))
                .map_or(pairs.len(), |(start, _)| start)
        };
        let start = first_at_least(low);
        let end = high.map_or(pairs.len(), first_at_least).max(start);
        PackedIter::new(anchor, &pairs[start..end])
    }

    /// Heap bytes held.
    pub(super) fn heap_len(&self) -> usize {
        self.buf.heap_len()
    }
}

/// Pairs of a packed sorted set, in order from either end, as (member, score).
#[derive(Clone)]
pub(super) struct PackedIter<'a> {
    /// The set's anchor, which members are stored against.
    anchor: &'a [u8],
    /// Whole encoded pairs.
    pairs: &'a [u8],
    /// The pairs not yet returned are those of `pairs[front..back]`.
    front: usize,
    back: usize,
    /// Where the pairs start, collected at the first step from the end (the pairs carry no
    /// back-length); those not yet returned from the end.
    starts: Vec<usize>,
}

impl<'a> PackedIter<'a> {
    fn new(anchor: &'a [u8], pairs: &'a [u8]) -> Self {
        PackedIter {
            anchor,
            pairs,
            front: 0,
            back: pairs.len(),
            starts: Vec::new(),
        }
    }

    /// No pairs.
    pub(super) fn empty() -> Self {
        Self::new(&[], &[])
    }
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = (SplitBytes<'a>, f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        let pair = decode(self.anchor, self.pairs, self.front);
        self.front = pair.end;
        Some((pair.member, pair.score))
    }
}

impl DoubleEndedIterator for PackedIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        if self.starts.is_empty() {
            let mut at = self.front;
            while at < self.back {
                self.starts.push(at);
                at = decode(self.anchor, self.pairs, at).end;
            }
        }
        let start = self.starts.pop().expect("pairs left");
        let pair = decode(self.anchor, self.pairs, start);
        self.back = start;
        Some((pair.member, pair.score))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned<'a>(pairs: impl Iterator<Item = (SplitBytes<'a>, f64)>) -> Vec<(Vec<u8>, f64)> {
        pairs
            .map(|(member, score)| (member.to_vec(), score))
            .collect()
    }

    #[test]
    fn members_after_one_pattern_cost_their_own_bytes() {
        // The anchor (a length and 13 bytes), then 4 bytes a pair: header, prefix length,
        // score, the one byte that differs; the anchor's own pair has no byte of its own.
        let mut pairs = PackedPairs::default();
        for i in (0..10).rev() {
            pairs.insert(format!("member:00000{i}").as_bytes(), f64::from(i));
        }
        assert_eq!(pairs.heap_len(), 4 + 14 + 3 + 9 * 4);
        let expected: Vec<(Vec<u8>, f64)> = (0..10)
            .map(|i| (format!("member:00000{i}").into_bytes(), f64::from(i)))
            .collect();
        assert_eq!(owned(pairs.iter()), expected);
        // A member sharing nothing with the anchor is stored whole.
        pairs.insert(b"other", 20.0);
        let (member, _) = pairs.iter().next_back().unwrap();
        assert_eq!(member.parts(), (&b""[..], &b"other"[..]));
        // The anchor's own member leaves; the others still read against it.
        assert!(pairs.remove(b"member:000009"));
        assert_eq!(pairs.find(b"member:000009"), None);
        assert_eq!(pairs.find(b"member:000008"), Some((8, 8.0)));
        assert_eq!(pairs.find(b"member:00000"), None, "a prefix of a member");
        assert_eq!(pairs.find(b"member:0000080"), None, "a member as a prefix");
        assert_eq!(pairs.find(b"member"), None);
        pairs.insert(b"member", -1.0);
        pairs.insert(b"m", -1.0);
        assert_eq!(pairs.find(b"member"), Some((1, -1.0)));
        assert_eq!(pairs.find(b"m"), Some((0, -1.0)));
        // Order by bytes when scores tie, across stored prefixes of different lengths.
        for member in [
            &b"member:0"[..],
            b"mem",
            b"membe",
            b"member:00000",
            b"n",
            b"",
        ] {
            pairs.insert(member, 5.0);
        }
        let at_five: Vec<Vec<u8>> = pairs
            .score_range(5.0, Some(5.5))
            .map(|(member, _)| member.to_vec())
            .collect();
        let mut sorted = at_five.clone();
        sorted.sort();
        assert_eq!(at_five, sorted);
        assert_eq!(at_five.len(), 7, "{at_five:?}");
        // Every pair removed: the buffer and its anchor go.
        let all: Vec<Vec<u8>> = owned(pairs.iter()).into_iter().map(|p| p.0).collect();
        for member in &all {
            assert!(pairs.remove(member), "{member:?}");
        }
        assert_eq!(pairs.len(), 0);
        assert!(pairs.buf.body().is_empty());
    }

    #[test]
    fn pairs_round_trip_from_both_ends() {
        let long = vec![b'm'; 300];
        let cases: Vec<(&[u8], f64)> = vec![
            (b"", 0.0),
            (b"int", 7.0),
            (b"negative", -3.0),
            (b"big", 9_007_199_254_740_992.0),
            (b"beyond", 1e300),
            (b"fraction", 2.5),
            (b"infinite", f64::INFINITY),
            (b"negative-infinite", f64::NEG_INFINITY),
            (&long, 1.0),
        ];
        let mut pairs = PackedPairs::default();
        for (member, score) in &cases {
            pairs.insert(member, *score);
        }
        let mut expected: Vec<(Vec<u8>, f64)> =
            cases.iter().map(|(m, s)| (m.to_vec(), *s)).collect();
        expected.sort_by(|a, b| compare(a.1, SplitBytes::whole(&a.0), b.1, &b.0));
        assert_eq!(pairs.len(), cases.len());
        assert_eq!(owned(pairs.iter()), expected);
        let mut backwards = owned(pairs.iter().rev());
        backwards.reverse();
        assert_eq!(backwards, expected);
        assert_eq!(
            pairs.heap_len(),
            4 + pairs.buf.body().len(),
            "exactly sized"
        );
        assert_eq!(pairs.find(b"fraction"), Some((4, 2.5)));
        assert_eq!(pairs.find(b"absent"), None);
        assert!(pairs.remove(b"fraction"));
        assert!(!pairs.remove(b"fraction"));
        assert_eq!(pairs.len(), cases.len() - 1);
        assert_eq!(
            pairs.heap_len(),
            4 + pairs.buf.body().len(),
            "exactly sized"
        );
        let in_range: Vec<f64> = pairs.score_range(0.0, Some(8.0)).map(|p| p.1).collect();
        assert_eq!(in_range, [0.0, 1.0, 7.0]);
        let from: Vec<f64> = pairs.score_range(7.0, None).rev().map(|p| p.1).collect();
        assert_eq!(from, [f64::INFINITY, 1e300, 9_007_199_254_740_992.0, 7.0]);
        assert_eq!(PackedIter::empty().count(), 0);
    }

    #[test]
    fn both_ends_meet_in_the_middle() {
        let mut pairs = PackedPairs::default();
        for i in 0..7 {
            pairs.insert(format!("m{i}").as_bytes(), f64::from(i));
        }
        let mut iter = pairs.iter();
        let mut seen = Vec::new();
        // Back, front, back, back, front...: every pair once, none twice.
        for step in 0..9 {
            let pair = if step % 3 == 1 {
                iter.next()
            } else {
                iter.next_back()
            };
            seen.push(pair.map(|(_, score)| score));
        }
        let expected = [6.0, 0.0, 5.0, 4.0, 1.0, 3.0, 2.0];
        let expected: Vec<Option<f64>> = expected.into_iter().map(Some).collect();
        assert_eq!(seen[..7], expected[..]);
        assert_eq!(seen[7..], [None, None]);
        let mut ranged = pairs.score_range(2.0, Some(5.0));
        assert_eq!(ranged.next_back().map(|p| p.1), Some(4.0));
        assert_eq!(ranged.next().map(|p| p.1), Some(2.0));
        assert_eq!(ranged.clone().rev().map(|p| p.1).collect::<Vec<_>>(), [3.0]);
    }

    #[test]
    fn negative_zero_is_kept_as_zero() {
        let mut pairs = PackedPairs::default();
        pairs.insert(b"z", -0.0);
        let (_, score) = pairs.iter().next().unwrap();
        assert!(score == 0.0 && score.is_sign_positive());
    }
}
